//! Support policies: the one policy (一企一策) of each leading enterprise for one cohort year
//! (2021 opinions: "each supported with one policy per enterprise"). A policy's id is its cohort
//! year, so an enterprise can never hold two for the same cohort. Milestones carry their own
//! progress state; OVERDUE is computed on read from the due date in the programme time zone and
//! never stored. Reviews are appended, never edited. No I/O here.

use chrono::NaiveDate;
use qilu_common::FieldViolation;
use serde::{Deserialize, Serialize};

use super::leading::{Member, MemberState, member_name};

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
        member_name(self.year, &self.uscc)
    }

    /// AIP-154 etag.
    pub fn etag(&self) -> String {
        qilu_common::input::etag_of(&self.name(), self.version)
    }

    /// Any milestone overdue on `today`.
    pub fn has_overdue_milestone(&self, today: NaiveDate) -> bool {
        self.fields.milestones.iter().any(|m| m.is_overdue(today))
    }

    /// The policy with `fields` written at `now_us`; an ENDED policy is read-only.
    pub fn revised(
        &self,
        fields: PolicyFields,
        now_us: i64,
    ) -> Result<SupportPolicy, PolicyRefused> {
        self.check_open()?;
        Ok(SupportPolicy {
            fields,
            update_time_us: now_us,
            version: self.version + 1,
            ..self.clone()
        })
    }

    /// The policy with `review` appended (reviews are never edited); an ENDED policy is
    /// read-only.
    pub fn reviewed(&self, review: Review) -> Result<SupportPolicy, PolicyRefused> {
        self.check_open()?;
        let mut updated = SupportPolicy {
            update_time_us: review.review_time_us,
            version: self.version + 1,
            ..self.clone()
        };
        updated.reviews.push(review);
        Ok(updated)
    }

    /// The policy ENDED at `now_us` (its member was deselected), or `None` when it already is.
    pub fn ended(&self, now_us: i64) -> Option<SupportPolicy> {
        self.moved_to(PolicyState::Ended, now_us)
    }

    /// The policy in force again at `now_us` (its member was selected again), or `None` when it
    /// already is.
    pub fn reopened(&self, now_us: i64) -> Option<SupportPolicy> {
        self.moved_to(PolicyState::Active, now_us)
    }

    fn moved_to(&self, state: PolicyState, now_us: i64) -> Option<SupportPolicy> {
        (self.state != state).then(|| SupportPolicy {
            state,
            update_time_us: now_us,
            version: self.version + 1,
            ..self.clone()
        })
    }

    fn check_open(&self) -> Result<(), PolicyRefused> {
        match self.state {
            PolicyState::Active => Ok(()),
            PolicyState::Ended => Err(PolicyRefused::Ended {
                policy: self.name(),
            }),
        }
    }
}

/// `enterprises/{uscc}/supportPolicies/{year}`.
pub fn policy_name(uscc: &str, year: i32) -> String {
    format!("enterprises/{uscc}/supportPolicies/{year}")
}

/// Why a support policy cannot be created or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRefused {
    /// The enterprise was never selected into the cohort.
    NeverSelected {
        /// The membership it would have.
        member: String,
        /// Its USCC.
        uscc: String,
        /// The cohort year.
        year: i32,
    },
    /// The enterprise already has its one policy for the cohort.
    AlreadyHasPolicy {
        /// The existing policy.
        policy: String,
        /// Its USCC.
        uscc: String,
        /// The cohort year.
        year: i32,
    },
    /// The member was deselected.
    MemberNotSelected {
        /// The membership.
        member: String,
    },
    /// The policy has ENDED and is read-only.
    Ended {
        /// The policy.
        policy: String,
    },
}

impl PolicyRefused {
    /// The refusal for a second policy of `uscc` for cohort `year` (also what a lost insert
    /// race is).
    pub fn already_has_policy(uscc: &str, year: i32) -> PolicyRefused {
        PolicyRefused::AlreadyHasPolicy {
            policy: policy_name(uscc, year),
            uscc: uscc.to_string(),
            year,
        }
    }
}

