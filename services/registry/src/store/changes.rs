//! Storage behind enterprise status changes, bulk import and the change feed:
//!
//! - the migration that adds the status-change columns (`state_reason`, `state_change_time_us`,
//!   `state_effective_date`) to `enterprise`;
//! - the bulk writes an import batch makes (on PostgreSQL one `unnest` insert of column arrays;
//!   elsewhere multi-row inserts, chunked under SQLite's limit on bound parameters).
//!
//! The change feed reads the audit log through `qilu_common::feed`.
//!
//! Never writes to the audit log: events are appended only by `qilu_common::write::WriteTx`.

use sea_orm::entity::prelude::*;
use sea_orm::{DbBackend, Statement, TryIntoModel};
use sea_orm_migration::prelude::{
    Alias, ColumnDef, DeriveIden, MigrationName, MigrationTrait, SchemaManager, Table,
};

use crate::domain::enterprise::Enterprise;
use crate::store::enterprise as enterprise_store;

/// Rows per multi-row insert. `enterprise` has 20 columns, so 400 rows bind 8,000 parameters:
/// well under SQLite's 32,766 (and PostgreSQL's 65,535).
const INSERT_CHUNK: usize = 400;

/// The status-change migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(AddEnterpriseStateChange)]
}

/// Adds why/when an enterprise left ACTIVE. Existing rows are active: empty reason, NULL times.
struct AddEnterpriseStateChange;

impl MigrationName for AddEnterpriseStateChange {
    fn name(&self) -> &str {
        "m20261128_000450_registry_enterprise_state_change"
    }
}

#[derive(DeriveIden)]
enum Enterprise_ {
    #[sea_orm(iden = "enterprise")]
    Table,
    StateReason,
    StateChangeTimeUs,
    StateEffectiveDate,
}

#[async_trait::async_trait]
impl MigrationTrait for AddEnterpriseStateChange {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        for column in [
            ColumnDef::new(Enterprise_::StateReason)
                .text()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(Enterprise_::StateChangeTimeUs)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Enterprise_::StateEffectiveDate)
                .string_len(10)
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Enterprise_::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            "state_reason",
            "state_change_time_us",
            "state_effective_date",
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Enterprise_::Table)
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The `enterprise` columns, in table order, with the PostgreSQL array types their values
/// travel in (`unnest`). Quoted: `leading` is a reserved word in PostgreSQL. The two nullable
/// columns travel as text, `''` for NULL (neither ever holds an empty string: a time in µs, a
/// `YYYY-MM-DD` date).
const ENTERPRISE_COLUMNS: &[(&str, &str)] = &[
    ("uscc", "text"),
    ("display_name", "text"),
    ("legal_representative", "text"),
    ("established_date", "text"),
    ("address", "text"),
    ("division_code", "text"),
    ("city", "text"),
    ("zone", "text"),
    ("technology_fields", "text"),
    ("green_category", "integer"),
    ("state", "integer"),
    ("high_tech_certified", "boolean"),
    ("leading", "boolean"),
    ("uscc_known_exception", "boolean"),
    ("create_time_us", "bigint"),
    ("update_time_us", "bigint"),
    ("version", "bigint"),
    ("state_reason", "text"),
    ("state_change_time_us", "text"),
    ("state_effective_date", "text"),
];

/// The nullable columns of `ENTERPRISE_COLUMNS`, sent as text with `''` for NULL.
const NULLABLE_AS_TEXT: &[(&str, &str)] = &[
    ("state_change_time_us", "bigint"),
    ("state_effective_date", "text"),
];

