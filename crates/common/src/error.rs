//! One error type for every handler, mapped to a rich `tonic::Status` (google.rpc error details)
//! in exactly one place. Callers get a code, a readable message, an `ErrorInfo` reason
//! (UPPER_SNAKE) and, where it applies, `BadRequest` field violations, `ResourceInfo` or
//! `PreconditionFailure`. Internal causes go to the logs, never to the caller.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every Qilu error.
pub const ERROR_DOMAIN: &str = "qilu.gov.cn";

/// One bad field in a request: the field path (e.g. `enterprise.uscc`), why, and a reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Dot-separated path of the field in the request message.
    pub field: String,
    /// What is wrong, for a person.
    pub description: String,
    /// UPPER_SNAKE reason, for a program (e.g. `INVALID_CHECKSUM`).
    pub reason: String,
}

impl FieldViolation {
    /// A violation of `field` with a reason code and a description.
    pub fn new(
        field: impl Into<String>,
        reason: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
            reason: reason.into(),
        }
    }

    /// The same violation seen from an enclosing message: `uscc` → `enterprise.uscc`.
    pub fn nested(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// A precondition that does not hold (e.g. "achievement vetoed").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    /// Kind of precondition, UPPER_SNAKE (e.g. `ACHIEVEMENT_VETOED`).
    pub kind: String,
    /// What it is about, usually a resource name.
    pub subject: String,
    /// Why it fails, for a person.
    pub description: String,
}

