//! The allocator: who gets each award seat or each fen of a project budget, and why.
//!
//! Contract (docs/design.md §6, `proto/qilu/awards/v1/allocation.proto`):
//! - An application qualifies when it was not excluded by the run-time checks (the caller
//!   re-checked registry and review and passes the reason) and its exact aggregate score
//!   `sum / count` is at or above the threshold (`sum × 1000 ≥ threshold_millipoints × count`).
//! - Qualifying applications of a bucket are ranked by exact score (descending), then by the
//!   achievement's decision time (earlier first), then by application name: a total, fixed order.
//! - Each bucket (an award category × grade with its quota of seats, or a project program's
//!   budget in fen) is split over the priority-field pools and the open pool by Hamilton's
//!   method (`hamilton.rs`). Each priority pool fills from its own field in rank order; what it
//!   cannot fill returns to the open pool; the open pool then takes the best remaining
//!   qualifying applications of any field.
//! - Money is funded strictly down the ranking: an application that does not fit the money left
//!   in its pool is skipped with that reason and the next one considered. A project is funded at
//!   its requested amount, limited to the per-project cap when there is one.
//! - Award caps across buckets (e.g. first prizes ≤ 35) are checked on every seat; buckets are
//!   filled in (category, grade) order, so when a cap binds, earlier buckets have precedence.
//! - Nothing exceeds a quota, a cap or the budget; every application gets exactly one outcome
//!   and a reason a person can read; the same input gives the same output.
//!
//! This module never does I/O and never uses floating point.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use qilu_proto::awards::{AwardCategory, AwardGrade};
use qilu_proto::common::IndustryField;

use super::hamilton;

/// The ranking and tie-break rule, in words, as stored with every allocation.
pub const RANKING_RULE: &str = "exact aggregate score descending (sum/count compared by cross-multiplication), then achievement decision time ascending, then application name ascending";

/// Basis points in a whole (100 %).
pub const WHOLE_BASIS_POINTS: i64 = 10_000;

/// An exact aggregate review score: `sum / count` points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// Sum of the (trimmed) review totals.
    pub sum: i64,
    /// Number of reviews in the sum.
    pub count: i64,
}

impl Score {
    /// Thousandths of a point, rounded down (for display only; decisions use the exact ratio).
    pub fn millipoints(self) -> i64 {
        if self.count <= 0 {
            return 0;
        }
        let v = i128::from(self.sum) * 1000 / i128::from(self.count);
        i64::try_from(v).unwrap_or(i64::MAX)
    }

    /// `sum / count ≥ threshold / 1000`, exactly.
    pub fn meets(self, threshold_millipoints: i64) -> bool {
        self.count > 0
            && i128::from(self.sum) * 1000
                >= i128::from(threshold_millipoints) * i128::from(self.count)
    }

    /// Exact comparison of two ratios.
    fn cmp_exact(self, other: Score) -> Ordering {
        let a = i128::from(self.sum) * i128::from(other.count.max(1));
        let b = i128::from(other.sum) * i128::from(self.count.max(1));
        a.cmp(&b)
    }
}

/// An award bucket (category × grade codes of the contract); `(0, 0)` for a project budget.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct BucketKey {
    /// `AwardCategory` number.
    pub category: i32,
    /// `AwardGrade` number.
    pub grade: i32,
}

impl BucketKey {
    /// The single bucket of a project program.
    pub const BUDGET: BucketKey = BucketKey {
        category: 0,
        grade: 0,
    };

    fn label(self) -> String {
        if self == BucketKey::BUDGET {
            return "budget".to_string();
        }
        format!(
            "{}/{}",
            category_name(self.category),
            grade_name(self.grade)
        )
    }
}

fn category_name(code: i32) -> String {
    AwardCategory::try_from(code)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("AWARD_CATEGORY_")
                .to_string()
        })
        .unwrap_or_else(|_| format!("CATEGORY_{code}"))
}

fn grade_name(code: i32) -> String {
    AwardGrade::try_from(code)
        .map(|g| {
            g.as_str_name()
                .trim_start_matches("AWARD_GRADE_")
                .to_string()
        })
        .unwrap_or_else(|_| format!("GRADE_{code}"))
}

/// The name of an industry field without its enum prefix, e.g. `BIOMEDICINE`.
pub fn field_name(code: i32) -> String {
    IndustryField::try_from(code)
        .map(|f| {
            f.as_str_name()
                .trim_start_matches("INDUSTRY_FIELD_")
                .to_string()
        })
        .unwrap_or_else(|_| format!("FIELD_{code}"))
}

