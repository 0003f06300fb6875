//! Every way a decision of the review service says no, as typed refusals returned by pure
//! functions, and their one mapping each to `FAILED_PRECONDITION` (`ApiError`). Handlers load
//! the facts, ask here, and pass a refusal on with `?`; the reason codes, subjects and messages
//! are written only in their `From` impls, in `convert/refusal.rs`.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::achievement::{Achievement, State};
use super::appeal::{self, Appeal};
use super::decision::SubmittedReview;
use super::expert::Expert;
use super::review::{Review, ReviewState};

/// Why an achievement's lifecycle refuses a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleRefused {
    /// Update or submit of an achievement that is not (or no longer) a DRAFT.
    NotDraft {
        /// `achievements/{id}`.
        name: String,
        /// Its state.
        state: State,
        /// What only a draft may do, for the message.
        only: &'static str,
    },
    /// Withdrawal after the decision.
    NotWithdrawable {
        /// `achievements/{id}`.
        name: String,
        /// Its state.
        state: State,
    },
    /// Assignment to an achievement that is not SUBMITTED or UNDER_REVIEW.
    NotReviewable {
        /// `achievements/{id}`.
        name: String,
        /// Its state.
        state: State,
    },
    /// A decision on an achievement not UNDER_REVIEW.
    NotUnderReview {
        /// `achievements/{id}`.
        name: String,
        /// Its state.
        state: State,
    },
}

/// A DRAFT may be updated.
pub fn may_update(a: &Achievement) -> Result<(), LifecycleRefused> {
    only_draft(a, "only a DRAFT can be updated")
}

/// A DRAFT may be deleted: nothing has been screened, reviewed or decided on it yet. Anything
/// later stays on record and is withdrawn instead.
pub fn may_delete(a: &Achievement) -> Result<(), LifecycleRefused> {
    only_draft(
        a,
        "only a DRAFT can be deleted; a submitted achievement is withdrawn, never deleted",
    )
}

/// A DRAFT may be submitted, if it still has the owner the registry was asked about.
pub fn may_submit(a: &Achievement, owner_checked: &str) -> Result<(), LifecycleRefused> {
    if a.owner != owner_checked {
        return Err(not_draft(a, "only a DRAFT can be submitted"));
    }
    only_draft(a, "only a DRAFT can be submitted")
}

fn only_draft(a: &Achievement, only: &'static str) -> Result<(), LifecycleRefused> {
    if a.state == State::Draft {
        Ok(())
    } else {
        Err(not_draft(a, only))
    }
}

fn not_draft(a: &Achievement, only: &'static str) -> LifecycleRefused {
    LifecycleRefused::NotDraft {
        name: a.name(),
        state: a.state,
        only,
    }
}

/// An achievement may be withdrawn before its decision.
pub fn may_withdraw(a: &Achievement) -> Result<(), LifecycleRefused> {
    if a.state.withdrawable() {
        Ok(())
    } else {
        Err(LifecycleRefused::NotWithdrawable {
            name: a.name(),
            state: a.state,
        })
    }
}

/// Reviewers are assigned to SUBMITTED or UNDER_REVIEW achievements.
pub fn may_assign(a: &Achievement) -> Result<(), LifecycleRefused> {
    if matches!(a.state, State::Submitted | State::UnderReview) {
        Ok(())
    } else {
        Err(LifecycleRefused::NotReviewable {
            name: a.name(),
            state: a.state,
        })
    }
}

/// Only an achievement UNDER_REVIEW is decided.
pub fn may_finalize(a: &Achievement) -> Result<(), LifecycleRefused> {
    if a.state == State::UnderReview {
        Ok(())
    } else {
        Err(LifecycleRefused::NotUnderReview {
            name: a.name(),
            state: a.state,
        })
    }
}

/// No veto rule set is active, so nothing can be screened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoActiveRuleSet {
    /// At submission: an admin has to act before any achievement can go forward.
    AtSubmit,
    /// At a dry-run screening.
    AtScreen,
}

/// What the registry said about an achievement's owner, when it is not an ACTIVE enterprise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRefused {
    /// Registered but not ACTIVE.
    NotActive {
        /// `enterprises/{uscc}`.
        name: String,
        /// Its registry state's proto name (or a phrase for an unknown one).
        state: String,
    },
    /// Not registered.
    NotRegistered {
        /// `enterprises/{uscc}`.
        name: String,
    },
}

