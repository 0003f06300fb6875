//! HTTP/JSON to gRPC, in process: a request matched to an RPC's `google.api.http` binding becomes
//! that RPC's protobuf message (path variables, query parameters and the JSON body, in the proto3
//! JSON mapping), framed as a gRPC call and handed to the same tower service a gRPC client
//! reaches — the middleware (authentication, role table, header limits, request id, trace,
//! metrics, logging) and then the tonic service. Nothing here decides anything a handler decides;
//! it only translates. The answer comes back as JSON, a stream as newline-delimited JSON, an
//! error as `google.rpc.Status` JSON with AIP-193's HTTP status.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, SerializeOptions,
};
use serde_json::{Map, Value};
use tonic::body::Body;
use tower::{Service, ServiceExt};

use super::routes::{BodySpec, Route};
use super::status::{error_response, status_json};
use crate::error::{ApiError, FieldViolation};
use crate::import_csv::ImportKind;

/// How a request reached the server; the middleware labels metrics with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC over HTTP/2.
    Grpc,
    /// grpc-web (tonic-web), from browsers.
    GrpcWeb,
    /// HTTP/JSON through the transcoder.
    HttpJson,
}

impl Protocol {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::GrpcWeb => "grpc-web",
            Protocol::HttpJson => "http",
        }
    }
}

/// Rewrites a unary answer's message bytes before they become JSON.
type Patch<'a> = dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Sync + 'a;

/// Media type of newline-delimited JSON (server streams out, client streams in).
pub(crate) const NDJSON: &str = "application/x-ndjson";

/// Request headers passed on to the gRPC call (besides `x-*`): what the middleware reads.
const FORWARDED: &[&str] = &[
    "authorization",
    "traceparent",
    "tracestate",
    "grpc-timeout",
    "user-agent",
];

/// The routes of the served RPCs and the descriptors to translate their messages.
pub(crate) struct Transcoder {
    pool: DescriptorPool,
    routes: Vec<Route>,
    /// The largest JSON body (and NDJSON line) accepted: `server.max_message_bytes`.
    max_body_bytes: usize,
}

enum Found<'a> {
    Route(&'a Route, Vec<(Vec<String>, String)>),
    /// The path is bound, but not for this HTTP method: these are.
    WrongMethod(Vec<Method>),
    Nothing,
}