/// Everything a Qilu handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The caller sent something invalid; nothing was changed.
    #[error("invalid argument: {}", summarize(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The named resource does not exist (or the caller may not know it exists).
    #[error("{resource_type} {name} not found")]
    NotFound {
        /// Resource type, e.g. `registry.qilu.gov.cn/Enterprise`.
        resource_type: &'static str,
        /// Resource name.
        name: String,
    },
    /// A resource with this name already exists.
    #[error("{resource_type} {name} already exists")]
    AlreadyExists {
        /// Resource type.
        resource_type: &'static str,
        /// Resource name.
        name: String,
    },
    /// The system is not in a state that allows the operation.
    #[error("failed precondition: {message}")]
    FailedPrecondition {
        /// Summary for the status message.
        message: String,
        /// Each precondition that fails.
        violations: Vec<Precondition>,
    },
    /// A concurrency conflict (stale etag, lost race); the caller may re-read and retry.
    #[error("aborted: {0}")]
    Aborted(String),
    /// No valid credentials.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Valid credentials without the right to do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A dependency (database, peer service) is down; the caller may retry later.
    #[error("{dependency} unavailable")]
    Unavailable {
        /// What is down, e.g. `database` or `registry`.
        dependency: String,
        /// The `ErrorInfo` reason: `DATABASE_UNAVAILABLE`, `DATABASE_BUSY` or
        /// `DEPENDENCY_UNAVAILABLE` (a peer service).
        reason: &'static str,
        /// The underlying error, for the logs.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A bug or an unexpected failure. The cause is logged; the caller sees only that it happened.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn summarize(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// One bad field.
    pub fn invalid(
        field: impl Into<String>,
        reason: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        ApiError::InvalidArgument(vec![FieldViolation::new(field, reason, description)])
    }

    /// One failed precondition.
    pub fn precondition(
        kind: impl Into<String>,
        subject: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        let description = description.into();
        ApiError::FailedPrecondition {
            message: description.clone(),
            violations: vec![Precondition {
                kind: kind.into(),
                subject: subject.into(),
                description,
            }],
        }
    }

    /// An unexpected failure with its cause.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(cause.into())
    }

    /// The UPPER_SNAKE reason for `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::InvalidArgument(_) => "INVALID_ARGUMENT",
            ApiError::NotFound { .. } => "RESOURCE_NOT_FOUND",
            ApiError::AlreadyExists { .. } => "RESOURCE_ALREADY_EXISTS",
            ApiError::FailedPrecondition { .. } => "FAILED_PRECONDITION",
            ApiError::Aborted(_) => "CONCURRENT_MODIFICATION",
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::PermissionDenied(_) => "PERMISSION_DENIED",
            ApiError::Unavailable { reason, .. } => reason,
            ApiError::Internal(_) => "INTERNAL",
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    /// Unique violations become ALREADY_EXISTS only where a handler maps them itself (it knows
    /// which resource); here a lost database is UNAVAILABLE (`DATABASE_UNAVAILABLE`), a lock not
    /// granted in time UNAVAILABLE (`DATABASE_BUSY`, see [`crate::db::classify`]), and anything
    /// else — our own fault — INTERNAL.
    fn from(err: sea_orm::DbErr) -> Self {
        use crate::db::DbTrouble;
        let reason = match crate::db::classify(&err) {
            Some(DbTrouble::Unreachable) => "DATABASE_UNAVAILABLE",
            Some(DbTrouble::Busy) => "DATABASE_BUSY",
            None => return ApiError::Internal(Box::new(err)),
        };
        ApiError::Unavailable {
            dependency: "database".into(),
            reason,
            source: Box::new(err),
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        let reason = err.reason();
        let mut metadata = HashMap::new();
        let (code, message, mut details) = match &err {
            ApiError::InvalidArgument(violations) => {
                let fvs: Vec<tonic_types::FieldViolation> = violations
                    .iter()
                    .map(|v| tonic_types::FieldViolation {
                        field: v.field.clone(),
                        description: v.description.clone(),
                        reason: v.reason.clone(),
                        localized_message: None,
                    })
                    .collect();
                (
                    Code::InvalidArgument,
                    err.to_string(),
                    ErrorDetails::with_bad_request(fvs),
                )
            }
            ApiError::NotFound {
                resource_type,
                name,
            } => (
                Code::NotFound,
                err.to_string(),
                ErrorDetails::with_resource_info(*resource_type, name.clone(), "", "not found"),
            ),
            ApiError::AlreadyExists {
                resource_type,
                name,
            } => (
                Code::AlreadyExists,
                err.to_string(),
                ErrorDetails::with_resource_info(
                    *resource_type,
                    name.clone(),
                    "",
                    "already exists",
                ),
            ),
            ApiError::FailedPrecondition { violations, .. } => (
                Code::FailedPrecondition,
                err.to_string(),
                ErrorDetails::with_precondition_failure(
                    violations
                        .iter()
                        .map(|v| {
                            tonic_types::PreconditionViolation::new(
                                v.kind.clone(),
                                v.subject.clone(),
                                v.description.clone(),
                            )
                        })
                        .collect::<Vec<_>>(),
                ),
            ),
            ApiError::Aborted(_) => (Code::Aborted, err.to_string(), ErrorDetails::new()),
            ApiError::Unauthenticated(_) => {
                (Code::Unauthenticated, err.to_string(), ErrorDetails::new())
            }
            ApiError::PermissionDenied(_) => {
                (Code::PermissionDenied, err.to_string(), ErrorDetails::new())
            }
            ApiError::Unavailable {
                dependency, source, ..
            } => {
                tracing::warn!(dependency = %dependency, error = %source, "dependency unavailable");
                metadata.insert("dependency".to_string(), dependency.clone());
                (Code::Unavailable, err.to_string(), ErrorDetails::new())
            }
            ApiError::Internal(source) => {
                tracing::error!(error = %source, debug = ?source, "internal error");
                (Code::Internal, err.to_string(), ErrorDetails::new())
            }
        };
        details.set_error_info(reason, ERROR_DOMAIN, metadata);
        Status::with_error_details(code, message, details)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations_and_reason() {
        let status: Status = ApiError::invalid(
            "enterprise.uscc",
            "INVALID_CHECKSUM",
            "check character is Z, expected 3",
        )
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().unwrap();
        assert_eq!(bad.field_violations[0].field, "enterprise.uscc");
        assert_eq!(bad.field_violations[0].reason, "INVALID_CHECKSUM");
        assert_eq!(details.error_info().unwrap().domain, ERROR_DOMAIN);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status: Status = ApiError::internal("password=hunter2 leaked").into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }

    #[test]
    fn a_lost_database_is_unavailable_and_a_bug_is_internal() {
        use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr, sqlx};
        use std::sync::Arc;
        let reset = DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        ))));
        for err in [reset, DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)] {
            let status = Status::from(ApiError::from(err));
            assert_eq!(status.code(), Code::Unavailable);
            let info = status.get_error_details().error_info().cloned().unwrap();
            assert_eq!(info.reason, "DATABASE_UNAVAILABLE");
            assert_eq!(info.metadata["dependency"], "database");
            assert!(!status.message().contains("reset"), "{status:?}");
        }
        let bug = DbErr::Type("column sequence is not an integer".into());
        assert_eq!(Status::from(ApiError::from(bug)).code(), Code::Internal);
    }

    #[test]
    fn not_found_names_the_resource() {
        let status: Status = ApiError::NotFound {
            resource_type: "registry.qilu.gov.cn/Enterprise",
            name: "enterprises/X".into(),
        }
        .into();
        assert_eq!(status.code(), Code::NotFound);
        let info = status.get_error_details();
        assert_eq!(info.resource_info().unwrap().resource_name, "enterprises/X");
    }
}
