//! Leading-enterprise cohorts and their members (contract: `proto/qilu/registry/v1/leading.proto`):
//! what a cohort and a membership are, and the decisions about them — whether an enterprise may
//! be selected into a cohort, whether a member may be deselected — as pure functions returning
//! typed refusals. The API maps each refusal to its error in one place (`convert::leading`).
//! The candidate ranking is in [`ranking`]. No I/O here.

mod ranking;

use serde::{Deserialize, Serialize};

pub use ranking::*;

/// Longest selection / deselection reason and cohort description (characters).
pub const MAX_REASON_CHARS: usize = 2000;

/// A programme year: four digits, 1900-9999.
pub fn parse_year(y: &str) -> Option<i32> {
    if y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    y.parse().ok().filter(|y| valid_year(*y))
}

/// Whether a cohort year is plausible.
pub fn valid_year(y: i32) -> bool {
    (1900..=9999).contains(&y)
}

/// Membership state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberState {
    /// In the cohort.
    Selected,
    /// Removed, kept for the record.
    Deselected,
}

impl MemberState {
    /// Stored code = `MemberState` proto number.
    pub fn code(self) -> i32 {
        match self {
            MemberState::Selected => 1,
            MemberState::Deselected => 2,
        }
    }

    /// From the stored code.
    pub fn from_code(code: i32) -> Option<MemberState> {
        match code {
            1 => Some(MemberState::Selected),
            2 => Some(MemberState::Deselected),
            _ => None,
        }
    }
}

/// A yearly cohort as stored (its target and counts are resolved when read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cohort {
    /// Programme year.
    pub year: i32,
    /// Free-text note.
    pub description: String,
    /// µs.
    pub create_time_us: i64,
    /// µs; moves when membership changes.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Cohort {
    /// `leadingCohorts/{year}`.
    pub fn name(&self) -> String {
        cohort_name(self.year)
    }
}

/// `leadingCohorts/{year}`.
pub fn cohort_name(year: i32) -> String {
    format!("leadingCohorts/{year}")
}

/// `leadingCohorts/{year}/members/{uscc}`.
pub fn member_name(year: i32, uscc: &str) -> String {
    format!("leadingCohorts/{year}/members/{uscc}")
}

/// A cohort membership as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Cohort year.
    pub year: i32,
    /// Enterprise USCC.
    pub uscc: String,
    /// State.
    pub state: MemberState,
    /// The candidate's ranking when (last) selected.
    pub ranking_at_selection: Candidate,
    /// Why selected.
    pub select_reason: String,
    /// Who selected (`sub`).
    pub selected_by: String,
    /// When selected, µs.
    pub select_time_us: i64,
    /// Why deselected ("" while selected).
    pub deselect_reason: String,
    /// When deselected, µs; 0 while selected.
    pub deselect_time_us: i64,
    /// `enterprises/{uscc}/supportPolicies/{year}` once created, else "".
    pub support_policy: String,
    /// µs.
    pub create_time_us: i64,
    /// µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Member {
    /// `leadingCohorts/{year}/members/{uscc}`.
    pub fn name(&self) -> String {
        member_name(self.year, &self.uscc)
    }

    /// The membership after selecting the enterprise of `candidate` into cohort `year` with
    /// `reason`, by `by`, at `now_us`: a new one, or `previous` (deselected) selected again. A
    /// re-selected member keeps its creation time and its support policy (the enterprise keeps
    /// its one policy and its review history).
    pub fn selected(
        previous: Option<Member>,
        year: i32,
        mut candidate: Candidate,
        reason: String,
        by: String,
        now_us: i64,
    ) -> Member {
        candidate.selected = true;
        let fresh = Member {
            year,
            uscc: candidate.uscc.clone(),
            state: MemberState::Selected,
            ranking_at_selection: candidate,
            select_reason: reason,
            selected_by: by,
            select_time_us: now_us,
            deselect_reason: String::new(),
            deselect_time_us: 0,
            support_policy: String::new(),
            create_time_us: now_us,
            update_time_us: now_us,
            version: 1,
        };
        match previous {
            None => fresh,
            Some(old) => Member {
                support_policy: old.support_policy,
                create_time_us: old.create_time_us,
                version: old.version + 1,
                ..fresh
            },
        }
    }

    /// The membership after deselecting it with `reason` at `now_us`; only a SELECTED member
    /// can be deselected.
    pub fn deselected(&self, reason: String, now_us: i64) -> Result<Member, DeselectRefused> {
        if self.state != MemberState::Selected {
            return Err(DeselectRefused::NotSelected {
                member: self.name(),
            });
        }
        Ok(Member {
            state: MemberState::Deselected,
            deselect_reason: reason,
            deselect_time_us: now_us,
            update_time_us: now_us,
            version: self.version + 1,
            ..self.clone()
        })
    }

    /// The membership once its support policy `policy` exists.
    pub fn with_support_policy(&self, policy: String, now_us: i64) -> Member {
        Member {
            support_policy: policy,
            update_time_us: now_us,
            version: self.version + 1,
            ..self.clone()
        }
    }
}

