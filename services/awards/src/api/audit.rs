//! The audit log of this service: list and verify.

use qilu_common::audit;
use qilu_proto::common as cpb;
use tonic::{Request, Response, Status};

use super::AwardsApi;

pub(super) async fn list_audit_events(
    api: &AwardsApi,
    request: Request<cpb::ListAuditEventsRequest>,
) -> Result<Response<cpb::ListAuditEventsResponse>, Status> {
    Ok(Response::new(
        audit::list(&api.db, request.get_ref()).await?,
    ))
}

pub(super) async fn verify_audit_chain(
    api: &AwardsApi,
    request: Request<cpb::VerifyAuditChainRequest>,
) -> Result<Response<cpb::VerifyAuditChainResponse>, Status> {
    Ok(Response::new(
        audit::verify(&api.db, request.get_ref()).await?,
    ))
}
