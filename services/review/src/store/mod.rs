//! The review service's storage: sea-orm entities, queries and migrations, one module per
//! resource. Works on SQLite and PostgreSQL alike (text, integer, big integer and boolean
//! columns only; nested values as JSON text). Never called with unvalidated input: handlers
//! pass domain types. Stored verdicts and decisions are written once and never rewritten.

pub mod achievement;
pub mod expert;
pub mod review;
pub mod rule_set;
pub mod threshold;

use sea_orm_migration::prelude::*;

/// All migrations of this service, in order: the common tables first, then its own.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = qilu_common::migration::common_migrations();
        all.extend(rule_set::migrations());
        all.extend(threshold::migrations());
        all.extend(achievement::migrations());
        all.extend(expert::migrations());
        all.extend(review::migrations());
        all.extend(qilu_common::migration::later_common_migrations());
        all.extend(review::later_migrations());
        all.extend(rule_set::later_migrations());
        all
    }
}

/// A stored row that no longer decodes: a corrupted database, not a caller mistake.
#[derive(Debug, thiserror::Error)]
#[error("stored {table} row {key} is corrupt: {problem}")]
pub struct CorruptRow {
    table: &'static str,
    key: String,
    problem: String,
}

impl CorruptRow {
    /// A corrupt row of `table` with `key`.
    pub fn new(table: &'static str, key: &str, problem: impl std::fmt::Display) -> Self {
        CorruptRow {
            table,
            key: key.to_string(),
            problem: problem.to_string(),
        }
    }
}

/// JSON text of a value (the domain types serialise infallibly: no maps with non-string keys).
pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A value from JSON text, or a corrupt-row error.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    key: &str,
    column: &str,
    text: &str,
) -> Result<T, CorruptRow> {
    serde_json::from_str(text).map_err(|e| CorruptRow::new(table, key, format!("{column}: {e}")))
}

/// Encodes a set of keys for `LIKE '%,key,%'` matching: `,a,b,` (empty for none).
pub(crate) fn encode_set<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        let joined: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        format!(",{},", joined.join(","))
    }
}

/// Decodes `,a,b,`.
pub(crate) fn decode_set(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `LIKE` pattern matching `needle` anywhere, with `%`, `_` and `\` escaped.
pub(crate) fn contains_pattern(needle: &str) -> sea_orm::sea_query::LikeExpr {
    let escaped: String = needle
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\')
}
