//! Enterprise rows: the entity, conversion to the domain type, and the queries handlers use.

use qilu_common::db::KeyLookup;
use qilu_common::point_read::{KeyedSql, PointReads, SharedReads};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect};

use crate::domain::enterprise::{Enterprise, EnterpriseFields, EnterpriseState, StateChange};
use crate::domain::uscc::{self, KnownExceptions, Uscc};

/// The `enterprise` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One enterprise row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "enterprise")]
    pub struct Model {
        /// USCC, the key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uscc: String,
        /// Registered name.
        pub display_name: String,
        /// Legal representative.
        pub legal_representative: String,
        /// `YYYY-MM-DD`.
        pub established_date: String,
        /// Address.
        pub address: String,
        /// GB/T 2260 division code from the USCC.
        pub division_code: String,
        /// City derived from the division code ("" outside Shandong).
        pub city: String,
        /// `zones/{zone}` or "".
        pub zone: String,
        /// HighTechField numbers as `,1,4,` so a field matches with LIKE `%,4,%`.
        pub technology_fields: String,
        /// GreenCategory number.
        pub green_category: i32,
        /// EnterpriseState code.
        pub state: i32,
        /// Holds a valid high-tech certificate.
        pub high_tech_certified: bool,
        /// In the current leading cohort.
        pub leading: bool,
        /// USCC fails the check but is allow-listed.
        pub uscc_known_exception: bool,
        /// µs since the epoch.
        pub create_time_us: i64,
        /// µs since the epoch.
        pub update_time_us: i64,
        /// Optimistic-concurrency version.
        pub version: i64,
        /// Why the enterprise left ACTIVE ("" while active); column added by
        /// `store::changes::migrations`.
        pub state_reason: String,
        /// When the state last changed, µs; NULL while it has always been active.
        pub state_change_time_us: Option<i64>,
        /// `YYYY-MM-DD` the state change took effect; NULL while it has always been active.
        pub state_effective_date: Option<String>,
    }

    /// No relations yet.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use entity::{Column, Entity, Model};

/// Encodes technology fields for storage.
fn encode_fields(fields: &[i32]) -> String {
    if fields.is_empty() {
        String::new()
    } else {
        let joined: Vec<String> = fields.iter().map(i32::to_string).collect();
        format!(",{},", joined.join(","))
    }
}

fn decode_fields(stored: &str) -> Vec<i32> {
    stored.split(',').filter_map(|s| s.parse().ok()).collect()
}

/// A stored row that no longer passes the domain rules: a corrupted database, not a caller
/// mistake.
#[derive(Debug, thiserror::Error)]
#[error("stored enterprise {uscc} is corrupt: {problem}")]
pub struct CorruptRow {
    uscc: String,
    problem: String,
}

impl Model {
    /// Back to the domain type. Stored rows were valid when written; `known` is not needed to
    /// re-admit allow-listed codes because the row remembers that flag.
    pub fn into_domain(self) -> Result<Enterprise, CorruptRow> {
        let corrupt = |problem: String| CorruptRow {
            uscc: self.uscc.clone(),
            problem,
        };
        let known = if self.uscc_known_exception {
            KnownExceptions::new([self.uscc.as_str()])
        } else {
            KnownExceptions::default()
        };
        let code = Uscc::parse(&self.uscc, &known).map_err(|e| corrupt(e.to_string()))?;
        let established_date =
            chrono::NaiveDate::parse_from_str(&self.established_date, "%Y-%m-%d")
                .map_err(|e| corrupt(format!("established_date: {e}")))?;
        let state = EnterpriseState::from_code(self.state)
            .ok_or_else(|| corrupt(format!("state code {}", self.state)))?;
        let state_change = match (self.state_change_time_us, &self.state_effective_date) {
            (Some(change_time_us), Some(date)) => Some(StateChange {
                reason: self.state_reason.clone(),
                change_time_us,
                effective_date: chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                    .map_err(|e| corrupt(format!("state_effective_date: {e}")))?,
            }),
            (None, None) => None,
            _ => return Err(corrupt("half a state change stored".into())),
        };
        Ok(Enterprise {
            uscc: code,
            fields: EnterpriseFields {
                display_name: self.display_name,
                legal_representative: self.legal_representative,
                established_date,
                address: self.address,
                zone: (!self.zone.is_empty()).then_some(self.zone),
                technology_fields: decode_fields(&self.technology_fields),
                green_category: self.green_category,
            },
            state,
            high_tech_certified: self.high_tech_certified,
            leading: self.leading,
            create_time_us: self.create_time_us,
            update_time_us: self.update_time_us,
            version: self.version,
            state_change,
        })
    }
}

