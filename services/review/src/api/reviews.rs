//! Reviews: `SubmitReview` by the assigned expert only (conflicts checked again: a conflict now
//! cancels the review and refuses the scores), and reading reviews under the blind rule: an
//! expert sees others' reviews of an achievement only after submitting its own in that round;
//! an enterprise sees submitted reviews of its own achievements, expert redacted, only once
//! decided.

use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::review as pb;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait};

use super::{ReviewApi, Scope};
use crate::convert::REVIEW_TYPE;
use crate::convert::review::{SubmitReview, list_filter, list_parent, review_to_proto};
use crate::domain::achievement::{Achievement, State};
use crate::domain::ids::{ExpertId, ReviewName};
use crate::domain::refusal;
use crate::domain::review::{Review, ReviewState};
use crate::store::achievement as achievement_store;
use crate::store::review::{self as store, Column, Cursor};

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: REVIEW_TYPE,
        name: name.to_string(),
    }
}

pub(super) async fn load(
    conn: &impl ConnectionTrait,
    name: &ReviewName,
) -> Result<Review, ApiError> {
    let (a, r) = (name.achievement().as_str(), name.review());
    store::get(conn, a, r)
        .await?
        .ok_or_else(|| not_found(&crate::domain::review::review_name(a, r)))?
        .into_domain()
        .map_err(ApiError::internal)
}

pub(super) async fn submit_review(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::SubmitReviewRequest,
) -> Result<pb::Review, ApiError> {
    let SubmitReview {
        name,
        scores,
        comment,
        veto,
    } = SubmitReview::parse(&req)?;
    let Scope::Expert(me) = Scope::of(ctx) else {
        return Err(ApiError::PermissionDenied(
            "only the assigned expert may submit a review".into(),
        ));
    };
    let mut tx = match WriteTx::begin::<pb::Review>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let review = load(tx.conn(), &name).await?;
    if review.expert_id != me {
        return Err(ApiError::PermissionDenied(format!(
            "{} is assigned to another expert; only the assigned expert may submit it",
            review.name()
        )));
    }
    check_etag(&req.etag, &review.name(), review.version)?;
    let achievement = api.load_achievement(tx.conn(), name.achievement()).await?;
    refusal::may_score(&review, &achievement)?;
    let now = tx.now_us();
    let expert = super::experts::load(tx.conn(), &ExpertId::from_stored(me)).await?;
    if let Some(refused) = refusal::conflict_at_scoring(&expert, &achievement) {
        // Found at scoring: the review is cancelled (committed), and the scores refused.
        let cancelled = review.cancelled(refused.cancel_reason(), now);
        if !store::update_if_version(tx.conn(), &cancelled, review.version).await? {
            return Err(concurrent(&review.name()));
        }
        let published = review_to_proto(&cancelled, false);
        tx.record(&cancelled.name(), &cancelled, &published)?;
        super::experts::record_loads(&mut tx, [cancelled.expert_id.clone()]).await?;
        tx.commit(&published).await?;
        return Err(refused.into());
    }
    let mut submitted = review.clone();
    submitted.state = ReviewState::Submitted;
    submitted.scores = Some(scores);
    submitted.comment = comment;
    submitted.veto = veto;
    submitted.submit_time_us = Some(now);
    submitted.update_time_us = now;
    submitted.version = review.version + 1;
    if !store::update_if_version(tx.conn(), &submitted, review.version).await? {
        return Err(concurrent(&review.name()));
    }
    let response = review_to_proto(&submitted, false);
    tx.record(&submitted.name(), &submitted, &response)?;
    super::experts::record_loads(&mut tx, [submitted.expert_id.clone()]).await?;
    tx.commit(&response).await?;
    Ok(response)
}

/// What an expert may see of reviews: its own, and others' in rounds where its own is in.
async fn expert_visibility(
    conn: &impl ConnectionTrait,
    me: &str,
) -> Result<(Condition, Vec<(String, i32)>), ApiError> {
    let mine = store::of_expert(conn, me).await?;
    let submitted: Vec<(String, i32)> = mine
        .iter()
        .filter(|r| r.state == ReviewState::Submitted.code())
        .map(|r| (r.achievement_id.clone(), r.round))
        .collect();
    let mut cond = Condition::any().add(Column::ExpertId.eq(me));
    for (a, round) in &submitted {
        cond = cond.add(
            Condition::all()
                .add(Column::AchievementId.eq(a.clone()))
                .add(Column::Round.eq(*round)),
        );
    }
    Ok((cond, submitted))
}

fn is_decided_own(a: &Achievement, own: &str) -> bool {
    a.owner == own && a.state.decided()
}

pub(super) async fn get_review(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::GetReviewRequest,
) -> Result<pb::Review, ApiError> {
    let name = ReviewName::parse(&req.name, "name").map_err(ApiError::from)?;
    let a_id = name.achievement();
    let review = load(&api.db, &name).await?;
    let hidden = || not_found(&review.name());
    match Scope::of(ctx) {
        Scope::Staff => Ok(review_to_proto(&review, false)),
        Scope::Expert(me) => {
            if review.expert_id == me {
                return Ok(review_to_proto(&review, false));
            }
            let (_, submitted) = expert_visibility(&api.db, &me).await?;
            if submitted.contains(&(a_id.as_str().to_string(), review.round)) {
                return Ok(review_to_proto(&review, false));
            }
            let assigned = store::of_expert(&api.db, &me)
                .await?
                .iter()
                .any(|r| r.achievement_id == a_id.as_str());
            if assigned {
                Err(ApiError::PermissionDenied(
                    "reviews are blind: submit your own review of this achievement first".into(),
                ))
            } else {
                Err(hidden())
            }
        }
        Scope::Enterprise(own) => {
            let a = api.load_achievement(&api.db, a_id).await?;
            if is_decided_own(&a, &own) && review.state == ReviewState::Submitted {
                Ok(review_to_proto(&review, true))
            } else {
                Err(hidden())
            }
        }
    }
}

pub(super) async fn list_reviews(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::ListReviewsRequest,
) -> Result<pb::ListReviewsResponse, ApiError> {
    let achievement_id = list_parent(&req.parent)?;
    let mut filter = list_filter(&req.filter, api.clock.today(api.time_zone))?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.parent)?;
    let after: Option<Cursor> = page.after()?;
    let scope = Scope::of(ctx);
    if let Some(a) = &achievement_id {
        // The parent must exist and be visible to the caller.
        api.visible_achievement(&api.db, ctx, a).await?;
    }
    filter.achievement_id = achievement_id.map(|a| a.as_str().to_string());
    match &scope {
        Scope::Staff => {}
        Scope::Expert(me) => filter.visible = Some(expert_visibility(&api.db, me).await?.0),
        Scope::Enterprise(own) => {
            let decided = achievement_store::ids_owned_in(
                &api.db,
                own,
                &[State::Approved, State::Rejected, State::Vetoed],
            )
            .await?;
            filter.visible = Some(
                Condition::all()
                    .add(Column::State.eq(ReviewState::Submitted.code()))
                    .add(Column::AchievementId.is_in(decided)),
            );
        }
    }
    let mut rows = store::list(&api.db, filter, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&Cursor {
            a: last.achievement_id.clone(),
            t: last.assign_time_us,
            id: last.id.clone(),
        })?,
        _ => String::new(),
    };
    let redact = matches!(scope, Scope::Enterprise(_));
    let reviews = rows
        .into_iter()
        .map(|m| m.into_domain().map(|r| review_to_proto(&r, redact)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(pb::ListReviewsResponse {
        reviews,
        next_page_token,
    })
}
