//! The awards migrations: the common tables first, then programs, applications, allocation
//! revisions and objections. Only portable column types (text, integer, big integer), so the
//! same migrations run on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

/// All awards migrations, in order.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = qilu_common::migration::common_migrations();
        all.push(Box::new(CreateAwardTables));
        all.extend(super::ceiling::migrations());
        all.extend(qilu_common::migration::later_common_migrations());
        all.push(Box::new(CreateAllocationEntries));
        all
    }
}

/// `award_allocation_entry`: an allocation revision's entries as rows, so that 100,000 of them
/// are paged (`ListAllocationEntries`) rather than parsed out of one document.
struct CreateAllocationEntries;

impl MigrationName for CreateAllocationEntries {
    fn name(&self) -> &str {
        "m20261208_000100_awards_allocation_entries"
    }
}

#[derive(DeriveIden)]
enum AwardAllocationEntry {
    Table,
    ProgramId,
    Revision,
    Position,
    Outcome,
    Category,
    Grade,
    IndustryField,
    Pool,
    Doc,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAllocationEntries {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use AwardAllocationEntry as E;
        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .col(ColumnDef::new(E::ProgramId).text().not_null())
                    .col(ColumnDef::new(E::Revision).integer().not_null())
                    .col(ColumnDef::new(E::Position).integer().not_null())
                    .col(ColumnDef::new(E::Outcome).integer().not_null())
                    .col(ColumnDef::new(E::Category).integer().not_null())
                    .col(ColumnDef::new(E::Grade).integer().not_null())
                    .col(ColumnDef::new(E::IndustryField).integer().not_null())
                    .col(ColumnDef::new(E::Pool).text().not_null())
                    .col(ColumnDef::new(E::Doc).text().not_null())
                    .primary_key(
                        Index::create()
                            .col(E::ProgramId)
                            .col(E::Revision)
                            .col(E::Position),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AwardAllocationEntry::Table).to_owned())
            .await
    }
}

struct CreateAwardTables;

impl MigrationName for CreateAwardTables {
    fn name(&self) -> &str {
        "m20261205_000100_awards_tables"
    }
}

#[derive(DeriveIden)]
enum AwardProgram {
    Table,
    Id,
    Kind,
    Year,
    State,
    DisplayName,
    Doc,
    Version,
}

#[derive(DeriveIden)]
enum AwardApplication {
    Table,
    Id,
    ProgramId,
    Uscc,
    AchievementId,
    IndustryField,
    Category,
    Grade,
    State,
    Outcome,
    Rank,
    ScoreMillipoints,
    CreateTimeUs,
    Doc,
    Version,
}

#[derive(DeriveIden)]
enum AwardAllocation {
    Table,
    ProgramId,
    Revision,
    Doc,
}

#[derive(DeriveIden)]
enum AwardObjection {
    Table,
    Id,
    ProgramId,
    ApplicationId,
    Objector,
    State,
    Resolution,
    CreateTimeUs,
    Doc,
    Version,
}

fn text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).text().not_null().to_owned()
}
fn int(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).integer().not_null().to_owned()
}
fn big(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}
fn key(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string_len(64).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAwardTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AwardProgram::Table)
                    .col(key(AwardProgram::Id).primary_key())
                    .col(int(AwardProgram::Kind))
                    .col(int(AwardProgram::Year))
                    .col(int(AwardProgram::State))
                    .col(text(AwardProgram::DisplayName))
                    .col(text(AwardProgram::Doc))
                    .col(big(AwardProgram::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("award_program_year")
                    .table(AwardProgram::Table)
                    .col(AwardProgram::Year)
                    .col(AwardProgram::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AwardApplication::Table)
                    .col(key(AwardApplication::Id).primary_key())
                    .col(key(AwardApplication::ProgramId))
                    .col(key(AwardApplication::Uscc))
                    .col(key(AwardApplication::AchievementId))
                    .col(int(AwardApplication::IndustryField))
                    .col(int(AwardApplication::Category))
                    .col(int(AwardApplication::Grade))
                    .col(int(AwardApplication::State))
                    .col(int(AwardApplication::Outcome))
                    .col(int(AwardApplication::Rank))
                    .col(big(AwardApplication::ScoreMillipoints))
                    .col(big(AwardApplication::CreateTimeUs))
                    .col(text(AwardApplication::Doc))
                    .col(big(AwardApplication::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("award_application_one_per_achievement")
                    .table(AwardApplication::Table)
                    .col(AwardApplication::ProgramId)
                    .col(AwardApplication::AchievementId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("award_application_program_time")
                    .table(AwardApplication::Table)
                    .col(AwardApplication::ProgramId)
                    .col(AwardApplication::CreateTimeUs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AwardAllocation::Table)
                    .col(key(AwardAllocation::ProgramId))
                    .col(int(AwardAllocation::Revision))
                    .col(text(AwardAllocation::Doc))
                    .primary_key(
                        Index::create()
                            .col(AwardAllocation::ProgramId)
                            .col(AwardAllocation::Revision),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AwardObjection::Table)
                    .col(key(AwardObjection::Id).primary_key())
                    .col(key(AwardObjection::ProgramId))
                    .col(key(AwardObjection::ApplicationId))
                    .col(text(AwardObjection::Objector))
                    .col(int(AwardObjection::State))
                    .col(int(AwardObjection::Resolution))
                    .col(big(AwardObjection::CreateTimeUs))
                    .col(text(AwardObjection::Doc))
                    .col(big(AwardObjection::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("award_objection_program_time")
                    .table(AwardObjection::Table)
                    .col(AwardObjection::ProgramId)
                    .col(AwardObjection::CreateTimeUs)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            AwardObjection::Table.into_iden(),
            AwardAllocation::Table.into_iden(),
            AwardApplication::Table.into_iden(),
            AwardProgram::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}