/// Inserts new enterprises in as few statements as the backend allows: on PostgreSQL one
/// statement per call, each column travelling as one binary array parameter
/// (`INSERT … SELECT … FROM unnest($1::text[], …)`): binding thousands of scalar parameters
/// costs more than the insert itself, and a JSON parameter (`json_to_recordset`, used before)
/// spent about half of the statement's time in PostgreSQL's JSON lexer and per-record hash
/// tables (measured on a 500-row import batch: 7.1 ms with JSON, 3.6 ms with arrays);
/// elsewhere multi-row inserts of `INSERT_CHUNK` rows.
pub async fn insert_enterprises(
    conn: &impl ConnectionTrait,
    enterprises: &[Enterprise],
) -> Result<(), DbErr> {
    if enterprises.is_empty() {
        return Ok(());
    }
    if conn.get_database_backend() == DbBackend::Postgres {
        let models = enterprises
            .iter()
            .map(|e| enterprise_store::to_active(e).try_into_model())
            .collect::<Result<Vec<_>, DbErr>>()?;
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            insert_unnest_sql(),
            enterprise_arrays(models),
        ))
        .await?;
        return Ok(());
    }
    for chunk in enterprises.chunks(INSERT_CHUNK) {
        enterprise_store::Entity::insert_many(chunk.iter().map(enterprise_store::to_active))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// `INSERT INTO enterprise (…) SELECT … FROM unnest($1::text[], …) AS t(…)`, built once.
fn insert_unnest_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let names: Vec<String> = ENTERPRISE_COLUMNS
            .iter()
            .map(|(c, _)| format!("\"{c}\""))
            .collect();
        let arrays: Vec<String> = ENTERPRISE_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, (_, t))| format!("${}::{t}[]", i + 1))
            .collect();
        let selected: Vec<String> = ENTERPRISE_COLUMNS
            .iter()
            .map(
                |(c, _)| match NULLABLE_AS_TEXT.iter().find(|(n, _)| n == c) {
                    Some((_, t)) => format!("NULLIF(t.\"{c}\", '')::{t}"),
                    None => format!("t.\"{c}\""),
                },
            )
            .collect();
        format!(
            "INSERT INTO enterprise ({names}) SELECT {selected} FROM unnest({arrays}) AS t({names})",
            names = names.join(", "),
            selected = selected.join(", "),
            arrays = arrays.join(", "),
        )
    });
    SQL.as_str()
}

/// The rows as one array per column, in `ENTERPRISE_COLUMNS` order.
fn enterprise_arrays(models: Vec<enterprise_store::Model>) -> Vec<Value> {
    let n = models.len();
    let mut uscc = Vec::with_capacity(n);
    let mut display_name = Vec::with_capacity(n);
    let mut legal_representative = Vec::with_capacity(n);
    let mut established_date = Vec::with_capacity(n);
    let mut address = Vec::with_capacity(n);
    let mut division_code = Vec::with_capacity(n);
    let mut city = Vec::with_capacity(n);
    let mut zone = Vec::with_capacity(n);
    let mut technology_fields = Vec::with_capacity(n);
    let mut green_category = Vec::with_capacity(n);
    let mut state = Vec::with_capacity(n);
    let mut high_tech_certified = Vec::with_capacity(n);
    let mut leading = Vec::with_capacity(n);
    let mut uscc_known_exception = Vec::with_capacity(n);
    let mut create_time_us = Vec::with_capacity(n);
    let mut update_time_us = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    let mut state_reason = Vec::with_capacity(n);
    let mut state_change_time_us = Vec::with_capacity(n);
    let mut state_effective_date = Vec::with_capacity(n);
    for m in models {
        uscc.push(m.uscc);
        display_name.push(m.display_name);
        legal_representative.push(m.legal_representative);
        established_date.push(m.established_date);
        address.push(m.address);
        division_code.push(m.division_code);
        city.push(m.city);
        zone.push(m.zone);
        technology_fields.push(m.technology_fields);
        green_category.push(m.green_category);
        state.push(m.state);
        high_tech_certified.push(m.high_tech_certified);
        leading.push(m.leading);
        uscc_known_exception.push(m.uscc_known_exception);
        create_time_us.push(m.create_time_us);
        update_time_us.push(m.update_time_us);
        version.push(m.version);
        state_reason.push(m.state_reason);
        state_change_time_us.push(
            m.state_change_time_us
                .map(|t| t.to_string())
                .unwrap_or_default(),
        );
        state_effective_date.push(m.state_effective_date.unwrap_or_default());
    }
    vec![
        uscc.into(),
        display_name.into(),
        legal_representative.into(),
        established_date.into(),
        address.into(),
        division_code.into(),
        city.into(),
        zone.into(),
        technology_fields.into(),
        green_category.into(),
        state.into(),
        high_tech_certified.into(),
        leading.into(),
        uscc_known_exception.into(),
        create_time_us.into(),
        update_time_us.into(),
        version.into(),
        state_reason.into(),
        state_change_time_us.into(),
        state_effective_date.into(),
    ]
}
