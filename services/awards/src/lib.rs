//! The award and project allocation (`qilu.awards.v1.AwardAllocationService`): programs,
//! applications, explainable allocation, publicity and field statistics.
//!
//! Code map (the same shape as the registry and review): `api/` (tonic handlers, thin, one
//! module per concept) → `convert/` (proto ⇄ domain, all input parsing, one module per resource
//! family) → `domain/` (pure rules: program settings and stages, the allocator and Hamilton
//! split, allocation runs and their digest, field distribution, typed ids, refusals) and
//! `store/` (sea-orm entities, queries, migrations). `roles.rs` is the RPC → roles table.
//! Enterprises are checked in the registry and achievements in the review service over gRPC
//! (`qilu_common::client::Peer`); this service never reads their tables.

#![forbid(unsafe_code)]

pub mod api;
pub mod convert;
pub mod domain;
pub mod roles;
pub mod store;

use qilu_common::app::ServiceApp;
use qilu_common::client::Peer;
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
        service_with_clock(config, db, Clock::system())
    }
}

/// "Now" for the service's date-dependent decisions, injectable so tests move it instead of
/// sleeping. Re-exported so callers name it through the service crate as before.
pub use qilu_common::Clock;

/// Builds the mountable service from configuration and a migrated database.
pub fn service(config: &Config, db: DatabaseConnection) -> Result<ServiceDef, String> {
    service_with_clock(config, db, Clock::system())
}

/// [`service`] with an explicit clock (tests).
pub fn service_with_clock(
    config: &Config,
    db: DatabaseConnection,
    clock: Clock,
) -> Result<ServiceDef, String> {
    let registry = Peer::new(
        "registry",
        &config.peers.registry,
        &config.peers,
        &config.auth,
        "awards",
    )?;
    let review = Peer::new(
        "review",
        &config.peers.review,
        &config.peers,
        &config.auth,
        "awards",
    )?;
    let operations = qilu_common::operations::Operations::new(db.clone(), "awards");
    let api = api::AwardsApi::new(
        db,
        registry,
        review,
        config.time_zone(),
        clock,
        operations.clone(),
    );
    operations.register(
        api::START_ALLOCATION,
        api::AllocationRunner::new(api.clone()),
    );
    let limit = config.server.max_message_bytes;
    let server = AwardAllocationServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(ServiceDef::new(
        qilu_proto::service_names::AWARDS,
        roles::ROLE_TABLE,
        move |routes| {
            routes.add_service(server);
        },
    )
    .with_health_probe(qilu_common::db::HealthProbe::new(
        config.database_url(<Awards as ServiceApp>::NAME),
        &config.database,
    ))
    .with_operations(operations))
}
