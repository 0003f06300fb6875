//! Who is calling and under which request: built once per call by the middleware, read by
//! handlers. Handlers never parse headers themselves.

use std::sync::Arc;

use tokio::sync::watch;

use crate::auth::{Caller, Role};
use crate::error::ApiError;

/// Tells a handler that the server has begun shutting down. Long-lived calls (server streams
/// such as `WatchChanges`) watch it and end promptly, so SIGTERM does not wait out the drain
/// deadline on a subscriber that would never finish by itself. Short calls ignore it and drain.
#[derive(Debug, Clone)]
pub struct Shutdown {
    started: watch::Receiver<bool>,
    /// Keeps a never-firing signal's sender alive.
    _never: Option<Arc<watch::Sender<bool>>>,
}

/// The server's side of [`Shutdown`]: `start` fires every handler's signal.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// Marks the server as shutting down.
    pub fn start(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// A signal and its trigger, made once per server.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (
            ShutdownTrigger(tx),
            Shutdown {
                started: rx,
                _never: None,
            },
        )
    }

    /// A signal that never fires, for contexts built outside a server (unit tests).
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            started: rx,
            _never: Some(Arc::new(tx)),
        }
    }

    /// Whether shutdown has begun (or the server is gone).
    pub fn is_started(&self) -> bool {
        *self.started.borrow() || self.started.has_changed().is_err()
    }

    /// Resolves once shutdown begins (or the server is gone).
    pub async fn started(&self) {
        let mut rx = self.started.clone();
        let _ = rx.wait_for(|started| *started).await;
    }
}

/// Per-call facts the middleware attaches to every request before the handler runs.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// Full gRPC method path, e.g. `/qilu.registry.v1.EnterpriseRegistryService/CreateEnterprise`.
    pub method: String,
    /// `x-request-id` from the caller, or one generated here; echoed in the response.
    pub request_id: String,
    /// W3C `traceparent` to carry to peer services (the caller's, or a new trace).
    pub traceparent: String,
}

/// Everything a handler needs to know about the call: the authenticated caller and the request
/// metadata.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The authenticated caller.
    pub caller: Caller,
    /// Request id, method and trace context.
    pub meta: RequestMeta,
    /// Fires when the server begins shutting down.
    pub shutdown: Shutdown,
}

impl CallContext {
    /// Reads the context the middleware attached. Missing context means the service was
    /// mounted without the middleware: refuse rather than run unauthenticated.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<CallContext, ApiError> {
        let caller = request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated("no authenticated caller".into()))?;
        let meta = request
            .extensions()
            .get::<RequestMeta>()
            .cloned()
            .ok_or_else(|| {
                ApiError::internal("request metadata missing: middleware not installed")
            })?;
        let shutdown = request
            .extensions()
            .get::<Shutdown>()
            .cloned()
            .ok_or_else(|| {
                ApiError::internal("shutdown signal missing: middleware not installed")
            })?;
        Ok(CallContext {
            caller,
            meta,
            shutdown,
        })
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.caller.roles.contains(&role)
    }

    /// Whether the caller acts only for one enterprise (role `enterprise` and no staff role):
    /// such callers see and edit only their own records.
    pub fn enterprise_scope(&self) -> Option<&str> {
        if self.caller.is_staff() {
            None
        } else {
            // An enterprise token without its `enterprise` claim is scoped to nothing at all.
            Some(self.caller.enterprise.as_deref().unwrap_or(""))
        }
    }

    /// The gRPC method name without its service, e.g. `CreateEnterprise`.
    pub fn method_name(&self) -> &str {
        self.meta
            .method
            .rsplit('/')
            .next()
            .unwrap_or(self.meta.method.as_str())
    }
}
