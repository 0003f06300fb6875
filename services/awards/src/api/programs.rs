//! Programs: create (DRAFT), get, list, update (DRAFT only; field mask + etag), and the stage
//! methods open, close, publish (objection window) and finalize. Enterprise and expert tokens
//! never see a DRAFT: it is NOT_FOUND for them and absent from their lists.

use qilu_common::filter::{Filter, Op};
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, FieldViolation, db::is_unique_violation};
use qilu_proto::awards as pb;

use super::{AwardsApi, ceilings, program_not_found, sees_drafts};
use crate::convert::{PROGRAM_TYPE, parse_program_name, program_to_proto, settings_from_proto};
use crate::domain::program::{
    self, DEFAULT_OBJECTION_WINDOW_DAYS, Kind, MAX_OBJECTION_WINDOW_DAYS, Program, State,
    Transition,
};
use crate::store::{objection as objection_store, program as store};

fn nested(v: Vec<FieldViolation>, parent: &str) -> Vec<FieldViolation> {
    v.into_iter().map(|v| v.nested(parent)).collect()
}

pub(super) async fn create_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::CreateProgramRequest,
) -> Result<pb::Program, ApiError> {
    let mut violations = Vec::new();
    if !program::valid_program_id(&req.program_id) {
        violations.push(FieldViolation::new(
            "program_id",
            "INVALID_ID",
            "lower-case letters, digits and '-', 1-63 characters, starting with a letter",
        ));
    }
    let Some(input) = req.program.as_ref() else {
        violations.push(FieldViolation::new(
            "program",
            "REQUIRED",
            "program is required",
        ));
        return Err(ApiError::InvalidArgument(violations));
    };
    let kind = Kind::from_code(input.kind);
    if kind.is_none() {
        violations.push(FieldViolation::new(
            "program.kind",
            "REQUIRED",
            "kind must be PROGRAM_KIND_AWARD or PROGRAM_KIND_PROJECT",
        ));
    }
    let settings = match settings_from_proto(input, "program") {
        Ok(s) => Some(s),
        Err(v) => {
            violations.extend(v);
            None
        }
    };
    if let (Some(kind), Some(s)) = (kind, settings.as_ref()) {
        violations.extend(nested(program::validate(kind, s), "program"));
    }
    let (Some(kind), Some(settings), true) = (kind, settings, violations.is_empty()) else {
        return Err(ApiError::InvalidArgument(violations));
    };

    let mut tx = match WriteTx::begin::<pb::Program>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let now = tx.now_us();
    let p = Program {
        id: req.program_id.clone(),
        kind,
        settings,
        state: State::Draft,
        allocation_revision: 0,
        publish_time_us: None,
        objection_window_end_us: None,
        finalize_time_us: None,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    ceilings::check_quotas(tx.conn(), &p).await?;
    if let Err(e) = store::insert(tx.conn(), &p).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: PROGRAM_TYPE,
                name: p.name(),
            }
        } else {
            e.into()
        });
    }
    let response = program_to_proto(&p);
    tx.record(&p.name(), &p)?;
    tx.commit(&response).await?;
    tracing::info!(program = %p.name(), "program created");
    Ok(response)
}

/// A program the caller may see (a DRAFT is NOT_FOUND for enterprise and expert tokens).
pub(super) async fn visible_program(
    api: &AwardsApi,
    ctx: &CallContext,
    id: &str,
) -> Result<Program, ApiError> {
    let p = api.load_program(&api.db, id).await?;
    if p.state == State::Draft && !sees_drafts(ctx) {
        return Err(program_not_found(id));
    }
    Ok(p)
}

pub(super) async fn get_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::GetProgramRequest,
) -> Result<pb::Program, ApiError> {
    let id = parse_program_name(&req.name, "name")?;
    let p = visible_program(api, ctx, &id).await?;
    Ok(program_to_proto(&p))
}