/// The row for a domain enterprise (all columns set).
pub fn to_active(e: &Enterprise) -> entity::ActiveModel {
    let parts = e.uscc.parts();
    entity::ActiveModel {
        uscc: Set(e.uscc.as_str().to_string()),
        display_name: Set(e.fields.display_name.clone()),
        legal_representative: Set(e.fields.legal_representative.clone()),
        established_date: Set(e.fields.established_date.format("%Y-%m-%d").to_string()),
        address: Set(e.fields.address.clone()),
        division_code: Set(parts.division_code.clone()),
        city: Set(uscc::city_for_division(&parts.division_code)
            .unwrap_or("")
            .to_string()),
        zone: Set(e.fields.zone.clone().unwrap_or_default()),
        technology_fields: Set(encode_fields(&e.fields.technology_fields)),
        green_category: Set(e.fields.green_category),
        state: Set(e.state.code()),
        high_tech_certified: Set(e.high_tech_certified),
        leading: Set(e.leading),
        uscc_known_exception: Set(e.uscc.is_known_exception()),
        create_time_us: Set(e.create_time_us),
        update_time_us: Set(e.update_time_us),
        version: Set(e.version),
        state_reason: Set(e
            .state_change
            .as_ref()
            .map(|c| c.reason.clone())
            .unwrap_or_default()),
        state_change_time_us: Set(e.state_change.as_ref().map(|c| c.change_time_us)),
        state_effective_date: Set(e
            .state_change
            .as_ref()
            .map(|c| c.effective_date.format("%Y-%m-%d").to_string())),
    }
}

/// Inserts a new enterprise. A duplicate key surfaces as a unique violation.
pub async fn insert(conn: &impl ConnectionTrait, e: &Enterprise) -> Result<(), DbErr> {
    Entity::insert(to_active(e)).exec(conn).await?;
    Ok(())
}

