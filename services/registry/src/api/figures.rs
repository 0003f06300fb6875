//! Annual figures: get, list, and update (AIP-134 with `allow_missing`, a field mask over the
//! figure names, an etag per enterprise-year). Each written figure carries its own value, source,
//! reference and update time. Enterprise tokens read and write only their own figures, and write
//! only as ENTERPRISE_DECLARATION — never over (or clearing) a figure recorded from another
//! source.

use chrono::Datelike;
use qilu_common::error::FieldViolation;
use qilu_common::filter::{Filter, Op};
use qilu_common::pagination::PageRequest;
use qilu_common::time::to_timestamp;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;

use crate::convert::parse_enterprise_name;
use crate::domain::enterprise::etag_of;
use crate::domain::figures::{
    AnnualFigures, FigureKind, MAX_REFERENCE_CHARS, PART_OF, Reported,
    SOURCE_ENTERPRISE_DECLARATION, source_name,
};
use crate::domain::uscc::Uscc;
use crate::store::figures::{self as store, YearCursor};

use super::RegistryApi;
use super::enterprises::check_own;

/// Resource type for `ResourceInfo` in errors.
pub const ANNUAL_FIGURES_TYPE: &str = "registry.qilu.gov.cn/AnnualFigures";
/// Years a resource name may carry (the contract: four digits, 1949-2100).
const NAME_YEARS: std::ops::RangeInclusive<i32> = 1949..=2100;
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

/// Parses `enterprises/{uscc}/annualFigures/{year}`.
fn parse_name(api: &RegistryApi, name: &str, field: &str) -> Result<(Uscc, i32), ApiError> {
    let bad = || {
        ApiError::invalid(
            field,
            "INVALID_RESOURCE_NAME",
            format!(
                "expected enterprises/{{uscc}}/annualFigures/{{year}}, got {}",
                qilu_common::limits::echo(name)
            ),
        )
    };
    let Some((parent, year)) = name.rsplit_once("/annualFigures/") else {
        return Err(bad());
    };
    let uscc = parse_enterprise_name(parent, field, &api.known_exceptions)?;
    let year: i32 = if year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) {
        year.parse().map_err(|_| bad())?
    } else {
        return Err(bad());
    };
    if !NAME_YEARS.contains(&year) {
        return Err(ApiError::invalid(
            field,
            "YEAR_OUT_OF_RANGE",
            format!("year {year} is outside 1949-2100"),
        ));
    }
    Ok((uscc, year))
}

/// The record as the API shows it.
pub(super) fn to_proto(f: &AnnualFigures) -> pb::AnnualFigures {
    let mut p = pb::AnnualFigures {
        name: f.name(),
        year: f.year,
        create_time: Some(to_timestamp(f.create_time_us)),
        update_time: Some(to_timestamp(f.update_time_us)),
        etag: etag_of(&f.name(), f.version),
        ..Default::default()
    };
    for (kind, r) in &f.figures {
        let amount = || {
            Some(pb::ReportedAmount {
                value: r.value,
                source: r.source,
                reference: r.reference.clone(),
                update_time: Some(to_timestamp(r.update_time_us)),
            })
        };
        let flag = || {
            Some(pb::ReportedFlag {
                value: r.value != 0,
                source: r.source,
                reference: r.reference.clone(),
                update_time: Some(to_timestamp(r.update_time_us)),
            })
        };
        match kind {
            FigureKind::RevenueFen => p.revenue_fen = amount(),
            FigureKind::RdExpenseFen => p.rd_expense_fen = amount(),
            FigureKind::RdDomesticExpenseFen => p.rd_domestic_expense_fen = amount(),
            FigureKind::HighTechProductRevenueFen => p.high_tech_product_revenue_fen = amount(),
            FigureKind::Employees => p.employees = amount(),
            FigureKind::StStaff => p.st_staff = amount(),
            FigureKind::InventionPatents => p.invention_patents = amount(),
            FigureKind::CoreIpOwned => p.core_ip_owned = flag(),
            FigureKind::InnovationIpPoints => p.innovation_ip_points = amount(),
            FigureKind::InnovationConversionPoints => p.innovation_conversion_points = amount(),
            FigureKind::InnovationRdManagementPoints => {
                p.innovation_rd_management_points = amount()
            }
            FigureKind::InnovationGrowthPoints => p.innovation_growth_points = amount(),
            FigureKind::MajorIncident => p.major_incident = flag(),
        }
    }
    p
}

