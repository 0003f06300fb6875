//! Proto ⇄ domain for the awards service: request parsing (field violations with their full
//! paths, e.g. `program.award_quotas[0].quota`) and responses (with the visibility rules of the
//! contract applied by the caller-aware helpers).

use chrono::NaiveDate;
use qilu_common::time::to_timestamp;
use qilu_common::{ApiError, FieldViolation};
use qilu_proto::awards as pb;

use crate::domain::allocation::{self as alloc, BucketKey, Outcome};
use crate::domain::application::{AppState, Application, Objection, ObjectionState};
use crate::domain::program::{
    AwardQuota, DEFAULT_OBJECTION_WINDOW_DAYS, Deadlines, PriorityField, Program, QuotaCap,
    Settings, State, valid_program_id,
};
use crate::domain::run::Run;

/// Resource type of programs.
pub const PROGRAM_TYPE: &str = "awards.qilu.gov.cn/Program";
/// Resource type of applications.
pub const APPLICATION_TYPE: &str = "awards.qilu.gov.cn/Application";
/// Resource type of allocations.
pub const ALLOCATION_TYPE: &str = "awards.qilu.gov.cn/Allocation";
/// Resource type of objections.
pub const OBJECTION_TYPE: &str = "awards.qilu.gov.cn/Objection";

fn ids_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `programs/{id}` → id.
pub fn parse_program_name(name: &str, field: &str) -> Result<String, ApiError> {
    match name.strip_prefix("programs/") {
        Some(id) if valid_program_id(id) => Ok(id.to_string()),
        _ => Err(ApiError::invalid(
            field,
            "INVALID_NAME",
            format!(
                "{} is not a program name (programs/{{program}})",
                qilu_common::limits::echo(name)
            ),
        )),
    }
}

/// `programs/{p}/{collection}/{id}` → (p, id).
pub fn parse_child_name(
    name: &str,
    collection: &str,
    field: &str,
) -> Result<(String, String), ApiError> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["programs", p, c, id] if *c == collection && valid_program_id(p) && ids_ok(id) => {
            Ok((p.to_string(), id.to_string()))
        }
        _ => Err(ApiError::invalid(
            field,
            "INVALID_NAME",
            format!(
                "{} is not a name of the form programs/{{program}}/{collection}/{{id}}",
                qilu_common::limits::echo(name)
            ),
        )),
    }
}

/// `programs/{p}/allocation` → p.
pub fn parse_allocation_name(name: &str, field: &str) -> Result<String, ApiError> {
    match name
        .strip_prefix("programs/")
        .and_then(|r| r.strip_suffix("/allocation"))
    {
        Some(id) if valid_program_id(id) => Ok(id.to_string()),
        _ => Err(ApiError::invalid(
            field,
            "INVALID_NAME",
            format!(
                "{} is not an allocation name (programs/{{program}}/allocation)",
                qilu_common::limits::echo(name)
            ),
        )),
    }
}

/// `enterprises/{uscc}` → uscc (shape only; the registry judges the code).
pub fn parse_enterprise_ref(name: &str, field: &str) -> Result<String, ApiError> {
    match name.strip_prefix("enterprises/") {
        Some(u) if u.len() == 18 && u.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Ok(u.to_string())
        }
        _ => Err(ApiError::invalid(
            field,
            "INVALID_NAME",
            format!(
                "{} is not an enterprise name (enterprises/{{uscc}})",
                qilu_common::limits::echo(name)
            ),
        )),
    }
}

/// `achievements/{id}` → id.
pub fn parse_achievement_ref(name: &str, field: &str) -> Result<String, ApiError> {
    match name.strip_prefix("achievements/") {
        Some(id) if ids_ok(id) => Ok(id.to_string()),
        _ => Err(ApiError::invalid(
            field,
            "INVALID_NAME",
            format!(
                "{} is not an achievement name (achievements/{{id}})",
                qilu_common::limits::echo(name)
            ),
        )),
    }
}

