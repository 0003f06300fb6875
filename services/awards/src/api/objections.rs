//! Objections to published results: filed under a real identity during the window, kept
//! confidential (identity only to admin, auditor and the objector), and resolved by an admin
//! with a recorded reason. UPHELD re-runs the allocator as a new revision on the previous
//! revision's inputs with the remedy applied (deterministic, no new peer calls); every
//! application's outcome follows the new revision.

use qilu_common::auth::Role;
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::awards as pb;

use super::allocation::store_run;
use super::programs::save;
use super::{AwardsApi, new_id};
use crate::convert::OBJECTION_TYPE;
use crate::convert::objection::{FileObjection, ResolveObjection, list_filter, objection_to_proto};
use crate::domain::application::{Objection, ObjectionState};
use crate::domain::ids::{ObjectionName, ProgramId};
use crate::domain::refusal::{self, ObjectionRefused};
use crate::domain::run;
use crate::store::{application as application_store, objection as store, run as run_store};

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

pub(super) async fn file_objection(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::FileObjectionRequest,
) -> Result<pb::Objection, ApiError> {
    let input = FileObjection::parse(&req)?;
    let now = api.clock.now_us();
    let mut tx = match WriteTx::begin::<pb::Objection>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let program = api.load_program(tx.conn(), &input.program).await?;
    refusal::may_object(&program, now)?;
    let application = &input.application;
    if application_store::get(tx.conn(), application.program().as_str(), application.id())
        .await?
        .is_none()
    {
        return Err(super::applications::not_found(&application.name()));
    }
    let t = tx.now_us();
    let o = Objection {
        program_id: input.program.as_str().to_string(),
        id: new_id(),
        application_id: application.id().to_string(),
        grounds: input.grounds,
        evidence: input.evidence,
        objector: ctx.caller.subject.clone(),
        objector_name: input.objector_name,
        objector_contact: input.objector_contact,
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
    tx.record(&o.name(), &o, &response)?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn get_objection(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::GetObjectionRequest,
) -> Result<pb::Objection, ApiError> {
    let name = &req.name;
    let parsed = ObjectionName::parse(name, "name")?;
    let o = store::get(&api.db, parsed.program().as_str(), parsed.id())
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
    let program_id = ProgramId::parse_name(&req.parent, "parent")?;
    super::programs::visible_program(api, ctx, &program_id).await?;
    let mut filter = list_filter(&req.filter, &program_id)?;
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
    let ResolveObjection {
        name,
        resolution,
        remedy,
        reason,
    } = ResolveObjection::parse(&req)?;
    let program_id = name.program();
    let mut tx = match WriteTx::begin::<pb::Objection>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = store::get(tx.conn(), program_id.as_str(), name.id())
        .await?
        .ok_or_else(|| not_found(&req.name))?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let program = api.load_program(tx.conn(), program_id).await?;
    refusal::may_resolve(&current, &program)?;
    let now = tx.now_us();
    let mut updated = current.clone();
    if resolution == pb::ObjectionResolution::Upheld {
        let previous = run_store::latest(tx.conn(), program_id.as_str())
            .await?
            .ok_or_else(|| ApiError::internal("a publicized program without an allocation"))?;
        let application = format!(
            "{}/applications/{}",
            program_id.name(),
            current.application_id
        );
        let mut candidates = previous.candidates.clone();
        let Some(c) = candidates.iter_mut().find(|c| c.application == application) else {
            return Err(ObjectionRefused::ApplicationNotAllocated { application }.into());
        };
        match remedy {
            pb::ObjectionRemedy::ExcludeApplication => {
                c.exclusion = Some(format!(
                    "excluded by upheld objection {}: {}",
                    current.name(),
                    reason
                ));
            }
            _ => {
                if c.exclusion.is_none() {
                    return Err(ObjectionRefused::ApplicationNotExcluded { application }.into());
                }
                c.exclusion = None;
            }
        }
        let revision = previous.revision + 1;
        let mut next = run::run(
            &program,
            candidates,
            previous.ceiling_caps.clone(),
            revision,
            Some(current.name()),
            &ctx.caller.subject,
            now,
        );
        // The published names stay those of the first run: a revision changes one outcome only.
        next.labels = previous.labels.clone();
        let apps = application_store::of_program(tx.conn(), program_id.as_str(), false).await?;
        store_run(&mut tx, &next, &apps, &mut |_| {}).await?;
        let mut p = program.clone();
        p.allocation_revision = revision;
        save(&mut tx, &program, p).await?;
        updated.allocation_revision = revision;
        updated.remedy = remedy as i32;
    }
    updated.state = ObjectionState::Resolved;
    updated.resolution = resolution as i32;
    updated.resolution_reason = reason;
    updated.resolved_by = ctx.caller.subject.clone();
    updated.resolve_time_us = Some(now);
    updated.version = current.version + 1;
    updated.update_time_us = now;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = objection_to_proto(&updated, shows_identity(ctx, &updated));
    tx.record(
        &updated.name(),
        &updated,
        &objection_to_proto(&updated, true),
    )?;
    tx.commit(&response).await?;
    Ok(response)
}
