//! Programme statistics.
//!
//! Not implemented yet: every RPC here answers UNIMPLEMENTED until its part of the registry
//! issue lands.

use qilu_proto::registry as pb;

use tonic::{Request, Response, Status};

use super::RegistryApi;

pub(super) async fn get_programme_statistics(
    _api: &RegistryApi,
    _request: Request<pb::GetProgrammeStatisticsRequest>,
) -> Result<Response<pb::ProgrammeStatistics>, Status> {
    Err(Status::unimplemented(
        "get_programme_statistics is not implemented yet",
    ))
}
