//! HTTP/JSON to gRPC, in process: a request matched to an RPC's `google.api.http` binding becomes
//! that RPC's protobuf message (path variables, query parameters and the JSON body, in the proto3
//! JSON mapping), framed as a gRPC call and handed to the same tower service a gRPC client
//! reaches — the middleware (authentication, role table, header limits, request id, trace,
//! metrics, logging) and then the tonic service. Nothing here decides anything a handler decides;
//! it only translates. The answer comes back as JSON, a stream as newline-delimited JSON, an
//! error as `google.rpc.Status` JSON with AIP-193's HTTP status.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Map, Value};
use tonic::body::Body;
use tower::{Service, ServiceExt};

use super::message::{
    check_json_content_type, content_type, frame, message_json, next_frame, parse_json,
    query_value, read_limited, set_path, to_message,
};
use super::ndjson::{json_upload, ndjson_lines, ndjson_messages};
use super::routes::{BodySpec, Route};
use super::status::error_response;
use crate::error::ApiError;
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
