//! Applications: create (own enterprise only; admin on its behalf) after checking the registry
//! and the review service over gRPC — before any write, so a peer that is down leaves nothing
//! written — then get, list and withdraw. Outcomes are hidden from enterprise tokens until the
//! results are published.

use std::collections::HashMap;

use qilu_common::filter::{Filter, Op};
use qilu_common::idempotency;
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, FieldViolation, db::is_unique_violation};
use qilu_proto::awards as pb;
use qilu_proto::registry as rpb;
use qilu_proto::review as vpb;

use super::programs::visible_program;
use super::{AwardsApi, new_id};
use crate::convert::{
    APPLICATION_TYPE, application_to_proto, parse_achievement_ref, parse_child_name,
    parse_enterprise_ref, parse_program_name, published,
};
use crate::domain::application::{AppState, Application};
use crate::domain::program::{self, Kind, Program, State};
use crate::store::{application as store, program as program_store};

/// Longest withdrawal reason.
const MAX_REASON_CHARS: usize = 2000;

pub(super) fn not_found(name: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: APPLICATION_TYPE,
        name: name.to_string(),
    }
}

/// An enterprise-scoped caller may act only for its own enterprise.
fn check_own(ctx: &CallContext, uscc: &str) -> Result<(), ApiError> {
    match ctx.enterprise_scope() {
        Some(own) if own != uscc => Err(ApiError::PermissionDenied(
            "an enterprise token may act only for its own enterprise".into(),
        )),
        _ => Ok(()),
    }
}

/// Whether the caller sees the outcome of applications of a program in `state`.
fn shows_outcome(ctx: &CallContext, state: State) -> bool {
    ctx.caller.is_staff() || published(state)
}

/// Why the registry's facts disqualify an enterprise for `program`, if they do.
pub(super) fn enterprise_problem(
    e: &rpb::Enterprise,
    program: &Program,
) -> Option<(&'static str, String)> {
    let name = format!("enterprises/{}", e.uscc);
    if e.state != rpb::EnterpriseState::Active as i32 {
        let state = rpb::EnterpriseState::try_from(e.state)
            .map(|s| s.as_str_name())
            .unwrap_or("in an unknown state");
        return Some((
            "ENTERPRISE_NOT_ACTIVE",
            format!("{name} is {state} in the registry; only an ACTIVE enterprise may apply"),
        ));
    }
    if program.settings.requires_high_tech_certification && !e.high_tech_certified {
        return Some((
            "ENTERPRISE_NOT_CERTIFIED",
            format!(
                "{name} holds no valid high-tech certificate, which {} requires",
                program.name()
            ),
        ));
    }
    None
}

/// Why the review service's facts disqualify an achievement for `uscc`, if they do.
pub(super) fn achievement_problem(
    s: Option<&vpb::AchievementStatus>,
    achievement: &str,
    uscc: &str,
) -> Option<(&'static str, String)> {
    let Some(s) = s.filter(|s| s.found) else {
        return Some((
            "ACHIEVEMENT_NOT_FOUND",
            format!("{achievement} does not exist in the review service"),
        ));
    };
    let owner = format!("enterprises/{uscc}");
    if s.owner != owner {
        return Some((
            "ACHIEVEMENT_NOT_OWNED",
            format!("{achievement} does not belong to {owner}"),
        ));
    }
    if s.vetoed || s.state == vpb::AchievementState::Vetoed as i32 {
        return Some((
            "ACHIEVEMENT_VETOED",
            format!(
                "{achievement} is vetoed (one-vote veto: energy-intensive or highly polluting)"
            ),
        ));
    }
    if s.state != vpb::AchievementState::Approved as i32 {
        let state = vpb::AchievementState::try_from(s.state)
            .map(|s| s.as_str_name())
            .unwrap_or("in an unknown state");
        return Some((
            "ACHIEVEMENT_NOT_APPROVED",
            format!("{achievement} is {state}; only an APPROVED achievement may apply"),
        ));
    }
    None
}

