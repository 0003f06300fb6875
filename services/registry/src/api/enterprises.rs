//! Enterprises: create, get, list, update, batch get, and USCC validation.

use std::collections::HashMap;

use qilu_common::input::{UpdateMask, Violations, check_current, etag, required};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::registry as pb;

use crate::convert::enterprise::{self as convert, MUTABLE_FIELDS, parse_list_filter, parse_order};
use crate::convert::{ENTERPRISE_TYPE, enterprise_to_proto, parse_enterprise_name};
use crate::domain::enterprise::{Enterprise, EnterpriseState};
use crate::domain::uscc;
use crate::store::enterprise::{self as store, Cursor, Order};

use super::RegistryApi;
pub(super) fn not_found(uscc: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: ENTERPRISE_TYPE,
        name: format!("enterprises/{uscc}"),
    }
}

/// An enterprise-scoped caller may touch only its own enterprise.
pub(super) fn check_own(ctx: &CallContext, uscc: &str) -> Result<(), ApiError> {
    match ctx.enterprise_scope() {
        Some(own) if own != uscc => Err(ApiError::PermissionDenied(
            "an enterprise token may access only its own enterprise".into(),
        )),
        _ => Ok(()),
    }
}

/// Sets `high_tech_certified` as of today. Certificates lapse by the passage of time (expiry,
/// two missed annual reports) without any write, so the stored column can be stale; every read
/// derives the flag from the certificates instead.
async fn certified_today(
    api: &RegistryApi,
    mut enterprises: Vec<Enterprise>,
) -> Result<Vec<Enterprise>, ApiError> {
    let usccs: Vec<String> = enterprises
        .iter()
        .map(|e| e.uscc.as_str().to_string())
        .collect();
    let holders = crate::store::certificate::valid_holders(&api.db, &usccs, api.today()).await?;
    for e in &mut enterprises {
        e.high_tech_certified = holders.contains(e.uscc.as_str());
    }
    Ok(enterprises)
}

/// `e` as Get returns it on `today`: `high_tech_certified` derived from its certificates (the
/// stored column can be stale). What a write records as the enterprise's published state.
pub(super) async fn as_read(
    conn: &impl sea_orm::ConnectionTrait,
    e: &Enterprise,
    today: chrono::NaiveDate,
) -> Result<pb::Enterprise, ApiError> {
    let uscc = e.uscc.as_str().to_string();
    let holders =
        crate::store::certificate::valid_holders(conn, std::slice::from_ref(&uscc), today).await?;
    let mut e = e.clone();
    e.high_tech_certified = holders.contains(&uscc);
    Ok(enterprise_to_proto(&e))
}

/// A zone named on an enterprise must be registered.
async fn check_zone(
    conn: &impl sea_orm::ConnectionTrait,
    zone: Option<&String>,
) -> Result<(), ApiError> {
    if let Some(zone) = zone
        && !crate::store::zones::zone_exists(conn, zone).await?
    {
        return Err(ApiError::invalid(
            "enterprise.zone",
            "UNKNOWN_ZONE",
            format!("{zone} is not a registered high-tech zone"),
        ));
    }
    Ok(())
}

pub(super) async fn create_enterprise(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateEnterpriseRequest,
) -> Result<pb::Enterprise, ApiError> {
    let input = required(req.enterprise.as_ref(), "enterprise")?;
    let mut violations = Violations::new();
    let uscc = violations.take(convert::parse_uscc(
        &input.uscc,
        "enterprise.uscc",
        &api.known_exceptions,
    ));
    let fields = violations.take_all(convert::parse_fields(input, "enterprise", api.today()));
    let (uscc, fields) = violations.into_result(uscc.zip(fields))?;

    let mut tx = match WriteTx::begin::<pb::Enterprise>(&api.db, ctx, &req.request_id, &req).await?
    {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    check_zone(tx.conn(), fields.zone.as_ref()).await?;
    let now = tx.now_us();
    let enterprise = Enterprise {
        uscc,
        fields,
        state: EnterpriseState::Active,
        high_tech_certified: false,
        leading: false,
        create_time_us: now,
        update_time_us: now,
        version: 1,
        state_change: None,
    };
    if let Err(e) = store::insert(tx.conn(), &enterprise).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: ENTERPRISE_TYPE,
                name: enterprise.name(),
            }
        } else {
            e.into()
        });
    }
    let response = enterprise_to_proto(&enterprise);
    tx.record(&enterprise.name(), &enterprise, &response)?;
    tx.commit(&response).await?;
    tracing::info!(enterprise = %enterprise.name(), "enterprise registered");
    Ok(response)
}

