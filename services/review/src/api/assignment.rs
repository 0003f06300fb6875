//! `AssignReviewers`: automatic (N experts by field, under load limits, never in conflict,
//! fewest open reviews then expert id) or manual (admin only; a conflicted expert is refused
//! naming the conflict). All or nothing: when the assignment cannot be made in full, nothing is
//! assigned. Every review is due on the request's `due_date`, by default 30 days after today in
//! the programme time zone.

use std::collections::BTreeSet;

use qilu_common::auth::Role;
use qilu_common::input::etag::{check_etag, concurrent};
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::review as pb;

use super::{ReviewApi, new_id};
use crate::convert::achievement::achievement_to_proto;
use crate::convert::review::{due_date, review_to_proto};
use crate::domain::achievement::State;
use crate::domain::expert::{self, Candidate, Expert, MAX_REVIEWERS_PER_CALL};
use crate::domain::ids::{AchievementId, ExpertId};
use crate::domain::refusal::{self, AssignRefused};
use crate::domain::review::{AssignmentMethod, Review, ReviewState};
use crate::store::{
    achievement as achievement_store, expert as expert_store, review as review_store,
};

/// How the request asks for experts.
enum Ask {
    Automatic(usize),
    Manual(Vec<ExpertId>),
}

fn parse_ask(ctx: &CallContext, req: &pb::AssignReviewersRequest) -> Result<Ask, ApiError> {
    match (req.reviewer_count, req.experts.is_empty()) {
        (0, true) | (1.., false) | (..0, false) => Err(ApiError::invalid(
            "reviewer_count",
            "EXACTLY_ONE_REQUIRED",
            "set exactly one of reviewer_count (automatic) and experts (manual)",
        )),
        (n, true) => {
            if !(1..=MAX_REVIEWERS_PER_CALL).contains(&n) {
                return Err(ApiError::invalid(
                    "reviewer_count",
                    "OUT_OF_RANGE",
                    format!("reviewer_count is 1-{MAX_REVIEWERS_PER_CALL}, got {n}"),
                ));
            }
            Ok(Ask::Automatic(n as usize))
        }
        (_, false) => {
            if !ctx.has_role(Role::Admin) {
                return Err(ApiError::PermissionDenied(
                    "only an admin may assign named experts; officers assign automatically".into(),
                ));
            }
            let mut ids = Vec::new();
            let mut violations = Vec::new();
            for (i, name) in req.experts.iter().enumerate() {
                match ExpertId::parse_name(name, &format!("experts[{i}]")) {
                    Ok(id) if ids.contains(&id) => {
                        violations.push(qilu_common::FieldViolation::new(
                            format!("experts[{i}]"),
                            "DUPLICATE",
                            format!("{name} is named twice"),
                        ))
                    }
                    Ok(id) => ids.push(id),
                    Err(v) => violations.push(v),
                }
            }
            if violations.is_empty() {
                Ok(Ask::Manual(ids))
            } else {
                Err(ApiError::InvalidArgument(violations))
            }
        }
    }
}

pub(super) async fn assign_reviewers(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::AssignReviewersRequest,
) -> Result<pb::AssignReviewersResponse, ApiError> {
    let id = AchievementId::parse_name(&req.name, "name")?;
    let ask = parse_ask(ctx, &req)?;
    let due_date = due_date(&req.due_date, "due_date", api.clock.today(api.time_zone))?;
    let mut tx =
        match WriteTx::begin::<pb::AssignReviewersResponse>(&api.db, ctx, &req.request_id, &req)
            .await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = api.load_achievement(tx.conn(), &id).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    refusal::may_assign(&current)?;
    let round = current.review_round;
    // Every expert who ever held a review in this round is out (a cancelled review's conflict
    // is never lifted by a later change of affiliation).
    let already: BTreeSet<String> = review_store::of_round(tx.conn(), id.as_str(), round)
        .await?
        .into_iter()
        .map(|r| r.expert_id)
        .collect();
    let counts = review_store::open_counts(tx.conn()).await?;
    let (chosen, excluded, method) = match ask {
        Ask::Automatic(n) => {
            let experts: Vec<Expert> = expert_store::all_matching(tx.conn(), &Default::default())
                .await?
                .into_iter()
                .map(|m| m.into_domain())
                .collect::<Result<_, _>>()
                .map_err(ApiError::internal)?;
            let candidates: Vec<Candidate<'_>> = experts
                .iter()
                .map(|e| Candidate {
                    expert: e,
                    open_reviews: counts.get(&e.id).copied().unwrap_or(0),
                })
                .collect();
            let choice = expert::choose(
                &candidates,
                current.fields.industry_field,
                &current.owner,
                &already,
                n,
            );
            if choice.chosen.len() < n {
                return Err(AssignRefused::NotEnoughExperts {
                    achievement: current.name(),
                    asked: n,
                    eligible: choice.eligible,
                }
                .into());
            }
            let excluded = choice
                .excluded
                .into_iter()
                .map(|(id, reason)| pb::ExcludedExpert {
                    expert: format!("experts/{id}"),
                    reason,
                })
                .collect();
            (choice.chosen, excluded, AssignmentMethod::Automatic)
        }
        Ask::Manual(ids) => {
            for eid in &ids {
                let e = super::experts::load(tx.conn(), eid).await?;
                let open = counts.get(eid.as_str()).copied().unwrap_or(0);
                refusal::may_name_expert(&e, &current, &already, open)?;
            }
            let ids = ids.into_iter().map(|i| i.as_str().to_string()).collect();
            (ids, Vec::new(), AssignmentMethod::Manual)
        }
    };
    let now = tx.now_us();
    let mut reviews = Vec::new();
    for expert_id in chosen {
        let review = Review {
            id: new_id(),
            achievement_id: id.as_str().to_string(),
            expert_id,
            round,
            state: ReviewState::Assigned,
            method,
            assigned_by: ctx.caller.subject.clone(),
            scores: None,
            comment: String::new(),
            veto: None,
            cancel_reason: String::new(),
            assign_time_us: now,
            submit_time_us: None,
            update_time_us: now,
            version: 1,
            due_date: due_date.clone(),
        };
        review_store::insert(tx.conn(), &review).await?;
        let published = review_to_proto(&review, false);
        tx.record(&review.name(), &review, &published)?;
        reviews.push(published);
    }
    super::experts::record_loads(
        &mut tx,
        reviews
            .iter()
            .map(|r| r.expert.trim_start_matches("experts/").to_string()),
    )
    .await?;
    let mut updated = current.clone();
    updated.state = State::UnderReview;
    updated.version = current.version + 1;
    updated.update_time_us = now;
    if !achievement_store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(concurrent(&current.name()));
    }
    tx.record(
        &updated.name(),
        &updated,
        &achievement_to_proto(&updated, false),
    )?;
    let response = pb::AssignReviewersResponse { reviews, excluded };
    tx.commit(&response).await?;
    Ok(response)
}
