//! What the registry's Get derives from "today", for the sweep ([`qilu_common::sweep`]) to write
//! as changes when the date moves it:
//!
//! - **certificates**: `state` (VALID → EXPIRED at the expiry date; REVOKED once two annual
//!   reports are missed) and `missed_report_count`;
//! - **enterprises** holding any certificate: `high_tech_certified` (whether one is valid
//!   today; an enterprise that never held one is never certified, so it is not examined);
//! - **support policies**: each milestone's `OVERDUE` state after its due date;
//! - **zones, clusters and cohorts** ([`Aggregates`]): what their Get adds up from other
//!   resources (a zone's enterprise count, a cohort's fill, a cluster's target as of the current
//!   year) moves without a write to them, so the sweep records them too (a handful of rows).
//!
//! (`leading` changes only by writes, which record it.) Each family reads its resources in
//! resource-name order with the same conversions Get uses, so the sweep's state is Get's.

use std::collections::HashSet;

use chrono::NaiveDate;
use chrono_tz::Tz;
use qilu_common::ApiError;
use qilu_common::sweep::{Current, TimeDriven};
use qilu_common::write::{LeaseConn, Published};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryOrder, QuerySelect};

use crate::convert::enterprise_to_proto;
use crate::convert::leading::policies::policy_to_proto;
use crate::convert::zones::{cluster_to_proto, zone_to_proto};
use crate::store::certificate as cert_store;
use crate::store::enterprise as enterprise_store;
use crate::store::leading::{self as leading_store, PolicyCursor, PolicyFilter};
use crate::store::zones::{self as zone_store, ClusterFilter, Order, ZoneFilter};

/// The registry's families, dated in `zone`.
pub(crate) fn families(zone: Tz) -> Vec<Box<dyn TimeDriven>> {
    vec![
        Box::new(Certificates { zone }),
        Box::new(CertifiedEnterprises),
        Box::new(SupportPolicies),
        Box::new(Aggregates),
    ]
}

/// The `(uscc, key)` of `enterprises/{uscc}/{collection}/{key}` (empty strings for "").
fn child_key(resource: &str) -> (String, String) {
    let parts: Vec<&str> = resource.split('/').collect();
    (
        parts.get(1).copied().unwrap_or_default().to_string(),
        parts.get(3).copied().unwrap_or_default().to_string(),
    )
}

/// Every certificate, in number order.
struct Certificates {
    zone: Tz,
}

