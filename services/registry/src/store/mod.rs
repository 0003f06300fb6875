//! The registry's storage: sea-orm entities, migrations and queries. Works on SQLite and
//! PostgreSQL alike. Never called with unvalidated input: handlers pass domain types.

pub mod certificate;
pub mod changes;
pub mod enterprise;
pub mod figures;
pub mod import_job;
pub mod leading;
pub mod migration;
pub mod policy;
pub mod statistics;
pub mod zones;

pub use migration::Migrator;
