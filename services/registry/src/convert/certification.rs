//! High-tech certificates and eligibility as the API shows them and as requests describe them:
//! the certificate name, a new certificate, a revocation, the list filter and order, the
//! eligibility question and its answer.

use chrono::{Datelike, NaiveDate, TimeZone};
use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::filter::{Filter, FilterField, Kind, Op, Value};
use qilu_common::input::name::{self, IdRule};
use qilu_common::input::{OrderBy, Text, Violations, etag_of};
use qilu_common::time::to_timestamp;
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;

use crate::domain::certification::CertificateRefused;
use crate::domain::certification::{
    self as cert, Certificate, CertificateState, EARLIEST_ISSUE, Ground, MAX_AUTHORITY_CHARS,
    MAX_REASON_CHARS, ReportState,
};
use crate::domain::eligibility::{Criterion, Evaluation, Outcome};
use crate::domain::uscc::{KnownExceptions, Uscc};
use crate::store::certificate::{DateCmp, ListFilter, Order, StateFilter};

use super::{date_text, optional_date, parse_uscc};

/// Resource type for `ResourceInfo` in errors.
pub const CERTIFICATE_TYPE: &str = "registry.qilu.gov.cn/HighTechCertificate";
/// The name of a certificate.
const CERTIFICATE_PATTERN: &str = "enterprises/{uscc}/highTechCertificates/{certificate_number}";
/// Earliest year an application may be judged at, and earliest fiscal year.
const EARLIEST_YEAR: i32 = 1990;

/// Parses `enterprises/{uscc}/highTechCertificates/{certificate_number}`: the holder's USCC
/// (with its GB 32100 reasons) and the number.
pub fn parse_name(
    raw: &str,
    field: &str,
    known: &KnownExceptions,
) -> Result<(Uscc, String), ApiError> {
    // Each segment is checked below with its own reasons (the USCC's GB 32100 ones).
    let any = IdRule::Custom(|_| true);
    let parts = name::segments(raw, CERTIFICATE_PATTERN, field, any)?;
    let [code, number] = parts.as_slice() else {
        return Err(ApiError::from(name::bad_name(
            raw,
            CERTIFICATE_PATTERN,
            field,
        )));
    };
    let uscc = parse_uscc(code, field, known)?;
    if !cert::is_valid_number(number) {
        return Err(ApiError::from(name::bad_name(
            raw,
            CERTIFICATE_PATTERN,
            field,
        )));
    }
    Ok((uscc, number.to_string()))
}

/// The start of `date` in the programme time zone, µs.
fn start_of_day_us(zone: chrono_tz::Tz, date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| zone.from_local_datetime(&t).earliest())
        .map_or(0, |t| t.timestamp_micros())
}

/// The certificate as the API shows it on `today` (programme time zone `zone`).
pub fn to_proto(c: &Certificate, today: NaiveDate, zone: chrono_tz::Tz) -> pb::HighTechCertificate {
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
                    .unwrap_or_else(|| start_of_day_us(zone, r.date)),
            )
        }),
        create_time: Some(to_timestamp(c.create_time_us)),
        update_time: Some(to_timestamp(c.update_time_us)),
        etag: etag_of(&c.name(), c.version),
    }
}

/// A certificate to record, as a create request describes it.
#[derive(Debug)]
pub struct NewCertificate {
    /// Upper-cased number.
    pub number: String,
    /// Issue date (not in the future, not before the programme's first certificates).
    pub issue_date: NaiveDate,
    /// Issuing authority (may be empty).
    pub issuing_authority: String,
    /// `qilu.common.v1.HighTechField` number.
    pub technology_field: i32,
}

/// `CreateHighTechCertificateRequest.high_tech_certificate`, every bad field at once.
pub fn parse_new_certificate(
    input: Option<&pb::HighTechCertificate>,
    today: NaiveDate,
) -> Result<NewCertificate, ApiError> {
    let input = qilu_common::input::required(input, "high_tech_certificate")?;
    let mut v = Violations::new();
    let number = input.certificate_number.trim().to_uppercase();
    let at = "high_tech_certificate.certificate_number";
    if number.is_empty() {
        v.push(FieldViolation::new(
            at,
            "REQUIRED",
            "a certificate number is required",
        ));
    } else if !cert::is_valid_number(&number) {
        v.push(FieldViolation::new(
            at,
            "INVALID_FORMAT",
            format!(
                "{:?} is not 1-32 letters and digits",
                input.certificate_number
            ),
        ));
    }
    let issue_date = v.take(issue_date(&input.issue_date, today));
    let at = "high_tech_certificate.technology_field";
    match cpb::HighTechField::try_from(input.technology_field) {
        Ok(cpb::HighTechField::Unspecified) => v.push(FieldViolation::new(
            at,
            "REQUIRED",
            "the state high-tech field of the certificate is required",
        )),
        Err(_) => v.push(FieldViolation::new(
            at,
            "UNKNOWN_ENUM_VALUE",
            format!(
                "{} is not one of the eight state high-tech fields",
                input.technology_field
            ),
        )),
        Ok(_) => {}
    }
    let authority = v.take(Text::optional(MAX_AUTHORITY_CHARS).parse(
        &input.issuing_authority,
        "high_tech_certificate.issuing_authority",
    ));
    let parsed = issue_date
        .zip(authority)
        .map(|(issue_date, issuing_authority)| NewCertificate {
            number,
            issue_date,
            issuing_authority,
            technology_field: input.technology_field,
        });
    v.into_result(parsed)
}