/// One application as the allocator sees it, with the facts fetched at run time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    /// `programs/{p}/applications/{a}`: unique, the last tie-break.
    pub application: String,
    /// `enterprises/{uscc}`.
    pub enterprise: String,
    /// `achievements/{id}`.
    pub achievement: String,
    /// `IndustryField` number.
    pub field: i32,
    /// Nominated bucket (`BucketKey::BUDGET` for projects).
    pub bucket: BucketKey,
    /// Requested amount in fen (projects).
    pub requested_fen: i64,
    /// The achievement's exact aggregate score.
    pub score: Score,
    /// When the achievement's decision was made, µs (earlier ranks first among equal scores).
    pub decided_at_us: i64,
    /// Set when the run-time checks excluded it, with the reason.
    pub exclusion: Option<String>,
}

/// Seats and prize money of an award bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// The bucket.
    pub bucket: BucketKey,
    /// Seats.
    pub seats: i64,
    /// Prize money per award, fen.
    pub amount_fen: i64,
}

/// A cap across buckets: at most `limit` awards over every bucket whose category is in
/// `categories` (all when empty) and grade in `grades` (all when empty).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cap {
    /// What it is, e.g. "first prizes ≤ 35 a year".
    pub description: String,
    /// Covered categories (empty = all).
    pub categories: Vec<i32>,
    /// Covered grades (empty = all).
    pub grades: Vec<i32>,
    /// Most awards.
    pub limit: i64,
}

impl Cap {
    fn covers(&self, b: BucketKey) -> bool {
        (self.categories.is_empty() || self.categories.contains(&b.category))
            && (self.grades.is_empty() || self.grades.contains(&b.grade))
    }
}

/// What is being allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Award seats per bucket, with caps across buckets.
    Award {
        /// Quotas, one per bucket.
        quotas: Vec<Quota>,
        /// Caps across buckets.
        caps: Vec<Cap>,
    },
    /// A project budget.
    Project {
        /// Total budget, fen.
        budget_fen: i64,
        /// Most one project may receive, fen; 0 = no cap.
        per_project_cap_fen: i64,
    },
}

/// A priority field and its target share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityShare {
    /// `IndustryField` number.
    pub field: i32,
    /// Share in basis points.
    pub basis_points: i64,
}

/// The program's allocation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Award or project.
    pub kind: Kind,
    /// Priority fields (any order; the allocator orders pools by field number).
    pub priority: Vec<PriorityShare>,
    /// Score threshold in millipoints.
    pub threshold_millipoints: i64,
}

/// An application's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// Project funded.
    Funded,
    /// Award made.
    Awarded,
    /// Qualified but ranked below the seats or the money left.
    NotSelected,
    /// Did not qualify.
    Excluded,
}

/// One application's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Application name.
    pub application: String,
    /// Enterprise name.
    pub enterprise: String,
    /// Achievement name.
    pub achievement: String,
    /// Industry field.
    pub field: i32,
    /// Bucket.
    pub bucket: BucketKey,
    /// Requested fen.
    pub requested_fen: i64,
    /// Score in millipoints (display).
    pub score_millipoints: i64,
    /// Outcome.
    pub outcome: Outcome,
    /// Pool id that selected it, if any.
    pub pool: Option<String>,
    /// Rank among the bucket's qualifying applications (0 when excluded).
    pub rank: i32,
    /// Number of qualifying applications in the bucket.
    pub rank_of: i32,
    /// Money awarded or funded, fen.
    pub amount_fen: i64,
    /// Why, in words.
    pub reason: String,
}

/// How one pool of one bucket was sized and filled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolResult {
    /// `{bucket}/{field}` or `{bucket}/open`.
    pub pool_id: String,
    /// Bucket.
    pub bucket: BucketKey,
    /// The priority field; `None` for the open pool.
    pub field: Option<i32>,
    /// Share, basis points.
    pub share_basis_points: i64,
    /// Units being split (seats or fen).
    pub bucket_size: i64,
    /// Hamilton whole part.
    pub whole_part: i64,
    /// Hamilton remainder (ten-thousandths of a unit).
    pub remainder: i64,
    /// Received a leftover unit.
    pub extra_unit: bool,
    /// Reserved units.
    pub reserved: i64,
    /// Units used.
    pub used: i64,
    /// Priority: unfilled reserve returned to open; open: total received.
    pub returned_to_open: i64,
    /// Candidates considered.
    pub candidates: i32,
}

/// One bucket's totals.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BucketResult {
    /// Bucket.
    pub bucket: BucketKey,
    /// Seats or budget.
    pub size: i64,
    /// Seats awarded or fen funded.
    pub used: i64,
    /// Qualifying applications.
    pub qualifying: i32,
    /// Applications nominated to it.
    pub applications: i32,
}

/// Usage of a cap.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapUsage {
    /// Description.
    pub description: String,
    /// Limit.
    pub limit: i64,
    /// Awards made under it.
    pub used: i64,
}

