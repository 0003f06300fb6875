//! Bulk import (client streaming).
//!
//! Not implemented yet: every RPC here answers UNIMPLEMENTED until its part of the registry
//! issue lands.

use qilu_proto::registry as pb;
use tonic::Streaming;
use tonic::{Request, Response, Status};

use super::RegistryApi;

pub(super) async fn import_enterprises(
    _api: &RegistryApi,
    _request: Request<Streaming<pb::ImportEnterprisesRequest>>,
) -> Result<Response<pb::ImportEnterprisesResponse>, Status> {
    Err(Status::unimplemented(
        "import_enterprises is not implemented yet",
    ))
}
