//! High-tech zones (`zones`), industrial clusters (`clusters`) and cluster progress
//! (`progress`).
//!
//! A cluster's target: its own `target_scale_fen` / `target_year` where set, otherwise the
//! CLUSTER_SCALE policy target in force for the cluster's own target year, or — when the cluster
//! sets no year — for the current programme year (so clusters that follow the policy follow a
//! new target once it supersedes the old one). Progress rules: `crate::domain::cluster`.

pub(super) mod clusters;
pub(super) mod progress;
// The family is named after its first resource; `zones::zones` is the zones themselves.
#[allow(clippy::module_inception)]
pub(super) mod zones;

use qilu_common::ApiError;
use qilu_common::pagination::PageRequest;
use sea_orm::{ConnectionTrait, DbErr};

use crate::convert::zones::CLUSTER_TYPE;
use crate::domain::cluster::{self, ClusterFields, EffectiveTarget, PolicyDefault};
use crate::store::zones::{self as store, Cursor, Order};

use super::policy::policy_target_name;

pub(super) use progress::cluster_progress;

fn next_token(
    page: &PageRequest,
    more: bool,
    order: Order,
    last: Option<(&str, &str)>,
) -> Result<String, ApiError> {
    match (more, last) {
        (true, Some((id, display_name))) => page.next_token(&Cursor {
            display_name: matches!(order, Order::DisplayName { .. })
                .then(|| display_name.to_string()),
            id: id.to_string(),
        }),
        _ => Ok(String::new()),
    }
}

/// The CLUSTER_SCALE policy target in force for `year`, as a cluster's fallback.
async fn policy_default(
    conn: &impl ConnectionTrait,
    year: i32,
) -> Result<Option<PolicyDefault>, DbErr> {
    Ok(
        crate::store::policy::in_force(conn, crate::store::policy::kind::CLUSTER_SCALE, year)
            .await?
            .map(|m| PolicyDefault {
                name: policy_target_name(&m.id),
                value_fen: m.value,
                target_year: m.target_year,
            }),
    )
}

/// The effective target of a cluster with `fields` (see the module doc for the lookup year).
pub(in crate::api) async fn resolve_target(
    conn: &impl ConnectionTrait,
    fields: &ClusterFields,
    current_year: i32,
) -> Result<Option<EffectiveTarget>, DbErr> {
    let policy = match (fields.target_scale_fen, fields.target_year) {
        (Some(_), Some(_)) => None,
        (_, own_year) => policy_default(conn, own_year.unwrap_or(current_year)).await?,
    };
    Ok(cluster::effective_target(
        fields.target_scale_fen,
        fields.target_year,
        policy.as_ref(),
    ))
}

/// Cluster `id`, or NOT_FOUND.
async fn load_cluster(conn: &impl ConnectionTrait, id: &str) -> Result<cluster::Cluster, ApiError> {
    store::get_cluster(conn, id)
        .await?
        .ok_or_else(|| cluster_not_found(id))
}

/// NOT_FOUND for cluster `id`.
fn cluster_not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: CLUSTER_TYPE,
        name: cluster::cluster_name(id),
    }
}