/// Totals over the program.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    /// Applications considered.
    pub applications: i32,
    /// Awarded or funded.
    pub selected: i32,
    /// Not selected.
    pub not_selected: i32,
    /// Excluded.
    pub excluded: i32,
    /// Money awarded or funded, fen.
    pub amount_fen: i64,
    /// Budget (project) or Σ quota × prize (award), fen.
    pub budget_fen: i64,
    /// Budget minus amount.
    pub budget_left_fen: i64,
    /// Money to priority fields, fen.
    pub priority_amount_fen: i64,
    /// Selections in priority fields.
    pub priority_selected: i32,
}

/// The complete result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Allocation {
    /// One entry per application: by bucket, then rank; excluded last by name.
    pub entries: Vec<Entry>,
    /// Every pool of every bucket.
    pub pools: Vec<PoolResult>,
    /// Every bucket.
    pub buckets: Vec<BucketResult>,
    /// Every cap (awards).
    pub caps: Vec<CapUsage>,
    /// Totals.
    pub totals: Totals,
}

/// Formats fen with thousands separators: 1200000 → "1,200,000".
pub fn format_fen(fen: i64) -> String {
    let digits = fen.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if fen < 0 { format!("-{out}") } else { out }
}

/// Per-candidate working state.
struct Working {
    outcome: Option<Outcome>,
    pool: Option<String>,
    rank: i32,
    rank_of: i32,
    amount_fen: i64,
    reason: String,
    /// Why it was passed over while still qualifying (money did not fit, cap reached).
    skipped: Option<String>,
}