/// Writes a changed enterprise if nobody else changed it since `expected_version`; false when
/// the version moved (the caller answers ABORTED).
pub async fn update_if_version(
    conn: &impl ConnectionTrait,
    e: &Enterprise,
    expected_version: i64,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .set(to_active(e))
        .filter(Column::Uscc.eq(e.uscc.as_str()))
        .filter(Column::Version.eq(expected_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// One enterprise by USCC.
pub async fn get(conn: &impl ConnectionTrait, uscc: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(uscc.to_string()).by_key(conn).await
}

/// An enterprise row and whether it holds a valid high-tech certificate on the day asked.
#[derive(Debug, Clone)]
pub struct WithCertification {
    /// The row.
    pub model: Model,
    /// `high_tech_certified` as of the day asked (derived, never the stored flag).
    pub certified: bool,
}

const CERTIFIED_ALIAS: &str = "holds_valid_certificate";

impl sea_orm::FromQueryResult for WithCertification {
    fn from_query_result(row: &sea_orm::QueryResult, pre: &str) -> Result<Self, DbErr> {
        Ok(WithCertification {
            model: Model::from_query_result(row, pre)?,
            certified: row.try_get(pre, CERTIFIED_ALIAS)?,
        })
    }
}

/// GetEnterprise's read: an enterprise by USCC with its certification derived as of a day, in
/// one statement (the row and the certificate check in one round trip), shared by concurrent
/// callers (`qilu_common::point_read::SharedReads`: one statement for every USCC asked while
/// the kept connections were busy). The SQL is written out, not built: the hottest read of the
/// suite skips sea-query's statement building, and it has no bound `LIMIT` (see
/// `qilu_common::db::KeyLookup`). The certificate condition is the one
/// [`crate::store::certificate::valid_holders`] applies to lists (the certification tests
/// compare GetEnterprise with ListEnterprises filtered on `high_tech_certified`, before and
/// after issue, revocation and lapse).
pub fn certified_reads(reads: &PointReads) -> SharedReads<WithCertification> {
    // The entity's columns by name, never `e.*`: sqlx-sqlite keeps a prepared statement's
    // column list from its first preparation, so a `*` that widens when SQLite re-prepares the
    // statement after a schema change would index past that list (a panic in its worker thread).
    let columns: Vec<String> = <Column as sea_orm::Iterable>::iter()
        .map(|c| format!("e.\"{}\"", c.as_str()))
        .collect();
    let select = format!(
        "SELECT {}, EXISTS (SELECT 1 FROM high_tech_certificate c \
         WHERE c.uscc = e.uscc AND c.lapse_date > $2) AS {CERTIFIED_ALIAS} \
         FROM enterprise e",
        columns.join(", ")
    );
    SharedReads::new(
        reads,
        KeyedSql {
            select,
            key: "e.uscc",
        },
        |row| {
            let found =
                <WithCertification as sea_orm::FromQueryResult>::from_query_result(row, "")?;
            Ok((found.model.uscc.clone(), found))
        },
    )
}

/// One enterprise by USCC with its certification as of `today` ([`certified_reads`]).
pub async fn get_with_certification(
    reads: &SharedReads<WithCertification>,
    uscc: &str,
    today: chrono::NaiveDate,
) -> Result<Option<WithCertification>, DbErr> {
    let today = crate::store::certificate::date_text(today);
    reads.get(uscc, &[&today]).await
}

/// Several enterprises by USCC (any order, each at most once).
///
/// On PostgreSQL one primary-key probe per code, whatever the table's size: the codes travel as
/// one array and each is looked up in a `LATERAL` subquery (`OFFSET 0` keeps the planner from
/// flattening it into a join). With `uscc IN (…500 codes…)` the planner prefers a sequential
/// scan over tens of thousands of rows, re-checking every row against the list — 8.8 ms against
/// 0.4–1.0 ms of index probes for an import batch over 22,000 enterprises — and the import
/// runs this inside its write lease, where every millisecond holds every other write.
pub async fn get_many(conn: &impl ConnectionTrait, usccs: &[String]) -> Result<Vec<Model>, DbErr> {
    if usccs.is_empty() {
        return Ok(Vec::new());
    }
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        let mut distinct: Vec<String> = usccs.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        return Entity::find()
            .from_raw_sql(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT e.* FROM unnest($1::text[]) AS k(uscc) \
                 CROSS JOIN LATERAL (SELECT * FROM enterprise WHERE enterprise.uscc = k.uscc OFFSET 0) AS e",
                [distinct.into()],
            ))
            .all(conn)
            .await;
    }
    Entity::find()
        .filter(Column::Uscc.is_in(usccs.iter().cloned()))
        .all(conn)
        .await
}

/// How a listing is ordered. The USCC breaks ties, so the order is total and stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By USCC.
    Uscc {
        /// Descending.
        desc: bool,
    },
    /// By registered name, then USCC.
    DisplayName {
        /// Descending.
        desc: bool,
    },
}

/// The key of the last row of a page, for keyset pagination.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// Display name of the last row (for name ordering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// USCC of the last row.
    pub uscc: String,
}

