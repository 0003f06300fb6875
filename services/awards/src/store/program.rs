//! Program rows.

use qilu_common::db::KeyLookup;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect};

use crate::domain::program::Program;

/// The `award_program` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One program.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "award_program")]
    pub struct Model {
        /// Program id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `ProgramKind` number.
        pub kind: i32,
        /// Programme year.
        pub year: i32,
        /// `ProgramState` number.
        pub state: i32,
        /// Title (for the substring filter).
        pub display_name: String,
        /// The domain program as JSON.
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
    pub fn into_domain(self) -> Result<Program, DbErr> {
        serde_json::from_str(&self.doc).map_err(|e| super::corrupt("program", e))
    }
}

fn to_active(p: &Program) -> Result<entity::ActiveModel, DbErr> {
    Ok(entity::ActiveModel {
        id: Set(p.id.clone()),
        kind: Set(p.kind.code()),
        year: Set(p.settings.year),
        state: Set(p.state.code()),
        display_name: Set(p.settings.display_name.clone()),
        doc: Set(super::doc(p)?),
        version: Set(p.version),
    })
}

/// Inserts a new program (duplicate id → unique violation).
pub async fn insert(conn: &impl ConnectionTrait, p: &Program) -> Result<(), DbErr> {
    Entity::insert(to_active(p)?).exec(conn).await?;
    Ok(())
}

/// Writes `p` if its stored version is still `expected`; false when someone else changed it.
pub async fn update_if_version(
    conn: &impl ConnectionTrait,
    p: &Program,
    expected: i64,
) -> Result<bool, DbErr> {
    let r = Entity::update_many()
        .set(to_active(p)?)
        .filter(Column::Id.eq(p.id.as_str()))
        .filter(Column::Version.eq(expected))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Deletes program `id` if its row is still at `expected` version; false otherwise.
pub async fn delete_if_version(
    conn: &impl ConnectionTrait,
    id: &str,
    expected: i64,
) -> Result<bool, DbErr> {
    let r = Entity::delete_many()
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(expected))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Whether the program named `name` was deleted: the audit log (append-only, indexed by
/// resource) holds a `DeleteProgram` event for it. Read only, never written here.
pub async fn was_deleted(conn: &impl ConnectionTrait, name: &str) -> Result<bool, DbErr> {
    use qilu_common::audit::entity as audit;
    Ok(audit::Entity::find()
        .filter(audit::Column::Resource.eq(name))
        .filter(audit::Column::Method.like("%/DeleteProgram"))
        .one(conn)
        .await?
        .is_some())
}

/// One program.
pub async fn get(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Program>, DbErr> {
    Entity::find_by_id(id.to_string())
        .by_key(conn)
        .await?
        .map(Model::into_domain)
        .transpose()
}

/// Programs whose year is in `years` (any kind and state), by year then id.
pub async fn in_years(
    conn: &impl ConnectionTrait,
    start: i32,
    end: i32,
) -> Result<Vec<Program>, DbErr> {
    Entity::find()
        .filter(Column::Year.gte(start))
        .filter(Column::Year.lte(end))
        .order_by_asc(Column::Year)
        .order_by_asc(Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(Model::into_domain)
        .collect()
}

/// Filter of `ListPrograms`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// `ProgramKind` number.
    pub kind: Option<i32>,
    /// `ProgramState` number.
    pub state: Option<i32>,
    /// Exclude this state (DRAFT for enterprise and expert tokens).
    pub not_state: Option<i32>,
    /// Year comparisons: (op, year) with op one of `=`, `!=`, `<`, `<=`, `>`, `>=`.
    pub years: Vec<(qilu_common::filter::Op, i32)>,
    /// Substring of the display name (ASCII case-insensitive).
    pub name_contains: Option<String>,
}

/// Order of `ListPrograms`; ties by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Year descending (default).
    YearDesc,
    /// By name.
    Name,
}

/// Keyset cursor: the last row's (year, id).
pub type Cursor = (i32, String);

/// A page of programs.
pub async fn list(
    conn: &impl ConnectionTrait,
    f: &ListFilter,
    order: Order,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<Program>, DbErr> {
    use qilu_common::filter::Op;
    let mut q = Entity::find();
    if let Some(k) = f.kind {
        q = q.filter(Column::Kind.eq(k));
    }
    if let Some(s) = f.state {
        q = q.filter(Column::State.eq(s));
    }
    if let Some(s) = f.not_state {
        q = q.filter(Column::State.ne(s));
    }
    for (op, y) in &f.years {
        let y = *y;
        q = q.filter(match op {
            Op::Eq | Op::Has => Column::Year.eq(y),
            Op::Ne => Column::Year.ne(y),
            Op::Lt => Column::Year.lt(y),
            Op::Le => Column::Year.lte(y),
            Op::Gt => Column::Year.gt(y),
            Op::Ge => Column::Year.gte(y),
        });
    }
    if let Some(s) = &f.name_contains {
        let pattern = format!(
            "%{}%",
            s.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        q = q.filter(
            Expr::expr(Func::lower(Expr::col(Column::DisplayName)))
                .like(LikeExpr::new(pattern).escape('\\')),
        );
    }
    match order {
        Order::YearDesc => {
            if let Some((year, id)) = after {
                q = q.filter(
                    Condition::any()
                        .add(Column::Year.lt(year))
                        .add(Column::Year.eq(year).and(Column::Id.gt(id))),
                );
            }
            q = q.order_by_desc(Column::Year).order_by_asc(Column::Id);
        }
        Order::Name => {
            if let Some((_, id)) = after {
                q = q.filter(Column::Id.gt(id));
            }
            q = q.order_by_asc(Column::Id);
        }
    }
    q.limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(Model::into_domain)
        .collect()
}
