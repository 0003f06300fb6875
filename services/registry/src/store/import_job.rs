//! Imports as stored (`api::imports`): the import itself (`import_job`: kind, state, counts and
//! the progress pointer `rows_processed`), its staged rows (`import_job_row`, each the row
//! message as the client sent it, encoded) and the verdicts of the rows processed so far
//! (`import_job_result`, each an encoded `ImportRowResult`).
//!
//! Rows are numbered by their position in the import (0-based, the order appended). The runner
//! writes a batch's verdicts and moves the pointer in the transaction of the batch's writes,
//! guarded on the pointer it read, so a batch is processed once however often the operation is
//! taken over. Never called with unvalidated input.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, QueryOrder, QuerySelect, TransactionTrait};
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, Index, MigrationName, MigrationTrait, SchemaManager, Table,
};

/// The `import_job` table.
pub mod job_entity {
    use sea_orm::entity::prelude::*;

    /// One import.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "import_job")]
    pub struct Model {
        /// The `{import}` of `imports/{import}`: a UUIDv7 (simple form), so ids sort by
        /// creation.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `ImportKind` number.
        pub kind: i32,
        /// Judge only, write nothing but verdicts.
        pub validate_only: bool,
        /// `ImportState` number.
        pub state: i32,
        /// Rows appended.
        pub rows_total: i64,
        /// Rows with their verdict: the progress pointer (positions below it are done).
        pub rows_processed: i64,
        /// Verdict counts of the processed rows.
        pub created_count: i64,
        /// See `created_count`.
        pub updated_count: i64,
        /// See `created_count`.
        pub unchanged_count: i64,
        /// See `created_count`.
        pub rejected_count: i64,
        /// `operations/registry-…` once started; empty before.
        pub operation: String,
        /// The creator's subject.
        pub creator: String,
        /// Audit sequence of the last change the import committed.
        pub last_sequence: Option<i64>,
        /// µs.
        pub create_time_us: i64,
        /// µs.
        pub update_time_us: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `import_job_row` table.
pub mod row_entity {
    use sea_orm::entity::prelude::*;

    /// One staged row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "import_job_row")]
    pub struct Model {
        /// The import's id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub import_id: String,
        /// Position in the import, from 0.
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i64,
        /// The row message (of the import's kind), encoded as sent.
        pub row: Vec<u8>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `import_job_result` table.
pub mod result_entity {
    use sea_orm::entity::prelude::*;