/// A figure as sent: value (flags as 0/1), source, reference. `None` when the message is unset.
fn input_of(p: &pb::AnnualFigures, kind: FigureKind) -> Option<(i64, i32, String)> {
    let amount = |a: &Option<pb::ReportedAmount>| {
        a.as_ref().map(|a| (a.value, a.source, a.reference.clone()))
    };
    let flag = |f: &Option<pb::ReportedFlag>| {
        f.as_ref()
            .map(|f| (i64::from(f.value), f.source, f.reference.clone()))
    };
    match kind {
        FigureKind::RevenueFen => amount(&p.revenue_fen),
        FigureKind::RdExpenseFen => amount(&p.rd_expense_fen),
        FigureKind::RdDomesticExpenseFen => amount(&p.rd_domestic_expense_fen),
        FigureKind::HighTechProductRevenueFen => amount(&p.high_tech_product_revenue_fen),
        FigureKind::Employees => amount(&p.employees),
        FigureKind::StStaff => amount(&p.st_staff),
        FigureKind::InventionPatents => amount(&p.invention_patents),
        FigureKind::CoreIpOwned => flag(&p.core_ip_owned),
        FigureKind::InnovationIpPoints => amount(&p.innovation_ip_points),
        FigureKind::InnovationConversionPoints => amount(&p.innovation_conversion_points),
        FigureKind::InnovationRdManagementPoints => amount(&p.innovation_rd_management_points),
        FigureKind::InnovationGrowthPoints => amount(&p.innovation_growth_points),
        FigureKind::MajorIncident => flag(&p.major_incident),
    }
}

/// Validates one masked figure: `Ok(None)` clears it.
fn parse_input(
    p: &pb::AnnualFigures,
    kind: FigureKind,
    violations: &mut Vec<FieldViolation>,
) -> Option<(i64, i32, String)> {
    let (value, source, reference) = input_of(p, kind)?;
    let at = format!("annual_figures.{}", kind.as_str());
    let before = violations.len();
    if value < 0 {
        violations.push(FieldViolation::new(
            format!("{at}.value"),
            "NEGATIVE",
            "figures are never negative",
        ));
    } else if value > kind.max_value() {
        violations.push(FieldViolation::new(
            format!("{at}.value"),
            "OUT_OF_RANGE",
            format!(
                "{} is above the largest plausible {} ({} {})",
                value,
                kind.as_str(),
                kind.max_value(),
                kind.contract_unit()
            ),
        ));
    }
    if source == 0 {
        violations.push(FieldViolation::new(
            format!("{at}.source"),
            "REQUIRED",
            "every written figure needs its source",
        ));
    } else if source_name(source).is_none() {
        violations.push(FieldViolation::new(
            format!("{at}.source"),
            "UNKNOWN_ENUM_VALUE",
            format!("{source} is not a FigureSource"),
        ));
    }
    let reference = reference.trim().to_string();
    if reference.chars().count() > MAX_REFERENCE_CHARS {
        violations.push(FieldViolation::new(
            format!("{at}.reference"),
            "TOO_LONG",
            format!("at most {MAX_REFERENCE_CHARS} characters"),
        ));
    } else if reference.chars().any(char::is_control) {
        violations.push(FieldViolation::new(
            format!("{at}.reference"),
            "CONTROL_CHARACTER",
            "must not contain control characters",
        ));
    }
    (violations.len() == before).then_some((value, source, reference))
}

pub(super) async fn get_annual_figures(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetAnnualFiguresRequest,
) -> Result<pb::AnnualFigures, ApiError> {
    let (uscc, year) = parse_name(api, &req.name, "name")?;
    check_own(ctx, uscc.as_str())?;
    let figures = store::get(&api.db, uscc.as_str(), year)
        .await?
        .ok_or_else(|| {
            not_found(format!(
                "enterprises/{}/annualFigures/{year}",
                uscc.as_str()
            ))
        })?;
    Ok(to_proto(&figures))
}

/// `year` comparisons as an inclusive range.
fn parse_year_filter(raw: &str) -> Result<(Option<i32>, Option<i32>), ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&["year"])?;
    let (mut min, mut max): (Option<i32>, Option<i32>) = (None, None);
    for c in filter.conditions() {
        let year: i32 = c.value.parse().map_err(|_| {
            ApiError::invalid(
                "filter",
                "INVALID_FILTER",
                format!("year: {:?} is not a year", c.value),
            )
        })?;
        let (lo, hi) = match c.op {
            Op::Eq => (Some(year), Some(year)),
            Op::Lt => (None, Some(year.saturating_sub(1))),
            Op::Le => (None, Some(year)),
            Op::Gt => (Some(year.saturating_add(1)), None),
            Op::Ge => (Some(year), None),
            Op::Ne | Op::Has => {
                return Err(ApiError::invalid(
                    "filter",
                    "INVALID_FILTER",
                    "year supports =, <, <=, > and >=",
                ));
            }
        };
        if let Some(lo) = lo {
            min = Some(min.map_or(lo, |m| m.max(lo)));
        }
        if let Some(hi) = hi {
            max = Some(max.map_or(hi, |m| m.min(hi)));
        }
    }
    Ok((min, max))
}

