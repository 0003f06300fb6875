//! The tonic plumbing of every handler, written once.
//!
//! A Qilu handler has one shape in all three services:
//!
//! ```ignore
//! pub(crate) async fn create(api: &RegistryApi, ctx: &CallContext, req: pb::CreateEnterpriseRequest)
//!     -> Result<pb::Enterprise, ApiError>
//! ```
//!
//! [`service_impl!`](crate::service_impl) writes the tonic trait impl around such handlers: for
//! each RPC it reads the [`CallContext`](crate::CallContext) the middleware attached, passes the
//! message (or the inbound stream) to the handler, wraps the answer in a `tonic::Response`, and
//! turns an [`ApiError`](crate::ApiError) into a rich `tonic::Status` through the one `From` impl
//! in `error.rs`. A service's `api/mod.rs` is then one greppable line per RPC:
//!
//! ```ignore
//! qilu_common::service_impl! {
//!     impl EnterpriseRegistryService for RegistryApi {
//!         type WatchChangesStream = BoxStream<pb::WatchChangesResponse>;
//!         rpc create_enterprise(pb::CreateEnterpriseRequest) -> pb::Enterprise = enterprises::create;
//!         rpc import_enterprises(Streaming<pb::ImportEnterprisesRequest>) -> pb::ImportEnterprisesResponse = import::run;
//!     }
//! }
//! ```
//!
//! Handlers never see `tonic::Request`/`Response`/`Status`; nothing else in a service should
//! build a `Status` (peer errors are mapped to `ApiError` in `client.rs`).

use tonic::{Request, Response, Status};

use crate::{ApiError, CallContext};

/// Splits a request into its context and message, the prologue every handler used to repeat.
pub fn begin<T>(request: Request<T>) -> Result<(CallContext, T), Status> {
    let ctx = CallContext::of(&request)?;
    Ok((ctx, request.into_inner()))
}

/// Wraps a handler's answer: the message in a `Response`, an `ApiError` as its rich `Status`.
pub fn finish<T>(result: Result<T, ApiError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

/// Writes a tonic service trait impl whose every RPC delegates to a handler of the form
/// `async fn(&Api, &CallContext, Req) -> Result<Resp, ApiError>`. Associated types (server
/// streams) come first, then one `rpc` line per method; see the module documentation.
#[macro_export]
macro_rules! service_impl {
    (
        impl $service:ident for $api:ident {
            $( type $assoc:ident = $assoc_ty:ty; )*
            $( rpc $method:ident ( $req:ty ) -> $resp:ty = $handler:path; )*
        }
    ) => {
        #[::tonic::async_trait]
        impl $service for $api {
            $( type $assoc = $assoc_ty; )*
            $(
                async fn $method(
                    &self,
                    request: ::tonic::Request<$req>,
                ) -> ::std::result::Result<::tonic::Response<$resp>, ::tonic::Status> {
                    let (ctx, message) = $crate::rpc::begin(request)?;
                    $crate::rpc::finish($handler(self, &ctx, message).await)
                }
            )*
        }
    };
}
