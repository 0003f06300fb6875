//! Server bootstrap shared by every binary: one function, [`serve`], takes a bound listener, the
//! services to mount, the configuration and a shutdown future — so tests, the per-service
//! binaries and `qilu dev` start servers the same way (mini-redis style).
//!
//! Every server gets gRPC health (per service name), reflection (v1 and v1alpha), message size
//! limits, and one middleware that assigns a request id, continues or starts a W3C trace,
//! authenticates the bearer token, checks the service's role table, records Prometheus metrics
//! and logs the call. On shutdown: health turns NOT_SERVING, no new connections are accepted,
//! server streams are told to end (`CallContext::shutdown`), in-flight calls drain until
//! `server.drain_seconds`, then the server returns regardless.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response};
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::auth::{Authenticator, Caller, Role, RoleTable, authorize};
use crate::config::Config;
use crate::context::{RequestMeta, Shutdown};
use crate::db::HealthProbe;
use crate::error::ApiError;

/// A gRPC service ready to mount: its full name, its role table, and how to add it to routes.
pub struct ServiceDef {
    /// Fully qualified service name, e.g. `qilu.registry.v1.EnterpriseRegistryService`.
    pub name: &'static str,
    /// Who may call each RPC.
    pub roles: RoleTable,
    register: Box<dyn FnOnce(&mut RoutesBuilder) + Send>,
    /// Checks the service's database for gRPC health (see [`ServiceDef::with_health_probe`]).
    probe: Option<HealthProbe>,
    /// Writes the changes time makes (see [`ServiceDef::with_sweeper`]).
    sweeper: Option<crate::sweep::Sweeper>,
    /// The service's long-running operations (see [`ServiceDef::with_operations`]).
    operations: Option<crate::operations::Operations>,
}

impl std::fmt::Debug for ServiceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDef")
            .field("name", &self.name)
            .finish()
    }
}

impl ServiceDef {
    /// `register` adds the generated tonic server (with its size limits set) to the routes.
    pub fn new(
        name: &'static str,
        roles: RoleTable,
        register: impl FnOnce(&mut RoutesBuilder) + Send + 'static,
    ) -> Self {
        ServiceDef {
            name,
            roles,
            register: Box::new(register),
            probe: None,
            sweeper: None,
            operations: None,
        }
    }

    /// Serves `operations` through `google.longrunning.Operations` (one such service per server,
    /// routing by operation name to the service that owns it) and runs the ones whose lease has
    /// lapsed: after a restart, or another replica's exit.
    pub fn with_operations(mut self, operations: crate::operations::Operations) -> Self {
        self.operations = Some(operations);
        self
    }

    /// Runs `sweeper` while the service serves (at start, then on `sweep.daily_at`), unless
    /// `sweep.enabled` is off.
    pub fn with_sweeper(mut self, sweeper: crate::sweep::Sweeper) -> Self {
        self.sweeper = Some(sweeper);
        self
    }

    /// The service's sweeper, to sweep on demand (tests that move "today").
    pub fn sweeper(&self) -> Option<crate::sweep::Sweeper> {
        self.sweeper.clone()
    }

