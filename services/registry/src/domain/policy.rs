//! Policy targets: the programme's numbers ("about 200 leading enterprises", "10 bn yuan per
//! cluster by 2023") as dated, versioned data with their source. The rules here: what a valid
//! target is, when year ranges overlap, and which target counts as in force. Never a target
//! value as a constant in code: values come from the `policy_target` table.

use std::fmt;

/// Earliest programme year a target, a cluster start or a cluster target may name. The
/// programme's policy goes back to 2016 (HTE measures); earlier years are typing errors, with a
/// margin for historic records.
pub const MIN_YEAR: i32 = 1980;
/// Latest programme year accepted (sanity bound; plans reach 2025-2035).
pub const MAX_YEAR: i32 = 2100;
/// Longest source citation and note (characters), per the contract.
pub const MAX_SOURCE_CHARS: usize = 2000;

/// What a target measures (`qilu.registry.v1.PolicyTargetKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetKind {
    /// Size of the yearly leading-enterprise cohort (count).
    LeadingCohortSize,
    /// New high-tech enterprises in zones in green fields per year (count).
    YearlyNewHighTechEnterprises,
    /// Members' annual revenue per cluster (fen).
    ClusterScale,
    /// Number of green technology industrial clusters (count).
    ClusterCount,
    /// Green, low-carbon high-tech enterprises (stock count).
    GreenHighTechEnterprises,
}

impl TargetKind {
    /// Every kind.
    pub const ALL: [TargetKind; 5] = [
        TargetKind::LeadingCohortSize,
        TargetKind::YearlyNewHighTechEnterprises,
        TargetKind::ClusterScale,
        TargetKind::ClusterCount,
        TargetKind::GreenHighTechEnterprises,
    ];

    /// Stored code = proto number (`crate::store::policy::kind`).
    pub fn code(self) -> i32 {
        match self {
            TargetKind::LeadingCohortSize => 1,
            TargetKind::YearlyNewHighTechEnterprises => 2,
            TargetKind::ClusterScale => 3,
            TargetKind::ClusterCount => 4,
            TargetKind::GreenHighTechEnterprises => 5,
        }
    }

    /// From the stored code; `None` for 0 and unknown numbers.
    pub fn from_code(code: i32) -> Option<TargetKind> {
        TargetKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Slug for server-assigned ids, e.g. `cluster-scale`.
    pub fn slug(self) -> &'static str {
        match self {
            TargetKind::LeadingCohortSize => "leading-cohort",
            TargetKind::YearlyNewHighTechEnterprises => "new-hte-yearly",
            TargetKind::ClusterScale => "cluster-scale",
            TargetKind::ClusterCount => "cluster-count",
            TargetKind::GreenHighTechEnterprises => "green-hte",
        }
    }
}

/// An inclusive range of programme years; `to == None` is open-ended (stored as 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearRange {
    /// First year (inclusive).
    pub from: i32,
    /// Last year (inclusive), or open-ended.
    pub to: Option<i32>,
}

impl YearRange {
    /// From the stored pair (`to == 0` = open-ended).
    pub fn from_stored(from: i32, to: i32) -> YearRange {
        YearRange {
            from,
            to: (to != 0).then_some(to),
        }
    }

    /// Whether `year` is inside.
    pub fn covers(self, year: i32) -> bool {
        year >= self.from && self.to.is_none_or(|to| year <= to)
    }

    /// Whether the two ranges share at least one year.
    pub fn overlaps(self, other: YearRange) -> bool {
        let starts_before_other_ends = other.to.is_none_or(|to| self.from <= to);
        let other_starts_before_self_ends = self.to.is_none_or(|to| other.from <= to);
        starts_before_other_ends && other_starts_before_self_ends
    }
}

impl fmt::Display for YearRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to {
            Some(to) if to == self.from => write!(f, "{}", self.from),
            Some(to) => write!(f, "{}-{to}", self.from),
            None => write!(f, "{} onwards", self.from),
        }
    }
}

/// A problem with a target's numbers, named by the proto field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetProblem {
    /// Proto field name (`value`, `effective_from_year`, ...).
    pub field: &'static str,
    /// UPPER_SNAKE reason.
    pub reason: &'static str,
    /// For a person.
    pub description: String,
}

