//! Every way a decision of the awards service says no, as typed refusals returned by pure
//! functions, and their one mapping each to `FAILED_PRECONDITION` (`ApiError`). Handlers load
//! the facts (the program, the peers' answers, the clock), ask here, and pass a refusal on with
//! `?`; reason codes, subjects and messages are written only in their `From` impls, in
//! `convert/refusal.rs`.

use chrono_tz::Tz;
use qilu_proto::registry as rpb;
use qilu_proto::review as vpb;

use super::application::{AppState, Application, Objection, ObjectionState};
use super::ceiling::Breach;
use super::program::{self, Program, State, Transition};

/// Why a program's stage refuses a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageRefused {
    /// The stage machine does not allow the step.
    Illegal {
        /// `programs/{id}`.
        program: String,
        /// Why, as a sentence naming the program.
        why: String,
    },
    /// Only a DRAFT program is updated.
    NotDraft {
        /// `programs/{id}`.
        program: String,
        /// Its state.
        state: State,
    },
    /// Only a DRAFT program is deleted.
    NotDraftToDelete {
        /// `programs/{id}`.
        program: String,
        /// Its state.
        state: State,
    },
    /// The id belonged to a program that was deleted.
    IdOfDeleted {
        /// `programs/{id}`.
        program: String,
    },
    /// A program opens only with its settings complete.
    Incomplete {
        /// `programs/{id}`.
        program: String,
        /// What is missing.
        why: String,
    },
    /// A program is finalized only after its objection window.
    ObjectionWindowOpen {
        /// `programs/{id}`.
        program: String,
        /// When the window ends, RFC 3339 in the programme time zone.
        until: String,
    },
    /// A program is finalized only with every objection resolved.
    ObjectionsOpen {
        /// `programs/{id}`.
        program: String,
        /// The open objections' names.
        open: Vec<String>,
    },
    /// Statistics need an allocation.
    NotAllocated {
        /// `programs/{id}`.
        program: String,
        /// Its state.
        state: State,
    },
    /// Quotas above a statutory ceiling.
    CeilingExceeded {
        /// `programs/{id}`.
        program: String,
        /// The ceiling breached (boxed: it is large, and refusals travel by value).
        breach: Box<Breach>,
    },
}

/// The state `p` moves to by `method`, or why it cannot.
pub fn transition(p: &Program, method: Transition) -> Result<State, StageRefused> {
    p.state
        .transition(method)
        .map_err(|why| StageRefused::Illegal {
            program: p.name(),
            why: format!("{}: {why}", p.name()),
        })
}

/// Only a DRAFT program is updated.
pub fn may_update(p: &Program) -> Result<(), StageRefused> {
    if p.state == State::Draft {
        Ok(())
    } else {
        Err(StageRefused::NotDraft {
            program: p.name(),
            state: p.state,
        })
    }
}

/// Only a DRAFT program is deleted: nobody outside the programme office has seen it and nothing
/// refers to it. Once opened it runs to FINAL and stays on record.
pub fn may_delete(p: &Program) -> Result<(), StageRefused> {
    if p.state == State::Draft {
        Ok(())
    } else {
        Err(StageRefused::NotDraftToDelete {
            program: p.name(),
            state: p.state,
        })
    }
}

/// The state `p` opens to: a legal step with complete settings.
pub fn may_open(p: &Program) -> Result<State, StageRefused> {
    let next = transition(p, Transition::Open)?;
    match p.incomplete() {
        Some(why) => Err(StageRefused::Incomplete {
            program: p.name(),
            why,
        }),
        None => Ok(next),
    }
}

/// Whether `p` may be allocated (`validate_only`: previewed) now.
pub fn may_allocate(p: &Program, validate_only: bool) -> Result<(), StageRefused> {
    let allowed = if validate_only {
        matches!(p.state, State::Closed | State::Allocated)
    } else {
        p.state == State::Closed
    };
    if allowed {
        return Ok(());
    }
    Err(StageRefused::Illegal {
        program: p.name(),
        why: format!(
            "{} is {}; {}",
            p.name(),
            p.state.as_str(),
            if validate_only {
                "a preview needs a CLOSED or ALLOCATED program"
            } else {
                "an allocation runs once, on a CLOSED program"
            }
        ),
    })
}

/// The state `p` finalizes to at `now_us`, once its objection window (shown in `tz`) is over
/// and none of `open` objections is left.
pub fn may_finalize(
    p: &Program,
    now_us: i64,
    tz: Tz,
    open: &[Objection],
) -> Result<State, StageRefused> {
    let next = transition(p, Transition::Finalize)?;
    if let Some(end) = p.objection_window_end_us
        && now_us <= end
    {
        return Err(StageRefused::ObjectionWindowOpen {
            program: p.name(),
            until: qilu_common::time::to_datetime(end)
                .map(|t| t.with_timezone(&tz).to_rfc3339())
                .unwrap_or_default(),
        });
    }
    let open: Vec<String> = open
        .iter()
        .filter(|o| o.state == ObjectionState::Open)
        .map(Objection::name)
        .collect();
    if !open.is_empty() {
        return Err(StageRefused::ObjectionsOpen {
            program: p.name(),
            open,
        });
    }
    Ok(next)
}

