//! Annual figures as stored: a header row per (enterprise, year) carrying the version, and one
//! row per reported figure with its source and time ("long" format, so a new figure kind needs
//! no schema change and an unreported figure is simply absent).

use qilu_common::db::KeyLookup;
use std::collections::{BTreeMap, HashMap};

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, QueryOrder};
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, Index, MigrationName, MigrationTrait, SchemaManager, Table,
};

use crate::domain::figures::{AnnualFigures, FigureKind, Reported};

/// Header rows: one per enterprise and year.
pub mod year_entity {
    use sea_orm::entity::prelude::*;

    /// An enterprise-year.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "annual_figures")]
    pub struct Model {
        /// Enterprise USCC.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uscc: String,
        /// Year.
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
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

/// Figure rows: one per enterprise, year and figure kind.
pub mod figure_entity {
    use sea_orm::entity::prelude::*;

    /// One reported figure.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "annual_figure")]
    pub struct Model {
        /// Enterprise USCC.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uscc: String,
        /// Year.
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        /// `FigureKind` code, e.g. `revenue_fen`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub figure: String,
        /// Value.
        pub value: i64,
        /// `FigureSource` number.
        pub source: i32,
        /// Reference text.
        pub reference: String,
        /// µs.
        pub update_time_us: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The figures migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateAnnualFigures)]
}

struct CreateAnnualFigures;

impl MigrationName for CreateAnnualFigures {
    fn name(&self) -> &str {
        "m20261128_000200_registry_annual_figures"
    }
}

#[derive(DeriveIden)]
enum AnnualFiguresT {
    #[sea_orm(iden = "annual_figures")]
    Table,
    Uscc,
    Year,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

#[derive(DeriveIden)]
enum AnnualFigure {
    Table,
    Uscc,
    Year,
    Figure,
    Value,
    Source,
    Reference,
    UpdateTimeUs,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAnnualFigures {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AnnualFiguresT::Table)
                    .col(
                        ColumnDef::new(AnnualFiguresT::Uscc)
                            .string_len(18)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AnnualFiguresT::Year).integer().not_null())
                    .col(
                        ColumnDef::new(AnnualFiguresT::CreateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AnnualFiguresT::UpdateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AnnualFiguresT::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(AnnualFiguresT::Uscc)
                            .col(AnnualFiguresT::Year),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AnnualFigure::Table)
                    .col(ColumnDef::new(AnnualFigure::Uscc).string_len(18).not_null())
                    .col(ColumnDef::new(AnnualFigure::Year).integer().not_null())
                    .col(
                        ColumnDef::new(AnnualFigure::Figure)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AnnualFigure::Value).big_integer().not_null())
                    .col(ColumnDef::new(AnnualFigure::Source).integer().not_null())
                    .col(ColumnDef::new(AnnualFigure::Reference).text().not_null())
                    .col(
                        ColumnDef::new(AnnualFigure::UpdateTimeUs)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(AnnualFigure::Uscc)
                            .col(AnnualFigure::Year)
                            .col(AnnualFigure::Figure),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AnnualFigure::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AnnualFiguresT::Table).to_owned())
            .await
    }
}

fn assemble(header: year_entity::Model, rows: Vec<figure_entity::Model>) -> AnnualFigures {
    let mut figures = BTreeMap::new();
    for row in rows {
        // A code no longer known (a retired figure kind) is skipped, not an error.
        if let Some(kind) = FigureKind::parse(&row.figure) {
            figures.insert(
                kind,
                Reported {
                    value: row.value,
                    source: row.source,
                    reference: row.reference,
                    update_time_us: row.update_time_us,
                },
            );
        }
    }
    AnnualFigures {
        uscc: header.uscc,
        year: header.year,
        figures,
        create_time_us: header.create_time_us,
        update_time_us: header.update_time_us,
        version: header.version,
    }
}

