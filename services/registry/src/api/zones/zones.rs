//! Register, read, list and update high-tech zones.

use qilu_common::input::{UpdateMask, Violations, check_etag, etag, required};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::registry as pb;
use sea_orm::ConnectionTrait;

use crate::api::RegistryApi;
use crate::convert::zones::{
    ZONE_FIELDS, ZONE_TYPE, apply_zone_field, parse_new_zone, parse_order, parse_zone_filter,
    parse_zone_name, zone_to_proto,
};
use crate::domain::zone::Zone;
use crate::store::zones::{self as store, Cursor};

use super::next_token;

fn zone_not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: ZONE_TYPE,
        name: crate::domain::zone::zone_name(id),
    }
}

pub(in crate::api) async fn create_zone(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateZoneRequest,
) -> Result<pb::Zone, ApiError> {
    let (id, fields) = parse_new_zone(&req, api.today())?;

    let mut tx = match WriteTx::begin::<pb::Zone>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let now = tx.now_us();
    let zone = Zone {
        id,
        fields,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    if let Err(e) = store::insert_zone(tx.conn(), &zone).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: ZONE_TYPE,
                name: zone.name(),
            }
        } else {
            e.into()
        });
    }
    // Enterprises may name a zone before it is registered: count them from the start.
    let count = enterprise_count(tx.conn(), &zone.name()).await?;
    let response = zone_to_proto(&zone, count);
    tx.record(&zone.name(), &zone, &response)?;
    tx.commit(&response).await?;
    tracing::info!(zone = %zone.name(), "zone registered");
    Ok(response)
}

async fn enterprise_count(conn: &impl ConnectionTrait, name: &str) -> Result<i64, ApiError> {
    let counts = store::active_enterprise_counts(conn, &[name.to_string()]).await?;
    Ok(counts.get(name).copied().unwrap_or(0))
}

async fn load_zone(conn: &impl ConnectionTrait, id: &str) -> Result<Zone, ApiError> {
    store::get_zone(conn, id)
        .await?
        .ok_or_else(|| zone_not_found(id))?
        .into_domain()
        .map_err(ApiError::internal)
}

pub(in crate::api) async fn get_zone(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetZoneRequest,
) -> Result<pb::Zone, ApiError> {
    let id = parse_zone_name(&req.name, "name")?;
    let zone = load_zone(&api.db, &id).await?;
    let count = enterprise_count(&api.db, &zone.name()).await?;
    Ok(zone_to_proto(&zone, count))
}

pub(in crate::api) async fn list_zones(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListZonesRequest,
) -> Result<pb::ListZonesResponse, ApiError> {
    let filter = parse_zone_filter(&req.filter)?;
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<Cursor> = page.after()?;
    let mut rows = store::list_zones(&api.db, &filter, order, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = next_token(
        &page,
        more,
        order,
        rows.last()
            .map(|r| (r.id.as_str(), r.display_name.as_str())),
    )?;
    let zones = rows
        .into_iter()
        .map(|m| m.into_domain())
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let names: Vec<String> = zones.iter().map(Zone::name).collect();
    let counts = store::active_enterprise_counts(&api.db, &names).await?;
    Ok(pb::ListZonesResponse {
        zones: zones
            .iter()
            .map(|z| zone_to_proto(z, counts.get(&z.name()).copied().unwrap_or(0)))
            .collect(),
        next_page_token,
    })
}

pub(in crate::api) async fn update_zone(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::UpdateZoneRequest,
) -> Result<pb::Zone, ApiError> {
    let input = required(req.zone.as_ref(), "zone")?;
    let id = parse_zone_name(&input.name, "zone.name")?;
    let mut violations = Violations::new();
    let mask = UpdateMask::parse_reporting(req.update_mask.as_ref(), ZONE_FIELDS, &mut violations)?;
    let today = api.today();

    let mut tx = match WriteTx::begin::<pb::Zone>(&api.db, ctx, &req.request_id, &req).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = load_zone(tx.conn(), &id).await?;
    check_etag(&input.etag, &current.name(), current.version)?;
    let mut updated = current.clone();
    for path in mask.paths() {
        violations.take(apply_zone_field(&mut updated.fields, input, path, today));
    }
    violations.finish()?;
    if updated.fields == current.fields {
        // Sent back as read (or otherwise unchanged): nothing to write or audit, and the etag
        // stays; a retry with the request id still replays this answer.
        let count = enterprise_count(tx.conn(), &current.name()).await?;
        let response = zone_to_proto(&current, count);
        tx.commit_unchanged(&response).await?;
        return Ok(response);
    }
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_zone_if_version(tx.conn(), &updated, current.version).await? {
        return Err(etag::concurrent(&current.name()));
    }
    let count = enterprise_count(tx.conn(), &updated.name()).await?;
    let response = zone_to_proto(&updated, count);
    tx.record(&updated.name(), &updated, &response)?;
    tx.commit(&response).await?;
    Ok(response)
}