/// The LEADING_COHORT_SIZE policy target in force for a cohort's year: the cohort's size is
/// never a constant in code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortTarget {
    /// The target's id (`policyTargets/{id}`).
    pub id: String,
    /// How many members the cohort may have.
    pub size: i64,
}

/// What deciding a selection depends on, loaded together before deciding.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The cohort selected into.
    pub cohort: Cohort,
    /// The enterprise (its eligibility).
    pub enterprise: CandidateFacts,
    /// Its membership of the cohort so far, if it ever was a member.
    pub existing: Option<Member>,
    /// The size target in force for the cohort's year.
    pub target: Option<CohortTarget>,
    /// How many members are SELECTED now.
    pub selected: u64,
}

/// Why an enterprise cannot be selected into a cohort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectRefused {
    /// It is a SELECTED member already.
    AlreadySelected {
        /// The membership.
        member: String,
        /// `enterprises/{uscc}`.
        enterprise: String,
        /// The cohort.
        cohort: String,
    },
    /// It is not an eligible candidate.
    NotEligible {
        /// `enterprises/{uscc}`.
        enterprise: String,
        /// Why, as [`ineligibility_reasons`] says.
        reasons: Vec<String>,
    },
    /// No size target is in force for the cohort's year, so its size is 0.
    NoTarget {
        /// The cohort.
        cohort: String,
        /// Its year.
        year: i32,
    },
    /// The cohort has as many SELECTED members as its target allows.
    Full {
        /// The cohort.
        cohort: String,
        /// Members SELECTED now.
        selected: u64,
        /// The target that sets its size.
        target: CohortTarget,
    },
}

impl Selection {
    /// Whether the enterprise may be selected. The checks run in this order and the first
    /// refusal is the answer: already selected, not eligible, no size target, cohort full.
    pub fn decide(&self) -> Result<(), SelectRefused> {
        let enterprise = format!("enterprises/{}", self.enterprise.uscc);
        if let Some(m) = &self.existing
            && m.state == MemberState::Selected
        {
            return Err(SelectRefused::AlreadySelected {
                member: m.name(),
                enterprise,
                cohort: self.cohort.name(),
            });
        }
        let reasons = ineligibility_reasons(&self.enterprise);
        if !reasons.is_empty() {
            return Err(SelectRefused::NotEligible {
                enterprise,
                reasons,
            });
        }
        match &self.target {
            None => Err(SelectRefused::NoTarget {
                cohort: self.cohort.name(),
                year: self.cohort.year,
            }),
            Some(t) if i64::try_from(self.selected).unwrap_or(i64::MAX) >= t.size => {
                Err(SelectRefused::Full {
                    cohort: self.cohort.name(),
                    selected: self.selected,
                    target: t.clone(),
                })
            }
            Some(_) => Ok(()),
        }
    }
}