fn parse_date(raw: &str, field: &str, v: &mut Vec<FieldViolation>) -> Option<NaiveDate> {
    if raw.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) if d.format("%Y-%m-%d").to_string() == raw => Some(d),
        _ => {
            v.push(FieldViolation::new(
                field,
                "INVALID_DATE",
                format!(
                    "{} is not an ISO date YYYY-MM-DD",
                    qilu_common::limits::echo(raw)
                ),
            ));
            None
        }
    }
}

/// The settings in a proto program. Date syntax errors are reported with `prefix`; the domain
/// rules are checked by `domain::program::validate`.
pub fn settings_from_proto(p: &pb::Program, prefix: &str) -> Result<Settings, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let d = p.deadlines.clone().unwrap_or_default();
    let deadlines = Deadlines {
        application_start_date: parse_date(
            &d.application_start_date,
            &format!("{prefix}.deadlines.application_start_date"),
            &mut v,
        ),
        application_deadline: parse_date(
            &d.application_deadline,
            &format!("{prefix}.deadlines.application_deadline"),
            &mut v,
        ),
        allocation_due_date: parse_date(
            &d.allocation_due_date,
            &format!("{prefix}.deadlines.allocation_due_date"),
            &mut v,
        ),
        publication_due_date: parse_date(
            &d.publication_due_date,
            &format!("{prefix}.deadlines.publication_due_date"),
            &mut v,
        ),
        final_due_date: parse_date(
            &d.final_due_date,
            &format!("{prefix}.deadlines.final_due_date"),
            &mut v,
        ),
    };
    if !v.is_empty() {
        return Err(v);
    }
    Ok(Settings {
        display_name: p.display_name.trim().to_string(),
        year: p.year,
        description: p.description.clone(),
        award_quotas: p
            .award_quotas
            .iter()
            .map(|q| AwardQuota {
                category: q.category,
                grade: q.grade,
                quota: q.quota,
                amount_fen: q.amount_fen,
            })
            .collect(),
        quota_caps: p
            .quota_caps
            .iter()
            .map(|c| QuotaCap {
                description: c.description.clone(),
                categories: c.categories.clone(),
                grades: c.grades.clone(),
                limit: c.limit,
            })
            .collect(),
        budget_fen: p.budget_fen,
        per_project_cap_fen: p.per_project_cap_fen,
        priority_fields: p
            .priority_fields
            .iter()
            .map(|f| PriorityField {
                field: f.field,
                basis_points: f.target_share_basis_points,
            })
            .collect(),
        score_threshold_millipoints: p.score_threshold_millipoints,
        requires_high_tech_certification: p.requires_high_tech_certification,
        deadlines,
        objection_window_days: if p.objection_window_days == 0 {
            DEFAULT_OBJECTION_WINDOW_DAYS
        } else {
            p.objection_window_days
        },
    })
}

