//! An expert's review: per-criterion scores in the contract's ranges, a comment, and an optional
//! one-vote veto. A review is ASSIGNED by assignment, SUBMITTED once by its expert, or CANCELLED
//! (conflict found, achievement withdrawn, cancelled or reassigned by an admin); it never changes
//! after that. An ASSIGNED review is due on a date; past it, it is overdue.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// Days an expert has by default, counted from the assignment day in the programme time zone
/// (issue 18: a review that is never submitted must become visible, so every review gets a due
/// date; the contract states this default).
pub const DEFAULT_REVIEW_DAYS: u64 = 30;

/// The furthest a due date may be set after the assignment day: a year, so a typo (2062 for
/// 2026) is refused rather than hiding a review from the overdue list for decades.
pub const MAX_REVIEW_DAYS: u64 = 365;

/// Why a requested due date is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueDateRefused {
    /// Before the assignment day.
    Past,
    /// More than [`MAX_REVIEW_DAYS`] after it.
    TooFar,
}

/// The due date of a review assigned on `today`: `asked`, or [`DEFAULT_REVIEW_DAYS`] later.
pub fn due_date(asked: Option<NaiveDate>, today: NaiveDate) -> Result<NaiveDate, DueDateRefused> {
    let latest = today
        .checked_add_days(Days::new(MAX_REVIEW_DAYS))
        .unwrap_or(today);
    match asked {
        None => Ok(today
            .checked_add_days(Days::new(DEFAULT_REVIEW_DAYS))
            .unwrap_or(today)),
        Some(d) if d < today => Err(DueDateRefused::Past),
        Some(d) if d > latest => Err(DueDateRefused::TooFar),
        Some(d) => Ok(d),
    }
}

/// Criterion ranges (`CriterionScores` in `review.proto`): innovation 0-30, technical level
/// 0-30, economic benefit 0-20, green benefit 0-20; the total is 0-100.
pub const CRITERIA: [(&str, i32); 4] = [
    ("innovation", 30),
    ("technical_level", 30),
    ("economic_benefit", 20),
    ("green_benefit", 20),
];

/// Per-criterion scores, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scores {
    /// 0-30.
    pub innovation: i32,
    /// 0-30.
    pub technical_level: i32,
    /// 0-20.
    pub economic_benefit: i32,
    /// 0-20.
    pub green_benefit: i32,
}

impl Scores {
    /// Scores if every criterion is in range; otherwise each criterion out of range with its
    /// maximum.
    pub fn new(values: [i32; 4]) -> Result<Scores, Vec<(&'static str, i32)>> {
        let bad: Vec<(&'static str, i32)> = CRITERIA
            .iter()
            .zip(values)
            .filter(|((_, max), v)| !(0..=*max).contains(v))
            .map(|((name, max), _)| (*name, *max))
            .collect();
        if !bad.is_empty() {
            return Err(bad);
        }
        let [innovation, technical_level, economic_benefit, green_benefit] = values;
        Ok(Scores {
            innovation,
            technical_level,
            economic_benefit,
            green_benefit,
        })
    }

    /// The total, 0-100.
    pub fn total(&self) -> i32 {
        self.innovation + self.technical_level + self.economic_benefit + self.green_benefit
    }
}

/// Why an expert vetoes (`VetoCategory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VetoCategory {
    /// 高耗能.
    EnergyIntensive,
    /// 高排放/高污染.
    HighlyPolluting,
    /// Explained in the evidence.
    Other,
}

impl VetoCategory {
    /// The proto number.
    pub fn code(self) -> i32 {
        match self {
            VetoCategory::EnergyIntensive => 1,
            VetoCategory::HighlyPolluting => 2,
            VetoCategory::Other => 3,
        }
    }

    /// From the proto number (0 and unknown numbers are not categories).
    pub fn from_code(code: i32) -> Option<VetoCategory> {
        match code {
            1 => Some(VetoCategory::EnergyIntensive),
            2 => Some(VetoCategory::HighlyPolluting),
            3 => Some(VetoCategory::Other),
            _ => None,
        }
    }

    /// The enum value name, for explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            VetoCategory::EnergyIntensive => "ENERGY_INTENSIVE",
            VetoCategory::HighlyPolluting => "HIGHLY_POLLUTING",
            VetoCategory::Other => "OTHER",
        }
    }
}

/// An expert's one-vote veto.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpertVeto {
    /// The ground.
    pub category: VetoCategory,
    /// The evidence.
    pub evidence: String,
}

/// Review state (`ReviewState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReviewState {
    /// Awaiting the expert; counts against its load limit.
    Assigned,
    /// Final.
    Submitted,
    /// Withdrawn before submission; does not count.
    Cancelled,
}

impl ReviewState {
    /// The proto number (also the stored code).
    pub fn code(self) -> i32 {
        match self {
            ReviewState::Assigned => 1,
            ReviewState::Submitted => 2,
            ReviewState::Cancelled => 3,
        }
    }

    /// From the stored code.
    pub fn from_code(code: i32) -> Option<ReviewState> {
        match code {
            1 => Some(ReviewState::Assigned),
            2 => Some(ReviewState::Submitted),
            3 => Some(ReviewState::Cancelled),
            _ => None,
        }
    }

    /// The enum value name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Assigned => "ASSIGNED",
            ReviewState::Submitted => "SUBMITTED",
            ReviewState::Cancelled => "CANCELLED",
        }
    }
}

/// How the expert was assigned (`AssignmentMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssignmentMethod {
    /// By the automatic assignment.
    Automatic,
    /// Named by an admin.
    Manual,
}

