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
use sea_orm::{QueryOrder, QuerySelect};
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

/// Inserts new enterprises with multi-row inserts (one statement per `INSERT_CHUNK` rows).
pub async fn insert_enterprises(
    conn: &impl ConnectionTrait,
    enterprises: &[Enterprise],
) -> Result<(), DbErr> {
    for chunk in enterprises.chunks(INSERT_CHUNK) {
        enterprise_store::Entity::insert_many(chunk.iter().map(enterprise_store::to_active))
            .exec(conn)
            .await?;
    }
    Ok(())
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