/// Why the peers' facts make an application ineligible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ineligible {
    /// The registry does not know the enterprise.
    EnterpriseNotRegistered {
        /// `enterprises/{uscc}`.
        enterprise: String,
    },
    /// The enterprise is not ACTIVE in the registry.
    EnterpriseNotActive {
        /// `enterprises/{uscc}`.
        enterprise: String,
        /// Its registry state's proto name.
        state: String,
    },
    /// The program requires a high-tech certificate the enterprise does not hold.
    EnterpriseNotCertified {
        /// `enterprises/{uscc}`.
        enterprise: String,
        /// `programs/{id}`.
        program: String,
    },
    /// The review service does not know the achievement.
    AchievementNotFound {
        /// `achievements/{id}`.
        achievement: String,
    },
    /// The achievement belongs to another enterprise.
    AchievementNotOwned {
        /// `achievements/{id}`.
        achievement: String,
        /// `enterprises/{uscc}` of the applicant.
        owner: String,
    },
    /// One-vote veto.
    AchievementVetoed {
        /// `achievements/{id}`.
        achievement: String,
    },
    /// Not (yet) approved.
    AchievementNotApproved {
        /// `achievements/{id}`.
        achievement: String,
        /// Its review state's proto name.
        state: String,
    },
}

impl Ineligible {
    /// The reason code.
    pub fn kind(&self) -> &'static str {
        match self {
            Ineligible::EnterpriseNotRegistered { .. } => "ENTERPRISE_NOT_REGISTERED",
            Ineligible::EnterpriseNotActive { .. } => "ENTERPRISE_NOT_ACTIVE",
            Ineligible::EnterpriseNotCertified { .. } => "ENTERPRISE_NOT_CERTIFIED",
            Ineligible::AchievementNotFound { .. } => "ACHIEVEMENT_NOT_FOUND",
            Ineligible::AchievementNotOwned { .. } => "ACHIEVEMENT_NOT_OWNED",
            Ineligible::AchievementVetoed { .. } => "ACHIEVEMENT_VETOED",
            Ineligible::AchievementNotApproved { .. } => "ACHIEVEMENT_NOT_APPROVED",
        }
    }

    /// The resource the refusal is about.
    pub fn subject(&self) -> &str {
        match self {
            Ineligible::EnterpriseNotRegistered { enterprise }
            | Ineligible::EnterpriseNotActive { enterprise, .. }
            | Ineligible::EnterpriseNotCertified { enterprise, .. } => enterprise,
            Ineligible::AchievementNotFound { achievement }
            | Ineligible::AchievementNotOwned { achievement, .. }
            | Ineligible::AchievementVetoed { achievement }
            | Ineligible::AchievementNotApproved { achievement, .. } => achievement,
        }
    }

    /// Why, as the allocation records it for an application excluded at run time.
    pub fn exclusion(&self) -> String {
        match self {
            Ineligible::EnterpriseNotRegistered { enterprise } => {
                format!("{enterprise} is no longer registered in the enterprise registry")
            }
            Ineligible::AchievementVetoed { .. } => {
                format!("achievement vetoed since applying: {self}")
            }
            Ineligible::AchievementNotFound { .. }
            | Ineligible::AchievementNotOwned { .. }
            | Ineligible::AchievementNotApproved { .. } => {
                format!("{self} (checked at allocation)")
            }
            Ineligible::EnterpriseNotActive { .. } | Ineligible::EnterpriseNotCertified { .. } => {
                self.to_string()
            }
        }
    }
}

impl std::fmt::Display for Ineligible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ineligible::EnterpriseNotRegistered { enterprise } => write!(
                f,
                "{enterprise} is not registered in the enterprise registry"
            ),
            Ineligible::EnterpriseNotActive { enterprise, state } => write!(
                f,
                "{enterprise} is {state} in the registry; only an ACTIVE enterprise may apply"
            ),
            Ineligible::EnterpriseNotCertified {
                enterprise,
                program,
            } => write!(
                f,
                "{enterprise} holds no valid high-tech certificate, which {program} requires"
            ),
            Ineligible::AchievementNotFound { achievement } => {
                write!(f, "{achievement} does not exist in the review service")
            }
            Ineligible::AchievementNotOwned { achievement, owner } => {
                write!(f, "{achievement} does not belong to {owner}")
            }
            Ineligible::AchievementVetoed { achievement } => write!(
                f,
                "{achievement} is vetoed (one-vote veto: energy-intensive or highly polluting)"
            ),
            Ineligible::AchievementNotApproved { achievement, state } => write!(
                f,
                "{achievement} is {state}; only an APPROVED achievement may apply"
            ),
        }
    }
}

