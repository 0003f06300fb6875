//! Programs: create (DRAFT), get, list, update (DRAFT only; field mask + etag), delete (DRAFT
//! only; the audit event keeps the draft as it was, and its id is never reused), and the stage
//! methods open, close, publish (objection window) and finalize. Enterprise and expert tokens
//! never see a DRAFT: it is NOT_FOUND for them and absent from their lists.

use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::awards as pb;

use super::{AwardsApi, ceilings, program_not_found, sees_drafts};
use crate::convert::PROGRAM_TYPE;
use crate::convert::application::application_to_proto;
use crate::convert::program::{
    CreateProgram, UpdateProgram, list_filter, list_order, program_to_proto, publish_window_days,
};
use crate::domain::ids::ProgramId;
use crate::domain::program::{self, DEFAULT_OBJECTION_WINDOW_DAYS, Program, State, Transition};
use crate::domain::refusal;
use crate::store::{
    application as application_store, objection as objection_store, program as store,
};

pub(super) async fn create_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::CreateProgramRequest,
) -> Result<pb::Program, ApiError> {
    let CreateProgram { id, kind, settings } = CreateProgram::parse(&req)?;

    let mut tx = match WriteTx::begin::<pb::Program>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    if store::was_deleted(tx.conn(), &id.name()).await? {
        return Err(refusal::StageRefused::IdOfDeleted { program: id.name() }.into());
    }
    let now = tx.now_us();
    let p = Program {
        id: id.as_str().to_string(),
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
    tx.record(&p.name(), &p, &response)?;
    tx.commit(&response).await?;
    tracing::info!(program = %p.name(), "program created");
    Ok(response)
}

/// A program the caller may see (a DRAFT is NOT_FOUND for enterprise and expert tokens).
pub(super) async fn visible_program(
    api: &AwardsApi,
    ctx: &CallContext,
    id: &ProgramId,
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
    let id = ProgramId::parse_name(&req.name, "name")?;
    let p = visible_program(api, ctx, &id).await?;
    Ok(program_to_proto(&p))
}

pub(super) async fn list_programs(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::ListProgramsRequest,
) -> Result<pb::ListProgramsResponse, ApiError> {
    let mut filter = list_filter(&req.filter)?;
    if !sees_drafts(ctx) {
        filter.not_state = Some(State::Draft.code());
    }
    let order = list_order(&req.order_by)?;
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

pub(super) async fn update_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::UpdateProgramRequest,
) -> Result<pb::Program, ApiError> {
    let update = UpdateProgram::parse(&req)?;

    let mut tx = match WriteTx::begin::<pb::Program>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), &update.id).await?;
    check_etag(update.etag, &current.name(), current.version)?;
    refusal::may_update(&current)?;
    let s = update.apply(&current)?;
    if s == current.settings {
        // Sent back as read (or otherwise unchanged): nothing to write or audit, and the etag
        // stays; a retry with the request id still replays this answer.
        let response = program_to_proto(&current);
        tx.commit_unchanged(&response).await?;
        return Ok(response);
    }
    let mut updated = current.clone();
    updated.settings = s;
    ceilings::check_quotas(tx.conn(), &updated).await?;
    let response = save(&mut tx, &current, updated).await?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn delete_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::DeleteProgramRequest,
) -> Result<(), ApiError> {
    let id = ProgramId::parse_name(&req.name, "name")?;
    let mut tx = match WriteTx::begin::<()>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(()) => return Ok(()),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    refusal::may_delete(&current)?;
    if !store::delete_if_version(tx.conn(), &current.id, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    tx.record(&current.name(), &current, &program_to_proto(&current))?;
    tx.commit(&()).await?;
    tracing::info!(program = %current.name(), "draft program deleted");
    Ok(())
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
    let published = program_to_proto(&updated);
    tx.record(&updated.name(), &updated, &published)?;
    Ok(published)
}

/// A stage method's write after [`transition`]: a replay, or the program saved in an open write.
enum Staged {
    /// The request id was seen before: its response.
    Replay(pb::Program),
    /// Saved and recorded, not yet committed (the method may record more in the same write).
    Saved(Box<WriteTx>, pb::Program),
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
    change: impl FnOnce(&mut Program),
) -> Result<Staged, ApiError> {
    let id = ProgramId::parse_name(name, "name")?;
    let mut tx = match WriteTx::begin::<pb::Program>(&api.db, ctx, request_id, req).await? {
        Begun::Replay(previous) => return Ok(Staged::Replay(previous)),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), &id).await?;
    check_etag(etag, &current.name(), current.version)?;
    let next = refusal::transition(&current, method)?;
    let mut updated = current.clone();
    updated.state = next;
    change(&mut updated);
    let response = save(&mut tx, &current, updated).await?;
    Ok(Staged::Saved(tx, response))
}

