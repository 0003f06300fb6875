//! High-tech certificates as stored: one row per certificate with the facts (issue date,
//! filings, a recorded revocation) and one derived column, `lapse_date`, the first day the
//! certificate is not valid given those facts (`domain::certification::lapse_date`). Because it
//! depends only on stored facts it is exact until the next write of the row, so "valid today" is
//! `lapse_date > today` in SQL on both backends (ISO dates compare as text).
//!
//! Other modules that need "does this enterprise hold a valid certificate today" use
//! [`valid_holders`] or [`valid_holders_query`], never their own reading of the columns.

use qilu_common::db::KeyLookup;
use std::collections::HashSet;

use chrono::NaiveDate;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{ExprTrait, Query, SelectStatement};
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect};
use sea_orm_migration::prelude::{
    ColumnDef, DeriveIden, Index, MigrationName, MigrationTrait, SchemaManager, Table,
};

use crate::domain::certification::{Certificate, Filing, Ground, Revocation, lapse_date};

/// The entity.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One certificate.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "high_tech_certificate")]
    pub struct Model {
        /// Certificate number, unique across the registry.
        #[sea_orm(primary_key, auto_increment = false)]
        pub number: String,
        /// Holder's USCC.
        pub uscc: String,
        /// `YYYY-MM-DD`.
        pub issue_date: String,
        /// `YYYY-MM-DD`, issue date plus three years.
        pub expiry_date: String,
        /// `YYYY-MM-DD`, first day not valid given the stored facts.
        pub lapse_date: String,
        /// Recognising authority.
        pub issuing_authority: String,
        /// `HighTechField` number.
        pub technology_field: i32,
        /// JSON array of filings.
        pub filings: String,
        /// `RevocationGround` number of a recorded revocation, 0 when none.
        pub revocation_ground: i32,
        /// Reason of a recorded revocation.
        pub revocation_reason: String,
        /// `YYYY-MM-DD` of a recorded revocation, empty when none.
        pub revocation_date: String,
        /// µs of a recorded revocation, 0 when none.
        pub revoke_time_us: i64,
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

/// The certificate migrations.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateHighTechCertificate)]
}

struct CreateHighTechCertificate;

impl MigrationName for CreateHighTechCertificate {
    fn name(&self) -> &str {
        "m20261128_000410_registry_high_tech_certificate"
    }
}

#[derive(DeriveIden)]
enum HighTechCertificate {
    Table,
    Number,
    Uscc,
    IssueDate,
    ExpiryDate,
    LapseDate,
    IssuingAuthority,
    TechnologyField,
    Filings,
    RevocationGround,
    RevocationReason,
    RevocationDate,
    RevokeTimeUs,
    CreateTimeUs,
    UpdateTimeUs,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateHighTechCertificate {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use HighTechCertificate as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .col(
                        ColumnDef::new(T::Number)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(T::Uscc).string_len(18).not_null())
                    .col(ColumnDef::new(T::IssueDate).string_len(10).not_null())
                    .col(ColumnDef::new(T::ExpiryDate).string_len(10).not_null())
                    .col(ColumnDef::new(T::LapseDate).string_len(10).not_null())
                    .col(ColumnDef::new(T::IssuingAuthority).text().not_null())
                    .col(ColumnDef::new(T::TechnologyField).integer().not_null())
                    .col(ColumnDef::new(T::Filings).text().not_null())
                    .col(ColumnDef::new(T::RevocationGround).integer().not_null())
                    .col(ColumnDef::new(T::RevocationReason).text().not_null())
                    .col(ColumnDef::new(T::RevocationDate).string_len(10).not_null())
                    .col(ColumnDef::new(T::RevokeTimeUs).big_integer().not_null())
                    .col(ColumnDef::new(T::CreateTimeUs).big_integer().not_null())
                    .col(ColumnDef::new(T::UpdateTimeUs).big_integer().not_null())
                    .col(ColumnDef::new(T::Version).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, first) in [
            ("high_tech_certificate_uscc", T::Uscc),
            ("high_tech_certificate_issue_date", T::IssueDate),
            ("high_tech_certificate_expiry_date", T::ExpiryDate),
            ("high_tech_certificate_lapse_date", T::LapseDate),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(T::Table)
                        .col(first)
                        .col(T::Uscc)
                        .col(T::Number)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(HighTechCertificate::Table).to_owned())
            .await
    }
}

