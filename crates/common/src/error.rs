//! One error type for every handler, mapped to a rich `tonic::Status` (google.rpc error details)
//! in exactly one place. Callers get a code, a readable message, an `ErrorInfo` reason
//! (UPPER_SNAKE) and, where it applies, `BadRequest` field violations, `ResourceInfo` or
//! `PreconditionFailure`. Internal causes go to the logs, never to the caller.
//!
//! Echoed input is bounded here, once, for every error (`crate::limits`): long values are cut to
//! a preview with their length, at most `MAX_VIOLATIONS` violations are listed ("and N more",
//! and `omitted_violations` in `ErrorInfo.metadata`), and the message and the encoded details
//! have hard caps, so the trailers stay a few KiB whatever the caller sent and the caller sees
//! its real error, not RESOURCE_EXHAUSTED from its own client.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::limits::{
    MAX_DESCRIPTION_BYTES, MAX_DETAIL_NAME_BYTES, MAX_STATUS_DETAILS_BYTES,
    MAX_STATUS_MESSAGE_BYTES, MAX_VIOLATIONS, preview, shorten_bytes,
};

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
    #[error("{resource_type} {} not found", preview(name))]
    NotFound {
        /// Resource type, e.g. `registry.qilu.gov.cn/Enterprise`.
        resource_type: &'static str,
        /// Resource name.
        name: String,
    },
    /// A resource with this name already exists.
    #[error("{resource_type} {} already exists", preview(name))]
    AlreadyExists {
        /// Resource type.
        resource_type: &'static str,
        /// Resource name.
        name: String,
    },
    /// The system is not in a state that allows the operation.
    #[error(
        "failed precondition: {}",
        shorten_bytes(message, MAX_STATUS_MESSAGE_BYTES)
    )]
    FailedPrecondition {
        /// Summary for the status message.
        message: String,
        /// Each precondition that fails.
        violations: Vec<Precondition>,
    },
    /// A concurrency conflict (stale etag, lost race); the caller may re-read and retry.
    #[error("aborted: {}", shorten_bytes(.0, MAX_STATUS_MESSAGE_BYTES))]
    Aborted(String),
    /// No valid credentials.
    #[error("unauthenticated: {}", shorten_bytes(.0, MAX_STATUS_MESSAGE_BYTES))]
    Unauthenticated(String),
    /// Valid credentials without the right to do this.
    #[error("permission denied: {}", shorten_bytes(.0, MAX_STATUS_MESSAGE_BYTES))]
    PermissionDenied(String),
    /// A dependency (database, peer service) is down; the caller may retry later.
    #[error("{dependency} unavailable")]
    Unavailable {
        /// What is down, e.g. `database` or `registry`.
        dependency: String,
        /// The `ErrorInfo` reason: `DATABASE_UNAVAILABLE`, `DATABASE_BUSY`,
        /// `WRITE_LEASE_EXPIRED` (a write held the service's writer past its deadline) or
        /// `DEPENDENCY_UNAVAILABLE` (a peer service).
        reason: &'static str,
        /// The underlying error, for the logs.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server is shutting down and ended this call (a long import, a change stream); the
    /// caller retries later or elsewhere. `UNAVAILABLE` with reason `SERVER_SHUTTING_DOWN`, a
    /// retry delay, and `metadata` saying how far the call got (e.g. `resume_cursor`).
    #[error("{}", shorten_bytes(message, MAX_STATUS_MESSAGE_BYTES))]
    ShuttingDown {
        /// What the caller should know: what was kept, where to resume.
        message: String,
        /// `ErrorInfo.metadata`: how far the call got.
        metadata: Vec<(&'static str, String)>,
    },
    /// The caller's own request stream failed (it was cancelled, or a message could not be
    /// read): tonic's status for it, passed on unchanged.
    #[error("request stream: {}", .0.message())]
    Inbound(Status),
    /// A bug or an unexpected failure. The cause is logged; the caller sees only that it happened.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// "field: description; …" over the first violations, bounded like the status message.
fn summarize(violations: &[FieldViolation]) -> String {
    let shown = violations.len().min(MAX_VIOLATIONS);
    let mut out = violations[..shown]
        .iter()
        .map(|v| {
            format!(
                "{}: {}",
                shorten_bytes(&v.field, MAX_DETAIL_NAME_BYTES),
                shorten_bytes(&v.description, MAX_DESCRIPTION_BYTES)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let more = violations.len() - shown;
    let suffix = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    out = shorten_bytes(&out, MAX_STATUS_MESSAGE_BYTES - 64 - suffix.len());
    out + &suffix
}

/// The field violations that fit the details budget, each field shortened, and how many were
/// left out.
fn bounded_violations(violations: &[FieldViolation]) -> (Vec<tonic_types::FieldViolation>, usize) {
    // The details also carry the message and the ErrorInfo; leave room for both.
    let mut budget = MAX_STATUS_DETAILS_BYTES - MAX_STATUS_MESSAGE_BYTES - 256;
    let mut kept = Vec::new();
    for v in violations.iter().take(MAX_VIOLATIONS) {
        let fv = tonic_types::FieldViolation {
            field: shorten_bytes(&v.field, MAX_DETAIL_NAME_BYTES),
            description: shorten_bytes(&v.description, MAX_DESCRIPTION_BYTES),
            reason: shorten_bytes(&v.reason, MAX_DETAIL_NAME_BYTES),
            localized_message: None,
        };
        // Each string costs its bytes plus a tag and a length; the violation itself, two more.
        let cost = fv.field.len() + fv.description.len() + fv.reason.len() + 12;
        if cost > budget && !kept.is_empty() {
            break;
        }
        budget = budget.saturating_sub(cost);
        kept.push(fv);
    }
    let omitted = violations.len() - kept.len();
    (kept, omitted)
}

/// The precondition failures that fit the details budget, each shortened.
fn bounded_preconditions(violations: &[Precondition]) -> Vec<tonic_types::PreconditionViolation> {
    let mut budget = MAX_STATUS_DETAILS_BYTES - MAX_STATUS_MESSAGE_BYTES - 256;
    let mut kept = Vec::new();
    for v in violations.iter().take(MAX_VIOLATIONS) {
        let pv = tonic_types::PreconditionViolation::new(
            shorten_bytes(&v.kind, MAX_DETAIL_NAME_BYTES),
            preview(&v.subject),
            shorten_bytes(&v.description, MAX_DESCRIPTION_BYTES),
        );
        let cost = pv.r#type.len() + pv.subject.len() + pv.description.len() + 12;
        if cost > budget && !kept.is_empty() {
            break;
        }
        budget = budget.saturating_sub(cost);
        kept.push(pv);
    }
    kept
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
            ApiError::ShuttingDown { .. } => "SERVER_SHUTTING_DOWN",
            ApiError::Inbound(_) => "REQUEST_STREAM_FAILED",
            ApiError::Internal(_) => "INTERNAL",
        }
    }
}

impl From<FieldViolation> for ApiError {
    /// One bad field is an `INVALID_ARGUMENT` with that violation, so a parser answering
    /// `Result<_, FieldViolation>` can be used with `?` in a handler.
    fn from(violation: FieldViolation) -> Self {
        ApiError::InvalidArgument(vec![violation])
    }
}

#[cfg(feature = "server")]
impl From<sea_orm::DbErr> for ApiError {
    /// Unique violations become ALREADY_EXISTS only where a handler maps them itself (it knows
    /// which resource); here a lost database is UNAVAILABLE (`DATABASE_UNAVAILABLE`), a lock not
    /// granted in time UNAVAILABLE (`DATABASE_BUSY`, see [`crate::db::classify`]), and anything
    /// else — our own fault — INTERNAL.
    fn from(err: sea_orm::DbErr) -> Self {
        if let Some(limit) = query_limit_exceeded(&err) {
            return limit;
        }
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

/// Database limits only the size of a request can reach. The bounds in `crate::limits` keep
/// requests far below them; a request that still reaches one is the caller's to shrink, so it is
/// INVALID_ARGUMENT, never INTERNAL.
#[cfg(feature = "server")]
const QUERY_LIMIT_MESSAGES: &[&str] = &[
    "too many SQL variables",           // SQLite SQLITE_MAX_VARIABLE_NUMBER
    "Expression tree is too large",     // SQLite SQLITE_MAX_EXPR_DEPTH
    "LIKE or GLOB pattern too complex", // SQLite SQLITE_MAX_LIKE_PATTERN_LENGTH
    "string or blob too big",           // SQLite SQLITE_MAX_LENGTH
    "too many terms in compound SELECT",
    "parser stack overflow",
    "stack depth limit exceeded",   // PostgreSQL 54001 (max_stack_depth)
    "too many arguments for query", // sqlx: PostgreSQL takes at most 65,535 parameters
];

#[cfg(feature = "server")]
fn query_limit_exceeded(err: &sea_orm::DbErr) -> Option<ApiError> {
    use sea_orm::DbErr;
    if !matches!(err, DbErr::Query(_) | DbErr::Exec(_)) {
        return None;
    }
    let text = err.to_string();
    let limit = QUERY_LIMIT_MESSAGES.iter().find(|m| text.contains(**m))?;
    tracing::warn!(limit = %limit, error = %text, "request reached a database limit");
    Some(ApiError::invalid(
        "request",
        "REQUEST_TOO_COMPLEX",
        "the request is too large or too complex for the database; use a shorter filter or fewer items",
    ))
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        let reason = err.reason();
        let mut metadata = HashMap::new();
        let (code, message, mut details) = match &err {
            ApiError::InvalidArgument(violations) => {
                let (fvs, omitted) = bounded_violations(violations);
                if omitted > 0 {
                    metadata.insert("omitted_violations".to_string(), omitted.to_string());
                }
                // The message lists exactly the violations the details carry.
                let mut message =
                    format!("invalid argument: {}", summarize(&violations[..fvs.len()]));
                if omitted > 0 {
                    message = format!(
                        "{}; and {omitted} more",
                        shorten_bytes(&message, MAX_STATUS_MESSAGE_BYTES - 32)
                    );
                }
                (
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(fvs),
                )
            }
            ApiError::NotFound {
                resource_type,
                name,
            } => (
                Code::NotFound,
                err.to_string(),
                ErrorDetails::with_resource_info(*resource_type, preview(name), "", "not found"),
            ),
            ApiError::AlreadyExists {
                resource_type,
                name,
            } => (
                Code::AlreadyExists,
                err.to_string(),
                ErrorDetails::with_resource_info(
                    *resource_type,
                    preview(name),
                    "",
                    "already exists",
                ),
            ),
            ApiError::FailedPrecondition { violations, .. } => (
                Code::FailedPrecondition,
                err.to_string(),
                ErrorDetails::with_precondition_failure(bounded_preconditions(violations)),
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
            ApiError::ShuttingDown {
                message,
                metadata: how_far,
            } => {
                for (k, v) in how_far {
                    metadata.insert((*k).to_string(), v.clone());
                }
                (
                    Code::Unavailable,
                    message.clone(),
                    ErrorDetails::with_retry_info(Some(std::time::Duration::from_secs(1))),
                )
            }
            ApiError::Inbound(status) => return status.clone(),
            ApiError::Internal(source) => {
                tracing::error!(error = %source, debug = ?source, "internal error");
                (Code::Internal, err.to_string(), ErrorDetails::new())
            }
        };
        let message = shorten_bytes(&message, MAX_STATUS_MESSAGE_BYTES);
        details.set_error_info(reason, ERROR_DOMAIN, metadata.clone());
        let status = Status::with_error_details(code, message.clone(), details);
        if status.details().len() <= MAX_STATUS_DETAILS_BYTES {
            return status;
        }
        // Over the hard cap (many long preconditions): keep the code, message and reason.
        let mut details = ErrorDetails::new();
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

    /// Bytes of the headers a status becomes (name + value + 32 each, as HTTP/2 counts them).
    fn header_bytes(status: &Status) -> usize {
        status
            .clone()
            .into_http::<tonic::body::Body>()
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum()
    }

    #[test]
    fn huge_echoed_values_stay_small_and_keep_code_and_field() {
        let huge = "氢".repeat(1 << 20);
        let long = "氢".repeat(5000);
        let cases: Vec<ApiError> = vec![
            ApiError::invalid("name", "INVALID_NAME", format!("{huge:?} is not a name")),
            ApiError::InvalidArgument(
                (0..10_000)
                    .map(|i| FieldViolation::new(format!("names[{i}]"), "BAD", long.clone()))
                    .collect(),
            ),
            ApiError::NotFound {
                resource_type: "registry.qilu.gov.cn/Enterprise",
                name: huge.clone(),
            },
            ApiError::AlreadyExists {
                resource_type: "registry.qilu.gov.cn/Enterprise",
                name: huge.clone(),
            },
            ApiError::FailedPrecondition {
                message: huge.clone(),
                violations: (0..1000)
                    .map(|_| Precondition {
                        kind: long.clone(),
                        subject: long.clone(),
                        description: long.clone(),
                    })
                    .collect(),
            },
            ApiError::Aborted(huge.clone()),
            ApiError::Unauthenticated(huge.clone()),
            ApiError::PermissionDenied(huge.clone()),
        ];
        for err in cases {
            let reason = err.reason();
            assert!(err.to_string().len() < 1024, "{reason}: display is bounded");
            let status: Status = err.into();
            let size = header_bytes(&status);
            assert!(size < 4500, "{reason}: {size} bytes of headers");
            assert!(status.message().len() <= MAX_STATUS_MESSAGE_BYTES);
            assert!(status.details().len() <= MAX_STATUS_DETAILS_BYTES);
            let details = status.get_error_details();
            assert_eq!(details.error_info().unwrap().reason, reason);
            if status.code() == Code::InvalidArgument {
                let bad = details.bad_request().unwrap();
                assert!(bad.field_violations[0].field.starts_with("name"));
            }
        }
    }

    #[test]
    fn many_violations_are_listed_up_to_the_bound_and_counted() {
        let err = ApiError::InvalidArgument(
            (0..50)
                .map(|i| FieldViolation::new(format!("names[{i}]"), "BAD", "not a name"))
                .collect(),
        );
        let status: Status = err.into();
        let details = status.get_error_details();
        let shown = details.bad_request().unwrap().field_violations.len();
        assert_eq!(shown, MAX_VIOLATIONS);
        let omitted = 50 - MAX_VIOLATIONS;
        assert!(
            status.message().ends_with(&format!("; and {omitted} more")),
            "{}",
            status.message()
        );
        assert_eq!(
            details.error_info().unwrap().metadata["omitted_violations"],
            omitted.to_string()
        );
    }

    #[cfg(feature = "server")]
    #[test]
    fn database_limits_reached_by_a_request_are_invalid_argument() {
        use sea_orm::{DbErr, RuntimeErr};
        for text in [
            "error returned from database: (code: 1) too many SQL variables",
            "error returned from database: (code: 1) Expression tree is too large (maximum depth 1000)",
            "error returned from database: (code: 1) LIKE or GLOB pattern too complex",
            "error returned from database: stack depth limit exceeded",
        ] {
            let err = ApiError::from(DbErr::Query(RuntimeErr::Internal(text.into())));
            assert!(
                matches!(err, ApiError::InvalidArgument(_)),
                "{text}: {err:?}"
            );
        }
        let other = ApiError::from(DbErr::Query(RuntimeErr::Internal("disk I/O error".into())));
        assert!(matches!(other, ApiError::Internal(_)));
    }

    #[cfg(feature = "server")]
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
