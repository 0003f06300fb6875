//! Allocation revisions: every revision is kept (an auditor can see what each objection
//! changed); the latest is the program's allocation.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder};

use crate::domain::run::Run;

/// The `award_allocation` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One revision.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "award_allocation")]
    pub struct Model {
        /// Program id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub program_id: String,
        /// Revision (1, 2, ...).
        #[sea_orm(primary_key, auto_increment = false)]
        pub revision: i32,
        /// The run as JSON.
        pub doc: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use entity::{Column, Entity, Model};

/// Inserts a revision (the primary key makes a second run of one revision impossible).
pub async fn insert(conn: &impl ConnectionTrait, run: &Run) -> Result<(), DbErr> {
    Entity::insert(entity::ActiveModel {
        program_id: Set(run.program_id.clone()),
        revision: Set(run.revision),
        doc: Set(super::doc(run)?),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// The latest revision of a program's allocation.
pub async fn latest(conn: &impl ConnectionTrait, program_id: &str) -> Result<Option<Run>, DbErr> {
    Entity::find()
        .filter(Column::ProgramId.eq(program_id))
        .order_by_desc(Column::Revision)
        .one(conn)
        .await?
        .map(|m| serde_json::from_str(&m.doc).map_err(|e| super::corrupt("allocation", e)))
        .transpose()
}
