//! Programme statistics: the year's new high-tech enterprises in zones and green fields against
//! the yearly target, the leading cohort's fill, and every cluster's progress, each target
//! resolved from the policy data in force for the year (never a constant here).
//!
//! Reads only, in one read transaction so the numbers describe one moment (PostgreSQL:
//! REPEATABLE READ, read only; SQLite: one deferred transaction, a single WAL snapshot). The
//! counting rules are `crate::domain::statistics`; the queries `crate::store::statistics`;
//! cluster progress is exactly `GetClusterProgress` with `as_of_year` = the year.

use qilu_common::CallContext;
use std::collections::HashMap;

use chrono::Datelike;
use qilu_common::ApiError;
use qilu_common::time::to_timestamp;
use qilu_proto::registry as pb;
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseBackend, IsolationLevel, TransactionOptions,
    TransactionTrait,
};

use crate::domain::cluster::{self, Cluster, EffectiveTarget};
use crate::domain::figures::FigureKind;
use crate::domain::statistics as stats;
use crate::store::policy::{self as policy_store, kind};
use crate::store::statistics::{self as store, RevenueSource};
use crate::store::zones::{self as zones_store, ClusterFilter, Cursor, Order};

use super::RegistryApi;
use super::policy::policy_target_name;
use super::zones::cluster_progress;
use crate::convert::statistics::{green_categories, new_high_tech_to_proto, parse_year};
use crate::convert::zones::progress_to_proto;

/// Clusters read per query while listing them all.
const CLUSTER_PAGE: u64 = 500;

/// The target of `kind` in force for `year`, with where it came from; zeros when none.
async fn target(
    conn: &impl ConnectionTrait,
    kind: i32,
    year: i32,
) -> Result<pb::TargetValue, ApiError> {
    Ok(policy_store::in_force(conn, kind, year)
        .await?
        .map(|t| pb::TargetValue {
            value: t.value,
            policy_target: policy_target_name(&t.id),
            source: t.source,
        })
        .unwrap_or_default())
}

/// The known green categories (every `GreenCategory` but UNSPECIFIED), always listed.
/// The year's cohort (if created), its SELECTED members and those with their policy, against
/// the LEADING_COHORT_SIZE target in force for the year.
async fn cohort_fill(conn: &impl ConnectionTrait, year: i32) -> Result<pb::CohortFill, ApiError> {
    let cohort = crate::store::leading::get_cohort(conn, year).await?;
    let (selected, with_policy) = crate::store::leading::cohort_counts(conn, year).await?;
    let target = target(conn, kind::LEADING_COHORT_SIZE, year).await?;
    let selected = i64::try_from(selected).unwrap_or(i64::MAX);
    let with_policy = i64::try_from(with_policy).unwrap_or(i64::MAX);
    Ok(pb::CohortFill {
        cohort: cohort
            .map(|c| crate::domain::leading::cohort_name(c.year))
            .unwrap_or_default(),
        fill_basis_points: stats::fill_basis_points(selected, target.value),
        target: Some(target),
        selected_count: i32::try_from(selected).unwrap_or(i32::MAX),
        with_policy_count: i32::try_from(with_policy).unwrap_or(i32::MAX),
    })
}

/// Every cluster, by name.
async fn all_clusters(conn: &impl ConnectionTrait) -> Result<Vec<Cluster>, ApiError> {
    let mut out: Vec<Cluster> = Vec::new();
    loop {
        let after = out.last().map(|c| Cursor {
            display_name: None,
            id: c.id.clone(),
        });
        let page = zones_store::list_clusters(
            conn,
            &ClusterFilter::default(),
            Order::Name { desc: false },
            after,
            CLUSTER_PAGE,
        )
        .await?;
        let last_page = (page.len() as u64) < CLUSTER_PAGE;
        out.extend(page);
        if last_page {
            return Ok(out);
        }
    }
}

