//! Each refusal of `domain::refusal` as the `ApiError` a caller gets, mapped once here (codes,
//! `PreconditionFailure` kinds and subjects, messages), as the registry maps its refusals in
//! `convert/`. The decisions themselves stay pure in `domain/`.

use qilu_common::ApiError;
use qilu_common::error::Precondition;

use crate::domain::appeal;
use crate::domain::refusal::{
    AppealRefused, AssignRefused, FinalizeRefused, LifecycleRefused, NoActiveRuleSet, OwnerRefused,
    ReviewRefused, RuleSetRefused, ScoreRefused,
};

impl From<LifecycleRefused> for ApiError {
    fn from(r: LifecycleRefused) -> ApiError {
        match r {
            LifecycleRefused::NotDraft { name, state, only } => ApiError::precondition(
                "ACHIEVEMENT_NOT_DRAFT",
                name.clone(),
                format!("{name} is {}; {only}", state.as_str()),
            ),
            LifecycleRefused::NotWithdrawable { name, state } => ApiError::precondition(
                "ACHIEVEMENT_NOT_WITHDRAWABLE",
                name.clone(),
                format!(
                    "{name} is {}; only DRAFT, SUBMITTED or UNDER_REVIEW can be withdrawn",
                    state.as_str()
                ),
            ),
            LifecycleRefused::NotReviewable { name, state } => ApiError::precondition(
                "ACHIEVEMENT_NOT_REVIEWABLE",
                name.clone(),
                format!(
                    "{name} is {}; reviewers are assigned only to SUBMITTED or UNDER_REVIEW achievements",
                    state.as_str()
                ),
            ),
            LifecycleRefused::NotUnderReview { name, state } => ApiError::precondition(
                "ACHIEVEMENT_NOT_UNDER_REVIEW",
                name.clone(),
                format!(
                    "{name} is {}; only an achievement UNDER_REVIEW is decided",
                    state.as_str()
                ),
            ),
        }
    }
}

impl From<NoActiveRuleSet> for ApiError {
    fn from(r: NoActiveRuleSet) -> ApiError {
        let message = match r {
            NoActiveRuleSet::AtSubmit => "no veto rule set is active; an admin must activate one",
            NoActiveRuleSet::AtScreen => "no veto rule set is active",
        };
        ApiError::precondition("NO_ACTIVE_RULE_SET", "vetoRuleSets", message)
    }
}

impl From<OwnerRefused> for ApiError {
    fn from(r: OwnerRefused) -> ApiError {
        match r {
            OwnerRefused::NotActive { name, state } => ApiError::precondition(
                "OWNER_NOT_ACTIVE",
                name.clone(),
                format!(
                    "{name} is {state} in the registry; only an ACTIVE enterprise may hold achievements under review"
                ),
            ),
            OwnerRefused::NotRegistered { name } => ApiError::precondition(
                "OWNER_NOT_REGISTERED",
                name.clone(),
                format!("{name} is not registered in the enterprise registry"),
            ),
        }
    }
}

impl From<AssignRefused> for ApiError {
    fn from(r: AssignRefused) -> ApiError {
        match r {
            AssignRefused::NotEnoughExperts {
                achievement,
                asked,
                eligible,
            } => ApiError::precondition(
                "NOT_ENOUGH_EXPERTS",
                achievement,
                format!(
                    "asked for {asked} experts but found {eligible} available (active, reviewing the field, under their load limit, not already assigned, not in conflict); nothing was assigned"
                ),
            ),
            AssignRefused::AlreadyAssigned {
                expert,
                achievement,
                round,
            } => ApiError::precondition(
                "EXPERT_ALREADY_ASSIGNED",
                expert.clone(),
                format!("{expert} already holds a review of {achievement} in round {round}"),
            ),
            AssignRefused::Conflict {
                kind,
                expert,
                achievement,
                conflict,
            } => ApiError::precondition(
                kind,
                expert.clone(),
                format!("{expert} may not review {achievement}: {conflict}"),
            ),
            AssignRefused::Inactive { expert } => ApiError::precondition(
                "EXPERT_INACTIVE",
                expert.clone(),
                format!("{expert} is INACTIVE and takes no new assignments"),
            ),
            AssignRefused::AtLoadLimit {
                expert,
                open,
                limit,
            } => ApiError::precondition(
                "EXPERT_AT_LOAD_LIMIT",
                expert.clone(),
                format!("{expert} holds {open} open reviews, its load limit is {limit}"),
            ),
        }
    }
}

