//! Achievement rows: the entity (nested values as JSON text), conversion to the domain type, and
//! the queries handlers use. The screening verdict and decisions are stored whole, as made.

use qilu_common::db::KeyLookup;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect};
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, Index, MigrationName, MigrationTrait, SchemaManager, Table,
};

use super::{CorruptRow, contains_pattern, from_json, json};
use crate::domain::achievement::{Achievement, Fields, State};

/// The `achievement` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One achievement row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "achievement")]
    pub struct Model {
        /// Server-assigned id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Owner USCC.
        pub owner: String,
        /// Title.
        pub title: String,
        /// IndustryField number.
        pub industry_field: i32,
        /// TRL.
        pub technology_readiness_level: i32,
        /// Summary.
        pub summary: String,
        /// GreenData JSON.
        pub green_data: String,
        /// State code.
        pub state: i32,
        /// Verdict JSON or "".
        pub screening: String,
        /// ScreeningOutcome number of `screening` (0 = none), for filtering.
        pub screening_outcome: i32,
        /// Round.
        pub review_round: i32,
        /// Decision JSON or "".
        pub decision: String,
        /// JSON array of decisions.
        pub previous_decisions: String,
        /// Appeal JSON or "".
        pub appeal: String,
        /// `YYYY-MM-DD` or "".
        pub appeal_deadline: String,
        /// Why withdrawn.
        pub withdraw_reason: String,
        /// µs, 0 = never submitted.
        pub submit_time_us: i64,
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

const TABLE: &str = "achievement";

impl Model {
    /// Back to the domain type.
    pub fn into_domain(self) -> Result<Achievement, CorruptRow> {
        let id = self.id.clone();
        let screening = if self.screening.is_empty() {
            None
        } else {
            Some(from_json(TABLE, &id, "screening", &self.screening)?)
        };
        let decision = if self.decision.is_empty() {
            None
        } else {
            Some(from_json(TABLE, &id, "decision", &self.decision)?)
        };
        let appeal = if self.appeal.is_empty() {
            None
        } else {
            Some(from_json(TABLE, &id, "appeal", &self.appeal)?)
        };
        let state = State::from_code(self.state)
            .ok_or_else(|| CorruptRow::new(TABLE, &id, format!("state {}", self.state)))?;
        Ok(Achievement {
            fields: Fields {
                title: self.title,
                industry_field: self.industry_field,
                technology_readiness_level: self.technology_readiness_level,
                summary: self.summary,
                green_data: from_json(TABLE, &id, "green_data", &self.green_data)?,
            },
            owner: self.owner,
            state,
            screening,
            review_round: self.review_round,
            decision,
            previous_decisions: from_json(
                TABLE,
                &id,
                "previous_decisions",
                &self.previous_decisions,
            )?,
            appeal,
            appeal_deadline: (!self.appeal_deadline.is_empty()).then_some(self.appeal_deadline),
            withdraw_reason: self.withdraw_reason,
            submit_time_us: (self.submit_time_us != 0).then_some(self.submit_time_us),
            create_time_us: self.create_time_us,
            update_time_us: self.update_time_us,
            version: self.version,
            id: self.id,
        })
    }
}

fn to_active(a: &Achievement) -> entity::ActiveModel {
    entity::ActiveModel {
        id: Set(a.id.clone()),
        owner: Set(a.owner.clone()),
        title: Set(a.fields.title.clone()),
        industry_field: Set(a.fields.industry_field),
        technology_readiness_level: Set(a.fields.technology_readiness_level),
        summary: Set(a.fields.summary.clone()),
        green_data: Set(json(&a.fields.green_data)),
        state: Set(a.state.code()),
        screening: Set(a.screening.as_ref().map(json).unwrap_or_default()),
        screening_outcome: Set(a.screening.as_ref().map_or(0, |v| v.outcome.code())),
        review_round: Set(a.review_round),
        decision: Set(a.decision.as_ref().map(json).unwrap_or_default()),
        previous_decisions: Set(json(&a.previous_decisions)),
        appeal: Set(a.appeal.as_ref().map(json).unwrap_or_default()),
        appeal_deadline: Set(a.appeal_deadline.clone().unwrap_or_default()),
        withdraw_reason: Set(a.withdraw_reason.clone()),
        submit_time_us: Set(a.submit_time_us.unwrap_or(0)),
        create_time_us: Set(a.create_time_us),
        update_time_us: Set(a.update_time_us),
        version: Set(a.version),
    }
}

/// Inserts a new achievement.
pub async fn insert(conn: &impl ConnectionTrait, a: &Achievement) -> Result<(), DbErr> {
    Entity::insert(to_active(a)).exec(conn).await?;
    Ok(())
}

/// Writes a changed achievement if it is still at `expected_version`; false when it moved.
pub async fn update_if_version(
    conn: &impl ConnectionTrait,
    a: &Achievement,
    expected_version: i64,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .set(to_active(a))
        .filter(Column::Id.eq(a.id.as_str()))
        .filter(Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Deletes achievement `id` if its row is still at `expected_version`; false otherwise.
pub async fn delete_if_version(
    conn: &impl ConnectionTrait,
    id: &str,
    expected_version: i64,
) -> Result<bool, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// One achievement by id.
pub async fn get(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.to_string()).by_key(conn).await
}

/// Several achievements by id (any order).
pub async fn get_many(conn: &impl ConnectionTrait, ids: &[String]) -> Result<Vec<Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find()
        .filter(Column::Id.is_in(ids.iter().cloned()))
        .all(conn)
        .await
}

/// Ids of the achievements owned by `uscc` in any of `states`.
pub async fn ids_owned_in(
    conn: &impl ConnectionTrait,
    uscc: &str,
    states: &[State],
) -> Result<Vec<String>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::Owner.eq(uscc))
        .filter(Column::State.is_in(states.iter().map(|s| s.code())))
        .into_tuple()
        .all(conn)
        .await
}

