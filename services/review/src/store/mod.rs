//! Storage for the review service: migrations (the common audit and idempotency tables; the
//! service's own tables arrive with its issue).

use sea_orm_migration::prelude::*;

/// All migrations of this service, in order.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        qilu_common::migration::common_migrations()
    }
}