impl Transcoder {
    pub(crate) fn new(services: &[&str], max_body_bytes: usize) -> Result<Transcoder, String> {
        let pool = DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("descriptor set: {e}"))?;
        let routes = super::routes::routes(&pool, services)?;
        Ok(Transcoder {
            pool,
            routes,
            max_body_bytes,
        })
    }

    fn find(&self, method: &Method, path: &str) -> Found<'_> {
        let mut allowed = Vec::new();
        for route in &self.routes {
            if let Some(bound) = route.matches(path) {
                if route.http_method == *method {
                    return Found::Route(route, bound);
                }
                if !allowed.contains(&route.http_method) {
                    allowed.push(route.http_method.clone());
                }
            }
        }
        if allowed.is_empty() {
            Found::Nothing
        } else {
            Found::WrongMethod(allowed)
        }
    }

    /// Answers one HTTP/JSON request by calling `inner` (the middleware over the gRPC routes).
    pub(crate) async fn handle<S>(
        self: Arc<Self>,
        inner: S,
        request: Request<Body>,
    ) -> Response<Body>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let path = request.uri().path().to_string();
        let (route, bound) = match self.find(request.method(), &path) {
            Found::Route(route, bound) => (route.clone(), bound),
            Found::WrongMethod(allowed) => {
                let status = tonic::Status::from(ApiError::invalid(
                    "method",
                    "HTTP_METHOD_NOT_ALLOWED",
                    format!(
                        "{} {path} is bound to no RPC; {path} takes {}",
                        request.method(),
                        allowed
                            .iter()
                            .map(Method::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
                let mut response = error_response(&self.pool, &status);
                *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                let allow = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(http::header::ALLOW, v);
                }
                return response;
            }
            Found::Nothing => {
                let status = tonic::Status::new(
                    tonic::Code::NotFound,
                    format!(
                        "no RPC is bound to {} {path} (the bindings are in /openapi.json)",
                        request.method()
                    ),
                );
                return error_response(&self.pool, &status);
            }
        };
        let rpc_path = format!(
            "/{}/{}",
            route.rpc.parent_service().full_name(),
            route.rpc.name()
        );
        let (parts, body) = request.into_parts();
        let grpc_parts = grpc_request_parts(&parts, &rpc_path);

        if route.rpc.is_client_streaming() {
            return self
                .upload(inner, &route, &bound, &parts, body, grpc_parts)
                .await;
        }

        let message = match self.unary_message(&route, &bound, &parts, body).await {
            Ok(m) => m,
            Err(e) => return self.refuse(e),
        };
        let frame = frame(&message.encode_to_vec());
        let grpc_request = Request::from_parts(grpc_parts, Body::new(Full::new(frame)));
        let response = call(inner, grpc_request).await;
        self.answer(&route, response, None).await
    }

    /// A refusal made here (before any RPC ran), as the middleware would log it.
    fn refuse(&self, error: ApiError) -> Response<Body> {
        tracing::info!(error = %error, "HTTP request refused");
        error_response(&self.pool, &tonic::Status::from(error))
    }

    /// The request message of a call with at most one message: path, query and JSON body.
    async fn unary_message(
        &self,
        route: &Route,
        bound: &[(Vec<String>, String)],
        parts: &http::request::Parts,
        body: Body,
    ) -> Result<DynamicMessage, ApiError> {
        let bytes = read_limited(body, self.max_body_bytes).await?;
        let mut object = Map::new();
        match &route.body {
            BodySpec::None => {}
            BodySpec::Whole | BodySpec::Field(_) if bytes.is_empty() => {}
            spec => {
                check_json_content_type(&parts.headers)?;
                let value = parse_json(&bytes, "body")?;
                match spec {
                    BodySpec::Whole => match value {
                        Value::Object(map) => object = map,
                        _ => {
                            return Err(ApiError::invalid(
                                "body",
                                "MALFORMED_REQUEST",
                                "the body must be a JSON object: the request message",
                            ));
                        }
                    },
                    BodySpec::Field(field) => {
                        object.insert(field.clone(), value);
                    }
                    BodySpec::None => {}
                }
            }
        }
        if route.body != BodySpec::Whole {
            let input = route.rpc.input();
            for (key, raw) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
                let q = query_value(&input, &key, &raw)?;
                if let BodySpec::Field(field) = &route.body
                    && q.canonical_first == *field
                {
                    return Err(ApiError::invalid(
                        key.to_string(),
                        "UNKNOWN_FIELD",
                        format!("`{key}` is in the body; it cannot also be a query parameter"),
                    ));
                }
                set_path(&mut object, &q.names, q.value, q.repeated);
            }
        }
        for (field, value) in bound {
            set_path(&mut object, field, Value::String(value.clone()), false);
        }
        to_message(route.rpc.input(), Value::Object(object), None)
    }

    /// A client-streaming call (bulk import): the body is newline-delimited JSON, one request
    /// message per line, each sent as it is read; path variables and query parameters go into
    /// the first message. A line that is not the message ends the upload with a 400 naming the
    /// line (rows already committed stay committed, as when a gRPC client's stream breaks).
    /// An `application/json` body is one request message (a stream of one, as the document
    /// says), read whole like a unary call's body.
    async fn upload<S>(
        self: &Arc<Self>,
        inner: S,
        route: &Route,
        bound: &[(Vec<String>, String)],
        parts: &http::request::Parts,
        body: Body,
        grpc_parts: http::request::Parts,
    ) -> Response<Body>
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let media = content_type(&parts.headers);
        let single = media == "application/json" || media.ends_with("+json");
        let csv = (media == "text/csv")
            .then(|| ImportKind::of_request(route.rpc.input().full_name()))
            .flatten();
        if !(single
            || csv.is_some()
            || media == NDJSON
            || media == "application/jsonl"
            || media.is_empty())
        {
            return self.refuse(ApiError::invalid(
                "content-type",
                "UNSUPPORTED_MEDIA_TYPE",
                format!(
                    "{} takes newline-delimited JSON ({NDJSON}), one request message per line, one request as application/json, or (imports) text/csv; got {media:?}",
                    route.pattern()
                ),
            ));
        }
        let mut first = Map::new();
        let input = route.rpc.input();
        for (key, raw) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
            match query_value(&input, &key, &raw) {
                Ok(q) => set_path(&mut first, &q.names, q.value, q.repeated),
                Err(e) => return self.refuse(e),
            }
        }
        for (field, value) in bound {
            set_path(&mut first, field, Value::String(value.clone()), false);
        }
        if let Some(kind) = csv {
            let first = match to_message(input.clone(), Value::Object(first), None) {
                Ok(m) => m.encode_to_vec(),
                Err(e) => return self.refuse(e),
            };
            let outcome = Arc::new(Mutex::new(super::csv_upload::Outcome::default()));
            let frames = super::csv_upload::messages(body, kind, first, outcome.clone());
            let grpc_request = Request::from_parts(grpc_parts, Body::new(StreamBody::new(frames)));
            let response = call(inner, grpc_request).await;
            let (refusal, rejected) = match outcome.lock() {
                Ok(mut o) => (o.refusal.take(), std::mem::take(&mut o.rejected)),
                Err(_) => (None, Vec::new()),
            };
            if let Some(e) = refusal {
                return self.refuse(e);
            }
            let output = route.rpc.output();
            let patch =
                move |bytes: &[u8]| super::csv_upload::add_rejections(&output, bytes, &rejected);
            return self.answer(route, response, Some(&patch)).await;
        }
        if single {
            // One request message: the whole body, as a unary call's.
            let message = match read_limited(body, self.max_body_bytes)
                .await
                .and_then(|bytes| json_upload(&input, &bytes, first))
            {
                Ok(m) => m,
                Err(e) => return self.refuse(e),
            };
            let frame = frame(&message);
            let grpc_request = Request::from_parts(grpc_parts, Body::new(Full::new(frame)));
            let response = call(inner, grpc_request).await;
            return self.answer(route, response, None).await;
        }
        let failure: Arc<Mutex<Option<ApiError>>> = Arc::new(Mutex::new(None));
        let lines = ndjson_messages(body, input, first, self.max_body_bytes, failure.clone());
        let grpc_request = Request::from_parts(grpc_parts, Body::new(StreamBody::new(lines)));
        let response = call(inner, grpc_request).await;
        let answer = self.answer(route, response, None).await;
        let failed = failure.lock().map(|mut f| f.take()).unwrap_or(None);
        match failed {
            Some(e) => self.refuse(e),
            None => answer,
        }
    }

    /// The HTTP answer of a gRPC response: the message as JSON, each message of a stream as a
    /// line of NDJSON, or the error.
    async fn answer(
        &self,
        route: &Route,
        response: Response<Body>,
        patch: Option<&Patch<'_>>,
    ) -> Response<Body> {
        let (parts, body) = response.into_parts();
        let mut headers = HeaderMap::new();
        if let Some(id) = parts.headers.get("x-request-id") {
            headers.insert("x-request-id", id.clone());
        }
        // Trailers-only: the call failed before it answered anything.
        if let Some(status) = tonic::Status::from_header_map(&parts.headers)
            && status.code() != tonic::Code::Ok
        {
            return with_headers(error_response(&self.pool, &status), headers);
        }
        let output = route.rpc.output();
        if route.rpc.is_server_streaming() {
            let lines = ndjson_lines(body, output, route.response_body.clone(), self.pool.clone());
            let mut response = Response::new(Body::new(StreamBody::new(lines)));
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
            return with_headers(response, headers);
        }
        let collected = match body.collect().await {
            Ok(c) => c,
            Err(e) => {
                let status = tonic::Status::new(
                    tonic::Code::Unavailable,
                    format!("the call ended early: {e}"),
                );
                return with_headers(error_response(&self.pool, &status), headers);
            }
        };
        let status = collected
            .trailers()
            .and_then(tonic::Status::from_header_map)
            .unwrap_or_else(|| {
                tonic::Status::new(tonic::Code::Internal, "the call ended without a status")
            });
        if status.code() != tonic::Code::Ok {
            return with_headers(error_response(&self.pool, &status), headers);
        }
        let mut data = collected.to_bytes();
        let json = match next_frame(&mut data) {
            Some(Ok(bytes)) => match patch.map_or_else(|| Ok(bytes.to_vec()), |p| p(&bytes)) {
                Ok(bytes) => message_json(&output, &bytes, route.response_body.as_deref()),
                Err(e) => Err(e),
            },
            Some(Err(e)) => Err(e),
            None => Err("the call answered no message".to_string()),
        };
        match json {
            Ok(json) => {
                let mut response = Response::new(Body::new(Full::new(Bytes::from(json))));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                with_headers(response, headers)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot translate the answer to JSON");
                let status = tonic::Status::from(ApiError::internal(e));
                with_headers(error_response(&self.pool, &status), headers)
            }
        }
    }
}

