//! The aggregate queries behind programme statistics. Each answers in one statement (or one
//! per chunk of bound parameters), never by loading enterprise rows one at a time, and works
//! the same on SQLite and PostgreSQL. Reads only; no tables of its own.

use std::collections::HashMap;

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{QueryOrder, QuerySelect};

use crate::domain::figures::FigureKind;
use crate::domain::statistics::{Cell, ZoneRef, year_bounds};

/// Every registered zone, by id.
pub async fn zones(conn: &impl ConnectionTrait) -> Result<Vec<ZoneRef>, DbErr> {
    use crate::store::zones::zone_entity::{Column, Entity};
    let rows: Vec<(String, String)> = Entity::find()
        .select_only()
        .column(Column::Id)
        .column(Column::DisplayName)
        .order_by_asc(Column::Id)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, display_name)| ZoneRef {
            name: crate::domain::zone::zone_name(&id),
            display_name,
        })
        .collect())
}

/// Enterprises with a zone and a green category whose first high-tech certificate was issued
/// in `year`, counted per (zone, green category):
///
/// ```sql
/// SELECT zone, green_category, COUNT(uscc) FROM enterprise
///  WHERE zone <> '' AND green_category <> 0
///    AND uscc IN (SELECT uscc FROM high_tech_certificate GROUP BY uscc
///                 HAVING MIN(issue_date) >= 'Y-01-01' AND MIN(issue_date) <= 'Y-12-31')
///  GROUP BY zone, green_category
/// ```
///
/// "First" is over every certificate the enterprise ever held, so a second certificate in the
/// year for an enterprise certified earlier does not make it new. Whether the zone is
/// registered is left to `domain::statistics`.
pub async fn new_high_tech_cells(
    conn: &impl ConnectionTrait,
    year: i32,
) -> Result<Vec<Cell>, DbErr> {
    use crate::store::certificate as cert;
    use crate::store::enterprise::{Column, Entity};
    let (first_day, last_day) = year_bounds(year);
    let first_issued_in_year = Query::select()
        .column(cert::Column::Uscc)
        .from(cert::Entity)
        .group_by_col(cert::Column::Uscc)
        .and_having(Expr::col(cert::Column::IssueDate).min().gte(first_day))
        .and_having(Expr::col(cert::Column::IssueDate).min().lte(last_day))
        .to_owned();
    let rows: Vec<(String, i32, i64)> = Entity::find()
        .select_only()
        .column(Column::Zone)
        .column(Column::GreenCategory)
        .column_as(Expr::col(Column::Uscc).count(), "n")
        .filter(Column::Zone.ne(""))
        .filter(Column::GreenCategory.ne(0))
        .filter(Column::Uscc.in_subquery(first_issued_in_year))
        .group_by(Column::Zone)
        .group_by(Column::GreenCategory)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(zone, green_category, count)| Cell {
            zone,
            green_category,
            count,
        })
        .collect())
}

/// Where a reported revenue figure came from: `FigureSource` number and reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueSource {
    /// `FigureSource` number.
    pub source: i32,
    /// Reference text (e.g. the audit report number).
    pub reference: String,
}

/// The source of every revenue figure of `usccs` up to `up_to_year`, by (USCC, year): what
/// cluster progress cites for each member's counted figure, for all clusters at once.
pub async fn revenue_sources(
    conn: &impl ConnectionTrait,
    usccs: &[String],
    up_to_year: i32,
) -> Result<HashMap<(String, i32), RevenueSource>, DbErr> {
    use crate::store::figures::figure_entity::{Column, Entity};
    let mut out = HashMap::new();
    // SQLite limits bound parameters per statement: ask in chunks.
    for chunk in usccs.chunks(500) {
        let rows: Vec<(String, i32, i32, String)> = Entity::find()
            .select_only()
            .column(Column::Uscc)
            .column(Column::Year)
            .column(Column::Source)
            .column(Column::Reference)
            .filter(Column::Uscc.is_in(chunk.iter().cloned()))
            .filter(Column::Figure.eq(FigureKind::RevenueFen.as_str()))
            .filter(Column::Year.lte(up_to_year))
            .into_tuple()
            .all(conn)
            .await?;
        for (uscc, year, source, reference) in rows {
            out.insert((uscc, year), RevenueSource { source, reference });
        }
    }
    Ok(out)
}
