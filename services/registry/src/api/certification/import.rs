//! `ImportHighTechCertificates`: certificates with their annual-report history, through the
//! history import driver (`api::bulk`). A migrated certificate is stored with the reports it
//! really had, on their real dates, so that what follows from them (a MISSED report, the
//! two-misses revocation, expiry, the holder's `high_tech_certified`) is derived exactly as for
//! a certificate recorded when it was issued: `domain::certification::status`, as of today.

use std::collections::HashMap;

use chrono::NaiveDate;
use qilu_common::write::WriteTx;
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;
use tonic::Streaming;

use crate::api::RegistryApi;
use crate::api::bulk::{self, Family, Options, Summary, problems_of};
use crate::convert::certification::{NewCertificate, parse_new_certificate};
use crate::convert::{date_text, optional_date, parse_enterprise_name};
use crate::domain::certification::{
    self as cert, Certificate, Filing, certificate_name, earliest_filing, report_years,
};
use crate::domain::import::{Effect, Problem};
use crate::domain::uscc::Uscc;
use crate::store::certificate as store;
use crate::store::enterprise as enterprise_store;

use super::{record, refresh_certified};

/// A certificate row that passed every check needing no database.
pub(in crate::api) struct CertificateRow {
    uscc: Uscc,
    certificate: NewCertificate,
    /// The history, ascending by year, one per year.
    reports: Vec<(usize, i32, NaiveDate)>,
}

/// The certificate rows of one run.
pub(in crate::api) struct Certificates {
    today: NaiveDate,
    zone: chrono_tz::Tz,
    known: crate::domain::uscc::KnownExceptions,
    subject: String,
    /// Certificate numbers taken by valid rows of this run, with the row that took each.
    numbers: HashMap<String, i64>,
}

impl Certificates {
    /// The certificate rows of a new run by the caller of `ctx`.
    pub(in crate::api) fn for_run(api: &RegistryApi, ctx: &CallContext) -> Certificates {
        Certificates {
            today: api.today(),
            zone: api.time_zone,
            known: api.known_exceptions.clone(),
            subject: ctx.caller.subject.clone(),
            numbers: HashMap::new(),
        }
    }
}

impl Family for Certificates {
    type Message = pb::ImportHighTechCertificatesRequest;
    type Row = pb::ImportHighTechCertificateRow;
    type Valid = CertificateRow;
    type Response = pb::ImportHighTechCertificatesResponse;

    fn options(m: &Self::Message) -> Options {
        Options {
            request_id: m.request_id.clone(),
            validate_only: m.validate_only,
            rejected_rows_only: m.rejected_rows_only,
        }
    }

    fn fingerprint(o: &Options) -> Self::Message {
        pb::ImportHighTechCertificatesRequest {
            rows: Vec::new(),
            request_id: o.request_id.clone(),
            validate_only: o.validate_only,
            rejected_rows_only: o.rejected_rows_only,
        }
    }

    fn rows(m: Self::Message) -> Vec<Self::Row> {
        m.rows
    }

    fn row_number(row: &Self::Row) -> i64 {
        row.row_number
    }