fn date_str(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A program as the contract shows it.
pub fn program_to_proto(p: &Program) -> pb::Program {
    let s = &p.settings;
    pb::Program {
        name: p.name(),
        display_name: s.display_name.clone(),
        kind: p.kind.code(),
        year: s.year,
        description: s.description.clone(),
        award_quotas: s
            .award_quotas
            .iter()
            .map(|q| pb::AwardQuota {
                category: q.category,
                grade: q.grade,
                quota: q.quota,
                amount_fen: q.amount_fen,
            })
            .collect(),
        quota_caps: s
            .quota_caps
            .iter()
            .map(|c| pb::QuotaCap {
                description: c.description.clone(),
                categories: c.categories.clone(),
                grades: c.grades.clone(),
                limit: c.limit,
            })
            .collect(),
        budget_fen: s.budget_fen,
        per_project_cap_fen: s.per_project_cap_fen,
        priority_fields: s
            .priority_fields
            .iter()
            .map(|f| pb::PriorityFieldShare {
                field: f.field,
                target_share_basis_points: f.basis_points,
            })
            .collect(),
        score_threshold_millipoints: s.score_threshold_millipoints,
        requires_high_tech_certification: s.requires_high_tech_certification,
        deadlines: Some(pb::StageDeadlines {
            application_start_date: date_str(s.deadlines.application_start_date),
            application_deadline: date_str(s.deadlines.application_deadline),
            allocation_due_date: date_str(s.deadlines.allocation_due_date),
            publication_due_date: date_str(s.deadlines.publication_due_date),
            final_due_date: date_str(s.deadlines.final_due_date),
        }),
        objection_window_days: s.objection_window_days,
        state: p.state.code(),
        allocation: if p.allocation_revision > 0 {
            format!("{}/allocation", p.name())
        } else {
            String::new()
        },
        publish_time: p.publish_time_us.map(to_timestamp),
        objection_window_end_time: p.objection_window_end_us.map(to_timestamp),
        finalize_time: p.finalize_time_us.map(to_timestamp),
        create_time: Some(to_timestamp(p.create_time_us)),
        update_time: Some(to_timestamp(p.update_time_us)),
        etag: p.etag(),
    }
}

/// An application; outcome fields only when `show_outcome` (hidden from enterprise tokens until
/// the results are published).
pub fn application_to_proto(a: &Application, show_outcome: bool) -> pb::Application {
    let mut out = pb::Application {
        name: a.name(),
        enterprise: format!("enterprises/{}", a.uscc),
        achievement: format!("achievements/{}", a.achievement_id),
        category: a.category,
        grade: a.grade,
        industry_field: a.industry_field,
        title: a.title.clone(),
        requested_amount_fen: a.requested_amount_fen,
        state: a.state.code(),
        score_millipoints: a.score_millipoints,
        outcome: a.outcome,
        outcome_reason: a.outcome_reason.clone(),
        rank: a.rank,
        amount_fen: a.amount_fen,
        withdraw_reason: a.withdraw_reason.clone(),
        create_time: Some(to_timestamp(a.create_time_us)),
        update_time: Some(to_timestamp(a.update_time_us)),
        etag: a.etag(),
    };
    if !show_outcome {
        out.outcome = 0;
        out.outcome_reason.clear();
        out.rank = 0;
        out.amount_fen = 0;
    }
    if a.state == AppState::Withdrawn {
        out.state = AppState::Withdrawn.code();
    }
    out
}

/// An objection; identity fields only when `show_identity`.
pub fn objection_to_proto(o: &Objection, show_identity: bool) -> pb::Objection {
    pb::Objection {
        name: o.name(),
        application: format!(
            "programs/{}/applications/{}",
            o.program_id, o.application_id
        ),
        grounds: o.grounds.clone(),
        evidence: o.evidence.clone(),
        objector: if show_identity {
            o.objector.clone()
        } else {
            String::new()
        },
        objector_name: if show_identity {
            o.objector_name.clone()
        } else {
            String::new()
        },
        objector_contact: if show_identity {
            o.objector_contact.clone()
        } else {
            String::new()
        },
        state: match o.state {
            ObjectionState::Open => pb::ObjectionState::Open as i32,
            ObjectionState::Resolved => pb::ObjectionState::Resolved as i32,
        },
        resolution: o.resolution,
        remedy: o.remedy,
        resolution_reason: o.resolution_reason.clone(),
        resolved_by: o.resolved_by.clone(),
        resolve_time: o.resolve_time_us.map(to_timestamp),
        allocation_revision: o.allocation_revision,
        create_time: Some(to_timestamp(o.create_time_us)),
        update_time: Some(to_timestamp(o.update_time_us)),
        etag: o.etag(),
    }
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

/// Whether a program in `state` has published results (outcomes visible to applicants).
pub fn published(state: State) -> bool {
    matches!(state, State::Publicized | State::Final)
}
