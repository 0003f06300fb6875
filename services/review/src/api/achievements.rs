//! Achievements: create (owner checked in the registry), get, list, update (drafts only),
//! submit (registry check, then rule screening with the active rule set: VETO → VETOED at once),
//! withdraw, and delete (drafts only: the row goes; the audit event of the deletion keeps the
//! draft as it was, and the feed shows the deletion without state).

use qilu_common::idempotency;
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::review as pb;

use super::{ReviewApi, Scope, new_id};
use crate::convert::achievement::{
    CreateAchievement, UpdateAchievement, achievement_to_proto, list_filter, list_order,
    withdraw_reason,
};
use crate::convert::review::review_to_proto;
use crate::domain::achievement::{Achievement, State};
use crate::domain::ids::AchievementId;
use crate::domain::refusal::{self, NoActiveRuleSet};
use crate::domain::review::ReviewState;
use crate::domain::screening::{self, RuleSetRef};
use crate::domain::{appeal, decision};
use crate::store::achievement::{self as store, Cursor, Order};
use crate::store::{review as review_store, rule_set as rule_set_store};

/// Enterprise callers see expert names redacted.
pub(super) fn redact_for(ctx: &CallContext) -> bool {
    matches!(Scope::of(ctx), Scope::Enterprise(_))
}

/// An enterprise caller may act only on its own achievements (NOT_FOUND otherwise, as if the
/// achievement did not exist).
pub(super) fn check_own(ctx: &CallContext, a: &Achievement) -> Result<(), ApiError> {
    match Scope::of(ctx) {
        Scope::Enterprise(own) if own != a.owner => Err(super::achievement_not_found(
            &AchievementId::from_stored(a.id.as_str()),
        )),
        _ => Ok(()),
    }
}

pub(super) async fn create_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::CreateAchievementRequest,
) -> Result<pb::Achievement, ApiError> {
    let CreateAchievement { owner, fields } = CreateAchievement::parse(&req)?;
    if let Scope::Enterprise(own) = Scope::of(ctx)
        && own != owner
    {
        return Err(ApiError::PermissionDenied(
            "an enterprise token may create achievements only for its own enterprise".into(),
        ));
    }
    // A retry of a completed create replays without the registry (which may be down now).
    if let Some(previous) =
        idempotency::previous::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await?
    {
        return Ok(previous);
    }
    // The registry first: nothing is written when it is down or says no.
    api.check_registered(ctx, &owner, "achievement.owner")
        .await?;

    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let now = tx.now_us();
    let achievement = Achievement {
        id: new_id(),
        owner,
        fields,
        state: State::Draft,
        screening: None,
        review_round: 0,
        decision: None,
        previous_decisions: Vec::new(),
        appeal: None,
        appeal_deadline: None,
        withdraw_reason: String::new(),
        submit_time_us: None,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    store::insert(tx.conn(), &achievement).await?;
    let response = achievement_to_proto(&achievement, redact_for(ctx));
    tx.record(
        &achievement.name(),
        &achievement,
        &achievement_to_proto(&achievement, false),
    )?;
    tx.commit(&response).await?;
    tracing::info!(achievement = %achievement.name(), owner = %achievement.owner, "achievement drafted");
    Ok(response)
}

pub(super) async fn get_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::GetAchievementRequest,
) -> Result<pb::Achievement, ApiError> {
    let id = AchievementId::parse_name(&req.name, "name")?;
    let a = api.visible_achievement(&api.db, ctx, &id).await?;
    Ok(achievement_to_proto(&a, redact_for(ctx)))
}

