//! An expert's review: per-criterion scores in the contract's ranges, a comment, and an optional
//! one-vote veto. A review is ASSIGNED by assignment, SUBMITTED once by its expert, or CANCELLED
//! (conflict found, achievement withdrawn); it never changes after that.

use serde::{Deserialize, Serialize};

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
}

/// Resource name of a review.
pub fn review_name(achievement_id: &str, review_id: &str) -> String {
    format!("achievements/{achievement_id}/reviews/{review_id}")
}

#[cfg(test)]
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
