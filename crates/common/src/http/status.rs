//! gRPC statuses as HTTP answers: the HTTP status of AIP-193's mapping (google/rpc/code.proto)
//! and the body, `google.rpc.Status` in the proto3 JSON mapping with the same details the gRPC
//! caller gets (`ErrorInfo`, `BadRequest`, `PreconditionFailure`, ... as `@type`d objects).

use bytes::Bytes;
use prost_reflect::{DescriptorPool, DynamicMessage};

/// The HTTP status that AIP-193 (google/rpc/code.proto) gives a gRPC code.
pub(crate) fn http_status(code: tonic::Code) -> http::StatusCode {
    use http::StatusCode as H;
    use tonic::Code as C;
    match code {
        C::Ok => H::OK,
        C::Cancelled => H::from_u16(499).unwrap_or(H::BAD_REQUEST),
        C::Unknown | C::Internal | C::DataLoss => H::INTERNAL_SERVER_ERROR,
        C::InvalidArgument | C::FailedPrecondition | C::OutOfRange => H::BAD_REQUEST,
        C::DeadlineExceeded => H::GATEWAY_TIMEOUT,
        C::NotFound => H::NOT_FOUND,
        C::AlreadyExists | C::Aborted => H::CONFLICT,
        C::PermissionDenied => H::FORBIDDEN,
        C::Unauthenticated => H::UNAUTHORIZED,
        C::ResourceExhausted => H::TOO_MANY_REQUESTS,
        C::Unimplemented => H::NOT_IMPLEMENTED,
        C::Unavailable => H::SERVICE_UNAVAILABLE,
    }
}

/// `status` as `google.rpc.Status` JSON: `{"code": 5, "message": "...", "details": [...]}`.
/// The details are the rich details the server attached (`grpc-status-details-bin`), decoded
/// with the descriptor set, so an HTTP caller reads the same `ErrorInfo.reason` and field
/// violations as a gRPC caller.
pub(crate) fn status_json(pool: &DescriptorPool, status: &tonic::Status) -> serde_json::Value {
    if !status.details().is_empty()
        && let Some(desc) = pool.get_message_by_name("google.rpc.Status")
        && let Ok(message) = DynamicMessage::decode(desc, status.details())
        && let Ok(mut value) = serde_json::to_value(&message)
    {
        // The details' own code and message are the status's; keep them in step with the
        // trailers in case a proxy rewrote either.
        if let Some(object) = value.as_object_mut() {
            object.insert("code".into(), (status.code() as i32).into());
            object.insert("message".into(), status.message().into());
            object
                .entry("details")
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        }
        return value;
    }
    serde_json::json!({
        "code": status.code() as i32,
        "message": status.message(),
        "details": [],
    })
}

/// A complete HTTP answer for `status`.
pub(crate) fn error_response(
    pool: &DescriptorPool,
    status: &tonic::Status,
) -> http::Response<tonic::body::Body> {
    let body = serde_json::to_vec(&status_json(pool, status)).unwrap_or_default();
    json_response(http_status(status.code()), Bytes::from(body))
}

/// An answer of `status` with a JSON body.
pub(crate) fn json_response(
    status: http::StatusCode,
    body: Bytes,
) -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::new(http_body_util::Full::new(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    #[test]
    fn every_code_maps_as_aip_193_says() {
        let expect = [
            (tonic::Code::InvalidArgument, 400),
            (tonic::Code::FailedPrecondition, 400),
            (tonic::Code::OutOfRange, 400),
            (tonic::Code::Unauthenticated, 401),
            (tonic::Code::PermissionDenied, 403),
            (tonic::Code::NotFound, 404),
            (tonic::Code::Aborted, 409),
            (tonic::Code::AlreadyExists, 409),
            (tonic::Code::ResourceExhausted, 429),
            (tonic::Code::Cancelled, 499),
            (tonic::Code::DataLoss, 500),
            (tonic::Code::Unknown, 500),
            (tonic::Code::Internal, 500),
            (tonic::Code::Unimplemented, 501),
            (tonic::Code::Unavailable, 503),
            (tonic::Code::DeadlineExceeded, 504),
        ];
        for (code, http) in expect {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn details_come_through_as_typed_json() {
        let pool = DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap();
        let status = tonic::Status::from(ApiError::invalid(
            "enterprise.uscc",
            "INVALID_CHECKSUM",
            "the check character is wrong",
        ));
        let json = status_json(&pool, &status);
        assert_eq!(json["code"], 3);
        let details = json["details"].as_array().unwrap();
        let bad_request = details
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
            .unwrap();
        assert_eq!(
            bad_request["fieldViolations"][0]["field"],
            "enterprise.uscc"
        );
        assert_eq!(
            bad_request["fieldViolations"][0]["reason"],
            "INVALID_CHECKSUM"
        );
        assert!(
            details
                .iter()
                .any(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
                    && d["domain"] == crate::error::ERROR_DOMAIN)
        );
    }
}
