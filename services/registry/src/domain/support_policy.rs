//! Support policies: the one policy (一企一策) of each leading enterprise for one cohort year
//! (2021 opinions: "each supported with one policy per enterprise"). A policy's id is its cohort
//! year, so an enterprise can never hold two for the same cohort. Milestones carry their own
//! progress state; OVERDUE is computed on read from the due date in the programme time zone and
//! never stored. Reviews are appended, never edited. No I/O here.

use chrono::NaiveDate;
use qilu_common::FieldViolation;
use serde::{Deserialize, Serialize};

/// Longest title (characters).
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest summary / review comment (characters).
pub const MAX_SUMMARY_CHARS: usize = 4000;
/// Longest measure description / milestone note (characters).
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Longest milestone title (characters).
pub const MAX_MILESTONE_TITLE_CHARS: usize = 500;
/// Longest officer id, officer name, or provider (characters).
pub const MAX_PERSON_CHARS: usize = 200;
/// Most measures per policy: a policy is a short, readable plan.
pub const MAX_MEASURES: usize = 50;
/// Most milestones per policy.
pub const MAX_MILESTONES: usize = 100;
/// Longest milestone id (AIP-122 style ids).
pub const MAX_MILESTONE_ID_CHARS: usize = 63;

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PolicyState {
    /// In force.
    Active,
    /// Ended (deselected, revoked, deregistered); read-only.
    Ended,
}

impl PolicyState {
    /// Stored code = `SupportPolicyState` proto number.
    pub fn code(self) -> i32 {
        match self {
            PolicyState::Active => 1,
            PolicyState::Ended => 2,
        }
    }

    /// From the stored code.
    pub fn from_code(code: i32) -> Option<PolicyState> {
        match code {
            1 => Some(PolicyState::Active),
            2 => Some(PolicyState::Ended),
            _ => None,
        }
    }
}

/// Kind of support measure (`MeasureKind` proto numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MeasureKind {
    /// Grants, subsidies, project money.
    Funding,
    /// Recruitment, housing, training.
    Talent,
    /// Land or premises.
    Land,
    /// Loans, guarantees, equity, listing support.
    Finance,
    /// Described in the text.
    Other,
}

impl MeasureKind {
    /// Proto number.
    pub fn code(self) -> i32 {
        match self {
            MeasureKind::Funding => 1,
            MeasureKind::Talent => 2,
            MeasureKind::Land => 3,
            MeasureKind::Finance => 4,
            MeasureKind::Other => 5,
        }
    }

    /// From the proto number (0 and unknown numbers are not kinds).
    pub fn from_code(code: i32) -> Option<MeasureKind> {
        match code {
            1 => Some(MeasureKind::Funding),
            2 => Some(MeasureKind::Talent),
            3 => Some(MeasureKind::Land),
            4 => Some(MeasureKind::Finance),
            5 => Some(MeasureKind::Other),
            _ => None,
        }
    }
}

/// One support measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measure {
    /// Kind.
    pub kind: MeasureKind,
    /// What is offered.
    pub description: String,
    /// Money committed, fen (0 when the measure has no amount).
    pub amount_fen: i64,
    /// Delivering department.
    pub provider: String,
}

/// A milestone's stored progress state (`MilestoneState` numbers; OVERDUE is never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MilestoneState {
    /// Not started.
    Planned,
    /// Under way.
    InProgress,
    /// Reached.
    Done,
    /// Dropped.
    Cancelled,
}

/// The proto number of the computed OVERDUE state.
pub const MILESTONE_OVERDUE: i32 = 4;

impl MilestoneState {
    /// Proto number.
    pub fn code(self) -> i32 {
        match self {
            MilestoneState::Planned => 1,
            MilestoneState::InProgress => 2,
            MilestoneState::Done => 3,
            MilestoneState::Cancelled => 5,
        }
    }

    /// From a stored or written number; OVERDUE (4), 0 and unknown numbers are refused.
    pub fn from_code(code: i32) -> Option<MilestoneState> {
        match code {
            1 => Some(MilestoneState::Planned),
            2 => Some(MilestoneState::InProgress),
            3 => Some(MilestoneState::Done),
            5 => Some(MilestoneState::Cancelled),
            _ => None,
        }
    }

    /// Still open (neither reached nor dropped).
    pub fn is_open(self) -> bool {
        matches!(self, MilestoneState::Planned | MilestoneState::InProgress)
    }
}

