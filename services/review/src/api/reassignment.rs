//! An admin's remedies for an assigned review that does not come: `CancelReview` (the review no
//! longer counts, so the others can decide) and `ReassignReview` (another expert takes it over in
//! the same round, under the rules of manual assignment). Both only while the review is
//! ASSIGNED; both record the admin's reason on the cancelled review (its `cancel_reason`, in the
//! audit event with the admin as actor) and record the experts whose `open_reviews` they move.

use std::collections::BTreeSet;

use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::review as pb;

use super::{ReviewApi, new_id};
use crate::convert::review::{CancelReview, ReassignReview, review_to_proto};
use crate::domain::refusal;
use crate::domain::review::{AssignmentMethod, Review, ReviewState};
use crate::store::review as store;

pub(super) async fn cancel_review(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::CancelReviewRequest,
) -> Result<pb::Review, ApiError> {
    let CancelReview { name, reason } = CancelReview::parse(&req)?;
    let mut tx = match WriteTx::begin::<pb::Review>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let review = super::reviews::load(tx.conn(), &name).await?;
    check_etag(&req.etag, &review.name(), review.version)?;
    refusal::may_cancel(&review)?;
    let cancelled = review.cancelled(reason, tx.now_us());
    if !store::update_if_version(tx.conn(), &cancelled, review.version).await? {
        return Err(concurrent(&review.name()));
    }
    let response = review_to_proto(&cancelled, false);
    tx.record(&cancelled.name(), &cancelled, &response)?;
    super::experts::record_loads(&mut tx, [cancelled.expert_id.clone()]).await?;
    tx.commit(&response).await?;
    tracing::info!(review = %cancelled.name(), "review cancelled by an admin");
    Ok(response)
}

pub(super) async fn reassign_review(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::ReassignReviewRequest,
) -> Result<pb::ReassignReviewResponse, ApiError> {
    let ReassignReview {
        name,
        expert,
        reason,
        due_date,
    } = ReassignReview::parse(&req, api.clock.today(api.time_zone))?;
    let mut tx =
        match WriteTx::begin::<pb::ReassignReviewResponse>(&api.db, ctx, &req.request_id, &req)
            .await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let review = super::reviews::load(tx.conn(), &name).await?;
    check_etag(&req.etag, &review.name(), review.version)?;
    refusal::may_cancel(&review)?;
    let achievement = api.load_achievement(tx.conn(), name.achievement()).await?;
    refusal::may_assign(&achievement)?;
    // The new expert passes what a manually named one must: never in conflict with the owner,
    // never one who held a review of this round (the one replaced included), active, under its
    // load limit.
    let already: BTreeSet<String> =
        store::of_round(tx.conn(), &review.achievement_id, review.round)
            .await?
            .into_iter()
            .map(|r| r.expert_id)
            .collect();
    let new_expert = super::experts::load(tx.conn(), &expert).await?;
    let open = store::open_counts(tx.conn())
        .await?
        .get(expert.as_str())
        .copied()
        .unwrap_or(0);
    refusal::may_name_expert(&new_expert, &achievement, &already, open)?;
    let now = tx.now_us();
    let cancelled = review.cancelled(format!("reassigned to {}: {reason}", expert.name()), now);
    if !store::update_if_version(tx.conn(), &cancelled, review.version).await? {
        return Err(concurrent(&review.name()));
    }
    let cancelled_review = review_to_proto(&cancelled, false);
    tx.record(&cancelled.name(), &cancelled, &cancelled_review)?;
    let replacement = Review {
        id: new_id(),
        achievement_id: review.achievement_id.clone(),
        expert_id: expert.as_str().to_string(),
        round: review.round,
        state: ReviewState::Assigned,
        method: AssignmentMethod::Manual,
        assigned_by: ctx.caller.subject.clone(),
        scores: None,
        comment: String::new(),
        veto: None,
        cancel_reason: String::new(),
        assign_time_us: now,
        submit_time_us: None,
        update_time_us: now,
        version: 1,
        due_date,
    };
    store::insert(tx.conn(), &replacement).await?;
    let new_review = review_to_proto(&replacement, false);
    tx.record(&replacement.name(), &replacement, &new_review)?;
    super::experts::record_loads(
        &mut tx,
        [cancelled.expert_id.clone(), replacement.expert_id.clone()],
    )
    .await?;
    let response = pb::ReassignReviewResponse {
        cancelled_review: Some(cancelled_review),
        review: Some(new_review),
    };
    tx.commit(&response).await?;
    tracing::info!(review = %cancelled.name(), to = %replacement.name(), "review reassigned");
    Ok(response)
}