/// Why an expert may not take (or keep) a review of an achievement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignRefused {
    /// Fewer available experts than asked for.
    NotEnoughExperts {
        /// `achievements/{id}`.
        achievement: String,
        /// How many were asked for.
        asked: usize,
        /// How many were available.
        eligible: usize,
    },
    /// The expert already holds a review of this round.
    AlreadyAssigned {
        /// `experts/{id}`.
        expert: String,
        /// `achievements/{id}`.
        achievement: String,
        /// The round.
        round: i32,
    },
    /// The expert is in conflict with the owner.
    Conflict {
        /// `EXPERT_AFFILIATED_WITH_OWNER` or `EXPERT_DECLARED_CONFLICT`.
        kind: &'static str,
        /// `experts/{id}`.
        expert: String,
        /// `achievements/{id}`.
        achievement: String,
        /// The conflict, as a sentence.
        conflict: String,
    },
    /// The expert is INACTIVE.
    Inactive {
        /// `experts/{id}`.
        expert: String,
    },
    /// The expert holds as many open reviews as its load limit.
    AtLoadLimit {
        /// `experts/{id}`.
        expert: String,
        /// Its open reviews.
        open: i64,
        /// Its load limit.
        limit: i32,
    },
}

/// Whether expert `e` (holding `open` reviews) may be named to review `a` in its current round,
/// where `already` holds every expert who ever held a review of that round.
pub fn may_name_expert(
    e: &Expert,
    a: &Achievement,
    already: &BTreeSet<String>,
    open: i64,
) -> Result<(), AssignRefused> {
    let expert = e.name();
    if already.contains(&e.id) {
        return Err(AssignRefused::AlreadyAssigned {
            expert,
            achievement: a.name(),
            round: a.review_round,
        });
    }
    if let Some(conflict) = e.conflict_with(&a.owner) {
        return Err(AssignRefused::Conflict {
            kind: conflict.kind(),
            expert,
            achievement: a.name(),
            conflict: conflict.to_string(),
        });
    }
    if !e.active {
        return Err(AssignRefused::Inactive { expert });
    }
    if open >= i64::from(e.load_limit) {
        return Err(AssignRefused::AtLoadLimit {
            expert,
            open,
            limit: e.load_limit,
        });
    }
    Ok(())
}

/// Why an expert's scores are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScoreRefused {
    /// The review was submitted or cancelled already.
    ReviewNotOpen {
        /// The review's name.
        review: String,
    },
    /// The achievement is no longer under review in the review's round.
    NotUnderReview {
        /// `achievements/{id}`.
        achievement: String,
        /// Its state.
        state: State,
        /// Its current round.
        achievement_round: i32,
        /// The review's round.
        review_round: i32,
    },
    /// A conflict found at scoring (the review is cancelled).
    Conflict {
        /// `EXPERT_AFFILIATED_WITH_OWNER` or `EXPERT_DECLARED_CONFLICT`.
        kind: &'static str,
        /// `experts/{id}`.
        expert: String,
        /// `achievements/{id}`.
        achievement: String,
        /// The conflict, as a sentence.
        conflict: String,
    },
}

/// Whether review `r` of achievement `a` is open for scores.
pub fn may_score(r: &Review, a: &Achievement) -> Result<(), ScoreRefused> {
    if r.state != ReviewState::Assigned {
        return Err(ScoreRefused::ReviewNotOpen { review: r.name() });
    }
    if a.state != State::UnderReview || a.review_round != r.round {
        return Err(ScoreRefused::NotUnderReview {
            achievement: a.name(),
            state: a.state,
            achievement_round: a.review_round,
            review_round: r.round,
        });
    }
    Ok(())
}

/// A conflict of expert `e` with the owner of `a`, found at scoring.
pub fn conflict_at_scoring(e: &Expert, a: &Achievement) -> Option<ScoreRefused> {
    e.conflict_with(&a.owner)
        .map(|conflict| ScoreRefused::Conflict {
            kind: conflict.kind(),
            expert: e.name(),
            achievement: a.name(),
            conflict: conflict.to_string(),
        })
}

impl ScoreRefused {
    /// What a review refused this way records as the reason it was cancelled.
    pub fn cancel_reason(&self) -> String {
        match self {
            ScoreRefused::Conflict { conflict, .. } => {
                format!("conflict found at scoring: {conflict}")
            }
            ScoreRefused::ReviewNotOpen { .. } | ScoreRefused::NotUnderReview { .. } => {
                String::new()
            }
        }
    }
}

/// Why an admin may not cancel or reassign a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewRefused {
    /// The review was submitted or cancelled already: only an ASSIGNED review is open.
    NotOpen {
        /// The review's name.
        review: String,
        /// Its state.
        state: ReviewState,
    },
}

