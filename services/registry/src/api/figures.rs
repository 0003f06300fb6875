//! Annual figures: get, list, and update (AIP-134 with `allow_missing`, a field mask over the
//! figure names, an etag per enterprise-year). Each written figure carries its own value, source,
//! reference and update time. Enterprise tokens read and write only their own figures, and write
//! only as ENTERPRISE_DECLARATION — never over (or clearing) a figure recorded from another
//! source.

use chrono::Datelike;
use qilu_common::input::required;
use qilu_common::pagination::PageRequest;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;

use qilu_common::input::check_etag;

use crate::convert::figures::{
    ANNUAL_FIGURES_TYPE, figures_name, parse_input, parse_mask, parse_name, parse_year_filter,
    parse_year_order, to_proto,
};
use crate::convert::parse_enterprise_name;
use crate::domain::figures::{AnnualFigures, Reported, SOURCE_ENTERPRISE_DECLARATION, source_name};
use crate::domain::uscc::Uscc;
use crate::store::figures::{self as store, YearCursor};

use super::RegistryApi;
use super::enterprises::check_own;

/// Earliest year figures may be written for: the registry's data start with the reform era;
/// anything older is a data-entry error. The latest is next year (programme time zone), for
/// budgets entered ahead.
pub const EARLIEST_WRITABLE_YEAR: i32 = 1990;

fn not_found(name: String) -> ApiError {
    ApiError::NotFound {
        resource_type: ANNUAL_FIGURES_TYPE,
        name,
    }
}

