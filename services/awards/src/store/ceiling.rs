//! Statutory award ceilings as versioned data: `award_ceiling` rows, one per (key, version),
//! each with the programme years it applies to and its source. Seeded with the limits of the
//! Shandong provincial S&T award measures; a change is a new row (a higher version, or a new
//! year range), never an edit, so every refusal and every allocation cites the version it used.

use sea_orm::QueryOrder;
use sea_orm::entity::prelude::*;
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, MigrationName, MigrationTrait, Query, SchemaManager, Table,
};

use crate::domain::ceiling::Ceiling;

/// `award_ceiling` rows.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One version of a ceiling.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "award_ceiling")]
    pub struct Model {
        /// Stable key, e.g. `first-prizes`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        /// Version, from 1.
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        /// What it limits.
        pub description: String,
        /// `AwardCategory` numbers as a JSON array (empty = all).
        pub categories: String,
        /// `AwardGrade` numbers as a JSON array (empty = all).
        pub grades: String,
        /// Most awards a year.
        pub limit_per_year: i64,
        /// First programme year (inclusive).
        pub effective_from_year: i32,
        /// Last programme year (inclusive); 0 = open-ended.
        pub effective_to_year: i32,
        /// Where the number comes from.
        pub source: String,
        /// µs.
        pub create_time_us: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use entity::{Column, Entity};

/// Every stored ceiling version (the domain picks those in force for a year).
pub async fn all(conn: &impl ConnectionTrait) -> Result<Vec<Ceiling>, DbErr> {
    Entity::find()
        .order_by_asc(Column::Key)
        .order_by_asc(Column::Version)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| {
            let list = |raw: &str| -> Result<Vec<i32>, DbErr> {
                serde_json::from_str(raw).map_err(|e| super::corrupt("award ceiling", e))
            };
            Ok(Ceiling {
                categories: list(&m.categories)?,
                grades: list(&m.grades)?,
                key: m.key,
                version: m.version,
                description: m.description,
                limit: m.limit_per_year,
                effective_from_year: m.effective_from_year,
                effective_to_year: m.effective_to_year,
                source: m.source,
            })
        })
        .collect()
}

/// The ceiling migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateAwardCeiling)]
}

struct CreateAwardCeiling;

impl MigrationName for CreateAwardCeiling {
    fn name(&self) -> &str {
        "m20261206_000100_awards_statutory_ceilings"
    }
}

#[derive(DeriveIden)]
enum AwardCeiling {
    Table,
    Key,
    Version,
    Description,
    Categories,
    Grades,
    LimitPerYear,
    EffectiveFromYear,
    EffectiveToYear,
    Source,
    CreateTimeUs,
}

/// `AwardCategory` numbers (proto/qilu/awards/v1/program.proto).
const TOP_AWARD: i32 = 1;
const NATURAL_SCIENCE: i32 = 2;
const TECHNOLOGICAL_INVENTION: i32 = 3;
const SCIENCE_TECHNOLOGY_PROGRESS: i32 = 4;
const INTERNATIONAL_COOPERATION: i32 = 5;
const YOUNG_SCIENTIST: i32 = 6;
/// `AwardGrade` number of a first prize.
const FIRST_PRIZE: i32 = 2;

/// The seed: (key, description, categories, grades, limit, first year, source).
type Seed = (
    &'static str,
    &'static str,
    &'static [i32],
    &'static [i32],
    i64,
    i32,
    &'static str,
);

const SEED: [Seed; 5] = [
    (
        "first-prizes",
        "first prizes ≤ 35 a year",
        &[],
        &[FIRST_PRIZE],
        35,
        2021,
        // Cites the programme office's rules brief by the brief's file name, from before the
        // repository carried its own documents; that section is now docs/rules.md, "Shandong
        // provincial science and technology awards". Left as it is on purpose: this released
        // migration seeds it, and changing it would make databases migrated before and after the
        // change hold different rows. A corrected source belongs in a new version.
        "Shandong provincial S&T award reform constraints: first prizes at most 35 a year (RULES.md, Shandong provincial science and technology awards); the reform document's date is unconfirmed: applied from programme year 2021, replace by adding a new version",
    ),
    (
        "three-categories",
        "natural science + technological invention + S&T progress awards ≤ 300 a year",
        &[
            NATURAL_SCIENCE,
            TECHNOLOGICAL_INVENTION,
            SCIENCE_TECHNOLOGY_PROGRESS,
        ],
        &[],
        300,
        2021,
        "Shandong Provincial Science and Technology Award Measures 2021 (provincial government order 340): the natural science, technological invention and S&T progress awards together at most 300 a year",
    ),
    (
        "top-award",
        "top award ≤ 2 a year",
        &[TOP_AWARD],
        &[],
        2,
        2021,
        "Shandong Provincial Science and Technology Award Measures 2021 (provincial government order 340): the top award goes to at most 2 people a year",
    ),
    (
        "young-scientist",
        "young scientist award ≤ 10 a year",
        &[YOUNG_SCIENTIST],
        &[],
        10,
        2023,
        "Shandong provincial S&T awards since 2023: young scientist award at most 10 a year",
    ),
    (
        "international-cooperation",
        "international cooperation award ≤ 5 a year",
        &[INTERNATIONAL_COOPERATION],
        &[],
        5,
        2023,
        "Shandong provincial S&T awards since 2023: international cooperation award at most 5 a year",
    ),
];

fn json_list(values: &[i32]) -> String {
    format!(
        "[{}]",
        values
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAwardCeiling {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text = |c: AwardCeiling| ColumnDef::new(c).text().not_null().to_owned();
        let big = |c: AwardCeiling| ColumnDef::new(c).big_integer().not_null().to_owned();
        let int = |c: AwardCeiling| ColumnDef::new(c).integer().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(AwardCeiling::Table)
                    .col(ColumnDef::new(AwardCeiling::Key).string_len(64).not_null())
                    .col(big(AwardCeiling::Version))
                    .col(text(AwardCeiling::Description))
                    .col(text(AwardCeiling::Categories))
                    .col(text(AwardCeiling::Grades))
                    .col(big(AwardCeiling::LimitPerYear))
                    .col(int(AwardCeiling::EffectiveFromYear))
                    .col(int(AwardCeiling::EffectiveToYear))
                    .col(text(AwardCeiling::Source))
                    .col(big(AwardCeiling::CreateTimeUs))
                    .primary_key(
                        sea_orm_migration::prelude::Index::create()
                            .col(AwardCeiling::Key)
                            .col(AwardCeiling::Version),
                    )
                    .to_owned(),
            )
            .await?;
        // Seeded with a fixed time so every database holds the same rows.
        let seeded_at: i64 = 1_609_459_200_000_000; // 2021-01-01T00:00:00Z
        for (key, description, categories, grades, limit, from, source) in SEED {
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(AwardCeiling::Table)
                        .columns([
                            AwardCeiling::Key,
                            AwardCeiling::Version,
                            AwardCeiling::Description,
                            AwardCeiling::Categories,
                            AwardCeiling::Grades,
                            AwardCeiling::LimitPerYear,
                            AwardCeiling::EffectiveFromYear,
                            AwardCeiling::EffectiveToYear,
                            AwardCeiling::Source,
                            AwardCeiling::CreateTimeUs,
                        ])
                        .values_panic([
                            key.into(),
                            1i64.into(),
                            description.into(),
                            json_list(categories).into(),
                            json_list(grades).into(),
                            limit.into(),
                            from.into(),
                            0i32.into(),
                            source.into(),
                            seeded_at.into(),
                        ])
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AwardCeiling::Table).to_owned())
            .await
    }
}
