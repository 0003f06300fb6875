//! The achievement review (`qilu.review.v1.AchievementReviewService`): two-high screening,
//! experts, and the one-vote veto — an energy-intensive or highly polluting achievement is
//! vetoed, by rule or by any one expert, and the veto holds unless an appeal overturns it.
//!
//! Code map (the same shape as the registry): `api/` (tonic handlers, thin, one module per
//! concept) → `convert/` (proto ⇄ domain, all input parsing, one module per resource family) →
//! `domain/` (types and rules, no I/O: screening, decision, assignment, appeal window, typed
//! ids, refusals) and `store/` (sea-orm entities, queries, migrations). `roles.rs` is the RPC →
//! roles table. The owner enterprise is checked in the registry over gRPC
//! (`qilu_common::client::Peer`); this service never reads the registry's tables.

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
        "review",
    )?;
    let api = api::ReviewApi::new(db, registry, config.time_zone(), clock);
    let limit = config.server.max_message_bytes;
    let server = AchievementReviewServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(ServiceDef::new(
        qilu_proto::service_names::REVIEW,
        roles::ROLE_TABLE,
        move |routes| {
            routes.add_service(server);
        },
    )
    .with_health_probe(qilu_common::db::HealthProbe::new(
        config.database_url(<Review as ServiceApp>::NAME),
        &config.database,
    )))
}
