//! Each refusal of `domain::refusal` as the `ApiError` a caller gets, mapped once here (codes,
//! `PreconditionFailure` kinds and subjects, messages), as the registry maps its refusals in
//! `convert/`. The decisions themselves stay pure in `domain/`.

use qilu_common::ApiError;
use qilu_common::error::Precondition;

use crate::domain::refusal::{ApplyRefused, Ineligible, ObjectionRefused, StageRefused};

impl From<StageRefused> for ApiError {
    fn from(r: StageRefused) -> ApiError {
        match r {
            StageRefused::Illegal { program, why } => {
                ApiError::precondition("ILLEGAL_STAGE_TRANSITION", program, why)
            }
            StageRefused::NotDraft { program, state } => ApiError::precondition(
                "PROGRAM_NOT_DRAFT",
                program.clone(),
                format!(
                    "{program} is {}; only a DRAFT program can be updated",
                    state.as_str()
                ),
            ),
            StageRefused::NotDraftToDelete { program, state } => ApiError::precondition(
                "PROGRAM_NOT_DRAFT",
                program.clone(),
                format!(
                    "{program} is {}; only a DRAFT program can be deleted (an opened program runs to FINAL and stays on record)",
                    state.as_str()
                ),
            ),
            StageRefused::IdOfDeleted { program } => ApiError::precondition(
                "ID_OF_DELETED_RESOURCE",
                program.clone(),
                format!(
                    "{program} was deleted; a deleted program's id is never given to another, so the audit log names one program per id"
                ),
            ),
            StageRefused::Incomplete { program, why } => {
                ApiError::precondition("PROGRAM_INCOMPLETE", program, why)
            }
            StageRefused::ObjectionWindowOpen { program, until } => ApiError::precondition(
                "OBJECTION_WINDOW_OPEN",
                program.clone(),
                format!(
                    "the objection window of {program} is open until {until} (end of day, programme time zone)"
                ),
            ),
            StageRefused::ObjectionsOpen { program, open } => ApiError::FailedPrecondition {
                message: format!(
                    "{} open objection(s) on {program} must be resolved first",
                    open.len()
                ),
                violations: open
                    .into_iter()
                    .map(|o| Precondition {
                        kind: "OBJECTION_OPEN".into(),
                        description: format!("{o} is still open"),
                        subject: o,
                    })
                    .collect(),
            },
            StageRefused::NotAllocated { program, state } => ApiError::precondition(
                "PROGRAM_NOT_ALLOCATED",
                program.clone(),
                format!("{program} is {}; it has no allocation yet", state.as_str()),
            ),
            StageRefused::CeilingExceeded { program, breach } => ApiError::precondition(
                "STATUTORY_CEILING_EXCEEDED",
                breach.subject(),
                format!("{program}: {}", breach.describe()),
            ),
        }
    }
}

impl From<Ineligible> for ApiError {
    fn from(r: Ineligible) -> ApiError {
        ApiError::precondition(r.kind(), r.subject().to_string(), r.to_string())
    }
}

impl From<ApplyRefused> for ApiError {
    fn from(r: ApplyRefused) -> ApiError {
        match r {
            ApplyRefused::ProgramNotOpen { program, state } => ApiError::precondition(
                "PROGRAM_NOT_OPEN",
                program.clone(),
                format!(
                    "{program} is {}; applications are accepted only while it is OPEN",
                    state.as_str()
                ),
            ),
            ApplyRefused::OutsideWindow { program, why } => ApiError::precondition(
                "OUTSIDE_APPLICATION_WINDOW",
                program.clone(),
                format!("{program}: {why} (programme time zone)"),
            ),
            ApplyRefused::ProgramAlreadyAllocated { program, state } => ApiError::precondition(
                "PROGRAM_ALREADY_ALLOCATED",
                program.clone(),
                format!(
                    "{program} is {}; applications can be withdrawn only before allocation",
                    state.as_str()
                ),
            ),
            ApplyRefused::ApplicationWithdrawn { application } => ApiError::precondition(
                "APPLICATION_WITHDRAWN",
                application.clone(),
                format!("{application} is already withdrawn"),
            ),
        }
    }
}

impl From<ObjectionRefused> for ApiError {
    fn from(r: ObjectionRefused) -> ApiError {
        match r {
            ObjectionRefused::WindowClosed { program, state } => ApiError::precondition(
                "OBJECTION_WINDOW_CLOSED",
                program.clone(),
                format!(
                    "{program} is {} and its objection window is not open; objections are filed only while results are in public notice",
                    state.as_str()
                ),
            ),
            ObjectionRefused::Resolved { objection } => ApiError::precondition(
                "OBJECTION_RESOLVED",
                objection.clone(),
                format!("{objection} is already resolved"),
            ),
            ObjectionRefused::ProgramNotPublicized { program, state } => ApiError::precondition(
                "PROGRAM_NOT_PUBLICIZED",
                program.clone(),
                format!(
                    "{program} is {}; objections are resolved while results are in public notice",
                    state.as_str()
                ),
            ),
            ObjectionRefused::ApplicationNotAllocated { application } => ApiError::precondition(
                "APPLICATION_NOT_ALLOCATED",
                application.clone(),
                format!("{application} took no part in the allocation (withdrawn before it)"),
            ),
            ObjectionRefused::ApplicationNotExcluded { application } => ApiError::precondition(
                "APPLICATION_NOT_EXCLUDED",
                application.clone(),
                format!(
                    "{application} was not excluded by a check or an objection; there is nothing to reinstate"
                ),
            ),
        }
    }
}