fn issue_date(raw: &str, today: NaiveDate) -> Result<NaiveDate, FieldViolation> {
    let at = "high_tech_certificate.issue_date";
    let (y, m, d) = EARLIEST_ISSUE;
    let earliest = NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN);
    match optional_date(raw, at)? {
        None => Err(FieldViolation::new(
            at,
            "REQUIRED",
            "an issue date YYYY-MM-DD is required",
        )),
        Some(d) if d > today => Err(FieldViolation::new(
            at,
            "IN_FUTURE",
            format!("{d} is in the future"),
        )),
        Some(d) if d < earliest => Err(FieldViolation::new(
            at,
            "TOO_EARLY",
            format!("{d} is before {earliest}"),
        )),
        Some(d) => Ok(d),
    }
}

/// `RevokeHighTechCertificateRequest`'s ground and reason, both violations at once.
pub fn parse_revocation(
    req: &pb::RevokeHighTechCertificateRequest,
) -> Result<(Ground, String), ApiError> {
    let mut v = Violations::new();
    let ground = match Ground::from_code(req.ground) {
        Some(Ground::MissedAnnualReports) => {
            v.push(FieldViolation::new(
                "ground",
                "SERVER_ONLY_GROUND",
                "REVOCATION_GROUND_MISSED_ANNUAL_REPORTS is applied by the server only",
            ));
            None
        }
        Some(g) => Some(g),
        None if req.ground == 0 => {
            v.push(FieldViolation::new(
                "ground",
                "REQUIRED",
                "a revocation ground is required",
            ));
            None
        }
        None => {
            v.push(FieldViolation::new(
                "ground",
                "UNKNOWN_ENUM_VALUE",
                format!("{} is not a RevocationGround", req.ground),
            ));
            None
        }
    };
    let reason = match Text::optional(MAX_REASON_CHARS).parse(&req.reason, "reason") {
        Ok(r) if r.is_empty() => {
            v.push(FieldViolation::new(
                "reason",
                "REQUIRED",
                "the reason (e.g. the decision document) is required",
            ));
            None
        }
        other => v.take(other),
    };
    v.into_result(ground.zip(reason))
}

/// `FileAnnualReportRequest`: the year reported on and the filing date an officer gave, if any.
pub fn parse_filing(
    req: &pb::FileAnnualReportRequest,
) -> Result<(i32, Option<NaiveDate>), ApiError> {
    if req.report_year == 0 {
        return Err(ApiError::invalid(
            "report_year",
            "REQUIRED",
            "the fiscal year reported on is required",
        ));
    }
    let given = optional_date(&req.filed_date, "filed_date")?;
    Ok((req.report_year, given))
}

/// The filing date: the one given (not in the future), else `today`.
pub fn filed_date(given: Option<NaiveDate>, today: NaiveDate) -> Result<NaiveDate, ApiError> {
    match given {
        Some(d) if d > today => Err(ApiError::invalid(
            "filed_date",
            "IN_FUTURE",
            format!("{d} is in the future"),
        )),
        Some(d) => Ok(d),
        None => Ok(today),
    }
}

/// The parts of a list filter: SQL conditions and the missed-report bounds applied after
/// reading (the count depends on today).
#[derive(Debug)]
pub struct CertificateFilter {
    /// What the store filters on.
    pub sql: ListFilter,
    /// `missed_report_count` comparisons.
    pub missed: Vec<(Op, usize)>,
}

impl CertificateFilter {
    /// Whether a certificate with `missed` missed reports meets every count bound.
    pub fn admits_missed(&self, missed: usize) -> bool {
        self.missed.iter().all(|&(op, n)| match op {
            Op::Eq => missed == n,
            Op::Lt => missed < n,
            Op::Le => missed <= n,
            Op::Gt => missed > n,
            Op::Ge => missed >= n,
            Op::Ne | Op::Has => false,
        })
    }
}

