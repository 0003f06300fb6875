//! Veto rule sets (versioned data: created immutable and INACTIVE, then activated; exactly one
//! ACTIVE) and `ScreenAchievement`, the dry run that stores nothing.

use qilu_common::filter::{Filter, Op};
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::review as pb;

use super::ReviewApi;
use crate::convert::{
    self, RULE_SET_TYPE, parse_achievement_name, parse_rule_set_name, rule_set_to_proto,
    verdict_to_proto,
};
use crate::domain::screening::{self, RuleSetRef};
use crate::store::rule_set::{self as store, RuleSet};

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: RULE_SET_TYPE,
        name: format!("vetoRuleSets/{id}"),
    }
}

async fn load(conn: &impl sea_orm::ConnectionTrait, id: &str) -> Result<RuleSet, ApiError> {
    store::get(conn, id)
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
    let mut violations = Vec::new();
    let id = convert::parse_user_id(&req.veto_rule_set_id, "veto_rule_set_id")
        .map_err(|e| {
            if let ApiError::InvalidArgument(v) = e {
                violations.extend(v);
            }
        })
        .ok();
    let parsed = match req.veto_rule_set.as_ref() {
        None => {
            violations.push(qilu_common::FieldViolation::new(
                "veto_rule_set",
                "REQUIRED",
                "veto_rule_set is required",
            ));
            None
        }
        Some(p) => convert::parse_rules(p)
            .map_err(|v| violations.extend(v))
            .ok(),
    };
    let (Some(id), Some((display_name, description, rules))) = (id, parsed) else {
        return Err(ApiError::InvalidArgument(violations));
    };
    let mut tx =
        match WriteTx::begin::<pb::VetoRuleSet>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let rule_set = RuleSet {
        version: store::next_version(tx.conn()).await?,
        id,
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
    tx.record(&rule_set.name(), &rule_set)?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn get_veto_rule_set(
    api: &ReviewApi,
    _ctx: &CallContext,
    req: pb::GetVetoRuleSetRequest,
) -> Result<pb::VetoRuleSet, ApiError> {
    let id = parse_rule_set_name(&req.name, "name")?;
    Ok(rule_set_to_proto(&load(&api.db, &id).await?))
}

pub(super) async fn list_veto_rule_sets(
    api: &ReviewApi,
    _ctx: &CallContext,
    req: pb::ListVetoRuleSetsRequest,
) -> Result<pb::ListVetoRuleSetsResponse, ApiError> {
    let filter = Filter::parse(&req.filter)?;
    filter.only(&["state"])?;
    let mut only_active = None;
    for c in filter.conditions() {
        let state = pb::VetoRuleSetState::from_str_name(&c.value)
            .filter(|s| *s != pb::VetoRuleSetState::Unspecified && c.op == Op::Eq)
            .ok_or_else(|| {
                ApiError::invalid(
                    "filter",
                    "INVALID_FILTER",
                    "state supports = VETO_RULE_SET_STATE_ACTIVE or VETO_RULE_SET_STATE_INACTIVE",
                )
            })?;
        only_active = Some(state == pb::VetoRuleSetState::Active);
    }
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
    let id = parse_rule_set_name(&req.name, "name")?;
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
            tx.record(&off.name(), &off)?;
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
    tx.record(&on.name(), &on)?;
    tx.commit(&response).await?;
    tracing::info!(rule_set = %on.name(), version = on.version, "veto rule set activated");
    Ok(response)
}

pub(super) async fn screen_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::ScreenAchievementRequest,
) -> Result<pb::ScreeningVerdict, ApiError> {
    let id = parse_achievement_name(&req.name, "name")?;
    let rule_set = if req.rule_set.is_empty() {
        store::active(&api.db)
            .await?
            .ok_or_else(|| {
                ApiError::precondition(
                    "NO_ACTIVE_RULE_SET",
                    "vetoRuleSets",
                    "no veto rule set is active",
                )
            })?
            .into_domain()
            .map_err(ApiError::internal)?
    } else {
        load(&api.db, &parse_rule_set_name(&req.rule_set, "rule_set")?).await?
    };
    let a = api.visible_achievement(&api.db, ctx, &id).await?;
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