pub(crate) fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A stored row that no longer parses: a corrupted database, not a caller mistake.
#[derive(Debug, thiserror::Error)]
#[error("stored certificate {number} is corrupt: {problem}")]
pub struct CorruptRow {
    number: String,
    problem: String,
}

impl Model {
    /// Back to the domain type.
    pub fn into_domain(self) -> Result<Certificate, CorruptRow> {
        let corrupt = |problem: String| CorruptRow {
            number: self.number.clone(),
            problem,
        };
        let date = |s: &str, what: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| corrupt(format!("{what}: {e}")))
        };
        let issue_date = date(&self.issue_date, "issue_date")?;
        let filings: Vec<Filing> =
            serde_json::from_str(&self.filings).map_err(|e| corrupt(format!("filings: {e}")))?;
        let revocation = if self.revocation_ground == 0 {
            None
        } else {
            Some(Revocation {
                ground: Ground::from_code(self.revocation_ground).ok_or_else(|| {
                    corrupt(format!("revocation ground {}", self.revocation_ground))
                })?,
                reason: self.revocation_reason.clone(),
                date: date(&self.revocation_date, "revocation_date")?,
                time_us: self.revoke_time_us,
            })
        };
        Ok(Certificate {
            uscc: self.uscc,
            number: self.number,
            issue_date,
            issuing_authority: self.issuing_authority,
            technology_field: self.technology_field,
            filings,
            revocation,
            create_time_us: self.create_time_us,
            update_time_us: self.update_time_us,
            version: self.version,
        })
    }
}

/// The row for a certificate (all columns set, `lapse_date` recomputed).
pub fn to_active(c: &Certificate) -> Result<entity::ActiveModel, DbErr> {
    let filings = serde_json::to_string(&c.filings).map_err(|e| DbErr::Custom(e.to_string()))?;
    Ok(entity::ActiveModel {
        number: Set(c.number.clone()),
        uscc: Set(c.uscc.clone()),
        issue_date: Set(date_text(c.issue_date)),
        expiry_date: Set(date_text(c.expiry_date())),
        lapse_date: Set(date_text(lapse_date(c))),
        issuing_authority: Set(c.issuing_authority.clone()),
        technology_field: Set(c.technology_field),
        filings: Set(filings),
        revocation_ground: Set(c.revocation.as_ref().map_or(0, |r| r.ground.code())),
        revocation_reason: Set(c
            .revocation
            .as_ref()
            .map(|r| r.reason.clone())
            .unwrap_or_default()),
        revocation_date: Set(c
            .revocation
            .as_ref()
            .map(|r| date_text(r.date))
            .unwrap_or_default()),
        revoke_time_us: Set(c.revocation.as_ref().map_or(0, |r| r.time_us)),
        create_time_us: Set(c.create_time_us),
        update_time_us: Set(c.update_time_us),
        version: Set(c.version),
    })
}

/// Inserts a new certificate; a duplicate number surfaces as a unique violation.
pub async fn insert(conn: &impl ConnectionTrait, c: &Certificate) -> Result<(), DbErr> {
    Entity::insert(to_active(c)?).exec(conn).await?;
    Ok(())
}

/// Writes a changed certificate if its version is still `expected_version`.
pub async fn update_if_version(
    conn: &impl ConnectionTrait,
    c: &Certificate,
    expected_version: i64,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .set(to_active(c)?)
        .filter(Column::Number.eq(c.number.as_str()))
        .filter(Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// One certificate by number.
pub async fn get(conn: &impl ConnectionTrait, number: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(number.to_string()).by_key(conn).await
}

/// `SELECT uscc FROM high_tech_certificate WHERE lapse_date > today`: the enterprises holding a
/// valid certificate on `today`, for `Column::Uscc.in_subquery(...)` in other queries.
pub fn valid_holders_query(today: NaiveDate) -> SelectStatement {
    Query::select()
        .column(Column::Uscc)
        .from(Entity)
        .and_where(Column::LapseDate.gt(date_text(today)))
        .to_owned()
}

/// Which of `usccs` hold a valid certificate on `today`: one whose `lapse_date` is after
/// `today` (the condition `enterprise::get_with_certification` writes out for point reads).
pub async fn valid_holders(
    conn: &impl ConnectionTrait,
    usccs: &[String],
    today: NaiveDate,
) -> Result<HashSet<String>, DbErr> {
    let mut out = HashSet::new();
    // SQLite limits bound parameters per statement: ask in chunks.
    for chunk in usccs.chunks(500) {
        let rows: Vec<String> = Entity::find()
            .select_only()
            .column(Column::Uscc)
            .filter(Column::Uscc.is_in(chunk.iter().cloned()))
            .filter(Column::LapseDate.gt(date_text(today)))
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// Certificate state as a listing condition (see the module doc for why this is exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    /// `lapse_date > today`.
    Valid,
    /// Lapsed on its expiry date, which has passed.
    Expired,
    /// Lapsed before its expiry date (recorded or derived revocation), on or before today.
    Revoked,
}

/// A comparison on a date column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateCmp {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// Listing conditions, already validated.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Holder equals (None: every enterprise).
    pub uscc: Option<String>,
    /// State as of `today`.
    pub state: Option<(StateFilter, NaiveDate)>,
    /// Technology field equals.
    pub technology_field: Option<i32>,
    /// Comparisons on the issue date.
    pub issue_date: Vec<(DateCmp, NaiveDate)>,
    /// Comparisons on the expiry date.
    pub expiry_date: Vec<(DateCmp, NaiveDate)>,
}

/// Which date orders a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By issue date, then name.
    IssueDate {
        /// Descending.
        desc: bool,
    },
    /// By expiry date, then name.
    ExpiryDate {
        /// Descending.
        desc: bool,
    },
}

/// The key of the last row of a page.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The ordering date of the last row.
    pub date: String,
    /// Its holder.
    pub uscc: String,
    /// Its number.
    pub number: String,
}