/// Sends the gRPC request through `inner` (the middleware and the services) and takes its answer.
async fn call<S>(inner: S, request: Request<Body>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    match inner.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn with_headers(mut response: Response<Body>, headers: HeaderMap) -> Response<Body> {
    response.headers_mut().extend(headers);
    response
}

/// The gRPC request's head: POST to the RPC's path, the headers the middleware reads, and the
/// HTTP request's extensions (the connection's address, the protocol).
fn grpc_request_parts(parts: &http::request::Parts, rpc_path: &str) -> http::request::Parts {
    let (mut grpc, ()) = Request::new(()).into_parts();
    grpc.method = Method::POST;
    grpc.version = http::Version::HTTP_2;
    grpc.uri = http::Uri::from_maybe_shared(Bytes::copy_from_slice(rpc_path.as_bytes()))
        .unwrap_or_default();
    grpc.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    grpc.headers
        .insert(http::header::TE, HeaderValue::from_static("trailers"));
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if FORWARDED.contains(&n) || (n.starts_with("x-") && !n.starts_with("x-grpc")) {
            grpc.headers.append(name.clone(), value.clone());
        }
    }
    grpc.extensions = parts.extensions.clone();
    grpc.extensions.insert(Protocol::HttpJson);
    grpc
}

/// The media type of a request, lower case, without parameters.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let media = content_type(headers);
    if media.is_empty() || media == "application/json" || media.ends_with("+json") {
        return Ok(());
    }
    Err(ApiError::invalid(
        "content-type",
        "UNSUPPORTED_MEDIA_TYPE",
        format!("the body must be application/json; got {media:?}"),
    ))
}