pub(super) async fn get_annual_figures(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetAnnualFiguresRequest,
) -> Result<pb::AnnualFigures, ApiError> {
    let (uscc, year) = parse_name(&req.name, "name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let figures = store::get(&api.db, uscc.as_str(), year)
        .await?
        .ok_or_else(|| not_found(figures_name(uscc.as_str(), year)))?;
    Ok(to_proto(&figures))
}

/// Parses a List parent: `Some(uscc)` or `None` for `enterprises/-` (staff only).
pub(super) fn parse_parent(
    api: &RegistryApi,
    ctx: &CallContext,
    parent: &str,
) -> Result<Option<Uscc>, ApiError> {
    if parent == "enterprises/-" {
        if ctx.enterprise_scope().is_some() {
            return Err(ApiError::PermissionDenied(
                "an enterprise token may list only its own enterprise".into(),
            ));
        }
        return Ok(None);
    }
    let uscc = parse_enterprise_name(parent, "parent", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    Ok(Some(uscc))
}

pub(super) async fn list_annual_figures(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::ListAnnualFiguresRequest,
) -> Result<pb::ListAnnualFiguresResponse, ApiError> {
    let parent = parse_parent(api, ctx, &req.parent)?;
    let (min, max) = parse_year_filter(&req.filter)?;
    let desc = parse_year_order(&req.order_by)?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, &req.order_by)?;
    let after: Option<YearCursor> = page.after()?;
    if let Some(u) = &parent {
        api.load(u).await?;
    }
    let mut records = store::list_page(
        &api.db,
        parent.as_ref().map(Uscc::as_str),
        min,
        max,
        desc,
        after.as_ref(),
        page.size + 1,
    )
    .await?;
    let more = records.len() as u64 > page.size;
    records.truncate(page.size as usize);
    let next_page_token = match (more, records.last()) {
        (true, Some(last)) => page.next_token(&YearCursor {
            year: last.year,
            uscc: last.uscc.clone(),
        })?,
        _ => String::new(),
    };
    Ok(pb::ListAnnualFiguresResponse {
        annual_figures: records.iter().map(to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn update_annual_figures(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::UpdateAnnualFiguresRequest,
) -> Result<pb::AnnualFigures, ApiError> {
    let input = required(req.annual_figures.as_ref(), "annual_figures")?;
    let (uscc, year) = parse_name(&input.name, "annual_figures.name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let latest = api.today().year() + 1;
    if !(EARLIEST_WRITABLE_YEAR..=latest).contains(&year) {
        return Err(ApiError::invalid(
            "annual_figures.name",
            "YEAR_OUT_OF_RANGE",
            format!("figures can be written for {EARLIEST_WRITABLE_YEAR}-{latest}, not {year}"),
        ));
    }
    let mut violations = Vec::new();
    let kinds = parse_mask(req.update_mask.as_ref(), &mut violations)?;
    let mut writes = Vec::new();
    for &kind in &kinds {
        writes.push((kind, parse_input(input, kind, &mut violations)));
    }
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations));
    }
    let scoped = ctx.enterprise_scope().is_some();
    if scoped
        && let Some((kind, _)) = writes.iter().find(|(_, w)| {
            w.as_ref()
                .is_some_and(|(_, source, _)| *source != SOURCE_ENTERPRISE_DECLARATION)
        })
    {
        return Err(ApiError::PermissionDenied(format!(
            "an enterprise token may write figures only with source \
             FIGURE_SOURCE_ENTERPRISE_DECLARATION ({} has another)",
            kind.as_str()
        )));
    }

    let mut tx =
        match WriteTx::begin::<pb::AnnualFigures>(&api.db, ctx, &req.request_id, &req).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let name = figures_name(uscc.as_str(), year);
    // The enterprise must exist (its figures cannot).
    if crate::store::enterprise::get(tx.conn(), uscc.as_str())
        .await?
        .is_none()
    {
        return Err(super::enterprises::not_found(uscc.as_str()));
    }
    let now = tx.now_us();
    let current = store::get(tx.conn(), uscc.as_str(), year).await?;
    let mut updated = match &current {
        Some(c) => {
            check_etag(&input.etag, &name, c.version)?;
            c.clone()
        }
        None if !req.allow_missing => return Err(not_found(name)),
        None if !input.etag.is_empty() => {
            return Err(ApiError::Aborted(format!(
                "{name} does not exist, so etag {} is stale",
                input.etag
            )));
        }
        None => AnnualFigures {
            uscc: uscc.as_str().to_string(),
            year,
            figures: Default::default(),
            create_time_us: now,
            update_time_us: now,
            version: 0,
        },
    };
    if scoped
        && let Some(kind) = kinds.iter().find(|k| {
            updated
                .figures
                .get(k)
                .is_some_and(|r| r.source != SOURCE_ENTERPRISE_DECLARATION)
        })
    {
        return Err(ApiError::PermissionDenied(format!(
            "{} of {year} was recorded from {}; an enterprise token may not replace or clear it",
            kind.as_str(),
            updated
                .figures
                .get(kind)
                .and_then(|r| source_name(r.source))
                .unwrap_or("another source")
        )));
    }
    let unchanged = current.is_some()
        && writes
            .iter()
            .all(|(kind, write)| match (write, updated.figures.get(kind)) {
                (Some((value, source, reference)), Some(r)) => {
                    r.value == *value && r.source == *source && r.reference == *reference
                }
                (None, None) => true,
                _ => false,
            });
    if unchanged {
        // Sent back as read (or otherwise unchanged): nothing to write or audit, and the etag
        // stays; a retry with the request id still replays this answer.
        let response = to_proto(&updated);
        tx.commit_unchanged(&response).await?;
        return Ok(response);
    }
    for (kind, write) in writes {
        match write {
            Some((value, source, reference)) => {
                updated.figures.insert(
                    kind,
                    Reported {
                        value,
                        source,
                        reference,
                        update_time_us: now,
                    },
                );
            }
            None => {
                updated.figures.remove(&kind);
            }
        }
    }
    updated.check_parts(&kinds)?;
    updated.version += 1;
    updated.update_time_us = now;
    store::write(tx.conn(), &updated, &kinds).await?;
    let response = to_proto(&updated);
    tx.record(&name, &updated, &response)?;
    tx.commit(&response).await?;
    Ok(response)
}
