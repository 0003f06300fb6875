//! Application rows. One application per achievement per program: a unique index, so a second
//! is ALREADY_EXISTS even under concurrency.

use qilu_common::db::KeyLookup;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect};

use crate::domain::application::{AppState, Application};

/// The `award_application` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One application.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "award_application")]
    pub struct Model {
        /// Application id (UUIDv7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Program id.
        pub program_id: String,
        /// Applicant USCC.
        pub uscc: String,
        /// Achievement id.
        pub achievement_id: String,
        /// `IndustryField` number.
        pub industry_field: i32,
        /// `AwardCategory` number.
        pub category: i32,
        /// `AwardGrade` number.
        pub grade: i32,
        /// `ApplicationState` number.
        pub state: i32,
        /// `ApplicationOutcome` number.
        pub outcome: i32,
        /// Rank.
        pub rank: i32,
        /// Score, millipoints.
        pub score_millipoints: i64,
        /// Created, µs.
        pub create_time_us: i64,
        /// The domain application as JSON.
        pub doc: String,
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
    pub fn into_domain(self) -> Result<Application, DbErr> {
        serde_json::from_str(&self.doc).map_err(|e| super::corrupt("application", e))
    }
}

fn to_active(a: &Application) -> Result<entity::ActiveModel, DbErr> {
    Ok(entity::ActiveModel {
        id: Set(a.id.clone()),
        program_id: Set(a.program_id.clone()),
        uscc: Set(a.uscc.clone()),
        achievement_id: Set(a.achievement_id.clone()),
        industry_field: Set(a.industry_field),
        category: Set(a.category),
        grade: Set(a.grade),
        state: Set(a.state.code()),
        outcome: Set(a.outcome),
        rank: Set(a.rank),
        score_millipoints: Set(a.score_millipoints),
        create_time_us: Set(a.create_time_us),
        doc: Set(super::doc(a)?),
        version: Set(a.version),
    })
}

/// Inserts (a second application for the achievement in the program → unique violation).
pub async fn insert(conn: &impl ConnectionTrait, a: &Application) -> Result<(), DbErr> {
    Entity::insert(to_active(a)?).exec(conn).await?;
    Ok(())
}

/// Writes `a` if its version is still `expected`.
pub async fn update_if_version(
    conn: &impl ConnectionTrait,
    a: &Application,
    expected: i64,
) -> Result<bool, DbErr> {
    let r = Entity::update_many()
        .set(to_active(a)?)
        .filter(Column::Id.eq(a.id.as_str()))
        .filter(Column::Version.eq(expected))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// One application of a program.
pub async fn get(
    conn: &impl ConnectionTrait,
    program_id: &str,
    id: &str,
) -> Result<Option<Application>, DbErr> {
    Entity::find_by_id(id.to_string())
        .filter(Column::ProgramId.eq(program_id))
        .by_key(conn)
        .await?
        .map(Model::into_domain)
        .transpose()
}

/// Every application of a program (optionally only ACTIVE ones), by id.
pub async fn of_program(
    conn: &impl ConnectionTrait,
    program_id: &str,
    active_only: bool,
) -> Result<Vec<Application>, DbErr> {
    let mut q = Entity::find().filter(Column::ProgramId.eq(program_id));
    if active_only {
        q = q.filter(Column::State.eq(AppState::Active.code()));
    }
    q.order_by_asc(Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(Model::into_domain)
        .collect()
}

/// Filter of `ListApplications`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Program id (None = every program).
    pub program_id: Option<String>,
    /// USCC.
    pub uscc: Option<String>,
    /// Achievement id.
    pub achievement_id: Option<String>,
    /// `IndustryField` number.
    pub industry_field: Option<i32>,
    /// `AwardCategory` number.
    pub category: Option<i32>,
    /// `AwardGrade` number.
    pub grade: Option<i32>,
    /// `ApplicationState` number.
    pub state: Option<i32>,
    /// `ApplicationOutcome` number.
    pub outcome: Option<i32>,
}

/// Order of `ListApplications`; ties by program then id (the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Creation time (default).
    CreateTime,
    /// Rank ascending.
    Rank,
    /// Score descending.
    ScoreDesc,
}

/// Keyset cursor: (order key, program id, id).
pub type Cursor = (i64, String, String);

/// The order key of `a` under `order`.
pub fn key_of(a: &Application, order: Order) -> i64 {
    match order {
        Order::CreateTime => a.create_time_us,
        Order::Rank => i64::from(a.rank),
        Order::ScoreDesc => a.score_millipoints,
    }
}

/// A page of applications.
pub async fn list(
    conn: &impl ConnectionTrait,
    f: &ListFilter,
    order: Order,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<Application>, DbErr> {
    let mut q = Entity::find();
    if let Some(v) = &f.program_id {
        q = q.filter(Column::ProgramId.eq(v.as_str()));
    }
    if let Some(v) = &f.uscc {
        q = q.filter(Column::Uscc.eq(v.as_str()));
    }
    if let Some(v) = &f.achievement_id {
        q = q.filter(Column::AchievementId.eq(v.as_str()));
    }
    for (col, v) in [
        (Column::IndustryField, f.industry_field),
        (Column::Category, f.category),
        (Column::Grade, f.grade),
        (Column::State, f.state),
        (Column::Outcome, f.outcome),
    ] {
        if let Some(v) = v {
            q = q.filter(col.eq(v));
        }
    }
    let (key_col, desc) = match order {
        Order::CreateTime => (Column::CreateTimeUs, false),
        Order::Rank => (Column::Rank, false),
        Order::ScoreDesc => (Column::ScoreMillipoints, true),
    };
    if let Some((k, p, id)) = after {
        let beyond = if desc { key_col.lt(k) } else { key_col.gt(k) };
        q = q.filter(
            Condition::any()
                .add(beyond)
                .add(key_col.eq(k).and(Column::ProgramId.gt(p.clone())))
                .add(
                    key_col
                        .eq(k)
                        .and(Column::ProgramId.eq(p))
                        .and(Column::Id.gt(id)),
                ),
        );
    }
    q = if desc {
        q.order_by_desc(key_col)
    } else {
        q.order_by_asc(key_col)
    };
    q.order_by_asc(Column::ProgramId)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(Model::into_domain)
        .collect()
}