/// One milestone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    /// Unique within the policy.
    pub id: String,
    /// What is to be achieved.
    pub title: String,
    /// Due date.
    pub due_date: NaiveDate,
    /// Stored state.
    pub state: MilestoneState,
    /// Date reached; set exactly when DONE.
    pub completed_date: Option<NaiveDate>,
    /// Progress note.
    pub note: String,
}

impl Milestone {
    /// Overdue: still open and the due date has passed (`today` in the programme time zone; a
    /// milestone due today is not yet overdue).
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        self.state.is_open() && self.due_date < today
    }

    /// The state as read: the stored state, or OVERDUE.
    pub fn state_as_read(&self, today: NaiveDate) -> i32 {
        if self.is_overdue(today) {
            MILESTONE_OVERDUE
        } else {
            self.state.code()
        }
    }
}

/// One review of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// `PolicyReviewConclusion` number (1-3).
    pub conclusion: i32,
    /// Findings.
    pub comment: String,
    /// Reviewer `sub`.
    pub reviewer: String,
    /// µs.
    pub review_time_us: i64,
}

/// The caller-settable parts of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyFields {
    /// Short title.
    pub title: String,
    /// Aims.
    pub summary: String,
    /// Measures (at least one).
    pub measures: Vec<Measure>,
    /// Responsible officer's `sub`.
    pub responsible_officer: String,
    /// Responsible officer's name.
    pub responsible_officer_name: String,
    /// Milestones, in the caller's order.
    pub milestones: Vec<Milestone>,
}

/// A support policy as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SupportPolicy {
    /// Enterprise USCC.
    pub uscc: String,
    /// Cohort year (the policy id).
    pub year: i32,
    /// Settable fields.
    #[serde(flatten)]
    pub fields: PolicyFields,
    /// Reviews, oldest first.
    pub reviews: Vec<Review>,
    /// State.
    pub state: PolicyState,
    /// µs.
    pub create_time_us: i64,
    /// µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl SupportPolicy {
    /// `enterprises/{uscc}/supportPolicies/{year}`.
    pub fn name(&self) -> String {
        policy_name(&self.uscc, self.year)
    }

    /// The membership it serves.
    pub fn member(&self) -> String {
        super::leading::member_name(self.year, &self.uscc)
    }

    /// AIP-154 etag.
    pub fn etag(&self) -> String {
        super::enterprise::etag_of(&self.name(), self.version)
    }

    /// Any milestone overdue on `today`.
    pub fn has_overdue_milestone(&self, today: NaiveDate) -> bool {
        self.fields.milestones.iter().any(|m| m.is_overdue(today))
    }
}

/// `enterprises/{uscc}/supportPolicies/{year}`.
pub fn policy_name(uscc: &str, year: i32) -> String {
    format!("enterprises/{uscc}/supportPolicies/{year}")
}

/// Parses `enterprises/{uscc}/supportPolicies/{year}` into the raw USCC text and the year.
pub fn parse_policy_name(raw: &str) -> Option<(&str, i32)> {
    let rest = raw.strip_prefix("enterprises/")?;
    let (uscc, rest) = rest.split_once('/')?;
    let year = rest.strip_prefix("supportPolicies/")?;
    Some((uscc, super::leading::parse_year(year)?))
}

/// A milestone id: lower-case letters, digits and `-`, 1-63 characters, starting with a letter
/// or digit.
pub fn valid_milestone_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MILESTONE_ID_CHARS
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Rules across a policy's milestones: ids unique; a completed date exactly when DONE, not in
/// the future (`today` in the programme time zone). `at` is the path of the milestones field.
pub fn check_milestones(
    milestones: &[Milestone],
    at: &str,
    today: NaiveDate,
) -> Vec<FieldViolation> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, m) in milestones.iter().enumerate() {
        if !seen.insert(m.id.as_str()) {
            out.push(FieldViolation::new(
                format!("{at}[{i}].milestone_id"),
                "DUPLICATE_MILESTONE_ID",
                format!("milestone id {:?} is used twice", m.id),
            ));
        }
        match (m.state, m.completed_date) {
            (MilestoneState::Done, None) => out.push(FieldViolation::new(
                format!("{at}[{i}].completed_date"),
                "REQUIRED",
                "a DONE milestone needs the date it was reached",
            )),
            (MilestoneState::Done, Some(d)) if d > today => out.push(FieldViolation::new(
                format!("{at}[{i}].completed_date"),
                "IN_FUTURE",
                format!("{d} is in the future"),
            )),
            (s, Some(_)) if s != MilestoneState::Done => out.push(FieldViolation::new(
                format!("{at}[{i}].completed_date"),
                "NOT_ALLOWED",
                "only a DONE milestone has a completed date",
            )),
            _ => {}
        }
    }
    out
}