/// Whether review `r` may be cancelled or reassigned: only while ASSIGNED (a submitted review is
/// part of the decision's record; a cancelled one is final).
pub fn may_cancel(r: &Review) -> Result<(), ReviewRefused> {
    if r.state == ReviewState::Assigned {
        Ok(())
    } else {
        Err(ReviewRefused::NotOpen {
            review: r.name(),
            state: r.state,
        })
    }
}

/// Why a veto rule set may not be deleted or its id taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSetRefused {
    /// It was active at some time, so verdicts may cite it.
    EverActivated {
        /// `vetoRuleSets/{id}`.
        name: String,
    },
    /// Its id belonged to a rule set that was deleted.
    IdOfDeleted {
        /// `vetoRuleSets/{id}`.
        name: String,
    },
}

/// A rule set may be deleted only if it was never activated (`activate_time_us` unset).
pub fn may_delete_rule_set(
    name: String,
    activate_time_us: Option<i64>,
) -> Result<(), RuleSetRefused> {
    match activate_time_us {
        None => Ok(()),
        Some(_) => Err(RuleSetRefused::EverActivated { name }),
    }
}

/// Why a decision cannot be made yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalizeRefused {
    /// Some assigned reviews are not in.
    ReviewsOutstanding {
        /// `achievements/{id}`.
        achievement: String,
        /// The round.
        round: i32,
        /// Each open review's name and its expert's id.
        open: Vec<(String, String)>,
    },
    /// No review was submitted in the round.
    NoReviews {
        /// `achievements/{id}`.
        achievement: String,
        /// The round.
        round: i32,
    },
}

/// The submitted reviews of `a`'s current round (`reviews`), or why it cannot be decided yet.
pub fn reviews_to_decide(
    a: &Achievement,
    reviews: &[Review],
) -> Result<Vec<SubmittedReview>, FinalizeRefused> {
    let round = a.review_round;
    let open: Vec<(String, String)> = reviews
        .iter()
        .filter(|r| r.state == ReviewState::Assigned)
        .map(|r| (r.name(), r.expert_id.clone()))
        .collect();
    if !open.is_empty() {
        return Err(FinalizeRefused::ReviewsOutstanding {
            achievement: a.name(),
            round,
            open,
        });
    }
    let submitted: Vec<SubmittedReview> = reviews
        .iter()
        .filter(|r| r.state == ReviewState::Submitted)
        .map(|r| SubmittedReview {
            review: r.name(),
            expert: format!("experts/{}", r.expert_id),
            total_points: r.scores.map_or(0, |s| s.total()),
            veto: r.veto.as_ref().map(|v| (v.category, v.evidence.clone())),
        })
        .collect();
    if submitted.is_empty() {
        return Err(FinalizeRefused::NoReviews {
            achievement: a.name(),
            round,
        });
    }
    Ok(submitted)
}

/// Why an appeal cannot be filed or resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppealRefused {
    /// Only a veto can be appealed.
    NotVetoed {
        /// `achievements/{id}`.
        name: String,
        /// Its state.
        state: State,
    },
    /// A veto is appealed once.
    AlreadyFiled {
        /// `achievements/{id}`.
        name: String,
    },
    /// The window closed at the end of `deadline`.
    WindowClosed {
        /// `achievements/{id}`.
        name: String,
        /// The last day to appeal.
        deadline: NaiveDate,
        /// The programme time zone.
        tz: Tz,
    },
    /// A vetoed achievement without its deadline: stored data that breaks the invariant.
    NoDeadline {
        /// `achievements/{id}`.
        name: String,
    },
    /// Nothing to resolve.
    NoPendingAppeal {
        /// `achievements/{id}`.
        name: String,
    },
}

/// Whether the owner may appeal `a`'s veto at `now_us` (programme time zone `tz`).
pub fn may_appeal(a: &Achievement, now_us: i64, tz: Tz) -> Result<(), AppealRefused> {
    let name = a.name();
    if a.state != State::Vetoed {
        return Err(AppealRefused::NotVetoed {
            name,
            state: a.state,
        });
    }
    if a.appeal.is_some() {
        return Err(AppealRefused::AlreadyFiled { name });
    }
    let Some(deadline) = a
        .appeal_deadline
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    else {
        return Err(AppealRefused::NoDeadline { name });
    };
    if !appeal::in_time(deadline, now_us, tz) {
        return Err(AppealRefused::WindowClosed { name, deadline, tz });
    }
    Ok(())
}

/// The appeal of `a` awaiting resolution.
pub fn pending_appeal(a: &Achievement) -> Result<&Appeal, AppealRefused> {
    a.appeal
        .as_ref()
        .filter(|p| p.resolution.is_none() && a.state == State::Vetoed)
        .ok_or_else(|| AppealRefused::NoPendingAppeal { name: a.name() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
