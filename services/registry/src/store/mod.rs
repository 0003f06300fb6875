//! The registry's storage: sea-orm entities, migrations and queries. Works on SQLite and
//! PostgreSQL alike. Never called with unvalidated input: handlers pass domain types.

pub mod changes;
pub mod enterprise;
pub mod figures;
pub mod migration;
pub mod policy;

pub use migration::Migrator;