/// Why the registry's facts `e` disqualify the enterprise for `program`, if they do.
pub fn enterprise_ineligible(e: &rpb::Enterprise, program: &Program) -> Option<Ineligible> {
    let enterprise = format!("enterprises/{}", e.uscc);
    if e.state != rpb::EnterpriseState::Active as i32 {
        let state = rpb::EnterpriseState::try_from(e.state)
            .map(|s| s.as_str_name())
            .unwrap_or("in an unknown state");
        return Some(Ineligible::EnterpriseNotActive {
            enterprise,
            state: state.to_string(),
        });
    }
    if program.settings.requires_high_tech_certification && !e.high_tech_certified {
        return Some(Ineligible::EnterpriseNotCertified {
            enterprise,
            program: program.name(),
        });
    }
    None
}

/// Why the review service's facts `s` disqualify `achievement` for enterprise `uscc`, if they do.
pub fn achievement_ineligible(
    s: Option<&vpb::AchievementStatus>,
    achievement: &str,
    uscc: &str,
) -> Option<Ineligible> {
    let achievement = achievement.to_string();
    let Some(s) = s.filter(|s| s.found) else {
        return Some(Ineligible::AchievementNotFound { achievement });
    };
    let owner = format!("enterprises/{uscc}");
    if s.owner != owner {
        return Some(Ineligible::AchievementNotOwned { achievement, owner });
    }
    if s.vetoed || s.state == vpb::AchievementState::Vetoed as i32 {
        return Some(Ineligible::AchievementVetoed { achievement });
    }
    if s.state != vpb::AchievementState::Approved as i32 {
        let state = vpb::AchievementState::try_from(s.state)
            .map(|s| s.as_str_name())
            .unwrap_or("in an unknown state");
        return Some(Ineligible::AchievementNotApproved {
            achievement,
            state: state.to_string(),
        });
    }
    None
}

/// Why an application cannot be filed or withdrawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyRefused {
    /// Applications are accepted only while the program is OPEN.
    ProgramNotOpen {
        /// `programs/{id}`.
        program: String,
        /// Its state.
        state: State,
    },
    /// Today is outside the application window.
    OutsideWindow {
        /// `programs/{id}`.
        program: String,
        /// Which edge of the window.
        why: String,
    },
    /// Withdrawal after allocation.
    ProgramAlreadyAllocated {
        /// `programs/{id}`.
        program: String,
        /// Its state.
        state: State,
    },
    /// Withdrawn already.
    ApplicationWithdrawn {
        /// The application's name.
        application: String,
    },
}

/// Whether `p` accepts applications on `today` (programme time zone).
pub fn may_apply(p: &Program, today: chrono::NaiveDate) -> Result<(), ApplyRefused> {
    if p.state != State::Open {
        return Err(ApplyRefused::ProgramNotOpen {
            program: p.name(),
            state: p.state,
        });
    }
    if let Some(why) = program::outside_application_window(&p.settings.deadlines, today) {
        return Err(ApplyRefused::OutsideWindow {
            program: p.name(),
            why,
        });
    }
    Ok(())
}

/// Whether application `a` of program `p` may be withdrawn.
pub fn may_withdraw(a: &Application, p: &Program) -> Result<(), ApplyRefused> {
    if !matches!(p.state, State::Open | State::Closed) {
        return Err(ApplyRefused::ProgramAlreadyAllocated {
            program: p.name(),
            state: p.state,
        });
    }
    if a.state != AppState::Active {
        return Err(ApplyRefused::ApplicationWithdrawn {
            application: a.name(),
        });
    }
    Ok(())
}

/// Why an objection cannot be filed or resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectionRefused {
    /// Objections are filed only while results are in public notice.
    WindowClosed {
        /// `programs/{id}`.
        program: String,
        /// Its state.
        state: State,
    },
    /// Resolved already.
    Resolved {
        /// The objection's name.
        objection: String,
    },
    /// Objections are resolved only while results are in public notice.
    ProgramNotPublicized {
        /// `programs/{id}`.
        program: String,
        /// Its state.
        state: State,
    },
    /// The application took no part in the allocation.
    ApplicationNotAllocated {
        /// The application's name.
        application: String,
    },
    /// Nothing to reinstate.
    ApplicationNotExcluded {
        /// The application's name.
        application: String,
    },
}

/// Whether `p` takes objections at `now_us`.
pub fn may_object(p: &Program, now_us: i64) -> Result<(), ObjectionRefused> {
    let open =
        p.state == State::Publicized && p.objection_window_end_us.is_some_and(|end| now_us <= end);
    if open {
        Ok(())
    } else {
        Err(ObjectionRefused::WindowClosed {
            program: p.name(),
            state: p.state,
        })
    }
}

/// Whether objection `o` of program `p` may be resolved.
pub fn may_resolve(o: &Objection, p: &Program) -> Result<(), ObjectionRefused> {
    if o.state != ObjectionState::Open {
        return Err(ObjectionRefused::Resolved {
            objection: o.name(),
        });
    }
    if p.state != State::Publicized {
        return Err(ObjectionRefused::ProgramNotPublicized {
            program: p.name(),
            state: p.state,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
