//! The registry's migrations: the common tables first, then its own.

use sea_orm_migration::prelude::*;

/// All registry migrations, in order.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = qilu_common::migration::common_migrations();
        all.push(Box::new(CreateEnterprise));
        all.extend(super::figures::migrations());
        all.extend(super::policy::migrations());
        all.extend(super::zones::migrations());
        all.extend(super::certificate::migrations());
        all.extend(super::leading::migrations());
        all.extend(super::changes::migrations());
        all.extend(qilu_common::migration::later_common_migrations());
        all.extend(super::import_job::migrations());
        all
    }
}

/// Creates the `enterprise` table.
struct CreateEnterprise;

impl MigrationName for CreateEnterprise {
    fn name(&self) -> &str {
        "m20261128_000100_registry_enterprise"
    }
}

#[derive(DeriveIden)]
enum Enterprise {
    Table,
    Uscc,
    DisplayName,
    LegalRepresentative,
    EstablishedDate,
    Address,
    DivisionCode,
    City,
    Zone,
    TechnologyFields,
    GreenCategory,
    State,
    HighTechCertified,
    Leading,
    UsccKnownException,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEnterprise {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Enterprise::Table)
                    .col(
                        ColumnDef::new(Enterprise::Uscc)
                            .string_len(18)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Enterprise::DisplayName).text().not_null())
                    .col(
                        ColumnDef::new(Enterprise::LegalRepresentative)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Enterprise::EstablishedDate)
                            .string_len(10)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Enterprise::Address).text().not_null())
                    .col(
                        ColumnDef::new(Enterprise::DivisionCode)
                            .string_len(6)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Enterprise::City).text().not_null())
                    .col(ColumnDef::new(Enterprise::Zone).text().not_null())
                    .col(
                        ColumnDef::new(Enterprise::TechnologyFields)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Enterprise::GreenCategory)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Enterprise::State).integer().not_null())
                    .col(
                        ColumnDef::new(Enterprise::HighTechCertified)
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Enterprise::Leading).boolean().not_null())
                    .col(
                        ColumnDef::new(Enterprise::UsccKnownException)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Enterprise::CreateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Enterprise::UpdateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Enterprise::Version).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("enterprise_display_name", Enterprise::DisplayName),
            ("enterprise_city", Enterprise::City),
            ("enterprise_zone", Enterprise::Zone),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Enterprise::Table)
                        .col(col)
                        .col(Enterprise::Uscc)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Enterprise::Table).to_owned())
            .await
    }
}
