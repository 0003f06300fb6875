//! The achievement review (`qilu.review.v1.AchievementReviewService`): two-high screening, experts, and the one-vote veto.
//!
//! Same shape as every Qilu service: `api.rs` (tonic handlers, thin), `roles.rs` (RPC → roles),
//! `store/` (migrations). This service's own resources arrive with its issue; until then it
//! serves its audit log and answers UNIMPLEMENTED for the rest of its contract.

#![forbid(unsafe_code)]

pub mod api;
pub mod roles;
pub mod store;

use qilu_common::app::ServiceApp;
use qilu_common::config::Config;
use qilu_common::server::ServiceDef;
use qilu_proto::review::achievement_review_service_server::AchievementReviewServiceServer;
use sea_orm::{DatabaseConnection, DbErr};

/// The service as a startable unit.
#[derive(Debug)]
pub struct Review;

impl ServiceApp for Review {
    const NAME: &'static str = "review";
    const GRPC_NAME: &'static str = qilu_proto::service_names::REVIEW;

    async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
        qilu_common::db::migrate::<store::Migrator>(db, Self::NAME).await
    }

    async fn build(config: &Config, db: DatabaseConnection) -> Result<ServiceDef, String> {
        Ok(service(config, db))
    }
}

/// Builds the mountable service from configuration and a migrated database.
pub fn service(config: &Config, db: DatabaseConnection) -> ServiceDef {
    let limit = config.server.max_message_bytes;
    let server = AchievementReviewServiceServer::new(api::ReviewApi::new(db))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    ServiceDef::new(
        qilu_proto::service_names::REVIEW,
        roles::ROLE_TABLE,
        move |routes| {
            routes.add_service(server);
        },
    )
}
