//! Veto rule sets as stored: immutable rules (JSON) with a global version; only the ACTIVE flag
//! and its times change. Exactly one rule set is ACTIVE: activation flips both rows in one
//! write transaction. The first migration seeds `vetoRuleSets/default-2021`, active.
//!
//! A rule set never activated may be deleted; its id and version are kept in
//! `deleted_veto_rule_set`, so neither is ever given to another rule set (verdicts and the audit
//! log name rule sets by both).

use qilu_common::db::KeyLookup;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, Index, MigrationName, MigrationTrait, Query, SchemaManager, Table,
};

use super::{CorruptRow, from_json, json};
use crate::domain::screening::{Rules, ScopeEntry};

/// `veto_rule_set` rows.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One rule set.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "veto_rule_set")]
    pub struct Model {
        /// The id in `vetoRuleSets/{id}`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Global version (unique), cited by verdicts.
        pub version: i64,
        /// Title.
        pub display_name: String,
        /// Sources.
        pub description: String,
        /// `Rules` as JSON.
        pub rules: String,
        /// The one in use.
        pub active: bool,
        /// µs of the last activation, 0 = never.
        pub activate_time_us: i64,
        /// µs.
        pub create_time_us: i64,
        /// µs.
        pub update_time_us: i64,
        /// Optimistic-concurrency version of the row (the etag).
        pub row_version: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use entity::{Column, Entity, Model};

/// A rule set as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleSet {
    /// Id.
    pub id: String,
    /// Global version.
    pub version: i64,
    /// Title.
    pub display_name: String,
    /// Sources.
    pub description: String,
    /// The rules.
    pub rules: Rules,
    /// In use.
    pub active: bool,
    /// µs, if ever activated.
    pub activate_time_us: Option<i64>,
    /// µs.
    pub create_time_us: i64,
    /// µs.
    pub update_time_us: i64,
    /// Row version.
    pub row_version: i64,
}

impl RuleSet {
    /// `vetoRuleSets/{id}`.
    pub fn name(&self) -> String {
        format!("vetoRuleSets/{}", self.id)
    }

    /// AIP-154 etag.
    pub fn etag(&self) -> String {
        qilu_common::input::etag_of(&self.name(), self.row_version)
    }
}

impl Model {
    /// Back to the domain type.
    pub fn into_domain(self) -> Result<RuleSet, CorruptRow> {
        let rules = from_json("veto_rule_set", &self.id, "rules", &self.rules)?;
        Ok(RuleSet {
            rules,
            id: self.id,
            version: self.version,
            display_name: self.display_name,
            description: self.description,
            active: self.active,
            activate_time_us: (self.activate_time_us != 0).then_some(self.activate_time_us),
            create_time_us: self.create_time_us,
            update_time_us: self.update_time_us,
            row_version: self.row_version,
        })
    }
}

fn to_active(r: &RuleSet) -> entity::ActiveModel {
    entity::ActiveModel {
        id: Set(r.id.clone()),
        version: Set(r.version),
        display_name: Set(r.display_name.clone()),
        description: Set(r.description.clone()),
        rules: Set(json(&r.rules)),
        active: Set(r.active),
        activate_time_us: Set(r.activate_time_us.unwrap_or(0)),
        create_time_us: Set(r.create_time_us),
        update_time_us: Set(r.update_time_us),
        row_version: Set(r.row_version),
    }
}

/// Inserts a new rule set (duplicate id or version → unique violation).
pub async fn insert(conn: &impl ConnectionTrait, r: &RuleSet) -> Result<(), DbErr> {
    Entity::insert(to_active(r)).exec(conn).await?;
    Ok(())
}

/// The next global version: after every rule set's, deleted ones included.
pub async fn next_version(conn: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let max: Option<Option<i64>> = Entity::find()
        .select_only()
        .column_as(Column::Version.max(), "max")
        .into_tuple()
        .one(conn)
        .await?;
    let deleted: Option<Option<i64>> = deleted::Entity::find()
        .select_only()
        .column_as(deleted::Column::Version.max(), "max")
        .into_tuple()
        .one(conn)
        .await?;
    Ok(max
        .flatten()
        .unwrap_or(0)
        .max(deleted.flatten().unwrap_or(0))
        + 1)
}

/// `deleted_veto_rule_set` rows: the ids and versions of deleted rule sets, never reused.
pub mod deleted {
    use sea_orm::entity::prelude::*;

