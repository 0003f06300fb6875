//! The schema of leading cohorts, members and support policies, created once.

use sea_orm::DbErr;
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, Index, MigrationName, MigrationTrait, SchemaManager, Table, async_trait,
};

/// The leading-cohort and support-policy migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateLeading)]
}

struct CreateLeading;

impl MigrationName for CreateLeading {
    fn name(&self) -> &str {
        "m20261128_000460_registry_leading_cohorts_and_support_policies"
    }
}

#[derive(DeriveIden)]
enum LeadingCohort {
    Table,
    Year,
    Description,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

#[derive(DeriveIden)]
enum LeadingCohortMember {
    Table,
    Year,
    Uscc,
    State,
    RankingJson,
    SelectReason,
    SelectedBy,
    SelectTimeUs,
    DeselectReason,
    DeselectTimeUs,
    SupportPolicy,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

#[derive(DeriveIden)]
enum SupportPolicyT {
    #[sea_orm(iden = "support_policy")]
    Table,
    Uscc,
    Year,
    Title,
    Summary,
    MeasuresJson,
    ResponsibleOfficer,
    ResponsibleOfficerName,
    State,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

#[derive(DeriveIden)]
enum SupportPolicyMilestone {
    Table,
    Uscc,
    Year,
    MilestoneId,
    Position,
    Title,
    DueDate,
    State,
    CompletedDate,
    Note,
}

#[derive(DeriveIden)]
enum SupportPolicyReview {
    Table,
    Uscc,
    Year,
    Sequence,
    Conclusion,
    Comment,
    Reviewer,
    ReviewTimeUs,
}

fn big(c: impl sea_orm::Iden + 'static) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}

fn int(c: impl sea_orm::Iden + 'static) -> ColumnDef {
    ColumnDef::new(c).integer().not_null().to_owned()
}

fn text(c: impl sea_orm::Iden + 'static) -> ColumnDef {
    ColumnDef::new(c).text().not_null().to_owned()
}

fn uscc_col(c: impl sea_orm::Iden + 'static) -> ColumnDef {
    ColumnDef::new(c).string_len(18).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateLeading {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LeadingCohort::Table)
                    .col(
                        ColumnDef::new(LeadingCohort::Year)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(LeadingCohort::Description))
                    .col(big(LeadingCohort::CreateTimeUs))
                    .col(big(LeadingCohort::UpdateTimeUs))
                    .col(big(LeadingCohort::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LeadingCohortMember::Table)
                    .col(int(LeadingCohortMember::Year))
                    .col(uscc_col(LeadingCohortMember::Uscc))
                    .col(int(LeadingCohortMember::State))
                    .col(text(LeadingCohortMember::RankingJson))
                    .col(text(LeadingCohortMember::SelectReason))
                    .col(text(LeadingCohortMember::SelectedBy))
                    .col(big(LeadingCohortMember::SelectTimeUs))
                    .col(text(LeadingCohortMember::DeselectReason))
                    .col(big(LeadingCohortMember::DeselectTimeUs))
                    .col(text(LeadingCohortMember::SupportPolicy))
                    .col(big(LeadingCohortMember::CreateTimeUs))
                    .col(big(LeadingCohortMember::UpdateTimeUs))
                    .col(big(LeadingCohortMember::Version))
                    .primary_key(
                        Index::create()
                            .col(LeadingCohortMember::Year)
                            .col(LeadingCohortMember::Uscc),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SupportPolicyT::Table)
                    .col(uscc_col(SupportPolicyT::Uscc))
                    .col(int(SupportPolicyT::Year))
                    .col(text(SupportPolicyT::Title))
                    .col(text(SupportPolicyT::Summary))
                    .col(text(SupportPolicyT::MeasuresJson))
                    .col(text(SupportPolicyT::ResponsibleOfficer))
                    .col(text(SupportPolicyT::ResponsibleOfficerName))
                    .col(int(SupportPolicyT::State))
                    .col(big(SupportPolicyT::CreateTimeUs))
                    .col(big(SupportPolicyT::UpdateTimeUs))
                    .col(big(SupportPolicyT::Version))
                    .primary_key(
                        Index::create()
                            .col(SupportPolicyT::Uscc)
                            .col(SupportPolicyT::Year),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SupportPolicyMilestone::Table)
                    .col(uscc_col(SupportPolicyMilestone::Uscc))
                    .col(int(SupportPolicyMilestone::Year))
                    .col(
                        ColumnDef::new(SupportPolicyMilestone::MilestoneId)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(int(SupportPolicyMilestone::Position))
                    .col(text(SupportPolicyMilestone::Title))
                    .col(
                        ColumnDef::new(SupportPolicyMilestone::DueDate)
                            .string_len(10)
                            .not_null(),
                    )
                    .col(int(SupportPolicyMilestone::State))
                    .col(
                        ColumnDef::new(SupportPolicyMilestone::CompletedDate)
                            .string_len(10)
                            .not_null(),
                    )
                    .col(text(SupportPolicyMilestone::Note))
                    .primary_key(
                        Index::create()
                            .col(SupportPolicyMilestone::Uscc)
                            .col(SupportPolicyMilestone::Year)
                            .col(SupportPolicyMilestone::MilestoneId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SupportPolicyReview::Table)
                    .col(uscc_col(SupportPolicyReview::Uscc))
                    .col(int(SupportPolicyReview::Year))
                    .col(int(SupportPolicyReview::Sequence))
                    .col(int(SupportPolicyReview::Conclusion))
                    .col(text(SupportPolicyReview::Comment))
                    .col(text(SupportPolicyReview::Reviewer))
                    .col(big(SupportPolicyReview::ReviewTimeUs))
                    .primary_key(
                        Index::create()
                            .col(SupportPolicyReview::Uscc)
                            .col(SupportPolicyReview::Year)
                            .col(SupportPolicyReview::Sequence),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Table::drop().table(SupportPolicyReview::Table).to_owned(),
            Table::drop()
                .table(SupportPolicyMilestone::Table)
                .to_owned(),
            Table::drop().table(SupportPolicyT::Table).to_owned(),
            Table::drop().table(LeadingCohortMember::Table).to_owned(),
            Table::drop().table(LeadingCohort::Table).to_owned(),
        ] {
            manager.drop_table(t).await?;
        }
        Ok(())
    }
}
