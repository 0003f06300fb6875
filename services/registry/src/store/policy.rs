//! Policy targets as stored: dated, versioned data with their source (never constants in code).
//! Rows are never edited except to mark one superseded by its successor. The first migration
//! seeds the targets of the 2021 opinions and the 2023 work plan.

use qilu_common::db::KeyLookup;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, QueryOrder};
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, MigrationName, MigrationTrait, Query, SchemaManager, Table,
};

/// `policy_target` rows.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One policy target.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "policy_target")]
    pub struct Model {
        /// The id in `policyTargets/{id}`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `qilu.registry.v1.PolicyTargetKind` number.
        pub kind: i32,
        /// Count, or fen for cluster scale.
        pub value: i64,
        /// First programme year (inclusive).
        pub effective_from_year: i32,
        /// Last programme year (inclusive); 0 = open-ended.
        pub effective_to_year: i32,
        /// Year by which a stock target is to be reached; 0 for yearly flows.
        pub target_year: i32,
        /// Source citation.
        pub source: String,
        /// Source date `YYYY-MM-DD`.
        pub source_date: String,
        /// Notes.
        pub note: String,
        /// `policyTargets/{id}` this one replaces, or "".
        pub supersedes: String,
        /// `policyTargets/{id}` that replaced this one, or "" while in force.
        pub superseded_by: String,
        /// µs.
        pub create_time_us: i64,
        /// µs.
        pub update_time_us: i64,
        /// Optimistic-concurrency version.
        pub version: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use entity::{Column, Entity, Model};

/// `PolicyTargetKind` numbers (see `proto/qilu/registry/v1/policy.proto`).
pub mod kind {
    /// Size of the yearly leading-enterprise cohort.
    pub const LEADING_COHORT_SIZE: i32 = 1;
    /// New high-tech enterprises in high-tech zones in green fields, per year.
    pub const YEARLY_NEW_HIGH_TECH_ENTERPRISES: i32 = 2;
    /// Scale of each green industrial cluster, fen.
    pub const CLUSTER_SCALE: i32 = 3;
    /// Number of green technology industrial clusters.
    pub const CLUSTER_COUNT: i32 = 4;
    /// Green, low-carbon high-tech enterprises (stock).
    pub const GREEN_HIGH_TECH_ENTERPRISES: i32 = 5;
}

/// The target of `kind` in force for programme `year`: not superseded and `year` within its
/// range; if several overlap, the one that starts latest (then the newest) wins.
pub async fn in_force(
    conn: &impl ConnectionTrait,
    kind: i32,
    year: i32,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Kind.eq(kind))
        .filter(Column::SupersededBy.eq(""))
        .filter(Column::EffectiveFromYear.lte(year))
        .filter(
            Condition::any()
                .add(Column::EffectiveToYear.eq(0))
                .add(Column::EffectiveToYear.gte(year)),
        )
        .order_by_desc(Column::EffectiveFromYear)
        .order_by_desc(Column::CreateTimeUs)
        .one(conn)
        .await
}

/// One target by id.
pub async fn get(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.to_string()).by_key(conn).await
}

/// Inserts a new target.
pub async fn insert(conn: &impl ConnectionTrait, m: Model) -> Result<(), DbErr> {
    let active: entity::ActiveModel = m.into();
    Entity::insert(active).exec(conn).await?;
    Ok(())
}

/// Marks `id` superseded by `by` if it still is at `expected_version`; false otherwise.
pub async fn supersede(
    conn: &impl ConnectionTrait,
    id: &str,
    by: &str,
    expected_version: i64,
    now_us: i64,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .set(entity::ActiveModel {
            superseded_by: Set(by.to_string()),
            update_time_us: Set(now_us),
            version: Set(expected_version + 1),
            ..Default::default()
        })
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(expected_version))
        .filter(Column::SupersededBy.eq(""))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Order of a policy-target listing; the id breaks ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By first effective year, then id.
    EffectiveFromYear {
        /// Descending.
        desc: bool,
    },
    /// By creation time, then id.
    CreateTime {
        /// Descending.
        desc: bool,
    },
}

