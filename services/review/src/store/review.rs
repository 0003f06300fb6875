//! Review rows: one per (achievement, round, expert) assignment. Scores and veto are written once
//! at submission; a review never changes after SUBMITTED or CANCELLED.

use qilu_common::db::KeyLookup;
use std::collections::HashMap;

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect};
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, Index, MigrationName, MigrationTrait, SchemaManager, Table,
};

use super::{CorruptRow, from_json, json};
use crate::domain::review::{
    AssignmentMethod, DEFAULT_REVIEW_DAYS, ExpertVeto, Review, ReviewState,
};

/// The `review` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One review row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "review")]
    pub struct Model {
        /// Server-assigned id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The achievement's id.
        pub achievement_id: String,
        /// The expert's id.
        pub expert_id: String,
        /// Review round.
        pub round: i32,
        /// ReviewState code.
        pub state: i32,
        /// AssignmentMethod code.
        pub method: i32,
        /// Who assigned.
        pub assigned_by: String,
        /// Scores JSON or "".
        pub scores: String,
        /// Total points (0 until submitted).
        pub total_points: i32,
        /// Comment.
        pub comment: String,
        /// VetoCategory number, 0 = no veto.
        pub veto_category: i32,
        /// Veto evidence.
        pub veto_evidence: String,
        /// Why cancelled.
        pub cancel_reason: String,
        /// µs.
        pub assign_time_us: i64,
        /// µs, 0 = not submitted.
        pub submit_time_us: i64,
        /// µs.
        pub update_time_us: i64,
        /// Optimistic-concurrency version.
        pub version: i64,
        /// Last day to submit, `YYYY-MM-DD` (migration `m20261208_000100_review_due_dates`).
        pub due_date: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use entity::{Column, Entity, Model};

impl Model {
    /// Back to the domain type.
    pub fn into_domain(self) -> Result<Review, CorruptRow> {
        let corrupt = |what: String| CorruptRow::new("review", &self.id, what);
        let state = ReviewState::from_code(self.state)
            .ok_or_else(|| corrupt(format!("state {}", self.state)))?;
        let method = AssignmentMethod::from_code(self.method)
            .ok_or_else(|| corrupt(format!("method {}", self.method)))?;
        let veto = if self.veto_category == 0 {
            None
        } else {
            let category = crate::domain::review::VetoCategory::from_code(self.veto_category)
                .ok_or_else(|| corrupt(format!("veto category {}", self.veto_category)))?;
            Some(ExpertVeto {
                category,
                evidence: self.veto_evidence.clone(),
            })
        };
        let scores = if self.scores.is_empty() {
            None
        } else {
            Some(from_json("review", &self.id, "scores", &self.scores)?)
        };
        Ok(Review {
            id: self.id,
            achievement_id: self.achievement_id,
            expert_id: self.expert_id,
            round: self.round,
            state,
            method,
            assigned_by: self.assigned_by,
            scores,
            comment: self.comment,
            veto,
            cancel_reason: self.cancel_reason,
            assign_time_us: self.assign_time_us,
            submit_time_us: (self.submit_time_us != 0).then_some(self.submit_time_us),
            update_time_us: self.update_time_us,
            version: self.version,
            due_date: self.due_date,
        })
    }
}

fn to_active(r: &Review) -> entity::ActiveModel {
    entity::ActiveModel {
        id: Set(r.id.clone()),
        achievement_id: Set(r.achievement_id.clone()),
        expert_id: Set(r.expert_id.clone()),
        round: Set(r.round),
        state: Set(r.state.code()),
        method: Set(r.method.code()),
        assigned_by: Set(r.assigned_by.clone()),
        scores: Set(r.scores.as_ref().map(json).unwrap_or_default()),
        total_points: Set(r.scores.map_or(0, |s| s.total())),
        comment: Set(r.comment.clone()),
        veto_category: Set(r.veto.as_ref().map_or(0, |v| v.category.code())),
        veto_evidence: Set(r
            .veto
            .as_ref()
            .map(|v| v.evidence.clone())
            .unwrap_or_default()),
        cancel_reason: Set(r.cancel_reason.clone()),
        assign_time_us: Set(r.assign_time_us),
        submit_time_us: Set(r.submit_time_us.unwrap_or(0)),
        update_time_us: Set(r.update_time_us),
        version: Set(r.version),
        due_date: Set(r.due_date.clone()),
    }
}

/// Inserts a new review.
pub async fn insert(conn: &impl ConnectionTrait, r: &Review) -> Result<(), DbErr> {
    Entity::insert(to_active(r)).exec(conn).await?;
    Ok(())
}

/// Writes a changed review if still at `expected_version`; false otherwise.
pub async fn update_if_version(
    conn: &impl ConnectionTrait,
    r: &Review,
    expected_version: i64,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .set(to_active(r))
        .filter(Column::Id.eq(r.id.as_str()))
        .filter(Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// One review of an achievement.
pub async fn get(
    conn: &impl ConnectionTrait,
    achievement_id: &str,
    id: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.to_string())
        .filter(Column::AchievementId.eq(achievement_id))
        .by_key(conn)
        .await
}

/// Every review of an achievement in `round` (any state), by assignment time then id.
pub async fn of_round(
    conn: &impl ConnectionTrait,
    achievement_id: &str,
    round: i32,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::AchievementId.eq(achievement_id))
        .filter(Column::Round.eq(round))
        .order_by_asc(Column::AssignTimeUs)
        .order_by_asc(Column::Id)
        .all(conn)
        .await
}

/// Open (ASSIGNED) reviews held by `expert_id` on achievements among `achievement_ids`.
pub async fn open_of_expert_on(
    conn: &impl ConnectionTrait,
    expert_id: &str,
    achievement_ids: &[String],
) -> Result<Vec<Model>, DbErr> {
    if achievement_ids.is_empty() {
        return Ok(Vec::new());
    }
    Entity::find()
        .filter(Column::ExpertId.eq(expert_id))
        .filter(Column::State.eq(ReviewState::Assigned.code()))
        .filter(Column::AchievementId.is_in(achievement_ids.iter().cloned()))
        .all(conn)
        .await
}

/// Every review held by `expert_id` (any state), for visibility checks.
pub async fn of_expert(conn: &impl ConnectionTrait, expert_id: &str) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::ExpertId.eq(expert_id))
        .all(conn)
        .await
}

