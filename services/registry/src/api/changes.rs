//! Change feed.
//!
//! Not implemented yet: every RPC here answers UNIMPLEMENTED until its part of the registry
//! issue lands.

use qilu_proto::registry as pb;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::RegistryApi;

pub(super) async fn list_changes(
    _api: &RegistryApi,
    _request: Request<pb::ListChangesRequest>,
) -> Result<Response<pb::ListChangesResponse>, Status> {
    Err(Status::unimplemented("list_changes is not implemented yet"))
}

pub(super) async fn watch_changes(
    _api: &RegistryApi,
    _request: Request<pb::WatchChangesRequest>,
) -> Result<Response<BoxStream<pb::WatchChangesResponse>>, Status> {
    Err(Status::unimplemented(
        "watch_changes is not implemented yet",
    ))
}