/// A cluster for which no target resolves (`GetClusterProgress` refuses it with
/// NO_CLUSTER_SCALE_TARGET): still listed, with its members' revenue, target 0, not on track.
async fn untargeted_progress(
    conn: &impl ConnectionTrait,
    c: &Cluster,
    year: i32,
    sources: &HashMap<(String, i32), RevenueSource>,
) -> Result<pb::ClusterProgress, ApiError> {
    let latest =
        crate::store::figures::latest_value(conn, &c.fields.members, FigureKind::RevenueFen, year)
            .await?;
    // A target nobody can reach, only to reuse the revenue arithmetic; every target-dependent
    // field is then replaced.
    let unreachable = EffectiveTarget {
        scale_fen: i64::MAX,
        year: 0,
        source: String::new(),
    };
    let p = cluster::progress(
        &c.fields.members,
        &latest,
        &unreachable,
        c.fields.start_year,
    );
    let mut out = progress_to_proto(c, &p, sources);
    out.target_scale_fen = 0;
    out.target_year = 0;
    out.progress_basis_points = 0;
    out.target_reached = false;
    out.on_track = false;
    out.explanation = format!(
        "{} bn yuan as of {}; no CLUSTER_SCALE target resolves for this cluster, so it is not on track",
        cluster::bn_yuan(p.revenue_fen),
        p.as_of_year
    );
    Ok(out)
}

/// Every cluster's progress as of `year`.
async fn clusters_progress(
    conn: &impl ConnectionTrait,
    year: i32,
    current_year: i32,
) -> Result<Vec<pb::ClusterProgress>, ApiError> {
    let clusters = all_clusters(conn).await?;
    let mut members: Vec<String> = clusters
        .iter()
        .flat_map(|c| c.fields.members.iter().cloned())
        .collect();
    members.sort_unstable();
    members.dedup();
    let sources = store::revenue_sources(conn, &members, year).await?;
    let mut out = Vec::with_capacity(clusters.len());
    for c in &clusters {
        out.push(
            match cluster_progress(conn, c, Some(year), current_year).await? {
                Some(p) => progress_to_proto(c, &p, &sources),
                None => untargeted_progress(conn, c, year, &sources).await?,
            },
        );
    }
    Ok(out)
}

pub(super) async fn get_programme_statistics(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetProgrammeStatisticsRequest,
) -> Result<pb::ProgrammeStatistics, ApiError> {
    let year = parse_year(req.year)?;
    let current_year = api.today().year();
    let postgres = api.db.get_database_backend() == DatabaseBackend::Postgres;
    let txn = api
        .db
        .begin_with_options(TransactionOptions {
            // SQLite refuses neither but warns that it ignores both; its snapshot is the WAL's.
            isolation_level: postgres.then_some(IsolationLevel::RepeatableRead),
            access_mode: postgres.then_some(AccessMode::ReadOnly),
            ..Default::default()
        })
        .await?;

    let zones = store::zones(&txn).await?;
    let cells = store::new_high_tech_cells(&txn, year).await?;
    let counts = stats::count_new_high_tech(&zones, &cells, &green_categories());
    let hte_target = target(&txn, kind::YEARLY_NEW_HIGH_TECH_ENTERPRISES, year).await?;
    let leading_cohort = cohort_fill(&txn, year).await?;
    let clusters = clusters_progress(&txn, year, current_year).await?;
    let cluster_count_target = target(&txn, kind::CLUSTER_COUNT, year).await?;
    txn.commit().await?;

    let clusters_on_track = clusters.iter().filter(|c| c.on_track).count();
    Ok(pb::ProgrammeStatistics {
        year,
        new_high_tech_enterprises: Some(new_high_tech_to_proto(counts, hte_target)),
        leading_cohort: Some(leading_cohort),
        clusters_on_track: i32::try_from(clusters_on_track).unwrap_or(i32::MAX),
        clusters,
        cluster_count_target: Some(cluster_count_target),
        compute_time: Some(to_timestamp(api.now_us())),
    })
}
