//! Applications: create (own enterprise only; admin on its behalf) after checking the registry
//! and the review service over gRPC — before any write, so a peer that is down leaves nothing
//! written — then get, list and withdraw. Outcomes are hidden from enterprise tokens until the
//! results are published.

use std::collections::HashMap;

use qilu_common::idempotency;
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::awards as pb;

use super::programs::visible_program;
use super::{AwardsApi, new_id};
use crate::convert::application::{
    CreateApplication, application_to_proto, list_filter, list_order, list_parent, parse_withdraw,
};
use crate::convert::{APPLICATION_TYPE, published};
use crate::domain::application::{AppState, Application};
use crate::domain::ids::ApplicationName;
use crate::domain::program::{Program, State};
use crate::domain::refusal::{self, achievement_ineligible, enterprise_ineligible};
use crate::store::{application as store, program as program_store};

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

/// OPEN and within the application window (programme time zone), or why not.
fn check_accepting(api: &AwardsApi, p: &Program) -> Result<(), ApiError> {
    Ok(refusal::may_apply(p, api.today())?)
}

pub(super) async fn create_application(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::CreateApplicationRequest,
) -> Result<pb::Application, ApiError> {
    let input = CreateApplication::parse(&req)?;
    let program_id = input.program.clone();
    let uscc = input.enterprise.as_str().to_string();
    let achievement_id = input.achievement.as_str().to_string();
    check_own(ctx, &uscc)?;
    let program = visible_program(api, ctx, &program_id).await?;
    // A retry of a completed create replays without the peers (which may be down now) and
    // whatever the program's stage is by now.
    if let Some(previous) =
        idempotency::previous::<pb::Application>(&api.db, ctx, &req.request_id, &req).await?
    {
        return Ok(previous);
    }
    input.check_nomination(&program)?;
    check_accepting(api, &program)?;

    // The peers, before any write: registry, then review.
    let enterprise = api.enterprise(ctx, &uscc).await?;
    if let Some(refused) = enterprise_ineligible(&enterprise, &program) {
        return Err(refused.into());
    }
    let achievement = input.achievement.name();
    let statuses = api
        .achievement_statuses(ctx, std::slice::from_ref(&achievement_id))
        .await?;
    let status = statuses.get(&achievement_id);
    if let Some(refused) = achievement_ineligible(status, &achievement, &uscc) {
        return Err(refused.into());
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
            program_id: Some(program_id.as_str().to_string()),
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
        program_id: program_id.as_str().to_string(),
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
    tx.record(&a.name(), &a, &application_to_proto(&a, true))?;
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
    let parsed = ApplicationName::parse(name, "name")?;
    let a = store::get(&api.db, parsed.program().as_str(), parsed.id())
        .await?
        .ok_or_else(|| not_found(name))?;
    check_own(ctx, &a.uscc)?;
    let p = api.load_program(&api.db, parsed.program()).await?;
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

pub(super) async fn list_applications(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::ListApplicationsRequest,
) -> Result<pb::ListApplicationsResponse, ApiError> {
    let mut filter = list_filter(&req.filter)?;
    if let Some(id) = list_parent(&req.parent)? {
        visible_program(api, ctx, &id).await?;
        filter.program_id = Some(id.as_str().to_string());
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
    let order = list_order(&req.order_by)?;
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
    let (name, reason) = parse_withdraw(&req)?;
    let mut tx =
        match WriteTx::begin::<pb::Application>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = store::get(tx.conn(), name.program().as_str(), name.id())
        .await?
        .ok_or_else(|| not_found(&req.name))?;
    check_own(ctx, &current.uscc)?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let program = api.load_program(tx.conn(), name.program()).await?;
    refusal::may_withdraw(&current, &program)?;
    let mut updated = current.clone();
    updated.state = AppState::Withdrawn;
    updated.withdraw_reason = reason;
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = application_to_proto(&updated, shows_outcome(ctx, program.state));
    tx.record(
        &updated.name(),
        &updated,
        &application_to_proto(&updated, true),
    )?;
    tx.commit(&response).await?;
    Ok(response)
}
