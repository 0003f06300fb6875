//! Experts, conflicts of interest and automatic assignment. An expert is in conflict with an
//! enterprise when affiliated with it (employment, board seat, shareholding, consulting) or when
//! a conflict with it was declared; a conflicted expert is never assigned to, and never scores,
//! that enterprise's achievements (docs/design.md §3; docs/rules.md, "Review practice": conflicts
//! found, not only declared).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Most open reviews an expert's load limit may allow (`Expert.load_limit`: 1-100).
pub const MAX_LOAD_LIMIT: i32 = 100;
/// Most experts one automatic assignment may add (`AssignReviewersRequest.reviewer_count`).
pub const MAX_REVIEWERS_PER_CALL: i32 = 20;

/// A declared conflict of interest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredConflict {
    /// The enterprise's USCC.
    pub enterprise: String,
    /// Its nature.
    pub reason: String,
    /// Who declared it (`sub`).
    pub declared_by: String,
    /// µs.
    pub declare_time_us: i64,
}

/// An expert as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expert {
    /// The id (the `expert` claim of its tokens).
    pub id: String,
    /// Full name.
    pub display_name: String,
    /// `IndustryField` numbers, sorted, unique.
    pub industry_fields: Vec<i32>,
    /// USCCs of affiliated enterprises, sorted, unique.
    pub affiliations: Vec<String>,
    /// Employer or institution.
    pub organization: String,
    /// Most open reviews at once.
    pub load_limit: i32,
    /// Declared conflicts, oldest first.
    pub declared_conflicts: Vec<DeclaredConflict>,
    /// Takes new assignments.
    pub active: bool,
    /// µs.
    pub create_time_us: i64,
    /// µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Expert {
    /// `experts/{id}`.
    pub fn name(&self) -> String {
        format!("experts/{}", self.id)
    }

    /// AIP-154 etag.
    pub fn etag(&self) -> String {
        qilu_common::input::etag_of(&self.name(), self.version)
    }

    /// The expert's conflict with enterprise `uscc`, if any (affiliation first).
    pub fn conflict_with(&self, uscc: &str) -> Option<Conflict> {
        if self.affiliations.iter().any(|a| a == uscc) {
            return Some(Conflict::Affiliated {
                enterprise: uscc.to_string(),
            });
        }
        self.declared_conflicts
            .iter()
            .find(|d| d.enterprise == uscc)
            .map(|d| Conflict::Declared {
                enterprise: uscc.to_string(),
                reason: d.reason.clone(),
            })
    }
}

/// Why an expert may not review an enterprise's achievement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Affiliated with the enterprise.
    Affiliated {
        /// USCC.
        enterprise: String,
    },
    /// A declared conflict.
    Declared {
        /// USCC.
        enterprise: String,
        /// The declared reason.
        reason: String,
    },
}

impl Conflict {
    /// `EXPERT_AFFILIATED_WITH_OWNER` or `EXPERT_DECLARED_CONFLICT`.
    pub fn kind(&self) -> &'static str {
        match self {
            Conflict::Affiliated { .. } => "EXPERT_AFFILIATED_WITH_OWNER",
            Conflict::Declared { .. } => "EXPERT_DECLARED_CONFLICT",
        }
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conflict::Affiliated { enterprise } => {
                write!(f, "affiliated with the owner enterprises/{enterprise}")
            }
            Conflict::Declared { enterprise, reason } => write!(
                f,
                "declared conflict with the owner enterprises/{enterprise}: {reason}"
            ),
        }
    }
}

/// An expert with its current load, as assignment sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The expert.
    pub expert: &'a Expert,
    /// Open (ASSIGNED) reviews it holds now.
    pub open_reviews: i64,
}

/// The result of an automatic assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Expert ids chosen, in choice order.
    pub chosen: Vec<String>,
    /// Experts passed over, with the reason.
    pub excluded: Vec<(String, String)>,
    /// How many eligible experts there were (may be fewer than asked).
    pub eligible: usize,
}

