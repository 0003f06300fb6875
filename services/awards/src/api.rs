//! The tonic implementation of `qilu.awards.v1.AwardAllocationService`. RPCs not implemented yet fall through
//! to the generated default (UNIMPLEMENTED); the service's issue replaces every one.

use qilu_common::audit;
use qilu_proto::awards::award_allocation_service_server::AwardAllocationService;
use qilu_proto::common as cpb;
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

/// The service's gRPC handlers and what they share.
#[derive(Debug, Clone)]
pub struct AwardsApi {
    db: DatabaseConnection,
}

impl AwardsApi {
    /// Handlers over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        AwardsApi { db }
    }
}

#[tonic::async_trait]
impl AwardAllocationService for AwardsApi {
    async fn list_audit_events(
        &self,
        request: Request<cpb::ListAuditEventsRequest>,
    ) -> Result<Response<cpb::ListAuditEventsResponse>, Status> {
        Ok(Response::new(
            audit::list(&self.db, request.get_ref()).await?,
        ))
    }

    async fn verify_audit_chain(
        &self,
        request: Request<cpb::VerifyAuditChainRequest>,
    ) -> Result<Response<cpb::VerifyAuditChainResponse>, Status> {
        Ok(Response::new(
            audit::verify(&self.db, request.get_ref()).await?,
        ))
    }
}
