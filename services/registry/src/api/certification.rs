//! High-tech certificates, annual reports, eligibility.
//!
//! A certificate's state, its annual reports' states and the two-missed-reports revocation are
//! derived on read from the stored facts and today in the programme time zone
//! (`domain::certification::status`); no background job and no later write is needed for a
//! certificate to read EXPIRED or REVOKED on the right day. Every mutation here also brings the
//! holder's `high_tech_certified` column up to date (true exactly while it holds a certificate
//! whose lapse date is after today) in the same transaction, with its own audit event.

use chrono::{Datelike, NaiveDate, TimeZone};
use qilu_common::error::FieldViolation;
use qilu_common::filter::{Filter, Op};
use qilu_common::pagination::PageRequest;
use qilu_common::time::to_timestamp;
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use serde::Serialize;

use crate::convert::parse_enterprise_name;
use crate::domain::certification::{
    self as cert, Certificate, CertificateState, EARLIEST_ISSUE, Filing, Ground,
    MAX_AUTHORITY_CHARS, MAX_REASON_CHARS, ReportState, Revocation, Status as CertStatus,
    certificate_name,
};
use crate::domain::eligibility::{self, Criterion, Outcome, Subject};
use crate::domain::enterprise::{EnterpriseState, etag_of};
use crate::domain::uscc::Uscc;
use crate::store::certificate::{self as store, Cursor, DateCmp, ListFilter, Order, StateFilter};
use crate::store::enterprise as enterprise_store;

use super::RegistryApi;
use super::enterprises::{check_own, not_found as enterprise_not_found};
use super::figures::parse_parent;

/// Resource type for `ResourceInfo` in errors.
pub const CERTIFICATE_TYPE: &str = "registry.qilu.gov.cn/HighTechCertificate";
/// Earliest year an application may be judged at, and earliest fiscal year.
const EARLIEST_YEAR: i32 = 1990;

fn not_found(name: String) -> ApiError {
    ApiError::NotFound {
        resource_type: CERTIFICATE_TYPE,
        name,
    }
}

/// Parses `enterprises/{uscc}/highTechCertificates/{number}`.
fn parse_name(api: &RegistryApi, name: &str, field: &str) -> Result<(Uscc, String), ApiError> {
    let bad = || {
        ApiError::invalid(
            field,
            "INVALID_RESOURCE_NAME",
            format!(
                "expected enterprises/{{uscc}}/highTechCertificates/{{certificate_number}}, got {}",
                qilu_common::limits::echo(name)
            ),
        )
    };
    let Some((parent, number)) = name.rsplit_once("/highTechCertificates/") else {
        return Err(bad());
    };
    let uscc = parse_enterprise_name(parent, field, &api.known_exceptions)?;
    if !cert::is_valid_number(number) {
        return Err(bad());
    }
    Ok((uscc, number.to_string()))
}

fn parse_date(raw: &str, at: &str) -> Result<Option<NaiveDate>, FieldViolation> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            FieldViolation::new(
                at,
                "INVALID_DATE",
                format!(
                    "{} is not a date YYYY-MM-DD",
                    qilu_common::limits::echo(raw)
                ),
            )
        })
}

