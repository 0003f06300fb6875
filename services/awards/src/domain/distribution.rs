//! Field distribution: awards and money by industry field against the target shares, per program
//! or per year, and the change year over year. Pure: the caller passes each counted program's
//! settings and latest allocation entries.

use std::collections::{BTreeMap, BTreeSet};

use super::allocation::{Entry, Outcome, WHOLE_BASIS_POINTS};
use super::program::Program;

/// One counted program.
#[derive(Debug, Clone)]
pub struct Counted<'a> {
    /// The program.
    pub program: &'a Program,
    /// Entries of its latest allocation revision.
    pub entries: &'a [Entry],
}

/// One field's row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldRow {
    /// `IndustryField` number.
    pub field: i32,
    /// A priority field of a counted program.
    pub priority: bool,
    /// Applications (ACTIVE at allocation).
    pub applications: i64,
    /// Selected.
    pub count: i64,
    /// Money, fen.
    pub amount_fen: i64,
    /// Count share, bp.
    pub count_share_bp: i32,
    /// Amount share, bp.
    pub amount_share_bp: i32,
    /// Target share, bp.
    pub target_share_bp: i32,
    /// The previous year had programs counted.
    pub has_previous_year: bool,
    /// Change of the count share.
    pub count_share_change_bp: i32,
    /// Change of the amount share.
    pub amount_share_change_bp: i32,
}

/// One year (or program).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YearRow {
    /// Year.
    pub year: i32,
    /// Program names counted.
    pub programs: Vec<String>,
    /// Selected, all fields.
    pub total_count: i64,
    /// Money, all fields.
    pub total_amount_fen: i64,
    /// Rows by field.
    pub fields: Vec<FieldRow>,
}

/// `part / whole` in basis points, rounded to nearest, halves to even; 0 when `whole` is 0.
pub fn share_bp(part: i64, whole: i64) -> i32 {
    if whole <= 0 {
        return 0;
    }
    let num = i128::from(part) * i128::from(WHOLE_BASIS_POINTS);
    let den = i128::from(whole);
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den);
    let rounded = match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    };
    i32::try_from(rounded).unwrap_or(i32::MAX)
}

/// The distribution of one year (or one program) over `counted`.
pub fn year_row(year: i32, counted: &[Counted<'_>]) -> YearRow {
    let mut rows: BTreeMap<i32, FieldRow> = BTreeMap::new();
    let mut priority: BTreeSet<i32> = BTreeSet::new();
    let mut row = YearRow {
        year,
        ..YearRow::default()
    };
    for c in counted {
        row.programs.push(c.program.name());
        for p in &c.program.settings.priority_fields {
            priority.insert(p.field);
            rows.entry(p.field).or_default();
        }
        for e in c.entries {
            let r = rows.entry(e.field).or_default();
            r.applications += 1;
            if matches!(e.outcome, Outcome::Awarded | Outcome::Funded) {
                r.count += 1;
                r.amount_fen += e.amount_fen;
                row.total_count += 1;
                row.total_amount_fen += e.amount_fen;
            }
        }
    }
    let total_size: i128 = counted
        .iter()
        .map(|c| i128::from(c.program.size_for_targets().max(0)))
        .sum();
    for (field, r) in rows.iter_mut() {
        r.field = *field;
        r.priority = priority.contains(field);
        r.count_share_bp = share_bp(r.count, row.total_count);
        r.amount_share_bp = share_bp(r.amount_fen, row.total_amount_fen);
        if total_size > 0 {
            let weighted: i128 = counted
                .iter()
                .map(|c| {
                    let share = c
                        .program
                        .settings
                        .priority_fields
                        .iter()
                        .find(|p| p.field == *field)
                        .map_or(0, |p| p.basis_points);
                    i128::from(share) * i128::from(c.program.size_for_targets().max(0))
                })
                .sum();
            r.target_share_bp = i32::try_from(weighted / total_size).unwrap_or(0);
        }
    }
    row.fields = rows.into_values().collect();
    row
}

/// Fills the year-over-year changes of `row` from `previous` (the year before, if it had
/// programs counted).
pub fn compare(row: &mut YearRow, previous: Option<&YearRow>) {
    let Some(prev) = previous.filter(|p| !p.programs.is_empty()) else {
        return;
    };
    for r in &mut row.fields {
        let (pc, pa) = prev
            .fields
            .iter()
            .find(|p| p.field == r.field)
            .map_or((0, 0), |p| (p.count_share_bp, p.amount_share_bp));
        r.has_previous_year = true;
        r.count_share_change_bp = r.count_share_bp - pc;
        r.amount_share_change_bp = r.amount_share_bp - pa;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_half_to_even() {
        assert_eq!(share_bp(1, 3), 3333);
        assert_eq!(share_bp(2, 3), 6667);
        assert_eq!(share_bp(1, 20_000), 0); // 0.5 bp → 0 (even)
        assert_eq!(share_bp(3, 20_000), 2); // 1.5 bp → 2 (even)
        assert_eq!(share_bp(5, 0), 0);
        assert_eq!(share_bp(7, 7), 10_000);
    }
}
