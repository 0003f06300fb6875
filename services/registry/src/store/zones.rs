//! Zones, clusters and cluster membership as stored, with their migrations and queries. Handlers
//! pass domain values (already validated); rows that no longer pass the domain rules are
//! reported as corrupt, never shown as if valid.

use qilu_common::db::KeyLookup;
use std::collections::HashMap;

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect};
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, Index, MigrationName, MigrationTrait, SchemaManager, Table,
};

use crate::domain::cluster::{Cluster, ClusterFields};
use crate::domain::enterprise::EnterpriseState;
use crate::domain::zone::{Zone, ZoneFields, ZoneLevel, zone_city};

/// The `zone` table.
pub mod zone_entity {
    use sea_orm::entity::prelude::*;

    /// One high-tech zone.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "zone")]
    pub struct Model {
        /// The id in `zones/{id}`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Official name.
        pub display_name: String,
        /// `ZoneLevel` number.
        pub level: i32,
        /// GB/T 2260 code, six digits.
        pub division_code: String,
        /// City derived from the division code (kept for filtering).
        pub city: String,
        /// `YYYY-MM-DD` or "".
        pub approval_date: String,
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

/// The `cluster` table.
pub mod cluster_entity {
    use sea_orm::entity::prelude::*;

    /// One industrial cluster (members are in `cluster_member`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cluster")]
    pub struct Model {
        /// The id in `clusters/{id}`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Name shown to people.
        pub display_name: String,
        /// `GreenCategory` number.
        pub green_category: i32,
        /// Description.
        pub description: String,
        /// Own target scale in fen; NULL = the policy target's.
        pub target_scale_fen: Option<i64>,
        /// Own target year; NULL = the policy target's.
        pub target_year: Option<i32>,
        /// Year established.
        pub start_year: i32,
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

/// The `cluster_member` table: one row per cluster and member enterprise.
pub mod member_entity {
    use sea_orm::entity::prelude::*;

