//! The award and project allocation (`qilu.awards.v1.AwardAllocationService`): programs, applications, explainable allocation, publicity.
//!
//! Same shape as every Qilu service: `api.rs` (tonic handlers, thin), `roles.rs` (RPC → roles),
//! `store/` (migrations). This service's own resources arrive with its issue; until then it
//! serves its audit log and answers UNIMPLEMENTED for the rest of its contract.

#![forbid(unsafe_code)]

pub mod api;
pub mod domain;
pub mod roles;
pub mod store;

use qilu_common::app::ServiceApp;
use qilu_common::config::Config;
use qilu_common::server::ServiceDef;
use qilu_proto::awards::award_allocation_service_server::AwardAllocationServiceServer;
use sea_orm::{DatabaseConnection, DbErr};

/// The service as a startable unit.
#[derive(Debug)]
pub struct Awards;

impl ServiceApp for Awards {
    const NAME: &'static str = "awards";
    const GRPC_NAME: &'static str = qilu_proto::service_names::AWARDS;

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
    let server = AwardAllocationServiceServer::new(api::AwardsApi::new(db))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    ServiceDef::new(
        qilu_proto::service_names::AWARDS,
        roles::ROLE_TABLE,
        move |routes| {
            routes.add_service(server);
        },
    )
}