impl From<ScoreRefused> for ApiError {
    fn from(r: ScoreRefused) -> ApiError {
        match r {
            ScoreRefused::ReviewNotOpen { review } => ApiError::precondition(
                "REVIEW_NOT_OPEN",
                review.clone(),
                format!("{review} is not open for scores (it was submitted or cancelled)"),
            ),
            ScoreRefused::NotUnderReview {
                achievement,
                state,
                achievement_round,
                review_round,
            } => ApiError::precondition(
                "ACHIEVEMENT_NOT_UNDER_REVIEW",
                achievement.clone(),
                format!(
                    "{achievement} is {} in round {achievement_round}; this review belongs to round {review_round}",
                    state.as_str()
                ),
            ),
            ScoreRefused::Conflict {
                kind,
                expert,
                achievement,
                conflict,
            } => ApiError::precondition(
                kind,
                expert.clone(),
                format!(
                    "{expert} may not score {achievement}: {conflict}; the review is cancelled"
                ),
            ),
        }
    }
}

impl From<ReviewRefused> for ApiError {
    fn from(r: ReviewRefused) -> ApiError {
        match r {
            ReviewRefused::NotOpen { review, state } => ApiError::precondition(
                "REVIEW_NOT_OPEN",
                review.clone(),
                format!(
                    "{review} is {}; only an ASSIGNED review can be cancelled or reassigned",
                    state.as_str()
                ),
            ),
        }
    }
}

impl From<RuleSetRefused> for ApiError {
    fn from(r: RuleSetRefused) -> ApiError {
        match r {
            RuleSetRefused::EverActivated { name } => ApiError::precondition(
                "VETO_RULE_SET_ACTIVATED",
                name.clone(),
                format!(
                    "{name} has been activated, so verdicts may cite it; only a rule set never activated can be deleted (activate another to supersede it)"
                ),
            ),
            RuleSetRefused::IdOfDeleted { name } => ApiError::precondition(
                "ID_OF_DELETED_RESOURCE",
                name.clone(),
                format!(
                    "{name} was deleted; a deleted rule set's id is never given to another, so the audit log names one rule set per id"
                ),
            ),
        }
    }
}

impl From<FinalizeRefused> for ApiError {
    fn from(r: FinalizeRefused) -> ApiError {
        match r {
            FinalizeRefused::ReviewsOutstanding {
                achievement,
                round,
                open,
            } => ApiError::FailedPrecondition {
                message: format!(
                    "{} of the reviews of {achievement} round {round} are not in yet",
                    open.len()
                ),
                violations: open
                    .into_iter()
                    .map(|(review, expert)| Precondition {
                        kind: "REVIEW_NOT_SUBMITTED".into(),
                        description: format!("experts/{expert} has not submitted {review}"),
                        subject: review,
                    })
                    .collect(),
            },
            FinalizeRefused::NoReviews { achievement, round } => ApiError::precondition(
                "NO_REVIEWS",
                achievement.clone(),
                format!("{achievement} has no submitted review in round {round}; assign reviewers"),
            ),
        }
    }
}

impl From<AppealRefused> for ApiError {
    fn from(r: AppealRefused) -> ApiError {
        match r {
            AppealRefused::NotVetoed { name, state } => ApiError::precondition(
                "ACHIEVEMENT_NOT_VETOED",
                name.clone(),
                format!("{name} is {}; only a veto can be appealed", state.as_str()),
            ),
            AppealRefused::AlreadyFiled { name } => ApiError::precondition(
                "APPEAL_ALREADY_FILED",
                name.clone(),
                format!("{name} has been appealed already; a veto is appealed once"),
            ),
            AppealRefused::WindowClosed { name, deadline, tz } => ApiError::precondition(
                "APPEAL_WINDOW_CLOSED",
                name.clone(),
                format!(
                    "the appeal window of {name} closed at the end of {deadline} ({} days after the veto, {tz})",
                    appeal::APPEAL_WINDOW_DAYS
                ),
            ),
            AppealRefused::NoDeadline { name } => {
                ApiError::internal(format!("{name} is VETOED without an appeal deadline"))
            }
            AppealRefused::NoPendingAppeal { name } => ApiError::precondition(
                "NO_PENDING_APPEAL",
                name.clone(),
                format!("{name} has no pending appeal"),
            ),
        }
    }
}
