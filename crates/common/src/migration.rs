//! Tables every service database has: the audit log, its head, and idempotency records. Each
//! service's migrator lists these first, then its own.

use sea_orm_migration::prelude::*;

/// The common migrations, in order.
pub fn common_migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateAuditAndIdempotency)]
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