/// Listing conditions, already validated.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Substring of the registered name.
    pub name_contains: Option<String>,
    /// City equals.
    pub city: Option<String>,
    /// Zone equals.
    pub zone: Option<String>,
    /// Has this technology field.
    pub technology_field: Option<i32>,
    /// Green category equals.
    pub green_category: Option<i32>,
    /// State equals.
    pub state: Option<i32>,
    /// Certified equals.
    pub high_tech_certified: Option<bool>,
    /// The day `high_tech_certified` is judged on: certificates lapse by the passage of time,
    /// so the filter asks the certificates, not the stored column. `None` uses the column.
    pub certified_on: Option<chrono::NaiveDate>,
    /// Leading equals.
    pub leading: Option<bool>,
}

/// `LIKE` pattern matching `needle` anywhere, with `%`, `_` and `\` escaped.
fn contains_pattern(needle: &str) -> LikeExpr {
    let escaped: String = needle
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

/// One page of enterprises (`limit` rows) after `after` in `order`.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &ListFilter,
    order: Order,
    after: Option<Cursor>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut cond = Condition::all();
    if let Some(n) = &filter.name_contains {
        // Case-insensitive on both backends (SQLite's LIKE already ignores ASCII case;
        // PostgreSQL's does not): compare lower-cased. Chinese characters have no case.
        cond = cond.add(
            Expr::expr(Func::lower(Expr::col(Column::DisplayName)))
                .like(contains_pattern(&n.to_lowercase())),
        );
    }
    if let Some(v) = &filter.city {
        cond = cond.add(Column::City.eq(v.clone()));
    }
    if let Some(v) = &filter.zone {
        cond = cond.add(Column::Zone.eq(v.clone()));
    }
    if let Some(f) = filter.technology_field {
        cond =
            cond.add(Expr::col(Column::TechnologyFields).like(contains_pattern(&format!(",{f},"))));
    }
    if let Some(v) = filter.green_category {
        cond = cond.add(Column::GreenCategory.eq(v));
    }
    if let Some(v) = filter.state {
        cond = cond.add(Column::State.eq(v));
    }
    if let Some(v) = filter.high_tech_certified {
        cond = cond.add(match filter.certified_on {
            Some(today) => {
                let holders = crate::store::certificate::valid_holders_query(today);
                if v {
                    Column::Uscc.in_subquery(holders)
                } else {
                    Column::Uscc.not_in_subquery(holders)
                }
            }
            None => Column::HighTechCertified.eq(v),
        });
    }
    if let Some(v) = filter.leading {
        cond = cond.add(Column::Leading.eq(v));
    }
    let mut query = Entity::find();
    match order {
        Order::Uscc { desc } => {
            if let Some(c) = after {
                cond = cond.add(if desc {
                    Column::Uscc.lt(c.uscc)
                } else {
                    Column::Uscc.gt(c.uscc)
                });
            }
            query = if desc {
                query.order_by_desc(Column::Uscc)
            } else {
                query.order_by_asc(Column::Uscc)
            };
        }
        Order::DisplayName { desc } => {
            if let Some(c) = after {
                let name = c.name.unwrap_or_default();
                cond = cond.add(if desc {
                    Condition::any()
                        .add(Column::DisplayName.lt(name.clone()))
                        .add(
                            Condition::all()
                                .add(Column::DisplayName.eq(name))
                                .add(Column::Uscc.lt(c.uscc)),
                        )
                } else {
                    Condition::any()
                        .add(Column::DisplayName.gt(name.clone()))
                        .add(
                            Condition::all()
                                .add(Column::DisplayName.eq(name))
                                .add(Column::Uscc.gt(c.uscc)),
                        )
                });
            }
            query = if desc {
                query
                    .order_by_desc(Column::DisplayName)
                    .order_by_desc(Column::Uscc)
            } else {
                query
                    .order_by_asc(Column::DisplayName)
                    .order_by_asc(Column::Uscc)
            };
        }
    }
    query.filter(cond).limit(limit).all(conn).await
}