/// Whether enterprise `uscc` may get a support policy for cohort `year`, given its membership
/// and whether a policy row exists: only a SELECTED member without a policy may (一企一策).
/// Checked in this order: never selected, already has its policy, not SELECTED.
pub fn may_create<'a>(
    member: Option<&'a Member>,
    policy_exists: bool,
    uscc: &str,
    year: i32,
) -> Result<&'a Member, PolicyRefused> {
    // Never selected is "not SELECTED" too: the caller's mistake is the state, not the name.
    let Some(member) = member else {
        return Err(PolicyRefused::NeverSelected {
            member: member_name(year, uscc),
            uscc: uscc.to_string(),
            year,
        });
    };
    if policy_exists || !member.support_policy.is_empty() {
        return Err(PolicyRefused::already_has_policy(uscc, year));
    }
    if member.state != MemberState::Selected {
        return Err(PolicyRefused::MemberNotSelected {
            member: member.name(),
        });
    }
    Ok(member)
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
    fn policy_names_name_the_enterprise_and_the_cohort_year() {
        assert_eq!(policy_name("X", 2023), "enterprises/X/supportPolicies/2023");
    }

    fn member(state: MemberState, support_policy: &str) -> Member {
        let facts = crate::domain::leading::CandidateFacts {
            uscc: "U".into(),
            display_name: "企业".into(),
            city: String::new(),
            zone: String::new(),
            green_category: 3,
            state: crate::domain::enterprise::EnterpriseState::Active,
            high_tech_certified: true,
            technology_fields: vec![],
            selected: false,
            figures: None,
            prior: None,
        };
        let candidate = crate::domain::leading::score(&facts, 2023);
        Member {
            state,
            support_policy: support_policy.into(),
            ..Member::selected(None, 2024, candidate, "r".into(), "o".into(), 1)
        }
    }

    #[test]
    fn only_a_selected_member_without_a_policy_gets_one() {
        let never = PolicyRefused::NeverSelected {
            member: "leadingCohorts/2024/members/U".into(),
            uscc: "U".into(),
            year: 2024,
        };
        let twice = PolicyRefused::already_has_policy("U", 2024);
        let deselected = PolicyRefused::MemberNotSelected {
            member: "leadingCohorts/2024/members/U".into(),
        };
        let p = "enterprises/U/supportPolicies/2024";
        // (membership, policy row exists, answer)
        let cases = [
            (None, false, Err(never.clone())),
            (None, true, Err(never)),
            (Some(member(MemberState::Selected, "")), false, Ok(())),
            (
                Some(member(MemberState::Selected, "")),
                true,
                Err(twice.clone()),
            ),
            (
                Some(member(MemberState::Selected, p)),
                false,
                Err(twice.clone()),
            ),
            // One policy is reported before the state: the policy exists either way.
            (Some(member(MemberState::Deselected, p)), false, Err(twice)),
            (
                Some(member(MemberState::Deselected, "")),
                false,
                Err(deselected),
            ),
        ];
        for (i, (m, exists, want)) in cases.into_iter().enumerate() {
            let got = may_create(m.as_ref(), exists, "U", 2024).map(|_| ());
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn an_ended_policy_is_read_only_until_reopened() {
        let policy = SupportPolicy {
            uscc: "U".into(),
            year: 2024,
            fields: PolicyFields {
                title: "t".into(),
                summary: String::new(),
                measures: vec![],
                responsible_officer: "o".into(),
                responsible_officer_name: String::new(),
                milestones: vec![],
            },
            reviews: vec![],
            state: PolicyState::Active,
            create_time_us: 1,
            update_time_us: 1,
            version: 1,
        };
        assert!(policy.reopened(5).is_none());
        let ended = policy.ended(5).unwrap();
        assert_eq!(
            (ended.state, ended.version, ended.update_time_us),
            (PolicyState::Ended, 2, 5)
        );
        assert!(ended.ended(6).is_none());
        let refused = Err(PolicyRefused::Ended {
            policy: "enterprises/U/supportPolicies/2024".into(),
        });
        assert_eq!(ended.revised(policy.fields.clone(), 7), refused);
        let review = Review {
            conclusion: 1,
            comment: "c".into(),
            reviewer: "r".into(),
            review_time_us: 8,
        };
        assert_eq!(ended.reviewed(review.clone()), refused);
        let open = ended.reopened(9).unwrap();
        let reviewed = open.reviewed(review).unwrap();
        assert_eq!(
            (
                reviewed.reviews.len(),
                reviewed.version,
                reviewed.update_time_us
            ),
            (1, 4, 8)
        );
    }
}
