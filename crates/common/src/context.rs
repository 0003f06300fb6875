//! Who is calling and under which request: built once per call by the middleware, read by
//! handlers. Handlers never parse headers themselves.

use crate::auth::{Caller, Role};
use crate::error::ApiError;

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
        Ok(CallContext { caller, meta })
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