/// Open (ASSIGNED) review counts per expert.
pub async fn open_counts(conn: &impl ConnectionTrait) -> Result<HashMap<String, i64>, DbErr> {
    let rows: Vec<(String, i64)> = Entity::find()
        .select_only()
        .column(Column::ExpertId)
        .column_as(Column::Id.count(), "n")
        .filter(Column::State.eq(ReviewState::Assigned.code()))
        .group_by(Column::ExpertId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// The key of the last row of a page.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// Achievement id.
    pub a: String,
    /// Assignment time, µs.
    pub t: i64,
    /// Review id.
    pub id: String,
}

/// Listing conditions, already validated and already narrowed to what the caller may see.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// One achievement, or all.
    pub achievement_id: Option<String>,
    /// State code equals.
    pub state: Option<i32>,
    /// Expert id equals.
    pub expert_id: Option<String>,
    /// Round equals.
    pub round: Option<i32>,
    /// Vetoed or not.
    pub vetoed: Option<bool>,
    /// Overdue or not on a day (`YYYY-MM-DD`, programme time zone): ASSIGNED with a due date
    /// before it.
    pub overdue: Option<(bool, String)>,
    /// Visibility: the row must match this condition (built by the handler).
    pub visible: Option<Condition>,
}

/// One page of reviews by achievement, then assignment time, then id.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: ListFilter,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut cond = Condition::all();
    if let Some(a) = filter.achievement_id {
        cond = cond.add(Column::AchievementId.eq(a));
    }
    if let Some(s) = filter.state {
        cond = cond.add(Column::State.eq(s));
    }
    if let Some(e) = filter.expert_id {
        cond = cond.add(Column::ExpertId.eq(e));
    }
    if let Some(r) = filter.round {
        cond = cond.add(Column::Round.eq(r));
    }
    match filter.vetoed {
        Some(true) => cond = cond.add(Column::VetoCategory.ne(0)),
        Some(false) => cond = cond.add(Column::VetoCategory.eq(0)),
        None => {}
    }
    if let Some((overdue, today)) = filter.overdue {
        // `domain::review::Review::overdue`, as a condition.
        let late = Condition::all()
            .add(Column::State.eq(ReviewState::Assigned.code()))
            .add(Column::DueDate.ne(""))
            .add(Column::DueDate.lt(today));
        cond = cond.add(if overdue { late } else { late.not() });
    }
    if let Some(v) = filter.visible {
        cond = cond.add(v);
    }
    if let Some(c) = after {
        cond = cond.add(
            Condition::any()
                .add(Column::AchievementId.gt(c.a.clone()))
                .add(
                    Condition::all()
                        .add(Column::AchievementId.eq(c.a.clone()))
                        .add(Column::AssignTimeUs.gt(c.t)),
                )
                .add(
                    Condition::all()
                        .add(Column::AchievementId.eq(c.a))
                        .add(Column::AssignTimeUs.eq(c.t))
                        .add(Column::Id.gt(c.id)),
                ),
        );
    }
    Entity::find()
        .filter(cond)
        .order_by_asc(Column::AchievementId)
        .order_by_asc(Column::AssignTimeUs)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// The review migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateReviews)]
}