fn parse_list_filter(raw: &str) -> Result<store::ListFilter, ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&["kind", "year", "state", "display_name"])?;
    let mut out = store::ListFilter::default();
    let bad = |field: &str, why: String| {
        ApiError::invalid("filter", "INVALID_FILTER", format!("{field}: {why}"))
    };
    for c in filter.conditions() {
        match c.field.as_str() {
            "kind" => {
                if c.op != Op::Eq {
                    return Err(bad("kind", "supports only =".into()));
                }
                let k = pb::ProgramKind::from_str_name(&c.value)
                    .filter(|k| *k != pb::ProgramKind::Unspecified)
                    .ok_or_else(|| bad("kind", format!("{:?} is not a ProgramKind", c.value)))?;
                out.kind = Some(k as i32);
            }
            "state" => {
                if c.op != Op::Eq {
                    return Err(bad("state", "supports only =".into()));
                }
                let s = pb::ProgramState::from_str_name(&c.value)
                    .filter(|s| *s != pb::ProgramState::Unspecified)
                    .ok_or_else(|| bad("state", format!("{:?} is not a ProgramState", c.value)))?;
                out.state = Some(s as i32);
            }
            "year" => {
                if c.op == Op::Has {
                    return Err(bad("year", "supports =, !=, <, <=, >, >=".into()));
                }
                let y: i32 = c
                    .value
                    .parse()
                    .map_err(|_| bad("year", format!("{:?} is not a year", c.value)))?;
                out.years.push((c.op, y));
            }
            "display_name" => {
                if c.op != Op::Has {
                    return Err(bad("display_name", "supports only :".into()));
                }
                out.name_contains = Some(c.value.clone());
            }
            _ => {}
        }
    }
    Ok(out)
}

fn parse_order(raw: &str) -> Result<store::Order, ApiError> {
    qilu_common::limits::order_by(raw)?;
    match raw.split_whitespace().collect::<Vec<_>>().as_slice() {
        [] | ["year", "desc"] => Ok(store::Order::YearDesc),
        ["name"] | ["name", "asc"] => Ok(store::Order::Name),
        _ => Err(ApiError::invalid(
            "order_by",
            "INVALID_ORDER_BY",
            format!(
                "cannot order by {}; use \"year desc\" (default) or \"name\"",
                qilu_common::limits::echo(raw)
            ),
        )),
    }
}

pub(super) async fn list_programs(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::ListProgramsRequest,
) -> Result<pb::ListProgramsResponse, ApiError> {
    let mut filter = parse_list_filter(&req.filter)?;
    if !sees_drafts(ctx) {
        filter.not_state = Some(State::Draft.code());
    }
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<store::Cursor> = page.after()?;
    let mut rows = store::list(&api.db, &filter, order, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&(last.settings.year, last.id.clone()))?,
        _ => String::new(),
    };
    Ok(pb::ListProgramsResponse {
        programs: rows.iter().map(program_to_proto).collect(),
        next_page_token,
    })
}

/// The fields `UpdateProgram` may mask.
const UPDATABLE: [&str; 12] = [
    "display_name",
    "year",
    "description",
    "award_quotas",
    "quota_caps",
    "budget_fen",
    "per_project_cap_fen",
    "priority_fields",
    "score_threshold_millipoints",
    "requires_high_tech_certification",
    "deadlines",
    "objection_window_days",
];