/// Total money committed by the measures, fen (saturating: amounts are each bounded at parse).
pub fn committed_fen(measures: &[Measure]) -> i64 {
    measures
        .iter()
        .fold(0i64, |acc, m| acc.saturating_add(m.amount_fen))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn milestone(id: &str, due: &str, state: MilestoneState, done: Option<&str>) -> Milestone {
        Milestone {
            id: id.into(),
            title: "t".into(),
            due_date: d(due),
            state,
            completed_date: done.map(d),
            note: String::new(),
        }
    }

    #[test]
    fn overdue_is_open_and_past_due_in_the_programme_day() {
        let today = d("2024-06-01");
        // (due, state, overdue)
        let cases = [
            ("2024-05-31", MilestoneState::Planned, true),
            ("2024-05-31", MilestoneState::InProgress, true),
            ("2024-06-01", MilestoneState::Planned, false),
            ("2024-06-02", MilestoneState::InProgress, false),
            ("2024-05-31", MilestoneState::Cancelled, false),
        ];
        for (due, state, overdue) in cases {
            let m = milestone("a", due, state, None);
            assert_eq!(m.is_overdue(today), overdue, "{due} {state:?}");
            assert_eq!(
                m.state_as_read(today),
                if overdue {
                    MILESTONE_OVERDUE
                } else {
                    state.code()
                }
            );
        }
        let done = milestone("a", "2024-05-31", MilestoneState::Done, Some("2024-05-30"));
        assert!(!done.is_overdue(today));
    }

    #[test]
    fn milestone_rules_name_each_bad_milestone() {
        let today = d("2024-06-01");
        let ms = [
            milestone("a", "2024-07-01", MilestoneState::Planned, None),
            milestone("a", "2024-07-01", MilestoneState::Planned, None),
            milestone("b", "2024-07-01", MilestoneState::Done, None),
            milestone("c", "2024-07-01", MilestoneState::Done, Some("2024-06-02")),
            milestone(
                "d",
                "2024-07-01",
                MilestoneState::Planned,
                Some("2024-05-01"),
            ),
            milestone("e", "2024-07-01", MilestoneState::Done, Some("2024-06-01")),
        ];
        let v: Vec<(String, String)> = check_milestones(&ms, "m", today)
            .into_iter()
            .map(|v| (v.field, v.reason))
            .collect();
        assert_eq!(
            v,
            [
                (
                    "m[1].milestone_id".to_string(),
                    "DUPLICATE_MILESTONE_ID".to_string()
                ),
                ("m[2].completed_date".to_string(), "REQUIRED".to_string()),
                ("m[3].completed_date".to_string(), "IN_FUTURE".to_string()),
                ("m[4].completed_date".to_string(), "NOT_ALLOWED".to_string()),
            ]
        );
    }

    #[test]
    fn milestone_ids_and_states_follow_the_contract() {
        for good in ["a", "m-1", "2024q3", &"x".repeat(63)] {
            assert!(valid_milestone_id(good), "{good}");
        }
        for bad in ["", "A", "a_b", "-a", "中", &"x".repeat(64)] {
            assert!(!valid_milestone_id(bad), "{bad}");
        }
        assert_eq!(MilestoneState::from_code(MILESTONE_OVERDUE), None);
        assert_eq!(MilestoneState::from_code(0), None);
        for s in [
            MilestoneState::Planned,
            MilestoneState::InProgress,
            MilestoneState::Done,
            MilestoneState::Cancelled,
        ] {
            assert_eq!(MilestoneState::from_code(s.code()), Some(s));
        }
        assert_eq!(MeasureKind::from_code(0), None);
        assert_eq!(MeasureKind::from_code(6), None);
        assert_eq!(MeasureKind::from_code(4), Some(MeasureKind::Finance));
    }

    #[test]
    fn policy_names_round_trip() {
        assert_eq!(
            parse_policy_name("enterprises/X/supportPolicies/2023"),
            Some(("X", 2023))
        );
        assert_eq!(parse_policy_name("enterprises/X/supportPolicies/23"), None);
        assert_eq!(parse_policy_name("enterprises/X/policies/2023"), None);
        assert_eq!(policy_name("X", 2023), "enterprises/X/supportPolicies/2023");
    }
}