pub(super) async fn get_enterprise(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetEnterpriseRequest,
) -> Result<pb::Enterprise, ApiError> {
    let uscc = parse_enterprise_name(&req.name, "name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    // One statement: the row and whether a valid certificate exists today (what
    // `certified_today` derives for lists).
    let found = store::get_with_certification(&api.reads, uscc.as_str(), api.today())
        .await?
        .ok_or_else(|| not_found(uscc.as_str()))?;
    let mut enterprise = found.model.into_domain().map_err(ApiError::internal)?;
    enterprise.high_tech_certified = found.certified;
    Ok(enterprise_to_proto(&enterprise))
}

pub(super) async fn list_enterprises(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListEnterprisesRequest,
) -> Result<pb::ListEnterprisesResponse, ApiError> {
    let mut filter = parse_list_filter(&req.filter)?;
    filter.certified_on = Some(api.today());
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<Cursor> = page.after()?;
    let mut rows = store::list(&api.db, &filter, order, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match (more, rows.last()) {
        (true, Some(last)) => page.next_token(&Cursor {
            name: matches!(order, Order::DisplayName { .. }).then(|| last.display_name.clone()),
            uscc: last.uscc.clone(),
        })?,
        _ => String::new(),
    };
    let enterprises = rows
        .into_iter()
        .map(|m| m.into_domain())
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let enterprises = certified_today(api, enterprises)
        .await?
        .iter()
        .map(enterprise_to_proto)
        .collect();
    Ok(pb::ListEnterprisesResponse {
        enterprises,
        next_page_token,
    })
}

pub(super) async fn update_enterprise(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::UpdateEnterpriseRequest,
) -> Result<pb::Enterprise, ApiError> {
    let input = required(req.enterprise.as_ref(), "enterprise")?;
    let uscc = parse_enterprise_name(&input.name, "enterprise.name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let mut violations = Violations::new();
    let mask =
        UpdateMask::parse_reporting(req.update_mask.as_ref(), MUTABLE_FIELDS, &mut violations)?;
    let today = api.today();

    let mut tx = match WriteTx::begin::<pb::Enterprise>(&api.db, ctx, &req.request_id, &req).await?
    {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = store::get(tx.conn(), uscc.as_str())
        .await?
        .ok_or_else(|| not_found(uscc.as_str()))?
        .into_domain()
        .map_err(ApiError::internal)?;
    // Enterprise etags are keyed by USCC since their first release.
    check_current(&input.etag, &current.etag(), &current.name())?;
    let mut updated = current.clone();
    for path in mask.paths() {
        violations.take(convert::apply_field(
            &mut updated.fields,
            input,
            path,
            "enterprise",
            today,
        ));
    }
    violations.finish()?;
    if mask.contains("zone") {
        check_zone(tx.conn(), updated.fields.zone.as_ref()).await?;
    }
    if updated.fields == current.fields {
        // Sent back as read (or otherwise unchanged): nothing to write or audit, and the etag
        // stays; a retry with the request id still replays this answer.
        let response = as_read(tx.conn(), &current, today).await?;
        tx.commit_unchanged(&response).await?;
        return Ok(response);
    }
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(etag::concurrent(&current.name()));
    }
    let response = as_read(tx.conn(), &updated, api.today()).await?;
    tx.record(&updated.name(), &updated, &response)?;
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn batch_get_enterprises(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::BatchGetEnterprisesRequest,
) -> Result<pb::BatchGetEnterprisesResponse, ApiError> {
    let codes = convert::parse_names(&req.names, &api.known_exceptions)?;
    let rows = store::get_many(&api.db, &codes).await?;
    let mut by_code: HashMap<String, store::Model> =
        rows.into_iter().map(|m| (m.uscc.clone(), m)).collect();
    let mut found = Vec::with_capacity(codes.len());
    for code in &codes {
        // The same name twice is answered twice (AIP-231 keeps request order).
        let model = by_code.get(code).cloned().ok_or_else(|| not_found(code))?;
        found.push(model.into_domain().map_err(ApiError::internal)?);
    }
    by_code.clear();
    let enterprises = certified_today(api, found)
        .await?
        .iter()
        .map(enterprise_to_proto)
        .collect();
    Ok(pb::BatchGetEnterprisesResponse { enterprises })
}

pub(super) async fn validate_uscc(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ValidateUsccRequest,
) -> Result<pb::ValidateUsccResponse, ApiError> {
    let raw = convert::parse_uscc_to_check(&req.uscc)?;
    let report = uscc::check(raw, &api.known_exceptions);
    Ok(convert::report_to_proto(report))
}