/// Allocates. Pure and deterministic; never panics; never exceeds a quota, cap or budget.
pub fn allocate(program: &Program, candidates: &[Candidate]) -> Allocation {
    let mut priority: Vec<PriorityShare> = program
        .priority
        .iter()
        .copied()
        .filter(|p| p.basis_points > 0)
        .collect();
    priority.sort_by_key(|p| p.field);
    priority.dedup_by_key(|p| p.field);
    let priority_fields: BTreeSet<i32> = priority.iter().map(|p| p.field).collect();
    let priority_total: i64 = priority.iter().map(|p| p.basis_points).sum();
    let open_share = (WHOLE_BASIS_POINTS - priority_total).max(0);
    let mut weights: Vec<i64> = priority.iter().map(|p| p.basis_points).collect();
    weights.push(open_share);

    // Buckets in fixed order, with their size (seats or fen) and unit prize.
    let buckets: Vec<(BucketKey, i64, i64)> = match &program.kind {
        Kind::Award { quotas, .. } => {
            let mut b: BTreeMap<BucketKey, (i64, i64)> = BTreeMap::new();
            for q in quotas {
                // A bucket listed twice is invalid input (programs refuse it); if it ever
                // arrives, the smaller quota holds, so no listed quota is ever exceeded.
                let entry = b
                    .entry(q.bucket)
                    .or_insert((q.seats.max(0), q.amount_fen.max(0)));
                entry.0 = entry.0.min(q.seats.max(0));
            }
            b.into_iter().map(|(k, (s, a))| (k, s, a)).collect()
        }
        Kind::Project { budget_fen, .. } => vec![(BucketKey::BUDGET, (*budget_fen).max(0), 0)],
    };
    let (caps, per_project_cap) = match &program.kind {
        Kind::Award { caps, .. } => (caps.clone(), 0),
        Kind::Project {
            per_project_cap_fen,
            ..
        } => (Vec::new(), (*per_project_cap_fen).max(0)),
    };
    let is_project = matches!(program.kind, Kind::Project { .. });
    let mut cap_used: Vec<i64> = vec![0; caps.len()];

    let mut work: Vec<Working> = candidates
        .iter()
        .map(|_| Working {
            outcome: None,
            pool: None,
            rank: 0,
            rank_of: 0,
            amount_fen: 0,
            reason: String::new(),
            skipped: None,
        })
        .collect();

    // Exclusions that do not depend on the bucket.
    let known_buckets: BTreeSet<BucketKey> = buckets.iter().map(|b| b.0).collect();
    for (i, c) in candidates.iter().enumerate() {
        let w = &mut work[i];
        if let Some(reason) = &c.exclusion {
            w.outcome = Some(Outcome::Excluded);
            w.reason = format!("excluded: {reason}");
        } else if !known_buckets.contains(&c.bucket) {
            w.outcome = Some(Outcome::Excluded);
            w.reason = format!(
                "excluded: the program has no quota for {}",
                c.bucket.label()
            );
        } else if !c.score.meets(program.threshold_millipoints) {
            w.outcome = Some(Outcome::Excluded);
            w.reason = format!(
                "excluded: score {} is below the threshold {} (thousandths of a point)",
                c.score.millipoints(),
                program.threshold_millipoints
            );
        } else if is_project && c.requested_fen <= 0 {
            w.outcome = Some(Outcome::Excluded);
            w.reason = "excluded: no positive requested amount".to_string();
        }
    }

    let mut pools_out = Vec::new();
    let mut buckets_out = Vec::new();
    let mut ordered_entries: Vec<usize> = Vec::with_capacity(candidates.len());

    for &(bucket, size, prize_fen) in &buckets {
        let nominated: Vec<usize> = (0..candidates.len())
            .filter(|&i| candidates[i].bucket == bucket)
            .collect();
        let mut ranked: Vec<usize> = nominated
            .iter()
            .copied()
            .filter(|&i| work[i].outcome.is_none())
            .collect();
        ranked.sort_by(|&a, &b| {
            let (ca, cb) = (&candidates[a], &candidates[b]);
            cb.score
                .cmp_exact(ca.score)
                .then(ca.decided_at_us.cmp(&cb.decided_at_us))
                .then(ca.application.cmp(&cb.application))
        });
        let rank_of = i32::try_from(ranked.len()).unwrap_or(i32::MAX);
        for (r, &i) in ranked.iter().enumerate() {
            work[i].rank = i32::try_from(r + 1).unwrap_or(i32::MAX);
            work[i].rank_of = rank_of;
        }

        let splits = hamilton::split(size, &weights);
        let label = bucket.label();
        let mut bucket_used = 0i64;
        let mut returned_total = 0i64;
        let mut bucket_pools = Vec::new();

        // Priority pools, in field order.
        for (p, share) in priority.iter().enumerate() {
            let split = splits[p];
            let pool_id = format!("{label}/{}", field_name(share.field));
            let mut left = split.reserved;
            let mut candidates_considered = 0i32;
            for &i in &ranked {
                if candidates[i].field != share.field || work[i].outcome.is_some() {
                    continue;
                }
                candidates_considered += 1;
                if left <= 0 {
                    continue;
                }
                let granted = grant(
                    &mut work[i],
                    &candidates[i],
                    bucket,
                    is_project,
                    prize_fen,
                    per_project_cap,
                    &mut left,
                    &caps,
                    &mut cap_used,
                    &pool_id,
                    &format!("the {} priority pool", field_name(share.field)),
                );
                if let Some(units) = granted {
                    bucket_used += units;
                }
            }
            let used = split.reserved - left;
            returned_total += left;
            bucket_pools.push(PoolResult {
                pool_id,
                bucket,
                field: Some(share.field),
                share_basis_points: share.basis_points,
                bucket_size: size,
                whole_part: split.whole_part,
                remainder: split.remainder,
                extra_unit: split.extra_unit,
                reserved: split.reserved,
                used,
                returned_to_open: left,
                candidates: candidates_considered,
            });
        }

        // The open pool: its own reserve plus everything the priority pools returned.
        let open_split = splits[priority.len()];
        let pool_id = format!("{label}/open");
        let mut left = open_split.reserved + returned_total;
        let mut candidates_considered = 0i32;
        for &i in &ranked {
            if work[i].outcome.is_some() {
                continue;
            }
            candidates_considered += 1;
            if left <= 0 {
                continue;
            }
            if let Some(units) = grant(
                &mut work[i],
                &candidates[i],
                bucket,
                is_project,
                prize_fen,
                per_project_cap,
                &mut left,
                &caps,
                &mut cap_used,
                &pool_id,
                "the open pool",
            ) {
                bucket_used += units;
            }
        }
        bucket_pools.push(PoolResult {
            pool_id,
            bucket,
            field: None,
            share_basis_points: open_share,
            bucket_size: size,
            whole_part: open_split.whole_part,
            remainder: open_split.remainder,
            extra_unit: open_split.extra_unit,
            reserved: open_split.reserved,
            used: open_split.reserved + returned_total - left,
            returned_to_open: returned_total,
            candidates: candidates_considered,
        });

        // Whoever qualified but got nothing.
        for &i in &ranked {
            let w = &mut work[i];
            if w.outcome.is_none() {
                w.outcome = Some(Outcome::NotSelected);
                let why = w.skipped.clone().unwrap_or_else(|| {
                    if is_project {
                        format!(
                            "the budget was used by higher-ranked applications ({} fen left)",
                            format_fen(size - bucket_used)
                        )
                    } else {
                        "every seat went to higher-ranked applications".to_string()
                    }
                });
                w.reason = format!(
                    "rank {} of {} in {label}; not selected: {why}",
                    w.rank, w.rank_of
                );
            }
        }

        ordered_entries.extend(ranked.iter().copied());
        buckets_out.push(BucketResult {
            bucket,
            size,
            used: bucket_used,
            qualifying: rank_of,
            applications: i32::try_from(nominated.len()).unwrap_or(i32::MAX),
        });
        pools_out.extend(bucket_pools);
    }

    // Excluded entries last, by name.
    let mut excluded: Vec<usize> = (0..candidates.len())
        .filter(|&i| work[i].outcome == Some(Outcome::Excluded))
        .collect();
    excluded.sort_by(|&a, &b| candidates[a].application.cmp(&candidates[b].application));
    ordered_entries.extend(excluded);

    let mut totals = Totals {
        applications: i32::try_from(candidates.len()).unwrap_or(i32::MAX),
        budget_fen: match &program.kind {
            Kind::Project { budget_fen, .. } => (*budget_fen).max(0),
            Kind::Award { .. } => buckets
                .iter()
                .map(|&(_, seats, prize)| seats.saturating_mul(prize))
                .fold(0i64, i64::saturating_add),
        },
        ..Totals::default()
    };
    let entries: Vec<Entry> = ordered_entries
        .into_iter()
        .map(|i| {
            let c = &candidates[i];
            let w = &work[i];
            let outcome = w.outcome.unwrap_or(Outcome::NotSelected);
            match outcome {
                Outcome::Awarded | Outcome::Funded => {
                    totals.selected += 1;
                    totals.amount_fen += w.amount_fen;
                    if priority_fields.contains(&c.field) {
                        totals.priority_selected += 1;
                        totals.priority_amount_fen += w.amount_fen;
                    }
                }
                Outcome::NotSelected => totals.not_selected += 1,
                Outcome::Excluded => totals.excluded += 1,
            }
            Entry {
                application: c.application.clone(),
                enterprise: c.enterprise.clone(),
                achievement: c.achievement.clone(),
                field: c.field,
                bucket: c.bucket,
                requested_fen: c.requested_fen,
                score_millipoints: c.score.millipoints(),
                outcome,
                pool: w.pool.clone(),
                rank: w.rank,
                rank_of: w.rank_of,
                amount_fen: w.amount_fen,
                reason: w.reason.clone(),
            }
        })
        .collect();
    totals.budget_left_fen = (totals.budget_fen - totals.amount_fen).max(0);

    Allocation {
        entries,
        pools: pools_out,
        buckets: buckets_out,
        caps: caps
            .iter()
            .zip(cap_used)
            .map(|(c, used)| CapUsage {
                description: c.description.clone(),
                limit: c.limit,
                used,
            })
            .collect(),
        totals,
    }
}