/// Which time a listing orders by; the id breaks ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `create_time`.
    CreateTime {
        /// Descending.
        desc: bool,
    },
    /// `submit_time` (drafts count as 0).
    SubmitTime {
        /// Descending.
        desc: bool,
    },
}

/// The key of the last row of a page.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// Its time, µs.
    pub t: i64,
    /// Its id.
    pub id: String,
}

/// Listing conditions, already validated.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Owner USCC equals.
    pub owner: Option<String>,
    /// State code equals.
    pub state: Option<i32>,
    /// IndustryField equals.
    pub industry_field: Option<i32>,
    /// ScreeningOutcome equals.
    pub screening_outcome: Option<i32>,
    /// Title contains (case-insensitive).
    pub title_contains: Option<String>,
    /// Only these ids (an expert's assigned achievements).
    pub only_ids: Option<Vec<String>>,
}

/// One page of achievements (`limit` rows) after `after`.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &ListFilter,
    order: Order,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut cond = Condition::all();
    if let Some(v) = &filter.owner {
        cond = cond.add(Column::Owner.eq(v.clone()));
    }
    if let Some(v) = filter.state {
        cond = cond.add(Column::State.eq(v));
    }
    if let Some(v) = filter.industry_field {
        cond = cond.add(Column::IndustryField.eq(v));
    }
    if let Some(v) = filter.screening_outcome {
        cond = cond.add(Column::ScreeningOutcome.eq(v));
    }
    if let Some(n) = &filter.title_contains {
        cond = cond.add(
            Expr::expr(Func::lower(Expr::col(Column::Title)))
                .like(contains_pattern(&n.to_lowercase())),
        );
    }
    if let Some(ids) = &filter.only_ids {
        cond = cond.add(Column::Id.is_in(ids.iter().cloned()));
    }
    let (col, desc) = match order {
        Order::CreateTime { desc } => (Column::CreateTimeUs, desc),
        Order::SubmitTime { desc } => (Column::SubmitTimeUs, desc),
    };
    if let Some(c) = after {
        cond = cond.add(if desc {
            Condition::any()
                .add(col.lt(c.t))
                .add(Condition::all().add(col.eq(c.t)).add(Column::Id.lt(c.id)))
        } else {
            Condition::any()
                .add(col.gt(c.t))
                .add(Condition::all().add(col.eq(c.t)).add(Column::Id.gt(c.id)))
        });
    }
    let query = Entity::find().filter(cond);
    let query = if desc {
        query.order_by_desc(col).order_by_desc(Column::Id)
    } else {
        query.order_by_asc(col).order_by_asc(Column::Id)
    };
    query.limit(limit).all(conn).await
}

/// The achievement migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateAchievements)]
}

struct CreateAchievements;

impl MigrationName for CreateAchievements {
    fn name(&self) -> &str {
        "m20261201_000200_review_achievements"
    }
}

#[derive(DeriveIden)]
enum AchievementTable {
    #[sea_orm(iden = "achievement")]
    Table,
    Id,
    Owner,
    Title,
    IndustryField,
    TechnologyReadinessLevel,
    Summary,
    GreenData,
    State,
    Screening,
    ScreeningOutcome,
    ReviewRound,
    Decision,
    PreviousDecisions,
    Appeal,
    AppealDeadline,
    WithdrawReason,
    SubmitTimeUs,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAchievements {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use AchievementTable as A;
        let text = |c: A| ColumnDef::new(c).text().not_null().to_owned();
        let int = |c: A| ColumnDef::new(c).integer().not_null().to_owned();
        let big = |c: A| ColumnDef::new(c).big_integer().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .col(
                        ColumnDef::new(A::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(A::Owner).string_len(18).not_null())
                    .col(text(A::Title))
                    .col(int(A::IndustryField))
                    .col(int(A::TechnologyReadinessLevel))
                    .col(text(A::Summary))
                    .col(text(A::GreenData))
                    .col(int(A::State))
                    .col(text(A::Screening))
                    .col(int(A::ScreeningOutcome))
                    .col(int(A::ReviewRound))
                    .col(text(A::Decision))
                    .col(text(A::PreviousDecisions))
                    .col(text(A::Appeal))
                    .col(text(A::AppealDeadline))
                    .col(text(A::WithdrawReason))
                    .col(big(A::SubmitTimeUs))
                    .col(big(A::CreateTimeUs))
                    .col(big(A::UpdateTimeUs))
                    .col(big(A::Version))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("achievement_owner", A::Owner),
            ("achievement_create_time", A::CreateTimeUs),
            ("achievement_submit_time", A::SubmitTimeUs),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(A::Table)
                        .col(col)
                        .col(A::Id)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AchievementTable::Table).to_owned())
            .await
    }
}