/// Chooses `count` experts for an achievement in `field` owned by `owner_uscc`: ACTIVE, reviewing
/// the field, under their load limit, not already assigned this round (`already`), never in
/// conflict; by fewest open reviews, then expert id (deterministic).
pub fn choose(
    candidates: &[Candidate<'_>],
    field: i32,
    owner_uscc: &str,
    already: &BTreeSet<String>,
    count: usize,
) -> Choice {
    let mut eligible: Vec<&Candidate<'_>> = Vec::new();
    let mut excluded = Vec::new();
    for c in candidates {
        let e = c.expert;
        let reason = if already.contains(&e.id) {
            Some("already assigned in this round".to_string())
        } else if !e.active {
            Some("inactive".to_string())
        } else if !e.industry_fields.contains(&field) {
            Some("field mismatch".to_string())
        } else if let Some(conflict) = e.conflict_with(owner_uscc) {
            Some(match conflict {
                Conflict::Affiliated { .. } => "affiliated with the owner".to_string(),
                Conflict::Declared { reason, .. } => format!("declared conflict: {reason}"),
            })
        } else if c.open_reviews >= i64::from(e.load_limit) {
            Some(format!("at load limit {}", e.load_limit))
        } else {
            None
        };
        match reason {
            Some(r) => excluded.push((e.id.clone(), r)),
            None => eligible.push(c),
        }
    }
    eligible.sort_by(|a, b| (a.open_reviews, &a.expert.id).cmp(&(b.open_reviews, &b.expert.id)));
    excluded.sort();
    Choice {
        eligible: eligible.len(),
        chosen: eligible
            .iter()
            .take(count)
            .map(|c| c.expert.id.clone())
            .collect(),
        excluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "91370100MA3C000011";

    fn expert(id: &str, fields: &[i32], affiliations: &[&str], limit: i32) -> Expert {
        Expert {
            id: id.into(),
            display_name: id.into(),
            industry_fields: fields.to_vec(),
            affiliations: affiliations.iter().map(|s| s.to_string()).collect(),
            organization: String::new(),
            load_limit: limit,
            declared_conflicts: Vec::new(),
            active: true,
            create_time_us: 0,
            update_time_us: 0,
            version: 1,
        }
    }

    #[test]
    fn conflicts_are_affiliation_or_declaration() {
        let mut e = expert("a", &[2], &[OWNER], 5);
        assert!(matches!(
            e.conflict_with(OWNER),
            Some(Conflict::Affiliated { .. })
        ));
        e.affiliations.clear();
        assert_eq!(e.conflict_with(OWNER), None);
        e.declared_conflicts.push(DeclaredConflict {
            enterprise: OWNER.into(),
            reason: "former employer".into(),
            declared_by: "a".into(),
            declare_time_us: 1,
        });
        let c = e.conflict_with(OWNER).map(|c| c.to_string());
        assert_eq!(
            c.as_deref(),
            Some(
                "declared conflict with the owner enterprises/91370100MA3C000011: former employer"
            )
        );
    }

    #[test]
    fn automatic_choice_is_deterministic_and_never_conflicted() {
        let mut declared = expert("d-declared", &[2], &[], 5);
        declared.declared_conflicts.push(DeclaredConflict {
            enterprise: OWNER.into(),
            reason: "co-author".into(),
            declared_by: "admin".into(),
            declare_time_us: 1,
        });
        let mut inactive = expert("i-inactive", &[2], &[], 5);
        inactive.active = false;
        let experts = [
            expert("c-busy", &[2], &[], 5),
            expert("b-free", &[2, 4], &[], 5),
            expert("a-affiliated", &[2], &[OWNER], 5),
            declared,
            expert("e-full", &[2], &[], 2),
            expert("f-field", &[4], &[], 5),
            inactive,
            expert("g-free", &[2], &[], 5),
            expert("h-done", &[2], &[], 5),
        ];
        let load = |id: &str| match id {
            "c-busy" => 1,
            "e-full" => 2,
            _ => 0,
        };
        let candidates: Vec<Candidate<'_>> = experts
            .iter()
            .map(|e| Candidate {
                expert: e,
                open_reviews: load(&e.id),
            })
            .collect();
        let already = BTreeSet::from(["h-done".to_string()]);
        let choice = choose(&candidates, 2, OWNER, &already, 2);
        assert_eq!(choice.chosen, ["b-free", "g-free"]);
        assert_eq!(choice.eligible, 3);
        let reasons: Vec<(&str, &str)> = choice
            .excluded
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("a-affiliated", "affiliated with the owner"),
                ("d-declared", "declared conflict: co-author"),
                ("e-full", "at load limit 2"),
                ("f-field", "field mismatch"),
                ("h-done", "already assigned in this round"),
                ("i-inactive", "inactive"),
            ]
        );
        // Asking for more than there are: all three eligible, fewest open reviews first.
        let choice = choose(&candidates, 2, OWNER, &already, 5);
        assert_eq!(choice.chosen, ["b-free", "g-free", "c-busy"]);
    }
}
