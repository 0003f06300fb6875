//! This service's audit log: list and verify (the machinery is `qilu_common::audit`).

use qilu_common::audit;
use qilu_common::{ApiError, CallContext};
use qilu_proto::common as cpb;

use super::ReviewApi;

pub(super) async fn list_audit_events(
    api: &ReviewApi,
    _ctx: &CallContext,
    req: cpb::ListAuditEventsRequest,
) -> Result<cpb::ListAuditEventsResponse, ApiError> {
    audit::list(&api.db, &req).await
}

pub(super) async fn verify_audit_chain(
    api: &ReviewApi,
    _ctx: &CallContext,
    req: cpb::VerifyAuditChainRequest,
) -> Result<cpb::VerifyAuditChainResponse, ApiError> {
    audit::verify(&api.db, &req).await
}