fn parse_year_order(raw: &str) -> Result<bool, ApiError> {
    qilu_common::limits::order_by(raw)?;
    match raw.split_whitespace().collect::<Vec<_>>().as_slice() {
        [] | ["year"] | ["year", "asc"] => Ok(false),
        ["year", "desc"] => Ok(true),
        _ => Err(ApiError::invalid(
            "order_by",
            "INVALID_ORDER_BY",
            format!(
                "cannot order by {}; use year or year desc",
                qilu_common::limits::echo(raw)
            ),
        )),
    }
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
    let Some(input) = req.annual_figures.as_ref() else {
        return Err(ApiError::invalid(
            "annual_figures",
            "REQUIRED",
            "annual_figures is required",
        ));
    };
    let (uscc, year) = parse_name(api, &input.name, "annual_figures.name")?;
    check_own(ctx, uscc.as_str())?;
    let latest = api.today().year() + 1;
    if !(EARLIEST_WRITABLE_YEAR..=latest).contains(&year) {
        return Err(ApiError::invalid(
            "annual_figures.name",
            "YEAR_OUT_OF_RANGE",
            format!("figures can be written for {EARLIEST_WRITABLE_YEAR}-{latest}, not {year}"),
        ));
    }
    let paths: Vec<String> = req
        .update_mask
        .as_ref()
        .map(|m| m.paths.clone())
        .unwrap_or_default();
    let names: Vec<&str> = FigureKind::ALL.iter().map(|k| k.as_str()).collect();
    if paths.is_empty() {
        return Err(ApiError::invalid(
            "update_mask",
            "REQUIRED",
            format!("name the figures to write: {}", names.join(", ")),
        ));
    }
    let mut kinds = Vec::new();
    let mut violations = Vec::new();
    for path in &paths {
        match FigureKind::parse(path) {
            Some(k) if !kinds.contains(&k) => kinds.push(k),
            Some(_) => {}
            None => violations.push(FieldViolation::new(
                "update_mask",
                "FIELD_NOT_UPDATABLE",
                format!("{path:?} is not a figure; figures: {}", names.join(", ")),
            )),
        }
    }
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
    let name = format!("enterprises/{}/annualFigures/{year}", uscc.as_str());
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
            if !input.etag.is_empty() && input.etag != etag_of(&name, c.version) {
                return Err(ApiError::Aborted(format!(
                    "{name} changed since etag {} was read; read it again and retry",
                    input.etag
                )));
            }
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
    // The contract's "never above" rules, on the record as it will be: reported on the
    // written figure (the part, or the whole when only the whole changed).
    let mut violations = Vec::new();
    for (part, whole) in PART_OF {
        if let (Some(p), Some(w)) = (updated.value(part), updated.value(whole))
            && p > w
        {
            let blamed = if kinds.contains(&part) { part } else { whole };
            violations.push(FieldViolation::new(
                format!("annual_figures.{}.value", blamed.as_str()),
                "EXCEEDS_TOTAL",
                format!(
                    "{} ({p}) must not be above {} ({w})",
                    part.as_str(),
                    whole.as_str()
                ),
            ));
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations));
    }
    updated.version += 1;
    updated.update_time_us = now;
    store::write(tx.conn(), &updated, &kinds).await?;
    let response = to_proto(&updated);
    tx.record(&name, &updated)?;
    tx.commit(&response).await?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_filters_become_an_inclusive_range() {
        assert_eq!(
            parse_year_filter("year >= 2021 AND year <= 2023").ok(),
            Some((Some(2021), Some(2023)))
        );
        assert_eq!(
            parse_year_filter("year > 2020 AND year < 2024").ok(),
            Some((Some(2021), Some(2023)))
        );
        assert_eq!(
            parse_year_filter("year = 2022").ok(),
            Some((Some(2022), Some(2022)))
        );
        assert_eq!(parse_year_filter("").ok(), Some((None, None)));
        assert!(parse_year_filter("year != 2022").is_err());
        assert!(parse_year_filter("year = soon").is_err());
        assert!(parse_year_filter("revenue_fen > 1").is_err());
    }

    #[test]
    fn orders_are_year_ascending_or_descending() {
        assert_eq!(parse_year_order("").ok(), Some(false));
        assert_eq!(parse_year_order("year desc").ok(), Some(true));
        assert!(parse_year_order("revenue").is_err());
    }
}