    /// One deleted rule set.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deleted_veto_rule_set")]
    pub struct Model {
        /// The rule set's id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Its version.
        pub version: i64,
        /// When it was deleted, µs.
        pub delete_time_us: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Deletes rule set `r` if its row is still at `expected_row_version` (false otherwise), and
/// keeps its id and version out of use.
pub async fn delete_if_version(
    conn: &impl ConnectionTrait,
    r: &RuleSet,
    expected_row_version: i64,
    now_us: i64,
) -> Result<bool, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::Id.eq(r.id.as_str()))
        .filter(Column::RowVersion.eq(expected_row_version))
        .exec(conn)
        .await?;
    if result.rows_affected != 1 {
        return Ok(false);
    }
    deleted::Entity::insert(deleted::ActiveModel {
        id: Set(r.id.clone()),
        version: Set(r.version),
        delete_time_us: Set(now_us),
    })
    .exec(conn)
    .await?;
    Ok(true)
}

/// Whether a rule set with this id was deleted.
pub async fn was_deleted(conn: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    Ok(deleted::Entity::find_by_id(id.to_string())
        .by_key(conn)
        .await?
        .is_some())
}

/// One rule set by id.
pub async fn get(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.to_string()).by_key(conn).await
}

/// The active rule set.
pub async fn active(conn: &impl ConnectionTrait) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::Active.eq(true))
        .order_by_desc(Column::Version)
        .one(conn)
        .await
}

/// Sets the active flag of `r` (already changed in memory) if its row is still at
/// `expected_row_version`; false otherwise.
pub async fn update_if_version(
    conn: &impl ConnectionTrait,
    r: &RuleSet,
    expected_row_version: i64,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .set(to_active(r))
        .filter(Column::Id.eq(r.id.as_str()))
        .filter(Column::RowVersion.eq(expected_row_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// One page of rule sets in ascending version after `after_version`.
pub async fn list(
    conn: &impl ConnectionTrait,
    active: Option<bool>,
    after_version: Option<i64>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut q = Entity::find().order_by_asc(Column::Version);
    if let Some(a) = active {
        q = q.filter(Column::Active.eq(a));
    }
    if let Some(v) = after_version {
        q = q.filter(Column::Version.gt(v));
    }
    q.limit(limit).all(conn).await
}

/// The rule-set migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateVetoRuleSets)]
}

/// Rule-set migrations added after the common `later_common_migrations` (listed after them).
pub fn later_migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateDeletedVetoRuleSets)]
}

/// Creates `deleted_veto_rule_set`, for `DeleteVetoRuleSet`.
struct CreateDeletedVetoRuleSets;

impl MigrationName for CreateDeletedVetoRuleSets {
    fn name(&self) -> &str {
        "m20261208_000200_review_deleted_veto_rule_sets"
    }
}

#[derive(DeriveIden)]
enum DeletedVetoRuleSet {
    Table,
    Id,
    Version,
    DeleteTimeUs,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDeletedVetoRuleSets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use DeletedVetoRuleSet as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .col(
                        ColumnDef::new(D::Id)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(D::Version).big_integer().not_null())
                    .col(ColumnDef::new(D::DeleteTimeUs).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeletedVetoRuleSet::Table).to_owned())
            .await
    }
}

struct CreateVetoRuleSets;

impl MigrationName for CreateVetoRuleSets {
    fn name(&self) -> &str {
        "m20261201_000100_review_veto_rule_sets"
    }
}

#[derive(DeriveIden)]
enum VetoRuleSet {
    Table,
    Id,
    Version,
    DisplayName,
    Description,
    Rules,
    Active,
    ActivateTimeUs,
    CreateTimeUs,
    UpdateTimeUs,
    RowVersion,
}

/// The seeded rule set's id.
pub const DEFAULT_ID: &str = "default-2021";

