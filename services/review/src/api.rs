//! The tonic implementation of `qilu.review.v1.AchievementReviewService`. RPCs not implemented yet fall through
//! to the generated default (UNIMPLEMENTED); the service's issue replaces every one.

use qilu_common::audit;
use qilu_proto::common as cpb;
use qilu_proto::review::achievement_review_service_server::AchievementReviewService;
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

/// The service's gRPC handlers and what they share.
#[derive(Debug, Clone)]
pub struct ReviewApi {
    db: DatabaseConnection,
}

impl ReviewApi {
    /// Handlers over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        ReviewApi { db }
    }
}

#[tonic::async_trait]
impl AchievementReviewService for ReviewApi {
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
