//! Applications and objections as stored: pure types, no I/O. An application's nominated
//! category and grade and its field (copied from the achievement) never change; its outcome is
//! whatever the latest stored allocation revision says.

use serde::{Deserialize, Serialize};

use super::allocation::Outcome;
use qilu_common::input::etag_of;

/// Whether an application is in the competition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppState {
    /// In the competition.
    Active,
    /// Withdrawn by the applicant.
    Withdrawn,
}

impl AppState {
    /// The `ApplicationState` number.
    pub fn code(self) -> i32 {
        match self {
            AppState::Active => 1,
            AppState::Withdrawn => 2,
        }
    }

    /// From an `ApplicationState` number.
    pub fn from_code(code: i32) -> Option<AppState> {
        match code {
            1 => Some(AppState::Active),
            2 => Some(AppState::Withdrawn),
            _ => None,
        }
    }
}

/// The `ApplicationOutcome` number of an allocator outcome.
pub fn outcome_code(o: Outcome) -> i32 {
    match o {
        Outcome::Funded => 1,
        Outcome::Awarded => 2,
        Outcome::NotSelected => 3,
        Outcome::Excluded => 4,
    }
}

/// An application as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// The program id.
    pub program_id: String,
    /// Server-assigned id (UUIDv7, time-ordered).
    pub id: String,
    /// USCC of the applicant.
    pub uscc: String,
    /// Achievement id.
    pub achievement_id: String,
    /// `AwardCategory` number (0 for projects).
    pub category: i32,
    /// `AwardGrade` number (0 for projects).
    pub grade: i32,
    /// `IndustryField` number, copied from the achievement.
    pub industry_field: i32,
    /// Achievement title, copied.
    pub title: String,
    /// Requested fen (projects).
    pub requested_amount_fen: i64,
    /// In the competition or withdrawn.
    pub state: AppState,
    /// Score at the latest allocation, millipoints.
    pub score_millipoints: i64,
    /// `ApplicationOutcome` number (0 before allocation).
    pub outcome: i32,
    /// Why.
    pub outcome_reason: String,
    /// Rank (0 when excluded).
    pub rank: i32,
    /// Money, fen.
    pub amount_fen: i64,
    /// Why withdrawn.
    pub withdraw_reason: String,
    /// Created, µs.
    pub create_time_us: i64,
    /// Changed, µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Application {
    /// `programs/{p}/applications/{a}`.
    pub fn name(&self) -> String {
        application_name(&self.program_id, &self.id)
    }

    /// Opaque version tag.
    pub fn etag(&self) -> String {
        etag_of(&self.name(), self.version)
    }
}

/// `programs/{p}/applications/{a}`.
pub fn application_name(program: &str, id: &str) -> String {
    format!("programs/{program}/applications/{id}")
}

/// Whether an objection is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectionState {
    /// Awaiting resolution; blocks finalization.
    Open,
    /// Resolved.
    Resolved,
}

/// An objection as stored (identity included; redaction happens at the edge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objection {
    /// The program id.
    pub program_id: String,
    /// Server-assigned id.
    pub id: String,
    /// The application id objected to.
    pub application_id: String,
    /// Grounds.
    pub grounds: String,
    /// Evidence.
    pub evidence: String,
    /// The objector's token `sub`.
    pub objector: String,
    /// Real name.
    pub objector_name: String,
    /// Contact.
    pub objector_contact: String,
    /// Open or resolved.
    pub state: ObjectionState,
    /// `ObjectionResolution` number (0 while open).
    pub resolution: i32,
    /// `ObjectionRemedy` number.
    pub remedy: i32,
    /// Recorded reason.
    pub resolution_reason: String,
    /// Who resolved it.
    pub resolved_by: String,
    /// When resolved, µs.
    pub resolve_time_us: Option<i64>,
    /// Allocation revision produced (upheld).
    pub allocation_revision: i32,
    /// Filed, µs.
    pub create_time_us: i64,
    /// Changed, µs.
    pub update_time_us: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Objection {
    /// `programs/{p}/objections/{o}`.
    pub fn name(&self) -> String {
        format!("programs/{}/objections/{}", self.program_id, self.id)
    }

    /// Opaque version tag.
    pub fn etag(&self) -> String {
        etag_of(&self.name(), self.version)
    }
}
