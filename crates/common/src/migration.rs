//! Tables every service database has: the audit log, its head, and idempotency records. Each
//! service's migrator lists these first, then its own.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, Value};
use sea_orm_migration::prelude::*;

use crate::idempotency::{CallerScope, UNATTRIBUTED};

/// The common migrations, in order.
pub fn common_migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(CreateAuditAndIdempotency),
        Box::new(ScopeIdempotencyToCaller),
    ]
}

/// Common migrations added after a service's own first migrations: each migrator lists these
/// last, so a database made by an earlier release runs them after everything it already has.
pub fn later_common_migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(AddPublishedState), Box::new(CreateOperations)]
}

/// Creates `operation`: the service's long-running operations (AIP-151), kept in its own
/// database so that they survive a restart and any replica can answer for them
/// (`crate::operations`).
pub struct CreateOperations;

impl MigrationName for CreateOperations {
    fn name(&self) -> &str {
        "m20261208_000001_common_operations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOperations {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Operation::Table)
                    .col(
                        ColumnDef::new(Operation::Name)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Operation::Kind).text().not_null())
                    .col(ColumnDef::new(Operation::Target).text().not_null())
                    .col(ColumnDef::new(Operation::CallerSubject).text().not_null())
                    .col(ColumnDef::new(Operation::CallerRoles).text().not_null())
                    .col(ColumnDef::new(Operation::CallerEnterprise).text().null())
                    .col(ColumnDef::new(Operation::CallerExpert).text().null())
                    .col(
                        ColumnDef::new(Operation::RequestKey)
                            .text()
                            .null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Operation::Request).blob().not_null())
                    .col(ColumnDef::new(Operation::MetadataType).text().not_null())
                    .col(ColumnDef::new(Operation::Metadata).blob().not_null())
                    .col(ColumnDef::new(Operation::Done).boolean().not_null())
                    .col(ColumnDef::new(Operation::ResponseType).text().not_null())
                    .col(ColumnDef::new(Operation::Response).blob().null())
                    .col(ColumnDef::new(Operation::Error).blob().null())
                    .col(
                        ColumnDef::new(Operation::CancelRequested)
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Operation::Attempts).integer().not_null())
                    .col(ColumnDef::new(Operation::LeaseOwner).text().not_null())
                    .col(
                        ColumnDef::new(Operation::LeaseUntilUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Operation::CreateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Operation::UpdateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The executor's poll: unfinished operations whose lease has lapsed.
        manager
            .create_index(
                Index::create()
                    .name("operation_pending")
                    .table(Operation::Table)
                    .col(Operation::Done)
                    .col(Operation::LeaseUntilUs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Operation::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Operation {
    Table,
    Name,
    Kind,
    Target,
    CallerSubject,
    CallerRoles,
    CallerEnterprise,
    CallerExpert,
    RequestKey,
    Request,
    MetadataType,
    Metadata,
    Done,
    ResponseType,
    Response,
    Error,
    CancelRequested,
    Attempts,
    LeaseOwner,
    LeaseUntilUs,
    CreateTimeUs,
    UpdateTimeUs,
}

/// Adds the published state to `audit_event` (`state_type`, `state_proto`): the resource as its
/// service publishes it, which the change feeds serve. Existing events keep an empty type and
/// NULL bytes, and hash as they did.
pub struct AddPublishedState;

impl MigrationName for AddPublishedState {
    fn name(&self) -> &str {
        "m20261207_000001_common_audit_published_state"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddPublishedState {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        for column in [
            ColumnDef::new(AuditEvent::StateType)
                .text()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(AuditEvent::StateProto)
                .blob()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvent::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [AuditEvent::StateType, AuditEvent::StateProto] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvent::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Creates `audit_event`, `audit_head` (seeded with the empty chain) and `idempotency`.
pub struct CreateAuditAndIdempotency;

impl MigrationName for CreateAuditAndIdempotency {
    fn name(&self) -> &str {
        "m20261128_000001_common_audit_idempotency"
    }
}

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Sequence,
    CommitTimeUs,
    Actor,
    ActorRoles,
    Method,
    Resource,
    RequestId,
    StateJson,
    PreviousHash,
    Hash,
    StateType,
    StateProto,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    Id,
    Sequence,
    Hash,
}

#[derive(DeriveIden)]
enum Idempotency {
    Table,
    RequestId,
    Method,
    Fingerprint,
    Response,
    CreatedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAuditAndIdempotency {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvent::Table)
                    .col(
                        ColumnDef::new(AuditEvent::Sequence)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuditEvent::CommitTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvent::Actor).text().not_null())
                    .col(ColumnDef::new(AuditEvent::ActorRoles).text().not_null())
                    .col(ColumnDef::new(AuditEvent::Method).text().not_null())
                    .col(ColumnDef::new(AuditEvent::Resource).text().not_null())
                    .col(ColumnDef::new(AuditEvent::RequestId).text().not_null())
                    .col(ColumnDef::new(AuditEvent::StateJson).text().not_null())
                    .col(ColumnDef::new(AuditEvent::PreviousHash).text().not_null())
                    .col(ColumnDef::new(AuditEvent::Hash).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_event_resource")
                    .table(AuditEvent::Table)
                    .col(AuditEvent::Resource)
                    .col(AuditEvent::Sequence)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_event_actor")
                    .table(AuditEvent::Table)
                    .col(AuditEvent::Actor)
                    .col(AuditEvent::Sequence)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditHead::Table)
                    .col(
                        ColumnDef::new(AuditHead::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditHead::Sequence).big_integer().not_null())
                    .col(ColumnDef::new(AuditHead::Hash).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AuditHead::Table)
                    .columns([AuditHead::Id, AuditHead::Sequence, AuditHead::Hash])
                    .values_panic([1.into(), 0i64.into(), crate::audit::GENESIS_HASH.into()])
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Idempotency::Table)
                    .col(
                        ColumnDef::new(Idempotency::RequestId)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Idempotency::Method).text().not_null())
                    .col(ColumnDef::new(Idempotency::Fingerprint).text().not_null())
                    .col(ColumnDef::new(Idempotency::Response).blob().not_null())
                    .col(
                        ColumnDef::new(Idempotency::CreatedAtUs)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Idempotency::Table.into_iden(),
            AuditHead::Table.into_iden(),
            AuditEvent::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Re-keys `idempotency` from `request_id` alone to (`caller_scope`, `request_id`), so that one
/// caller's request id never replays for another (see `idempotency::CallerScope`).
///
/// Both backends get the same steps, in one transaction: create `idempotency_scoped`, copy
/// every record with its owner, drop the old table, rename the new one. (SQLite cannot change
/// a primary key in place.) The owner comes from the audit log: the events committed with the
/// record carry its `request_id`, `method`, `actor` and `actor_roles`. A record is attributed
/// when exactly one (actor, roles) committed events under its request id and method, and that
/// actor held a staff role (admin, officer, auditor, service): staff tokens carry no
/// enterprise or expert claim, so the scope is (actor, roles, none, none). Everything else —
/// enterprise and expert callers (the audit log does not keep the claim that scoped them),
/// records with no matching event (imports commit their batches under the call's
/// `x-request-id`) or with several actors — is kept under [`UNATTRIBUTED`]: never replayed, so
/// a retry of such a request after the upgrade runs again as a fresh request, through every
/// check. A staff token that did carry a claim likewise just runs fresh. Nothing is ever
/// replayed to a caller it does not belong to.
pub struct ScopeIdempotencyToCaller;

impl MigrationName for ScopeIdempotencyToCaller {
    fn name(&self) -> &str {
        "m20261202_000001_common_idempotency_caller_scope"
    }
}

#[derive(DeriveIden)]
enum IdempotencyScoped {
    Table,
    CallerScope,
}

/// Temporary index for the backfill's lookups, dropped at the end.
const BACKFILL_INDEX: &str = "audit_event_request_id_backfill";
/// Records copied per round trip.
const BACKFILL_BATCH: u64 = 500;

/// Staff roles: callers whose tokens carry no enterprise or expert scoping.
const STAFF_ROLES: [&str; 4] = ["admin", "officer", "auditor", "service"];

fn scoped_table() -> TableCreateStatement {
    Table::create()
        .table(IdempotencyScoped::Table)
        .col(
            ColumnDef::new(IdempotencyScoped::CallerScope)
                .text()
                .not_null(),
        )
        .col(ColumnDef::new(Idempotency::RequestId).text().not_null())
        .col(ColumnDef::new(Idempotency::Method).text().not_null())
        .col(ColumnDef::new(Idempotency::Fingerprint).text().not_null())
        .col(ColumnDef::new(Idempotency::Response).blob().not_null())
        .col(
            ColumnDef::new(Idempotency::CreatedAtUs)
                .big_integer()
                .not_null(),
        )
        .primary_key(
            Index::create()
                .col(IdempotencyScoped::CallerScope)
                .col(Idempotency::RequestId),
        )
        .to_owned()
}

/// The owner of a record committed by `actors` (distinct (actor, actor_roles) pairs of its
/// events), or [`UNATTRIBUTED`].
fn attribute(actors: Option<&BTreeSet<(String, String)>>) -> String {
    match actors.map(|a| a.iter().collect::<Vec<_>>()).as_deref() {
        Some([(actor, roles)]) if roles.split(',').any(|r| STAFF_ROLES.contains(&r)) => {
            CallerScope::from_parts(actor, roles.split(','), None, None)
                .as_str()
                .to_string()
        }
        _ => UNATTRIBUTED.to_string(),
    }
}

fn text(row: &sea_orm::QueryResult, column: &str) -> Result<String, DbErr> {
    row.try_get::<String>("", column)
}

#[async_trait::async_trait]
impl MigrationTrait for ScopeIdempotencyToCaller {
    fn use_transaction(&self) -> Option<bool> {
        // All or nothing on SQLite too: never a half-copied table.
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager.create_table(scoped_table()).await?;
        manager
            .create_index(
                Index::create()
                    .name(BACKFILL_INDEX)
                    .table(AuditEvent::Table)
                    .col(AuditEvent::RequestId)
                    .to_owned(),
            )
            .await?;
        let mut after: Option<String> = None;
        loop {
            let mut page = Query::select();
            page.columns([
                Idempotency::RequestId,
                Idempotency::Method,
                Idempotency::Fingerprint,
                Idempotency::Response,
                Idempotency::CreatedAtUs,
            ])
            .from(Idempotency::Table)
            .order_by(Idempotency::RequestId, Order::Asc)
            .limit(BACKFILL_BATCH);
            if let Some(after) = &after {
                page.and_where(Expr::col(Idempotency::RequestId).gt(after.as_str()));
            }
            let rows = db.query_all(&page).await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = Some(text(last, "request_id")?);
            let ids: Vec<String> = rows
                .iter()
                .map(|r| text(r, "request_id"))
                .collect::<Result<_, _>>()?;
            let events = db
                .query_all(
                    Query::select()
                        .distinct()
                        .columns([
                            AuditEvent::RequestId,
                            AuditEvent::Method,
                            AuditEvent::Actor,
                            AuditEvent::ActorRoles,
                        ])
                        .from(AuditEvent::Table)
                        .and_where(Expr::col(AuditEvent::RequestId).is_in(ids)),
                )
                .await?;
            let mut actors: BTreeMap<(String, String), BTreeSet<(String, String)>> =
                BTreeMap::new();
            for e in &events {
                actors
                    .entry((text(e, "request_id")?, text(e, "method")?))
                    .or_default()
                    .insert((text(e, "actor")?, text(e, "actor_roles")?));
            }
            let mut insert = Query::insert();
            insert.into_table(IdempotencyScoped::Table).columns([
                IdempotencyScoped::CallerScope.into_iden(),
                Idempotency::RequestId.into_iden(),
                Idempotency::Method.into_iden(),
                Idempotency::Fingerprint.into_iden(),
                Idempotency::Response.into_iden(),
                Idempotency::CreatedAtUs.into_iden(),
            ]);
            for r in &rows {
                let request_id = text(r, "request_id")?;
                let method = text(r, "method")?;
                let scope = attribute(actors.get(&(request_id.clone(), method.clone())));
                let values: Vec<Value> = vec![
                    scope.into(),
                    request_id.into(),
                    method.into(),
                    text(r, "fingerprint")?.into(),
                    r.try_get::<Vec<u8>>("", "response")?.into(),
                    r.try_get::<i64>("", "created_at_us")?.into(),
                ];
                insert
                    .values(values.into_iter().map(SimpleExpr::from))
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
            }
            db.execute(&insert).await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name(BACKFILL_INDEX)
                    .table(AuditEvent::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Idempotency::Table).to_owned())
            .await?;
        manager
            .rename_table(
                Table::rename()
                    .table(IdempotencyScoped::Table, Idempotency::Table)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Back to one record per request id: unattributed records are dropped, and of several
        // callers' records under one id the first scope's is kept (the old schema cannot hold
        // more, and it replays to anyone — the reason this migration exists).
        let db = manager.get_connection();
        manager
            .rename_table(
                Table::rename()
                    .table(Idempotency::Table, IdempotencyScoped::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Idempotency::Table)
                    .col(
                        ColumnDef::new(Idempotency::RequestId)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Idempotency::Method).text().not_null())
                    .col(ColumnDef::new(Idempotency::Fingerprint).text().not_null())
                    .col(ColumnDef::new(Idempotency::Response).blob().not_null())
                    .col(
                        ColumnDef::new(Idempotency::CreatedAtUs)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "INSERT INTO idempotency (request_id, method, fingerprint, response, created_at_us) \
             SELECT request_id, method, fingerprint, response, created_at_us \
             FROM idempotency_scoped s \
             WHERE caller_scope <> 'unattributed' AND caller_scope = \
               (SELECT MIN(caller_scope) FROM idempotency_scoped t \
                WHERE t.request_id = s.request_id AND t.caller_scope <> 'unattributed')",
        )
        .await?;
        manager
            .drop_table(Table::drop().table(IdempotencyScoped::Table).to_owned())
            .await?;
        Ok(())
    }
}