    /// The verdict of one processed row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "import_job_result")]
    pub struct Model {
        /// The import's id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub import_id: String,
        /// The row's position.
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i64,
        /// `ImportRowOutcome` number (for the outcome filter).
        pub outcome: i32,
        /// The `ImportRowResult`, encoded.
        pub result: Vec<u8>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use job_entity::Model as Job;

/// Inserts a new import.
pub async fn insert(db: &impl ConnectionTrait, job: Job) -> Result<(), DbErr> {
    job_entity::Entity::insert(job_entity::ActiveModel::from(job))
        .exec(db)
        .await?;
    Ok(())
}

/// The import with this id.
pub async fn get(db: &impl ConnectionTrait, id: &str) -> Result<Option<Job>, DbErr> {
    job_entity::Entity::find_by_id(id.to_string()).one(db).await
}

/// What `ListImports` may filter on.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    /// `ImportState` number.
    pub state: Option<i32>,
    /// `ImportKind` number.
    pub kind: Option<i32>,
    /// Creator subject.
    pub creator: Option<String>,
}

/// Up to `limit` imports matching `filter`, newest first, after the id `before` (exclusive).
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &ListFilter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Job>, DbErr> {
    use job_entity::Column;
    let mut q = job_entity::Entity::find();
    if let Some(state) = filter.state {
        q = q.filter(Column::State.eq(state));
    }
    if let Some(kind) = filter.kind {
        q = q.filter(Column::Kind.eq(kind));
    }
    if let Some(creator) = &filter.creator {
        q = q.filter(Column::Creator.eq(creator.as_str()));
    }
    if let Some(before) = before {
        q = q.filter(Column::Id.lt(before));
    }
    q.order_by_desc(Column::Id).limit(limit).all(db).await
}

/// The encoded staged rows of `import_id` at positions `from..to`, in order.
pub async fn rows(
    db: &impl ConnectionTrait,
    import_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Vec<u8>>, DbErr> {
    use row_entity::Column;
    Ok(row_entity::Entity::find()
        .filter(Column::ImportId.eq(import_id))
        .filter(Column::Position.gte(from))
        .filter(Column::Position.lt(to))
        .order_by_asc(Column::Position)
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.row)
        .collect())
}

/// How an append ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// The rows are stored; `rows_total` moved.
    Stored,
    /// The import was no longer STAGING, or another append moved `rows_total` first.
    Lost,
}

/// Appends `rows` at `rows_total` (which must still be `from`), in one transaction: the import's
/// count moves first (taking the write lock at once on SQLite), guarded on the state and the
/// count read, then the rows go in.
pub async fn append(
    db: &DatabaseConnection,
    import_id: &str,
    staging: i32,
    from: i64,
    rows: Vec<Vec<u8>>,
    now_us: i64,
) -> Result<Appended, DbErr> {
    use job_entity::Column;
    if rows.is_empty() {
        return Ok(Appended::Stored);
    }
    let to = from + rows.len() as i64;
    let tx = db.begin().await?;
    let moved = job_entity::Entity::update_many()
        .col_expr(Column::RowsTotal, Expr::value(to))
        .col_expr(Column::UpdateTimeUs, Expr::value(now_us))
        .filter(Column::Id.eq(import_id))
        .filter(Column::State.eq(staging))
        .filter(Column::RowsTotal.eq(from))
        .exec(&tx)
        .await?;
    if moved.rows_affected == 0 {
        tx.rollback().await?;
        return Ok(Appended::Lost);
    }
    let models = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| row_entity::ActiveModel {
            import_id: Set(import_id.to_string()),
            position: Set(from + i as i64),
            row: Set(row),
        });
    row_entity::Entity::insert_many(models).exec(&tx).await?;
    tx.commit().await?;
    Ok(Appended::Stored)
}

/// Moves a STAGING import to `to` (RUNNING), guarded on its state: false when it was not
/// STAGING any more.
pub async fn set_state_from(
    db: &impl ConnectionTrait,
    import_id: &str,
    from: i32,
    to: i32,
    now_us: i64,
) -> Result<bool, DbErr> {
    use job_entity::Column;
    let moved = job_entity::Entity::update_many()
        .col_expr(Column::State, Expr::value(to))
        .col_expr(Column::UpdateTimeUs, Expr::value(now_us))
        .filter(Column::Id.eq(import_id))
        .filter(Column::State.eq(from))
        .exec(db)
        .await?;
    Ok(moved.rows_affected > 0)
}

/// Records the operation running the import.
pub async fn set_operation(
    db: &impl ConnectionTrait,
    import_id: &str,
    operation: &str,
) -> Result<(), DbErr> {
    use job_entity::Column;
    job_entity::Entity::update_many()
        .col_expr(Column::Operation, Expr::value(operation))
        .filter(Column::Id.eq(import_id))
        .exec(db)
        .await?;
    Ok(())
}

/// One processed batch: its verdicts and where the pointer and counts move.
#[derive(Debug)]
pub struct Batch {
    /// The pointer the batch started from (the guard).
    pub from: i64,
    /// `(position, outcome, encoded result)` of each row of the batch.
    pub results: Vec<(i64, i32, Vec<u8>)>,
    /// The counts after the batch.
    pub counts: [i64; 4],
    /// The last change committed so far, if any.
    pub last_sequence: Option<i64>,
}

/// Stores a batch's verdicts and moves the pointer past it, in the caller's transaction (the
/// batch's write): false, writing nothing, when the pointer is no longer `batch.from` (another
/// run processed the batch first); the caller then drops the transaction.
pub async fn record_batch(
    conn: &impl ConnectionTrait,
    import_id: &str,
    batch: Batch,
    now_us: i64,
) -> Result<bool, DbErr> {
    use job_entity::Column;
    let to = batch.from + batch.results.len() as i64;
    let [created, updated, unchanged, rejected] = batch.counts;
    let moved = job_entity::Entity::update_many()
        .col_expr(Column::RowsProcessed, Expr::value(to))
        .col_expr(Column::CreatedCount, Expr::value(created))
        .col_expr(Column::UpdatedCount, Expr::value(updated))
        .col_expr(Column::UnchangedCount, Expr::value(unchanged))
        .col_expr(Column::RejectedCount, Expr::value(rejected))
        .col_expr(Column::LastSequence, Expr::value(batch.last_sequence))
        .col_expr(Column::UpdateTimeUs, Expr::value(now_us))
        .filter(Column::Id.eq(import_id))
        .filter(Column::RowsProcessed.eq(batch.from))
        .exec(conn)
        .await?;
    if moved.rows_affected == 0 {
        return Ok(false);
    }
    if batch.results.is_empty() {
        return Ok(true);
    }
    let models = batch
        .results
        .into_iter()
        .map(|(position, outcome, result)| result_entity::ActiveModel {
            import_id: Set(import_id.to_string()),
            position: Set(position),
            outcome: Set(outcome),
            result: Set(result),
        });
    result_entity::Entity::insert_many(models)
        .exec(conn)
        .await?;
    Ok(true)
}

/// Ends a RUNNING import in `state` (SUCCEEDED, FAILED, CANCELLED); false when it was not
/// RUNNING (already ended).
pub async fn finish(
    db: &impl ConnectionTrait,
    import_id: &str,
    running: i32,
    state: i32,
    now_us: i64,
) -> Result<bool, DbErr> {
    set_state_from(db, import_id, running, state, now_us).await
}

/// Up to `limit` verdicts of `import_id` after position `after` (exclusive), in position order,
/// optionally of one outcome: `(position, encoded result)`.
pub async fn results(
    db: &impl ConnectionTrait,
    import_id: &str,
    outcome: Option<i32>,
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<(i64, Vec<u8>)>, DbErr> {
    use result_entity::Column;
    let mut q = result_entity::Entity::find().filter(Column::ImportId.eq(import_id));
    if let Some(outcome) = outcome {
        q = q.filter(Column::Outcome.eq(outcome));
    }
    if let Some(after) = after {
        q = q.filter(Column::Position.gt(after));
    }
    Ok(q.order_by_asc(Column::Position)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.position, m.result))
        .collect())
}

/// The registry's migrations of imports.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateImportJobs)]
}

struct CreateImportJobs;

impl MigrationName for CreateImportJobs {
    fn name(&self) -> &str {
        "m20261209_000100_registry_import_jobs"
    }
}

#[derive(DeriveIden)]
enum ImportJob {
    Table,
    Id,
    Kind,
    ValidateOnly,
    State,
    RowsTotal,
    RowsProcessed,
    CreatedCount,
    UpdatedCount,
    UnchangedCount,
    RejectedCount,
    Operation,
    Creator,
    LastSequence,
    CreateTimeUs,
    UpdateTimeUs,
}

#[derive(DeriveIden)]
enum ImportJobRow {
    Table,
    ImportId,
    Position,
    Row,
}

#[derive(DeriveIden)]
enum ImportJobResult {
    Table,
    ImportId,
    Position,
    Outcome,
    Result,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateImportJobs {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let counter = |c| ColumnDef::new(c).big_integer().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(ImportJob::Table)
                    .col(
                        ColumnDef::new(ImportJob::Id)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ImportJob::Kind).integer().not_null())
                    .col(ColumnDef::new(ImportJob::ValidateOnly).boolean().not_null())
                    .col(ColumnDef::new(ImportJob::State).integer().not_null())
                    .col(counter(ImportJob::RowsTotal))
                    .col(counter(ImportJob::RowsProcessed))
                    .col(counter(ImportJob::CreatedCount))
                    .col(counter(ImportJob::UpdatedCount))
                    .col(counter(ImportJob::UnchangedCount))
                    .col(counter(ImportJob::RejectedCount))
                    .col(ColumnDef::new(ImportJob::Operation).text().not_null())
                    .col(ColumnDef::new(ImportJob::Creator).text().not_null())
                    .col(ColumnDef::new(ImportJob::LastSequence).big_integer().null())
                    .col(counter(ImportJob::CreateTimeUs))
                    .col(counter(ImportJob::UpdateTimeUs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImportJobRow::Table)
                    .col(ColumnDef::new(ImportJobRow::ImportId).text().not_null())
                    .col(
                        ColumnDef::new(ImportJobRow::Position)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ImportJobRow::Row).blob().not_null())
                    .primary_key(
                        Index::create()
                            .col(ImportJobRow::ImportId)
                            .col(ImportJobRow::Position),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImportJobResult::Table)
                    .col(ColumnDef::new(ImportJobResult::ImportId).text().not_null())
                    .col(
                        ColumnDef::new(ImportJobResult::Position)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ImportJobResult::Outcome)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ImportJobResult::Result).blob().not_null())
                    .primary_key(
                        Index::create()
                            .col(ImportJobResult::ImportId)
                            .col(ImportJobResult::Position),
                    )
                    .to_owned(),
            )
            .await?;
        // `ListImportRowResults` with an outcome filter (the rejected rows of a report).
        manager
            .create_index(
                Index::create()
                    .name("import_job_result_outcome")
                    .table(ImportJobResult::Table)
                    .col(ImportJobResult::ImportId)
                    .col(ImportJobResult::Outcome)
                    .col(ImportJobResult::Position)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ImportJobResult::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ImportJobRow::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ImportJob::Table).to_owned())
            .await
    }
}
