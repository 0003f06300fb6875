//! Revoke and deregister an enterprise.
//!
//! Not implemented yet: every RPC here answers UNIMPLEMENTED until its part of the registry
//! issue lands.

use qilu_proto::registry as pb;

use tonic::{Request, Response, Status};

use super::RegistryApi;

pub(super) async fn revoke_enterprise(
    _api: &RegistryApi,
    _request: Request<pb::RevokeEnterpriseRequest>,
) -> Result<Response<pb::Enterprise>, Status> {
    Err(Status::unimplemented(
        "revoke_enterprise is not implemented yet",
    ))
}

pub(super) async fn deregister_enterprise(
    _api: &RegistryApi,
    _request: Request<pb::DeregisterEnterpriseRequest>,
) -> Result<Response<pb::Enterprise>, Status> {
    Err(Status::unimplemented(
        "deregister_enterprise is not implemented yet",
    ))
}