fn check_nomination(p: &Program, a: &pb::Application) -> Vec<FieldViolation> {
    let mut v = Vec::new();
    match p.kind {
        Kind::Award => {
            if a.category == 0 || a.grade == 0 {
                v.push(FieldViolation::new(
                    "application.category",
                    "REQUIRED",
                    "an AWARD application nominates a category and a grade",
                ));
            } else if !p.has_bucket(a.category, a.grade) {
                v.push(FieldViolation::new(
                    "application.grade",
                    "UNKNOWN_BUCKET",
                    format!(
                        "{} has no quota for {} / {}; nominate a listed (category, grade) pair",
                        p.name(),
                        pb::AwardCategory::try_from(a.category)
                            .map(|c| c.as_str_name())
                            .unwrap_or("?"),
                        pb::AwardGrade::try_from(a.grade)
                            .map(|g| g.as_str_name())
                            .unwrap_or("?")
                    ),
                ));
            }
            if a.requested_amount_fen != 0 {
                v.push(FieldViolation::new(
                    "application.requested_amount_fen",
                    "PROJECT_ONLY",
                    "requested_amount_fen applies to PROJECT programs only",
                ));
            }
        }
        Kind::Project => {
            if a.category != 0 || a.grade != 0 {
                v.push(FieldViolation::new(
                    "application.category",
                    "AWARD_ONLY",
                    "category and grade apply to AWARD programs only",
                ));
            }
            let cap = p.settings.per_project_cap_fen;
            if a.requested_amount_fen <= 0 {
                v.push(FieldViolation::new(
                    "application.requested_amount_fen",
                    "NOT_POSITIVE",
                    "requested_amount_fen must be positive",
                ));
            } else if cap > 0 && a.requested_amount_fen > cap {
                v.push(FieldViolation::new(
                    "application.requested_amount_fen",
                    "ABOVE_CAP",
                    format!("at most the per-project cap of {cap} fen"),
                ));
            } else if a.requested_amount_fen > p.settings.budget_fen {
                v.push(FieldViolation::new(
                    "application.requested_amount_fen",
                    "ABOVE_BUDGET",
                    format!("at most the budget of {} fen", p.settings.budget_fen),
                ));
            }
        }
    }
    v
}

/// OPEN and within the application window (programme time zone), or why not.
fn check_accepting(api: &AwardsApi, p: &Program) -> Result<(), ApiError> {
    if p.state != State::Open {
        return Err(ApiError::precondition(
            "PROGRAM_NOT_OPEN",
            p.name(),
            format!(
                "{} is {}; applications are accepted only while it is OPEN",
                p.name(),
                p.state.as_str()
            ),
        ));
    }
    if let Some(why) = program::outside_application_window(&p.settings.deadlines, api.today()) {
        return Err(ApiError::precondition(
            "OUTSIDE_APPLICATION_WINDOW",
            p.name(),
            format!("{}: {why} (programme time zone)", p.name()),
        ));
    }
    Ok(())
}

