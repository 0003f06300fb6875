//! A technology achievement and its lifecycle:
//! DRAFT → SUBMITTED (screening PASS / NEEDS_REVIEW) or VETOED (screening VETO)
//! → UNDER_REVIEW (reviewers assigned) → APPROVED / REJECTED / VETOED (final decision);
//! WITHDRAWN from DRAFT, SUBMITTED or UNDER_REVIEW. A VETOED achievement may be appealed once;
//! an OVERTURNED appeal sends it back to SUBMITTED for a new review round. Stored verdicts and
//! decisions are never rewritten: a new round keeps the old decision in `previous_decisions`.

use serde::{Deserialize, Serialize};

use super::appeal::Appeal;
use super::decision::Decision;
use super::green::GreenData;
use super::screening::Verdict;

/// Longest title (characters).
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest summary (characters).
pub const MAX_SUMMARY_CHARS: usize = 8000;
/// Longest free text of grounds, reasons and evidence (characters).
pub const MAX_LONG_TEXT_CHARS: usize = 8000;
/// Longest withdraw reason and conflict reason (characters).
pub const MAX_REASON_CHARS: usize = 2000;

/// Lifecycle state (`AchievementState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Being written; the only updatable state.
    Draft,
    /// Screened PASS or NEEDS_REVIEW; awaiting reviewers.
    Submitted,
    /// Reviewers assigned.
    UnderReview,
    /// No veto, aggregate at or above the threshold.
    Approved,
    /// No veto, aggregate below the threshold.
    Rejected,
    /// One-vote veto, by rule or expert.
    Vetoed,
    /// Withdrawn; final.
    Withdrawn,
}

impl State {
    /// The proto number (also the stored code).
    pub fn code(self) -> i32 {
        match self {
            State::Draft => 1,
            State::Submitted => 2,
            State::UnderReview => 3,
            State::Approved => 4,
            State::Rejected => 5,
            State::Vetoed => 6,
            State::Withdrawn => 7,
        }
    }

    /// From the stored code.
    pub fn from_code(code: i32) -> Option<State> {
        [
            State::Draft,
            State::Submitted,
            State::UnderReview,
            State::Approved,
            State::Rejected,
            State::Vetoed,
            State::Withdrawn,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }

    /// The enum value name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Draft => "DRAFT",
            State::Submitted => "SUBMITTED",
            State::UnderReview => "UNDER_REVIEW",
            State::Approved => "APPROVED",
            State::Rejected => "REJECTED",
            State::Vetoed => "VETOED",
            State::Withdrawn => "WITHDRAWN",
        }
    }

    /// Whether the achievement may still be withdrawn (before its decision).
    pub fn withdrawable(self) -> bool {
        matches!(self, State::Draft | State::Submitted | State::UnderReview)
    }

    /// Whether a decision has been made (the owner may then read the reviews).
    pub fn decided(self) -> bool {
        matches!(self, State::Approved | State::Rejected | State::Vetoed)
    }
}

/// The caller-settable fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fields {
    /// Title.
    pub title: String,
    /// `IndustryField` number.
    pub industry_field: i32,
    /// TRL 1-9.
    pub technology_readiness_level: i32,
    /// Summary.
    pub summary: String,
    /// Green data.
    pub green_data: GreenData,
}

/// An achievement as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Achievement {
    /// Server-assigned id.
    pub id: String,
    /// Owner USCC.
    pub owner: String,
    /// The settable fields.
    #[serde(flatten)]
    pub fields: Fields,
    /// Lifecycle state.
    pub state: State,
    /// The verdict at the latest submission.
    pub screening: Option<Verdict>,
    /// 0 while a draft; 1 from submission; +1 per overturned appeal.
    pub review_round: i32,
    /// The current decision.
    pub decision: Option<Decision>,
    /// Decisions of earlier rounds.
    pub previous_decisions: Vec<Decision>,
    /// The appeal, if filed.
    pub appeal: Option<Appeal>,
    /// `YYYY-MM-DD` while VETOED.
    pub appeal_deadline: Option<String>,
    /// Why withdrawn.
    pub withdraw_reason: String,
    /// µs of the latest submission.
    pub submit_time_us: Option<i64>,
    /// µs.
    pub create_time_us: i64,
    /// µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Achievement {
    /// `achievements/{id}`.
    pub fn name(&self) -> String {
        format!("achievements/{}", self.id)
    }

    /// AIP-154 etag.
    pub fn etag(&self) -> String {
        qilu_common::input::etag_of(&self.name(), self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_know_what_they_allow() {
        for code in 1..=7 {
            let s = State::from_code(code);
            assert_eq!(s.map(State::code), Some(code));
        }
        assert_eq!(State::from_code(0), None);
        assert!(State::UnderReview.withdrawable() && !State::Vetoed.withdrawable());
        assert!(State::Vetoed.decided() && !State::Submitted.decided());
    }
}
