//! One address, three ways in: gRPC, grpc-web (browsers) and HTTP/JSON (gateways, `curl`,
//! data-exchange platforms). Requests are told apart by content type, as the server receives
//! them:
//!
//! - `application/grpc…` goes straight to the middleware and the tonic services;
//! - `application/grpc-web…` goes through tonic-web, which turns it into a gRPC call to the
//!   same middleware and services;
//! - anything else is HTTP/JSON: matched to an RPC's `google.api.http` binding and transcoded
//!   in process ([`transcode`]) into a gRPC call to the same middleware and services.
//!
//! So every way in gets the same authentication, role table, header limits, idempotency,
//! metrics, tracing and handlers: there is no second implementation of any RPC. CORS (for
//! grpc-web and HTTP/JSON from pages on other origins) allows only the origins in
//! `server.cors_allowed_origins`; none by default.
//!
//! Why in-process transcoding over prost-reflect rather than a crate: the bindings live in the
//! descriptor set every server already embeds, and prost-reflect (already used for the
//! descriptor-derived tests and the CLI's JSON) implements the proto3 JSON mapping. The
//! transcoding crates for tonic either generate handlers that call the service implementation
//! directly, skipping the middleware (g2h), or proxy to an upstream over the network
//! (structured-proxy); neither calls the same tower service in process.

mod csv_upload;
mod message;
mod ndjson;
mod routes;
mod status;
mod transcode;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use tonic::body::Body;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

pub use transcode::Protocol;
use transcode::Transcoder;

/// What the HTTP side of a server serves, from `[server]` in the configuration.
#[derive(Debug, Clone)]
pub(crate) struct HttpOptions {
    /// Serve HTTP/JSON (`server.http_json`).
    pub http_json: bool,
    /// Serve grpc-web (`server.grpc_web`).
    pub grpc_web: bool,
    /// Origins allowed by CORS (`server.cors_allowed_origins`).
    pub cors_allowed_origins: Vec<String>,
    /// `server.max_message_bytes`.
    pub max_body_bytes: usize,
}

/// Builds the dispatch layer for the services named (fully qualified).
pub(crate) fn layer(options: &HttpOptions, services: &[&str]) -> Result<DispatchLayer, String> {
    let transcoder = if options.http_json {
        Some(Arc::new(Transcoder::new(services, options.max_body_bytes)?))
    } else {
        None
    };
    let mut origins = Vec::new();
    for origin in &options.cors_allowed_origins {
        origins.push(HeaderValue::from_str(origin).map_err(|_| {
            format!("server.cors_allowed_origins: {origin:?} is not a valid origin")
        })?);
    }
    // The OpenAPI document of what this server serves, made once; served without a token.
    let openapi = if options.http_json {
        let text = crate::openapi::document_json(services).map_err(|e| e.to_string())?;
        Some(Bytes::from(text))
    } else {
        None
    };
    Ok(DispatchLayer {
        transcoder,
        openapi,
        grpc_web: options.grpc_web,
        origins: Arc::new(origins),
    })
}

/// Sends each request the way its content type says (see the module documentation).
#[derive(Clone)]
pub(crate) struct DispatchLayer {
    transcoder: Option<Arc<Transcoder>>,
    /// `/openapi.json`.
    openapi: Option<Bytes>,
    grpc_web: bool,
    origins: Arc<Vec<HeaderValue>>,
}

type Boxed = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

impl<S> Layer<S> for DispatchLayer
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Service = Dispatch<S>;

    fn layer(&self, grpc: S) -> Dispatch<S> {
        let transcoder = self.transcoder.clone();
        let openapi = self.openapi.clone();
        let grpc_web = self.grpc_web;
        let inner = grpc.clone();
        let browser = tower::service_fn(move |mut request: Request<Body>| {
            let inner = inner.clone();
            let transcoder = transcoder.clone();
            let openapi = openapi.clone();
            async move {
                if request.uri().path() == crate::openapi::SERVED_PATH
                    && request.method() == http::Method::GET
                    && let Some(document) = openapi
                {
                    return Ok(status::json_response(http::StatusCode::OK, document));
                }
                if is_grpc_web(&request) {
                    if !grpc_web {
                        return Ok::<_, Infallible>(not_served("grpc-web", "server.grpc_web"));
                    }
                    request.extensions_mut().insert(Protocol::GrpcWeb);
                    return tonic_web::GrpcWebLayer::new()
                        .layer(inner)
                        .oneshot(request)
                        .await;
                }
                match transcoder {
                    Some(t) => Ok(t.handle(inner, request).await),
                    None => Ok(not_served("HTTP/JSON", "server.http_json")),
                }
            }
        });
        let browser: Boxed = if self.origins.is_empty() {
            BoxCloneSyncService::new(browser)
        } else {
            let cors = tower_http::cors::CorsLayer::new()
                .allow_origin(tower_http::cors::AllowOrigin::list(
                    self.origins.iter().cloned(),
                ))
                .allow_methods(tower_http::cors::AllowMethods::mirror_request())
                .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
                .expose_headers([
                    http::HeaderName::from_static("grpc-status"),
                    http::HeaderName::from_static("grpc-message"),
                    http::HeaderName::from_static("grpc-status-details-bin"),
                    http::HeaderName::from_static("x-request-id"),
                ])
                .max_age(std::time::Duration::from_secs(600));
            BoxCloneSyncService::new(
                cors.layer(browser)
                    .map_response(|r: Response<_>| r.map(Body::new)),
            )
        };
        Dispatch { grpc, browser }
    }
}

/// The dispatching service.
#[derive(Clone)]
pub(crate) struct Dispatch<S> {
    grpc: S,
    browser: Boxed,
}

impl<S> Service<Request<Body>> for Dispatch<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call drives its own clone to readiness (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_grpc(&request) {
            Box::pin(self.grpc.clone().oneshot(request))
        } else {
            Box::pin(self.browser.clone().oneshot(request))
        }
    }
}

fn media_type(request: &Request<Body>) -> &str {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// gRPC proper: `application/grpc`, `application/grpc+proto`, … but not grpc-web.
fn is_grpc(request: &Request<Body>) -> bool {
    let media = media_type(request);
    media.starts_with("application/grpc") && !media.starts_with("application/grpc-web")
}

fn is_grpc_web(request: &Request<Body>) -> bool {
    media_type(request).starts_with("application/grpc-web")
        || (request.method() == http::Method::OPTIONS
            && request
                .headers()
                .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|h| h.to_ascii_lowercase().contains("x-grpc-web")))
}

/// 404 for a way in this server has switched off.
fn not_served(what: &str, key: &str) -> Response<Body> {
    let body = serde_json::json!({
        "code": tonic::Code::NotFound as i32,
        "message": format!("{what} is not served here ({key} = false)"),
        "details": [],
    });
    status::json_response(
        http::StatusCode::NOT_FOUND,
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
    )
}
