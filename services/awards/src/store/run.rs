//! Allocation revisions: every revision is kept (an auditor can see what each objection
//! changed, AIP-162); the latest is the program's allocation.
//!
//! A revision is two things: the run (`award_allocation.doc`: candidates, pools, buckets, totals)
//! and its entries, one row each in `award_allocation_entry`, in the allocation's order
//! (`position`: by bucket, then rank, excluded last), with the columns `ListAllocationEntries`
//! filters on. 100,000 entries are paged from there instead of parsed out of one document.
//! Revisions stored before the entry table existed keep their entries inside the document
//! (`Run::entries_in_rows` false) and are read from it.

use std::collections::BTreeMap;

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};

use crate::domain::allocation::Entry;
use crate::domain::application::outcome_code;
use crate::domain::run::{Label, Run};

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
        /// The run as JSON (without its entries when they are rows).
        pub doc: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `award_allocation_entry` table.
pub mod entry_entity {
    use sea_orm::entity::prelude::*;

    /// One entry of one revision.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "award_allocation_entry")]
    pub struct Model {
        /// Program id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub program_id: String,
        /// Revision.
        #[sea_orm(primary_key, auto_increment = false)]
        pub revision: i32,
        /// Place in the allocation's order (0-based).
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i32,
        /// `ApplicationOutcome` number.
        pub outcome: i32,
        /// `AwardCategory` number.
        pub category: i32,
        /// `AwardGrade` number.
        pub grade: i32,
        /// `IndustryField` number.
        pub industry_field: i32,
        /// Pool id, empty when none.
        pub pool: String,
        /// The entry and its labels as JSON.
        pub doc: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use entity::{Column, Entity, Model};

/// Rows per INSERT: 9 values each stays far below both databases' parameter limits.
const INSERT_CHUNK: usize = 1000;

/// What an entry row keeps.
#[derive(serde::Serialize, serde::Deserialize)]
struct EntryDoc {
    entry: Entry,
    #[serde(default)]
    label: Label,
}

/// Inserts a revision (the primary key makes a second run of one revision impossible), its
/// entries as rows. `on_rows` hears how many entries are written so far.
pub async fn insert(
    conn: &impl ConnectionTrait,
    run: &Run,
    on_rows: &mut (dyn FnMut(usize) + Send),
) -> Result<(), DbErr> {
    let mut head = run.clone();
    head.result.entries = Vec::new();
    head.labels = BTreeMap::new();
    head.entries_in_rows = true;
    Entity::insert(entity::ActiveModel {
        program_id: Set(run.program_id.clone()),
        revision: Set(run.revision),
        doc: Set(super::doc(&head)?),
    })
    .exec(conn)
    .await?;
    let mut written = 0;
    for (chunk_index, chunk) in run.result.entries.chunks(INSERT_CHUNK).enumerate() {
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, e) in chunk.iter().enumerate() {
            let position = i32::try_from(chunk_index * INSERT_CHUNK + i)
                .map_err(|_| DbErr::Custom("more than 2^31 entries".into()))?;
            rows.push(entry_entity::ActiveModel {
                program_id: Set(run.program_id.clone()),
                revision: Set(run.revision),
                position: Set(position),
                outcome: Set(outcome_code(e.outcome)),
                category: Set(e.bucket.category),
                grade: Set(e.bucket.grade),
                industry_field: Set(e.field),
                pool: Set(e.pool.clone().unwrap_or_default()),
                doc: Set(super::doc(&EntryDoc {
                    entry: e.clone(),
                    label: run.labels.get(&e.application).cloned().unwrap_or_default(),
                })?),
            });
        }
        written += rows.len();
        entry_entity::Entity::insert_many(rows).exec(conn).await?;
        on_rows(written);
    }
    Ok(())
}

fn parse(m: Model) -> Result<Run, DbErr> {
    serde_json::from_str(&m.doc).map_err(|e| super::corrupt("allocation", e))
}

/// A revision without its entries (`result.entries` empty unless stored inside the document).
/// `None` for the latest; `Some(r)` for revision r.
pub async fn head(
    conn: &impl ConnectionTrait,
    program_id: &str,
    revision: Option<i32>,
) -> Result<Option<Run>, DbErr> {
    let mut q = Entity::find().filter(Column::ProgramId.eq(program_id));
    q = match revision {
        Some(r) => q.filter(Column::Revision.eq(r)),
        None => q.order_by_desc(Column::Revision),
    };
    q.one(conn).await?.map(parse).transpose()
}

/// The latest revision of a program's allocation, with every entry.
pub async fn latest(conn: &impl ConnectionTrait, program_id: &str) -> Result<Option<Run>, DbErr> {
    match head(conn, program_id, None).await? {
        Some(run) => Ok(Some(with_entries(conn, run).await?)),
        None => Ok(None),
    }
}

/// `run` with its entries and labels loaded from the rows.
pub async fn with_entries(conn: &impl ConnectionTrait, mut run: Run) -> Result<Run, DbErr> {
    if !run.entries_in_rows {
        return Ok(run);
    }
    let rows = entry_entity::Entity::find()
        .filter(entry_entity::Column::ProgramId.eq(&run.program_id))
        .filter(entry_entity::Column::Revision.eq(run.revision))
        .order_by_asc(entry_entity::Column::Position)
        .all(conn)
        .await?;
    for row in rows {
        let d: EntryDoc =
            serde_json::from_str(&row.doc).map_err(|e| super::corrupt("allocation entry", e))?;
        run.labels.insert(d.entry.application.clone(), d.label);
        run.result.entries.push(d.entry);
    }
    run.entries_in_rows = false;
    Ok(run)
}

/// Revisions of a program, newest first, after `before` (exclusive), at most `limit`.
pub async fn revisions(
    conn: &impl ConnectionTrait,
    program_id: &str,
    before: Option<i32>,
    limit: u64,
) -> Result<Vec<Run>, DbErr> {
    let mut q = Entity::find()
        .filter(Column::ProgramId.eq(program_id))
        .order_by_desc(Column::Revision)
        .limit(limit);
    if let Some(b) = before {
        q = q.filter(Column::Revision.lt(b));
    }
    q.all(conn).await?.into_iter().map(parse).collect()
}

/// What `ListAllocationEntries` filters on.
#[derive(Debug, Default, Clone)]
pub struct EntryFilter {
    /// `ApplicationOutcome` number.
    pub outcome: Option<i32>,
    /// `AwardCategory` number.
    pub category: Option<i32>,
    /// `AwardGrade` number.
    pub grade: Option<i32>,
    /// `IndustryField` number.
    pub industry_field: Option<i32>,
    /// Pool id.
    pub pool: Option<String>,
}

impl EntryFilter {
    fn matches(&self, e: &Entry) -> bool {
        self.outcome.is_none_or(|o| o == outcome_code(e.outcome))
            && self.category.is_none_or(|c| c == e.bucket.category)
            && self.grade.is_none_or(|g| g == e.bucket.grade)
            && self.industry_field.is_none_or(|f| f == e.field)
            && self
                .pool
                .as_ref()
                .is_none_or(|p| Some(p) == e.pool.as_ref())
    }
}

/// One page of a revision's entries: (position, entry, label), positions after `after`, plus
/// the number matching the filter in all.
pub async fn entries_page(
    conn: &impl ConnectionTrait,
    run: &Run,
    filter: &EntryFilter,
    after: Option<i32>,
    limit: u64,
) -> Result<(Vec<(i32, Entry, Label)>, u64), DbErr> {
    if !run.entries_in_rows {
        // An older revision: its entries are in the document.
        let matching: Vec<(i32, &Entry)> = run
            .result
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| filter.matches(e))
            .map(|(i, e)| (i32::try_from(i).unwrap_or(i32::MAX), e))
            .collect();
        let total = matching.len() as u64;
        let page = matching
            .into_iter()
            .filter(|(p, _)| after.is_none_or(|a| *p > a))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(p, e)| {
                (
                    p,
                    e.clone(),
                    run.labels.get(&e.application).cloned().unwrap_or_default(),
                )
            })
            .collect();
        return Ok((page, total));
    }
    use entry_entity::Column as C;
    let mut q = entry_entity::Entity::find()
        .filter(C::ProgramId.eq(&run.program_id))
        .filter(C::Revision.eq(run.revision));
    if let Some(o) = filter.outcome {
        q = q.filter(C::Outcome.eq(o));
    }
    if let Some(c) = filter.category {
        q = q.filter(C::Category.eq(c));
    }
    if let Some(g) = filter.grade {
        q = q.filter(C::Grade.eq(g));
    }
    if let Some(f) = filter.industry_field {
        q = q.filter(C::IndustryField.eq(f));
    }
    if let Some(p) = &filter.pool {
        q = q.filter(C::Pool.eq(p));
    }
    let total = q.clone().count(conn).await?;
    if let Some(a) = after {
        q = q.filter(C::Position.gt(a));
    }
    let rows = q.order_by_asc(C::Position).limit(limit).all(conn).await?;
    let mut page = Vec::with_capacity(rows.len());
    for row in rows {
        let d: EntryDoc =
            serde_json::from_str(&row.doc).map_err(|e| super::corrupt("allocation entry", e))?;
        page.push((row.position, d.entry, d.label));
    }
    Ok((page, total))
}