fn text(raw: &str, at: &str, max: usize) -> Result<String, FieldViolation> {
    let value = raw.trim();
    if value.chars().count() > max {
        return Err(FieldViolation::new(
            at,
            "TOO_LONG",
            format!("at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            at,
            "CONTROL_CHARACTER",
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

/// The start of `date` in the programme time zone, µs.
fn start_of_day_us(api: &RegistryApi, date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| api.time_zone.from_local_datetime(&t).earliest())
        .map_or(0, |t| t.timestamp_micros())
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The certificate as the API shows it on `today`.
fn to_proto(api: &RegistryApi, c: &Certificate, today: NaiveDate) -> pb::HighTechCertificate {
    let status = cert::status(c, today);
    let revocation = status.revocation.as_ref();
    pb::HighTechCertificate {
        name: c.name(),
        certificate_number: c.number.clone(),
        issue_date: date_text(c.issue_date),
        expiry_date: date_text(c.expiry_date()),
        issuing_authority: c.issuing_authority.clone(),
        technology_field: c.technology_field,
        state: match status.state {
            CertificateState::Valid => pb::CertificateState::Valid,
            CertificateState::Expired => pb::CertificateState::Expired,
            CertificateState::Revoked => pb::CertificateState::Revoked,
        } as i32,
        annual_reports: status
            .reports
            .iter()
            .map(|r| pb::CertificateAnnualReport {
                report_year: r.year,
                due_date: date_text(r.due_date),
                state: match r.state {
                    ReportState::Pending => pb::AnnualReportState::Pending,
                    ReportState::Filed => pb::AnnualReportState::Filed,
                    ReportState::Missed => pb::AnnualReportState::Missed,
                } as i32,
                filed_date: r
                    .filing
                    .as_ref()
                    .map(|f| date_text(f.filed_date))
                    .unwrap_or_default(),
                filed_by: r
                    .filing
                    .as_ref()
                    .map(|f| f.filed_by.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        missed_report_count: i32::try_from(status.missed).unwrap_or(i32::MAX),
        revocation_ground: revocation.map_or(0, |r| r.ground.code()),
        revocation_reason: revocation.map(|r| r.reason.clone()).unwrap_or_default(),
        // A derived revocation took effect at the start of its day in the programme time zone.
        revoke_time: revocation.map(|r| {
            to_timestamp(
                r.recorded_time_us
                    .unwrap_or_else(|| start_of_day_us(api, r.date)),
            )
        }),
        create_time: Some(to_timestamp(c.create_time_us)),
        update_time: Some(to_timestamp(c.update_time_us)),
        etag: etag_of(&c.name(), c.version),
    }
}

/// What the audit log keeps for a certificate: the stored facts and what they mean today.
#[derive(Serialize)]
struct AuditView<'a> {
    #[serde(flatten)]
    certificate: &'a Certificate,
    expiry_date: NaiveDate,
    lapse_date: NaiveDate,
    state: CertificateState,
    missed_report_count: usize,
}

fn audit_view<'a>(c: &'a Certificate, status: &CertStatus) -> AuditView<'a> {
    AuditView {
        certificate: c,
        expiry_date: c.expiry_date(),
        lapse_date: cert::lapse_date(c),
        state: status.state,
        missed_report_count: status.missed,
    }
}

/// Sets the holder's `high_tech_certified` to whether it holds a valid certificate on `today`
/// (after this transaction's certificate writes), bumping its version and auditing it when it
/// changes.
async fn refresh_certified(tx: &mut WriteTx, uscc: &str, today: NaiveDate) -> Result<(), ApiError> {
    let Some(model) = enterprise_store::get(tx.conn(), uscc).await? else {
        return Err(enterprise_not_found(uscc));
    };
    let enterprise = model.into_domain().map_err(ApiError::internal)?;
    let certified = !store::valid_holders(tx.conn(), &[uscc.to_string()], today)
        .await?
        .is_empty();
    if certified == enterprise.high_tech_certified {
        return Ok(());
    }
    let mut updated = enterprise.clone();
    updated.high_tech_certified = certified;
    updated.version = enterprise.version + 1;
    updated.update_time_us = tx.now_us();
    if !enterprise_store::update_if_version(tx.conn(), &updated, enterprise.version).await? {
        return Err(ApiError::Aborted(format!(
            "{} changed concurrently; retry",
            updated.name()
        )));
    }
    tx.record(&updated.name(), &updated)?;
    Ok(())
}

async fn load_in(
    conn: &impl sea_orm::ConnectionTrait,
    uscc: &Uscc,
    number: &str,
) -> Result<Certificate, ApiError> {
    let name = certificate_name(uscc.as_str(), number);
    let model = store::get(conn, number)
        .await?
        .filter(|m| m.uscc == uscc.as_str())
        .ok_or_else(|| not_found(name))?;
    model.into_domain().map_err(ApiError::internal)
}

fn check_etag(etag: &str, c: &Certificate) -> Result<(), ApiError> {
    if !etag.is_empty() && etag != etag_of(&c.name(), c.version) {
        return Err(ApiError::Aborted(format!(
            "{} changed since etag {etag} was read; read it again and retry",
            c.name()
        )));
    }
    Ok(())
}

pub(super) async fn create_high_tech_certificate(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateHighTechCertificateRequest,
) -> Result<pb::HighTechCertificate, ApiError> {
    let uscc = parse_enterprise_name(&req.parent, "parent", &api.known_exceptions)?;
    let Some(input) = req.high_tech_certificate.as_ref() else {
        return Err(ApiError::invalid(
            "high_tech_certificate",
            "REQUIRED",
            "high_tech_certificate is required",
        ));
    };
    let today = api.today();
    let mut violations = Vec::new();
    let number = input.certificate_number.trim().to_uppercase();
    let at = "high_tech_certificate.certificate_number";
    if number.is_empty() {
        violations.push(FieldViolation::new(
            at,
            "REQUIRED",
            "a certificate number is required",
        ));
    } else if !cert::is_valid_number(&number) {
        violations.push(FieldViolation::new(
            at,
            "INVALID_FORMAT",
            format!(
                "{:?} is not 1-32 letters and digits",
                input.certificate_number
            ),
        ));
    }
    let at = "high_tech_certificate.issue_date";
    let (y, m, d) = EARLIEST_ISSUE;
    let earliest = NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN);
    let issue_date = match parse_date(&input.issue_date, at) {
        Ok(None) => {
            violations.push(FieldViolation::new(
                at,
                "REQUIRED",
                "an issue date YYYY-MM-DD is required",
            ));
            None
        }
        Ok(Some(d)) if d > today => {
            violations.push(FieldViolation::new(
                at,
                "IN_FUTURE",
                format!("{d} is in the future"),
            ));
            None
        }
        Ok(Some(d)) if d < earliest => {
            violations.push(FieldViolation::new(
                at,
                "TOO_EARLY",
                format!("{d} is before {earliest}"),
            ));
            None
        }
        Ok(d) => d,
        Err(v) => {
            violations.push(v);
            None
        }
    };
    let at = "high_tech_certificate.technology_field";
    match cpb::HighTechField::try_from(input.technology_field) {
        Ok(cpb::HighTechField::Unspecified) => violations.push(FieldViolation::new(
            at,
            "REQUIRED",
            "the state high-tech field of the certificate is required",
        )),
        Err(_) => violations.push(FieldViolation::new(
            at,
            "UNKNOWN_ENUM_VALUE",
            format!(
                "{} is not one of the eight state high-tech fields",
                input.technology_field
            ),
        )),
        Ok(_) => {}
    }
    let authority = text(
        &input.issuing_authority,
        "high_tech_certificate.issuing_authority",
        MAX_AUTHORITY_CHARS,
    )
    .map_err(|v| violations.push(v))
    .ok();
    let (Some(issue_date), Some(authority), true) = (issue_date, authority, violations.is_empty())
    else {
        return Err(ApiError::InvalidArgument(violations));
    };

    let mut tx =
        match WriteTx::begin::<pb::HighTechCertificate>(&api.db, ctx, &req.request_id, &req).await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let enterprise = enterprise_store::get(tx.conn(), uscc.as_str())
        .await?
        .ok_or_else(|| enterprise_not_found(uscc.as_str()))?
        .into_domain()
        .map_err(ApiError::internal)?;
    if enterprise.state != EnterpriseState::Active {
        return Err(ApiError::precondition(
            "ENTERPRISE_NOT_ACTIVE",
            enterprise.name(),
            format!(
                "{} is {:?}; certificates are recorded only for active enterprises",
                enterprise.name(),
                enterprise.state
            ),
        ));
    }
    let now = tx.now_us();
    let certificate = Certificate {
        uscc: uscc.as_str().to_string(),
        number,
        issue_date,
        issuing_authority: authority,
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
    let status = cert::status(&certificate, today);
    tx.record(&certificate.name(), &audit_view(&certificate, &status))?;
    refresh_certified(&mut tx, uscc.as_str(), today).await?;
    let response = to_proto(api, &certificate, today);
    tx.commit(&response).await?;
    tracing::info!(certificate = %certificate.name(), "high-tech certificate recorded");
    Ok(response)
}

pub(super) async fn get_high_tech_certificate(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::GetHighTechCertificateRequest,
) -> Result<pb::HighTechCertificate, ApiError> {
    let (uscc, number) = parse_name(api, &req.name, "name")?;
    check_own(ctx, uscc.as_str())?;
    let c = load_in(&api.db, &uscc, &number).await?;
    Ok(to_proto(api, &c, api.today()))
}

/// The parts of a list filter: SQL conditions and the missed-report bound applied after.
struct ParsedListFilter {
    sql: ListFilter,
    missed: Vec<(Op, usize)>,
}

fn parse_list_filter(raw: &str, today: NaiveDate) -> Result<ParsedListFilter, ApiError> {
    let filter = Filter::parse(raw)?;
    filter.only(&[
        "state",
        "technology_field",
        "issue_date",
        "expiry_date",
        "missed_report_count",
    ])?;
    let bad = |field: &str, why: String| {
        ApiError::invalid("filter", "INVALID_FILTER", format!("{field}: {why}"))
    };
    let mut out = ParsedListFilter {
        sql: ListFilter::default(),
        missed: Vec::new(),
    };
    for c in filter.conditions() {
        let eq_only = || {
            if c.op == Op::Eq {
                Ok(())
            } else {
                Err(bad(&c.field, "supports only =".into()))
            }
        };
        let cmp = || match c.op {
            Op::Eq => Ok(DateCmp::Eq),
            Op::Lt => Ok(DateCmp::Lt),
            Op::Le => Ok(DateCmp::Le),
            Op::Gt => Ok(DateCmp::Gt),
            Op::Ge => Ok(DateCmp::Ge),
            _ => Err(bad(&c.field, "supports =, <, <=, > and >=".into())),
        };
        match c.field.as_str() {
            "state" => {
                eq_only()?;
                let state = match pb::CertificateState::from_str_name(&c.value) {
                    Some(pb::CertificateState::Valid) => StateFilter::Valid,
                    Some(pb::CertificateState::Expired) => StateFilter::Expired,
                    Some(pb::CertificateState::Revoked) => StateFilter::Revoked,
                    _ => {
                        return Err(bad(
                            "state",
                            format!("{:?} is not a CertificateState", c.value),
                        ));
                    }
                };
                out.sql.state = Some((state, today));
            }
            "technology_field" => {
                eq_only()?;
                let v = cpb::HighTechField::from_str_name(&c.value)
                    .filter(|f| *f != cpb::HighTechField::Unspecified)
                    .ok_or_else(|| {
                        bad(
                            "technology_field",
                            format!("{:?} is not a HighTechField", c.value),
                        )
                    })?;
                out.sql.technology_field = Some(v as i32);
            }
            "issue_date" | "expiry_date" => {
                let d = NaiveDate::parse_from_str(&c.value, "%Y-%m-%d").map_err(|_| {
                    bad(&c.field, format!("{:?} is not a date YYYY-MM-DD", c.value))
                })?;
                let entry = (cmp()?, d);
                if c.field == "issue_date" {
                    out.sql.issue_date.push(entry);
                } else {
                    out.sql.expiry_date.push(entry);
                }
            }
            _ => {
                // missed_report_count
                if matches!(c.op, Op::Has | Op::Ne) {
                    return Err(bad(
                        "missed_report_count",
                        "supports =, <, <=, > and >=".into(),
                    ));
                }
                let n: usize = c.value.parse().map_err(|_| {
                    bad(
                        "missed_report_count",
                        format!("{:?} is not a count", c.value),
                    )
                })?;
                out.missed.push((c.op, n));
            }
        }
    }
    Ok(out)
}

fn parse_order(raw: &str) -> Result<Order, ApiError> {
    qilu_common::limits::order_by(raw)?;
    match raw.split_whitespace().collect::<Vec<_>>().as_slice() {
        [] | ["issue_date"] | ["issue_date", "asc"] => Ok(Order::IssueDate { desc: false }),
        ["issue_date", "desc"] => Ok(Order::IssueDate { desc: true }),
        ["expiry_date"] | ["expiry_date", "asc"] => Ok(Order::ExpiryDate { desc: false }),
        ["expiry_date", "desc"] => Ok(Order::ExpiryDate { desc: true }),
        _ => Err(ApiError::invalid(
            "order_by",
            "INVALID_ORDER_BY",
            format!(
                "cannot order by {}; use issue_date or expiry_date, optionally with desc",
                qilu_common::limits::echo(raw)
            ),
        )),
    }
}

fn missed_matches(bounds: &[(Op, usize)], missed: usize) -> bool {
    bounds.iter().all(|&(op, n)| match op {
        Op::Eq => missed == n,
        Op::Lt => missed < n,
        Op::Le => missed <= n,
        Op::Gt => missed > n,
        Op::Ge => missed >= n,
        Op::Ne | Op::Has => false,
    })
}

pub(super) async fn list_high_tech_certificates(
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
            if filter.missed.is_empty()
                || missed_matches(&filter.missed, cert::status(&c, today).missed)
            {
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
        high_tech_certificates: found.iter().map(|(c, _)| to_proto(api, c, today)).collect(),
        next_page_token,
    })
}

pub(super) async fn file_annual_report(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::FileAnnualReportRequest,
) -> Result<pb::HighTechCertificate, ApiError> {
    let (uscc, number) = parse_name(api, &req.name, "name")?;
    check_own(ctx, uscc.as_str())?;
    let today = api.today();
    if req.report_year == 0 {
        return Err(ApiError::invalid(
            "report_year",
            "REQUIRED",
            "the fiscal year reported on is required",
        ));
    }
    let explicit = parse_date(&req.filed_date, "filed_date")
        .map_err(|v| ApiError::InvalidArgument(vec![v]))?;
    if explicit.is_some() && ctx.enterprise_scope().is_some() {
        return Err(ApiError::PermissionDenied(
            "an enterprise token files on the day it calls; only officers record filed_date".into(),
        ));
    }
    if let Some(d) = explicit
        && d > today
    {
        return Err(ApiError::invalid(
            "filed_date",
            "IN_FUTURE",
            format!("{d} is in the future"),
        ));
    }
    let filed_date = explicit.unwrap_or(today);

    let mut tx =
        match WriteTx::begin::<pb::HighTechCertificate>(&api.db, ctx, &req.request_id, &req).await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = load_in(tx.conn(), &uscc, &number).await?;
    check_etag(&req.etag, &current)?;
    let years = cert::report_years(current.issue_date);
    if !years.contains(&req.report_year) {
        return Err(ApiError::invalid(
            "report_year",
            "OUTSIDE_VALIDITY",
            format!(
                "{} reports on {}-{}, not {}",
                current.name(),
                years.start(),
                years.end(),
                req.report_year
            ),
        ));
    }
    if current.revocation.is_some() {
        return Err(ApiError::precondition(
            "CERTIFICATE_REVOKED",
            current.name(),
            format!(
                "{} is revoked; no annual report can be filed",
                current.name()
            ),
        ));
    }
    if let Some(f) = current.filing(req.report_year) {
        return Err(ApiError::precondition(
            "REPORT_ALREADY_FILED",
            current.name(),
            format!(
                "the {} report was already filed on {}",
                req.report_year, f.filed_date
            ),
        ));
    }
    let earliest = cert::earliest_filing(req.report_year);
    if filed_date < earliest {
        let field = if explicit.is_some() {
            "filed_date"
        } else {
            "report_year"
        };
        return Err(ApiError::invalid(
            field,
            "YEAR_NOT_ENDED",
            format!(
                "the report on {} can be filed from {earliest}, not {filed_date}",
                req.report_year
            ),
        ));
    }
    let mut updated = current.clone();
    updated.filings.push(Filing {
        year: req.report_year,
        filed_date,
        filed_by: ctx.caller.subject.clone(),
    });
    updated.filings.sort_by_key(|f| f.year);
    // A certificate revoked for two missed reports stays revoked: a late filing does not undo a
    // miss. Only an officer's record of a filing that was in fact on time (a paper filing the
    // registry did not know of) shows it was never revoked, and that one is accepted.
    if cert::status(&updated, today).state == CertificateState::Revoked {
        return Err(ApiError::precondition(
            "CERTIFICATE_REVOKED",
            current.name(),
            format!(
                "{} is revoked for two missed annual reports; no annual report can be filed",
                current.name()
            ),
        ));
    }
    updated.version = current.version + 1;
    updated.update_time_us = tx.now_us();
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(ApiError::Aborted(format!(
            "{} changed concurrently; retry",
            current.name()
        )));
    }
    let status = cert::status(&updated, today);
    tx.record(&updated.name(), &audit_view(&updated, &status))?;
    refresh_certified(&mut tx, uscc.as_str(), today).await?;
    let response = to_proto(api, &updated, today);
    tx.commit(&response).await?;
    Ok(response)
}

pub(super) async fn revoke_high_tech_certificate(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::RevokeHighTechCertificateRequest,
) -> Result<pb::HighTechCertificate, ApiError> {
    let (uscc, number) = parse_name(api, &req.name, "name")?;
    check_own(ctx, uscc.as_str())?;
    let mut violations = Vec::new();
    let ground = match Ground::from_code(req.ground) {
        Some(Ground::MissedAnnualReports) => {
            violations.push(FieldViolation::new(
                "ground",
                "SERVER_ONLY_GROUND",
                "REVOCATION_GROUND_MISSED_ANNUAL_REPORTS is applied by the server only",
            ));
            None
        }
        Some(g) => Some(g),
        None if req.ground == 0 => {
            violations.push(FieldViolation::new(
                "ground",
                "REQUIRED",
                "a revocation ground is required",
            ));
            None
        }
        None => {
            violations.push(FieldViolation::new(
                "ground",
                "UNKNOWN_ENUM_VALUE",
                format!("{} is not a RevocationGround", req.ground),
            ));
            None
        }
    };
    let reason = match text(&req.reason, "reason", MAX_REASON_CHARS) {
        Ok(r) if r.is_empty() => {
            violations.push(FieldViolation::new(
                "reason",
                "REQUIRED",
                "the reason (e.g. the decision document) is required",
            ));
            None
        }
        Ok(r) => Some(r),
        Err(v) => {
            violations.push(v);
            None
        }
    };
    let (Some(ground), Some(reason)) = (ground, reason) else {
        return Err(ApiError::InvalidArgument(violations));
    };
    let today = api.today();

    let mut tx =
        match WriteTx::begin::<pb::HighTechCertificate>(&api.db, ctx, &req.request_id, &req).await?
        {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
    let current = load_in(tx.conn(), &uscc, &number).await?;
    check_etag(&req.etag, &current)?;
    let status = cert::status(&current, today);
    if status.state != CertificateState::Valid {
        return Err(ApiError::precondition(
            "CERTIFICATE_NOT_VALID",
            current.name(),
            format!(
                "{} is {:?}; only a valid certificate can be revoked",
                current.name(),
                status.state
            ),
        ));
    }
    let now = tx.now_us();
    let mut updated = current.clone();
    updated.revocation = Some(Revocation {
        ground,
        reason,
        date: today,
        time_us: now,
    });
    updated.version = current.version + 1;
    updated.update_time_us = now;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(ApiError::Aborted(format!(
            "{} changed concurrently; retry",
            current.name()
        )));
    }
    let status = cert::status(&updated, today);
    tx.record(&updated.name(), &audit_view(&updated, &status))?;
    refresh_certified(&mut tx, uscc.as_str(), today).await?;
    let response = to_proto(api, &updated, today);
    tx.commit(&response).await?;
    tracing::info!(certificate = %updated.name(), ?ground, "high-tech certificate revoked");
    Ok(response)
}

pub(super) async fn evaluate_eligibility(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::EvaluateEligibilityRequest,
) -> Result<pb::EvaluateEligibilityResponse, ApiError> {
    let uscc = parse_enterprise_name(&req.name, "name", &api.known_exceptions)?;
    check_own(ctx, uscc.as_str())?;
    let today = api.today();
    let application_date = parse_date(&req.application_date, "application_date")
        .map_err(|v| ApiError::InvalidArgument(vec![v]))?
        .unwrap_or(today);
    let latest = today.year() + 1;
    if !(EARLIEST_YEAR..=latest).contains(&application_date.year()) {
        return Err(ApiError::invalid(
            "application_date",
            "OUT_OF_RANGE",
            format!("the application date must fall in {EARLIEST_YEAR}-{latest}"),
        ));
    }
    let fiscal_year = if req.fiscal_year == 0 {
        application_date.year() - 1
    } else {
        req.fiscal_year
    };
    if !(EARLIEST_YEAR..application_date.year()).contains(&fiscal_year) {
        return Err(ApiError::invalid(
            "fiscal_year",
            "OUT_OF_RANGE",
            format!(
                "the fiscal year must be a complete year before the application ({EARLIEST_YEAR}-{})",
                application_date.year() - 1
            ),
        ));
    }
    let enterprise = api.load(&uscc).await?;
    let years = crate::store::figures::list_years(&api.db, uscc.as_str()).await?;
    let relevant: Vec<_> = years
        .into_iter()
        .filter(|f| f.year <= fiscal_year && f.year > fiscal_year - eligibility::RD_YEARS)
        .collect();
    let evaluation = eligibility::evaluate(
        Subject {
            uscc: uscc.as_str(),
            established_date: enterprise.fields.established_date,
            technology_fields: &enterprise.fields.technology_fields,
        },
        &relevant,
        fiscal_year,
        application_date,
    );
    let outcome = |o: Outcome| -> i32 {
        let p = match o {
            Outcome::Met => pb::CriterionOutcome::Met,
            Outcome::NotMet => pb::CriterionOutcome::NotMet,
            Outcome::CannotDecide => pb::CriterionOutcome::CannotDecide,
        };
        p as i32
    };
    let criteria = evaluation
        .criteria
        .into_iter()
        .map(|r| pb::CriterionResult {
            criterion: criterion_proto(r.criterion) as i32,
            outcome: outcome(r.outcome),
            figures_used: r
                .figures_used
                .into_iter()
                .map(|f| pb::FigureUsed {
                    figure: f.figure,
                    year: f.year,
                    value: f.value,
                    unit: f.unit.to_string(),
                    source: f.source,
                })
                .collect(),
            threshold: r.threshold,
            threshold_basis_points: r.threshold_basis_points,
            observed_numerator: r.observed_numerator,
            observed_denominator: r.observed_denominator,
            observed_basis_points: r.observed_basis_points,
            explanation: r.explanation,
            missing_data: r.missing_data,
        })
        .collect();
    Ok(pb::EvaluateEligibilityResponse {
        enterprise: enterprise.name(),
        fiscal_year,
        application_date: date_text(application_date),
        overall: outcome(evaluation.overall),
        criteria,
        rules_source: eligibility::RULES_SOURCE.to_string(),
        evaluate_time: Some(to_timestamp(api.now_us())),
    })
}

fn criterion_proto(c: Criterion) -> pb::EligibilityCriterion {
    match c {
        Criterion::RegisteredOneYear => pb::EligibilityCriterion::RegisteredOneYear,
        Criterion::CoreIpOwned => pb::EligibilityCriterion::CoreIpOwned,
        Criterion::HighTechField => pb::EligibilityCriterion::HighTechField,
        Criterion::StStaffShare => pb::EligibilityCriterion::StStaffShare,
        Criterion::RdExpenseRatio => pb::EligibilityCriterion::RdExpenseRatio,
        Criterion::RdDomesticShare => pb::EligibilityCriterion::RdDomesticShare,
        Criterion::HighTechProductRevenueShare => {
            pb::EligibilityCriterion::HighTechProductRevenueShare
        }
        Criterion::InnovationScore => pb::EligibilityCriterion::InnovationScore,
        Criterion::NoMajorIncident => pb::EligibilityCriterion::NoMajorIncident,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
    }

    #[test]
    fn list_filters_parse_states_fields_dates_and_counts() {
        let f = parse_list_filter(
            r#"state = CERTIFICATE_STATE_VALID AND technology_field = HIGH_TECH_FIELD_NEW_MATERIALS AND issue_date >= "2023-01-01" AND missed_report_count >= 1"#,
            today(),
        )
        .unwrap();
        assert_eq!(f.sql.state, Some((StateFilter::Valid, today())));
        assert_eq!(f.sql.technology_field, Some(4));
        assert_eq!(f.sql.issue_date.len(), 1);
        assert_eq!(f.missed, vec![(Op::Ge, 1)]);
        assert!(parse_list_filter("state = VALID", today()).is_err());
        assert!(parse_list_filter("issue_date >= yesterday", today()).is_err());
        assert!(parse_list_filter("missed_report_count != 1", today()).is_err());
        assert!(parse_list_filter("uscc = x", today()).is_err());
    }

    #[test]
    fn missed_counts_compare_with_every_operator() {
        assert!(missed_matches(&[(Op::Ge, 1)], 1));
        assert!(!missed_matches(&[(Op::Ge, 1)], 0));
        assert!(missed_matches(&[(Op::Gt, 0), (Op::Lt, 2)], 1));
        assert!(!missed_matches(&[(Op::Eq, 2)], 1));
    }

    #[test]
    fn orders_parse_or_name_the_problem() {
        assert_eq!(parse_order("").ok(), Some(Order::IssueDate { desc: false }));
        assert_eq!(
            parse_order("expiry_date desc").ok(),
            Some(Order::ExpiryDate { desc: true })
        );
        assert!(parse_order("number").is_err());
    }
}
