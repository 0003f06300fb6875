//! Annual figures.
//!
//! Not implemented yet: every RPC here answers UNIMPLEMENTED until its part of the registry
//! issue lands.

use qilu_proto::registry as pb;

use tonic::{Request, Response, Status};

use super::RegistryApi;

pub(super) async fn get_annual_figures(
    _api: &RegistryApi,
    _request: Request<pb::GetAnnualFiguresRequest>,
) -> Result<Response<pb::AnnualFigures>, Status> {
    Err(Status::unimplemented(
        "get_annual_figures is not implemented yet",
    ))
}

pub(super) async fn list_annual_figures(
    _api: &RegistryApi,
    _request: Request<pb::ListAnnualFiguresRequest>,
) -> Result<Response<pb::ListAnnualFiguresResponse>, Status> {
    Err(Status::unimplemented(
        "list_annual_figures is not implemented yet",
    ))
}

pub(super) async fn update_annual_figures(
    _api: &RegistryApi,
    _request: Request<pb::UpdateAnnualFiguresRequest>,
) -> Result<Response<pb::AnnualFigures>, Status> {
    Err(Status::unimplemented(
        "update_annual_figures is not implemented yet",
    ))
}