/// The key of the last row of a page: the ordering value and the id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// `effective_from_year` or `create_time_us` of the last row.
    pub key: i64,
    /// Id of the last row.
    pub id: String,
}

/// Policy-target listing conditions, already validated.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Kind equals.
    pub kind: Option<i32>,
    /// `Some(true)`: in force (not superseded); `Some(false)`: superseded.
    pub in_force: Option<bool>,
    /// The year range covers this year.
    pub year: Option<i32>,
}

/// One page of targets (`limit` rows) after `after` in `order`, superseded ones included
/// unless filtered out.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &ListFilter,
    order: Order,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::QuerySelect;
    let mut cond = Condition::all();
    if let Some(k) = filter.kind {
        cond = cond.add(Column::Kind.eq(k));
    }
    match filter.in_force {
        Some(true) => cond = cond.add(Column::SupersededBy.eq("")),
        Some(false) => cond = cond.add(Column::SupersededBy.ne("")),
        None => {}
    }
    if let Some(year) = filter.year {
        cond = cond.add(Column::EffectiveFromYear.lte(year)).add(
            Condition::any()
                .add(Column::EffectiveToYear.eq(0))
                .add(Column::EffectiveToYear.gte(year)),
        );
    }
    let (column, desc) = match order {
        Order::EffectiveFromYear { desc } => (Column::EffectiveFromYear, desc),
        Order::CreateTime { desc } => (Column::CreateTimeUs, desc),
    };
    if let Some(c) = after {
        let key = sea_orm::Value::BigInt(Some(c.key));
        cond = cond.add(if desc {
            Condition::any().add(column.lt(key.clone())).add(
                Condition::all()
                    .add(column.eq(key))
                    .add(Column::Id.lt(c.id)),
            )
        } else {
            Condition::any().add(column.gt(key.clone())).add(
                Condition::all()
                    .add(column.eq(key))
                    .add(Column::Id.gt(c.id)),
            )
        });
    }
    let query = Entity::find().filter(cond);
    let query = if desc {
        query.order_by_desc(column).order_by_desc(Column::Id)
    } else {
        query.order_by_asc(column).order_by_asc(Column::Id)
    };
    query.limit(limit).all(conn).await
}

/// Targets of `kind` not superseded (any years), oldest range first.
pub async fn not_superseded(conn: &impl ConnectionTrait, kind: i32) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Kind.eq(kind))
        .filter(Column::SupersededBy.eq(""))
        .order_by_asc(Column::EffectiveFromYear)
        .order_by_asc(Column::Id)
        .all(conn)
        .await
}

/// The policy-target migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreatePolicyTargets)]
}

struct CreatePolicyTargets;

impl MigrationName for CreatePolicyTargets {
    fn name(&self) -> &str {
        "m20261128_000300_registry_policy_targets"
    }
}