/// The body, refused past `limit` bytes. A body over the limit is still read (and dropped), up
/// to [`DRAIN_FACTOR`] times the limit, so that an HTTP/1.1 client that is still sending gets
/// the 400 instead of a connection closed under it.
async fn read_limited(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let mut kept = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::invalid(
                "body",
                "MALFORMED_REQUEST",
                format!("the body could not be read: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total <= limit {
            kept.extend_from_slice(&data);
        } else if total > limit.saturating_mul(DRAIN_FACTOR) {
            break;
        }
    }
    if total > limit {
        return Err(ApiError::invalid(
            "body",
            "REQUEST_BODY_TOO_LARGE",
            format!(
                "the body is larger than this server accepts ({limit} bytes, server.max_message_bytes)"
            ),
        ));
    }
    Ok(kept.freeze())
}

/// How far past the limit an oversized body is drained before the answer.
const DRAIN_FACTOR: usize = 4;

fn parse_json(bytes: &[u8], field: &str) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid(field, "MALFORMED_REQUEST", format!("not valid JSON: {e}")))
}

/// Puts `value` at `path` in `object`, creating objects on the way (an array when `repeated`).
fn set_path(object: &mut Map<String, Value>, path: &[String], value: Value, repeated: bool) {
    let Some((last, init)) = path.split_last() else {
        return;
    };
    let mut here = object;
    for name in init {
        let entry = here
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        here = next;
    }
    if repeated {
        match here.get_mut(last) {
            Some(Value::Array(items)) => items.push(value),
            _ => {
                here.insert(last.clone(), Value::Array(vec![value]));
            }
        }
    } else {
        here.insert(last.clone(), value);
    }
}