pub(super) async fn create_application(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::CreateApplicationRequest,
) -> Result<pb::Application, ApiError> {
    let program_id = parse_program_name(&req.parent, "parent")?;
    let Some(input) = req.application.as_ref() else {
        return Err(ApiError::invalid(
            "application",
            "REQUIRED",
            "application is required",
        ));
    };
    let mut violations = Vec::new();
    let uscc = parse_enterprise_ref(&input.enterprise, "application.enterprise")
        .map_err(|e| {
            if let ApiError::InvalidArgument(v) = e {
                violations.extend(v);
            }
        })
        .ok();
    let achievement_id = parse_achievement_ref(&input.achievement, "application.achievement")
        .map_err(|e| {
            if let ApiError::InvalidArgument(v) = e {
                violations.extend(v);
            }
        })
        .ok();
    let (Some(uscc), Some(achievement_id)) = (uscc, achievement_id) else {
        return Err(ApiError::InvalidArgument(violations));
    };
    check_own(ctx, &uscc)?;
    let program = visible_program(api, ctx, &program_id).await?;
    // A retry of a completed create replays without the peers (which may be down now) and
    // whatever the program's stage is by now.
    if let Some(previous) =
        idempotency::previous::<pb::Application>(&api.db, ctx, &req.request_id, &req).await?
    {
        return Ok(previous);
    }
    let nomination = check_nomination(&program, input);
    if !nomination.is_empty() {
        return Err(ApiError::InvalidArgument(nomination));
    }
    check_accepting(api, &program)?;

    // The peers, before any write: registry, then review.
    let enterprise = api.enterprise(ctx, &uscc).await?;
    if let Some((kind, why)) = enterprise_problem(&enterprise, &program) {
        return Err(ApiError::precondition(
            kind,
            format!("enterprises/{uscc}"),
            why,
        ));
    }
    let achievement = format!("achievements/{achievement_id}");
    let statuses = api
        .achievement_statuses(ctx, std::slice::from_ref(&achievement_id))
        .await?;
    let status = statuses.get(&achievement_id);
    if let Some((kind, why)) = achievement_problem(status, &achievement, &uscc) {
        return Err(ApiError::precondition(kind, achievement, why));
    }
    let status = status.cloned().unwrap_or_default();

    let mut tx =
        match WriteTx::begin::<pb::Application>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    // The program may have closed while the peers were asked.
    let program = api.load_program(tx.conn(), &program_id).await?;
    check_accepting(api, &program)?;
    let existing = store::list(
        tx.conn(),
        &store::ListFilter {
            program_id: Some(program_id.clone()),
            achievement_id: Some(achievement_id.clone()),
            ..Default::default()
        },
        store::Order::CreateTime,
        None,
        1,
    )
    .await?;
    if let Some(first) = existing.first() {
        return Err(ApiError::AlreadyExists {
            resource_type: APPLICATION_TYPE,
            name: first.name(),
        });
    }
    let now = tx.now_us();
    let a = Application {
        program_id: program_id.clone(),
        id: new_id(),
        uscc,
        achievement_id,
        category: input.category,
        grade: input.grade,
        industry_field: status.industry_field,
        title: status.title.clone(),
        requested_amount_fen: input.requested_amount_fen,
        state: AppState::Active,
        score_millipoints: 0,
        outcome: 0,
        outcome_reason: String::new(),
        rank: 0,
        amount_fen: 0,
        withdraw_reason: String::new(),
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    if let Err(e) = store::insert(tx.conn(), &a).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: APPLICATION_TYPE,
                name: format!("{} for {}", program.name(), achievement),
            }
        } else {
            e.into()
        });
    }
    let response = application_to_proto(&a, shows_outcome(ctx, program.state));
    tx.record(&a.name(), &a)?;
    tx.commit(&response).await?;
    tracing::info!(application = %a.name(), "application filed");
    Ok(response)
}

/// An application the caller may see, with its program.
async fn visible_application(
    api: &AwardsApi,
    ctx: &CallContext,
    name: &str,
) -> Result<(Application, Program), ApiError> {
    let (program_id, id) = parse_child_name(name, "applications", "name")?;
    let a = store::get(&api.db, &program_id, &id)
        .await?
        .ok_or_else(|| not_found(name))?;
    check_own(ctx, &a.uscc)?;
    let p = api.load_program(&api.db, &program_id).await?;
    Ok((a, p))
}

pub(super) async fn get_application(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::GetApplicationRequest,
) -> Result<pb::Application, ApiError> {
    let (a, p) = visible_application(api, ctx, &req.name).await?;
    Ok(application_to_proto(&a, shows_outcome(ctx, p.state)))
}

fn parse_list_filter(raw: &str) -> Result<store::ListFilter, ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&[
        "enterprise",
        "achievement",
        "industry_field",
        "category",
        "grade",
        "state",
        "outcome",
    ])?;
    let mut out = store::ListFilter::default();
    let bad = |field: &str, why: String| {
        ApiError::invalid("filter", "INVALID_FILTER", format!("{field}: {why}"))
    };
    for c in filter.conditions() {
        if c.op != Op::Eq {
            return Err(bad(&c.field, "supports only =".into()));
        }
        let v = c.value.as_str();
        let field = c.field.as_str();
        let enum_value = |value: Option<i32>, what: &str| {
            value
                .filter(|n| *n != 0)
                .ok_or_else(|| bad(field, format!("{v:?} is not an {what}")))
        };
        match field {
            "enterprise" => out.uscc = Some(parse_enterprise_ref(v, "filter")?),
            "achievement" => out.achievement_id = Some(parse_achievement_ref(v, "filter")?),
            "industry_field" => {
                out.industry_field = Some(enum_value(
                    qilu_proto::common::IndustryField::from_str_name(v).map(|x| x as i32),
                    "IndustryField",
                )?)
            }
            "category" => {
                out.category = Some(enum_value(
                    pb::AwardCategory::from_str_name(v).map(|x| x as i32),
                    "AwardCategory",
                )?)
            }
            "grade" => {
                out.grade = Some(enum_value(
                    pb::AwardGrade::from_str_name(v).map(|x| x as i32),
                    "AwardGrade",
                )?)
            }
            "state" => {
                out.state = Some(enum_value(
                    pb::ApplicationState::from_str_name(v).map(|x| x as i32),
                    "ApplicationState",
                )?)
            }
            "outcome" => {
                out.outcome = Some(enum_value(
                    pb::ApplicationOutcome::from_str_name(v).map(|x| x as i32),
                    "ApplicationOutcome",
                )?)
            }
            _ => {}
        }
    }
    Ok(out)
}