    fn parse(
        &mut self,
        row: Self::Row,
        result: &mut pb::ImportRowResult,
    ) -> Result<CertificateRow, Vec<Problem>> {
        let mut problems = Vec::new();
        result.uscc = row
            .enterprise
            .strip_prefix("enterprises/")
            .unwrap_or(&row.enterprise)
            .to_string();
        let uscc = parse_enterprise_name(&row.enterprise, "enterprise", &self.known)
            .map_err(|e| problems.extend(problems_of(e, "enterprise")))
            .ok();
        if let Some(u) = &uscc {
            result.uscc = u.as_str().to_string();
        }
        let certificate = parse_new_certificate(row.high_tech_certificate.as_ref(), self.today)
            .map_err(|e| problems.extend(problems_of(e, "high_tech_certificate")))
            .ok();
        let mut reports = Vec::new();
        if let Some(c) = &certificate {
            let years = report_years(c.issue_date);
            for (i, r) in row.annual_reports.iter().enumerate() {
                let at = format!("annual_reports[{i}]");
                if !years.contains(&r.report_year) {
                    problems.push(Problem::new(
                        format!("{at}.report_year"),
                        format!(
                            "a certificate issued {} reports on {}-{}, not {}",
                            c.issue_date,
                            years.start(),
                            years.end(),
                            r.report_year
                        ),
                    ));
                    continue;
                }
                if let Some(&(earlier, _, _)) = reports.iter().find(|(_, y, _)| *y == r.report_year)
                {
                    problems.push(Problem::new(
                        format!("{at}.report_year"),
                        format!(
                            "{} is reported on twice (annual_reports[{earlier}] too)",
                            r.report_year
                        ),
                    ));
                    continue;
                }
                let at = format!("{at}.filed_date");
                match optional_date(&r.filed_date, &at) {
                    Err(v) => problems.push(Problem::new(v.field, v.description)),
                    Ok(None) => problems.push(Problem::new(at, "the day it was filed is required")),
                    Ok(Some(d)) if d > self.today => {
                        problems.push(Problem::new(at, format!("{d} is in the future")));
                    }
                    Ok(Some(d)) if d < earliest_filing(r.report_year) => {
                        problems.push(Problem::new(
                            at,
                            format!(
                                "{d} is before {}: the report on {} is filed once the year is over",
                                earliest_filing(r.report_year),
                                r.report_year
                            ),
                        ));
                    }
                    Ok(Some(d)) => reports.push((i, r.report_year, d)),
                }
            }
            reports.sort_by_key(|(_, y, _)| *y);
        }
        if let Some(c) = &certificate {
            result.name = certificate_name(&result.uscc, &c.number);
        }
        let (Some(uscc), Some(certificate), true) = (uscc, certificate, problems.is_empty()) else {
            return Err(problems);
        };
        if let Some(earlier) = self.numbers.get(&certificate.number) {
            return Err(vec![Problem::new(
                "high_tech_certificate.certificate_number",
                format!(
                    "{} is already imported by row {earlier} of this import",
                    certificate.number
                ),
            )]);
        }
        self.numbers
            .insert(certificate.number.clone(), row.row_number);
        Ok(CertificateRow {
            uscc,
            certificate,
            reports,
        })
    }

    async fn apply(
        &self,
        tx: &mut WriteTx,
        row: &CertificateRow,
    ) -> Result<Result<(Effect, String), Vec<Problem>>, ApiError> {
        let uscc = row.uscc.as_str();
        let input = &row.certificate;
        let name = certificate_name(uscc, &input.number);
        let Some(holder) = enterprise_store::get(tx.conn(), uscc).await? else {
            return Ok(Err(vec![Problem::new(
                "enterprise",
                format!("enterprises/{uscc} is not registered: import the enterprise first"),
            )]));
        };
        let holder = holder.into_domain().map_err(ApiError::internal)?;
        let filings = |reports: &[(usize, i32, NaiveDate)]| -> Vec<Filing> {
            reports
                .iter()
                .map(|&(_, year, filed_date)| Filing {
                    year,
                    filed_date,
                    filed_by: self.subject.clone(),
                })
                .collect()
        };
        let now = tx.now_us();
        let stored = store::get(tx.conn(), &input.number).await?;
        let (effect, written) = match stored {
            None => {
                if cert::may_hold(holder.name(), holder.state).is_err() {
                    return Ok(Err(vec![Problem::new(
                        "enterprise",
                        format!(
                            "enterprises/{uscc} is not active: certificates are recorded only for \
                             active enterprises"
                        ),
                    )]));
                }
                let created = Certificate {
                    uscc: uscc.to_string(),
                    number: input.number.clone(),
                    issue_date: input.issue_date,
                    issuing_authority: input.issuing_authority.clone(),
                    technology_field: input.technology_field,
                    filings: filings(&row.reports),
                    revocation: None,
                    create_time_us: now,
                    update_time_us: now,
                    version: 1,
                };
                store::insert(tx.conn(), &created).await?;
                (Effect::Create, created)
            }
            Some(model) if model.uscc != uscc => {
                return Ok(Err(vec![Problem::new(
                    "high_tech_certificate.certificate_number",
                    format!(
                        "{} is recorded for enterprises/{}, not enterprises/{uscc}",
                        input.number, model.uscc
                    ),
                )]));
            }
            Some(model) => {
                let current = model.into_domain().map_err(ApiError::internal)?;
                match merged(&current, input, &row.reports, filings(&row.reports)) {
                    Err(problems) => return Ok(Err(problems)),
                    Ok(None) => return Ok(Ok((Effect::Unchanged, name))),
                    Ok(Some(mut updated)) => {
                        updated.version = current.version + 1;
                        updated.update_time_us = now;
                        if !store::update_if_version(tx.conn(), &updated, current.version).await? {
                            return Err(qilu_common::input::etag::concurrent(&name));
                        }
                        (Effect::Update, updated)
                    }
                }
            }
        };
        record(tx, &written, self.today, self.zone)?;
        refresh_certified(tx, uscc, self.today).await?;
        Ok(Ok((effect, name)))
    }

