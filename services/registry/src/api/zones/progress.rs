//! Cluster progress: members' counted revenue against the cluster's effective target.

use chrono::Datelike;
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;
use sea_orm::{ConnectionTrait, DbErr};

use crate::api::RegistryApi;
use crate::convert::enterprise_name;
use crate::convert::zones::{check_year, parse_cluster_name};
use crate::domain::cluster::{self, Cluster, Progress};
use crate::domain::figures::FigureKind;

use super::{load_cluster, resolve_target};

/// A cluster's progress counting revenue figures up to `as_of_year` (all years when `None`),
/// against its effective target; `None` when no target resolves. Also what programme
/// statistics use to count clusters on track.
pub(in crate::api) async fn cluster_progress(
    conn: &impl ConnectionTrait,
    cluster: &Cluster,
    as_of_year: Option<i32>,
    current_year: i32,
) -> Result<Option<Progress>, DbErr> {
    let Some(target) = resolve_target(conn, &cluster.fields, current_year).await? else {
        return Ok(None);
    };
    let latest = crate::store::figures::latest_value(
        conn,
        &cluster.fields.members,
        FigureKind::RevenueFen,
        as_of_year.unwrap_or(i32::MAX),
    )
    .await?;
    Ok(Some(cluster::progress(
        &cluster.fields.members,
        &latest,
        &target,
        cluster.fields.start_year,
    )))
}

/// "FIGURE_SOURCE_AUDITED_STATEMENT: reference" for a member's counted revenue figure.
async fn revenue_source(
    conn: &impl ConnectionTrait,
    uscc: &str,
    year: i32,
) -> Result<String, DbErr> {
    let Some(figures) = crate::store::figures::get(conn, uscc, year).await? else {
        return Ok(String::new());
    };
    Ok(figures
        .figures
        .get(&FigureKind::RevenueFen)
        .map(|r| {
            let source = pb::FigureSource::try_from(r.source)
                .map(|s| s.as_str_name())
                .unwrap_or("FIGURE_SOURCE_UNSPECIFIED");
            if r.reference.is_empty() {
                source.to_string()
            } else {
                format!("{source}: {}", r.reference)
            }
        })
        .unwrap_or_default())
}

pub(in crate::api) async fn get_cluster_progress(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetClusterProgressRequest,
) -> Result<pb::ClusterProgress, ApiError> {
    let id = parse_cluster_name(&req.name, "name")?;
    let as_of_year = match req.as_of_year {
        0 => None,
        y => Some(check_year(y, "as_of_year").map_err(|v| ApiError::InvalidArgument(vec![v]))?),
    };
    let current_year = api.today().year();
    let cluster = load_cluster(&api.db, &id).await?;
    let progress = cluster_progress(&api.db, &cluster, as_of_year, current_year).await?;
    let progress =
        progress.ok_or_else(|| cluster.fields.no_target(cluster.name(), current_year))?;
    let mut members = Vec::with_capacity(progress.reporting.len());
    for m in &progress.reporting {
        members.push(pb::MemberRevenue {
            enterprise: enterprise_name(&m.uscc),
            year: m.year,
            revenue_fen: m.revenue_fen,
            source: revenue_source(&api.db, &m.uscc, m.year).await?,
        });
    }
    let saturate = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    Ok(pb::ClusterProgress {
        cluster: cluster.name(),
        display_name: cluster.fields.display_name.clone(),
        as_of_year: progress.as_of_year,
        member_count: i32::try_from(progress.member_count).unwrap_or(i32::MAX),
        members_reporting: i32::try_from(progress.reporting.len()).unwrap_or(i32::MAX),
        revenue_fen: saturate(progress.revenue_fen),
        target_scale_fen: progress.target_scale_fen,
        target_year: progress.target_year,
        progress_basis_points: saturate(progress.progress_basis_points),
        target_reached: progress.target_reached,
        on_track: progress.on_track,
        members,
        members_missing_revenue: progress
            .missing
            .iter()
            .map(|u| enterprise_name(u))
            .collect(),
        explanation: progress.explanation(),
    })
}