pub(super) async fn update_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::UpdateProgramRequest,
) -> Result<pb::Program, ApiError> {
    let Some(input) = req.program.as_ref() else {
        return Err(ApiError::invalid(
            "program",
            "REQUIRED",
            "program is required",
        ));
    };
    let id = parse_program_name(&input.name, "program.name")?;
    let paths: Vec<String> = req
        .update_mask
        .as_ref()
        .map(|m| m.paths.clone())
        .unwrap_or_default();
    if paths.is_empty() {
        return Err(ApiError::invalid(
            "update_mask",
            "REQUIRED",
            "name the fields to update in update_mask",
        ));
    }
    let bad_paths: Vec<FieldViolation> = paths
        .iter()
        .filter(|p| !UPDATABLE.contains(&p.as_str()))
        .map(|p| {
            FieldViolation::new(
                "update_mask",
                "UNSUPPORTED_PATH",
                format!(
                    "{p:?} cannot be updated; updatable: {}",
                    UPDATABLE.join(", ")
                ),
            )
        })
        .collect();
    if !bad_paths.is_empty() {
        return Err(ApiError::InvalidArgument(bad_paths));
    }
    let incoming = settings_from_proto(input, "program").map_err(ApiError::InvalidArgument)?;

    let mut tx = match WriteTx::begin::<pb::Program>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), &id).await?;
    check_etag(&input.etag, &current.name(), current.version)?;
    if current.state != State::Draft {
        return Err(ApiError::precondition(
            "PROGRAM_NOT_DRAFT",
            current.name(),
            format!(
                "{} is {}; only a DRAFT program can be updated",
                current.name(),
                current.state.as_str()
            ),
        ));
    }
    let mut s = current.settings.clone();
    for p in &paths {
        match p.as_str() {
            "display_name" => s.display_name = incoming.display_name.clone(),
            "year" => s.year = incoming.year,
            "description" => s.description = incoming.description.clone(),
            "award_quotas" => s.award_quotas = incoming.award_quotas.clone(),
            "quota_caps" => s.quota_caps = incoming.quota_caps.clone(),
            "budget_fen" => s.budget_fen = incoming.budget_fen,
            "per_project_cap_fen" => s.per_project_cap_fen = incoming.per_project_cap_fen,
            "priority_fields" => s.priority_fields = incoming.priority_fields.clone(),
            "score_threshold_millipoints" => {
                s.score_threshold_millipoints = incoming.score_threshold_millipoints
            }
            "requires_high_tech_certification" => {
                s.requires_high_tech_certification = incoming.requires_high_tech_certification
            }
            "deadlines" => s.deadlines = incoming.deadlines.clone(),
            "objection_window_days" => s.objection_window_days = incoming.objection_window_days,
            _ => {}
        }
    }
    let violations = nested(program::validate(current.kind, &s), "program");
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations));
    }
    let mut updated = current.clone();
    updated.settings = s;
    ceilings::check_quotas(tx.conn(), &updated).await?;
    let response = save(&mut tx, &current, updated).await?;
    tx.commit(&response).await?;
    Ok(response)
}

/// Writes `updated` over `current` (version check), records it, and returns its proto.
pub(super) async fn save(
    tx: &mut WriteTx,
    current: &Program,
    mut updated: Program,
) -> Result<pb::Program, ApiError> {
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    tx.record(&updated.name(), &updated)?;
    Ok(program_to_proto(&updated))
}

/// FAILED_PRECONDITION for a transition the program's stage does not allow.
pub(super) fn illegal(p: &Program, why: String) -> ApiError {
    ApiError::precondition("ILLEGAL_STAGE_TRANSITION", p.name(), why)
}

/// The stage methods: load, check etag and stage, apply `change`, save.
#[allow(clippy::too_many_arguments)]
async fn transition(
    api: &AwardsApi,
    ctx: &CallContext,
    name: &str,
    etag: &str,
    request_id: &str,
    req: &impl prost::Message,
    method: Transition,
    change: impl FnOnce(&mut WriteTx, &mut Program) -> Result<(), ApiError>,
) -> Result<pb::Program, ApiError> {
    let id = parse_program_name(name, "name")?;
    let mut tx = match WriteTx::begin::<pb::Program>(&api.db, ctx, request_id, req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), &id).await?;
    check_etag(etag, &current.name(), current.version)?;
    let next = current
        .state
        .transition(method)
        .map_err(|why| illegal(&current, format!("{}: {why}", current.name())))?;
    let mut updated = current.clone();
    updated.state = next;
    change(&mut tx, &mut updated)?;
    let response = save(&mut tx, &current, updated).await?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn open_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::OpenProgramRequest,
) -> Result<pb::Program, ApiError> {
    // Not `transition`: the ceiling check reads the year's other programs, inside the same
    // transaction (under the audit lock), so two drafts cannot open past a ceiling together.
    let id = parse_program_name(&req.name, "name")?;
    let mut tx = match WriteTx::begin::<pb::Program>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let next = current
        .state
        .transition(Transition::Open)
        .map_err(|why| illegal(&current, format!("{}: {why}", current.name())))?;
    if let Some(why) = current.incomplete() {
        return Err(ApiError::precondition(
            "PROGRAM_INCOMPLETE",
            current.name(),
            why,
        ));
    }
    ceilings::check_quotas(tx.conn(), &current).await?;
    let mut updated = current.clone();
    updated.state = next;
    let response = save(&mut tx, &current, updated).await?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn close_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::CloseProgramRequest,
) -> Result<pb::Program, ApiError> {
    let response = transition(
        api,
        ctx,
        &req.name,
        &req.etag,
        &req.request_id,
        &req,
        Transition::Close,
        |_, _| Ok(()),
    )
    .await?;
    Ok(response)
}

