//! Objections to published results: filed under a real identity during the window, kept
//! confidential (identity only to admin, auditor and the objector), and resolved by an admin
//! with a recorded reason. UPHELD re-runs the allocator as a new revision on the previous
//! revision's inputs with the remedy applied (deterministic, no new peer calls); every
//! application's outcome follows the new revision.

use qilu_common::auth::Role;
use qilu_common::filter::{Filter, Op};
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, FieldViolation};
use qilu_proto::awards as pb;

use super::allocation::store_run;
use super::programs::save;
use super::{AwardsApi, new_id};
use crate::convert::{OBJECTION_TYPE, objection_to_proto, parse_child_name, parse_program_name};
use crate::domain::application::{Objection, ObjectionState};
use crate::domain::program::State;
use crate::domain::run;
use crate::store::{application as application_store, objection as store, run as run_store};

/// Longest grounds, evidence or reason.
const MAX_TEXT_CHARS: usize = 8000;
/// Longest objector name or contact.
const MAX_IDENTITY_CHARS: usize = 500;

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: OBJECTION_TYPE,
        name: name.to_string(),
    }
}

/// Staff who see every objection of a program (identity only for admin and auditor).
fn sees_all(ctx: &CallContext) -> bool {
    ctx.has_role(Role::Admin) || ctx.has_role(Role::Auditor) || ctx.has_role(Role::Officer)
}

/// Whether the caller sees who objected: admin, auditor, or the objector itself.
fn shows_identity(ctx: &CallContext, o: &Objection) -> bool {
    ctx.has_role(Role::Admin) || ctx.has_role(Role::Auditor) || o.objector == ctx.caller.subject
}

fn text(v: &mut Vec<FieldViolation>, field: &str, value: &str, required: bool, max: usize) {
    if required && value.trim().is_empty() {
        v.push(FieldViolation::new(
            field,
            "REQUIRED",
            format!("{field} is required"),
        ));
    } else if value.chars().count() > max {
        v.push(FieldViolation::new(
            field,
            "TOO_LONG",
            format!("at most {max} characters"),
        ));
    }
}