/// Well-known message types written as a JSON string (and so settable from a query parameter).
const STRING_WKT: &[&str] = &[
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
];

/// A query parameter resolved against the request message.
#[derive(Debug)]
struct QueryField {
    /// The path as written (JSON or proto names), e.g. `["pageSize"]`.
    names: Vec<String>,
    /// The proto name of the top-level field, e.g. `page_size`.
    canonical_first: String,
    /// The value as JSON of the field's type.
    value: Value,
    /// Whether the field is repeated (each occurrence adds an element).
    repeated: bool,
}

/// A query parameter as the JSON value of the field it names: `pageSize=10` → `["pageSize"]`,
/// `"10"`. Names are the fields' JSON or proto names, dotted through singular messages.
fn query_value(input: &MessageDescriptor, key: &str, raw: &str) -> Result<QueryField, ApiError> {
    let unknown = || {
        ApiError::invalid(
            key.to_string(),
            "UNKNOWN_FIELD",
            format!("`{key}` is not a field of {}", input.name()),
        )
    };
    let mut desc = input.clone();
    let mut names = Vec::new();
    let mut canonical_first = String::new();
    let segments: Vec<&str> = key.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let field = desc
            .get_field_by_name(segment)
            .or_else(|| desc.get_field_by_json_name(segment))
            .ok_or_else(unknown)?;
        // The name as the caller wrote it (both are valid JSON keys), so that an error about
        // the value names the parameter the caller sent.
        names.push((*segment).to_string());
        if i == 0 {
            canonical_first = field.name().to_string();
        }
        let last = i + 1 == segments.len();
        let kind = field.kind();
        if !last {
            match kind {
                Kind::Message(m) if !field.is_list() && !field.is_map() => desc = m,
                _ => return Err(unknown()),
            }
            continue;
        }
        if field.is_map() {
            return Err(ApiError::invalid(
                key.to_string(),
                "MALFORMED_REQUEST",
                format!("`{key}` is a map: send it in a JSON body"),
            ));
        }
        let value = match kind {
            Kind::Bool => Value::Bool(parse_bool(key, raw)?),
            Kind::Message(m) if m.full_name() == "google.protobuf.BoolValue" => {
                Value::Bool(parse_bool(key, raw)?)
            }
            Kind::Message(m) if STRING_WKT.contains(&m.full_name()) => Value::String(raw.into()),
            Kind::Message(_) => {
                return Err(ApiError::invalid(
                    key.to_string(),
                    "MALFORMED_REQUEST",
                    format!("`{key}` is a message: set its fields (`{key}.field=…`) instead"),
                ));
            }
            _ => Value::String(raw.into()),
        };
        return Ok(QueryField {
            names,
            canonical_first,
            value,
            repeated: field.is_list(),
        });
    }
    Err(unknown())
}

fn parse_bool(key: &str, raw: &str) -> Result<bool, ApiError> {
    match raw {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid(
            key.to_string(),
            "MALFORMED_REQUEST",
            format!("`{key}` takes true or false, got {raw:?}"),
        )),
    }
}

