//! Storage for the awards service: sea-orm entities, queries and migrations. Each row keeps the
//! domain value as canonical JSON (`doc`) next to the columns that are filtered, ordered or
//! constrained (unique achievement per program), so the schema stays small and the same on
//! SQLite and PostgreSQL.

pub mod application;
pub mod ceiling;
pub mod migration;
pub mod objection;
pub mod program;
pub mod run;

pub use migration::Migrator;

use sea_orm::DbErr;

/// A stored document that does not parse: a corrupted database, not a caller mistake.
pub(crate) fn corrupt(what: &str, err: serde_json::Error) -> DbErr {
    DbErr::Custom(format!("stored {what} is corrupt: {err}"))
}

/// The canonical JSON of a domain value.
pub(crate) fn doc(value: &impl serde::Serialize) -> Result<String, DbErr> {
    serde_json::to_string(value).map_err(|e| DbErr::Custom(format!("cannot serialize: {e}")))
}