pub(super) async fn file_objection(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::FileObjectionRequest,
) -> Result<pb::Objection, ApiError> {
    let program_id = parse_program_name(&req.parent, "parent")?;
    let Some(input) = req.objection.as_ref() else {
        return Err(ApiError::invalid(
            "objection",
            "REQUIRED",
            "objection is required",
        ));
    };
    let mut v = Vec::new();
    let application_id =
        match parse_child_name(&input.application, "applications", "objection.application") {
            Ok((p, _)) if p != program_id => {
                v.push(FieldViolation::new(
                    "objection.application",
                    "OTHER_PROGRAM",
                    format!("the application must belong to {}", req.parent),
                ));
                None
            }
            Ok((_, a)) => Some(a),
            Err(ApiError::InvalidArgument(e)) => {
                v.extend(e);
                None
            }
            Err(e) => return Err(e),
        };
    text(
        &mut v,
        "objection.grounds",
        &input.grounds,
        true,
        MAX_TEXT_CHARS,
    );
    text(
        &mut v,
        "objection.evidence",
        &input.evidence,
        false,
        MAX_TEXT_CHARS,
    );
    text(
        &mut v,
        "objection.objector_name",
        &input.objector_name,
        true,
        MAX_IDENTITY_CHARS,
    );
    text(
        &mut v,
        "objection.objector_contact",
        &input.objector_contact,
        true,
        MAX_IDENTITY_CHARS,
    );
    let (Some(application_id), true) = (application_id, v.is_empty()) else {
        return Err(ApiError::InvalidArgument(v));
    };
    let now = api.clock.now_us();
    let mut tx = match WriteTx::begin::<pb::Objection>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let program = api.load_program(tx.conn(), &program_id).await?;
    let window_open = program.state == State::Publicized
        && program
            .objection_window_end_us
            .is_some_and(|end| now <= end);
    if !window_open {
        return Err(ApiError::precondition(
            "OBJECTION_WINDOW_CLOSED",
            program.name(),
            format!(
                "{} is {} and its objection window is not open; objections are filed only while results are in public notice",
                program.name(),
                program.state.as_str()
            ),
        ));
    }
    if application_store::get(tx.conn(), &program_id, &application_id)
        .await?
        .is_none()
    {
        return Err(super::applications::not_found(&input.application));
    }
    let t = tx.now_us();
    let o = Objection {
        program_id,
        id: new_id(),
        application_id,
        grounds: input.grounds.clone(),
        evidence: input.evidence.clone(),
        objector: ctx.caller.subject.clone(),
        objector_name: input.objector_name.trim().to_string(),
        objector_contact: input.objector_contact.trim().to_string(),
        state: ObjectionState::Open,
        resolution: 0,
        remedy: 0,
        resolution_reason: String::new(),
        resolved_by: String::new(),
        resolve_time_us: None,
        allocation_revision: 0,
        create_time_us: t,
        update_time_us: t,
        version: 1,
    };
    store::insert(tx.conn(), &o).await?;
    let response = objection_to_proto(&o, true);
    tx.record(&o.name(), &o)?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn get_objection(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::GetObjectionRequest,
) -> Result<pb::Objection, ApiError> {
    let name = &req.name;
    let (program_id, id) = parse_child_name(name, "objections", "name")?;
    let o = store::get(&api.db, &program_id, &id)
        .await?
        .filter(|o| sees_all(ctx) || o.objector == ctx.caller.subject)
        .ok_or_else(|| not_found(name))?;
    Ok(objection_to_proto(&o, shows_identity(ctx, &o)))
}

pub(super) async fn list_objections(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::ListObjectionsRequest,
) -> Result<pb::ListObjectionsResponse, ApiError> {
    let program_id = parse_program_name(&req.parent, "parent")?;
    super::programs::visible_program(api, ctx, &program_id).await?;
    let parsed = Filter::parse(&req.filter)?;
    parsed.only(&["state", "application", "resolution"])?;
    let mut filter = store::ListFilter {
        program_id: program_id.clone(),
        ..Default::default()
    };
    for c in parsed.conditions() {
        let bad = |why: String| {
            ApiError::invalid("filter", "INVALID_FILTER", format!("{}: {why}", c.field))
        };
        if c.op != Op::Eq {
            return Err(bad("supports only =".into()));
        }
        match c.field.as_str() {
            "state" => {
                filter.state = Some(match pb::ObjectionState::from_str_name(&c.value) {
                    Some(pb::ObjectionState::Open) => 1,
                    Some(pb::ObjectionState::Resolved) => 2,
                    _ => return Err(bad(format!("{:?} is not an ObjectionState", c.value))),
                })
            }
            "resolution" => {
                filter.resolution = Some(
                    pb::ObjectionResolution::from_str_name(&c.value)
                        .filter(|r| *r != pb::ObjectionResolution::Unspecified)
                        .ok_or_else(|| {
                            bad(format!("{:?} is not an ObjectionResolution", c.value))
                        })? as i32,
                )
            }
            "application" => {
                let (p, a) = parse_child_name(&c.value, "applications", "filter")?;
                if p != program_id {
                    return Err(bad("names an application of another program".into()));
                }
                filter.application_id = Some(a);
            }
            _ => {}
        }
    }
    if !sees_all(ctx) {
        filter.objector = Some(ctx.caller.subject.clone());
    }
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, "")?;
    let after: Option<store::Cursor> = page.after()?;
    let mut rows = store::list(&api.db, &filter, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&(last.create_time_us, last.id.clone()))?,
        _ => String::new(),
    };
    Ok(pb::ListObjectionsResponse {
        objections: rows
            .iter()
            .map(|o| objection_to_proto(o, shows_identity(ctx, o)))
            .collect(),
        next_page_token,
    })
}

