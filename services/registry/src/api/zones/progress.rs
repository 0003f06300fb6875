//! Cluster progress: members' counted revenue against the cluster's effective target.

use chrono::Datelike;
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;
use sea_orm::{ConnectionTrait, DbErr};

use crate::api::RegistryApi;
use crate::convert::zones::{check_year, parse_cluster_name, progress_to_proto};
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

pub(in crate::api) async fn get_cluster_progress(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetClusterProgressRequest,
) -> Result<pb::ClusterProgress, ApiError> {
    let id = parse_cluster_name(&req.name, "name")?;
    let as_of_year = match req.as_of_year {
        0 => None,
        y => Some(check_year(y, "as_of_year")?),
    };
    let current_year = api.today().year();
    let cluster = load_cluster(&api.db, &id).await?;
    let progress = cluster_progress(&api.db, &cluster, as_of_year, current_year).await?;
    let progress =
        progress.ok_or_else(|| cluster.fields.no_target(cluster.name(), current_year))?;
    // The same citation `GetProgrammeStatistics` gives, read for every member at once.
    let usccs: Vec<String> = progress.reporting.iter().map(|m| m.uscc.clone()).collect();
    let up_to = as_of_year.unwrap_or(i32::MAX);
    let sources = crate::store::statistics::revenue_sources(&api.db, &usccs, up_to).await?;
    Ok(progress_to_proto(&cluster, &progress, &sources))
}
