//! Allocation results (a stored revision or a preview) as the contract shows them.

use qilu_common::ApiError;
use qilu_common::filter::{Filter, FilterField, Kind as FilterKind, Value};
use qilu_common::time::to_timestamp;
use qilu_proto::awards as pb;

use super::application::{application_outcome, award_category, award_grade, industry_field};
use crate::domain::allocation::{self as alloc, BucketKey, Outcome};
use crate::domain::run::{Label, Run};
use crate::store::run::EntryFilter;

/// Most entries a response carries inline (the FULL view): about 280 bytes each, so 10,000 stay
/// well under gRPC's default 4 MiB message limit.
pub const MAX_INLINE_ENTRIES: i32 = 10_000;

/// One entry as the contract shows it.
pub fn entry_to_proto(e: &alloc::Entry, label: &Label) -> pb::AllocationEntry {
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
        enterprise_display_name: label.enterprise_display_name.clone(),
        achievement_title: label.achievement_title.clone(),
    }
}

/// What published results leave out for readers who are not programme staff: review scores and
/// requested amounts (not among what the rules publish) and who ran the allocation.
pub fn redact_published(a: &mut pb::Allocation) {
    a.run_by = String::new();
    for e in &mut a.entries {
        redact_entry(e);
    }
}

/// [`redact_published`] for one entry.
pub fn redact_entry(e: &mut pb::AllocationEntry) {
    e.score_millipoints = 0;
    e.requested_amount_fen = 0;
}

/// The view a read renders: FULL up to [`MAX_INLINE_ENTRIES`] unless BASIC was asked; FULL
/// asked above it is refused.
pub fn effective_view(asked: i32, entry_count: i32) -> Result<pb::AllocationView, ApiError> {
    match pb::AllocationView::try_from(asked) {
        Ok(pb::AllocationView::Unspecified) if entry_count <= MAX_INLINE_ENTRIES => {
            Ok(pb::AllocationView::Full)
        }
        Ok(pb::AllocationView::Unspecified | pb::AllocationView::Basic) => {
            Ok(pb::AllocationView::Basic)
        }
        Ok(pb::AllocationView::Full) if entry_count <= MAX_INLINE_ENTRIES => {
            Ok(pb::AllocationView::Full)
        }
        Ok(pb::AllocationView::Full) => Err(ApiError::FailedPrecondition {
            message: format!(
                "the allocation has {entry_count} entries; the FULL view carries at most {MAX_INLINE_ENTRIES}: page through ListAllocationEntries"
            ),
            violations: vec![qilu_common::error::Precondition {
                kind: "ALLOCATION_TOO_LARGE".into(),
                subject: "view".into(),
                description: format!("more than {MAX_INLINE_ENTRIES} entries"),
            }],
        }),
        Err(_) => Err(ApiError::invalid(
            "view",
            "UNKNOWN",
            format!("{asked} is not an AllocationView"),
        )),
    }
}

const ENTRY_FILTER: &[FilterField] = &[
    FilterField::eq(
        "outcome",
        FilterKind::Enum {
            type_name: "ApplicationOutcome",
            from_name: application_outcome,
        },
    ),
    FilterField::eq(
        "category",
        FilterKind::Enum {
            type_name: "AwardCategory",
            from_name: award_category,
        },
    ),
    FilterField::eq(
        "grade",
        FilterKind::Enum {
            type_name: "AwardGrade",
            from_name: award_grade,
        },
    ),
    FilterField::eq(
        "industry_field",
        FilterKind::Enum {
            type_name: "IndustryField",
            from_name: industry_field,
        },
    ),
    FilterField::eq("pool", FilterKind::Text),
];

/// The `filter` of `ListAllocationEntries`.
pub fn entry_filter(raw: &str) -> Result<EntryFilter, ApiError> {
    let mut out = EntryFilter::default();
    for term in Filter::typed(raw, ENTRY_FILTER)? {
        match (term.field, term.value) {
            ("outcome", Value::Enum(n)) => out.outcome = Some(n),
            ("category", Value::Enum(n)) => out.category = Some(n),
            ("grade", Value::Enum(n)) => out.grade = Some(n),
            ("industry_field", Value::Enum(n)) => out.industry_field = Some(n),
            ("pool", Value::Text(v)) => out.pool = Some(v),
            _ => {}
        }
    }
    Ok(out)
}

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

/// An allocation result (stored run or preview) as the contract shows it, in `view` (BASIC or
/// FULL; FULL needs the run's entries loaded).
pub fn allocation_to_proto(
    run: &Run,
    validate_only: bool,
    view: pb::AllocationView,
) -> pb::Allocation {
    let program = format!("programs/{}", run.program_id);
    let r = &run.result;
    let full = view == pb::AllocationView::Full;
    let no_label = Label::default();
    pb::Allocation {
        name: if validate_only {
            String::new()
        } else {
            format!("{program}/allocation")
        },
        revision_name: if validate_only {
            String::new()
        } else {
            format!("{program}/allocation@{}", run.revision)
        },
        program,
        validate_only,
        revision: run.revision,
        revised_by_objection: run.revised_by_objection.clone().unwrap_or_default(),
        entries: if full {
            r.entries
                .iter()
                .map(|e| entry_to_proto(e, run.labels.get(&e.application).unwrap_or(&no_label)))
                .collect()
        } else {
            Vec::new()
        },
        entry_count: r.totals.applications,
        view: if full {
            pb::AllocationView::Full as i32
        } else {
            pb::AllocationView::Basic as i32
        },
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