    /// A membership.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cluster_member")]
    pub struct Model {
        /// Cluster id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub cluster_id: String,
        /// Member USCC.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uscc: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A stored row that no longer passes the domain rules: a corrupted database.
#[derive(Debug, thiserror::Error)]
#[error("stored {what} {id} is corrupt: {problem}")]
pub struct CorruptRow {
    what: &'static str,
    id: String,
    problem: String,
}

// ---------------------------------------------------------------------------------------------
// Zones
// ---------------------------------------------------------------------------------------------

impl zone_entity::Model {
    /// Back to the domain type.
    pub fn into_domain(self) -> Result<Zone, CorruptRow> {
        let corrupt = |problem: String| CorruptRow {
            what: "zone",
            id: self.id.clone(),
            problem,
        };
        let level = ZoneLevel::from_code(self.level)
            .ok_or_else(|| corrupt(format!("level code {}", self.level)))?;
        let approval_date = if self.approval_date.is_empty() {
            None
        } else {
            Some(
                chrono::NaiveDate::parse_from_str(&self.approval_date, "%Y-%m-%d")
                    .map_err(|e| corrupt(format!("approval_date: {e}")))?,
            )
        };
        Ok(Zone {
            id: self.id,
            fields: ZoneFields {
                display_name: self.display_name,
                level,
                division_code: self.division_code,
                approval_date,
            },
            create_time_us: self.create_time_us,
            update_time_us: self.update_time_us,
            version: self.version,
        })
    }
}

fn zone_active(z: &Zone) -> zone_entity::ActiveModel {
    zone_entity::ActiveModel {
        id: Set(z.id.clone()),
        display_name: Set(z.fields.display_name.clone()),
        level: Set(z.fields.level.code()),
        division_code: Set(z.fields.division_code.clone()),
        city: Set(zone_city(&z.fields.division_code).unwrap_or("").to_string()),
        approval_date: Set(z
            .fields
            .approval_date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()),
        create_time_us: Set(z.create_time_us),
        update_time_us: Set(z.update_time_us),
        version: Set(z.version),
    }
}

/// Inserts a new zone; a duplicate id surfaces as a unique violation.
pub async fn insert_zone(conn: &impl ConnectionTrait, z: &Zone) -> Result<(), DbErr> {
    zone_entity::Entity::insert(zone_active(z))
        .exec(conn)
        .await?;
    Ok(())
}

/// Writes a changed zone if it is still at `expected_version`; false otherwise.
pub async fn update_zone_if_version(
    conn: &impl ConnectionTrait,
    z: &Zone,
    expected_version: i64,
) -> Result<bool, DbErr> {
    let result = zone_entity::Entity::update_many()
        .set(zone_active(z))
        .filter(zone_entity::Column::Id.eq(z.id.as_str()))
        .filter(zone_entity::Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// One zone by id.
pub async fn get_zone(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<zone_entity::Model>, DbErr> {
    zone_entity::Entity::find_by_id(id.to_string())
        .by_key(conn)
        .await
}

/// Whether a zone with resource name `name` (`zones/{id}`, as an enterprise's `zone` field holds
/// it) is registered. Anything not of that form is not a zone.
pub async fn zone_exists(conn: &impl ConnectionTrait, name: &str) -> Result<bool, DbErr> {
    let Some(id) = name.strip_prefix("zones/") else {
        return Ok(false);
    };
    Ok(zone_entity::Entity::find_by_id(id.to_string())
        .by_key(conn)
        .await?
        .is_some())
}

/// Number of ACTIVE enterprises in each of the zones named `zones/{id}` (absent = 0).
pub async fn active_enterprise_counts(
    conn: &impl ConnectionTrait,
    zone_names: &[String],
) -> Result<HashMap<String, i64>, DbErr> {
    use crate::store::enterprise::{Column, Entity};
    let mut out = HashMap::new();
    for chunk in zone_names.chunks(500) {
        let rows: Vec<(String, i64)> = Entity::find()
            .select_only()
            .column(Column::Zone)
            .column_as(Expr::col(Column::Uscc).count(), "n")
            .filter(Column::Zone.is_in(chunk.iter().cloned()))
            .filter(Column::State.eq(EnterpriseState::Active.code()))
            .group_by(Column::Zone)
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// Order of a zone or cluster listing; the id breaks ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By id (= by name).
    Name {
        /// Descending.
        desc: bool,
    },
    /// By display name, then id.
    DisplayName {
        /// Descending.
        desc: bool,
    },
}

/// The key of the last row of a page.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// Display name of the last row (display-name ordering only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Id of the last row.
    pub id: String,
}

/// Zone listing conditions, already validated.
#[derive(Debug, Clone, Default)]
pub struct ZoneFilter {
    /// Level code equals.
    pub level: Option<i32>,
    /// City equals.
    pub city: Option<String>,
    /// Display-name substring.
    pub name_contains: Option<String>,
}

/// `LIKE` pattern matching `needle` anywhere, with `%`, `_` and `\` escaped.
fn contains_pattern(needle: &str) -> LikeExpr {
    let escaped: String = needle
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

/// Case-insensitive substring match on a text column, the same on both backends.
fn name_contains<C: ColumnTrait>(col: C, needle: &str) -> sea_orm::sea_query::SimpleExpr {
    Expr::expr(Func::lower(Expr::col(col))).like(contains_pattern(&needle.to_lowercase()))
}

/// Adds the keyset condition and ordering for `order` over (display name, id) columns.
fn keyset<E: EntityTrait>(
    mut query: Select<E>,
    cond: Condition,
    order: Order,
    after: Option<Cursor>,
    id: E::Column,
    display_name: E::Column,
) -> Select<E> {
    let mut cond = cond;
    match order {
        Order::Name { desc } => {
            if let Some(c) = after {
                cond = cond.add(if desc { id.lt(c.id) } else { id.gt(c.id) });
            }
            query = if desc {
                query.order_by_desc(id)
            } else {
                query.order_by_asc(id)
            };
        }
        Order::DisplayName { desc } => {
            if let Some(c) = after {
                let name = c.display_name.unwrap_or_default();
                cond = cond.add(if desc {
                    Condition::any()
                        .add(display_name.lt(name.clone()))
                        .add(Condition::all().add(display_name.eq(name)).add(id.lt(c.id)))
                } else {
                    Condition::any()
                        .add(display_name.gt(name.clone()))
                        .add(Condition::all().add(display_name.eq(name)).add(id.gt(c.id)))
                });
            }
            query = if desc {
                query.order_by_desc(display_name).order_by_desc(id)
            } else {
                query.order_by_asc(display_name).order_by_asc(id)
            };
        }
    }
    query.filter(cond)
}

/// One page of zones (`limit` rows) after `after` in `order`.
pub async fn list_zones(
    conn: &impl ConnectionTrait,
    filter: &ZoneFilter,
    order: Order,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<zone_entity::Model>, DbErr> {
    use zone_entity::Column;
    let mut cond = Condition::all();
    if let Some(level) = filter.level {
        cond = cond.add(Column::Level.eq(level));
    }
    if let Some(city) = &filter.city {
        cond = cond.add(Column::City.eq(city.clone()));
    }
    if let Some(n) = &filter.name_contains {
        cond = cond.add(name_contains(Column::DisplayName, n));
    }
    keyset(
        zone_entity::Entity::find(),
        cond,
        order,
        after,
        Column::Id,
        Column::DisplayName,
    )
    .limit(limit)
    .all(conn)
    .await
}

// ---------------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------------

impl cluster_entity::Model {
    /// Back to the domain type, with its members (sorted).
    pub fn into_domain(self, mut members: Vec<String>) -> Cluster {
        members.sort_unstable();
        Cluster {
            id: self.id,
            fields: ClusterFields {
                display_name: self.display_name,
                green_category: self.green_category,
                description: self.description,
                members,
                target_scale_fen: self.target_scale_fen,
                target_year: self.target_year,
                start_year: self.start_year,
            },
            create_time_us: self.create_time_us,
            update_time_us: self.update_time_us,
            version: self.version,
        }
    }
}

fn cluster_active(c: &Cluster) -> cluster_entity::ActiveModel {
    cluster_entity::ActiveModel {
        id: Set(c.id.clone()),
        display_name: Set(c.fields.display_name.clone()),
        green_category: Set(c.fields.green_category),
        description: Set(c.fields.description.clone()),
        target_scale_fen: Set(c.fields.target_scale_fen),
        target_year: Set(c.fields.target_year),
        start_year: Set(c.fields.start_year),
        create_time_us: Set(c.create_time_us),
        update_time_us: Set(c.update_time_us),
        version: Set(c.version),
    }
}

async fn insert_members(
    conn: &impl ConnectionTrait,
    cluster_id: &str,
    members: &[String],
) -> Result<(), DbErr> {
    // Two parameters a row: stay well under SQLite's bound-parameter limit.
    for chunk in members.chunks(400) {
        let rows = chunk.iter().map(|uscc| member_entity::ActiveModel {
            cluster_id: Set(cluster_id.to_string()),
            uscc: Set(uscc.clone()),
        });
        member_entity::Entity::insert_many(rows).exec(conn).await?;
    }
    Ok(())
}

/// Inserts a new cluster with its members; a duplicate id surfaces as a unique violation.
pub async fn insert_cluster(conn: &impl ConnectionTrait, c: &Cluster) -> Result<(), DbErr> {
    cluster_entity::Entity::insert(cluster_active(c))
        .exec(conn)
        .await?;
    insert_members(conn, &c.id, &c.fields.members).await
}

/// Writes a changed cluster (and, when `members_changed`, replaces its members) if it is still
/// at `expected_version`; false otherwise (nothing written).
pub async fn update_cluster_if_version(
    conn: &impl ConnectionTrait,
    c: &Cluster,
    expected_version: i64,
    members_changed: bool,
) -> Result<bool, DbErr> {
    let result = cluster_entity::Entity::update_many()
        .set(cluster_active(c))
        .filter(cluster_entity::Column::Id.eq(c.id.as_str()))
        .filter(cluster_entity::Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    if result.rows_affected != 1 {
        return Ok(false);
    }
    if members_changed {
        member_entity::Entity::delete_many()
            .filter(member_entity::Column::ClusterId.eq(c.id.as_str()))
            .exec(conn)
            .await?;
        insert_members(conn, &c.id, &c.fields.members).await?;
    }
    Ok(true)
}

/// One cluster by id, with its members.
pub async fn get_cluster(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Cluster>, DbErr> {
    let Some(row) = cluster_entity::Entity::find_by_id(id.to_string())
        .by_key(conn)
        .await?
    else {
        return Ok(None);
    };
    let members = members_of(conn, std::slice::from_ref(&row.id)).await?;
    let mine = members.get(&row.id).cloned().unwrap_or_default();
    Ok(Some(row.into_domain(mine)))
}

/// Members of each cluster in `ids` (sorted by USCC).
async fn members_of(
    conn: &impl ConnectionTrait,
    ids: &[String],
) -> Result<HashMap<String, Vec<String>>, DbErr> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows = member_entity::Entity::find()
            .filter(member_entity::Column::ClusterId.is_in(chunk.iter().cloned()))
            .order_by_asc(member_entity::Column::Uscc)
            .all(conn)
            .await?;
        for row in rows {
            out.entry(row.cluster_id).or_default().push(row.uscc);
        }
    }
    Ok(out)
}

/// Cluster listing conditions, already validated.
#[derive(Debug, Clone, Default)]
pub struct ClusterFilter {
    /// Green category equals.
    pub green_category: Option<i32>,
    /// Has this member (USCC).
    pub member: Option<String>,
    /// Effective target year equals `.0`; `.1` says whether clusters that follow the policy
    /// target (no own year) match too (the policy target's year is `.0`).
    pub effective_target_year: Option<(i32, bool)>,
    /// Display-name substring.
    pub name_contains: Option<String>,
}

/// One page of clusters (`limit` rows) after `after` in `order`, with their members.
pub async fn list_clusters(
    conn: &impl ConnectionTrait,
    filter: &ClusterFilter,
    order: Order,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<Cluster>, DbErr> {
    use cluster_entity::Column;
    let mut cond = Condition::all();
    if let Some(g) = filter.green_category {
        cond = cond.add(Column::GreenCategory.eq(g));
    }
    if let Some(n) = &filter.name_contains {
        cond = cond.add(name_contains(Column::DisplayName, n));
    }
    if let Some((year, policy_matches)) = filter.effective_target_year {
        let mut any = Condition::any().add(Column::TargetYear.eq(year));
        if policy_matches {
            any = any.add(Column::TargetYear.is_null());
        }
        cond = cond.add(any);
    }
    if let Some(uscc) = &filter.member {
        let ids: Vec<String> = member_entity::Entity::find()
            .filter(member_entity::Column::Uscc.eq(uscc.as_str()))
            .all(conn)
            .await?
            .into_iter()
            .map(|m| m.cluster_id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        cond = cond.add(Column::Id.is_in(ids));
    }
    let rows = keyset(
        cluster_entity::Entity::find(),
        cond,
        order,
        after,
        Column::Id,
        Column::DisplayName,
    )
    .limit(limit)
    .all(conn)
    .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut members = members_of(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let m = members.remove(&r.id).unwrap_or_default();
            r.into_domain(m)
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Migrations
// ---------------------------------------------------------------------------------------------

/// The zone and cluster migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateZones), Box::new(CreateClusters)]
}

struct CreateZones;

impl MigrationName for CreateZones {
    fn name(&self) -> &str {
        "m20261128_000410_registry_zones"
    }
}

#[derive(DeriveIden)]
enum ZoneT {
    #[sea_orm(iden = "zone")]
    Table,
    Id,
    DisplayName,
    Level,
    DivisionCode,
    City,
    ApprovalDate,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateZones {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ZoneT::Table)
                    .col(
                        ColumnDef::new(ZoneT::Id)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ZoneT::DisplayName).text().not_null())
                    .col(ColumnDef::new(ZoneT::Level).integer().not_null())
                    .col(ColumnDef::new(ZoneT::DivisionCode).string_len(6).not_null())
                    .col(ColumnDef::new(ZoneT::City).text().not_null())
                    .col(
                        ColumnDef::new(ZoneT::ApprovalDate)
                            .string_len(10)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ZoneT::CreateTimeUs).big_integer().not_null())
                    .col(ColumnDef::new(ZoneT::UpdateTimeUs).big_integer().not_null())
                    .col(ColumnDef::new(ZoneT::Version).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("zone_display_name")
                    .table(ZoneT::Table)
                    .col(ZoneT::DisplayName)
                    .col(ZoneT::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ZoneT::Table).to_owned())
            .await
    }
}

struct CreateClusters;

impl MigrationName for CreateClusters {
    fn name(&self) -> &str {
        "m20261128_000420_registry_clusters"
    }
}

#[derive(DeriveIden)]
enum ClusterT {
    #[sea_orm(iden = "cluster")]
    Table,
    Id,
    DisplayName,
    GreenCategory,
    Description,
    TargetScaleFen,
    TargetYear,
    StartYear,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

#[derive(DeriveIden)]
enum ClusterMember {
    Table,
    ClusterId,
    Uscc,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateClusters {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClusterT::Table)
                    .col(
                        ColumnDef::new(ClusterT::Id)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ClusterT::DisplayName).text().not_null())
                    .col(ColumnDef::new(ClusterT::GreenCategory).integer().not_null())
                    .col(ColumnDef::new(ClusterT::Description).text().not_null())
                    .col(
                        ColumnDef::new(ClusterT::TargetScaleFen)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(ClusterT::TargetYear).integer().null())
                    .col(ColumnDef::new(ClusterT::StartYear).integer().not_null())
                    .col(
                        ColumnDef::new(ClusterT::CreateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClusterT::UpdateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ClusterT::Version).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("cluster_display_name")
                    .table(ClusterT::Table)
                    .col(ClusterT::DisplayName)
                    .col(ClusterT::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ClusterMember::Table)
                    .col(
                        ColumnDef::new(ClusterMember::ClusterId)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClusterMember::Uscc)
                            .string_len(18)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ClusterMember::ClusterId)
                            .col(ClusterMember::Uscc),
                    )
                    .to_owned(),
            )
            .await?;
        // "Which clusters is this enterprise in?" (the enterprise read rule, the member filter).
        manager
            .create_index(
                Index::create()
                    .name("cluster_member_uscc")
                    .table(ClusterMember::Table)
                    .col(ClusterMember::Uscc)
                    .col(ClusterMember::ClusterId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ClusterMember::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ClusterT::Table).to_owned())
            .await
    }
}