fn parse_order(raw: &str) -> Result<store::Order, ApiError> {
    qilu_common::limits::order_by(raw)?;
    match raw.split_whitespace().collect::<Vec<_>>().as_slice() {
        [] | ["create_time"] => Ok(store::Order::CreateTime),
        ["rank"] => Ok(store::Order::Rank),
        ["score_millipoints", "desc"] => Ok(store::Order::ScoreDesc),
        _ => Err(ApiError::invalid(
            "order_by",
            "INVALID_ORDER_BY",
            format!(
                "cannot order by {}; use create_time (default), rank or \"score_millipoints desc\"",
                qilu_common::limits::echo(raw)
            ),
        )),
    }
}

pub(super) async fn list_applications(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::ListApplicationsRequest,
) -> Result<pb::ListApplicationsResponse, ApiError> {
    let mut filter = parse_list_filter(&req.filter)?;
    if req.parent != "programs/-" {
        let id = parse_program_name(&req.parent, "parent")?;
        visible_program(api, ctx, &id).await?;
        filter.program_id = Some(id);
    }
    let scope = ctx.enterprise_scope().map(str::to_string);
    if let Some(own) = &scope {
        if filter.uscc.as_ref().is_some_and(|u| u != own) {
            return Err(ApiError::PermissionDenied(
                "an enterprise token may list only its own applications".into(),
            ));
        }
        filter.uscc = Some(own.clone());
    }
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<store::Cursor> = page.after()?;
    let mut rows = store::list(&api.db, &filter, order, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&(
            store::key_of(last, order),
            last.program_id.clone(),
            last.id.clone(),
        ))?,
        _ => String::new(),
    };
    let mut states: HashMap<String, State> = HashMap::new();
    let mut applications = Vec::with_capacity(rows.len());
    for a in &rows {
        let state = match states.get(&a.program_id) {
            Some(s) => *s,
            None => {
                let s = program_store::get(&api.db, &a.program_id)
                    .await?
                    .map_or(State::Draft, |p| p.state);
                states.insert(a.program_id.clone(), s);
                s
            }
        };
        let show = shows_outcome(ctx, state);
        // An outcome filter must not reveal unpublished outcomes to an applicant.
        if !show && filter.outcome.is_some() {
            continue;
        }
        applications.push(application_to_proto(a, show));
    }
    Ok(pb::ListApplicationsResponse {
        applications,
        next_page_token,
    })
}

pub(super) async fn withdraw_application(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::WithdrawApplicationRequest,
) -> Result<pb::Application, ApiError> {
    let (program_id, id) = parse_child_name(&req.name, "applications", "name")?;
    if req.reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::invalid(
            "reason",
            "TOO_LONG",
            format!("at most {MAX_REASON_CHARS} characters"),
        ));
    }
    let mut tx =
        match WriteTx::begin::<pb::Application>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = store::get(tx.conn(), &program_id, &id)
        .await?
        .ok_or_else(|| not_found(&req.name))?;
    check_own(ctx, &current.uscc)?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let program = api.load_program(tx.conn(), &program_id).await?;
    if !matches!(program.state, State::Open | State::Closed) {
        return Err(ApiError::precondition(
            "PROGRAM_ALREADY_ALLOCATED",
            program.name(),
            format!(
                "{} is {}; applications can be withdrawn only before allocation",
                program.name(),
                program.state.as_str()
            ),
        ));
    }
    if current.state != AppState::Active {
        return Err(ApiError::precondition(
            "APPLICATION_WITHDRAWN",
            current.name(),
            format!("{} is already withdrawn", current.name()),
        ));
    }
    let mut updated = current.clone();
    updated.state = AppState::Withdrawn;
    updated.withdraw_reason = req.reason.clone();
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = application_to_proto(&updated, shows_outcome(ctx, program.state));
    tx.record(&updated.name(), &updated)?;
    tx.commit(&response).await?;
    Ok(response)
}