pub(super) async fn open_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::OpenProgramRequest,
) -> Result<pb::Program, ApiError> {
    // Not `transition`: the ceiling check reads the year's other programs, inside the same
    // transaction (under the audit lock), so two drafts cannot open past a ceiling together.
    let id = ProgramId::parse_name(&req.name, "name")?;
    let mut tx = match WriteTx::begin::<pb::Program>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let next = refusal::may_open(&current)?;
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
    let staged = transition(
        api,
        ctx,
        &req.name,
        &req.etag,
        &req.request_id,
        &req,
        Transition::Close,
        |_| {},
    )
    .await?;
    match staged {
        Staged::Replay(previous) => Ok(previous),
        Staged::Saved(tx, response) => {
            tx.commit(&response).await?;
            Ok(response)
        }
    }
}

pub(super) async fn publish_results(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::PublishResultsRequest,
) -> Result<pb::Program, ApiError> {
    let requested_days = publish_window_days(&req)?;
    let id = ProgramId::parse_name(&req.name, "name")?;
    let now = api.clock.now_us();
    let tz = api.time_zone;
    let staged = transition(
        api,
        ctx,
        &req.name,
        &req.etag,
        &req.request_id,
        &req,
        Transition::Publish,
        |p| {
            let days = match requested_days {
                0 if p.settings.objection_window_days > 0 => p.settings.objection_window_days,
                0 => DEFAULT_OBJECTION_WINDOW_DAYS,
                d => d,
            };
            p.settings.objection_window_days = days;
            p.publish_time_us = Some(now);
            p.objection_window_end_us = Some(program::objection_window_end(now, days, tz));
        },
    )
    .await?;
    let (mut tx, response) = match staged {
        Staged::Replay(previous) => return Ok(previous),
        Staged::Saved(tx, response) => (tx, response),
    };
    record_published_outcomes(&mut tx, &id).await?;
    tx.commit(&response).await?;
    Ok(response)
}

/// Publication makes every outcome visible to its applicant without changing the application
/// itself: Get shows an enterprise token the outcome from now on. The change feed must say so,
/// or an enterprise following it would keep the redacted state it was shown at allocation
/// (the feed shows a change's outcome to an applicant only when the change was made after
/// publication, see `changes::outcome_published`). So each application whose outcome an
/// applicant could not see until now gets an event with its (unchanged) state.
async fn record_published_outcomes(tx: &mut WriteTx, id: &ProgramId) -> Result<(), ApiError> {
    for a in application_store::of_program(tx.conn(), id.as_str(), false).await? {
        let full = application_to_proto(&a, true);
        if full != application_to_proto(&a, false) {
            tx.record(&a.name(), &a, &full)?;
        }
    }
    // Likewise the allocation: from now on every role reads it (`GetAllocation`), so followers
    // who could not see it until now get its (unchanged) state.
    if let Some(run) = crate::store::run::head(tx.conn(), id.as_str(), None).await? {
        tx.record(
            &format!("programs/{}/allocation", id.as_str()),
            &serde_json::json!({ "revision": run.revision, "published": true }),
            &crate::convert::allocation::allocation_to_proto(
                &run,
                false,
                qilu_proto::awards::AllocationView::Basic,
            ),
        )?;
    }
    Ok(())
}

pub(super) async fn finalize_program(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::FinalizeProgramRequest,
) -> Result<pb::Program, ApiError> {
    let now = api.clock.now_us();
    let id = ProgramId::parse_name(&req.name, "name")?;
    // Open objections are read inside the transaction (the audit lock serializes writers).
    let db = api.db.clone();
    let mut tx = match WriteTx::begin::<pb::Program>(&db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_program(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let open = objection_store::open_of_program(tx.conn(), id.as_str()).await?;
    let next = refusal::may_finalize(&current, now, api.time_zone, &open)?;
    let mut updated = current.clone();
    updated.state = next;
    updated.finalize_time_us = Some(tx.now_us());
    let response = save(&mut tx, &current, updated).await?;
    tx.commit(&response).await?;
    Ok(response)
}