/// The JSON as the message, refusing unknown fields and wrong types with the path of the field
/// at fault (`enterprise.establishedDate`); `line` prefixes the path for NDJSON uploads.
fn to_message(
    desc: MessageDescriptor,
    value: Value,
    line: Option<usize>,
) -> Result<DynamicMessage, ApiError> {
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(value, &mut track);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    DynamicMessage::deserialize_with_options(desc, deserializer, &options).map_err(|e| {
        let text = e.to_string();
        let mut path = track.path().to_string();
        // prost-reflect names an unknown field in its message and stops at the enclosing one.
        let unknown = text
            .strip_prefix("unrecognized field name '")
            .and_then(|rest| rest.strip_suffix('\''));
        if let Some(name) = unknown {
            path = match path.as_str() {
                "." | "" => name.to_string(),
                p => format!("{p}.{name}"),
            };
        }
        let field = match (line, path.as_str()) {
            (Some(n), "." | "") => format!("line {n}"),
            (Some(n), p) => format!("line {n}: {p}"),
            (None, "." | "") => "body".to_string(),
            (None, p) => p.to_string(),
        };
        let reason = if unknown.is_some() {
            "UNKNOWN_FIELD"
        } else {
            "MALFORMED_REQUEST"
        };
        ApiError::InvalidArgument(vec![FieldViolation::new(field, reason, text)])
    })
}

/// A gRPC message frame: uncompressed flag, length, message.
pub(super) fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.freeze()
}

/// Takes one whole frame off the front of `data`, if there is one.
fn next_frame(data: &mut Bytes) -> Option<Result<Bytes, String>> {
    if data.len() < 5 {
        return None;
    }
    if data[0] != 0 {
        return Some(Err("a compressed gRPC frame (none was asked for)".into()));
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if data.len() < 5 + len {
        return None;
    }
    data.advance(5);
    Some(Ok(data.split_to(len)))
}

/// A response message as JSON (proto3 mapping, lowerCamelCase names, 64-bit integers as strings,
/// default values left out), or one field of it (`response_body`).
fn message_json(
    desc: &MessageDescriptor,
    bytes: &[u8],
    response_body: Option<&str>,
) -> Result<Vec<u8>, String> {
    let message = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    let options = SerializeOptions::new();
    match response_body {
        Some(field) => {
            let value = message
                .get_field_by_name(field)
                .ok_or_else(|| format!("no field {field}"))?;
            let Some(inner) = value.as_message() else {
                return Err(format!("response_body {field} is not a message"));
            };
            inner
                .serialize_with_options(&mut serializer, &options)
                .map_err(|e| e.to_string())?;
        }
        None => message
            .serialize_with_options(&mut serializer, &options)
            .map_err(|e| e.to_string())?,
    }
    Ok(out)
}

type FrameResult = Result<http_body::Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

/// The response stream as NDJSON: one line per message, and, if the call ends in an error after
/// answering, a last line `{"error": <google.rpc.Status>}`.
fn ndjson_lines(
    body: Body,
    output: MessageDescriptor,
    response_body: Option<String>,
    pool: DescriptorPool,
) -> impl futures::Stream<Item = FrameResult> + Send + 'static {
    struct State {
        body: Body,
        buffer: Bytes,
        done: bool,
    }
    let state = State {
        body,
        buffer: Bytes::new(),
        done: false,
    };
    futures::stream::unfold(state, move |mut s| {
        let output = output.clone();
        let response_body = response_body.clone();
        let pool = pool.clone();
        async move {
            loop {
                if s.done {
                    return None;
                }
                match next_frame(&mut s.buffer) {
                    Some(Ok(bytes)) => {
                        let line = match message_json(&output, &bytes, response_body.as_deref()) {
                            Ok(mut json) => {
                                json.push(b'\n');
                                json
                            }
                            Err(e) => {
                                s.done = true;
                                error_line(&pool, &tonic::Status::internal(e))
                            }
                        };
                        return Some((Ok(http_body::Frame::data(Bytes::from(line))), s));
                    }
                    Some(Err(e)) => {
                        s.done = true;
                        let line = error_line(&pool, &tonic::Status::internal(e));
                        return Some((Ok(http_body::Frame::data(Bytes::from(line))), s));
                    }
                    None => {}
                }
                match s.body.frame().await {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => {
                            let mut joined = BytesMut::from(&s.buffer[..]);
                            joined.extend_from_slice(&data);
                            s.buffer = joined.freeze();
                        }
                        Err(frame) => {
                            s.done = true;
                            let status = frame
                                .trailers_ref()
                                .and_then(tonic::Status::from_header_map)
                                .filter(|st| st.code() != tonic::Code::Ok);
                            if let Some(status) = status {
                                let line = error_line(&pool, &status);
                                return Some((Ok(http_body::Frame::data(Bytes::from(line))), s));
                            }
                            return None;
                        }
                    },
                    Some(Err(e)) => {
                        s.done = true;
                        let line = error_line(
                            &pool,
                            &tonic::Status::unavailable(format!("the stream broke: {e}")),
                        );
                        return Some((Ok(http_body::Frame::data(Bytes::from(line))), s));
                    }
                    None => return None,
                }
            }
        }
    })
}