fn problem(field: &'static str, reason: &'static str, description: String) -> TargetProblem {
    TargetProblem {
        field,
        reason,
        description,
    }
}

/// Checks the numbers of a new target: value never negative; years within
/// [`MIN_YEAR`]..=[`MAX_YEAR`]; `effective_to_year` 0 (open-ended) or not before
/// `effective_from_year`; `target_year` 0 (a yearly flow) or not before `effective_from_year`
/// (a stock target is reached after it starts applying). Every problem is reported.
pub fn check_numbers(
    value: i64,
    effective_from_year: i32,
    effective_to_year: i32,
    target_year: i32,
) -> Vec<TargetProblem> {
    let mut out = Vec::new();
    let in_range = |y: i32| (MIN_YEAR..=MAX_YEAR).contains(&y);
    if value < 0 {
        out.push(problem(
            "value",
            "NEGATIVE",
            format!("a target is never negative, got {value}"),
        ));
    }
    let from_ok = in_range(effective_from_year);
    if effective_from_year == 0 {
        out.push(problem(
            "effective_from_year",
            "REQUIRED",
            "the first programme year the target applies to is required".into(),
        ));
    } else if !from_ok {
        out.push(problem(
            "effective_from_year",
            "OUT_OF_RANGE",
            format!("{effective_from_year} is outside {MIN_YEAR}-{MAX_YEAR}"),
        ));
    }
    if effective_to_year != 0 {
        if !in_range(effective_to_year) {
            out.push(problem(
                "effective_to_year",
                "OUT_OF_RANGE",
                format!("{effective_to_year} is outside {MIN_YEAR}-{MAX_YEAR} (0 = open-ended)"),
            ));
        } else if from_ok && effective_to_year < effective_from_year {
            out.push(problem(
                "effective_to_year",
                "BEFORE_FROM_YEAR",
                format!(
                    "the range ends in {effective_to_year}, before it starts in {effective_from_year}"
                ),
            ));
        }
    }
    if target_year != 0 {
        if !in_range(target_year) {
            out.push(problem(
                "target_year",
                "OUT_OF_RANGE",
                format!("{target_year} is outside {MIN_YEAR}-{MAX_YEAR} (0 = a yearly flow)"),
            ));
        } else if from_ok && target_year < effective_from_year {
            out.push(problem(
                "target_year",
                "BEFORE_FROM_YEAR",
                format!(
                    "a target to reach by {target_year} cannot start applying in {effective_from_year}"
                ),
            ));
        }
    }
    out
}

/// A stored target as the recording decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTarget {
    /// Its id.
    pub id: String,
    /// Its kind's stored code (a corrupt row may hold an unknown one).
    pub kind: i32,
    /// The years it is in force.
    pub range: YearRange,
    /// `policyTargets/{id}` of its successor, or "" while in force.
    pub superseded_by: String,
}

/// Why a new target cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRefused {
    /// The target it names to supersede does not exist.
    UnknownSuperseded {
        /// The id named.
        id: String,
    },
    /// A target supersedes only one of its own kind.
    KindMismatch {
        /// The superseded target's id.
        id: String,
        /// Its kind code.
        theirs: i32,
        /// The new target's kind.
        ours: TargetKind,
    },
    /// The target named was superseded already.
    AlreadySuperseded {
        /// Its id.
        id: String,
        /// Its successor's name.
        by: String,
    },
    /// Another target of the kind is in force for some of the same years.
    Overlapping {
        /// The other target's id.
        id: String,
        /// The kind both measure.
        kind: TargetKind,
        /// The other target's years.
        theirs: YearRange,
        /// The new target's years.
        ours: YearRange,
    },
}

