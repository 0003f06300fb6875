//! This service's audit log: list and verify (the machinery is `qilu_common::audit`).

use qilu_common::audit;
use qilu_proto::common as cpb;
use tonic::{Request, Response, Status};

use super::ReviewApi;

pub(super) async fn list_audit_events(
    api: &ReviewApi,
    request: Request<cpb::ListAuditEventsRequest>,
) -> Result<Response<cpb::ListAuditEventsResponse>, Status> {
    Ok(Response::new(
        audit::list(&api.db, request.get_ref()).await?,
    ))
}

pub(super) async fn verify_audit_chain(
    api: &ReviewApi,
    request: Request<cpb::VerifyAuditChainRequest>,
) -> Result<Response<cpb::VerifyAuditChainResponse>, Status> {
    Ok(Response::new(
        audit::verify(&api.db, request.get_ref()).await?,
    ))
}