fn error_line(pool: &DescriptorPool, status: &tonic::Status) -> Vec<u8> {
    let mut line = serde_json::to_vec(&serde_json::json!({ "error": status_json(pool, status) }))
        .unwrap_or_default();
    line.push(b'\n');
    line
}

/// The uploaded NDJSON as a stream of gRPC frames, one request message per non-blank line; the
/// first message also carries `first` (path and query fields). A bad line stops the stream with
/// an error (the call then fails) and leaves the refusal in `failure` for the answer.
fn ndjson_messages(
    body: Body,
    input: MessageDescriptor,
    first: Map<String, Value>,
    max_line_bytes: usize,
    failure: Arc<Mutex<Option<ApiError>>>,
) -> impl futures::Stream<Item = FrameResult> + Send + 'static {
    struct State {
        body: Body,
        buffer: BytesMut,
        line: usize,
        first: Option<Map<String, Value>>,
        ended: bool,
    }
    let state = State {
        body,
        buffer: BytesMut::new(),
        line: 0,
        first: Some(first),
        ended: false,
    };
    let stream = futures::stream::unfold(state, move |mut s| {
        let input = input.clone();
        let failure = failure.clone();
        async move {
            let fail = |s: State, e: ApiError| {
                let text = e.to_string();
                if let Ok(mut slot) = failure.lock() {
                    *slot = Some(e);
                }
                Some((Err::<http_body::Frame<Bytes>, _>(text.into()), s))
            };
            loop {
                if let Some(end) = s.buffer.iter().position(|b| *b == b'\n') {
                    let raw = s.buffer.split_to(end + 1);
                    s.line += 1;
                    let text = &raw[..raw.len() - 1];
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return match line_message(&input, text, s.line, s.first.take()) {
                        Ok(bytes) => Some((Ok(http_body::Frame::data(frame(&bytes))), s)),
                        Err(e) => {
                            s.ended = true;
                            fail(s, e)
                        }
                    };
                }
                if s.ended {
                    return None;
                }
                if s.buffer.len() > max_line_bytes {
                    s.ended = true;
                    let line = s.line + 1;
                    return fail(
                        s,
                        ApiError::invalid(
                            format!("line {line}"),
                            "REQUEST_BODY_TOO_LARGE",
                            format!(
                                "a line is longer than {max_line_bytes} bytes (server.max_message_bytes)"
                            ),
                        ),
                    );
                }
                match s.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            s.buffer.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => {
                        s.ended = true;
                        return Some((Err(e.into()), s));
                    }
                    None => {
                        // The last line may lack its newline.
                        s.ended = true;
                        if !s.buffer.iter().all(u8::is_ascii_whitespace) {
                            s.buffer.extend_from_slice(b"\n");
                            continue;
                        }
                        if s.first.is_some() {
                            // An empty upload still carries the path and query fields.
                            let first = s.first.take();
                            return match line_message(&input, b"{}", 0, first) {
                                Ok(bytes) => Some((Ok(http_body::Frame::data(frame(&bytes))), s)),
                                Err(e) => fail(s, e),
                            };
                        }
                        return None;
                    }
                }
            }
        }
    });
    stream.boxed()
}