#[derive(DeriveIden)]
enum PolicyTarget {
    Table,
    Id,
    Kind,
    Value,
    EffectiveFromYear,
    EffectiveToYear,
    TargetYear,
    Source,
    SourceDate,
    Note,
    Supersedes,
    SupersededBy,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

/// Source of the 2021 targets (docs/rules.md, "The policy").
const OPINIONS_2021: &str = "关于科技支撑引领绿色低碳高质量发展的实施意见 (Implementation Opinions on Green, Low-carbon and High-quality Development of Industries Driven by Science and Technology), Shandong Department of Science and Technology, Development and Reform Commission, Department of Education; reported 2021-09-01";
/// Source of the 2025 targets.
const WORK_PLAN_2023: &str = "Shandong work plan on technology-supported carbon peaking (2023): about 1,000 green, low-carbon high-tech enterprises and 5-8 green technology industrial clusters by 2025";

/// A seeded target: (id, kind, value, from, to, target year, source, date, note).
type Seed = (
    &'static str,
    i32,
    i64,
    i32,
    i32,
    i32,
    &'static str,
    &'static str,
    &'static str,
);

/// The seeded targets.
const SEED: [Seed; 5] = [
    (
        "leading-cohort-2021",
        kind::LEADING_COHORT_SIZE,
        200,
        2021,
        0,
        2023,
        OPINIONS_2021,
        "2021-09-01",
        "approximate: 'about 200' high-tech enterprises in green and low-carbon fields, one policy per enterprise",
    ),
    (
        "new-hte-yearly-2021",
        kind::YEARLY_NEW_HIGH_TECH_ENTERPRISES,
        1000,
        2021,
        0,
        0,
        OPINIONS_2021,
        "2021-09-01",
        "approximate: 'about 1,000' new high-tech enterprises a year in high-tech zones around green, low-carbon industries",
    ),
    (
        "cluster-scale-2021",
        kind::CLUSTER_SCALE,
        // 10 billion yuan = 10^10 yuan × 100 fen.
        1_000_000_000_000,
        2021,
        0,
        2023,
        OPINIONS_2021,
        "2021-09-01",
        "green innovative industrial clusters of 10 billion yuan each by 2023",
    ),
    (
        "green-hte-2025",
        kind::GREEN_HIGH_TECH_ENTERPRISES,
        1000,
        2023,
        2025,
        2025,
        WORK_PLAN_2023,
        "2023-01-01",
        "approximate: 'about 1,000'; source date approximate (unconfirmed)",
    ),
    (
        "cluster-count-2025",
        kind::CLUSTER_COUNT,
        5,
        2023,
        2025,
        2025,
        WORK_PLAN_2023,
        "2023-01-01",
        "the plan says 5-8 clusters; the lower bound is the target; source date approximate (unconfirmed)",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for CreatePolicyTargets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PolicyTarget::Table)
                    .col(
                        ColumnDef::new(PolicyTarget::Id)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(PolicyTarget::Kind).integer().not_null())
                    .col(ColumnDef::new(PolicyTarget::Value).big_integer().not_null())
                    .col(
                        ColumnDef::new(PolicyTarget::EffectiveFromYear)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyTarget::EffectiveToYear)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyTarget::TargetYear)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PolicyTarget::Source).text().not_null())
                    .col(
                        ColumnDef::new(PolicyTarget::SourceDate)
                            .string_len(10)
                            .not_null(),
                    )
                    .col(ColumnDef::new(PolicyTarget::Note).text().not_null())
                    .col(ColumnDef::new(PolicyTarget::Supersedes).text().not_null())
                    .col(ColumnDef::new(PolicyTarget::SupersededBy).text().not_null())
                    .col(
                        ColumnDef::new(PolicyTarget::CreateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyTarget::UpdateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyTarget::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Seeded with a fixed time (the opinions' report date) so every database holds the same
        // rows. The seed is part of the schema's history, not an audited mutation.
        let seeded_at: i64 = 1_630_454_400_000_000; // 2021-09-01T00:00:00Z in µs
        for (id, kind, value, from, to, target_year, source, date, note) in SEED {
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(PolicyTarget::Table)
                        .columns([
                            PolicyTarget::Id,
                            PolicyTarget::Kind,
                            PolicyTarget::Value,
                            PolicyTarget::EffectiveFromYear,
                            PolicyTarget::EffectiveToYear,
                            PolicyTarget::TargetYear,
                            PolicyTarget::Source,
                            PolicyTarget::SourceDate,
                            PolicyTarget::Note,
                            PolicyTarget::Supersedes,
                            PolicyTarget::SupersededBy,
                            PolicyTarget::CreateTimeUs,
                            PolicyTarget::UpdateTimeUs,
                            PolicyTarget::Version,
                        ])
                        .values_panic([
                            id.into(),
                            kind.into(),
                            value.into(),
                            from.into(),
                            to.into(),
                            target_year.into(),
                            source.into(),
                            date.into(),
                            note.into(),
                            "".into(),
                            "".into(),
                            seeded_at.into(),
                            seeded_at.into(),
                            1i64.into(),
                        ])
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PolicyTarget::Table).to_owned())
            .await
    }
}