/// Tries to give candidate `c` a seat or its money from a pool with `left` units. Returns the
/// units used (1 seat, or the fen funded) when granted; otherwise records why it was skipped.
#[allow(clippy::too_many_arguments)]
fn grant(
    w: &mut Working,
    c: &Candidate,
    bucket: BucketKey,
    is_project: bool,
    prize_fen: i64,
    per_project_cap: i64,
    left: &mut i64,
    caps: &[Cap],
    cap_used: &mut [i64],
    pool_id: &str,
    pool_words: &str,
) -> Option<i64> {
    let label = bucket.label();
    if is_project {
        let amount = if per_project_cap > 0 {
            c.requested_fen.min(per_project_cap)
        } else {
            c.requested_fen
        };
        if amount > *left {
            w.skipped = Some(format!(
                "its {} fen did not fit the {} fen left in {pool_words}",
                format_fen(amount),
                format_fen(*left)
            ));
            return None;
        }
        *left -= amount;
        w.outcome = Some(Outcome::Funded);
        w.amount_fen = amount;
        w.pool = Some(pool_id.to_string());
        let capped = if amount < c.requested_fen {
            format!(" (capped from {} fen)", format_fen(c.requested_fen))
        } else {
            String::new()
        };
        w.reason = format!(
            "rank {} of {}; funded {} fen{capped} from {pool_words}; {} fen left in it",
            w.rank,
            w.rank_of,
            format_fen(amount),
            format_fen(*left)
        );
        Some(amount)
    } else {
        if let Some(full) = caps
            .iter()
            .zip(cap_used.iter())
            .find(|(cap, used)| cap.covers(bucket) && **used >= cap.limit)
        {
            w.skipped = Some(format!("the cap \"{}\" was reached", full.0.description));
            return None;
        }
        for (cap, used) in caps.iter().zip(cap_used.iter_mut()) {
            if cap.covers(bucket) {
                *used += 1;
            }
        }
        *left -= 1;
        w.outcome = Some(Outcome::Awarded);
        w.amount_fen = prize_fen;
        w.pool = Some(pool_id.to_string());
        w.reason = format!(
            "rank {} of {} in {label}; awarded from {pool_words}; {} seat(s) left in it",
            w.rank, w.rank_of, *left
        );
        Some(1)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const IT: i32 = 1;
    const BIO: i32 = 2;
    const EQUIP: i32 = 3;
    const ENERGY: i32 = 4;

    fn cand(name: &str, field: i32, score: i64, requested: i64) -> Candidate {
        Candidate {
            application: format!("programs/p/applications/{name}"),
            enterprise: "enterprises/X".into(),
            achievement: format!("achievements/{name}"),
            field,
            bucket: BucketKey::BUDGET,
            requested_fen: requested,
            score: Score {
                sum: score,
                count: 1,
            },
            decided_at_us: 0,
            exclusion: None,
        }
    }

    fn project(budget: i64, priority: &[(i32, i64)]) -> Program {
        Program {
            kind: Kind::Project {
                budget_fen: budget,
                per_project_cap_fen: 0,
            },
            priority: priority
                .iter()
                .map(|&(field, basis_points)| PriorityShare {
                    field,
                    basis_points,
                })
                .collect(),
            threshold_millipoints: 60_000,
        }
    }

    fn outcome_of<'a>(a: &'a Allocation, name: &str) -> &'a Entry {
        a.entries
            .iter()
            .find(|e| e.application.ends_with(&format!("/{name}")))
            .unwrap()
    }

    #[test]
    fn a_priority_reserve_is_filled_from_its_own_field_before_the_open_pool() {
        // Budget 100, biomedicine reserve 20 %. The two best are energy; the biomedicine one
        // ranks third but is funded from its reserve.
        let program = project(100, &[(BIO, 2000)]);
        let cands = vec![
            cand("e1", ENERGY, 95, 40),
            cand("e2", ENERGY, 90, 40),
            cand("b1", BIO, 80, 20),
            cand("e3", ENERGY, 85, 20),
        ];
        let a = allocate(&program, &cands);
        assert_eq!(outcome_of(&a, "b1").outcome, Outcome::Funded);
        assert_eq!(
            outcome_of(&a, "b1").pool.as_deref(),
            Some("budget/BIOMEDICINE")
        );
        assert_eq!(outcome_of(&a, "e1").outcome, Outcome::Funded);
        assert_eq!(outcome_of(&a, "e2").outcome, Outcome::Funded);
        assert_eq!(outcome_of(&a, "e3").outcome, Outcome::NotSelected);
        assert!(
            outcome_of(&a, "e3").reason.contains("budget was used"),
            "{}",
            outcome_of(&a, "e3").reason
        );
        assert_eq!(a.totals.amount_fen, 100);
        assert_eq!(a.totals.priority_amount_fen, 20);
    }

    #[test]
    fn an_unfilled_reserve_returns_to_the_open_pool() {
        // No biomedicine application: its 30 % goes to the open pool.
        let program = project(100, &[(BIO, 3000)]);
        let cands = vec![cand("e1", ENERGY, 95, 60), cand("e2", ENERGY, 90, 40)];
        let a = allocate(&program, &cands);
        assert!(a.entries.iter().all(|e| e.outcome == Outcome::Funded));
        let bio = a.pools.iter().find(|p| p.field == Some(BIO)).unwrap();
        assert_eq!((bio.reserved, bio.used, bio.returned_to_open), (30, 0, 30));
        let open = a.pools.iter().find(|p| p.field.is_none()).unwrap();
        assert_eq!(
            (open.reserved, open.returned_to_open, open.used),
            (70, 30, 100)
        );
    }

    #[test]
    fn priority_applications_also_compete_in_the_open_pool() {
        let program = project(100, &[(IT, 1000)]);
        let cands = vec![
            cand("i1", IT, 99, 10),
            cand("i2", IT, 98, 50),
            cand("e1", ENERGY, 50, 50),
        ];
        let mut p = program.clone();
        p.threshold_millipoints = 0;
        let a = allocate(&p, &cands);
        assert_eq!(
            outcome_of(&a, "i1").pool.as_deref(),
            Some("budget/NEW_GENERATION_INFORMATION_TECHNOLOGY")
        );
        assert_eq!(outcome_of(&a, "i2").pool.as_deref(), Some("budget/open"));
        assert_eq!(outcome_of(&a, "e1").outcome, Outcome::NotSelected);
    }

    #[test]
    fn money_is_funded_strictly_down_the_ranking_skipping_what_does_not_fit() {
        let program = project(100, &[]);
        let cands = vec![
            cand("a", ENERGY, 95, 70),
            cand("b", ENERGY, 90, 40),
            cand("c", ENERGY, 85, 30),
        ];
        let a = allocate(&program, &cands);
        assert_eq!(outcome_of(&a, "a").outcome, Outcome::Funded);
        assert_eq!(outcome_of(&a, "b").outcome, Outcome::NotSelected);
        assert_eq!(outcome_of(&a, "c").outcome, Outcome::Funded);
        assert_eq!(a.totals.budget_left_fen, 0);
    }

    #[test]
    fn below_threshold_and_run_time_exclusions_never_qualify() {
        let program = project(1000, &[]);
        let mut vetoed = cand("v", ENERGY, 99, 10);
        vetoed.exclusion = Some("achievement vetoed since applying".into());
        let cands = vec![
            vetoed,
            cand("low", ENERGY, 59, 10),
            cand("ok", ENERGY, 60, 10),
        ];
        let a = allocate(&program, &cands);
        assert_eq!(outcome_of(&a, "v").outcome, Outcome::Excluded);
        assert!(outcome_of(&a, "v").reason.contains("vetoed"));
        assert_eq!(outcome_of(&a, "low").outcome, Outcome::Excluded);
        assert!(outcome_of(&a, "low").reason.contains("below the threshold"));
        assert_eq!(outcome_of(&a, "ok").outcome, Outcome::Funded);
        // Excluded entries come last, by name.
        let names: Vec<&str> = a.entries.iter().map(|e| e.application.as_str()).collect();
        assert_eq!(
            names,
            [
                "programs/p/applications/ok",
                "programs/p/applications/low",
                "programs/p/applications/v"
            ]
        );
    }

    #[test]
    fn ties_are_broken_by_decision_time_then_name() {
        let program = project(10, &[]);
        let mut a1 = cand("b-later", ENERGY, 80, 10);
        a1.decided_at_us = 2;
        let mut a2 = cand("c-earlier", ENERGY, 80, 10);
        a2.decided_at_us = 1;
        let mut a3 = cand("a-earlier", ENERGY, 80, 10);
        a3.decided_at_us = 1;
        let a = allocate(&program, &[a1, a2, a3]);
        assert_eq!(outcome_of(&a, "a-earlier").rank, 1);
        assert_eq!(outcome_of(&a, "c-earlier").rank, 2);
        assert_eq!(outcome_of(&a, "b-later").rank, 3);
        assert_eq!(outcome_of(&a, "a-earlier").outcome, Outcome::Funded);
    }

    #[test]
    fn scores_compare_exactly_not_by_rounded_millipoints() {
        // 200/3 = 66.6667 vs 66.666 (66666/1000): 200/3 is higher.
        let program = project(10, &[]);
        let mut x = cand("x", ENERGY, 0, 10);
        x.score = Score { sum: 200, count: 3 };
        let mut y = cand("y", ENERGY, 0, 10);
        y.score = Score {
            sum: 66_666,
            count: 1000,
        };
        let a = allocate(&program, &[y, x]);
        assert_eq!(outcome_of(&a, "x").rank, 1);
    }

    #[test]
    fn award_seats_respect_quotas_and_caps_across_buckets() {
        let first = |cat| BucketKey {
            category: cat,
            grade: 2,
        };
        let program = Program {
            kind: Kind::Award {
                quotas: vec![
                    Quota {
                        bucket: first(3),
                        seats: 2,
                        amount_fen: 30_000_000,
                    },
                    Quota {
                        bucket: first(4),
                        seats: 2,
                        amount_fen: 30_000_000,
                    },
                ],
                caps: vec![Cap {
                    description: "first prizes ≤ 3 a year".into(),
                    categories: vec![],
                    grades: vec![2],
                    limit: 3,
                }],
            },
            priority: vec![],
            threshold_millipoints: 0,
        };
        let mut cands = Vec::new();
        for (i, cat) in [3, 3, 3, 4, 4].into_iter().enumerate() {
            let mut c = cand(&format!("n{i}"), ENERGY, 90 - i as i64, 0);
            c.bucket = first(cat);
            cands.push(c);
        }
        let a = allocate(&program, &cands);
        let awarded = a
            .entries
            .iter()
            .filter(|e| e.outcome == Outcome::Awarded)
            .count();
        assert_eq!(awarded, 3);
        assert_eq!(a.caps[0].used, 3);
        let n4 = outcome_of(&a, "n4");
        assert_eq!(n4.outcome, Outcome::NotSelected);
        assert!(n4.reason.contains("cap"), "{}", n4.reason);
        assert_eq!(outcome_of(&a, "n0").amount_fen, 30_000_000);
    }

    #[test]
    fn design_story_priority_shares_split_an_award_bucket() {
        // 20 seats, IT 15 %, biomedicine 10 %, equipment 15 %: 3, 2, 3 reserved and 12 open.
        let bucket = BucketKey {
            category: 4,
            grade: 3,
        };
        let program = Program {
            kind: Kind::Award {
                quotas: vec![Quota {
                    bucket,
                    seats: 20,
                    amount_fen: 20_000_000,
                }],
                caps: vec![],
            },
            priority: vec![
                PriorityShare {
                    field: IT,
                    basis_points: 1500,
                },
                PriorityShare {
                    field: BIO,
                    basis_points: 1000,
                },
                PriorityShare {
                    field: EQUIP,
                    basis_points: 1500,
                },
            ],
            threshold_millipoints: 0,
        };
        let a = allocate(&program, &[]);
        let reserved: Vec<i64> = a.pools.iter().map(|p| p.reserved).collect();
        assert_eq!(reserved, [3, 2, 3, 12]);
        assert_eq!(
            a.pools[1].pool_id,
            "SCIENCE_TECHNOLOGY_PROGRESS/SECOND/BIOMEDICINE"
        );
    }

    fn arb_program_and_candidates() -> impl Strategy<Value = (Program, Vec<Candidate>)> {
        let award = (
            proptest::collection::vec((1i32..=6, 1i32..=5, 0i64..6, 0i64..1000), 1..5),
            proptest::collection::vec(
                (
                    proptest::option::of(1i32..=6),
                    proptest::option::of(1i32..=5),
                    0i64..8,
                ),
                0..3,
            ),
        )
            .prop_map(|(quotas, caps)| Kind::Award {
                quotas: quotas
                    .into_iter()
                    .map(|(c, g, seats, amount)| Quota {
                        bucket: BucketKey {
                            category: c,
                            grade: g,
                        },
                        seats,
                        amount_fen: amount,
                    })
                    .collect(),
                caps: caps
                    .into_iter()
                    .map(|(c, g, limit)| Cap {
                        description: "cap".into(),
                        categories: c.into_iter().collect(),
                        grades: g.into_iter().collect(),
                        limit,
                    })
                    .collect(),
            });
        let proj = (0i64..1_000_000, 0i64..300_000).prop_map(|(b, cap)| Kind::Project {
            budget_fen: b,
            per_project_cap_fen: cap,
        });
        (
            prop_oneof![award, proj],
            proptest::collection::vec((1i32..=10, 0i64..3000), 0..4),
            0i64..100_000,
            proptest::collection::vec(
                (
                    1i32..=10,
                    1i32..=6,
                    1i32..=5,
                    0i64..500_000,
                    0i64..400,
                    1i64..5,
                    0i64..5,
                    proptest::bool::weighted(0.1),
                ),
                0..60,
            ),
        )
            .prop_map(|(kind, prio, threshold, cands)| {
                let is_project = matches!(kind, Kind::Project { .. });
                let program = Program {
                    kind,
                    priority: prio
                        .into_iter()
                        .map(|(field, basis_points)| PriorityShare {
                            field,
                            basis_points,
                        })
                        .collect(),
                    threshold_millipoints: threshold,
                };
                let candidates = cands
                    .into_iter()
                    .enumerate()
                    .map(|(i, (field, c, g, req, sum, count, t, ex))| Candidate {
                        application: format!("programs/p/applications/a{i:03}"),
                        enterprise: "enterprises/X".into(),
                        achievement: format!("achievements/{i}"),
                        field,
                        bucket: if is_project {
                            BucketKey::BUDGET
                        } else {
                            BucketKey {
                                category: c,
                                grade: g,
                            }
                        },
                        requested_fen: req,
                        score: Score {
                            sum: sum * count / 4,
                            count,
                        },
                        decided_at_us: t,
                        exclusion: ex.then(|| "vetoed".to_string()),
                    })
                    .collect();
                (program, candidates)
            })
    }

    proptest! {
        #[test]
        fn quotas_caps_and_budget_are_never_exceeded_and_every_application_gets_one_outcome(
            (program, candidates) in arb_program_and_candidates()
        ) {
            let a = allocate(&program, &candidates);
            prop_assert_eq!(a.entries.len(), candidates.len());
            let names: BTreeSet<&str> = a.entries.iter().map(|e| e.application.as_str()).collect();
            prop_assert_eq!(names.len(), candidates.len());
            for b in &a.buckets {
                prop_assert!(b.used <= b.size, "bucket {:?} used {} of {}", b.bucket, b.used, b.size);
            }
            for c in &a.caps {
                prop_assert!(c.used <= c.limit.max(0));
            }
            match &program.kind {
                Kind::Project { budget_fen, per_project_cap_fen } => {
                    prop_assert!(a.totals.amount_fen <= (*budget_fen).max(0));
                    for e in &a.entries {
                        if *per_project_cap_fen > 0 {
                            prop_assert!(e.amount_fen <= *per_project_cap_fen);
                        }
                        prop_assert!(e.amount_fen <= e.requested_fen.max(0));
                    }
                }
                Kind::Award { quotas, .. } => {
                    for q in quotas {
                        let n = a.entries.iter().filter(|e| e.bucket == q.bucket && e.outcome == Outcome::Awarded).count() as i64;
                        prop_assert!(n <= q.seats.max(0));
                    }
                }
            }
            for e in &a.entries {
                prop_assert!(!e.reason.is_empty());
                let selected = matches!(e.outcome, Outcome::Awarded | Outcome::Funded);
                prop_assert_eq!(selected, e.pool.is_some());
                if e.outcome == Outcome::Excluded { prop_assert_eq!(e.rank, 0); }
            }
            for p in &a.pools {
                let capacity = p.reserved + if p.field.is_none() { p.returned_to_open } else { 0 };
                prop_assert!(p.used <= capacity, "pool {} used {} of {}", p.pool_id, p.used, capacity);
            }
        }

        #[test]
        fn the_same_input_gives_the_same_allocation((program, candidates) in arb_program_and_candidates()) {
            let first = allocate(&program, &candidates);
            let mut shuffled = candidates.clone();
            shuffled.reverse();
            let second = allocate(&program, &shuffled);
            prop_assert_eq!(&first, &allocate(&program, &candidates));
            // Input order does not matter either.
            prop_assert_eq!(first, second);
        }
    }
}