/// Why a member cannot be deselected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeselectRefused {
    /// It is DESELECTED already.
    NotSelected {
        /// The membership.
        member: String,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::enterprise::EnterpriseState;

    const U: &str = "91370100MA3C5XYZ4K";

    fn cohort() -> Cohort {
        Cohort {
            year: 2024,
            description: String::new(),
            create_time_us: 1,
            update_time_us: 1,
            version: 1,
        }
    }

    fn eligible() -> CandidateFacts {
        CandidateFacts {
            uscc: U.into(),
            display_name: "企业".into(),
            city: "Jinan".into(),
            zone: String::new(),
            green_category: 3,
            state: EnterpriseState::Active,
            high_tech_certified: true,
            technology_fields: vec![6],
            selected: false,
            figures: None,
            prior: None,
        }
    }

    fn member(state: MemberState) -> Member {
        let candidate = score(&eligible(), 2023);
        let m = Member::selected(None, 2024, candidate, "r".into(), "officer".into(), 10);
        Member { state, ..m }
    }

    fn target(size: i64) -> Option<CohortTarget> {
        Some(CohortTarget {
            id: "leading-cohort-2021".into(),
            size,
        })
    }

    #[test]
    fn selection_refusals_come_in_their_order() {
        let member_name = format!("leadingCohorts/2024/members/{U}");
        let enterprise = format!("enterprises/{U}");
        let cohort_name = "leadingCohorts/2024".to_string();
        let revoked = CandidateFacts {
            state: EnterpriseState::Revoked,
            ..eligible()
        };
        // (enterprise, existing, target, selected now, answer)
        type Case = (
            CandidateFacts,
            Option<Member>,
            Option<CohortTarget>,
            u64,
            Result<(), SelectRefused>,
        );
        let cases: Vec<Case> = vec![
            (eligible(), None, target(2), 1, Ok(())),
            (
                eligible(),
                Some(member(MemberState::Deselected)),
                target(2),
                1,
                Ok(()),
            ),
            (
                // Already selected wins over every other refusal.
                revoked.clone(),
                Some(member(MemberState::Selected)),
                None,
                9,
                Err(SelectRefused::AlreadySelected {
                    member: member_name.clone(),
                    enterprise: enterprise.clone(),
                    cohort: cohort_name.clone(),
                }),
            ),
            (
                revoked,
                None,
                None,
                0,
                Err(SelectRefused::NotEligible {
                    enterprise: enterprise.clone(),
                    reasons: vec!["enterprise is REVOKED, not ACTIVE".into()],
                }),
            ),
            (
                eligible(),
                None,
                None,
                0,
                Err(SelectRefused::NoTarget {
                    cohort: cohort_name.clone(),
                    year: 2024,
                }),
            ),
            (
                eligible(),
                None,
                target(2),
                2,
                Err(SelectRefused::Full {
                    cohort: cohort_name.clone(),
                    selected: 2,
                    target: target(2).unwrap(),
                }),
            ),
            (
                eligible(),
                None,
                target(0),
                0,
                Err(SelectRefused::Full {
                    cohort: cohort_name,
                    selected: 0,
                    target: target(0).unwrap(),
                }),
            ),
        ];
        for (i, (enterprise, existing, target, selected, want)) in cases.into_iter().enumerate() {
            let s = Selection {
                cohort: cohort(),
                enterprise,
                existing,
                target,
                selected,
            };
            assert_eq!(s.decide(), want, "case {i}");
        }
    }

    #[test]
    fn reselecting_keeps_the_policy_and_creation_time_and_deselecting_needs_selected() {
        let candidate = score(&eligible(), 2023);
        let first = Member::selected(None, 2024, candidate.clone(), "a".into(), "o".into(), 10);
        assert_eq!((first.version, first.create_time_us), (1, 10));
        assert!(first.ranking_at_selection.selected);
        let with_policy = first.with_support_policy("p".into(), 15);
        let gone = with_policy.deselected("b".into(), 20).unwrap();
        assert_eq!(
            (gone.state, gone.deselect_time_us, gone.version),
            (MemberState::Deselected, 20, 3)
        );
        assert_eq!(
            gone.deselected("c".into(), 30),
            Err(DeselectRefused::NotSelected {
                member: gone.name()
            })
        );
        let back = Member::selected(Some(gone), 2024, candidate, "d".into(), "o2".into(), 40);
        assert_eq!(back.state, MemberState::Selected);
        assert_eq!(back.support_policy, "p");
        assert_eq!(
            (back.create_time_us, back.update_time_us, back.version),
            (10, 40, 4)
        );
        assert!(back.deselect_reason.is_empty() && back.deselect_time_us == 0);
        assert_eq!(back.selected_by, "o2");
    }

    #[test]
    fn years_are_four_digits_from_1900() {
        assert_eq!(parse_year("2023"), Some(2023));
        for bad in ["23", "abcd", "0999", "20233", "+202"] {
            assert_eq!(parse_year(bad), None, "{bad}");
        }
    }
}