impl AssignmentMethod {
    /// The proto number (also the stored code).
    pub fn code(self) -> i32 {
        match self {
            AssignmentMethod::Automatic => 1,
            AssignmentMethod::Manual => 2,
        }
    }

    /// From the stored code.
    pub fn from_code(code: i32) -> Option<AssignmentMethod> {
        match code {
            1 => Some(AssignmentMethod::Automatic),
            2 => Some(AssignmentMethod::Manual),
            _ => None,
        }
    }
}

/// A review as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Server-assigned id.
    pub id: String,
    /// The achievement's id.
    pub achievement_id: String,
    /// The expert's id.
    pub expert_id: String,
    /// The achievement's review round.
    pub round: i32,
    /// State.
    pub state: ReviewState,
    /// How assigned.
    pub method: AssignmentMethod,
    /// Who assigned (`sub`).
    pub assigned_by: String,
    /// Set at submission.
    pub scores: Option<Scores>,
    /// Set at submission.
    pub comment: String,
    /// Set at submission, if cast.
    pub veto: Option<ExpertVeto>,
    /// Why cancelled.
    pub cancel_reason: String,
    /// µs.
    pub assign_time_us: i64,
    /// µs, once submitted.
    pub submit_time_us: Option<i64>,
    /// µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Last day to submit, `YYYY-MM-DD` in the programme time zone.
    #[serde(default)]
    pub due_date: String,
}

impl Review {
    /// `achievements/{a}/reviews/{r}`.
    pub fn name(&self) -> String {
        review_name(&self.achievement_id, &self.id)
    }

    /// AIP-154 etag.
    pub fn etag(&self) -> String {
        qilu_common::input::etag_of(&self.name(), self.version)
    }

    /// Whether the review is still ASSIGNED after its due date, on `today` (programme time zone).
    /// `YYYY-MM-DD` compares as it sorts, as the store's overdue filter compares it.
    pub fn overdue(&self, today: NaiveDate) -> bool {
        self.state == ReviewState::Assigned
            && !self.due_date.is_empty()
            && self.due_date.as_str() < today.format("%Y-%m-%d").to_string().as_str()
    }

    /// This ASSIGNED review cancelled at `now_us` for `reason`: the one way a review is
    /// cancelled, so every cancellation looks alike in the audit log.
    pub fn cancelled(&self, reason: String, now_us: i64) -> Review {
        Review {
            state: ReviewState::Cancelled,
            cancel_reason: reason,
            update_time_us: now_us,
            version: self.version + 1,
            ..self.clone()
        }
    }
}

/// Resource name of a review.
pub fn review_name(achievement_id: &str, review_id: &str) -> String {
    format!("achievements/{achievement_id}/reviews/{review_id}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scores_in_range_total_up_and_each_bad_one_is_named() {
        assert_eq!(Scores::new([30, 30, 20, 20]).map(|s| s.total()), Ok(100));
        assert_eq!(Scores::new([0, 0, 0, 0]).map(|s| s.total()), Ok(0));
        assert_eq!(
            Scores::new([31, 30, -1, 21]),
            Err(vec![
                ("innovation", 30),
                ("economic_benefit", 20),
                ("green_benefit", 20)
            ])
        );
        assert_eq!(
            Scores::new([30, 31, 20, 20]),
            Err(vec![("technical_level", 30)])
        );
    }

    #[test]
    fn due_dates_default_to_thirty_days_and_stay_within_a_year() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let today = day("2026-12-07");
        assert_eq!(due_date(None, today), Ok(day("2027-01-06")));
        assert_eq!(due_date(Some(today), today), Ok(today));
        assert_eq!(
            due_date(Some(day("2027-12-07")), today),
            Ok(day("2027-12-07"))
        );
        assert_eq!(
            due_date(Some(day("2027-12-08")), today),
            Err(DueDateRefused::TooFar)
        );
        assert_eq!(
            due_date(Some(day("2026-12-06")), today),
            Err(DueDateRefused::Past)
        );
    }

    #[test]
    fn only_an_assigned_review_past_its_due_day_is_overdue() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let r = Review {
            id: "r".into(),
            achievement_id: "a".into(),
            expert_id: "e".into(),
            round: 1,
            state: ReviewState::Assigned,
            method: AssignmentMethod::Manual,
            assigned_by: "admin".into(),
            scores: None,
            comment: String::new(),
            veto: None,
            cancel_reason: String::new(),
            assign_time_us: 0,
            submit_time_us: None,
            update_time_us: 0,
            version: 1,
            due_date: "2027-01-06".into(),
        };
        assert!(!r.overdue(day("2027-01-06")), "due today is not overdue");
        assert!(r.overdue(day("2027-01-07")));
        let done = Review {
            state: ReviewState::Submitted,
            ..r.clone()
        };
        assert!(!done.overdue(day("2027-02-01")));
        let cancelled = r.cancelled("gone".into(), 5);
        assert_eq!(cancelled.state, ReviewState::Cancelled);
        assert_eq!(cancelled.version, 2);
        assert!(!cancelled.overdue(day("2027-02-01")));
    }

    #[test]
    fn codes_round_trip() {
        for s in [
            ReviewState::Assigned,
            ReviewState::Submitted,
            ReviewState::Cancelled,
        ] {
            assert_eq!(ReviewState::from_code(s.code()), Some(s));
        }
        for c in [
            VetoCategory::EnergyIntensive,
            VetoCategory::HighlyPolluting,
            VetoCategory::Other,
        ] {
            assert_eq!(VetoCategory::from_code(c.code()), Some(c));
        }
        assert_eq!(VetoCategory::from_code(0), None);
    }
}