pub(super) async fn resolve_objection(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::ResolveObjectionRequest,
) -> Result<pb::Objection, ApiError> {
    let (program_id, id) = parse_child_name(&req.name, "objections", "name")?;
    let resolution = pb::ObjectionResolution::try_from(req.resolution)
        .ok()
        .filter(|r| *r != pb::ObjectionResolution::Unspecified)
        .ok_or_else(|| {
            ApiError::invalid(
                "resolution",
                "REQUIRED",
                "resolution must be UPHELD or DISMISSED",
            )
        })?;
    let remedy = pb::ObjectionRemedy::try_from(req.remedy).unwrap_or_default();
    let mut v = Vec::new();
    match (resolution, remedy) {
        (pb::ObjectionResolution::Upheld, pb::ObjectionRemedy::Unspecified) => {
            v.push(FieldViolation::new(
                "remedy",
                "REQUIRED",
                "an UPHELD objection needs a remedy: EXCLUDE_APPLICATION or REINSTATE_APPLICATION",
            ))
        }
        (pb::ObjectionResolution::Dismissed, r) if r != pb::ObjectionRemedy::Unspecified => {
            v.push(FieldViolation::new(
                "remedy",
                "NOT_APPLICABLE",
                "a DISMISSED objection has no remedy",
            ))
        }
        _ => {}
    }
    text(&mut v, "reason", &req.reason, true, MAX_TEXT_CHARS);
    if !v.is_empty() {
        return Err(ApiError::InvalidArgument(v));
    }
    let mut tx = match WriteTx::begin::<pb::Objection>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = store::get(tx.conn(), &program_id, &id)
        .await?
        .ok_or_else(|| not_found(&req.name))?;
    check_etag(&req.etag, &current.name(), current.version)?;
    if current.state != ObjectionState::Open {
        return Err(ApiError::precondition(
            "OBJECTION_RESOLVED",
            current.name(),
            format!("{} is already resolved", current.name()),
        ));
    }
    let program = api.load_program(tx.conn(), &program_id).await?;
    if program.state != State::Publicized {
        return Err(ApiError::precondition(
            "PROGRAM_NOT_PUBLICIZED",
            program.name(),
            format!(
                "{} is {}; objections are resolved while results are in public notice",
                program.name(),
                program.state.as_str()
            ),
        ));
    }
    let now = tx.now_us();
    let mut updated = current.clone();
    if resolution == pb::ObjectionResolution::Upheld {
        let previous = run_store::latest(tx.conn(), &program_id)
            .await?
            .ok_or_else(|| ApiError::internal("a publicized program without an allocation"))?;
        let application = format!(
            "programs/{program_id}/applications/{}",
            current.application_id
        );
        let mut candidates = previous.candidates.clone();
        let Some(c) = candidates.iter_mut().find(|c| c.application == application) else {
            return Err(ApiError::precondition(
                "APPLICATION_NOT_ALLOCATED",
                application.clone(),
                format!("{application} took no part in the allocation (withdrawn before it)"),
            ));
        };
        match remedy {
            pb::ObjectionRemedy::ExcludeApplication => {
                c.exclusion = Some(format!(
                    "excluded by upheld objection {}: {}",
                    current.name(),
                    req.reason.trim()
                ));
            }
            _ => {
                if c.exclusion.is_none() {
                    return Err(ApiError::precondition(
                        "APPLICATION_NOT_EXCLUDED",
                        application.clone(),
                        format!(
                            "{application} was not excluded by a check or an objection; there is nothing to reinstate"
                        ),
                    ));
                }
                c.exclusion = None;
            }
        }
        let revision = previous.revision + 1;
        let next = run::run(
            &program,
            candidates,
            previous.ceiling_caps.clone(),
            revision,
            Some(current.name()),
            &ctx.caller.subject,
            now,
        );
        let apps = application_store::of_program(tx.conn(), &program_id, false).await?;
        store_run(&mut tx, &next, &apps).await?;
        let mut p = program.clone();
        p.allocation_revision = revision;
        save(&mut tx, &program, p).await?;
        updated.allocation_revision = revision;
        updated.remedy = remedy as i32;
    }
    updated.state = ObjectionState::Resolved;
    updated.resolution = resolution as i32;
    updated.resolution_reason = req.reason.trim().to_string();
    updated.resolved_by = ctx.caller.subject.clone();
    updated.resolve_time_us = Some(now);
    updated.version = current.version + 1;
    updated.update_time_us = now;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = objection_to_proto(&updated, shows_identity(ctx, &updated));
    tx.record(&updated.name(), &updated)?;
    tx.commit(&response).await?;
    Ok(response)
}
