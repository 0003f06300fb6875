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
mod tests;
