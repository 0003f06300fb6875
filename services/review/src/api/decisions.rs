//! Decisions: `FinalizeDecision` once every assigned review of the round is in (any veto →
//! VETOED whatever the scores; else the aggregate against the threshold), the owner's one appeal
//! within 30 days of a veto, the admin's resolution, and `BatchGetAchievementStatus` for the
//! awards service.

use std::collections::HashMap;

use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::review as pb;

use super::ReviewApi;
use super::achievements::{check_own, redact_for};
use crate::convert::achievement::achievement_to_proto;
use crate::convert::decision::{ResolveAppeal, batch_names, parse_appeal};
use crate::domain::achievement::{Achievement, State};
use crate::domain::appeal::{self, Appeal, Resolution};
use crate::domain::decision::{self, Outcome};
use crate::domain::ids::AchievementId;
use crate::domain::refusal;
use crate::store::{achievement as store, review as review_store, threshold as threshold_store};

async fn save(
    tx: &mut WriteTx,
    current: &Achievement,
    mut updated: Achievement,
) -> Result<Achievement, ApiError> {
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    tx.record(
        &updated.name(),
        &updated,
        &achievement_to_proto(&updated, false),
    )?;
    Ok(updated)
}

pub(super) async fn finalize_decision(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::FinalizeDecisionRequest,
) -> Result<pb::Achievement, ApiError> {
    let id = AchievementId::parse_name(&req.name, "name")?;
    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = api.load_achievement(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    refusal::may_finalize(&current)?;
    let round = current.review_round;
    let reviews: Vec<_> = review_store::of_round(tx.conn(), id.as_str(), round)
        .await?
        .into_iter()
        .map(|m| m.into_domain())
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    let submitted = refusal::reviews_to_decide(&current, &reviews)?;
    let threshold = threshold_store::current(tx.conn())
        .await?
        .ok_or_else(|| ApiError::internal("no approval threshold is stored"))?;
    let now = tx.now_us();
    let decision = decision::decide(round, &submitted, &threshold, &ctx.caller.subject, now);
    let mut updated = current.clone();
    updated.state = match decision.outcome {
        Outcome::Approved => State::Approved,
        Outcome::Rejected => State::Rejected,
        Outcome::Vetoed => State::Vetoed,
    };
    if decision.outcome == Outcome::Vetoed {
        updated.appeal_deadline = Some(appeal::deadline(now, api.time_zone).to_string());
    }
    tracing::info!(achievement = %current.name(), outcome = ?decision.outcome, "decision made");
    updated.decision = Some(decision);
    let updated = save(&mut tx, &current, updated).await?;
    let response = achievement_to_proto(&updated, redact_for(ctx));
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn appeal_veto(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::AppealVetoRequest,
) -> Result<pb::Achievement, ApiError> {
    let (id, grounds) = parse_appeal(&req)?;
    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = api.load_achievement(tx.conn(), &id).await?;
    check_own(ctx, &current)?;
    check_etag(&req.etag, &current.name(), current.version)?;
    refusal::may_appeal(&current, api.clock.now_us(), api.time_zone)?;
    let mut updated = current.clone();
    updated.appeal = Some(Appeal {
        grounds,
        filed_by: ctx.caller.subject.clone(),
        file_time_us: tx.now_us(),
        resolution: None,
        resolution_reason: String::new(),
        resolved_by: String::new(),
        resolve_time_us: None,
    });
    let updated = save(&mut tx, &current, updated).await?;
    let response = achievement_to_proto(&updated, redact_for(ctx));
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn resolve_appeal(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::ResolveAppealRequest,
) -> Result<pb::Achievement, ApiError> {
    let ResolveAppeal {
        id,
        resolution,
        reason,
    } = ResolveAppeal::parse(&req)?;
    let mut tx =
        match WriteTx::begin::<pb::Achievement>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = api.load_achievement(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let filed = refusal::pending_appeal(&current)?;
    let now = tx.now_us();
    let mut updated = current.clone();
    updated.appeal = Some(Appeal {
        resolution: Some(resolution),
        resolution_reason: reason,
        resolved_by: ctx.caller.subject.clone(),
        resolve_time_us: Some(now),
        ..filed.clone()
    });
    if resolution == Resolution::Overturned {
        // The veto is set aside: the decision goes to history, a new review round begins. The
        // stored screening verdict is never rewritten.
        if let Some(d) = updated.decision.take() {
            updated.previous_decisions.push(d);
        }
        updated.state = State::Submitted;
        updated.review_round = current.review_round + 1;
        updated.appeal_deadline = None;
    }
    let updated = save(&mut tx, &current, updated).await?;
    let response = achievement_to_proto(&updated, redact_for(ctx));
    tx.commit(&response).await?;
    tracing::info!(achievement = %updated.name(), resolution = ?resolution, "appeal resolved");
    Ok(response)
}

pub(super) async fn batch_get_achievement_status(
    api: &ReviewApi,
    _ctx: &CallContext,
    req: pb::BatchGetAchievementStatusRequest,
) -> Result<pb::BatchGetAchievementStatusResponse, ApiError> {
    let ids: Vec<String> = batch_names(&req)?
        .into_iter()
        .map(|id| id.as_str().to_string())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    let found: HashMap<String, Achievement> = store::get_many(&api.db, &unique)
        .await?
        .into_iter()
        .map(|m| m.into_domain().map(|a| (a.id.clone(), a)))
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    let statuses = req
        .names
        .iter()
        .zip(&ids)
        .map(|(name, id)| match found.get(id) {
            None => pb::AchievementStatus {
                name: name.clone(),
                found: false,
                ..Default::default()
            },
            Some(a) => {
                let d = a.decision.as_ref();
                pb::AchievementStatus {
                    name: name.clone(),
                    found: true,
                    owner: format!("enterprises/{}", a.owner),
                    state: a.state.code(),
                    decision: d.map_or(0, |d| d.outcome.code()),
                    vetoed: a.state == State::Vetoed,
                    aggregate_score_millipoints: d.map_or(0, |d| d.aggregate_score_millipoints),
                    score_sum: d.map_or(0, |d| d.score_sum),
                    score_count: d.map_or(0, |d| d.score_count),
                    industry_field: a.fields.industry_field,
                    title: a.fields.title.clone(),
                    decide_time: d.map(|d| qilu_common::time::to_timestamp(d.decide_time_us)),
                }
            }
        })
        .collect();
    Ok(pb::BatchGetAchievementStatusResponse { statuses })
}