/// An `application/json` upload: the body (empty: `{}`) is the one request message, with the
/// path and query fields in `first`; field violations name the field, as in a unary body.
fn json_upload(
    input: &MessageDescriptor,
    bytes: &[u8],
    first: Map<String, Value>,
) -> Result<Vec<u8>, ApiError> {
    let mut object = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match parse_json(bytes, "body")? {
            Value::Object(object) => object,
            _ => {
                return Err(ApiError::invalid(
                    "body",
                    "MALFORMED_REQUEST",
                    "the body must be a JSON object: the request message",
                ));
            }
        }
    };
    for (k, v) in first {
        object.insert(k, v);
    }
    Ok(to_message(input.clone(), Value::Object(object), None)?.encode_to_vec())
}

fn line_message(
    input: &MessageDescriptor,
    text: &[u8],
    line: usize,
    first: Option<Map<String, Value>>,
) -> Result<Vec<u8>, ApiError> {
    let value = parse_json(text, &format!("line {line}"))?;
    let Value::Object(mut object) = value else {
        return Err(ApiError::invalid(
            format!("line {line}"),
            "MALFORMED_REQUEST",
            "each line must be a JSON object: one request message",
        ));
    };
    if let Some(first) = first {
        for (k, v) in first {
            object.insert(k, v);
        }
    }
    let message = to_message(input.clone(), Value::Object(object), Some(line))?;
    Ok(message.encode_to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn registry_input(name: &str) -> MessageDescriptor {
        let pool = DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap();
        pool.get_message_by_name(&format!("qilu.registry.v1.{name}"))
            .unwrap()
    }

    #[test]
    fn query_parameters_take_json_or_proto_names() {
        let input = registry_input("ListEnterprisesRequest");
        let q = query_value(&input, "pageSize", "10").unwrap();
        assert_eq!(q.names, ["pageSize"]);
        assert_eq!(q.canonical_first, "page_size");
        assert_eq!(q.value, Value::String("10".into()));
        assert!(!q.repeated);
        let q = query_value(&input, "page_size", "10").unwrap();
        assert_eq!(q.canonical_first, "page_size");
        let err = query_value(&input, "pageSise", "10").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument: pageSise: `pageSise` is not a field of ListEnterprisesRequest"
        );
    }

    #[test]
    fn wrong_types_and_unknown_fields_name_the_field() {
        let input = registry_input("ListEnterprisesRequest");
        let err =
            to_message(input.clone(), serde_json::json!({"pageSize": "ten"}), None).unwrap_err();
        let ApiError::InvalidArgument(v) = err else {
            panic!("not invalid")
        };
        assert_eq!(v[0].field, "pageSize");
        assert_eq!(v[0].reason, "MALFORMED_REQUEST");
        let err = to_message(input, serde_json::json!({"nope": 1}), Some(3)).unwrap_err();
        let ApiError::InvalidArgument(v) = err else {
            panic!("not invalid")
        };
        assert_eq!(v[0].reason, "UNKNOWN_FIELD");
        assert!(v[0].field.starts_with("line 3"), "{}", v[0].field);
    }

    #[test]
    fn frames_round_trip() {
        let mut data = frame(b"abc");
        data = Bytes::from([&data[..], &frame(b"")[..], &[0, 0][..]].concat());
        assert_eq!(next_frame(&mut data).unwrap().unwrap(), Bytes::from("abc"));
        assert_eq!(next_frame(&mut data).unwrap().unwrap(), Bytes::new());
        assert!(next_frame(&mut data).is_none());
    }

    #[test]
    fn nested_paths_build_objects() {
        let mut object = Map::new();
        set_path(
            &mut object,
            &["enterprise".into(), "name".into()],
            Value::String("enterprises/X".into()),
            false,
        );
        set_path(
            &mut object,
            &["names".into()],
            Value::String("a".into()),
            true,
        );
        set_path(
            &mut object,
            &["names".into()],
            Value::String("b".into()),
            true,
        );
        assert_eq!(
            Value::Object(object),
            serde_json::json!({"enterprise": {"name": "enterprises/X"}, "names": ["a", "b"]})
        );
    }
}