fn compare(col: Column, cmp: DateCmp, d: NaiveDate) -> sea_orm::sea_query::SimpleExpr {
    let v = date_text(d);
    match cmp {
        DateCmp::Eq => col.eq(v),
        DateCmp::Lt => col.lt(v),
        DateCmp::Le => col.lte(v),
        DateCmp::Gt => col.gt(v),
        DateCmp::Ge => col.gte(v),
    }
}

/// One page of certificates (`limit` rows) after `after` in `order`.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &ListFilter,
    order: Order,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut cond = Condition::all();
    if let Some(u) = &filter.uscc {
        cond = cond.add(Column::Uscc.eq(u.clone()));
    }
    if let Some((state, today)) = filter.state {
        let today = date_text(today);
        cond = cond.add(match state {
            StateFilter::Valid => Condition::all().add(Column::LapseDate.gt(today)),
            StateFilter::Expired => Condition::all()
                .add(Column::LapseDate.lte(today))
                .add(Expr::col(Column::LapseDate).eq(Expr::col(Column::ExpiryDate))),
            StateFilter::Revoked => Condition::all()
                .add(Column::LapseDate.lte(today))
                .add(Expr::col(Column::LapseDate).lt(Expr::col(Column::ExpiryDate))),
        });
    }
    if let Some(f) = filter.technology_field {
        cond = cond.add(Column::TechnologyField.eq(f));
    }
    for &(cmp, d) in &filter.issue_date {
        cond = cond.add(compare(Column::IssueDate, cmp, d));
    }
    for &(cmp, d) in &filter.expiry_date {
        cond = cond.add(compare(Column::ExpiryDate, cmp, d));
    }
    let (date_col, desc) = match order {
        Order::IssueDate { desc } => (Column::IssueDate, desc),
        Order::ExpiryDate { desc } => (Column::ExpiryDate, desc),
    };
    if let Some(c) = after {
        let (date, uscc, number) = (c.date.clone(), c.uscc.clone(), c.number.clone());
        // (date, uscc, number) strictly after the cursor in the chosen direction.
        let beyond = |col: Column, v: String| if desc { col.lt(v) } else { col.gt(v) };
        cond = cond.add(
            Condition::any()
                .add(beyond(date_col, date.clone()))
                .add(
                    Condition::all()
                        .add(date_col.eq(date.clone()))
                        .add(beyond(Column::Uscc, uscc.clone())),
                )
                .add(
                    Condition::all()
                        .add(date_col.eq(date))
                        .add(Column::Uscc.eq(uscc))
                        .add(beyond(Column::Number, number)),
                ),
        );
    }
    let mut query = Entity::find().filter(cond);
    for col in [date_col, Column::Uscc, Column::Number] {
        query = if desc {
            query.order_by_desc(col)
        } else {
            query.order_by_asc(col)
        };
    }
    query.limit(limit).all(conn).await
}

/// Every certificate of one enterprise (any order).
pub async fn of_enterprise(conn: &impl ConnectionTrait, uscc: &str) -> Result<Vec<Model>, DbErr> {
    Entity::find().filter(Column::Uscc.eq(uscc)).all(conn).await
}