/// The figures of one enterprise for one year.
pub async fn get(
    conn: &impl ConnectionTrait,
    uscc: &str,
    year: i32,
) -> Result<Option<AnnualFigures>, DbErr> {
    let Some(header) = year_entity::Entity::find_by_id((uscc.to_string(), year))
        .by_key(conn)
        .await?
    else {
        return Ok(None);
    };
    let rows = figure_entity::Entity::find()
        .filter(figure_entity::Column::Uscc.eq(uscc))
        .filter(figure_entity::Column::Year.eq(year))
        .all(conn)
        .await?;
    Ok(Some(assemble(header, rows)))
}

/// Every year of one enterprise, newest first.
pub async fn list_years(
    conn: &impl ConnectionTrait,
    uscc: &str,
) -> Result<Vec<AnnualFigures>, DbErr> {
    let headers = year_entity::Entity::find()
        .filter(year_entity::Column::Uscc.eq(uscc))
        .order_by_desc(year_entity::Column::Year)
        .all(conn)
        .await?;
    let rows = figure_entity::Entity::find()
        .filter(figure_entity::Column::Uscc.eq(uscc))
        .all(conn)
        .await?;
    let mut by_year: HashMap<i32, Vec<figure_entity::Model>> = HashMap::new();
    for row in rows {
        by_year.entry(row.year).or_default().push(row);
    }
    Ok(headers
        .into_iter()
        .map(|h| {
            let rows = by_year.remove(&h.year).unwrap_or_default();
            assemble(h, rows)
        })
        .collect())
}

/// For each enterprise, the latest year up to `up_to_year` (inclusive) in which `kind` was
/// reported, and its value: `uscc → (year, value)`. Enterprises without it are absent.
pub async fn latest_value(
    conn: &impl ConnectionTrait,
    usccs: &[String],
    kind: FigureKind,
    up_to_year: i32,
) -> Result<HashMap<String, (i32, i64)>, DbErr> {
    let mut out: HashMap<String, (i32, i64)> = HashMap::new();
    // SQLite limits bound parameters per statement: ask in chunks.
    for chunk in usccs.chunks(500) {
        let rows = figure_entity::Entity::find()
            .filter(figure_entity::Column::Uscc.is_in(chunk.iter().cloned()))
            .filter(figure_entity::Column::Figure.eq(kind.as_str()))
            .filter(figure_entity::Column::Year.lte(up_to_year))
            .all(conn)
            .await?;
        for row in rows {
            let newer = out.get(&row.uscc).is_none_or(|(y, _)| row.year > *y);
            if newer {
                out.insert(row.uscc.clone(), (row.year, row.value));
            }
        }
    }
    Ok(out)
}

