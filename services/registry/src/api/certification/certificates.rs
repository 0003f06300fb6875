//! Create, get, list and revoke high-tech certificates.

use qilu_common::input::{check_etag, etag};
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::registry as pb;

use crate::api::RegistryApi;
use crate::api::enterprises::{check_own, not_found as enterprise_not_found};
use crate::api::figures::parse_parent;
use crate::convert::certification::{
    CERTIFICATE_TYPE, parse_list_filter, parse_name, parse_new_certificate, parse_order,
    parse_revocation, to_proto,
};
use crate::convert::parse_enterprise_name;
use crate::domain::certification::{self as cert, Certificate};
use crate::store::certificate::{self as store, Cursor, Order};
use crate::store::enterprise as enterprise_store;

use super::{load_in, record, refresh_certified};

pub(in crate::api) async fn create_high_tech_certificate(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateHighTechCertificateRequest,
) -> Result<pb::HighTechCertificate, ApiError> {
    let uscc = parse_enterprise_name(&req.parent, "parent", &api.known_exceptions)?;
    let today = api.today();
    let input = parse_new_certificate(req.high_tech_certificate.as_ref(), today)?;

    let mut tx =
        match WriteTx::begin::<pb::HighTechCertificate>(&api.db, ctx, &req.request_id, &req).await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let holder = enterprise_store::get(tx.conn(), uscc.as_str())
        .await?
        .ok_or_else(|| enterprise_not_found(uscc.as_str()))?
        .into_domain()
        .map_err(ApiError::internal)?;
    cert::may_hold(holder.name(), holder.state)?;
    let now = tx.now_us();
    let certificate = Certificate {
        uscc: uscc.as_str().to_string(),
        number: input.number,
        issue_date: input.issue_date,
        issuing_authority: input.issuing_authority,
        technology_field: input.technology_field,
        filings: Vec::new(),
        revocation: None,
        create_time_us: now,
        update_time_us: now,
        version: 1,
    };
    if let Err(e) = store::insert(tx.conn(), &certificate).await {
        return Err(if is_unique_violation(&e) {
            ApiError::AlreadyExists {
                resource_type: CERTIFICATE_TYPE,
                name: certificate.name(),
            }
        } else {
            e.into()
        });
    }
    record(&mut tx, &certificate, today, api.time_zone)?;
    refresh_certified(&mut tx, uscc.as_str(), today).await?;
    let response = to_proto(&certificate, today, api.time_zone);
    tx.commit(&response).await?;
    tracing::info!(certificate = %certificate.name(), "high-tech certificate recorded");
    Ok(response)
}

pub(in crate::api) async fn get_high_tech_certificate(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetHighTechCertificateRequest,
) -> Result<pb::HighTechCertificate, ApiError> {
    let (uscc, number) = parse_name(&req.name, "name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let c = load_in(&api.db, &uscc, &number).await?;
    Ok(to_proto(&c, api.today(), api.time_zone))
}

pub(in crate::api) async fn list_high_tech_certificates(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::ListHighTechCertificatesRequest,
) -> Result<pb::ListHighTechCertificatesResponse, ApiError> {
    let parent = parse_parent(api, ctx, &req.parent)?;
    let today = api.today();
    let mut filter = parse_list_filter(&req.filter, today)?;
    let order = parse_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let mut after: Option<Cursor> = page.after()?;
    if let Some(u) = &parent {
        api.load(u).await?;
        filter.sql.uscc = Some(u.as_str().to_string());
    }
    // The missed-report count depends on today, so it is applied here; read batches until the
    // page (plus one, to know whether there is more) is full or the rows run out.
    let want = page.size as usize + 1;
    let batch = (page.size + 1).max(100);
    let mut found: Vec<(Certificate, Cursor)> = Vec::new();
    loop {
        let rows = store::list(&api.db, &filter.sql, order, after.as_ref(), batch).await?;
        let exhausted = (rows.len() as u64) < batch;
        for row in rows {
            let cursor = Cursor {
                date: match order {
                    Order::IssueDate { .. } => row.issue_date.clone(),
                    Order::ExpiryDate { .. } => row.expiry_date.clone(),
                },
                uscc: row.uscc.clone(),
                number: row.number.clone(),
            };
            after = Some(cursor.clone());
            let c = row.into_domain().map_err(ApiError::internal)?;
            if filter.missed.is_empty() || filter.admits_missed(cert::status(&c, today).missed) {
                found.push((c, cursor));
                if found.len() == want {
                    break;
                }
            }
        }
        if exhausted || found.len() == want {
            break;
        }
    }
    let more = found.len() == want;
    found.truncate(page.size as usize);
    let next_page_token = match (more, found.last()) {
        (true, Some((_, cursor))) => page.next_token(cursor)?,
        _ => String::new(),
    };
    Ok(pb::ListHighTechCertificatesResponse {
        high_tech_certificates: found
            .iter()
            .map(|(c, _)| to_proto(c, today, api.time_zone))
            .collect(),
        next_page_token,
    })
}

pub(in crate::api) async fn revoke_high_tech_certificate(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::RevokeHighTechCertificateRequest,
) -> Result<pb::HighTechCertificate, ApiError> {
    let (uscc, number) = parse_name(&req.name, "name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let (ground, reason) = parse_revocation(&req)?;
    let today = api.today();

    let mut tx =
        match WriteTx::begin::<pb::HighTechCertificate>(&api.db, ctx, &req.request_id, &req).await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = load_in(tx.conn(), &uscc, &number).await?;
    check_etag(&req.etag, &current.name(), current.version)?;
    let updated = current.revoke(ground, reason, today, tx.now_us())?;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(etag::concurrent(&current.name()));
    }
    record(&mut tx, &updated, today, api.time_zone)?;
    refresh_certified(&mut tx, uscc.as_str(), today).await?;
    let response = to_proto(&updated, today, api.time_zone);
    tx.commit(&response).await?;
    tracing::info!(certificate = %updated.name(), ?ground, "high-tech certificate revoked");
    Ok(response)
}
