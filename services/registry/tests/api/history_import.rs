//! Migrating a province's history: certificates imported with their annual-report history keep
//! the state that history gives them (an on-time history stays VALID and certifies its holder,
//! two missing reports revoke), imports are idempotent by request id and report UNCHANGED on a
//! second run, rejected rows carry their field problems, annual figures import as created,
//! updated or unchanged, and an officer backfills a historical certificate's on-time reports one
//! at a time. Both backends, "today" fixed at 2026-11-20.

use chrono::NaiveDate;
use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use tonic::Code;

use crate::support::{client, ent, get_enterprise, shandong, start_on, violations};

on_both_backends!(
    an_imported_history_decides_each_certificate_state_and_its_holders_flag,
    a_certificate_import_replays_by_request_id_and_is_unchanged_when_run_again,
    rejected_certificate_rows_carry_their_field_problems,
    figures_import_creates_updates_and_leaves_unchanged,
    an_officer_backfills_on_time_reports_of_a_historical_certificate,
);

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

async fn create(server: &TestServer, code: &str, name: &str) {
    client(server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    uscc: code.into(),
                    display_name: name.into(),
                    established_date: "2012-03-04".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
}

/// A row for `code`'s certificate `number` issued on `issue`, with `(year, filed)` reports.
fn row(
    n: i64,
    code: &str,
    number: &str,
    issue: &str,
    reports: &[(i32, &str)],
) -> pb::ImportHighTechCertificateRow {
    pb::ImportHighTechCertificateRow {
        row_number: n,
        enterprise: ent(code),
        high_tech_certificate: Some(pb::HighTechCertificate {
            certificate_number: number.into(),
            issue_date: issue.into(),
            issuing_authority: "山东省高新技术企业认定管理机构".into(),
            technology_field: cpb::HighTechField::NewMaterials as i32,
            ..Default::default()
        }),
        annual_reports: reports
            .iter()
            .map(|(year, filed)| pb::ImportedAnnualReport {
                report_year: *year,
                filed_date: (*filed).into(),
            })
            .collect(),
    }
}

async fn import(
    server: &TestServer,
    rows: Vec<pb::ImportHighTechCertificateRow>,
    request_id: &str,
) -> pb::ImportHighTechCertificatesResponse {
    // Two messages, to show a run spans the stream.
    let half = rows.len() / 2;
    let mut rows = rows;
    let second = rows.split_off(half);
    let messages = vec![
        pb::ImportHighTechCertificatesRequest {
            rows,
            request_id: request_id.into(),
            ..Default::default()
        },
        pb::ImportHighTechCertificatesRequest {
            rows: second,
            ..Default::default()
        },
    ];
    client(server)
        .import_high_tech_certificates(server.request(Role::Officer, tokio_stream::iter(messages)))
        .await
        .unwrap()
        .into_inner()
}

async fn certificate(server: &TestServer, code: &str, number: &str) -> pb::HighTechCertificate {
    client(server)
        .get_high_tech_certificate(server.request(
            Role::Officer,
            pb::GetHighTechCertificateRequest {
                name: format!("enterprises/{code}/highTechCertificates/{number}"),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

fn outcomes(results: &[pb::ImportRowResult]) -> Vec<(i64, pb::ImportRowOutcome)> {
    results
        .iter()
        .map(|r| (r.row_number, r.outcome()))
        .collect()
}

async fn an_imported_history_decides_each_certificate_state_and_its_holders_flag(backend: Backend) {
    let Some((server, _set)) = start_on(backend, today()).await else {
        return;
    };
    let (on_time, one_missing, two_missing) = (
        shandong("3701", 801),
        shandong("3702", 802),
        shandong("3703", 803),
    );
    create(&server, &on_time, "按时年报企业").await;
    create(&server, &one_missing, "缺一份年报企业").await;
    create(&server, &two_missing, "缺两份年报企业").await;
    let head = client(&server)
        .get_change_feed_head(
            server.request(Role::Service, pb::GetChangeFeedHeadRequest::default()),
        )
        .await
        .unwrap()
        .into_inner()
        .cursor;
    // Issued 2023-12-01: reports on 2023, 2024 and 2025, due 31 May of the next year.
    let response = import(
        &server,
        vec![
            row(
                2,
                &on_time,
                "GR202337000801",
                "2023-12-01",
                &[
                    (2023, "2024-05-10"),
                    (2024, "2025-04-30"),
                    (2025, "2026-05-31"),
                ],
            ),
            row(
                3,
                &one_missing,
                "GR202337000802",
                "2023-12-01",
                &[(2023, "2024-05-10"), (2025, "2026-03-01")],
            ),
            row(
                4,
                &two_missing,
                "GR202337000803",
                "2023-12-01",
                &[(2023, "2024-05-10")],
            ),
        ],
        "",
    )
    .await;
    assert_eq!(
        (
            response.created_count,
            response.accepted_count,
            response.rejected_count
        ),
        (3, 3, 0),
        "{response:?}"
    );
    assert_eq!(
        response.row_results[0].name,
        format!("enterprises/{on_time}/highTechCertificates/GR202337000801")
    );

    let valid = certificate(&server, &on_time, "GR202337000801").await;
    assert_eq!(
        (
            valid.state(),
            valid.missed_report_count,
            valid.expiry_date.as_str()
        ),
        (pb::CertificateState::Valid, 0, "2026-12-01")
    );
    // Each report is stored as filed on its real date.
    let filed: Vec<(i32, String)> = valid
        .annual_reports
        .iter()
        .map(|r| (r.report_year, r.filed_date.clone()))
        .collect();
    assert_eq!(
        filed,
        [
            (2023, "2024-05-10".to_string()),
            (2024, "2025-04-30".to_string()),
            (2025, "2026-05-31".to_string())
        ]
    );
    assert!(get_enterprise(&server, &on_time).await.high_tech_certified);

    let one = certificate(&server, &one_missing, "GR202337000802").await;
    assert_eq!(
        (one.state(), one.missed_report_count),
        (pb::CertificateState::Valid, 1)
    );
    assert!(
        get_enterprise(&server, &one_missing)
            .await
            .high_tech_certified
    );

    // Two reports missed (2024, 2025): revoked from the day after the second due date.
    let revoked = certificate(&server, &two_missing, "GR202337000803").await;
    assert_eq!(
        (
            revoked.state(),
            revoked.missed_report_count,
            revoked.revocation_ground()
        ),
        (
            pb::CertificateState::Revoked,
            2,
            pb::RevocationGround::MissedAnnualReports
        )
    );
    assert!(
        !get_enterprise(&server, &two_missing)
            .await
            .high_tech_certified
    );

    // The change feed saw the imported certificates and the holders' flags, through the cursor
    // the import answered.
    let changes = client(&server)
        .list_changes(server.request(
            Role::Service,
            pb::ListChangesRequest {
                after_cursor: head,
                page_size: 100,
                filter: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let resources: Vec<&str> = changes
        .changes
        .iter()
        .map(|c| c.resource.as_str())
        .collect();
    for number in ["GR202337000801", "GR202337000802", "GR202337000803"] {
        assert!(
            resources.iter().any(|r| r.ends_with(number)),
            "{resources:?}"
        );
    }
    assert!(resources.contains(&ent(&on_time).as_str()), "{resources:?}");
    assert_eq!(
        changes.changes.last().map(|c| c.cursor.as_str()),
        Some(response.last_change_cursor.as_str())
    );
    server.stop().await;
}

async fn a_certificate_import_replays_by_request_id_and_is_unchanged_when_run_again(
    backend: Backend,
) {
    let Some((server, _set)) = start_on(backend, today()).await else {
        return;
    };
    let code = shandong("3706", 804);
    create(&server, &code, "重复导入企业").await;
    let rows = || {
        vec![
            row(
                1,
                &code,
                "GR202437000804",
                "2024-11-01",
                &[(2024, "2025-05-20")],
            ),
            row(
                2,
                &code,
                "GR202137000805",
                "2021-10-15",
                &[(2021, "2022-05-01")],
            ),
        ]
    };
    let id = uuid::Uuid::new_v4().to_string();
    let first = import(&server, rows(), &id).await;
    assert_eq!(first.created_count, 2, "{first:?}");
    // The same request id: the first run's answer, nothing read or written again.
    let again = import(&server, rows(), &id).await;
    assert_eq!(again, first);
    // Without a request id: a fresh run that finds everything stored.
    let second = import(&server, rows(), "").await;
    assert_eq!(
        outcomes(&second.row_results),
        [
            (1, pb::ImportRowOutcome::Unchanged),
            (2, pb::ImportRowOutcome::Unchanged)
        ]
    );
    assert!(second.last_change_cursor.is_empty());
    // A row adding a later report updates the certificate; a report moved to another date is
    // refused on its field.
    let more = import(
        &server,
        vec![
            row(
                1,
                &code,
                "GR202437000804",
                "2024-11-01",
                &[(2024, "2025-05-20"), (2025, "2026-04-01")],
            ),
            row(
                2,
                &code,
                "GR202137000805",
                "2021-10-15",
                &[(2021, "2022-05-02")],
            ),
        ],
        "",
    )
    .await;
    assert_eq!(
        outcomes(&more.row_results),
        [
            (1, pb::ImportRowOutcome::Updated),
            (2, pb::ImportRowOutcome::Rejected)
        ]
    );
    assert_eq!(
        more.row_results[1].problems[0].field,
        "annual_reports[0].filed_date"
    );
    assert_eq!(
        certificate(&server, &code, "GR202437000804")
            .await
            .annual_reports
            .iter()
            .filter(|r| !r.filed_date.is_empty())
            .count(),
        2
    );
    server.stop().await;
}

async fn rejected_certificate_rows_carry_their_field_problems(backend: Backend) {
    let Some((server, _set)) = start_on(backend, today()).await else {
        return;
    };
    let code = shandong("3707", 806);
    create(&server, &code, "被拒行企业").await;
    let unregistered = shandong("3708", 807);
    let mut bad_uscc = row(5, &code, "GR202337000810", "2023-12-01", &[]);
    bad_uscc.enterprise = "enterprises/91350100M000100Y4Z".into();
    let response = client(&server)
        .import_high_tech_certificates(server.request(
            Role::Officer,
            tokio_stream::iter([pb::ImportHighTechCertificatesRequest {
                rows: vec![
                    row(
                        1,
                        &code,
                        "GR202337000806",
                        "2023-12-01",
                        &[(2027, "2028-01-01"), (2024, "2026-12-01")],
                    ),
                    row(2, &code, "gr 2023", "2030-01-01", &[]),
                    row(3, &unregistered, "GR202337000807", "2023-12-01", &[]),
                    row(
                        4,
                        &code,
                        "GR202337000808",
                        "2023-12-01",
                        &[(2023, "2023-06-01")],
                    ),
                    bad_uscc,
                    row(1, &code, "GR202337000809", "2023-12-01", &[]),
                    row(
                        7,
                        &code,
                        "GR202337000811",
                        "2023-12-01",
                        &[(2023, "2024-05-01")],
                    ),
                ],
                rejected_rows_only: true,
                ..Default::default()
            }]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            response.received_count,
            response.created_count,
            response.rejected_count
        ),
        (7, 1, 6),
        "{response:?}"
    );
    let fields: Vec<(i64, Vec<&str>)> = response
        .row_results
        .iter()
        .map(|r| {
            assert_eq!(r.outcome(), pb::ImportRowOutcome::Rejected);
            (
                r.row_number,
                r.problems.iter().map(|p| p.field.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            (
                1,
                vec![
                    "annual_reports[0].report_year",
                    "annual_reports[1].filed_date"
                ]
            ),
            (
                2,
                vec![
                    "high_tech_certificate.certificate_number",
                    "high_tech_certificate.issue_date"
                ]
            ),
            (3, vec!["enterprise"]),
            (4, vec!["annual_reports[0].filed_date"]),
            (5, vec!["enterprise"]),
            (1, vec!["row_number"]),
        ]
    );
    server.stop().await;
}

fn figures(
    code: &str,
    year: i32,
    revenue: Option<i64>,
    employees: Option<i64>,
) -> pb::AnnualFigures {
    let amount = |value| pb::ReportedAmount {
        value,
        source: pb::FigureSource::AuditedStatement as i32,
        reference: "鲁审〔2025〕12号".into(),
        update_time: None,
    };
    pb::AnnualFigures {
        name: format!("enterprises/{code}/annualFigures/{year}"),
        revenue_fen: revenue.map(amount),
        employees: employees.map(amount),
        ..Default::default()
    }
}

async fn import_figures(
    server: &TestServer,
    rows: Vec<pb::AnnualFigures>,
) -> pb::ImportAnnualFiguresResponse {
    client(server)
        .import_annual_figures(
            server.request(
                Role::Officer,
                tokio_stream::iter([pb::ImportAnnualFiguresRequest {
                    rows: rows
                        .into_iter()
                        .enumerate()
                        .map(|(i, f)| pb::ImportAnnualFiguresRow {
                            row_number: i as i64 + 1,
                            annual_figures: Some(f),
                        })
                        .collect(),
                    ..Default::default()
                }]),
            ),
        )
        .await
        .unwrap()
        .into_inner()
}

async fn figures_import_creates_updates_and_leaves_unchanged(backend: Backend) {
    let Some((server, _set)) = start_on(backend, today()).await else {
        return;
    };
    let code = shandong("3709", 812);
    create(&server, &code, "年度数据企业").await;
    let first = import_figures(
        &server,
        vec![
            figures(&code, 2024, Some(80_000_000_000), Some(300)),
            figures(&code, 2025, Some(90_000_000_000), None),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&first.row_results),
        [
            (1, pb::ImportRowOutcome::Created),
            (2, pb::ImportRowOutcome::Created)
        ]
    );
    assert_eq!(
        first.row_results[0].name,
        format!("enterprises/{code}/annualFigures/2024")
    );
    let second = import_figures(
        &server,
        vec![
            // Identical: nothing written.
            figures(&code, 2024, Some(80_000_000_000), Some(300)),
            // A figure the stored year lacks: updated; its revenue is kept.
            figures(&code, 2025, None, Some(320)),
            // Negative, and an enterprise that is not registered.
            figures(&code, 2023, Some(-1), None),
            figures(&shandong("3710", 813), 2024, Some(1), None),
            // Nothing set.
            figures(&code, 2022, None, None),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&second.row_results),
        [
            (1, pb::ImportRowOutcome::Unchanged),
            (2, pb::ImportRowOutcome::Updated),
            (3, pb::ImportRowOutcome::Rejected),
            (4, pb::ImportRowOutcome::Rejected),
            (5, pb::ImportRowOutcome::Rejected)
        ]
    );
    assert_eq!(
        second.row_results[2].problems[0].field,
        "annual_figures.revenue_fen.value"
    );
    assert_eq!(
        second.row_results[3].problems[0].field,
        "annual_figures.name"
    );
    assert_eq!(second.row_results[4].problems[0].field, "annual_figures");
    let y2025 = client(&server)
        .get_annual_figures(server.request(
            Role::Officer,
            pb::GetAnnualFiguresRequest {
                name: format!("enterprises/{code}/annualFigures/2025"),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            y2025.revenue_fen.map(|r| r.value),
            y2025.employees.map(|r| r.value)
        ),
        (Some(90_000_000_000), Some(320))
    );
    server.stop().await;
}

async fn file(
    server: &TestServer,
    name: &str,
    year: i32,
    filed: &str,
) -> Result<pb::HighTechCertificate, tonic::Status> {
    client(server)
        .file_annual_report(server.request(
            Role::Officer,
            pb::FileAnnualReportRequest {
                name: name.into(),
                report_year: year,
                filed_date: filed.into(),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn an_officer_backfills_on_time_reports_of_a_historical_certificate(backend: Backend) {
    let Some((server, _set)) = start_on(backend, today()).await else {
        return;
    };
    let code = shandong("3711", 814);
    create(&server, &code, "补录年报企业").await;
    // Recorded today with its real issue date: all three reports read MISSED, so REVOKED.
    let created = client(&server)
        .create_high_tech_certificate(server.request(
            Role::Officer,
            pb::CreateHighTechCertificateRequest {
                parent: ent(&code),
                high_tech_certificate: Some(pb::HighTechCertificate {
                    certificate_number: "GR202337000814".into(),
                    issue_date: "2023-12-01".into(),
                    technology_field: cpb::HighTechField::NewMaterials as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.state(), pb::CertificateState::Revoked);
    assert!(!get_enterprise(&server, &code).await.high_tech_certified);

    // A late filing never undoes a miss.
    let late = file(&server, &created.name, 2023, "2024-06-15")
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    // The on-time history, one report at a time: the first is accepted although two misses
    // still revoke it; after the second it is VALID again, and its holder certified.
    let c = file(&server, &created.name, 2023, "2024-05-10")
        .await
        .unwrap();
    assert_eq!(
        (c.state(), c.missed_report_count),
        (pb::CertificateState::Revoked, 2)
    );
    let c = file(&server, &created.name, 2024, "2025-05-31")
        .await
        .unwrap();
    assert_eq!(
        (c.state(), c.missed_report_count),
        (pb::CertificateState::Valid, 1)
    );
    assert!(get_enterprise(&server, &code).await.high_tech_certified);
    let c = file(&server, &created.name, 2025, "2026-04-02")
        .await
        .unwrap();
    assert_eq!(
        (c.state(), c.missed_report_count),
        (pb::CertificateState::Valid, 0)
    );
    // A filing date in the future is refused on its field; an enterprise may not give one.
    let s = file(&server, &created.name, 2025, "2026-12-01")
        .await
        .unwrap_err();
    assert_eq!(violations(&s)[0].0, "filed_date");
    let s = client(&server)
        .file_annual_report(server.enterprise_request(
            &code,
            pb::FileAnnualReportRequest {
                name: created.name.clone(),
                report_year: 2025,
                filed_date: "2026-04-02".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    // Every backfilled report is audited with its officer.
    let events = crate::support::audit_events_of(&server, &created.name).await;
    assert_eq!(events.len(), 4, "created and three filings");
    server.stop().await;
}