/// Review migrations added after the common `later_common_migrations` (listed after them).
pub fn later_migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(AddDueDates)]
}

/// Adds `review.due_date`. Reviews assigned before it get the default the contract states: the
/// assignment day plus [`DEFAULT_REVIEW_DAYS`], the day counted in Asia/Shanghai (the default
/// programme time zone; a migration reads no configuration). So a review that has waited since
/// before the upgrade shows up as overdue at once.
struct AddDueDates;

impl MigrationName for AddDueDates {
    fn name(&self) -> &str {
        "m20261208_000100_review_due_dates"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddDueDates {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ReviewTable::Table)
                    .add_column(
                        ColumnDef::new(ReviewTable::DueDate)
                            .string_len(10)
                            .not_null()
                            .default("")
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        let conn = manager.get_connection();
        let rows: Vec<(String, i64)> = Entity::find()
            .select_only()
            .column(Column::Id)
            .column(Column::AssignTimeUs)
            .into_tuple()
            .all(conn)
            .await?;
        for (id, assigned_us) in rows {
            let day = qilu_common::time::to_datetime(assigned_us)
                .map(|t| t.with_timezone(&chrono_tz::Asia::Shanghai).date_naive())
                .unwrap_or_default();
            let due = day
                .checked_add_days(chrono::Days::new(DEFAULT_REVIEW_DAYS))
                .unwrap_or(day);
            Entity::update_many()
                .col_expr(
                    Column::DueDate,
                    sea_orm::sea_query::Expr::value(due.format("%Y-%m-%d").to_string()),
                )
                .filter(Column::Id.eq(id))
                .exec(conn)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ReviewTable::Table)
                    .drop_column(ReviewTable::DueDate)
                    .to_owned(),
            )
            .await
    }
}

struct CreateReviews;

impl MigrationName for CreateReviews {
    fn name(&self) -> &str {
        "m20261201_000400_review_reviews"
    }
}

#[derive(DeriveIden)]
enum ReviewTable {
    #[sea_orm(iden = "review")]
    Table,
    Id,
    AchievementId,
    ExpertId,
    Round,
    State,
    Method,
    AssignedBy,
    Scores,
    TotalPoints,
    Comment,
    VetoCategory,
    VetoEvidence,
    CancelReason,
    AssignTimeUs,
    SubmitTimeUs,
    UpdateTimeUs,
    Version,
    DueDate,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateReviews {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ReviewTable as R;
        let text = |c: R| ColumnDef::new(c).text().not_null().to_owned();
        let int = |c: R| ColumnDef::new(c).integer().not_null().to_owned();
        let big = |c: R| ColumnDef::new(c).big_integer().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(
                        ColumnDef::new(R::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(R::AchievementId).string_len(64).not_null())
                    .col(ColumnDef::new(R::ExpertId).string_len(63).not_null())
                    .col(int(R::Round))
                    .col(int(R::State))
                    .col(int(R::Method))
                    .col(text(R::AssignedBy))
                    .col(text(R::Scores))
                    .col(int(R::TotalPoints))
                    .col(text(R::Comment))
                    .col(int(R::VetoCategory))
                    .col(text(R::VetoEvidence))
                    .col(text(R::CancelReason))
                    .col(big(R::AssignTimeUs))
                    .col(big(R::SubmitTimeUs))
                    .col(big(R::UpdateTimeUs))
                    .col(big(R::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("review_achievement")
                    .table(R::Table)
                    .col(R::AchievementId)
                    .col(R::AssignTimeUs)
                    .col(R::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("review_expert_state")
                    .table(R::Table)
                    .col(R::ExpertId)
                    .col(R::State)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ReviewTable::Table).to_owned())
            .await
    }
}
