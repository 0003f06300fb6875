//! Policy targets (dated, versioned data).
//!
//! Not implemented yet: every RPC here answers UNIMPLEMENTED until its part of the registry
//! issue lands.

use qilu_proto::registry as pb;

use tonic::{Request, Response, Status};

use super::RegistryApi;

pub(super) async fn create_policy_target(
    _api: &RegistryApi,
    _request: Request<pb::CreatePolicyTargetRequest>,
) -> Result<Response<pb::PolicyTarget>, Status> {
    Err(Status::unimplemented(
        "create_policy_target is not implemented yet",
    ))
}

pub(super) async fn get_policy_target(
    _api: &RegistryApi,
    _request: Request<pb::GetPolicyTargetRequest>,
) -> Result<Response<pb::PolicyTarget>, Status> {
    Err(Status::unimplemented(
        "get_policy_target is not implemented yet",
    ))
}

pub(super) async fn list_policy_targets(
    _api: &RegistryApi,
    _request: Request<pb::ListPolicyTargetsRequest>,
) -> Result<Response<pb::ListPolicyTargetsResponse>, Status> {
    Err(Status::unimplemented(
        "list_policy_targets is not implemented yet",
    ))
}
