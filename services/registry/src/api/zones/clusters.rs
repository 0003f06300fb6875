//! Register, read, list and update industrial clusters.

use std::collections::{HashMap, HashSet};

use chrono::Datelike;
use qilu_common::error::FieldViolation;
use qilu_common::input::{UpdateMask, Violations, check_etag, etag, required};
use qilu_common::pagination::PageRequest;
use qilu_common::time::to_datetime;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::registry as pb;
use sea_orm::ConnectionTrait;

use crate::api::RegistryApi;
use crate::convert::enterprise_name;
use crate::convert::zones::{
    CLUSTER_FIELDS, CLUSTER_TYPE, ClusterContext, Members, apply_cluster_field, cluster_to_proto,
    parse_cluster_filter, parse_cluster_name, parse_new_cluster, parse_order,
};
use crate::domain::cluster::{self, Cluster, PolicyDefault};
use crate::store::zones::{self as store, Cursor};

use super::{cluster_not_found, load_cluster, next_token, policy_default, resolve_target};

/// Refuses members that are not registered, naming each by its index in the request.
async fn check_members_exist(
    conn: &impl ConnectionTrait,
    members: &Members,
) -> Result<(), ApiError> {
    let codes: Vec<String> = members.iter().map(|(_, u)| u.clone()).collect();
    let mut found = HashSet::new();
    for chunk in codes.chunks(500) {
        for row in crate::store::enterprise::get_many(conn, chunk).await? {
            found.insert(row.uscc);
        }
    }
    let violations: Vec<FieldViolation> = members
        .iter()
        .filter(|(_, u)| !found.contains(u))
        .map(|(i, u)| {
            FieldViolation::new(
                format!("cluster.members[{i}]"),
                "UNKNOWN_ENTERPRISE",
                format!("{} is not registered", enterprise_name(u)),
            )
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(violations))
    }
}

pub(in crate::api) async fn create_cluster(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateClusterRequest,
) -> Result<pb::Cluster, ApiError> {
    let current_year = api.today().year();
    let (id, fields, members) = parse_new_cluster(&req, &api.known_exceptions, current_year)?;
    fields.check()?;

    let mut tx = match WriteTx::begin::<pb::Cluster>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    if let Some(members) = &members {
        check_members_exist(tx.conn(), members).await?;
    }
    let now = tx.now_us();
    let cluster = Cluster {
        id,
        fields,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    let target = resolve_target(tx.conn(), &cluster.fields, current_year).await?;
    let target = cluster
        .fields
        .require_target(cluster.name(), target, current_year)?;
    if let Err(e) = store::insert_cluster(tx.conn(), &cluster).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: CLUSTER_TYPE,
                name: cluster.name(),
            }
        } else {
            e.into()
        });
    }
    let response = cluster_to_proto(&cluster, Some(&target));
    tx.record(&cluster.name(), &cluster, &response)?;
    tx.commit(&response).await?;
    tracing::info!(cluster = %cluster.name(), target_source = %target.source, "cluster registered");
    Ok(response)
}

pub(in crate::api) async fn get_cluster(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetClusterRequest,
) -> Result<pb::Cluster, ApiError> {
    let id = parse_cluster_name(&req.name, "name")?;
    let found = store::get_cluster(&api.db, &id).await?;
    // An enterprise sees only clusters it belongs to; whether another cluster exists is not
    // its business either, so a missing one is refused the same way.
    if let Some(own) = ctx.enterprise_scope()
        && !found.as_ref().is_some_and(|c| c.has_member(own))
    {
        return Err(ApiError::PermissionDenied(
            "an enterprise token may read only the clusters its enterprise belongs to".into(),
        ));
    }
    let cluster = found.ok_or_else(|| cluster_not_found(&id))?;
    let target = resolve_target(&api.db, &cluster.fields, api.today().year()).await?;
    Ok(cluster_to_proto(&cluster, target.as_ref()))
}

