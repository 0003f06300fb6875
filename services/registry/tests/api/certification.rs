//! Integration tests of annual figures, high-tech certificates and eligibility as a caller sees
//! them: the real server on an ephemeral port, over a fresh SQLite file and a fresh PostgreSQL
//! database. Every scenario runs on both backends (`sqlite::…` and `postgres::…`).
//!
//! Certificate dates that depend on "today" are chosen relative to today in the programme time
//! zone, so the scenarios hold on any day; the date rules themselves are pinned with fixed dates
//! in `domain::certification`'s unit tests.

use chrono::{Datelike, NaiveDate};
use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_registry::Registry;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::{
    ENTERPRISE_TYPE, assert_not_found, check_char, client, execute, get_enterprise, start_on,
    today, violations,
};

on_both_backends!(
    figures_are_written_per_figure_with_source_and_time_and_read_back,
    allow_missing_false_on_a_new_year_is_not_found_and_clearing_makes_a_figure_missing,
    figures_list_by_enterprise_or_across_all_with_year_filters_order_and_pages,
    bad_figures_are_invalid_argument_naming_each_field,
    a_stale_figures_etag_is_aborted_and_a_repeated_request_id_writes_once,
    enterprise_tokens_declare_only_their_own_figures,
    figure_roles_follow_the_role_table,
    a_certificate_is_recorded_valid_and_marks_its_holder_certified,
    bad_certificate_requests_get_the_right_status_and_field,
    annual_reports_are_filed_once_within_validity_and_late_ones_stay_missed,
    revoking_a_certificate_clears_certified_and_only_valid_ones_can_be_revoked,
    two_missed_reports_read_revoked_and_old_certificates_read_expired_without_a_write,
    certificates_list_with_filters_orders_and_pages,
    enterprise_tokens_see_and_file_only_their_own_certificates,
    design_pair_4_9_percent_at_40m_fails_and_3_0_percent_at_300m_passes,
    missing_figures_cannot_decide_and_name_the_missing_data,
    eligibility_requests_are_validated_and_scoped,
    every_mutation_here_is_audited_and_the_chain_verifies,
    concurrent_reads_share_statements_and_each_caller_gets_its_own_answer,
    the_registry_clock_sets_today_for_certificate_states_and_high_tech_certified,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const FIGURES_TYPE: &str = "registry.qilu.gov.cn/AnnualFigures";
const CERTIFICATE_TYPE: &str = "registry.qilu.gov.cn/HighTechCertificate";
/// One million yuan in fen.
const M: i64 = 100_000_000;

/// A valid Jinan code varied by `n`.
fn uscc(n: u32) -> String {
    let body = format!("91370100MA3D{n:05}");
    format!("{body}{}", check_char(&body))
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn create_enterprise(server: &TestServer, code: &str, established: &str) -> pb::Enterprise {
    client(server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    uscc: code.to_string(),
                    display_name: format!("山东绿色科技{code}"),
                    legal_representative: "李四".into(),
                    established_date: established.into(),
                    address: "山东省济南市高新区".into(),
                    technology_fields: vec![cpb::HighTechField::NewEnergyAndEnergySaving as i32],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create {code}: {s:?}"))
        .into_inner()
}

pub(crate) fn amount(value: i64, source: pb::FigureSource) -> Option<pb::ReportedAmount> {
    Some(pb::ReportedAmount {
        value,
        source: source as i32,
        reference: "鲁华审字〔2024〕第0123号".into(),
        update_time: None,
    })
}

fn flag(value: bool, source: pb::FigureSource) -> Option<pb::ReportedFlag> {
    Some(pb::ReportedFlag {
        value,
        source: source as i32,
        reference: String::new(),
        update_time: None,
    })
}

pub(crate) fn figures_name(code: &str, year: i32) -> String {
    format!("enterprises/{code}/annualFigures/{year}")
}

pub(crate) fn update_request(
    figures: pb::AnnualFigures,
    paths: &[&str],
    allow_missing: bool,
    request_id: &str,
) -> pb::UpdateAnnualFiguresRequest {
    pb::UpdateAnnualFiguresRequest {
        annual_figures: Some(figures),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
        allow_missing,
        request_id: request_id.into(),
    }
}

pub(crate) async fn write_figures(
    server: &TestServer,
    role: Role,
    figures: pb::AnnualFigures,
    paths: &[&str],
) -> Result<pb::AnnualFigures, Status> {
    client(server)
        .update_annual_figures(server.request(role, update_request(figures, paths, true, "")))
        .await
        .map(tonic::Response::into_inner)
}

const ALL_FIGURES: [&str; 13] = [
    "revenue_fen",
    "rd_expense_fen",
    "rd_domestic_expense_fen",
    "high_tech_product_revenue_fen",
    "employees",
    "st_staff",
    "invention_patents",
    "core_ip_owned",
    "innovation_ip_points",
    "innovation_conversion_points",
    "innovation_rd_management_points",
    "innovation_growth_points",
    "major_incident",
];

/// A year that meets every criterion except, perhaps, the R&D ratio.
fn qualifying_year(code: &str, year: i32, revenue: i64, rd: i64) -> pb::AnnualFigures {
    use pb::FigureSource::AuditedStatement as A;
    pb::AnnualFigures {
        name: figures_name(code, year),
        revenue_fen: amount(revenue, A),
        rd_expense_fen: amount(rd, A),
        rd_domestic_expense_fen: amount(rd, A),
        high_tech_product_revenue_fen: amount(revenue * 7 / 10, A),
        employees: amount(200, A),
        st_staff: amount(40, A),
        invention_patents: amount(12, A),
        core_ip_owned: flag(true, A),
        innovation_ip_points: amount(25, A),
        innovation_conversion_points: amount(25, A),
        innovation_rd_management_points: amount(15, A),
        innovation_growth_points: amount(15, A),
        major_incident: flag(false, A),
        ..Default::default()
    }
}

#[track_caller]
fn assert_violation(status: &Status, field: &str, reason: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        violations(status)
            .iter()
            .any(|(f, r)| f == field && r == reason),
        "expected {field} {reason}: {status:?}"
    );
}

#[track_caller]
fn assert_precondition(status: &Status, kind: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let failure = status
        .get_details_precondition_failure()
        .expect("PreconditionFailure");
    assert_eq!(failure.violations[0].r#type, kind, "{status:?}");
}

fn certificate(number: &str, issue: &str) -> pb::HighTechCertificate {
    pb::HighTechCertificate {
        certificate_number: number.into(),
        issue_date: issue.into(),
        issuing_authority: "山东省高新技术企业认定管理机构".into(),
        technology_field: cpb::HighTechField::NewEnergyAndEnergySaving as i32,
        ..Default::default()
    }
}

async fn create_certificate(
    server: &TestServer,
    code: &str,
    cert: pb::HighTechCertificate,
    request_id: &str,
) -> Result<pb::HighTechCertificate, Status> {
    client(server)
        .create_high_tech_certificate(server.request(
            Role::Officer,
            pb::CreateHighTechCertificateRequest {
                parent: format!("enterprises/{code}"),
                high_tech_certificate: Some(cert),
                request_id: request_id.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn get_certificate(server: &TestServer, name: &str) -> pb::HighTechCertificate {
    client(server)
        .get_high_tech_certificate(server.request(
            Role::Auditor,
            pb::GetHighTechCertificateRequest { name: name.into() },
        ))
        .await
        .unwrap_or_else(|s| panic!("get {name}: {s:?}"))
        .into_inner()
}

async fn file(
    server: &TestServer,
    role: Role,
    name: &str,
    year: i32,
    filed_date: &str,
) -> Result<pb::HighTechCertificate, Status> {
    client(server)
        .file_annual_report(server.request(
            role,
            pb::FileAnnualReportRequest {
                name: name.into(),
                report_year: year,
                filed_date: filed_date.into(),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn revoke(
    server: &TestServer,
    name: &str,
    ground: pb::RevocationGround,
    reason: &str,
    etag: &str,
) -> Result<pb::HighTechCertificate, Status> {
    client(server)
        .revoke_high_tech_certificate(server.request(
            Role::Officer,
            pb::RevokeHighTechCertificateRequest {
                name: name.into(),
                ground: ground as i32,
                reason: reason.into(),
                etag: etag.into(),
                request_id: String::new(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn list_certificates(
    server: &TestServer,
    parent: &str,
    filter: &str,
    order_by: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client(server)
            .list_high_tech_certificates(server.request(
                Role::Officer,
                pb::ListHighTechCertificatesRequest {
                    parent: parent.into(),
                    page_size: 2,
                    page_token: token,
                    filter: filter.into(),
                    order_by: order_by.into(),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("list {filter:?}: {s:?}"))
            .into_inner();
        out.extend(
            page.high_tech_certificates
                .into_iter()
                .map(|c| c.certificate_number),
        );
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

async fn evaluate(
    server: &TestServer,
    code: &str,
    fiscal_year: i32,
    application_date: &str,
) -> Result<pb::EvaluateEligibilityResponse, Status> {
    client(server)
        .evaluate_eligibility(server.request(
            Role::Officer,
            pb::EvaluateEligibilityRequest {
                name: format!("enterprises/{code}"),
                fiscal_year,
                application_date: application_date.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn audit_resources(server: &TestServer, resource: &str) -> Vec<cpb::AuditEvent> {
    client(server)
        .list_audit_events(server.request(
            Role::Auditor,
            cpb::ListAuditEventsRequest {
                page_size: 1000,
                page_token: String::new(),
                filter: format!("resource = \"{resource}\""),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .audit_events
}

async fn chain_intact(server: &TestServer) -> bool {
    client(server)
        .verify_audit_chain(server.request(
            Role::Auditor,
            cpb::VerifyAuditChainRequest {
                witnessed_sequence: 0,
                witnessed_hash: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .intact
}

// ---------------------------------------------------------------------------------------------
// Annual figures
// ---------------------------------------------------------------------------------------------

async fn figures_are_written_per_figure_with_source_and_time_and_read_back(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(1);
    create_enterprise(&server, &code, "2010-05-04").await;
    let mut c = client(&server);
    let first = write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: figures_name(&code, 2023),
            revenue_fen: amount(40 * M, pb::FigureSource::AuditedStatement),
            core_ip_owned: flag(true, pb::FigureSource::RecognitionReview),
            ..Default::default()
        },
        &["revenue_fen", "core_ip_owned"],
    )
    .await
    .unwrap();
    assert_eq!(first.name, figures_name(&code, 2023));
    assert_eq!(first.year, 2023);
    let revenue = first.revenue_fen.clone().unwrap();
    assert_eq!(revenue.value, 40 * M);
    assert_eq!(revenue.source, pb::FigureSource::AuditedStatement as i32);
    assert_eq!(revenue.reference, "鲁华审字〔2024〕第0123号");
    assert!(revenue.update_time.is_some());
    assert!(first.core_ip_owned.as_ref().unwrap().value);
    assert!(first.employees.is_none(), "unreported figures stay missing");
    assert!(!first.etag.is_empty());

    // A second write touches only its figure; the first keeps its own time.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = write_figures(
        &server,
        Role::Admin,
        pb::AnnualFigures {
            name: figures_name(&code, 2023),
            employees: amount(120, pb::FigureSource::TaxRecord),
            // Not in the mask: ignored.
            revenue_fen: amount(1, pb::FigureSource::TaxRecord),
            ..Default::default()
        },
        &["employees"],
    )
    .await
    .unwrap();
    assert_eq!(second.revenue_fen, first.revenue_fen);
    assert_eq!(second.employees.as_ref().unwrap().value, 120);
    assert_ne!(second.etag, first.etag);
    assert_eq!(second.create_time, first.create_time);
    assert_ne!(
        second.employees.as_ref().unwrap().update_time,
        revenue.update_time
    );

    let read = c
        .get_annual_figures(server.request(
            Role::Service,
            pb::GetAnnualFiguresRequest {
                name: figures_name(&code, 2023),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, second);
    let s = c
        .get_annual_figures(server.request(
            Role::Officer,
            pb::GetAnnualFiguresRequest {
                name: figures_name(&code, 2022),
            },
        ))
        .await
        .unwrap_err();
    assert_not_found(&s, FIGURES_TYPE, &figures_name(&code, 2022));
    for bad in [
        format!("enterprises/{code}/annualFigures/23"),
        format!("enterprises/{code}/annualFigures/1900"),
        format!("enterprises/{code}/figures/2023"),
        "enterprises/91350100M000100Y4Z/annualFigures/2023".to_string(),
    ] {
        let s = c
            .get_annual_figures(server.request(
                Role::Officer,
                pb::GetAnnualFiguresRequest { name: bad.clone() },
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{bad}: {s:?}");
        assert_eq!(violations(&s)[0].0, "name", "{bad}");
    }
    server.stop().await;
}

async fn allow_missing_false_on_a_new_year_is_not_found_and_clearing_makes_a_figure_missing(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(2);
    create_enterprise(&server, &code, "2010-05-04").await;
    let mut c = client(&server);
    let figures = pb::AnnualFigures {
        name: figures_name(&code, 2024),
        revenue_fen: amount(M, pb::FigureSource::StatisticsBureau),
        ..Default::default()
    };
    let s = c
        .update_annual_figures(server.request(
            Role::Officer,
            update_request(figures.clone(), &["revenue_fen"], false, ""),
        ))
        .await
        .unwrap_err();
    assert_not_found(&s, FIGURES_TYPE, &figures_name(&code, 2024));
    // An enterprise that does not exist has no figures to write.
    let ghost = uscc(99);
    let s = write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: figures_name(&ghost, 2024),
            ..figures.clone()
        },
        &["revenue_fen"],
    )
    .await
    .unwrap_err();
    assert_not_found(&s, ENTERPRISE_TYPE, &format!("enterprises/{ghost}"));

    write_figures(&server, Role::Officer, figures.clone(), &["revenue_fen"])
        .await
        .unwrap();
    // Now it exists, allow_missing=false updates it.
    let updated = c
        .update_annual_figures(server.request(
            Role::Officer,
            update_request(
                pb::AnnualFigures {
                    employees: amount(10, pb::FigureSource::OfficerEntry),
                    ..figures.clone()
                },
                &["employees"],
                false,
                "",
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.employees.unwrap().value, 10);
    // A masked figure left unset is cleared.
    let cleared = write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: figures_name(&code, 2024),
            ..Default::default()
        },
        &["revenue_fen"],
    )
    .await
    .unwrap();
    assert!(cleared.revenue_fen.is_none());
    assert!(cleared.employees.is_some());
    server.stop().await;
}

async fn figures_list_by_enterprise_or_across_all_with_year_filters_order_and_pages(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (a, b) = (uscc(3), uscc(4));
    create_enterprise(&server, &a, "2010-05-04").await;
    create_enterprise(&server, &b, "2010-05-04").await;
    for code in [&a, &b] {
        for year in 2019..=2023 {
            write_figures(
                &server,
                Role::Officer,
                pb::AnnualFigures {
                    name: figures_name(code, year),
                    revenue_fen: amount(i64::from(year), pb::FigureSource::TaxRecord),
                    ..Default::default()
                },
                &["revenue_fen"],
            )
            .await
            .unwrap();
        }
    }
    let list_all = |parent: String, filter: &'static str, order_by: &'static str| {
        let server = &server;
        async move {
            let mut out = Vec::new();
            let mut token = String::new();
            loop {
                let page = client(server)
                    .list_annual_figures(server.request(
                        Role::Auditor,
                        pb::ListAnnualFiguresRequest {
                            parent: parent.clone(),
                            page_size: 2,
                            page_token: token,
                            filter: filter.into(),
                            order_by: order_by.into(),
                        },
                    ))
                    .await
                    .unwrap_or_else(|s| panic!("{filter}: {s:?}"))
                    .into_inner();
                out.extend(page.annual_figures.into_iter().map(|f| f.name));
                if page.next_page_token.is_empty() {
                    return out;
                }
                token = page.next_page_token;
            }
        }
    };
    let got = list_all(
        format!("enterprises/{a}"),
        "year >= 2021 AND year <= 2022",
        "",
    )
    .await;
    assert_eq!(got, [figures_name(&a, 2021), figures_name(&a, 2022)]);
    let got = list_all(format!("enterprises/{a}"), "", "year desc").await;
    assert_eq!(got.len(), 5);
    assert_eq!(got[0], figures_name(&a, 2023));
    let got = list_all("enterprises/-".into(), "year > 2021", "").await;
    let mut expected = Vec::new();
    for year in 2022..=2023 {
        let mut pair = [figures_name(&a, year), figures_name(&b, year)];
        pair.sort();
        expected.extend(pair);
    }
    assert_eq!(got, expected);
    let got = list_all("enterprises/-".into(), "year < 2020", "year desc").await;
    assert_eq!(got.len(), 2);

    let mut c = client(&server);
    for (filter, order_by) in [
        ("year != 2020", ""),
        ("revenue_fen > 1", ""),
        ("", "revenue"),
    ] {
        let s = c
            .list_annual_figures(server.request(
                Role::Officer,
                pb::ListAnnualFiguresRequest {
                    parent: "enterprises/-".into(),
                    filter: filter.into(),
                    order_by: order_by.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{filter} {order_by}");
    }
    let ghost = uscc(98);
    let s = c
        .list_annual_figures(server.request(
            Role::Officer,
            pb::ListAnnualFiguresRequest {
                parent: format!("enterprises/{ghost}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_not_found(&s, ENTERPRISE_TYPE, &format!("enterprises/{ghost}"));
    server.stop().await;
}

async fn bad_figures_are_invalid_argument_naming_each_field(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(5);
    create_enterprise(&server, &code, "2010-05-04").await;
    use pb::FigureSource::AuditedStatement as A;
    let next_year = today().year() + 1;
    let cases: Vec<(pb::AnnualFigures, Vec<&str>, &str, &str)> = vec![
        (
            pb::AnnualFigures {
                revenue_fen: amount(-1, A),
                ..Default::default()
            },
            vec!["revenue_fen"],
            "annual_figures.revenue_fen.value",
            "NEGATIVE",
        ),
        (
            pb::AnnualFigures {
                innovation_ip_points: amount(31, A),
                ..Default::default()
            },
            vec!["innovation_ip_points"],
            "annual_figures.innovation_ip_points.value",
            "OUT_OF_RANGE",
        ),
        (
            pb::AnnualFigures {
                innovation_growth_points: amount(21, A),
                ..Default::default()
            },
            vec!["innovation_growth_points"],
            "annual_figures.innovation_growth_points.value",
            "OUT_OF_RANGE",
        ),
        (
            pb::AnnualFigures {
                employees: amount(10_000_001, A),
                ..Default::default()
            },
            vec!["employees"],
            "annual_figures.employees.value",
            "OUT_OF_RANGE",
        ),
        (
            pb::AnnualFigures {
                revenue_fen: amount(1, pb::FigureSource::Unspecified),
                ..Default::default()
            },
            vec!["revenue_fen"],
            "annual_figures.revenue_fen.source",
            "REQUIRED",
        ),
        (
            pb::AnnualFigures {
                major_incident: Some(pb::ReportedFlag {
                    value: false,
                    source: 42,
                    ..Default::default()
                }),
                ..Default::default()
            },
            vec!["major_incident"],
            "annual_figures.major_incident.source",
            "UNKNOWN_ENUM_VALUE",
        ),
        (
            pb::AnnualFigures {
                revenue_fen: Some(pb::ReportedAmount {
                    value: 1,
                    source: A as i32,
                    reference: "x".repeat(501),
                    update_time: None,
                }),
                ..Default::default()
            },
            vec!["revenue_fen"],
            "annual_figures.revenue_fen.reference",
            "TOO_LONG",
        ),
        (
            pb::AnnualFigures::default(),
            vec!["profit"],
            "update_mask",
            "FIELD_NOT_UPDATABLE",
        ),
        (
            pb::AnnualFigures::default(),
            vec![],
            "update_mask",
            "REQUIRED",
        ),
        (
            pb::AnnualFigures {
                rd_expense_fen: amount(10, A),
                rd_domestic_expense_fen: amount(11, A),
                ..Default::default()
            },
            vec!["rd_expense_fen", "rd_domestic_expense_fen"],
            "annual_figures.rd_domestic_expense_fen.value",
            "EXCEEDS_TOTAL",
        ),
        (
            pb::AnnualFigures {
                employees: amount(10, A),
                st_staff: amount(11, A),
                ..Default::default()
            },
            vec!["employees", "st_staff"],
            "annual_figures.st_staff.value",
            "EXCEEDS_TOTAL",
        ),
    ];
    for (mut figures, paths, field, reason) in cases {
        figures.name = figures_name(&code, 2023);
        let s = write_figures(&server, Role::Officer, figures, &paths)
            .await
            .unwrap_err();
        assert_violation(&s, field, reason);
    }
    // Years outside 1990..=next year, and a missing message.
    for year in [1989, next_year + 1] {
        let s = write_figures(
            &server,
            Role::Officer,
            pb::AnnualFigures {
                name: figures_name(&code, year),
                revenue_fen: amount(1, A),
                ..Default::default()
            },
            &["revenue_fen"],
        )
        .await
        .unwrap_err();
        assert_violation(&s, "annual_figures.name", "YEAR_OUT_OF_RANGE");
    }
    write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: figures_name(&code, next_year),
            revenue_fen: amount(1, A),
            ..Default::default()
        },
        &["revenue_fen"],
    )
    .await
    .unwrap();
    let s = client(&server)
        .update_annual_figures(
            server.request(Role::Officer, pb::UpdateAnnualFiguresRequest::default()),
        )
        .await
        .unwrap_err();
    assert_violation(&s, "annual_figures", "REQUIRED");
    // The whole lowered below a stored part is blamed on the whole.
    write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: figures_name(&code, 2022),
            revenue_fen: amount(100, A),
            high_tech_product_revenue_fen: amount(80, A),
            ..Default::default()
        },
        &["revenue_fen", "high_tech_product_revenue_fen"],
    )
    .await
    .unwrap();
    let s = write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: figures_name(&code, 2022),
            revenue_fen: amount(79, A),
            ..Default::default()
        },
        &["revenue_fen"],
    )
    .await
    .unwrap_err();
    assert_violation(&s, "annual_figures.revenue_fen.value", "EXCEEDS_TOTAL");
    // Nothing was written by any refusal.
    let events = audit_resources(&server, &figures_name(&code, 2023)).await;
    assert!(events.is_empty());
    server.stop().await;
}

async fn a_stale_figures_etag_is_aborted_and_a_repeated_request_id_writes_once(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(6);
    create_enterprise(&server, &code, "2010-05-04").await;
    let mut c = client(&server);
    let rid = uuid::Uuid::new_v4().to_string();
    let figures = pb::AnnualFigures {
        name: figures_name(&code, 2023),
        revenue_fen: amount(5 * M, pb::FigureSource::TaxRecord),
        ..Default::default()
    };
    let first = c
        .update_annual_figures(server.request(
            Role::Officer,
            update_request(figures.clone(), &["revenue_fen"], true, &rid),
        ))
        .await
        .unwrap()
        .into_inner();
    let replay = c
        .update_annual_figures(server.request(
            Role::Officer,
            update_request(figures.clone(), &["revenue_fen"], true, &rid),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, replay);
    assert_eq!(
        audit_resources(&server, &figures_name(&code, 2023))
            .await
            .len(),
        1
    );
    // With the current etag it applies; the old etag is then stale.
    let with_etag = pb::AnnualFigures {
        etag: first.etag.clone(),
        employees: amount(50, pb::FigureSource::TaxRecord),
        ..figures.clone()
    };
    let second = write_figures(&server, Role::Officer, with_etag.clone(), &["employees"])
        .await
        .unwrap();
    assert_ne!(second.etag, first.etag);
    let s = write_figures(&server, Role::Officer, with_etag, &["employees"])
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");
    // An etag for a year that does not exist is stale too.
    let s = write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: figures_name(&code, 2020),
            etag: first.etag,
            ..figures
        },
        &["revenue_fen"],
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");
    server.stop().await;
}

async fn enterprise_tokens_declare_only_their_own_figures(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (own, other) = (uscc(7), uscc(8));
    create_enterprise(&server, &own, "2010-05-04").await;
    create_enterprise(&server, &other, "2010-05-04").await;
    let mut c = client(&server);
    let declare = |code: &str, source: pb::FigureSource| pb::AnnualFigures {
        name: figures_name(code, 2023),
        employees: amount(30, source),
        ..Default::default()
    };
    let ok = c
        .update_annual_figures(server.enterprise_request(
            &own,
            update_request(
                declare(&own, pb::FigureSource::EnterpriseDeclaration),
                &["employees"],
                true,
                "",
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.employees.unwrap().value, 30);
    for (code, source) in [
        (&own, pb::FigureSource::AuditedStatement),
        (&other, pb::FigureSource::EnterpriseDeclaration),
    ] {
        let s = c
            .update_annual_figures(server.enterprise_request(
                &own,
                update_request(declare(code, source), &["employees"], true, ""),
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{code} {source:?}: {s:?}");
    }
    // An officer records the audited revenue; the enterprise may neither replace nor clear it.
    write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: figures_name(&own, 2023),
            revenue_fen: amount(9 * M, pb::FigureSource::AuditedStatement),
            ..Default::default()
        },
        &["revenue_fen"],
    )
    .await
    .unwrap();
    for figures in [
        pb::AnnualFigures {
            name: figures_name(&own, 2023),
            revenue_fen: amount(M, pb::FigureSource::EnterpriseDeclaration),
            ..Default::default()
        },
        pb::AnnualFigures {
            name: figures_name(&own, 2023),
            ..Default::default()
        },
    ] {
        let s = c
            .update_annual_figures(
                server
                    .enterprise_request(&own, update_request(figures, &["revenue_fen"], true, "")),
            )
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    }
    // Reads: own only; no listing across enterprises.
    c.get_annual_figures(server.enterprise_request(
        &own,
        pb::GetAnnualFiguresRequest {
            name: figures_name(&own, 2023),
        },
    ))
    .await
    .unwrap();
    let s = c
        .get_annual_figures(server.enterprise_request(
            &own,
            pb::GetAnnualFiguresRequest {
                name: figures_name(&other, 2023),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    let listed = c
        .list_annual_figures(server.enterprise_request(
            &own,
            pb::ListAnnualFiguresRequest {
                parent: format!("enterprises/{own}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.annual_figures.len(), 1);
    for parent in ["enterprises/-".to_string(), format!("enterprises/{other}")] {
        let s = c
            .list_annual_figures(server.enterprise_request(
                &own,
                pb::ListAnnualFiguresRequest {
                    parent,
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied);
    }
    server.stop().await;
}

async fn figure_roles_follow_the_role_table(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(9);
    create_enterprise(&server, &code, "2010-05-04").await;
    let figures = pb::AnnualFigures {
        name: figures_name(&code, 2023),
        revenue_fen: amount(M, pb::FigureSource::TaxRecord),
        ..Default::default()
    };
    for role in [Role::Auditor, Role::Service, Role::Expert] {
        let s = write_figures(&server, role, figures.clone(), &["revenue_fen"])
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{role}");
    }
    write_figures(&server, Role::Admin, figures, &["revenue_fen"])
        .await
        .unwrap();
    let mut c = client(&server);
    for role in [Role::Admin, Role::Officer, Role::Auditor, Role::Service] {
        c.get_annual_figures(server.request(
            role,
            pb::GetAnnualFiguresRequest {
                name: figures_name(&code, 2023),
            },
        ))
        .await
        .unwrap();
    }
    let s = c
        .get_annual_figures(server.request(
            Role::Expert,
            pb::GetAnnualFiguresRequest {
                name: figures_name(&code, 2023),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

async fn a_certificate_is_recorded_valid_and_marks_its_holder_certified(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(10);
    let before = create_enterprise(&server, &code, "2010-05-04").await;
    assert!(!before.high_tech_certified);
    let issue = today().pred_opt().unwrap();
    let rid = uuid::Uuid::new_v4().to_string();
    let created = create_certificate(
        &server,
        &code,
        certificate("gr202537000001", &issue.to_string()),
        &rid,
    )
    .await
    .unwrap();
    let name = format!("enterprises/{code}/highTechCertificates/GR202537000001");
    assert_eq!(created.name, name);
    assert_eq!(created.certificate_number, "GR202537000001");
    assert_eq!(created.state, pb::CertificateState::Valid as i32);
    let expiry = NaiveDate::from_ymd_opt(issue.year() + 3, issue.month(), issue.day())
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(issue.year() + 3, 3, 1).unwrap());
    assert_eq!(created.expiry_date, expiry.to_string());
    let years: Vec<i32> = created
        .annual_reports
        .iter()
        .map(|r| r.report_year)
        .collect();
    assert_eq!(years, [issue.year(), issue.year() + 1, issue.year() + 2]);
    assert_eq!(
        created.annual_reports[0].due_date,
        format!("{}-05-31", issue.year() + 1)
    );
    assert!(
        created
            .annual_reports
            .iter()
            .all(|r| r.state == pb::AnnualReportState::Pending as i32)
    );
    assert_eq!(created.missed_report_count, 0);
    assert_eq!(created.revocation_ground, 0);
    assert!(created.revoke_time.is_none());

    // Replay: same answer, nothing done twice.
    let replay = create_certificate(
        &server,
        &code,
        certificate("gr202537000001", &issue.to_string()),
        &rid,
    )
    .await
    .unwrap();
    assert_eq!(replay, created);
    assert_eq!(get_certificate(&server, &name).await, created);

    let after = get_enterprise(&server, &code).await;
    assert!(after.high_tech_certified);
    assert_ne!(after.etag, before.etag);
    assert_ne!(after.update_time, before.update_time);
    // A second certificate leaves the (already true) flag and the enterprise alone.
    create_certificate(
        &server,
        &code,
        certificate("GR202537000002", &issue.to_string()),
        "",
    )
    .await
    .unwrap();
    assert_eq!(get_enterprise(&server, &code).await.etag, after.etag);
    server.stop().await;
}

async fn bad_certificate_requests_get_the_right_status_and_field(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(11);
    create_enterprise(&server, &code, "2010-05-04").await;
    let tomorrow = today().succ_opt().unwrap().to_string();
    let cases: Vec<(pb::HighTechCertificate, &str, &str)> = vec![
        (
            certificate("", "2024-01-01"),
            "high_tech_certificate.certificate_number",
            "REQUIRED",
        ),
        (
            certificate("GR-2024", "2024-01-01"),
            "high_tech_certificate.certificate_number",
            "INVALID_FORMAT",
        ),
        (
            certificate(&"G".repeat(33), "2024-01-01"),
            "high_tech_certificate.certificate_number",
            "INVALID_FORMAT",
        ),
        (
            certificate("GR1", ""),
            "high_tech_certificate.issue_date",
            "REQUIRED",
        ),
        (
            certificate("GR1", "2024-02-30"),
            "high_tech_certificate.issue_date",
            "INVALID_DATE",
        ),
        (
            certificate("GR1", &tomorrow),
            "high_tech_certificate.issue_date",
            "IN_FUTURE",
        ),
        (
            certificate("GR1", "2007-12-31"),
            "high_tech_certificate.issue_date",
            "TOO_EARLY",
        ),
        (
            pb::HighTechCertificate {
                technology_field: 0,
                ..certificate("GR1", "2024-01-01")
            },
            "high_tech_certificate.technology_field",
            "REQUIRED",
        ),
        (
            pb::HighTechCertificate {
                technology_field: 9,
                ..certificate("GR1", "2024-01-01")
            },
            "high_tech_certificate.technology_field",
            "UNKNOWN_ENUM_VALUE",
        ),
    ];
    for (cert, field, reason) in cases {
        let s = create_certificate(&server, &code, cert, "")
            .await
            .unwrap_err();
        assert_violation(&s, field, reason);
    }
    let s = client(&server)
        .create_high_tech_certificate(server.request(
            Role::Officer,
            pb::CreateHighTechCertificateRequest {
                parent: format!("enterprises/{code}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_violation(&s, "high_tech_certificate", "REQUIRED");
    let s = create_certificate(&server, "nonsense", certificate("GR1", "2024-01-01"), "")
        .await
        .unwrap_err();
    assert_eq!(violations(&s)[0].0, "parent");
    let ghost = uscc(97);
    let s = create_certificate(&server, &ghost, certificate("GR1", "2024-01-01"), "")
        .await
        .unwrap_err();
    assert_not_found(&s, ENTERPRISE_TYPE, &format!("enterprises/{ghost}"));

    create_certificate(&server, &code, certificate("GR1", "2024-01-01"), "")
        .await
        .unwrap();
    // Numbers are unique across the registry, not per enterprise.
    let other = uscc(12);
    create_enterprise(&server, &other, "2010-05-04").await;
    let s = create_certificate(&server, &other, certificate("GR1", "2024-01-01"), "")
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::AlreadyExists, "{s:?}");
    // An enterprise that is not active gets no certificate.
    execute(
        &server,
        &format!("UPDATE enterprise SET state = 2 WHERE uscc = '{other}'"),
    )
    .await;
    let s = create_certificate(&server, &other, certificate("GR2", "2024-01-01"), "")
        .await
        .unwrap_err();
    assert_precondition(&s, "ENTERPRISE_NOT_ACTIVE");
    // Only admin and officer record certificates.
    for role in [Role::Auditor, Role::Service, Role::Enterprise, Role::Expert] {
        let s = client(&server)
            .create_high_tech_certificate(server.request(
                role,
                pb::CreateHighTechCertificateRequest {
                    parent: format!("enterprises/{code}"),
                    high_tech_certificate: Some(certificate("GR3", "2024-01-01")),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{role}");
    }
    // Gets: missing, wrong holder, malformed.
    let mut c = client(&server);
    for (name, code_expected) in [
        (
            format!("enterprises/{code}/highTechCertificates/GR404"),
            Code::NotFound,
        ),
        (
            format!("enterprises/{other}/highTechCertificates/GR1"),
            Code::NotFound,
        ),
        (
            format!("enterprises/{code}/highTechCertificates/gr1"),
            Code::InvalidArgument,
        ),
        (
            format!("enterprises/{code}/certs/GR1"),
            Code::InvalidArgument,
        ),
    ] {
        let s = c
            .get_high_tech_certificate(server.request(
                Role::Officer,
                pb::GetHighTechCertificateRequest { name: name.clone() },
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), code_expected, "{name}: {s:?}");
        if code_expected == Code::NotFound {
            assert_not_found(&s, CERTIFICATE_TYPE, &name);
        }
    }
    server.stop().await;
}

async fn annual_reports_are_filed_once_within_validity_and_late_ones_stay_missed(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(13);
    create_enterprise(&server, &code, "2010-05-04").await;
    // Issued a year and a half ago, so the issue year's report is due (and, from 1 June, past).
    let t = today();
    let issue = NaiveDate::from_ymd_opt(t.year() - 1, 1, 15).unwrap();
    let cert = create_certificate(
        &server,
        &code,
        certificate("GR2001", &issue.to_string()),
        "",
    )
    .await
    .unwrap();
    let name = cert.name.clone();
    let first_year = issue.year();
    let due = d(&format!("{}-05-31", first_year + 1));

    // An officer records a paper filing on the due date: on time.
    let filed = file(&server, Role::Officer, &name, first_year, &due.to_string())
        .await
        .unwrap();
    let r = &filed.annual_reports[0];
    assert_eq!(r.state, pb::AnnualReportState::Filed as i32);
    assert_eq!(r.filed_date, due.to_string());
    assert_eq!(r.filed_by, "test-officer");
    assert_ne!(filed.etag, cert.etag);
    // Filed once only.
    let s = file(&server, Role::Admin, &name, first_year, "")
        .await
        .unwrap_err();
    assert_precondition(&s, "REPORT_ALREADY_FILED");
    // Years outside validity, years not yet ended, dates in the future.
    for year in [first_year - 1, first_year + 3] {
        let s = file(&server, Role::Officer, &name, year, "")
            .await
            .unwrap_err();
        assert_violation(&s, "report_year", "OUTSIDE_VALIDITY");
    }
    let s = file(&server, Role::Officer, &name, 0, "")
        .await
        .unwrap_err();
    assert_violation(&s, "report_year", "REQUIRED");
    let s = file(&server, Role::Officer, &name, first_year + 1, "")
        .await
        .unwrap_err();
    assert_violation(&s, "report_year", "YEAR_NOT_ENDED");
    let s = file(
        &server,
        Role::Officer,
        &name,
        first_year + 1,
        &t.succ_opt().unwrap().to_string(),
    )
    .await
    .unwrap_err();
    assert_violation(&s, "filed_date", "IN_FUTURE");
    let s = file(&server, Role::Officer, &name, first_year, "31/05/2024")
        .await
        .unwrap_err();
    assert_violation(&s, "filed_date", "INVALID_DATE");
    // Stale etag.
    let s = client(&server)
        .file_annual_report(server.request(
            Role::Officer,
            pb::FileAnnualReportRequest {
                name: name.clone(),
                report_year: first_year + 1,
                etag: cert.etag.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");

    // A late filing (the day after the due date) is recorded but stays MISSED.
    let other = uscc(14);
    create_enterprise(&server, &other, "2010-05-04").await;
    let late_cert = create_certificate(
        &server,
        &other,
        certificate("GR2002", &issue.to_string()),
        "",
    )
    .await
    .unwrap();
    let late = file(
        &server,
        Role::Officer,
        &late_cert.name,
        first_year,
        &due.succ_opt().unwrap().to_string(),
    )
    .await;
    if t > due {
        let late = late.unwrap();
        assert_eq!(
            late.annual_reports[0].state,
            pb::AnnualReportState::Missed as i32
        );
        assert_eq!(
            late.annual_reports[0].filed_date,
            due.succ_opt().unwrap().to_string()
        );
        assert_eq!(late.missed_report_count, 1);
        assert_eq!(late.state, pb::CertificateState::Valid as i32);
    } else {
        // Before the due date has passed, a filing dated after it is in the future.
        assert_violation(&late.unwrap_err(), "filed_date", "IN_FUTURE");
    }
    server.stop().await;
}

async fn revoking_a_certificate_clears_certified_and_only_valid_ones_can_be_revoked(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(15);
    create_enterprise(&server, &code, "2010-05-04").await;
    let cert = create_certificate(&server, &code, certificate("GR3001", "2025-03-01"), "")
        .await
        .unwrap();
    let certified = get_enterprise(&server, &code).await;
    assert!(certified.high_tech_certified);

    for (ground, reason, field, why) in [
        (pb::RevocationGround::Unspecified, "x", "ground", "REQUIRED"),
        (
            pb::RevocationGround::MissedAnnualReports,
            "x",
            "ground",
            "SERVER_ONLY_GROUND",
        ),
        (pb::RevocationGround::Fraud, "  ", "reason", "REQUIRED"),
    ] {
        let s = revoke(&server, &cert.name, ground, reason, "")
            .await
            .unwrap_err();
        assert_violation(&s, field, why);
    }
    let long = "字".repeat(2001);
    let s = revoke(&server, &cert.name, pb::RevocationGround::Other, &long, "")
        .await
        .unwrap_err();
    assert_violation(&s, "reason", "TOO_LONG");
    let s = revoke(
        &server,
        &cert.name,
        pb::RevocationGround::Fraud,
        "鲁科字〔2026〕1号",
        "stale",
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");

    let revoked = revoke(
        &server,
        &cert.name,
        pb::RevocationGround::Fraud,
        "鲁科字〔2026〕1号",
        &cert.etag,
    )
    .await
    .unwrap();
    assert_eq!(revoked.state, pb::CertificateState::Revoked as i32);
    assert_eq!(
        revoked.revocation_ground,
        pb::RevocationGround::Fraud as i32
    );
    assert_eq!(revoked.revocation_reason, "鲁科字〔2026〕1号");
    assert!(revoked.revoke_time.is_some());
    let after = get_enterprise(&server, &code).await;
    assert!(!after.high_tech_certified);
    assert_ne!(after.etag, certified.etag);
    // Not twice; no filing on a revoked certificate.
    let s = revoke(
        &server,
        &cert.name,
        pb::RevocationGround::Other,
        "again",
        "",
    )
    .await
    .unwrap_err();
    assert_precondition(&s, "CERTIFICATE_NOT_VALID");
    let s = file(&server, Role::Officer, &cert.name, 2025, "")
        .await
        .unwrap_err();
    assert_precondition(&s, "CERTIFICATE_REVOKED");
    // Nor can one already revoked for missed reports (no filings, issued long ago).
    let old = create_certificate(&server, &code, certificate("GR3002", "2019-01-01"), "")
        .await
        .unwrap();
    assert_eq!(old.state, pb::CertificateState::Revoked as i32);
    assert!(!get_enterprise(&server, &code).await.high_tech_certified);
    let s = revoke(&server, &old.name, pb::RevocationGround::Other, "x", "")
        .await
        .unwrap_err();
    assert_precondition(&s, "CERTIFICATE_NOT_VALID");
    let s = client(&server)
        .revoke_high_tech_certificate(server.request(
            Role::Enterprise,
            pb::RevokeHighTechCertificateRequest {
                name: old.name.clone(),
                ground: 1,
                reason: "x".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    server.stop().await;
}

/// An issue date whose first two reports are past due while the certificate is not yet expired.
fn issue_with_two_past_dues(t: NaiveDate) -> NaiveDate {
    let this_years_due = NaiveDate::from_ymd_opt(t.year(), 5, 31).unwrap();
    let issue_year = if t > this_years_due {
        t.year() - 2
    } else {
        t.year() - 3
    };
    NaiveDate::from_ymd_opt(issue_year, 12, 31).unwrap()
}

async fn two_missed_reports_read_revoked_and_old_certificates_read_expired_without_a_write(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(16);
    create_enterprise(&server, &code, "2010-05-04").await;
    let t = today();
    let issue = issue_with_two_past_dues(t);
    let cert = create_certificate(
        &server,
        &code,
        certificate("GR4001", &issue.to_string()),
        "",
    )
    .await
    .unwrap();
    // Two reports past due and never filed: REVOKED from the day after the second due date.
    assert_eq!(cert.state, pb::CertificateState::Revoked as i32);
    assert_eq!(cert.missed_report_count, 2);
    assert_eq!(
        cert.revocation_ground,
        pb::RevocationGround::MissedAnnualReports as i32
    );
    assert!(cert.revocation_reason.contains("two annual reports missed"));
    let second_due = d(&format!("{}-05-31", issue.year() + 2));
    let effective = chrono::TimeZone::from_local_datetime(
        &chrono_tz::Asia::Shanghai,
        &second_due.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap(),
    )
    .unwrap();
    assert_eq!(
        cert.revoke_time.as_ref().unwrap().seconds,
        effective.timestamp()
    );
    // The holder never became certified (the certificate was already revoked when recorded).
    assert!(!get_enterprise(&server, &code).await.high_tech_certified);
    let s = file(&server, Role::Officer, &cert.name, issue.year(), "")
        .await
        .unwrap_err();
    assert_precondition(&s, "CERTIFICATE_REVOKED");

    // A late filing does not undo a miss: still refused.
    let s = file(
        &server,
        Role::Officer,
        &cert.name,
        issue.year() + 1,
        &t.to_string(),
    )
    .await
    .unwrap_err();
    assert_precondition(&s, "CERTIFICATE_REVOKED");

    // The same certificate whose first report was in fact filed on time (a paper filing an
    // officer records afterwards) has one miss and was never revoked: it reads VALID again and
    // its holder is certified.
    let other = uscc(17);
    create_enterprise(&server, &other, "2010-05-04").await;
    let kept = create_certificate(
        &server,
        &other,
        certificate("GR4002", &issue.to_string()),
        "",
    )
    .await
    .unwrap();
    assert_eq!(kept.state, pb::CertificateState::Revoked as i32);
    assert!(!get_enterprise(&server, &other).await.high_tech_certified);
    let kept = file(
        &server,
        Role::Officer,
        &kept.name,
        issue.year(),
        &format!("{}-05-01", issue.year() + 1),
    )
    .await
    .unwrap();
    assert_eq!(kept.state, pb::CertificateState::Valid as i32);
    assert_eq!(kept.missed_report_count, 1);
    assert_eq!(
        kept.annual_reports[0].state,
        pb::AnnualReportState::Filed as i32
    );
    assert_eq!(kept.revocation_ground, 0);
    assert!(get_enterprise(&server, &other).await.high_tech_certified);
    // The list filter asks the certificates too, not a stored flag.
    for (filter, expected) in [
        ("high_tech_certified = true", vec![other.clone()]),
        ("high_tech_certified = false", vec![code.clone()]),
    ] {
        let listed: Vec<String> = client(&server)
            .list_enterprises(server.request(
                Role::Auditor,
                pb::ListEnterprisesRequest {
                    filter: filter.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .enterprises
            .into_iter()
            .map(|e| e.uscc)
            .collect();
        assert_eq!(listed, expected, "{filter}");
    }

    // Issued 2020-06-01, expired 2023-06-01. With no filings, 2020 and 2021 were missed by
    // 2022-06-01, before expiry: revoked, not merely expired.
    let old = create_certificate(&server, &other, certificate("GR4003", "2020-06-01"), "")
        .await
        .unwrap();
    assert_eq!(old.expiry_date, "2023-06-01");
    assert_eq!(old.state, pb::CertificateState::Revoked as i32);
    // With its first report recorded as filed on time, the second miss (from 2023-06-01) falls
    // on the expiry date: EXPIRED, with two misses and no revocation.
    let old = file(&server, Role::Officer, &old.name, 2020, "2021-03-01")
        .await
        .unwrap();
    assert_eq!(old.state, pb::CertificateState::Expired as i32);
    assert_eq!(old.missed_report_count, 2);
    assert_eq!(old.revocation_ground, 0);
    assert!(old.revoke_time.is_none());
    assert_eq!(get_certificate(&server, &old.name).await, old);

    // State filters agree with what each certificate reads.
    assert_eq!(
        list_certificates(
            &server,
            "enterprises/-",
            "state = CERTIFICATE_STATE_REVOKED",
            ""
        )
        .await,
        ["GR4001"]
    );
    assert_eq!(
        list_certificates(
            &server,
            "enterprises/-",
            "state = CERTIFICATE_STATE_VALID",
            ""
        )
        .await,
        ["GR4002"]
    );
    assert_eq!(
        list_certificates(
            &server,
            "enterprises/-",
            "state = CERTIFICATE_STATE_EXPIRED",
            ""
        )
        .await,
        ["GR4003"]
    );
    assert_eq!(
        list_certificates(&server, "enterprises/-", "missed_report_count >= 2", "").await,
        ["GR4003", "GR4001"]
    );
    assert_eq!(
        list_certificates(&server, "enterprises/-", "missed_report_count = 1", "").await,
        ["GR4002"]
    );
    server.stop().await;
}

async fn certificates_list_with_filters_orders_and_pages(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (a, b) = (uscc(18), uscc(19));
    create_enterprise(&server, &a, "2010-05-04").await;
    create_enterprise(&server, &b, "2010-05-04").await;
    let recent = today().pred_opt().unwrap();
    for (code, number, issue, field) in [
        (&a, "GR5001", "2024-03-01", cpb::HighTechField::NewMaterials),
        (&a, "GR5002", "2016-03-01", cpb::HighTechField::NewMaterials),
        (&b, "GR5003", "2024-03-01", cpb::HighTechField::Aerospace),
        (&b, "GR5004", "2018-07-01", cpb::HighTechField::NewMaterials),
        (
            &a,
            "GR5005",
            &recent.to_string(),
            cpb::HighTechField::NewMaterials,
        ),
    ] {
        create_certificate(
            &server,
            code,
            pb::HighTechCertificate {
                technology_field: field as i32,
                ..certificate(number, issue)
            },
            "",
        )
        .await
        .unwrap();
    }
    let all = list_certificates(&server, "enterprises/-", "", "").await;
    let mut at_2024 = if a < b {
        vec!["GR5001", "GR5003"]
    } else {
        vec!["GR5003", "GR5001"]
    };
    let mut expected = vec!["GR5002", "GR5004"];
    expected.append(&mut at_2024);
    expected.push("GR5005");
    assert_eq!(all, expected);
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(
        list_certificates(&server, "enterprises/-", "", "issue_date desc").await,
        reversed
    );
    assert_eq!(
        list_certificates(&server, &format!("enterprises/{a}"), "", "expiry_date").await,
        ["GR5002", "GR5001", "GR5005"]
    );
    assert_eq!(
        list_certificates(
            &server,
            "enterprises/-",
            "technology_field = HIGH_TECH_FIELD_NEW_MATERIALS AND issue_date >= \"2018-01-01\"",
            ""
        )
        .await,
        ["GR5004", "GR5001", "GR5005"]
    );
    assert_eq!(
        list_certificates(&server, "enterprises/-", "expiry_date < \"2022-01-01\"", "").await,
        ["GR5002", "GR5004"]
    );
    let mut c = client(&server);
    for (filter, order_by) in [
        ("state = VALID", ""),
        ("issue_date >= 2024", ""),
        ("number = GR1", ""),
        ("missed_report_count : 1", ""),
        ("", "number"),
    ] {
        let s = c
            .list_high_tech_certificates(server.request(
                Role::Officer,
                pb::ListHighTechCertificatesRequest {
                    parent: "enterprises/-".into(),
                    filter: filter.into(),
                    order_by: order_by.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{filter} {order_by}");
    }
    server.stop().await;
}

async fn enterprise_tokens_see_and_file_only_their_own_certificates(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (own, other) = (uscc(20), uscc(21));
    create_enterprise(&server, &own, "2010-05-04").await;
    create_enterprise(&server, &other, "2010-05-04").await;
    let t = today();
    let issue = NaiveDate::from_ymd_opt(t.year() - 1, 6, 1).unwrap();
    let mine = create_certificate(&server, &own, certificate("GR6001", &issue.to_string()), "")
        .await
        .unwrap();
    let theirs = create_certificate(
        &server,
        &other,
        certificate("GR6002", &issue.to_string()),
        "",
    )
    .await
    .unwrap();
    let mut c = client(&server);
    c.get_high_tech_certificate(server.enterprise_request(
        &own,
        pb::GetHighTechCertificateRequest {
            name: mine.name.clone(),
        },
    ))
    .await
    .unwrap();
    let s = c
        .get_high_tech_certificate(server.enterprise_request(
            &own,
            pb::GetHighTechCertificateRequest {
                name: theirs.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    let listed = c
        .list_high_tech_certificates(server.enterprise_request(
            &own,
            pb::ListHighTechCertificatesRequest {
                parent: format!("enterprises/{own}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.high_tech_certificates.len(), 1);
    let s = c
        .list_high_tech_certificates(server.enterprise_request(
            &own,
            pb::ListHighTechCertificatesRequest {
                parent: "enterprises/-".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    // The enterprise files its own report (today), never someone else's, never with a date.
    let filed = c
        .file_annual_report(server.enterprise_request(
            &own,
            pb::FileAnnualReportRequest {
                name: mine.name.clone(),
                report_year: issue.year(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filed.annual_reports[0].filed_date, t.to_string());
    assert_eq!(
        filed.annual_reports[0].filed_by,
        format!("enterprise-{own}")
    );
    for (name, filed_date) in [(&theirs.name, ""), (&mine.name, "2025-01-02")] {
        let s = c
            .file_annual_report(server.enterprise_request(
                &own,
                pb::FileAnnualReportRequest {
                    name: name.clone(),
                    report_year: issue.year(),
                    filed_date: filed_date.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{name} {filed_date}");
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Eligibility
// ---------------------------------------------------------------------------------------------

async fn record_years(server: &TestServer, code: &str, revenue: i64, rd: i64) {
    for year in 2023..=2025 {
        write_figures(
            server,
            Role::Officer,
            qualifying_year(code, year, revenue, rd),
            &ALL_FIGURES,
        )
        .await
        .unwrap();
    }
}

async fn design_pair_4_9_percent_at_40m_fails_and_3_0_percent_at_300m_passes(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (small, large) = (uscc(22), uscc(23));
    create_enterprise(&server, &small, "2015-04-01").await;
    create_enterprise(&server, &large, "2015-04-01").await;
    // 4.9% of 40 M yuan every year; 3.0% of 300 M yuan every year.
    record_years(&server, &small, 40 * M, 196 * M / 100).await;
    record_years(&server, &large, 300 * M, 9 * M).await;

    let low = evaluate(&server, &small, 2025, "2026-06-01").await.unwrap();
    assert_eq!(low.enterprise, format!("enterprises/{small}"));
    assert_eq!(
        (low.fiscal_year, low.application_date.as_str()),
        (2025, "2026-06-01")
    );
    assert_eq!(low.overall, pb::CriterionOutcome::NotMet as i32);
    assert!(low.rules_source.contains("国科发火〔2016〕32号"));
    assert!(low.evaluate_time.is_some());
    assert_eq!(low.criteria.len(), 9);
    let rd = &low.criteria[4];
    assert_eq!(
        rd.criterion,
        pb::EligibilityCriterion::RdExpenseRatio as i32
    );
    assert_eq!(rd.outcome, pb::CriterionOutcome::NotMet as i32);
    assert_eq!(rd.threshold_basis_points, 500);
    assert_eq!(rd.observed_basis_points, 490);
    assert_eq!(rd.observed_numerator, 3 * 196 * M / 100);
    assert_eq!(rd.observed_denominator, 120 * M);
    assert_eq!(
        rd.threshold,
        ">= 5% (revenue 40,000,000 yuan <= 50,000,000 yuan band)"
    );
    assert!(
        rd.explanation
            .contains("R&D 4.90% of revenue over 2023-2025 is below the 5% required"),
        "{}",
        rd.explanation
    );
    assert_eq!(rd.figures_used.len(), 6);
    let used = rd
        .figures_used
        .iter()
        .find(|f| f.figure == format!("enterprises/{small}/annualFigures/2023#rd_expense_fen"))
        .expect("2023 R&D used");
    assert_eq!(used.year, 2023);
    assert_eq!(used.unit, "fen");
    assert_eq!(used.value, (196 * M / 100).to_string());
    assert_eq!(used.source, "AUDITED_STATEMENT 鲁华审字〔2024〕第0123号");
    // Every other criterion is met: the R&D ratio alone decides.
    for (i, r) in low.criteria.iter().enumerate() {
        assert_eq!(r.criterion, i as i32 + 1);
        if i != 4 {
            assert_eq!(r.outcome, pb::CriterionOutcome::Met as i32, "{r:?}");
        }
    }

    let high = evaluate(&server, &large, 2025, "2026-06-01").await.unwrap();
    let rd = &high.criteria[4];
    assert_eq!(rd.outcome, pb::CriterionOutcome::Met as i32, "{rd:?}");
    assert_eq!(rd.threshold_basis_points, 300);
    assert_eq!(rd.observed_basis_points, 300);
    assert_eq!(
        rd.threshold,
        ">= 3% (revenue 300,000,000 yuan > 200,000,000 yuan band)"
    );
    assert_eq!(high.overall, pb::CriterionOutcome::Met as i32);
    // Reads only: nothing audited.
    assert!(
        audit_resources(&server, &format!("enterprises/{large}"))
            .await
            .len()
            == 1
    );
    server.stop().await;
}

async fn missing_figures_cannot_decide_and_name_the_missing_data(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(24);
    create_enterprise(&server, &code, "2015-04-01").await;
    // Only 2024 and 2025 recorded, and 2025 without employees.
    for year in 2024..=2025 {
        write_figures(
            &server,
            Role::Officer,
            qualifying_year(&code, year, 40 * M, 4 * M),
            &ALL_FIGURES,
        )
        .await
        .unwrap();
    }
    write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: figures_name(&code, 2025),
            st_staff: None,
            ..Default::default()
        },
        &["employees", "st_staff"],
    )
    .await
    .unwrap();
    let e = evaluate(&server, &code, 2025, "2026-06-01").await.unwrap();
    assert_eq!(e.overall, pb::CriterionOutcome::CannotDecide as i32);
    let rd = &e.criteria[4];
    assert_eq!(rd.outcome, pb::CriterionOutcome::CannotDecide as i32);
    assert_eq!(
        rd.missing_data,
        [
            format!("enterprises/{code}/annualFigures/2023#revenue_fen"),
            format!("enterprises/{code}/annualFigures/2023#rd_expense_fen"),
        ]
    );
    let staff = &e.criteria[3];
    assert_eq!(staff.outcome, pb::CriterionOutcome::CannotDecide as i32);
    assert_eq!(staff.missing_data.len(), 2);
    assert_eq!(e.criteria[0].outcome, pb::CriterionOutcome::Met as i32);
    // Defaults: the application date is today and the fiscal year the one before it.
    let d = evaluate(&server, &code, 0, "").await.unwrap();
    assert_eq!(d.application_date, today().to_string());
    assert_eq!(d.fiscal_year, today().year() - 1);
    server.stop().await;
}

async fn eligibility_requests_are_validated_and_scoped(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (own, other) = (uscc(25), uscc(26));
    create_enterprise(&server, &own, "2026-01-10").await;
    create_enterprise(&server, &other, "2015-04-01").await;
    // Registered less than a year before the application date.
    let e = evaluate(&server, &own, 2025, "2026-06-01").await.unwrap();
    assert_eq!(e.criteria[0].outcome, pb::CriterionOutcome::NotMet as i32);
    assert_eq!(e.overall, pb::CriterionOutcome::NotMet as i32);
    for (fy, date, field) in [
        (2026, "2026-06-01", "fiscal_year"),
        (1980, "2026-06-01", "fiscal_year"),
        (2025, "2026/06/01", "application_date"),
        (2025, "1985-01-01", "application_date"),
    ] {
        let s = evaluate(&server, &own, fy, date).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{fy} {date}");
        assert_eq!(violations(&s)[0].0, field, "{fy} {date}");
    }
    let ghost = uscc(96);
    let s = evaluate(&server, &ghost, 2025, "2026-06-01")
        .await
        .unwrap_err();
    assert_not_found(&s, ENTERPRISE_TYPE, &format!("enterprises/{ghost}"));
    let mut c = client(&server);
    let request = |code: &str| pb::EvaluateEligibilityRequest {
        name: format!("enterprises/{code}"),
        fiscal_year: 2025,
        application_date: "2026-06-01".into(),
    };
    c.evaluate_eligibility(server.enterprise_request(&own, request(&own)))
        .await
        .unwrap();
    let s = c
        .evaluate_eligibility(server.enterprise_request(&own, request(&other)))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    for role in [Role::Admin, Role::Auditor, Role::Service] {
        c.evaluate_eligibility(server.request(role, request(&other)))
            .await
            .unwrap();
    }
    let s = c
        .evaluate_eligibility(server.request(Role::Expert, request(&other)))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

async fn every_mutation_here_is_audited_and_the_chain_verifies(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = uscc(27);
    create_enterprise(&server, &code, "2010-05-04").await;
    write_figures(
        &server,
        Role::Officer,
        qualifying_year(&code, 2024, 40 * M, 2 * M),
        &["revenue_fen", "rd_expense_fen"],
    )
    .await
    .unwrap();
    write_figures(
        &server,
        Role::Officer,
        qualifying_year(&code, 2024, 40 * M, 2 * M),
        &["employees"],
    )
    .await
    .unwrap();
    let figure_events = audit_resources(&server, &figures_name(&code, 2024)).await;
    assert_eq!(figure_events.len(), 2);
    assert!(
        figure_events[0]
            .method
            .ends_with("EnterpriseRegistryService/UpdateAnnualFigures")
    );
    assert!(figure_events[1].state_json.contains("employees"));

    let t = today();
    let issue = NaiveDate::from_ymd_opt(t.year() - 1, 6, 1).unwrap();
    let cert = create_certificate(
        &server,
        &code,
        certificate("GR7001", &issue.to_string()),
        "",
    )
    .await
    .unwrap();
    file(&server, Role::Officer, &cert.name, issue.year(), "")
        .await
        .unwrap();
    revoke(
        &server,
        &cert.name,
        pb::RevocationGround::MajorIncident,
        "重大安全事故",
        "",
    )
    .await
    .unwrap();
    let cert_events = audit_resources(&server, &cert.name).await;
    assert_eq!(cert_events.len(), 3);
    assert!(cert_events[2].state_json.contains("MAJOR_INCIDENT"));
    // The enterprise: created, certified, uncertified.
    let enterprise_events = audit_resources(&server, &format!("enterprises/{code}")).await;
    assert_eq!(enterprise_events.len(), 3);
    assert!(
        enterprise_events[1]
            .state_json
            .contains("\"high_tech_certified\":true")
    );
    assert!(
        enterprise_events[2]
            .state_json
            .contains("\"high_tech_certified\":false")
    );
    assert!(chain_intact(&server).await);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Shared reads (GetEnterprise's read path under concurrency)
// ---------------------------------------------------------------------------------------------

/// Many concurrent reads — the same codes several times over, and codes never registered — each
/// get their own enterprise with its own certification, whether they were answered alone or
/// together with others; and concurrent callers do share statements. Checked twice: through
/// GetEnterprise over gRPC, and on the store's shared read itself (over a second pool to the
/// same database), where the statements run can be counted.
async fn concurrent_reads_share_statements_and_each_caller_gets_its_own_answer(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let codes: Vec<String> = (0..24).map(|n| uscc(500 + n)).collect();
    for code in &codes {
        create_enterprise(&server, code, "2012-03-04").await;
    }
    let issue = today().pred_opt().unwrap().to_string();
    for (i, code) in codes.iter().enumerate().step_by(3) {
        let number = format!("GR2025370{:05}", 500 + i);
        create_certificate(&server, code, certificate(&number, &issue), "")
            .await
            .unwrap();
    }
    let certified = |code: &str| {
        codes
            .iter()
            .position(|c| c == code)
            .is_some_and(|i| i % 3 == 0)
    };
    let unknown: Vec<String> = (0..4).map(|n| uscc(900 + n)).collect();
    // Each code asked 8 times, unknown codes among them, in an order that mixes them.
    let asked: Vec<String> = (0..8)
        .flat_map(|round| {
            codes
                .iter()
                .chain(&unknown)
                .cycle()
                .skip(round * 5)
                .take(codes.len() + unknown.len())
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();

    // Through the service.
    let calls = asked.iter().map(|code| {
        let mut client = client(&server);
        let request = server.request(
            Role::Officer,
            pb::GetEnterpriseRequest {
                name: format!("enterprises/{code}"),
            },
        );
        async move { (code, client.get_enterprise(request).await) }
    });
    for (code, answer) in futures::future::join_all(calls).await {
        if unknown.contains(code) {
            assert_not_found(
                &answer.unwrap_err(),
                ENTERPRISE_TYPE,
                &format!("enterprises/{code}"),
            );
        } else {
            let enterprise = answer
                .unwrap_or_else(|s| panic!("{code}: {s:?}"))
                .into_inner();
            assert_eq!(&enterprise.uscc, code);
            assert_eq!(enterprise.display_name, format!("山东绿色科技{code}"));
            assert_eq!(enterprise.high_tech_certified, certified(code), "{code}");
        }
    }

    // The store's shared read, counted.
    let reads = qilu_registry::store::enterprise::certified_reads(
        &qilu_common::point_read::PointReads::new(&server.db),
    );
    let reads = &reads;
    let calls = asked.iter().map(|code| async move {
        let found =
            qilu_registry::store::enterprise::get_with_certification(reads, code, today()).await;
        (code, found)
    });
    for (code, found) in futures::future::join_all(calls).await {
        let found = found.unwrap_or_else(|e| panic!("{code}: {e}"));
        if unknown.contains(code) {
            assert!(found.is_none(), "{code} is not registered");
        } else {
            let found = found.unwrap_or_else(|| panic!("{code} not found"));
            assert_eq!(&found.model.uscc, code);
            assert_eq!(found.certified, certified(code), "{code}");
        }
    }
    let sharing = reads.sharing();
    assert_eq!(sharing.answered, asked.len() as u64);
    assert!(
        sharing.statements < sharing.answered / 2,
        "{} concurrent callers should share statements: {sharing:?}",
        asked.len()
    );
    // Alone, a caller is answered by a statement of its own at once.
    let before = reads.sharing();
    let alone = qilu_registry::store::enterprise::get_with_certification(reads, &codes[0], today())
        .await
        .unwrap()
        .unwrap();
    assert!(alone.certified);
    assert_eq!(
        reads.sharing(),
        qilu_common::point_read::Sharing {
            statements: before.statements + 1,
            answered: before.answered + 1,
        }
    );
}

async fn the_registry_clock_sets_today_for_certificate_states_and_high_tech_certified(
    backend: Backend,
) {
    let Some((server, set_today)) = start_on(backend, d("2024-03-16")).await else {
        return;
    };
    let code = uscc(90);
    create_enterprise(&server, &code, "2010-05-04").await;
    // "Today" is the clock's, not the machine's: a day after it is still in the future.
    let early = create_certificate(
        &server,
        &code,
        certificate("GR202437009001", "2024-03-17"),
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(early.code(), Code::InvalidArgument, "{early:?}");
    assert_violation(&early, "high_tech_certificate.issue_date", "IN_FUTURE");

    let created = create_certificate(
        &server,
        &code,
        certificate("GR202437009001", "2024-03-15"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(created.state, pb::CertificateState::Valid as i32);
    assert_eq!(created.expiry_date, "2027-03-15");
    assert!(get_enterprise(&server, &code).await.high_tech_certified);

    // The reports on 2024 and 2025, each filed in the spring after its year, keep it valid.
    for (year, on) in [(2024, "2025-03-01"), (2025, "2026-03-01")] {
        set_today(d(on));
        let filed = file(&server, Role::Officer, &created.name, year, "")
            .await
            .unwrap();
        let report = filed
            .annual_reports
            .iter()
            .find(|r| r.report_year == year)
            .unwrap();
        assert_eq!(report.state, pb::AnnualReportState::Filed as i32, "{year}");
        assert_eq!(report.filed_date, on);
    }

    set_today(d("2027-03-14"));
    let last_day = get_certificate(&server, &created.name).await;
    assert_eq!(last_day.state, pb::CertificateState::Valid as i32);
    assert_eq!(last_day.missed_report_count, 0);
    assert!(get_enterprise(&server, &code).await.high_tech_certified);
    let parent = format!("enterprises/{code}");
    let valid = "state = CERTIFICATE_STATE_VALID";
    let expired_filter = "state = CERTIFICATE_STATE_EXPIRED";
    assert_eq!(
        list_certificates(&server, &parent, valid, "").await,
        ["GR202437009001"]
    );
    assert!(
        list_certificates(&server, &parent, expired_filter, "")
            .await
            .is_empty()
    );

    // Three years after issue it has expired, with no write in between.
    set_today(d("2027-03-15"));
    let expired = get_certificate(&server, &created.name).await;
    assert_eq!(expired.state, pb::CertificateState::Expired as i32);
    assert_eq!(expired.etag, last_day.etag);
    assert!(!get_enterprise(&server, &code).await.high_tech_certified);
    assert!(
        list_certificates(&server, &parent, valid, "")
            .await
            .is_empty()
    );
    assert_eq!(
        list_certificates(&server, &parent, expired_filter, "").await,
        ["GR202437009001"]
    );
    server.stop().await;
}