/// Whether a new target of `kind` over `range` may be recorded. `supersedes` is the id it names
/// to replace with that target as stored (`None` when there is none); `in_force` are the
/// targets of `kind` not superseded. At most one target of a kind is in force for any year, so
/// the superseded target is set aside and no other may overlap. Checked in this order: the
/// superseded target exists, is of the same kind, is still in force; then overlaps, oldest
/// range first.
pub fn may_record(
    kind: TargetKind,
    range: YearRange,
    supersedes: Option<(&str, Option<&StoredTarget>)>,
    in_force: &[StoredTarget],
) -> Result<(), TargetRefused> {
    let mut replaced = None;
    if let Some((id, stored)) = supersedes {
        let Some(old) = stored else {
            return Err(TargetRefused::UnknownSuperseded { id: id.to_string() });
        };
        if old.kind != kind.code() {
            return Err(TargetRefused::KindMismatch {
                id: id.to_string(),
                theirs: old.kind,
                ours: kind,
            });
        }
        if !old.superseded_by.is_empty() {
            return Err(TargetRefused::AlreadySuperseded {
                id: id.to_string(),
                by: old.superseded_by.clone(),
            });
        }
        replaced = Some(old.id.as_str());
    }
    match in_force
        .iter()
        .find(|other| replaced != Some(other.id.as_str()) && other.range.overlaps(range))
    {
        Some(other) => Err(TargetRefused::Overlapping {
            id: other.id.clone(),
            kind,
            theirs: other.range,
            ours: range,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(from: i32, to: i32) -> YearRange {
        YearRange::from_stored(from, to)
    }

    #[test]
    fn ranges_cover_their_edges_and_open_ends() {
        let cases = [
            (r(2021, 2023), 2020, false),
            (r(2021, 2023), 2021, true),
            (r(2021, 2023), 2023, true),
            (r(2021, 2023), 2024, false),
            (r(2021, 0), 2020, false),
            (r(2021, 0), 2021, true),
            (r(2021, 0), 2099, true),
            (r(2025, 2025), 2025, true),
            (r(2025, 2025), 2024, false),
        ];
        for (range, year, covered) in cases {
            assert_eq!(range.covers(year), covered, "{range} covers {year}");
        }
    }

    #[test]
    fn overlap_is_symmetric_and_counts_shared_edge_years() {
        let cases = [
            (r(2021, 2023), r(2024, 2025), false),
            (r(2021, 2023), r(2023, 2025), true),
            (r(2021, 2023), r(2019, 2020), false),
            (r(2021, 2023), r(2019, 2021), true),
            (r(2021, 0), r(2030, 2031), true),
            (r(2021, 0), r(2019, 2020), false),
            (r(2021, 0), r(2019, 2021), true),
            (r(2021, 0), r(2025, 0), true),
            (r(2022, 2022), r(2022, 2022), true),
            (r(2020, 2030), r(2024, 2025), true),
        ];
        for (a, b, overlap) in cases {
            assert_eq!(a.overlaps(b), overlap, "{a} vs {b}");
            assert_eq!(b.overlaps(a), overlap, "{b} vs {a}");
        }
    }

    #[test]
    fn ranges_read_as_people_write_them() {
        assert_eq!(r(2021, 0).to_string(), "2021 onwards");
        assert_eq!(r(2023, 2025).to_string(), "2023-2025");
        assert_eq!(r(2025, 2025).to_string(), "2025");
    }

    fn fields(problems: &[TargetProblem]) -> Vec<(&str, &str)> {
        problems.iter().map(|p| (p.field, p.reason)).collect()
    }

    #[test]
    fn numbers_are_checked_at_and_around_each_bound() {
        assert!(check_numbers(0, 2021, 0, 0).is_empty());
        assert!(check_numbers(1_000_000_000_000, 2021, 0, 2023).is_empty());
        assert!(check_numbers(5, 2023, 2025, 2025).is_empty());
        assert!(check_numbers(5, 2023, 2023, 2023).is_empty());
        assert!(check_numbers(5, MIN_YEAR, MAX_YEAR, MAX_YEAR).is_empty());
        assert_eq!(
            fields(&check_numbers(-1, 2021, 0, 0)),
            [("value", "NEGATIVE")]
        );
        assert_eq!(
            fields(&check_numbers(1, 0, 0, 0)),
            [("effective_from_year", "REQUIRED")]
        );
        assert_eq!(
            fields(&check_numbers(1, MIN_YEAR - 1, 0, 0)),
            [("effective_from_year", "OUT_OF_RANGE")]
        );
        assert_eq!(
            fields(&check_numbers(1, MAX_YEAR + 1, 0, 0)),
            [("effective_from_year", "OUT_OF_RANGE")]
        );
        assert_eq!(
            fields(&check_numbers(1, 2023, 2022, 0)),
            [("effective_to_year", "BEFORE_FROM_YEAR")]
        );
        assert_eq!(
            fields(&check_numbers(1, 2023, MAX_YEAR + 1, 0)),
            [("effective_to_year", "OUT_OF_RANGE")]
        );
        assert_eq!(
            fields(&check_numbers(1, 2023, 0, 2022)),
            [("target_year", "BEFORE_FROM_YEAR")]
        );
        assert_eq!(
            fields(&check_numbers(1, 2023, 0, -5)),
            [("target_year", "OUT_OF_RANGE")]
        );
        // Everything wrong at once is reported at once.
        assert_eq!(
            fields(&check_numbers(-1, 1900, 1850, 1700)),
            [
                ("value", "NEGATIVE"),
                ("effective_from_year", "OUT_OF_RANGE"),
                ("effective_to_year", "OUT_OF_RANGE"),
                ("target_year", "OUT_OF_RANGE"),
            ]
        );
    }

    #[test]
    fn kinds_round_trip_and_match_the_stored_codes() {
        for k in TargetKind::ALL {
            assert_eq!(TargetKind::from_code(k.code()), Some(k));
        }
        assert_eq!(TargetKind::from_code(0), None);
        assert_eq!(
            TargetKind::ClusterScale.code(),
            crate::store::policy::kind::CLUSTER_SCALE
        );
        assert_eq!(
            TargetKind::LeadingCohortSize.code(),
            crate::store::policy::kind::LEADING_COHORT_SIZE
        );
    }

    fn stored(id: &str, kind: TargetKind, from: i32, to: i32, by: &str) -> StoredTarget {
        StoredTarget {
            id: id.into(),
            kind: kind.code(),
            range: r(from, to),
            superseded_by: by.into(),
        }
    }

    #[test]
    fn a_new_target_supersedes_its_own_kind_once_and_overlaps_nothing_else() {
        use TargetKind::{ClusterCount, LeadingCohortSize};
        let old = stored("a", LeadingCohortSize, 2021, 2025, "");
        let later = stored("b", LeadingCohortSize, 2030, 2031, "");
        let gone = stored("c", LeadingCohortSize, 2018, 2020, "policyTargets/a");
        let other_kind = stored("d", ClusterCount, 2021, 0, "");
        let in_force = [old.clone(), later.clone()];
        // (range, supersedes, answer)
        let cases = [
            (r(2032, 0), None, Ok(())),
            (
                r(2025, 0),
                None,
                Err(TargetRefused::Overlapping {
                    id: "a".into(),
                    kind: LeadingCohortSize,
                    theirs: old.range,
                    ours: r(2025, 0),
                }),
            ),
            // Superseding "a" sets it aside, but "b" still overlaps.
            (
                r(2025, 0),
                Some(("a", Some(&old))),
                Err(TargetRefused::Overlapping {
                    id: "b".into(),
                    kind: LeadingCohortSize,
                    theirs: later.range,
                    ours: r(2025, 0),
                }),
            ),
            (r(2025, 2029), Some(("a", Some(&old))), Ok(())),
            (
                r(2025, 2029),
                Some(("x", None)),
                Err(TargetRefused::UnknownSuperseded { id: "x".into() }),
            ),
            (
                r(2025, 2029),
                Some(("d", Some(&other_kind))),
                Err(TargetRefused::KindMismatch {
                    id: "d".into(),
                    theirs: ClusterCount.code(),
                    ours: LeadingCohortSize,
                }),
            ),
            (
                r(2025, 2029),
                Some(("c", Some(&gone))),
                Err(TargetRefused::AlreadySuperseded {
                    id: "c".into(),
                    by: "policyTargets/a".into(),
                }),
            ),
        ];
        for (i, (range, supersedes, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                may_record(LeadingCohortSize, range, supersedes, &in_force),
                want,
                "case {i}"
            );
        }
    }
}
