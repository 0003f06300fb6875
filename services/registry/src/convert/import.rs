//! Bulk import's per-row answers: a row's outcome, and the problem of a row that was refused
//! or whose batch could not be saved.

use qilu_common::ApiError;
use qilu_proto::registry as pb;

use crate::domain::import::{Effect, Problem};

/// A row's outcome as the API reports it.
pub fn outcome(effect: Effect) -> pb::ImportRowOutcome {
    match effect {
        Effect::Create => pb::ImportRowOutcome::Created,
        Effect::Update => pb::ImportRowOutcome::Updated,
        Effect::Unchanged => pb::ImportRowOutcome::Unchanged,
    }
}

/// The problem of a row whose batch could not be committed.
pub fn not_saved(why: &str) -> pb::RowProblem {
    pb::RowProblem {
        field: "enterprise".into(),
        description: format!(
            "not saved: the batch holding this row failed to commit ({why}); import the row again"
        ),
    }
}

/// Why the rows of a batch that failed were not saved, as a row's problem tells it.
pub fn why_not_saved(e: &ApiError) -> &'static str {
    match e {
        ApiError::Unavailable { .. } => "the database is unavailable",
        ApiError::Aborted(_) => "a concurrent change conflicted",
        _ => "an internal error",
    }
}

/// A row's problem as the API reports it.
pub fn problem_to_proto(p: Problem) -> pb::RowProblem {
    pb::RowProblem {
        field: p.field,
        description: p.description,
    }
}