pub(super) async fn list_achievements(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::ListAchievementsRequest,
) -> Result<pb::ListAchievementsResponse, ApiError> {
    let mut filter = list_filter(&req.filter)?;
    let order = list_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<Cursor> = page.after()?;
    match Scope::of(ctx) {
        Scope::Staff => {}
        Scope::Enterprise(own) => {
            if filter.owner.as_ref().is_some_and(|o| *o != own) {
                // Another enterprise's achievements: there is nothing this caller may see.
                return Ok(pb::ListAchievementsResponse::default());
            }
            filter.owner = Some(own);
        }
        Scope::Expert(expert) => {
            let mut ids: Vec<String> = review_store::of_expert(&api.db, &expert)
                .await?
                .into_iter()
                .filter(|r| r.state != ReviewState::Cancelled.code())
                .map(|r| r.achievement_id)
                .collect();
            ids.sort();
            ids.dedup();
            filter.only_ids = Some(ids);
        }
    }
    let mut rows = store::list(&api.db, &filter, order, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&Cursor {
            t: match order {
                Order::CreateTime { .. } => last.create_time_us,
                Order::SubmitTime { .. } => last.submit_time_us,
            },
            id: last.id.clone(),
        })?,
        _ => String::new(),
    };
    let redact = redact_for(ctx);
    let achievements = rows
        .into_iter()
        .map(|m| m.into_domain().map(|a| achievement_to_proto(&a, redact)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(pb::ListAchievementsResponse {
        achievements,
        next_page_token,
    })
}

pub(super) async fn update_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::UpdateAchievementRequest,
) -> Result<pb::Achievement, ApiError> {
    let update = UpdateAchievement::parse(&req)?;
    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = api.load_achievement(tx.conn(), &update.id).await?;
    check_own(ctx, &current)?;
    check_etag(update.etag, &current.name(), current.version)?;
    refusal::may_update(&current)?;
    let mut updated = current.clone();
    updated.fields = update.apply_update(&current.fields)?;
    if updated.fields == current.fields {
        // Sent back as read (or otherwise unchanged): nothing to write or audit, and the etag
        // stays; a retry with the request id still replays this answer.
        let response = achievement_to_proto(&current, redact_for(ctx));
        tx.commit_unchanged(&response).await?;
        return Ok(response);
    }
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = achievement_to_proto(&updated, redact_for(ctx));
    tx.record(
        &updated.name(),
        &updated,
        &achievement_to_proto(&updated, false),
    )?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn submit_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::SubmitAchievementRequest,
) -> Result<pb::Achievement, ApiError> {
    let id = AchievementId::parse_name(&req.name, "name")?;
    // Read first to learn the owner, then ask the registry before any write transaction opens.
    let before = api.load_achievement(&api.db, &id).await?;
    check_own(ctx, &before)?;
    // A retry of a completed submit replays without the registry (which may be down now).
    if let Some(previous) =
        idempotency::previous::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await?
    {
        return Ok(previous);
    }
    if before.state == State::Draft {
        api.check_registered(ctx, &before.owner, "name").await?;
    }

    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = api.load_achievement(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    refusal::may_submit(&current, &before.owner)?;
    let rule_set = rule_set_store::active(tx.conn())
        .await?
        .ok_or(NoActiveRuleSet::AtSubmit)?
        .into_domain()
        .map_err(ApiError::internal)?;
    let now = tx.now_us();
    let rule_set_name = rule_set.name();
    let verdict = screening::screen(
        RuleSetRef {
            name: &rule_set_name,
            version: rule_set.version,
            description: &rule_set.description,
            rules: &rule_set.rules,
        },
        &current.owner,
        &current.fields.green_data,
        now,
    );
    let mut updated = current.clone();
    updated.review_round = current.review_round.max(1);
    updated.submit_time_us = Some(now);
    if verdict.outcome == screening::Outcome::Veto {
        // One-vote veto by rule: final at once, unless an appeal succeeds.
        updated.state = State::Vetoed;
        updated.decision = Some(decision::rule_veto(updated.review_round, &verdict));
        updated.appeal_deadline = Some(appeal::deadline(now, api.time_zone).to_string());
    } else {
        updated.state = State::Submitted;
    }
    updated.screening = Some(verdict);
    updated.version = current.version + 1;
    updated.update_time_us = now;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = achievement_to_proto(&updated, redact_for(ctx));
    tx.record(
        &updated.name(),
        &updated,
        &achievement_to_proto(&updated, false),
    )?;
    tx.commit(&response).await?;
    tracing::info!(
        achievement = %updated.name(),
        state = updated.state.as_str(),
        rule_set = %rule_set_name,
        "achievement submitted and screened"
    );
    Ok(response)
}

pub(super) async fn withdraw_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::WithdrawAchievementRequest,
) -> Result<pb::Achievement, ApiError> {
    let id = AchievementId::parse_name(&req.name, "name")?;
    let reason = withdraw_reason(&req)?;
    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = api.load_achievement(tx.conn(), &id).await?;
    check_own(ctx, &current)?;
    check_etag(&req.etag, &current.name(), current.version)?;
    refusal::may_withdraw(&current)?;
    let now = tx.now_us();
    // Open reviews are cancelled with the achievement.
    let mut unloaded = Vec::new();
    for model in review_store::of_round(tx.conn(), id.as_str(), current.review_round).await? {
        let review = model.into_domain().map_err(ApiError::internal)?;
        if review.state != ReviewState::Assigned {
            continue;
        }
        let mut cancelled = review.clone();
        cancelled.state = ReviewState::Cancelled;
        cancelled.cancel_reason = "achievement withdrawn".into();
        cancelled.update_time_us = now;
        cancelled.version = review.version + 1;
        if !review_store::update_if_version(tx.conn(), &cancelled, review.version).await? {
            return Err(concurrent(&review.name()));
        }
        tx.record(
            &cancelled.name(),
            &cancelled,
            &review_to_proto(&cancelled, false),
        )?;
        unloaded.push(cancelled.expert_id);
    }
    super::experts::record_loads(&mut tx, unloaded).await?;
    let mut updated = current.clone();
    updated.state = State::Withdrawn;
    updated.withdraw_reason = reason;
    updated.version = current.version + 1;
    updated.update_time_us = now;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    let response = achievement_to_proto(&updated, redact_for(ctx));
    tx.record(
        &updated.name(),
        &updated,
        &achievement_to_proto(&updated, false),
    )?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn delete_achievement(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::DeleteAchievementRequest,
) -> Result<(), ApiError> {
    let id = AchievementId::parse_name(&req.name, "name")?;
    let mut tx = match WriteTx::begin::<()>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(()) => return Ok(()),
        Begun::Fresh(tx) => tx,
    };
    let current = api.load_achievement(tx.conn(), &id).await?;
    check_own(ctx, &current)?;
    check_etag(&req.etag, &current.name(), current.version)?;
    refusal::may_delete(&current)?;
    if !store::delete_if_version(tx.conn(), id.as_str(), current.version).await? {
        return Err(concurrent(&current.name()));
    }
    tx.record(
        &current.name(),
        &current,
        &achievement_to_proto(&current, false),
    )?;
    tx.commit(&()).await?;
    tracing::info!(achievement = %current.name(), "draft achievement deleted");
    Ok(())
}
