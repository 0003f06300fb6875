//! Allocation results (a stored revision or a preview) as the contract shows them.

use qilu_common::time::to_timestamp;
use qilu_proto::awards as pb;

use crate::domain::allocation::{self as alloc, BucketKey, Outcome};
use crate::domain::run::Run;

fn outcome_to_proto(o: Outcome) -> i32 {
    crate::domain::application::outcome_code(o)
}

fn pool_kind(field: Option<i32>) -> i32 {
    match field {
        Some(_) => pb::PoolKind::Priority as i32,
        None => pb::PoolKind::Open as i32,
    }
}

fn bucket_parts(b: BucketKey) -> (i32, i32) {
    (b.category, b.grade)
}

/// An allocation result (stored run or preview) as the contract shows it.
pub fn allocation_to_proto(run: &Run, validate_only: bool) -> pb::Allocation {
    let program = format!("programs/{}", run.program_id);
    let r = &run.result;
    pb::Allocation {
        name: if validate_only {
            String::new()
        } else {
            format!("{program}/allocation")
        },
        program,
        validate_only,
        revision: run.revision,
        revised_by_objection: run.revised_by_objection.clone().unwrap_or_default(),
        entries: r
            .entries
            .iter()
            .map(|e| {
                let (category, grade) = bucket_parts(e.bucket);
                pb::AllocationEntry {
                    application: e.application.clone(),
                    enterprise: e.enterprise.clone(),
                    achievement: e.achievement.clone(),
                    industry_field: e.field,
                    category,
                    grade,
                    requested_amount_fen: e.requested_fen,
                    score_millipoints: e.score_millipoints,
                    outcome: outcome_to_proto(e.outcome),
                    pool: e.pool.clone().unwrap_or_default(),
                    rank: e.rank,
                    rank_of: e.rank_of,
                    amount_fen: e.amount_fen,
                    reason: e.reason.clone(),
                }
            })
            .collect(),
        pools: r
            .pools
            .iter()
            .map(|p| {
                let (category, grade) = bucket_parts(p.bucket);
                pb::PoolResult {
                    pool_id: p.pool_id.clone(),
                    category,
                    grade,
                    kind: pool_kind(p.field),
                    field: p.field.unwrap_or(0),
                    share_basis_points: i32::try_from(p.share_basis_points).unwrap_or(0),
                    bucket_size: p.bucket_size,
                    whole_part: p.whole_part,
                    remainder: p.remainder,
                    received_extra_unit: p.extra_unit,
                    reserved: p.reserved,
                    used: p.used,
                    returned_to_open: p.returned_to_open,
                    candidates: p.candidates,
                }
            })
            .collect(),
        buckets: r
            .buckets
            .iter()
            .map(|b| {
                let (category, grade) = bucket_parts(b.bucket);
                pb::BucketResult {
                    category,
                    grade,
                    size: b.size,
                    used: b.used,
                    qualifying: b.qualifying,
                    applications: b.applications,
                }
            })
            .collect(),
        caps: r
            .caps
            .iter()
            .map(|c| pb::CapUsage {
                description: c.description.clone(),
                limit: i32::try_from(c.limit).unwrap_or(i32::MAX),
                used: i32::try_from(c.used).unwrap_or(i32::MAX),
            })
            .collect(),
        totals: Some(pb::AllocationTotals {
            applications: r.totals.applications,
            selected: r.totals.selected,
            not_selected: r.totals.not_selected,
            excluded: r.totals.excluded,
            amount_fen: r.totals.amount_fen,
            budget_fen: r.totals.budget_fen,
            budget_left_fen: r.totals.budget_left_fen,
            priority_amount_fen: r.totals.priority_amount_fen,
            priority_selected: r.totals.priority_selected,
        }),
        ranking_rule: alloc::RANKING_RULE.to_string(),
        input_digest: run.input_digest.clone(),
        run_by: run.run_by.clone(),
        run_time: Some(to_timestamp(run.run_time_us)),
    }
}