    /// Reports the service NOT_SERVING (its name and, on a server of several services, `""`)
    /// while `probe` finds its database unreachable, and SERVING again when it answers.
    pub fn with_health_probe(mut self, probe: HealthProbe) -> Self {
        self.probe = Some(probe);
        self
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad auth or TLS settings.
    #[error("{0}")]
    Config(String),
    /// The transport failed.
    #[error("server error: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not load the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Health handle: lets the owner mark services NOT_SERVING (e.g. when a dependency is lost).
pub type Health = tonic_health::server::HealthReporter;

/// Serves `services` on `listener` until `shutdown` completes, then drains with a deadline.
pub async fn serve(
    listener: TcpListener,
    services: Vec<ServiceDef>,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let authenticator = Authenticator::from_config(&config.auth).map_err(ServeError::Config)?;
    crate::observe::install(config);

    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(qilu_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(qilu_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let mut routes = RoutesBuilder::default();
    routes.add_service(health_service);
    routes.add_service(reflection_v1);
    routes.add_service(reflection_v1alpha);
    let mut tables = HashMap::new();
    let mut names = Vec::new();
    let mut probes = Vec::new();
    let mut sweepers = Vec::new();
    let mut operations = Vec::new();
    for service in services {
        tables.insert(service.name.to_string(), service.roles);
        names.push(service.name);
        if let Some(probe) = service.probe {
            probes.push((service.name, probe));
        }
        sweepers.extend(service.sweeper);
        operations.extend(service.operations);
        (service.register)(&mut routes);
    }
    if !operations.is_empty() {
        tables.insert(
            crate::operations::SERVICE_NAME.to_string(),
            crate::operations::ROLE_TABLE,
        );
        routes.add_service(
            qilu_proto::longrunning::operations_server::OperationsServer::new(
                crate::operations::OperationsService::new(operations.clone()),
            ),
        );
    }
    for name in &names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    health.set_service_status("", ServingStatus::Serving).await;

    // HTTP/2 itself takes header blocks up to 16 times the per-call limit, so that a call
    // somewhat over it reaches the middleware and is refused alone, with a status that says why
    // (a block over HTTP/2's limit that it cannot skip costs the whole connection).
    let max_header_bytes = config.server.max_header_bytes;
    let mut builder =
        Server::builder().http2_max_header_list_size(max_header_bytes.saturating_mul(16));
    if let (Some(cert), Some(key)) = (&config.server.tls_cert_path, &config.server.tls_key_path) {
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| ServeError::Config(format!("cannot read {}: {e}", p.display())))
        };
        let identity = Identity::from_pem(read(cert)?, read(key)?);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    let (shutdown_trigger, handler_shutdown) = Shutdown::new();
    if config.sweep.enabled {
        for sweeper in sweepers {
            sweeper.spawn(&config.sweep, handler_shutdown.clone());
        }
    }
    for ops in &operations {
        ops.spawn_executor(handler_shutdown.clone());
    }
    let layer = MiddlewareLayer {
        shared: Arc::new(Shared {
            authenticator,
            tables,
            shutdown: handler_shutdown,
            max_header_bytes: max_header_bytes as usize,
        }),
    };

    let mut served = names.clone();
    if !operations.is_empty() {
        served.push(crate::operations::SERVICE_NAME);
    }
    let dispatch = crate::http::layer(
        &crate::http::HttpOptions {
            http_json: config.server.http_json,
            grpc_web: config.server.grpc_web,
            cors_allowed_origins: config.server.cors_allowed_origins.clone(),
            max_body_bytes: config.server.max_message_bytes,
        },
        &served,
    )
    .map_err(ServeError::Config)?;

    let local = listener.local_addr().ok();
    tracing::info!(
        addr = ?local,
        services = ?names,
        http_json = config.server.http_json,
        grpc_web = config.server.grpc_web,
        version = crate::version::LONG,
        "serving gRPC"
    );

    let probing = DatabaseHealth::start(health.clone(), probes, names.len());
    let drain = Duration::from_secs(config.server.drain_seconds);
    let (drain_started_tx, drain_started_rx) = tokio::sync::oneshot::channel::<()>();
    let signal_health = health.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: refusing new calls, draining in-flight calls");
        // Server streams see this and end now; other calls drain.
        shutdown_trigger.start();
        probing.stop().await;
        for name in names {
            signal_health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        signal_health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        let _ = drain_started_tx.send(());
    };
    // HTTP/1.1 as well as HTTP/2: grpc-web and HTTP/JSON callers (browsers, gateways, curl)
    // mostly speak HTTP/1.1; the dispatch layer sends each request its way (crate::http).
    let server = builder
        .accept_http1(true)
        .layer(
            tower::ServiceBuilder::new()
                .layer(dispatch)
                .layer(layer)
                .into_inner(),
        )
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming(listener), signal);
    tokio::pin!(server);
    let deadline = async move {
        if drain_started_rx.await.is_ok() {
            tokio::time::sleep(drain).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = &mut server => {
            tracing::info!(addr = ?local, "server stopped");
            result?;
        }
        () = deadline => {
            tracing::warn!(addr = ?local, seconds = drain.as_secs(), "drain deadline passed; exiting with calls still in flight");
        }
    }
    Ok(())
}

/// The background task that turns health NOT_SERVING while a service's database is unreachable
/// and SERVING when it answers again. Stopped (for good) when shutdown begins, so it never
/// reports SERVING for a draining server.
struct DatabaseHealth {
    task: Option<tokio::task::JoinHandle<()>>,
    /// Held while statuses are set; `true` once stopped.
    stopped: Arc<tokio::sync::Mutex<bool>>,
}

impl DatabaseHealth {
    fn start(
        health: Health,
        probes: Vec<(&'static str, HealthProbe)>,
        service_count: usize,
    ) -> DatabaseHealth {
        let stopped = Arc::new(tokio::sync::Mutex::new(false));
        let Some(interval) = probes.iter().map(|(_, p)| p.interval()).min() else {
            return DatabaseHealth {
                task: None,
                stopped,
            };
        };
        let guard = stopped.clone();
        let task = tokio::spawn(async move {
            let mut conns = Vec::new();
            for (name, probe) in &probes {
                match probe.connection().await {
                    Ok(conn) => conns.push((*name, probe, conn, true)),
                    Err(e) => tracing::warn!(service = name, error = %e, "no health probe"),
                }
            }
            // Services without a probe count as healthy for the overall ("") status.
            let unprobed = service_count - conns.len();
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let mut changed = Vec::new();
                for (name, probe, conn, up) in &mut conns {
                    let now_up = match probe.check(conn).await {
                        Ok(()) => true,
                        Err(e) => {
                            if *up {
                                tracing::warn!(service = %name, error = %e, "database unreachable: health NOT_SERVING");
                            }
                            false
                        }
                    };
                    if now_up != *up {
                        if now_up {
                            tracing::info!(service = %name, "database reachable again: health SERVING");
                        }
                        *up = now_up;
                        changed.push((*name, now_up));
                    }
                }
                if changed.is_empty() {
                    continue;
                }
                let all_up = unprobed + conns.iter().filter(|c| c.3).count() == service_count;
                let stopped = guard.lock().await;
                if *stopped {
                    return;
                }
                for (name, up) in changed {
                    health.set_service_status(name, serving(up)).await;
                }
                health.set_service_status("", serving(all_up)).await;
                drop(stopped);
            }
        });
        DatabaseHealth {
            task: Some(task),
            stopped,
        }
    }

    /// Stops probing; after this returns no probe result changes health any more.
    async fn stop(&self) {
        *self.stopped.lock().await = true;
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Drop for DatabaseHealth {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn serving(up: bool) -> ServingStatus {
    if up {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Request durations in seconds (see [`crate::observe::DURATION_BUCKETS_SECONDS`]).
pub use crate::observe::DURATION_BUCKETS_SECONDS;

struct Shared {
    authenticator: Authenticator,
    /// Service name → role table.
    tables: HashMap<String, RoleTable>,
    /// Handed to every call (`CallContext::shutdown`).
    shutdown: Shutdown,
    /// `server.max_header_bytes`.
    max_header_bytes: usize,
}

/// Accepted connections with `TCP_NODELAY` and TCP keepalive. tonic sets neither on a listener
/// it is handed (its `tcp_nodelay`/`tcp_keepalive` builder settings apply only to addresses it
/// binds itself). Without `TCP_NODELAY` a response that leaves in two writes (headers and body
/// before trailers) waits for the client's delayed ACK, about 40 ms on Linux: that was the p99 of
/// every unary call in `qilu-bench` (BENCHMARKS.md). Keepalive lets the kernel notice a caller
/// whose host vanished, so its connection and streams are released.
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(TCP_KEEPALIVE))
}

/// Idle time before the first TCP keepalive probe on an accepted connection.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The middleware as a tower layer.
#[derive(Clone)]
struct MiddlewareLayer {
    shared: Arc<Shared>,
}

impl<S> Layer<S> for MiddlewareLayer {
    type Service = Middleware<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Middleware {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Request id, trace context, authentication, authorization, metrics and the call's log span.
#[derive(Clone)]
struct Middleware<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// Paths that need no token: probes and tooling must work without credentials.
fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

impl<S> Service<Request<Body>> for Middleware<S>
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

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // Take the service that was driven to readiness; leave a clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let started = Instant::now();
        let path = request.uri().path().to_string();
        let protocol = request
            .extensions()
            .get::<crate::http::Protocol>()
            .copied()
            .unwrap_or(crate::http::Protocol::Grpc);
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let traceparent = continue_trace(
            request
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok()),
        );
        let trace_id = traceparent.get(3..35).unwrap_or("").to_string();
        let span = tracing::info_span!(
            "grpc",
            method = %path,
            protocol = protocol.label(),
            request_id = %request_id,
            trace_id = %trace_id,
            caller = tracing::field::Empty,
        );

        let header_bytes = header_list_bytes(request.headers());
        let mut denied: Option<tonic::Status> = None;
        if header_bytes > shared.max_header_bytes {
            denied = Some(headers_too_large(header_bytes, shared.max_header_bytes));
        } else if !is_public(&path) {
            let header = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match shared.authenticator.authenticate(header) {
                Ok(caller) => {
                    span.record("caller", caller.subject.as_str());
                    if let Err(e) = check_roles(&shared.tables, &path, &caller) {
                        denied = Some(refuse(e));
                    }
                    request.extensions_mut().insert(caller);
                }
                Err(e) => denied = Some(refuse(e)),
            }
        }
        request.extensions_mut().insert(shared.shutdown.clone());
        request.extensions_mut().insert(RequestMeta {
            method: path.clone(),
            request_id: request_id.clone(),
            traceparent,
        });

        Box::pin(
            async move {
                let mut response = match denied {
                    Some(status) => status.into_http::<Body>(),
                    None => undecodable_is_invalid(inner.call(request).await?),
                };
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert("x-request-id", v);
                }
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_string();
                let elapsed = started.elapsed();
                let protocol = protocol.label();
                metrics::counter!(crate::observe::REQUESTS_TOTAL, "method" => path.clone(), "code" => code.clone(), "protocol" => protocol).increment(1);
                metrics::histogram!(crate::observe::REQUEST_DURATION, "method" => path.clone(), "protocol" => protocol).record(elapsed.as_secs_f64());
                tracing::debug!(code = %code, elapsed_ms = elapsed.as_millis() as u64, "call finished");
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// tonic answers a request body that is not the method's protobuf message with INTERNAL
/// ("failed to decode Protobuf message") before any handler runs. That is the caller's mistake,
/// so the caller gets INVALID_ARGUMENT on `request` with the usual rich details instead.
fn undecodable_is_invalid(response: http::Response<Body>) -> http::Response<Body> {
    let Some(status) = tonic::Status::from_header_map(response.headers()) else {
        return response;
    };
    if status.code() != tonic::Code::Internal
        || !status
            .message()
            .starts_with("failed to decode Protobuf message")
    {
        return response;
    }
    tracing::info!(error = %status.message(), "undecodable request refused");
    tonic::Status::from(ApiError::invalid(
        "request",
        "MALFORMED_REQUEST",
        "the request body is not a valid protobuf encoding of this method's request message",
    ))
    .into_http::<Body>()
}

/// Logs a refused call and turns its error into the status the caller gets.
fn refuse(err: ApiError) -> tonic::Status {
    tracing::info!(error = %err, "call refused");
    tonic::Status::from(err)
}

/// A header list's size as HTTP/2 counts it (RFC 7540 §6.5.2): name + value + 32 per field.
fn header_list_bytes(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
}

/// The status of a call whose headers exceed `server.max_header_bytes`: RESOURCE_EXHAUSTED,
/// as gRPC reports metadata over a limit, with the size and the limit.
fn headers_too_large(size: usize, limit: usize) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    tracing::info!(size, limit, "call refused: request headers too large");
    let mut details = ErrorDetails::new();
    details.set_error_info(
        "REQUEST_HEADERS_TOO_LARGE",
        crate::error::ERROR_DOMAIN,
        HashMap::from([
            ("header_bytes".to_string(), size.to_string()),
            ("max_header_bytes".to_string(), limit.to_string()),
        ]),
    );
    tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        format!(
            "request headers are {size} bytes; this server accepts at most {limit} (server.max_header_bytes)"
        ),
        details,
    )
}

/// Looks up the method in its service's role table. Methods of services this server does not
/// mount pass through (the router answers UNIMPLEMENTED).
fn check_roles(
    tables: &HashMap<String, RoleTable>,
    path: &str,
    caller: &Caller,
) -> Result<(), ApiError> {
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return Ok(());
    };
    match tables.get(service) {
        Some(table) => authorize(table, method, caller),
        None => Ok(()),
    }
}

/// A W3C `traceparent` for this call: the caller's trace with a new span id, or a new trace.
fn continue_trace(incoming: Option<&str>) -> String {
    let span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
    if let Some(tp) = incoming {
        let parts: Vec<&str> = tp.split('-').collect();
        if parts.len() == 4
            && parts[0] == "00"
            && parts[1].len() == 32
            && parts[1].bytes().all(|b| b.is_ascii_hexdigit())
            && parts[1] != "00000000000000000000000000000000"
            && parts[3].len() == 2
        {
            return format!("00-{}-{span_id}-{}", parts[1].to_lowercase(), parts[3]);
        }
    }
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    format!("00-{trace_id}-{span_id}-01")
}

/// Roles listed for a method, for documentation and tests.
pub fn roles_of(table: RoleTable, method: &str) -> Option<&'static [Role]> {
    table.iter().find(|m| m.method == method).map(|m| m.roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_continue_or_start() {
        let tp = continue_trace(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(!tp.contains("00f067aa0ba902b7"));
        let fresh = continue_trace(Some("garbage"));
        assert_eq!(fresh.len(), 55);
        assert!(fresh.ends_with("-01"));
    }

    #[test]
    fn health_and_reflection_are_public_and_nothing_else() {
        assert!(is_public("/grpc.health.v1.Health/Check"));
        assert!(is_public(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!is_public(
            "/qilu.registry.v1.EnterpriseRegistryService/GetEnterprise"
        ));
    }
}
