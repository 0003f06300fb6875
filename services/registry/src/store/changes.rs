//! Storage behind enterprise status changes, bulk import and the change feed:
//!
//! - the migration that adds the status-change columns (`state_reason`, `state_change_time_us`,
//!   `state_effective_date`) to `enterprise`;
//! - the bulk writes an import batch makes (multi-row inserts, chunked under SQLite's limit on
//!   bound parameters);
//! - the change feed's reads of the audit log (`audit_event`), whose gap-free sequence is the
//!   registry's commit order.
//!
//! Never writes to the audit log: events are appended only by `qilu_common::write::WriteTx`.

use std::collections::HashMap;

use qilu_common::audit::{self, entity as audit_entity};
use sea_orm::entity::prelude::*;
use sea_orm::{DbBackend, QueryOrder, QuerySelect, Statement, TryIntoModel};
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

/// The `enterprise` columns, in table order, with their PostgreSQL types for
/// `json_to_recordset`. Quoted: `leading` is a reserved word in PostgreSQL.
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
    ("state_change_time_us", "bigint"),
    ("state_effective_date", "text"),
];

/// Inserts new enterprises in as few statements as the backend allows: on PostgreSQL one
/// statement per call, the rows travelling as one JSON parameter (`json_to_recordset`; binding
/// thousands of parameters costs more than the insert itself); elsewhere multi-row inserts of
/// `INSERT_CHUNK` rows.
pub async fn insert_enterprises(
    conn: &impl ConnectionTrait,
    enterprises: &[Enterprise],
) -> Result<(), DbErr> {
    if enterprises.is_empty() {
        return Ok(());
    }
    if conn.get_database_backend() == DbBackend::Postgres {
        let rows = enterprises
            .iter()
            .map(|e| {
                Ok(enterprise_json(
                    enterprise_store::to_active(e).try_into_model()?,
                ))
            })
            .collect::<Result<Vec<_>, DbErr>>()?;
        let names: Vec<String> = ENTERPRISE_COLUMNS
            .iter()
            .map(|(c, _)| format!("\"{c}\""))
            .collect();
        let typed: Vec<String> = ENTERPRISE_COLUMNS
            .iter()
            .map(|(c, t)| format!("\"{c}\" {t}"))
            .collect();
        let sql = format!(
            "INSERT INTO enterprise ({names}) SELECT {names} FROM json_to_recordset($1::json) AS t({typed})",
            names = names.join(", "),
            typed = typed.join(", "),
        );
        let json = serde_json::Value::Array(rows).to_string();
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [json.into()],
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

/// A row as `json_to_recordset` reads it (keys = column names).
fn enterprise_json(m: enterprise_store::Model) -> serde_json::Value {
    serde_json::json!({
        "uscc": m.uscc,
        "display_name": m.display_name,
        "legal_representative": m.legal_representative,
        "established_date": m.established_date,
        "address": m.address,
        "division_code": m.division_code,
        "city": m.city,
        "zone": m.zone,
        "technology_fields": m.technology_fields,
        "green_category": m.green_category,
        "state": m.state,
        "high_tech_certified": m.high_tech_certified,
        "leading": m.leading,
        "uscc_known_exception": m.uscc_known_exception,
        "create_time_us": m.create_time_us,
        "update_time_us": m.update_time_us,
        "version": m.version,
        "state_reason": m.state_reason,
        "state_change_time_us": m.state_change_time_us,
        "state_effective_date": m.state_effective_date,
    })
}

/// The newest committed sequence of the audit log (0 when empty). Events up to it are all
/// visible once it is: writers append under one lock and commit in sequence order.
pub async fn head_sequence(conn: &impl ConnectionTrait) -> Result<i64, DbErr> {
    Ok(audit::read_head(conn, false).await?.sequence)
}

/// Up to `limit` audit events with `after < sequence <= up_to`, in sequence order; only those
/// of `resource` when given.
pub async fn events_after(
    conn: &impl ConnectionTrait,
    after: i64,
    up_to: i64,
    resource: Option<&str>,
    limit: u64,
) -> Result<Vec<audit_entity::Model>, DbErr> {
    let mut query = audit_entity::Entity::find()
        .filter(audit_entity::Column::Sequence.gt(after))
        .filter(audit_entity::Column::Sequence.lte(up_to));
    if let Some(r) = resource {
        query = query.filter(audit_entity::Column::Resource.eq(r));
    }
    query
        .order_by_asc(audit_entity::Column::Sequence)
        .limit(limit)
        .all(conn)
        .await
}

/// The sequence of the first event of each of `resources` (its creation), by resource.
/// One grouped query over the `(resource, sequence)` index.
pub async fn first_sequences(
    conn: &impl ConnectionTrait,
    resources: &[String],
) -> Result<HashMap<String, i64>, DbErr> {
    if resources.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Option<i64>)> = audit_entity::Entity::find()
        .select_only()
        .column(audit_entity::Column::Resource)
        .column_as(audit_entity::Column::Sequence.min(), "first_sequence")
        .filter(audit_entity::Column::Resource.is_in(resources.iter().cloned()))
        .group_by(audit_entity::Column::Resource)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(r, s)| s.map(|s| (r, s)))
        .collect())
}