pub(in crate::api) async fn list_clusters(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListClustersRequest,
) -> Result<pb::ListClustersResponse, ApiError> {
    let (mut filter, target_year) = parse_cluster_filter(&req.filter, &api.known_exceptions)?;
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<Cursor> = page.after()?;
    let current_year = api.today().year();
    // Clusters without their own year take the year of the policy target in force now.
    let default = policy_default(&api.db, current_year).await?;
    if let Some(year) = target_year {
        let policy_matches = default.as_ref().is_some_and(|d| d.target_year == year);
        filter.effective_target_year = Some((year, policy_matches));
    }
    let mut clusters = store::list_clusters(&api.db, &filter, order, after, page.size + 1).await?;
    let more = clusters.len() as u64 > page.size;
    clusters.truncate(page.size as usize);
    let next_page_token = next_token(
        &page,
        more,
        order,
        clusters
            .last()
            .map(|c| (c.id.as_str(), c.fields.display_name.as_str())),
    )?;
    // One policy lookup per distinct year, not per cluster.
    let mut by_year: HashMap<i32, Option<PolicyDefault>> = HashMap::new();
    by_year.insert(current_year, default);
    let mut out = Vec::with_capacity(clusters.len());
    for c in &clusters {
        let year = c.fields.target_year.unwrap_or(current_year);
        if let std::collections::hash_map::Entry::Vacant(slot) = by_year.entry(year) {
            slot.insert(policy_default(&api.db, year).await?);
        }
        let policy = by_year.get(&year).and_then(Option::as_ref);
        let target =
            cluster::effective_target(c.fields.target_scale_fen, c.fields.target_year, policy);
        out.push(cluster_to_proto(c, target.as_ref()));
    }
    Ok(pb::ListClustersResponse {
        clusters: out,
        next_page_token,
    })
}

pub(in crate::api) async fn update_cluster(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::UpdateClusterRequest,
) -> Result<pb::Cluster, ApiError> {
    let input = required(req.cluster.as_ref(), "cluster")?;
    let id = parse_cluster_name(&input.name, "cluster.name")?;
    let mut violations = Violations::new();
    let mask =
        UpdateMask::parse_reporting(req.update_mask.as_ref(), CLUSTER_FIELDS, &mut violations)?;
    let current_year = api.today().year();

    let mut tx = match WriteTx::begin::<pb::Cluster>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = load_cluster(tx.conn(), &id).await?;
    check_etag(&input.etag, &current.name(), current.version)?;
    let created_year = to_datetime(current.create_time_us)
        .map(|t| t.with_timezone(&api.time_zone).year())
        .unwrap_or(current_year);
    let cx = ClusterContext {
        known: &api.known_exceptions,
        current_year,
        default_start_year: created_year,
    };
    let mut updated = current.clone();
    let mut members = None;
    for path in mask.paths() {
        violations.take_all(apply_cluster_field(
            &mut updated.fields,
            input,
            path,
            &cx,
            &mut members,
        ));
    }
    violations.finish()?;
    updated.fields.check()?;
    if let Some(members) = &members {
        check_members_exist(tx.conn(), members).await?;
    }
    let target = resolve_target(tx.conn(), &updated.fields, current_year).await?;
    let target = updated
        .fields
        .require_target(updated.name(), target, current_year)?;
    if updated.fields == current.fields {
        // Sent back as read (or otherwise unchanged): nothing to write or audit, and the etag
        // stays; a retry with the request id still replays this answer.
        let response = cluster_to_proto(&current, Some(&target));
        tx.commit_unchanged(&response).await?;
        return Ok(response);
    }
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    let members_changed = updated.fields.members != current.fields.members;
    if !store::update_cluster_if_version(tx.conn(), &updated, current.version, members_changed)
        .await?
    {
        return Err(etag::concurrent(&current.name()));
    }
    let response = cluster_to_proto(&updated, Some(&target));
    tx.record(&updated.name(), &updated, &response)?;
    tx.commit(&response).await?;
    Ok(response)
}
