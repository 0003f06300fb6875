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

/// The `ResourceInfo.resource_type` of an import.
pub const IMPORT_TYPE: &str = "registry.qilu.gov.cn/Import";

/// An import as the API shows it.
pub fn import_to_proto(job: &crate::store::import_job::Job) -> pb::Import {
    use qilu_common::time::to_timestamp;
    pb::Import {
        name: format!("imports/{}", job.id),
        kind: job.kind,
        validate_only: job.validate_only,
        state: job.state,
        rows_total: job.rows_total,
        rows_processed: job.rows_processed,
        created_count: job.created_count,
        updated_count: job.updated_count,
        unchanged_count: job.unchanged_count,
        rejected_count: job.rejected_count,
        operation: job.operation.clone(),
        creator: job.creator.clone(),
        create_time: Some(to_timestamp(job.create_time_us)),
        update_time: Some(to_timestamp(job.update_time_us)),
        last_change_cursor: job
            .last_sequence
            .map(qilu_common::feed::encode_cursor)
            .unwrap_or_default(),
    }
}

/// An import's progress, as its operation's metadata.
pub fn progress_of(job: &crate::store::import_job::Job, attempt: i32) -> pb::ImportProgress {
    pb::ImportProgress {
        import: format!("imports/{}", job.id),
        kind: job.kind,
        rows_total: job.rows_total,
        rows_processed: job.rows_processed,
        created_count: job.created_count,
        updated_count: job.updated_count,
        unchanged_count: job.unchanged_count,
        rejected_count: job.rejected_count,
        attempt,
    }
}

/// The import that `name` names does not exist.
pub fn import_not_found(name: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: IMPORT_TYPE,
        name: name.to_string(),
    }
}