/// Writes figures: creates the year (version 1) or bumps its version, and upserts each figure
/// in `changes`. The caller holds the write transaction and has checked the etag.
pub async fn write(
    conn: &impl ConnectionTrait,
    figures: &AnnualFigures,
    changes: &[FigureKind],
) -> Result<(), DbErr> {
    let header = year_entity::ActiveModel {
        uscc: Set(figures.uscc.clone()),
        year: Set(figures.year),
        create_time_us: Set(figures.create_time_us),
        update_time_us: Set(figures.update_time_us),
        version: Set(figures.version),
    };
    year_entity::Entity::insert(header)
        .on_conflict(
            OnConflict::columns([year_entity::Column::Uscc, year_entity::Column::Year])
                .update_columns([
                    year_entity::Column::UpdateTimeUs,
                    year_entity::Column::Version,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    for kind in changes {
        match figures.figures.get(kind) {
            Some(r) => {
                let row = figure_entity::ActiveModel {
                    uscc: Set(figures.uscc.clone()),
                    year: Set(figures.year),
                    figure: Set(kind.as_str().to_string()),
                    value: Set(r.value),
                    source: Set(r.source),
                    reference: Set(r.reference.clone()),
                    update_time_us: Set(r.update_time_us),
                };
                figure_entity::Entity::insert(row)
                    .on_conflict(
                        OnConflict::columns([
                            figure_entity::Column::Uscc,
                            figure_entity::Column::Year,
                            figure_entity::Column::Figure,
                        ])
                        .update_columns([
                            figure_entity::Column::Value,
                            figure_entity::Column::Source,
                            figure_entity::Column::Reference,
                            figure_entity::Column::UpdateTimeUs,
                        ])
                        .to_owned(),
                    )
                    .exec(conn)
                    .await?;
            }
            None => {
                // A masked figure with no value clears it (the figure becomes "not reported").
                figure_entity::Entity::delete_many()
                    .filter(figure_entity::Column::Uscc.eq(figures.uscc.clone()))
                    .filter(figure_entity::Column::Year.eq(figures.year))
                    .filter(figure_entity::Column::Figure.eq(kind.as_str()))
                    .exec(conn)
                    .await?;
            }
        }
    }
    Ok(())
}

/// The key of the last record of a `list_page` page.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct YearCursor {
    /// Year of the last record.
    pub year: i32,
    /// Its enterprise.
    pub uscc: String,
}

/// One page of year records (`limit` of them) ordered by year (then USCC, in the same
/// direction), optionally for one enterprise and within `min_year..=max_year`, after `after`.
pub async fn list_page(
    conn: &impl ConnectionTrait,
    uscc: Option<&str>,
    min_year: Option<i32>,
    max_year: Option<i32>,
    desc: bool,
    after: Option<&YearCursor>,
    limit: u64,
) -> Result<Vec<AnnualFigures>, DbErr> {
    use sea_orm::{Condition, QuerySelect};
    let mut cond = Condition::all();
    if let Some(u) = uscc {
        cond = cond.add(year_entity::Column::Uscc.eq(u));
    }
    if let Some(y) = min_year {
        cond = cond.add(year_entity::Column::Year.gte(y));
    }
    if let Some(y) = max_year {
        cond = cond.add(year_entity::Column::Year.lte(y));
    }
    if let Some(c) = after {
        let (year, code) = (c.year, c.uscc.clone());
        cond = cond.add(if desc {
            Condition::any()
                .add(year_entity::Column::Year.lt(year))
                .add(
                    Condition::all()
                        .add(year_entity::Column::Year.eq(year))
                        .add(year_entity::Column::Uscc.lt(code)),
                )
        } else {
            Condition::any()
                .add(year_entity::Column::Year.gt(year))
                .add(
                    Condition::all()
                        .add(year_entity::Column::Year.eq(year))
                        .add(year_entity::Column::Uscc.gt(code)),
                )
        });
    }
    let query = year_entity::Entity::find().filter(cond);
    let query = if desc {
        query
            .order_by_desc(year_entity::Column::Year)
            .order_by_desc(year_entity::Column::Uscc)
    } else {
        query
            .order_by_asc(year_entity::Column::Year)
            .order_by_asc(year_entity::Column::Uscc)
    };
    let headers = query.limit(limit).all(conn).await?;
    if headers.is_empty() {
        return Ok(Vec::new());
    }
    let mut usccs: Vec<String> = headers.iter().map(|h| h.uscc.clone()).collect();
    usccs.sort_unstable();
    usccs.dedup();
    let mut years: Vec<i32> = headers.iter().map(|h| h.year).collect();
    years.sort_unstable();
    years.dedup();
    let mut by_key: HashMap<(String, i32), Vec<figure_entity::Model>> = HashMap::new();
    // Pages hold at most 1001 records: few enough distinct codes and years for one IN list
    // each, chunked for SQLite's bound-parameter limit.
    for chunk in usccs.chunks(400) {
        let rows = figure_entity::Entity::find()
            .filter(figure_entity::Column::Uscc.is_in(chunk.iter().cloned()))
            .filter(figure_entity::Column::Year.is_in(years.iter().copied()))
            .all(conn)
            .await?;
        for row in rows {
            by_key
                .entry((row.uscc.clone(), row.year))
                .or_default()
                .push(row);
        }
    }
    Ok(headers
        .into_iter()
        .map(|h| {
            let rows = by_key.remove(&(h.uscc.clone(), h.year)).unwrap_or_default();
            assemble(h, rows)
        })
        .collect())
}
