//! Veto rule sets (versioned data: created immutable and INACTIVE, then activated; exactly one
//! ACTIVE; deleted only if never activated, its id and version never reused) and
//! `ScreenAchievement`, the dry run that stores nothing.

use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::review as pb;

use super::ReviewApi;
use crate::convert::RULE_SET_TYPE;
use crate::convert::rule_set::{
    CreateRuleSet, ScreenRequest, list_filter, rule_set_to_proto, verdict_to_proto,
};
use crate::domain::ids::RuleSetId;
use crate::domain::refusal::{self, NoActiveRuleSet, RuleSetRefused};
use crate::domain::screening::{self, RuleSetRef};
use crate::store::rule_set::{self as store, RuleSet};

fn not_found(id: &RuleSetId) -> ApiError {
    ApiError::NotFound {
        resource_type: RULE_SET_TYPE,
        name: id.name(),
    }
}

async fn load(conn: &impl sea_orm::ConnectionTrait, id: &RuleSetId) -> Result<RuleSet, ApiError> {
    store::get(conn, id.as_str())
        .await?
        .ok_or_else(|| not_found(id))?
        .into_domain()
        .map_err(ApiError::internal)
}

pub(super) async fn create_veto_rule_set(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::CreateVetoRuleSetRequest,
) -> Result<pb::VetoRuleSet, ApiError> {
    let CreateRuleSet {
        id,
        display_name,
        description,
        rules,
    } = CreateRuleSet::parse(&req)?;
    let mut tx =
        match WriteTx::begin::<pb::VetoRuleSet>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    if store::was_deleted(tx.conn(), id.as_str()).await? {
        return Err(RuleSetRefused::IdOfDeleted { name: id.name() }.into());
    }
    let now = tx.now_us();
    let rule_set = RuleSet {
        version: store::next_version(tx.conn()).await?,
        id: id.as_str().to_string(),
        display_name,
        description,
        rules,
        active: false,
        activate_time_us: None,
        create_time_us: now,
        update_time_us: now,
        row_version: 1,
    };
    if let Err(e) = store::insert(tx.conn(), &rule_set).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: RULE_SET_TYPE,
                name: rule_set.name(),
            }
        } else {
            e.into()
        });
    }
    let response = rule_set_to_proto(&rule_set);
    tx.record(&rule_set.name(), &rule_set, &response)?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn get_veto_rule_set(
    api: &ReviewApi,
    _ctx: &CallContext,
    req: pb::GetVetoRuleSetRequest,
) -> Result<pb::VetoRuleSet, ApiError> {
    let id = RuleSetId::parse_name(&req.name, "name")?;
    Ok(rule_set_to_proto(&load(&api.db, &id).await?))
}

pub(super) async fn list_veto_rule_sets(
    api: &ReviewApi,
    _ctx: &CallContext,
    req: pb::ListVetoRuleSetsRequest,
) -> Result<pb::ListVetoRuleSetsResponse, ApiError> {
    let only_active = list_filter(&req.filter)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, "")?;
    let after: Option<i64> = page.after()?;
    let mut rows = store::list(&api.db, only_active, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&last.version)?,
        _ => String::new(),
    };
    let veto_rule_sets = rows
        .into_iter()
        .map(|m| m.into_domain().map(|r| rule_set_to_proto(&r)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(pb::ListVetoRuleSetsResponse {
        veto_rule_sets,
        next_page_token,
    })
}

pub(super) async fn activate_veto_rule_set(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::ActivateVetoRuleSetRequest,
) -> Result<pb::VetoRuleSet, ApiError> {
    let id = RuleSetId::parse_name(&req.name, "name")?;
    let mut tx =
        match WriteTx::begin::<pb::VetoRuleSet>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = load(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.row_version)?;
    let now = tx.now_us();
    // The previously active one (if another) becomes INACTIVE in the same transaction.
    if let Some(previous) = store::active(tx.conn()).await? {
        let previous = previous.into_domain().map_err(ApiError::internal)?;
        if previous.id != current.id {
            let mut off = previous.clone();
            off.active = false;
            off.update_time_us = now;
            off.row_version = previous.row_version + 1;
            if !store::update_if_version(tx.conn(), &off, previous.row_version).await? {
                return Err(concurrent(&previous.name()));
            }
            tx.record(&off.name(), &off, &rule_set_to_proto(&off))?;
        }
    }
    let mut on = current.clone();
    on.active = true;
    on.activate_time_us = Some(now);
    on.update_time_us = now;
    on.row_version = current.row_version + 1;
    if !store::update_if_version(tx.conn(), &on, current.row_version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = rule_set_to_proto(&on);
    tx.record(&on.name(), &on, &response)?;
    tx.commit(&response).await?;
    tracing::info!(rule_set = %on.name(), version = on.version, "veto rule set activated");
    Ok(response)
}

pub(super) async fn delete_veto_rule_set(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::DeleteVetoRuleSetRequest,
) -> Result<(), ApiError> {
    let id = RuleSetId::parse_name(&req.name, "name")?;
    let mut tx = match WriteTx::begin::<()>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(()) => return Ok(()),
        Begun::Fresh(tx) => tx,
    };
    let current = load(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.row_version)?;
    refusal::may_delete_rule_set(current.name(), current.activate_time_us)?;
    if !store::delete_if_version(tx.conn(), &current, current.row_version, tx.now_us()).await? {
        return Err(concurrent(&current.name()));
    }
    tx.record(&current.name(), &current, &rule_set_to_proto(&current))?;
    tx.commit(&()).await?;
    tracing::info!(rule_set = %current.name(), version = current.version, "veto rule set deleted");
    Ok(())
}

pub(super) async fn screen_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::ScreenAchievementRequest,
) -> Result<pb::ScreeningVerdict, ApiError> {
    let screen = ScreenRequest::parse(&req)?;
    let rule_set = match &screen.rule_set {
        None => store::active(&api.db)
            .await?
            .ok_or(NoActiveRuleSet::AtScreen)?
            .into_domain()
            .map_err(ApiError::internal)?,
        Some(id) => load(&api.db, id).await?,
    };
    let a = api
        .visible_achievement(&api.db, ctx, &screen.achievement)
        .await?;
    let name = rule_set.name();
    let verdict = screening::screen(
        RuleSetRef {
            name: &name,
            version: rule_set.version,
            description: &rule_set.description,
            rules: &rule_set.rules,
        },
        &a.owner,
        &a.fields.green_data,
        api.clock.now_us(),
    );
    Ok(verdict_to_proto(&verdict))
}
