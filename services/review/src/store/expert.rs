//! Expert rows: fields and affiliations as `,a,b,` sets (so one matches with LIKE on both
//! backends), declared conflicts as JSON (append-only through `DeclareConflict`).

use qilu_common::db::KeyLookup;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ActiveValue::Set, Condition, QueryOrder};
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, MigrationName, MigrationTrait, SchemaManager, Table,
};

use super::{CorruptRow, contains_pattern, decode_set, encode_set, from_json, json};
use crate::domain::expert::Expert;

/// The `expert` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One expert row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "expert")]
    pub struct Model {
        /// The id (tokens' `expert` claim).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Full name.
        pub display_name: String,
        /// IndustryField numbers as `,2,4,`.
        pub industry_fields: String,
        /// USCCs as `,A,B,`.
        pub affiliations: String,
        /// Employer.
        pub organization: String,
        /// Load limit.
        pub load_limit: i32,
        /// JSON array of declared conflicts.
        pub declared_conflicts: String,
        /// Takes assignments.
        pub active: bool,
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

impl Model {
    /// Back to the domain type.
    pub fn into_domain(self) -> Result<Expert, CorruptRow> {
        let mut industry_fields = Vec::new();
        for f in decode_set(&self.industry_fields) {
            industry_fields.push(
                f.parse()
                    .map_err(|e| CorruptRow::new("expert", &self.id, format!("field {f}: {e}")))?,
            );
        }
        Ok(Expert {
            declared_conflicts: from_json(
                "expert",
                &self.id,
                "declared_conflicts",
                &self.declared_conflicts,
            )?,
            industry_fields,
            affiliations: decode_set(&self.affiliations),
            id: self.id,
            display_name: self.display_name,
            organization: self.organization,
            load_limit: self.load_limit,
            active: self.active,
            create_time_us: self.create_time_us,
            update_time_us: self.update_time_us,
            version: self.version,
        })
    }
}

fn to_active(e: &Expert) -> entity::ActiveModel {
    entity::ActiveModel {
        id: Set(e.id.clone()),
        display_name: Set(e.display_name.clone()),
        industry_fields: Set(encode_set(&e.industry_fields)),
        affiliations: Set(encode_set(&e.affiliations)),
        organization: Set(e.organization.clone()),
        load_limit: Set(e.load_limit),
        declared_conflicts: Set(json(&e.declared_conflicts)),
        active: Set(e.active),
        create_time_us: Set(e.create_time_us),
        update_time_us: Set(e.update_time_us),
        version: Set(e.version),
    }
}

/// Inserts a new expert (duplicate id → unique violation).
pub async fn insert(conn: &impl ConnectionTrait, e: &Expert) -> Result<(), DbErr> {
    Entity::insert(to_active(e)).exec(conn).await?;
    Ok(())
}

/// Writes a changed expert if still at `expected_version`; false otherwise.
pub async fn update_if_version(
    conn: &impl ConnectionTrait,
    e: &Expert,
    expected_version: i64,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .set(to_active(e))
        .filter(Column::Id.eq(e.id.as_str()))
        .filter(Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// One expert by id.
pub async fn get(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.to_string()).by_key(conn).await
}

/// Listing conditions, already validated.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Reviews this IndustryField.
    pub industry_field: Option<i32>,
    /// Affiliated with this USCC.
    pub affiliation: Option<String>,
    /// Active equals.
    pub active: Option<bool>,
    /// Name contains (case-insensitive).
    pub name_contains: Option<String>,
}

/// Every expert matching `filter`, by id. (Experts number in the hundreds: handlers order by
/// load in memory, where the load is known.)
pub async fn all_matching(
    conn: &impl ConnectionTrait,
    filter: &ListFilter,
) -> Result<Vec<Model>, DbErr> {
    let mut cond = Condition::all();
    if let Some(f) = filter.industry_field {
        cond =
            cond.add(Expr::col(Column::IndustryFields).like(contains_pattern(&format!(",{f},"))));
    }
    if let Some(u) = &filter.affiliation {
        cond = cond.add(Expr::col(Column::Affiliations).like(contains_pattern(&format!(",{u},"))));
    }
    if let Some(a) = filter.active {
        cond = cond.add(Column::Active.eq(a));
    }
    if let Some(n) = &filter.name_contains {
        cond = cond.add(
            Expr::expr(Func::lower(Expr::col(Column::DisplayName)))
                .like(contains_pattern(&n.to_lowercase())),
        );
    }
    Entity::find()
        .filter(cond)
        .order_by_asc(Column::Id)
        .all(conn)
        .await
}

/// The expert migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateExperts)]
}

struct CreateExperts;

impl MigrationName for CreateExperts {
    fn name(&self) -> &str {
        "m20261201_000300_review_experts"
    }
}

#[derive(DeriveIden)]
enum ExpertTable {
    #[sea_orm(iden = "expert")]
    Table,
    Id,
    DisplayName,
    IndustryFields,
    Affiliations,
    Organization,
    LoadLimit,
    DeclaredConflicts,
    Active,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateExperts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ExpertTable as E;
        let text = |c: E| ColumnDef::new(c).text().not_null().to_owned();
        let big = |c: E| ColumnDef::new(c).big_integer().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .col(
                        ColumnDef::new(E::Id)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(E::DisplayName))
                    .col(text(E::IndustryFields))
                    .col(text(E::Affiliations))
                    .col(text(E::Organization))
                    .col(ColumnDef::new(E::LoadLimit).integer().not_null())
                    .col(text(E::DeclaredConflicts))
                    .col(ColumnDef::new(E::Active).boolean().not_null())
                    .col(big(E::CreateTimeUs))
                    .col(big(E::UpdateTimeUs))
                    .col(big(E::Version))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ExpertTable::Table).to_owned())
            .await
    }
}