/// The seeded rule set's description: where every scope code and threshold comes from
/// (docs/rules.md, "Two-high screening").
pub const DEFAULT_DESCRIPTION: &str = "Two-high (energy-intensive, highly polluting) screening for the one-vote veto of the 2021 Shandong implementation opinions (关于科技支撑引领绿色低碳高质量发展的实施意见, reported 2021-09-01). \
Scope: the statistical 'six energy-intensive industries' (六大高耗能行业, National Bureau of Statistics) as GB/T 4754-2017 divisions, each covering part of the national two-high list used by NDRC/MEE (coal power, petrochemical, chemical, coal chemical, steel, coking, non-ferrous smelting, building materials): \
25 fuel processing = petrochemical, coking, coal chemical; 26 chemical raw materials and products = chemical, coal chemical; 30 non-metallic mineral products = building materials (cement, flat glass); 31 ferrous smelting and rolling = steel; 32 non-ferrous smelting and rolling = non-ferrous smelting; 44 power and heat = coal power. \
Threshold: annual comprehensive energy consumption >= 5,000 tce triggers provincial energy-saving review (固定资产投资项目节能审查办法, NDRC); for reference >= 10,000 tce is a key energy-using unit and < 1,000 tce with < 5 million kWh needs no separate review. \
Per-product unit-energy limits (national limit standards such as GB 21256 for crude steel): none seeded — add them in a new rule set from the standards' current editions. \
Closure list: Shandong's own two-high and closure lists are unconfirmed — none seeded; load them as data in a new rule set.";

/// The seeded scope: (GB/T 4754 division, description citing the docs/rules.md scope it covers).
const DEFAULT_SCOPE: [(&str, &str); 6] = [
    (
        "25",
        "石油、煤炭及其他燃料加工业 (fuel processing): petrochemical refining, coking, coal chemical",
    ),
    (
        "26",
        "化学原料和化学制品制造业 (chemical raw materials and products): chemical, coal chemical",
    ),
    (
        "30",
        "非金属矿物制品业 (non-metallic mineral products): building materials — cement, flat glass",
    ),
    (
        "31",
        "黑色金属冶炼和压延加工业 (ferrous smelting and rolling): steel",
    ),
    (
        "32",
        "有色金属冶炼和压延加工业 (non-ferrous smelting and rolling): non-ferrous smelting",
    ),
    (
        "44",
        "电力、热力生产和供应业 (power and heat production and supply): coal power",
    ),
];

/// The seeded rules: six divisions, 5,000 tce (5,000,000 kgce), no limits, no closures.
pub fn default_rules() -> Rules {
    Rules {
        industry_scope: DEFAULT_SCOPE
            .iter()
            .map(|(code, description)| ScopeEntry {
                code: (*code).to_string(),
                description: (*description).to_string(),
            })
            .collect(),
        annual_energy_threshold_kgce: 5_000_000,
        unit_energy_limits: Vec::new(),
        closure_list: Vec::new(),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateVetoRuleSets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(VetoRuleSet::Table)
                    .col(
                        ColumnDef::new(VetoRuleSet::Id)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(VetoRuleSet::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(VetoRuleSet::DisplayName).text().not_null())
                    .col(ColumnDef::new(VetoRuleSet::Description).text().not_null())
                    .col(ColumnDef::new(VetoRuleSet::Rules).text().not_null())
                    .col(ColumnDef::new(VetoRuleSet::Active).boolean().not_null())
                    .col(
                        ColumnDef::new(VetoRuleSet::ActivateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(VetoRuleSet::CreateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(VetoRuleSet::UpdateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(VetoRuleSet::RowVersion)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("veto_rule_set_version")
                    .table(VetoRuleSet::Table)
                    .col(VetoRuleSet::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Seeded with a fixed time so every database holds the same row; part of the schema's
        // history, not an audited mutation.
        let seeded_at: i64 = 1_630_454_400_000_000; // 2021-09-01T00:00:00Z
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(VetoRuleSet::Table)
                    .columns([
                        VetoRuleSet::Id,
                        VetoRuleSet::Version,
                        VetoRuleSet::DisplayName,
                        VetoRuleSet::Description,
                        VetoRuleSet::Rules,
                        VetoRuleSet::Active,
                        VetoRuleSet::ActivateTimeUs,
                        VetoRuleSet::CreateTimeUs,
                        VetoRuleSet::UpdateTimeUs,
                        VetoRuleSet::RowVersion,
                    ])
                    .values_panic([
                        DEFAULT_ID.into(),
                        1i64.into(),
                        "Two-high screening, default (2021 opinions)".into(),
                        DEFAULT_DESCRIPTION.into(),
                        json(&default_rules()).into(),
                        true.into(),
                        seeded_at.into(),
                        seeded_at.into(),
                        seeded_at.into(),
                        1i64.into(),
                    ])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(VetoRuleSet::Table).to_owned())
            .await
    }
}