impl Certificates {
    fn current(
        &self,
        rows: Vec<cert_store::Model>,
        today: NaiveDate,
    ) -> Result<Vec<Current>, ApiError> {
        rows.into_iter()
            .map(|m| {
                let c = m.into_domain().map_err(ApiError::internal)?;
                super::certification::current(&c, today, self.zone)
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl TimeDriven for Certificates {
    fn family(&self) -> &'static str {
        "highTechCertificates"
    }

    async fn page(
        &self,
        db: &DatabaseConnection,
        today: NaiveDate,
        after: &str,
        limit: u64,
    ) -> Result<Vec<Current>, ApiError> {
        // By number, the primary key: each page is an index range scan, however many pages.
        let (_, number) = child_key(after);
        let rows = cert_store::Entity::find()
            .filter(cert_store::Column::Number.gt(number))
            .order_by_asc(cert_store::Column::Number)
            .limit(limit)
            .all(db)
            .await?;
        self.current(rows, today)
    }

    async fn these(
        &self,
        conn: &LeaseConn,
        today: NaiveDate,
        resources: &[String],
    ) -> Result<Vec<Current>, ApiError> {
        let numbers: Vec<String> = resources.iter().map(|r| child_key(r).1).collect();
        let rows = cert_store::Entity::find()
            .filter(cert_store::Column::Number.is_in(numbers))
            .all(conn)
            .await?;
        self.current(rows, today)
    }
}

/// Enterprises that hold (or held) a certificate, in USCC order.
struct CertifiedEnterprises;

impl CertifiedEnterprises {
    async fn current(
        conn: &impl ConnectionTrait,
        rows: Vec<enterprise_store::Model>,
        today: NaiveDate,
    ) -> Result<Vec<Current>, ApiError> {
        let usccs: Vec<String> = rows.iter().map(|m| m.uscc.clone()).collect();
        let holders: HashSet<String> = cert_store::valid_holders(conn, &usccs, today).await?;
        rows.into_iter()
            .map(|m| {
                let mut e = m.into_domain().map_err(ApiError::internal)?;
                e.high_tech_certified = holders.contains(e.uscc.as_str());
                Ok(Current {
                    resource: e.name(),
                    state_json: serde_json::to_string(&e).map_err(ApiError::internal)?,
                    published: Published::of(&enterprise_to_proto(&e)),
                })
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl TimeDriven for CertifiedEnterprises {
    fn family(&self) -> &'static str {
        "enterprises"
    }

    async fn page(
        &self,
        db: &DatabaseConnection,
        today: NaiveDate,
        after: &str,
        limit: u64,
    ) -> Result<Vec<Current>, ApiError> {
        let after_uscc = after.strip_prefix("enterprises/").unwrap_or_default();
        // The next holders along the certificates' USCC index, then their rows by key: each
        // page reads only its own rows, however many pages.
        let usccs: Vec<String> = cert_store::Entity::find()
            .select_only()
            .column(cert_store::Column::Uscc)
            .distinct()
            .filter(cert_store::Column::Uscc.gt(after_uscc))
            .order_by_asc(cert_store::Column::Uscc)
            .limit(limit)
            .into_tuple()
            .all(db)
            .await?;
        let mut rows = enterprise_store::get_many(db, &usccs).await?;
        rows.sort_by(|a, b| a.uscc.cmp(&b.uscc));
        Self::current(db, rows, today).await
    }

    async fn these(
        &self,
        conn: &LeaseConn,
        today: NaiveDate,
        resources: &[String],
    ) -> Result<Vec<Current>, ApiError> {
        let usccs: Vec<String> = resources
            .iter()
            .filter_map(|r| r.strip_prefix("enterprises/"))
            .map(str::to_string)
            .collect();
        let rows = enterprise_store::get_many(conn, &usccs).await?;
        Self::current(conn, rows, today).await
    }
}

/// Every support policy, in name order (`uscc`, then year).
struct SupportPolicies;

fn policies_current(
    rows: Vec<Result<crate::domain::support_policy::SupportPolicy, leading_store::CorruptRow>>,
    today: NaiveDate,
) -> Result<Vec<Current>, ApiError> {
    rows.into_iter()
        .map(|p| {
            let p = p.map_err(ApiError::internal)?;
            Ok(Current {
                resource: p.name(),
                state_json: serde_json::to_string(&p).map_err(ApiError::internal)?,
                published: Published::of(&policy_to_proto(&p, today)),
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl TimeDriven for SupportPolicies {
    fn family(&self) -> &'static str {
        "supportPolicies"
    }

    async fn page(
        &self,
        db: &DatabaseConnection,
        today: NaiveDate,
        after: &str,
        limit: u64,
    ) -> Result<Vec<Current>, ApiError> {
        let cursor = match child_key(after) {
            (uscc, year) if !uscc.is_empty() => Some(PolicyCursor {
                uscc,
                year: year.parse().unwrap_or(i32::MAX),
            }),
            _ => None,
        };
        let rows =
            leading_store::list_policies(db, &PolicyFilter::default(), cursor, limit).await?;
        policies_current(rows, today)
    }

    async fn these(
        &self,
        conn: &LeaseConn,
        today: NaiveDate,
        resources: &[String],
    ) -> Result<Vec<Current>, ApiError> {
        let mut rows = Vec::with_capacity(resources.len());
        for r in resources {
            let (uscc, year) = child_key(r);
            let Ok(year) = year.parse() else { continue };
            if let Some(p) = leading_store::get_policy(conn, &uscc, year).await? {
                rows.push(p);
            }
        }
        policies_current(rows, today)
    }
}

/// Zones, clusters and leading cohorts: few, and each read whole. Their names sort
/// `clusters/…` < `leadingCohorts/…` < `zones/…`, the order the family pages in.
struct Aggregates;

impl Aggregates {
    /// Every zone, cluster and cohort as Get reads it on `today`, in name order.
    async fn all(conn: &impl ConnectionTrait, today: NaiveDate) -> Result<Vec<Current>, ApiError> {
        use chrono::Datelike;
        let mut out = Vec::new();
        // LIMIT takes a signed 64-bit integer on both backends.
        let all = i64::MAX as u64;
        let by_name = Order::Name { desc: false };
        for c in
            zone_store::list_clusters(conn, &ClusterFilter::default(), by_name, None, all).await?
        {
            let target = super::zones::resolve_target(conn, &c.fields, today.year()).await?;
            out.push(Current {
                resource: c.name(),
                state_json: serde_json::to_string(&c).map_err(ApiError::internal)?,
                published: Published::of(&cluster_to_proto(&c, target.as_ref())),
            });
        }
        for c in leading_store::list_cohorts(conn, &[], None, all).await? {
            out.push(Current {
                resource: c.name(),
                state_json: serde_json::to_string(&c).map_err(ApiError::internal)?,
                published: Published::of(&super::leading::cohort_view(conn, &c).await?),
            });
        }
        let zones = zone_store::list_zones(conn, &ZoneFilter::default(), by_name, None, all)
            .await?
            .into_iter()
            .map(|m| m.into_domain().map_err(ApiError::internal))
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<String> = zones.iter().map(|z| z.name()).collect();
        let counts = zone_store::active_enterprise_counts(conn, &names).await?;
        for z in zones {
            let count = counts.get(&z.name()).copied().unwrap_or(0);
            out.push(Current {
                resource: z.name(),
                state_json: serde_json::to_string(&z).map_err(ApiError::internal)?,
                published: Published::of(&zone_to_proto(&z, count)),
            });
        }
        out.sort_by(|a, b| a.resource.cmp(&b.resource));
        Ok(out)
    }
}

#[async_trait::async_trait]
impl TimeDriven for Aggregates {
    fn family(&self) -> &'static str {
        "zones, clusters and cohorts"
    }

    async fn page(
        &self,
        db: &DatabaseConnection,
        today: NaiveDate,
        after: &str,
        limit: u64,
    ) -> Result<Vec<Current>, ApiError> {
        Ok(Self::all(db, today)
            .await?
            .into_iter()
            .filter(|c| c.resource.as_str() > after)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect())
    }

    async fn these(
        &self,
        conn: &LeaseConn,
        today: NaiveDate,
        resources: &[String],
    ) -> Result<Vec<Current>, ApiError> {
        Ok(Self::all(conn, today)
            .await?
            .into_iter()
            .filter(|c| resources.contains(&c.resource))
            .collect())
    }
}
