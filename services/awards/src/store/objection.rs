//! Objection rows.

use qilu_common::db::KeyLookup;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect};

use crate::domain::application::{Objection, ObjectionState};

/// The `award_objection` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One objection.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "award_objection")]
    pub struct Model {
        /// Objection id (UUIDv7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Program id.
        pub program_id: String,
        /// Application id.
        pub application_id: String,
        /// Objector `sub`.
        pub objector: String,
        /// 1 open, 2 resolved.
        pub state: i32,
        /// `ObjectionResolution` number.
        pub resolution: i32,
        /// Filed, µs.
        pub create_time_us: i64,
        /// The domain objection as JSON.
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

/// The stored state code.
pub fn state_code(s: ObjectionState) -> i32 {
    match s {
        ObjectionState::Open => 1,
        ObjectionState::Resolved => 2,
    }
}

impl Model {
    /// Back to the domain type.
    pub fn into_domain(self) -> Result<Objection, DbErr> {
        serde_json::from_str(&self.doc).map_err(|e| super::corrupt("objection", e))
    }
}

fn to_active(o: &Objection) -> Result<entity::ActiveModel, DbErr> {
    Ok(entity::ActiveModel {
        id: Set(o.id.clone()),
        program_id: Set(o.program_id.clone()),
        application_id: Set(o.application_id.clone()),
        objector: Set(o.objector.clone()),
        state: Set(state_code(o.state)),
        resolution: Set(o.resolution),
        create_time_us: Set(o.create_time_us),
        doc: Set(super::doc(o)?),
        version: Set(o.version),
    })
}

/// Inserts a new objection.
pub async fn insert(conn: &impl ConnectionTrait, o: &Objection) -> Result<(), DbErr> {
    Entity::insert(to_active(o)?).exec(conn).await?;
    Ok(())
}

/// Writes `o` if its version is still `expected`.
pub async fn update_if_version(
    conn: &impl ConnectionTrait,
    o: &Objection,
    expected: i64,
) -> Result<bool, DbErr> {
    let r = Entity::update_many()
        .set(to_active(o)?)
        .filter(Column::Id.eq(o.id.as_str()))
        .filter(Column::Version.eq(expected))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// One objection of a program.
pub async fn get(
    conn: &impl ConnectionTrait,
    program_id: &str,
    id: &str,
) -> Result<Option<Objection>, DbErr> {
    Entity::find_by_id(id.to_string())
        .filter(Column::ProgramId.eq(program_id))
        .by_key(conn)
        .await?
        .map(Model::into_domain)
        .transpose()
}

/// Open objections of a program, by filing time.
pub async fn open_of_program(
    conn: &impl ConnectionTrait,
    program_id: &str,
) -> Result<Vec<Objection>, DbErr> {
    Entity::find()
        .filter(Column::ProgramId.eq(program_id))
        .filter(Column::State.eq(state_code(ObjectionState::Open)))
        .order_by_asc(Column::CreateTimeUs)
        .order_by_asc(Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(Model::into_domain)
        .collect()
}

/// Filter of `ListObjections`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Program id.
    pub program_id: String,
    /// State code.
    pub state: Option<i32>,
    /// Application id.
    pub application_id: Option<String>,
    /// `ObjectionResolution` number.
    pub resolution: Option<i32>,
    /// Only this objector's.
    pub objector: Option<String>,
}

/// Keyset cursor: (create time, id).
pub type Cursor = (i64, String);

/// A page of objections by filing time.
pub async fn list(
    conn: &impl ConnectionTrait,
    f: &ListFilter,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<Objection>, DbErr> {
    let mut q = Entity::find().filter(Column::ProgramId.eq(f.program_id.as_str()));
    if let Some(v) = f.state {
        q = q.filter(Column::State.eq(v));
    }
    if let Some(v) = f.resolution {
        q = q.filter(Column::Resolution.eq(v));
    }
    if let Some(v) = &f.application_id {
        q = q.filter(Column::ApplicationId.eq(v.as_str()));
    }
    if let Some(v) = &f.objector {
        q = q.filter(Column::Objector.eq(v.as_str()));
    }
    if let Some((t, id)) = after {
        q = q.filter(
            Condition::any()
                .add(Column::CreateTimeUs.gt(t))
                .add(Column::CreateTimeUs.eq(t).and(Column::Id.gt(id))),
        );
    }
    q.order_by_asc(Column::CreateTimeUs)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(Model::into_domain)
        .collect()
}