pub(super) async fn publish_results(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::PublishResultsRequest,
) -> Result<pb::Program, ApiError> {
    if req.objection_window_days != 0
        && !(1..=MAX_OBJECTION_WINDOW_DAYS).contains(&req.objection_window_days)
    {
        return Err(ApiError::invalid(
            "objection_window_days",
            "OUT_OF_RANGE",
            format!(
                "objection_window_days must be 1-{MAX_OBJECTION_WINDOW_DAYS} (0 = the program's)"
            ),
        ));
    }
    let now = api.clock.now_us();
    let tz = api.time_zone;
    let response = transition(
        api,
        ctx,
        &req.name,
        &req.etag,
        &req.request_id,
        &req,
        Transition::Publish,
        |_, p| {
            let days = match req.objection_window_days {
                0 if p.settings.objection_window_days > 0 => p.settings.objection_window_days,
                0 => DEFAULT_OBJECTION_WINDOW_DAYS,
                d => d,
            };
            p.settings.objection_window_days = days;
            p.publish_time_us = Some(now);
            p.objection_window_end_us = Some(program::objection_window_end(now, days, tz));
            Ok(())
        },
    )
    .await?;
    Ok(response)
}

pub(super) async fn finalize_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::FinalizeProgramRequest,
) -> Result<pb::Program, ApiError> {
    let now = api.clock.now_us();
    let id = parse_program_name(&req.name, "name")?;
    // Open objections are read inside the transaction (the audit lock serializes writers).
    let db = api.db.clone();
    let mut tx = match WriteTx::begin::<pb::Program>(&db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let next = current
        .state
        .transition(Transition::Finalize)
        .map_err(|why| illegal(&current, format!("{}: {why}", current.name())))?;
    if let Some(end) = current.objection_window_end_us
        && now <= end
    {
        return Err(ApiError::precondition(
            "OBJECTION_WINDOW_OPEN",
            current.name(),
            format!(
                "the objection window of {} is open until {} (end of day, programme time zone)",
                current.name(),
                qilu_common::time::to_datetime(end)
                    .map(|t| t.with_timezone(&api.time_zone).to_rfc3339())
                    .unwrap_or_default()
            ),
        ));
    }
    let open = objection_store::open_of_program(tx.conn(), &id).await?;
    if !open.is_empty() {
        return Err(ApiError::FailedPrecondition {
            message: format!(
                "{} open objection(s) on {} must be resolved first",
                open.len(),
                current.name()
            ),
            violations: open
                .iter()
                .map(|o| qilu_common::error::Precondition {
                    kind: "OBJECTION_OPEN".into(),
                    subject: o.name(),
                    description: format!("{} is still open", o.name()),
                })
                .collect(),
        });
    }
    let mut updated = current.clone();
    updated.state = next;
    updated.finalize_time_us = Some(tx.now_us());
    let response = save(&mut tx, &current, updated).await?;
    tx.commit(&response).await?;
    Ok(response)
}