const COMPARISONS: &[Op] = &[Op::Eq, Op::Lt, Op::Le, Op::Gt, Op::Ge];

/// What `ListHighTechCertificates` filters on (certification.proto documents each).
const LIST_FILTER: &[FilterField] = &[
    FilterField::eq(
        "state",
        Kind::Enum {
            type_name: "CertificateState",
            from_name: |s| pb::CertificateState::from_str_name(s).map(|c| c as i32),
        },
    ),
    FilterField::eq(
        "technology_field",
        Kind::Enum {
            type_name: "HighTechField",
            from_name: |s| cpb::HighTechField::from_str_name(s).map(|f| f as i32),
        },
    ),
    FilterField::with("issue_date", COMPARISONS, Kind::Date),
    FilterField::with("expiry_date", COMPARISONS, Kind::Date),
    FilterField::with("missed_report_count", COMPARISONS, Kind::Int),
];

/// `ListHighTechCertificatesRequest.filter`, states judged on `today`.
pub fn parse_list_filter(raw: &str, today: NaiveDate) -> Result<CertificateFilter, ApiError> {
    let mut out = CertificateFilter {
        sql: ListFilter::default(),
        missed: Vec::new(),
    };
    let date_cmp = |op: Op| match op {
        Op::Lt => DateCmp::Lt,
        Op::Le => DateCmp::Le,
        Op::Gt => DateCmp::Gt,
        Op::Ge => DateCmp::Ge,
        // The field table admits no other operator.
        Op::Eq | Op::Ne | Op::Has => DateCmp::Eq,
    };
    for term in Filter::typed(raw, LIST_FILTER)? {
        match (term.field, term.value) {
            ("state", Value::Enum(n)) => {
                let state = match pb::CertificateState::try_from(n) {
                    Ok(pb::CertificateState::Valid) => StateFilter::Valid,
                    Ok(pb::CertificateState::Expired) => StateFilter::Expired,
                    _ => StateFilter::Revoked,
                };
                out.sql.state = Some((state, today));
            }
            ("technology_field", Value::Enum(n)) => out.sql.technology_field = Some(n),
            ("issue_date", Value::Date(d)) => out.sql.issue_date.push((date_cmp(term.op), d)),
            ("expiry_date", Value::Date(d)) => out.sql.expiry_date.push((date_cmp(term.op), d)),
            ("missed_report_count", Value::Int(n)) => {
                let n = usize::try_from(n).map_err(|_| {
                    ApiError::invalid(
                        "filter",
                        "INVALID_FILTER",
                        format!("missed_report_count: {n} is not a count"),
                    )
                })?;
                out.missed.push((term.op, n));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `ListHighTechCertificatesRequest.order_by`: `issue_date` (default) or `expiry_date`.
pub fn parse_order(raw: &str) -> Result<Order, ApiError> {
    #[derive(Clone, Copy)]
    enum Key {
        IssueDate,
        ExpiryDate,
    }
    let keys = [
        ("issue_date", Key::IssueDate),
        ("expiry_date", Key::ExpiryDate),
    ];
    let order = OrderBy::parse(raw, &keys, Key::IssueDate)?;
    Ok(match order.key {
        Key::IssueDate => Order::IssueDate { desc: order.desc },
        Key::ExpiryDate => Order::ExpiryDate { desc: order.desc },
    })
}

/// The question `EvaluateEligibility` asks: as of which application date, on which fiscal year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EligibilityQuestion {
    /// The day the application is judged at (default today).
    pub application_date: NaiveDate,
    /// The complete year the figures are judged on (default the year before the application).
    pub fiscal_year: i32,
}

/// `EvaluateEligibilityRequest`'s dates, checked against `today`.
pub fn parse_eligibility_question(
    req: &pb::EvaluateEligibilityRequest,
    today: NaiveDate,
) -> Result<EligibilityQuestion, ApiError> {
    let application_date =
        optional_date(&req.application_date, "application_date")?.unwrap_or(today);
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
    Ok(EligibilityQuestion {
        application_date,
        fiscal_year,
    })
}

/// An evaluation as the API answers it (`evaluate_time_us`: when it was computed).
pub fn eligibility_to_proto(
    enterprise: String,
    question: EligibilityQuestion,
    evaluation: Evaluation,
    evaluate_time_us: i64,
) -> pb::EvaluateEligibilityResponse {
    let criteria = evaluation
        .criteria
        .into_iter()
        .map(|r| pb::CriterionResult {
            criterion: criterion_proto(r.criterion) as i32,
            outcome: outcome_proto(r.outcome),
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
    pb::EvaluateEligibilityResponse {
        enterprise,
        fiscal_year: question.fiscal_year,
        application_date: date_text(question.application_date),
        overall: outcome_proto(evaluation.overall),
        criteria,
        rules_source: crate::domain::eligibility::RULES_SOURCE.to_string(),
        evaluate_time: Some(to_timestamp(evaluate_time_us)),
    }
}

fn outcome_proto(o: Outcome) -> i32 {
    let p = match o {
        Outcome::Met => pb::CriterionOutcome::Met,
        Outcome::NotMet => pb::CriterionOutcome::NotMet,
        Outcome::CannotDecide => pb::CriterionOutcome::CannotDecide,
    };
    p as i32
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

/// The one mapping of a CertificateRefused to the API's answer.
impl From<CertificateRefused> for ApiError {
    fn from(refused: CertificateRefused) -> Self {
        match refused {
            CertificateRefused::HolderNotActive { holder, state } => {
                let description = format!(
                    "{holder} is {state:?}; certificates are recorded only for active enterprises"
                );
                ApiError::precondition("ENTERPRISE_NOT_ACTIVE", holder, description)
            }
            CertificateRefused::OutsideValidity { name, years, year } => ApiError::invalid(
                "report_year",
                "OUTSIDE_VALIDITY",
                format!(
                    "{name} reports on {}-{}, not {year}",
                    years.start(),
                    years.end()
                ),
            ),
            CertificateRefused::Revoked { name } => {
                let description = format!("{name} is revoked; no annual report can be filed");
                ApiError::precondition("CERTIFICATE_REVOKED", name, description)
            }
            CertificateRefused::RevokedForMissedReports { name } => {
                let description = format!(
                    "{name} is revoked for two missed annual reports; no annual report can be filed"
                );
                ApiError::precondition("CERTIFICATE_REVOKED", name, description)
            }
            CertificateRefused::AlreadyFiled {
                name,
                year,
                filed_date,
            } => ApiError::precondition(
                "REPORT_ALREADY_FILED",
                name,
                format!("the {year} report was already filed on {filed_date}"),
            ),
            CertificateRefused::YearNotEnded {
                year,
                earliest,
                filed_date,
                date_given,
            } => ApiError::invalid(
                // The field the caller can change: the date it gave, or the year.
                if date_given {
                    "filed_date"
                } else {
                    "report_year"
                },
                "YEAR_NOT_ENDED",
                format!("the report on {year} can be filed from {earliest}, not {filed_date}"),
            ),
            CertificateRefused::NotValid { name, state } => {
                let description =
                    format!("{name} is {state:?}; only a valid certificate can be revoked");
                ApiError::precondition("CERTIFICATE_NOT_VALID", name, description)
            }
        }
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
        assert_eq!(
            f.sql.issue_date,
            vec![(DateCmp::Ge, NaiveDate::from_ymd_opt(2023, 1, 1).unwrap())]
        );
        assert_eq!(f.missed, vec![(Op::Ge, 1)]);
        assert!(parse_list_filter("state = VALID", today()).is_err());
        assert!(parse_list_filter("issue_date >= yesterday", today()).is_err());
        assert!(parse_list_filter("missed_report_count != 1", today()).is_err());
        assert!(parse_list_filter("missed_report_count = -1", today()).is_err());
        assert!(parse_list_filter("uscc = x", today()).is_err());
    }

    #[test]
    fn missed_counts_compare_with_every_operator() {
        let with = |missed: Vec<(Op, usize)>| CertificateFilter {
            sql: ListFilter::default(),
            missed,
        };
        assert!(with(vec![(Op::Ge, 1)]).admits_missed(1));
        assert!(!with(vec![(Op::Ge, 1)]).admits_missed(0));
        assert!(with(vec![(Op::Gt, 0), (Op::Lt, 2)]).admits_missed(1));
        assert!(!with(vec![(Op::Eq, 2)]).admits_missed(1));
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

    #[test]
    fn certificate_names_carry_a_valid_code_and_number() {
        let known = KnownExceptions::default();
        let ok = parse_name(
            "enterprises/91350100M000100Y43/highTechCertificates/GR2024",
            "name",
            &known,
        );
        assert_eq!(ok.ok().map(|(_, n)| n).as_deref(), Some("GR2024"));
        for bad in [
            "enterprises/91350100M000100Y43/highTechCertificates/gr2024",
            "enterprises/91350100M000100Y43/certificates/GR2024",
            "enterprises/91350100M000100Y4Z/highTechCertificates/GR2024",
            "",
        ] {
            assert!(parse_name(bad, "name", &known).is_err(), "{bad}");
        }
    }
}
