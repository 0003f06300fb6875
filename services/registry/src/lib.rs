//! The enterprise registry (`qilu.registry.v1.EnterpriseRegistryService`): the province's source
//! of truth on which high-tech enterprises exist in green and low-carbon fields.
//!
//! Code map: `api/` (tonic handlers, thin, one module per resource family) → `convert/` (proto
//! ⇄ domain, all input validation, one module per family) → `domain/` (types, rules and typed
//! refusals, no I/O) and `store/` (sea-orm entities, queries, migrations). `roles.rs` is the
//! RPC → roles table. "Today" comes from the injected [`Clock`] in the programme time zone.

#![forbid(unsafe_code)]

pub mod api;
pub mod convert;
pub mod domain;
pub mod roles;
pub mod store;

use qilu_common::Clock;
use qilu_common::app::ServiceApp;
use qilu_common::config::Config;
use qilu_common::server::ServiceDef;
use qilu_proto::registry::enterprise_registry_service_server::EnterpriseRegistryServiceServer;
use sea_orm::{DatabaseConnection, DbErr};

use crate::domain::uscc::KnownExceptions;

/// The registry as a startable service.
#[derive(Debug)]
pub struct Registry;

impl ServiceApp for Registry {
    const NAME: &'static str = "registry";
    const GRPC_NAME: &'static str = qilu_proto::service_names::REGISTRY;

    async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
        qilu_common::db::migrate::<store::Migrator>(db, Self::NAME).await
    }

    async fn build(config: &Config, db: DatabaseConnection) -> Result<ServiceDef, String> {
        Ok(service(config, db))
    }
}

/// Builds the registry's mountable service from configuration and a migrated database.
pub fn service(config: &Config, db: DatabaseConnection) -> ServiceDef {
    service_with_clock(config, db, Clock::system())
}

/// The registry's sweep over `db`, dating with `clock` in `zone`: what [`service_with_clock`]
/// runs on its schedule, for tools (the benchmark) that sweep without serving.
pub fn sweeper(
    db: DatabaseConnection,
    clock: Clock,
    zone: chrono_tz::Tz,
) -> qilu_common::sweep::Sweeper {
    qilu_common::sweep::Sweeper::new(
        db,
        clock,
        zone,
        qilu_proto::service_names::REGISTRY,
        api::sweep::families(zone),
    )
}

/// [`service`] with an explicit clock, so tests can set "today" (certificate validity,
/// `high_tech_certified`, the current programme year) instead of waiting for it.
pub fn service_with_clock(config: &Config, db: DatabaseConnection, clock: Clock) -> ServiceDef {
    let sweeper = sweeper(db.clone(), clock.clone(), config.time_zone());
    let operations = qilu_common::operations::Operations::new(db.clone(), "registry");
    let known = KnownExceptions::new(&config.registry.known_exception_usccs);
    // The runner gets handlers of its own, not a clone of the served ones: the operations hold
    // the runner, so a clone would keep the served handlers (and the connection GetEnterprise's
    // shared reads keep out of the pool) alive past shutdown, and closing the pool would wait
    // for that connection forever. The runner's handlers never read through `SharedReads`.
    let runner = api::ImportRunner::new(api::RegistryApi::new(
        db.clone(),
        known.clone(),
        config.time_zone(),
        clock.clone(),
        operations.clone(),
    ));
    operations.register(api::START_IMPORT, runner);
    let api = api::RegistryApi::new(db, known, config.time_zone(), clock, operations.clone());
    let limit = config.server.max_message_bytes;
    let server = EnterpriseRegistryServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    ServiceDef::new(
        qilu_proto::service_names::REGISTRY,
        roles::ROLE_TABLE,
        move |routes| {
            routes.add_service(server);
        },
    )
    .with_health_probe(qilu_common::db::HealthProbe::new(
        config.database_url(<Registry as ServiceApp>::NAME),
        &config.database,
    ))
    .with_sweeper(sweeper)
    .with_operations(operations)
}