    fn row_field() -> &'static str {
        "high_tech_certificate"
    }

    fn response(s: Summary) -> Self::Response {
        pb::ImportHighTechCertificatesResponse {
            received_count: s.received_count,
            accepted_count: bulk::accepted(&s),
            created_count: s.created_count,
            updated_count: s.updated_count,
            unchanged_count: s.unchanged_count,
            rejected_count: s.rejected_count,
            row_results: s.row_results,
            validate_only: s.validate_only,
            last_change_cursor: s.last_change_cursor,
        }
    }
}

/// `current` with an imported row taken in: the same holder and issue date, the reports it does
/// not have yet added, the descriptive fields replaced. `None` when that changes nothing; the
/// row's problems when it contradicts what is stored.
fn merged(
    current: &Certificate,
    input: &NewCertificate,
    reports: &[(usize, i32, NaiveDate)],
    filings: Vec<Filing>,
) -> Result<Option<Certificate>, Vec<Problem>> {
    let mut problems = Vec::new();
    if current.issue_date != input.issue_date {
        problems.push(Problem::new(
            "high_tech_certificate.issue_date",
            format!(
                "{} is recorded as issued on {}; an issue date never changes",
                current.number, current.issue_date
            ),
        ));
    }
    let mut updated = current.clone();
    updated.issuing_authority = input.issuing_authority.clone();
    updated.technology_field = input.technology_field;
    for (&(i, year, filed_date), filing) in reports.iter().zip(filings) {
        match current.filing(year) {
            Some(f) if f.filed_date == filed_date => {}
            Some(f) => problems.push(Problem::new(
                format!("annual_reports[{i}].filed_date"),
                format!(
                    "the {year} report is recorded as filed on {}; a filing is never moved",
                    date_text(f.filed_date)
                ),
            )),
            None => updated.filings.push(filing),
        }
    }
    if updated.filings.len() > current.filings.len() && current.revocation.is_some() {
        problems.push(Problem::new(
            "annual_reports",
            format!(
                "{} was revoked by an officer: nothing more is filed on it",
                current.number
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    updated.filings.sort_by_key(|f| f.year);
    Ok((updated != *current).then_some(updated))
}

pub(in crate::api) async fn import_high_tech_certificates(
    api: &RegistryApi,
    ctx: &CallContext,
    req: Streaming<pb::ImportHighTechCertificatesRequest>,
) -> Result<pb::ImportHighTechCertificatesResponse, ApiError> {
    bulk::run(api, ctx, req, Certificates::for_run(api, ctx)).await
}
