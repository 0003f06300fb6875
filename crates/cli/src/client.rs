//! Talking to a running suite: the connection, the bearer token, resource-name shorthands, and
//! turning a failed call into the one-line error (plus one line per field violation or
//! precondition failure) that every client command prints.

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// A connection to the suite and the token every call carries.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The gRPC channel (all three services answer on it in `qilu dev`).
    pub channel: Channel,
    token: Option<String>,
}

impl Conn {
    /// Connects to `addr` (`http://host:port`, or `host:port`).
    pub async fn connect(addr: &str, token: Option<String>) -> Result<Conn, String> {
        let url = with_scheme(addr);
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| format!("bad --addr {addr:?}: {e}"))?
            .connect_timeout(std::time::Duration::from_secs(5));
        let channel = endpoint.connect().await.map_err(|e| {
            format!("cannot connect to {url}: {e} (is the suite running? start it with `qilu dev`)")
        })?;
        Ok(Conn {
            channel,
            token: token.filter(|t| !t.trim().is_empty()),
        })
    }

    /// `message` as a request carrying the bearer token.
    pub fn req<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(token) = &self.token
            && let Ok(value) = format!("Bearer {}", token.trim()).parse()
        {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// Whether a token was given (for a hint on UNAUTHENTICATED).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

/// `host:port` becomes `http://host:port`; a URL is kept.
pub fn with_scheme(addr: &str) -> String {
    let addr = addr.trim();
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// `X` or `collection/X` → `collection/X`.
pub fn resource_name(collection: &str, id: &str) -> String {
    let id = id.trim();
    let prefix = format!("{collection}/");
    if id.starts_with(&prefix) {
        id.to_string()
    } else {
        format!("{prefix}{id}")
    }
}

/// The canonical UPPER_SNAKE name of a gRPC code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A failed call as the lines `qilu` prints after `qilu: `: `CODE: message`, then one indented
/// line per field violation (`  field: description (REASON)`) or precondition failure
/// (`  TYPE subject: description`), decoded from the rich status details.
pub fn describe(status: &Status) -> String {
    let message = status.message().trim();
    let mut out = if message.is_empty() {
        code_name(status.code()).to_string()
    } else {
        format!("{}: {message}", code_name(status.code()))
    };
    let details = status.get_error_details();
    if let Some(bad) = details.bad_request() {
        for v in &bad.field_violations {
            out.push_str(&format!("\n  {}: {}", v.field, v.description));
            if !v.reason.is_empty() {
                out.push_str(&format!(" ({})", v.reason));
            }
        }
    }
    if let Some(pre) = details.precondition_failure() {
        for v in &pre.violations {
            out.push_str(&format!(
                "\n  {} {}: {}",
                v.r#type, v.subject, v.description
            ));
        }
    }
    if status.code() == Code::Unimplemented && message.is_empty() {
        out.push_str(": not implemented by this server yet");
    }
    out
}

/// Turns a failed call into the printed error, with a hint when no token was given.
pub fn fail(conn: &Conn, status: Status) -> String {
    let mut out = describe(&status);
    if status.code() == Code::Unauthenticated && !conn.has_token() {
        out.push_str(
            "\n  hint: pass --token or set QILU_TOKEN (`qilu token --role officer` mints one)",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_ids_and_full_names() {
        assert_eq!(resource_name("enterprises", "X1"), "enterprises/X1");
        assert_eq!(
            resource_name("enterprises", "enterprises/X1"),
            "enterprises/X1"
        );
        assert_eq!(with_scheme("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(with_scheme("https://a:1"), "https://a:1");
    }

    #[test]
    fn a_rich_status_becomes_one_line_per_violation() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "1 invalid field",
            tonic_types::ErrorDetails::with_bad_request(vec![tonic_types::FieldViolation {
                field: "enterprise.uscc".into(),
                description: "check character should be 3, not Z".into(),
                reason: "INVALID_CHECKSUM".into(),
                localized_message: None,
            }]),
        );
        assert_eq!(
            describe(&status),
            "INVALID_ARGUMENT: 1 invalid field\n  enterprise.uscc: check character should be 3, not Z (INVALID_CHECKSUM)"
        );
    }
}
