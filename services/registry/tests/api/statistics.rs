//! Integration tests of programme statistics as a caller sees them: the real server on an
//! ephemeral port over a fresh SQLite file and a fresh PostgreSQL database (`sqlite::…` and
//! `postgres::…`). Every fact is created through the registry's own RPCs (zones, enterprises,
//! certificates, annual figures, the leading cohort, support policies, clusters, policy targets)
//! so the numbers are the ones a programme office would see.
//!
//! Certificates for past programme years are dated in those years (2020-2025, all in the past);
//! enterprises selected into the cohort also get a certificate issued today, so they hold a
//! valid one whatever day the tests run (a 2024 certificate may already read revoked for
//! missed annual reports), which doubles as the "second certificate" that must not make an
//! enterprise new again.

use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_registry::Registry;
use qilu_registry::roles::ROLE_TABLE;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::{check_char, client, ent, this_year, today};

on_both_backends!(
    the_programme_year_counts_first_certificates_in_zones_and_green_fields_against_policy_targets,
    an_empty_registry_shows_zeros_and_the_seeded_targets,
    targets_follow_the_policy_data_in_force_and_a_cluster_without_one_is_listed_not_on_track,
    a_bad_year_is_invalid_argument_naming_year,
    only_admin_officer_and_auditor_may_read_statistics,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// One billion yuan in fen.
const BN: i64 = 100_000_000_000;
/// Source of the seeded 2021 targets (the 2021 implementation opinions).
const OPINIONS_2021: &str = "关于科技支撑引领绿色低碳高质量发展的实施意见";
/// Source of the seeded 2025 targets (the 2023 work plan).
const WORK_PLAN_2023: &str = "Shandong work plan on technology-supported carbon peaking (2023)";

const ENERGY_SAVING: i32 = cpb::GreenCategory::EnergySavingAndEnvironmentalProtection as i32;
const CLEAN_PRODUCTION: i32 = cpb::GreenCategory::CleanProduction as i32;
const CLEAN_ENERGY: i32 = cpb::GreenCategory::CleanEnergy as i32;
const GREEN_SERVICES: i32 = cpb::GreenCategory::GreenServices as i32;

/// A valid code registered in Shandong prefecture `prefecture` (e.g. `3701`), varied by `n`.
fn shandong(prefecture: &str, n: u32) -> String {
    let body = format!("91{prefecture}00MA3E{n:05}");
    format!("{body}{}", check_char(&body))
}

async fn create_zone(server: &TestServer, id: &str, display_name: &str, division_code: &str) {
    client(server)
        .create_zone(server.request(
            Role::Officer,
            pb::CreateZoneRequest {
                zone_id: id.into(),
                zone: Some(pb::Zone {
                    display_name: display_name.into(),
                    level: pb::ZoneLevel::National as i32,
                    division_code: division_code.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create zone {id}: {s:?}"));
}

/// Jinan, Qingdao and Yantai national high-tech zones.
async fn programme_zones(server: &TestServer) {
    create_zone(server, "jinan", "济南高新技术产业开发区", "370100").await;
    create_zone(server, "qingdao", "青岛高新技术产业开发区", "370200").await;
    create_zone(server, "yantai", "烟台高新技术产业开发区", "370600").await;
}

/// Registers an enterprise in `zone` ("" for none) with `green` category (0 for none).
async fn enterprise(server: &TestServer, uscc: &str, name: &str, zone: &str, green: i32) {
    client(server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    uscc: uscc.into(),
                    display_name: name.into(),
                    legal_representative: "张三".into(),
                    established_date: "2010-05-04".into(),
                    address: "山东省".into(),
                    zone: zone.into(),
                    technology_fields: vec![cpb::HighTechField::NewEnergyAndEnergySaving as i32],
                    green_category: green,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create {uscc}: {s:?}"));
}

/// Records high-tech certificate `number` for `uscc`, issued on `issue_date`.
async fn certify(server: &TestServer, uscc: &str, number: &str, issue_date: &str) {
    client(server)
        .create_high_tech_certificate(server.request(
            Role::Officer,
            pb::CreateHighTechCertificateRequest {
                parent: ent(uscc),
                high_tech_certificate: Some(pb::HighTechCertificate {
                    certificate_number: number.into(),
                    issue_date: issue_date.into(),
                    issuing_authority: "山东省高新技术企业认定管理机构".into(),
                    technology_field: cpb::HighTechField::NewEnergyAndEnergySaving as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("certify {uscc} on {issue_date}: {s:?}"));
}

/// Records `uscc`'s audited revenue for `year`.
async fn revenue(server: &TestServer, uscc: &str, year: i32, fen: i64) {
    client(server)
        .update_annual_figures(server.request(
            Role::Officer,
            pb::UpdateAnnualFiguresRequest {
                annual_figures: Some(pb::AnnualFigures {
                    name: format!("enterprises/{uscc}/annualFigures/{year}"),
                    revenue_fen: Some(pb::ReportedAmount {
                        value: fen,
                        source: pb::FigureSource::AuditedStatement as i32,
                        reference: format!("鲁审字〔{year}〕{}号", &uscc[14..]),
                        update_time: None,
                    }),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["revenue_fen".into()],
                }),
                allow_missing: true,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("revenue {uscc} {year}: {s:?}"));
}

async fn create_cohort(server: &TestServer, year: i32) {
    client(server)
        .create_leading_cohort(server.request(
            Role::Admin,
            pb::CreateLeadingCohortRequest {
                leading_cohort: Some(pb::LeadingCohort {
                    year,
                    description: format!("{year}年绿色低碳领军企业"),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create cohort {year}: {s:?}"));
}

async fn select(server: &TestServer, year: i32, uscc: &str) {
    client(server)
        .select_leading_enterprise(server.request(
            Role::Admin,
            pb::SelectLeadingEnterpriseRequest {
                cohort: format!("leadingCohorts/{year}"),
                enterprise: ent(uscc),
                reason: "排名靠前，掌握核心技术".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("select {uscc}: {s:?}"));
}

async fn support_policy(server: &TestServer, year: i32, uscc: &str) {
    client(server)
        .create_support_policy(server.request(
            Role::Officer,
            pb::CreateSupportPolicyRequest {
                parent: ent(uscc),
                support_policy: Some(pb::SupportPolicy {
                    member: format!("leadingCohorts/{year}/members/{uscc}"),
                    title: "一企一策：氢能装备".into(),
                    summary: "支持企业建设研发平台".into(),
                    measures: vec![pb::SupportMeasure {
                        kind: pb::MeasureKind::Funding as i32,
                        description: "省级科技计划项目资金".into(),
                        amount_fen: 500_000_000,
                        provider: "省科技厅".into(),
                    }],
                    responsible_officer: "officer-1".into(),
                    responsible_officer_name: "李四".into(),
                    milestones: vec![pb::Milestone {
                        milestone_id: "rd-center".into(),
                        title: "建成省级工程技术研究中心".into(),
                        due_date: "2099-06-30".into(),
                        state: pb::MilestoneState::Planned as i32,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("support policy {uscc}: {s:?}"));
}

async fn create_cluster(server: &TestServer, id: &str, cluster: pb::Cluster) {
    client(server)
        .create_cluster(server.request(
            Role::Officer,
            pb::CreateClusterRequest {
                cluster_id: id.into(),
                cluster: Some(cluster),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create cluster {id}: {s:?}"));
}

async fn create_target(server: &TestServer, id: &str, target: pb::PolicyTarget) {
    client(server)
        .create_policy_target(server.request(
            Role::Admin,
            pb::CreatePolicyTargetRequest {
                policy_target_id: id.into(),
                policy_target: Some(target),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create target {id}: {s:?}"));
}

async fn progress(
    server: &TestServer,
    name: &str,
    as_of_year: i32,
) -> Result<pb::ClusterProgress, Status> {
    client(server)
        .get_cluster_progress(server.request(
            Role::Officer,
            pb::GetClusterProgressRequest {
                name: name.into(),
                as_of_year,
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn statistics_as(
    server: &TestServer,
    role: Role,
    year: i32,
) -> Result<pb::ProgrammeStatistics, Status> {
    client(server)
        .get_programme_statistics(server.request(role, pb::GetProgrammeStatisticsRequest { year }))
        .await
        .map(tonic::Response::into_inner)
}

async fn statistics(server: &TestServer, year: i32) -> pb::ProgrammeStatistics {
    statistics_as(server, Role::Officer, year)
        .await
        .unwrap_or_else(|s| panic!("statistics {year}: {s:?}"))
}

async fn verify_chain(server: &TestServer) -> cpb::VerifyAuditChainResponse {
    client(server)
        .verify_audit_chain(server.request(Role::Auditor, cpb::VerifyAuditChainRequest::default()))
        .await
        .unwrap()
        .into_inner()
}

fn new_hte(s: &pb::ProgrammeStatistics) -> &pb::NewHighTechEnterprises {
    s.new_high_tech_enterprises.as_ref().unwrap()
}

fn by_zone(s: &pb::ProgrammeStatistics) -> Vec<(&str, i64)> {
    new_hte(s)
        .by_zone
        .iter()
        .map(|z| (z.zone.as_str(), z.count))
        .collect()
}

fn by_category(s: &pb::ProgrammeStatistics) -> Vec<(i32, i64)> {
    new_hte(s)
        .by_green_category
        .iter()
        .map(|g| (g.green_category, g.count))
        .collect()
}

fn cells(s: &pb::ProgrammeStatistics) -> Vec<(&str, i32, i64)> {
    new_hte(s)
        .by_zone_and_green_category
        .iter()
        .map(|c| (c.zone.as_str(), c.green_category, c.count))
        .collect()
}

/// Every category, with the given non-zero counts.
fn categories(non_zero: &[(i32, i64)]) -> Vec<(i32, i64)> {
    (1..=6)
        .map(|g| {
            (
                g,
                non_zero
                    .iter()
                    .find(|(c, _)| *c == g)
                    .map(|(_, n)| *n)
                    .unwrap_or(0),
            )
        })
        .collect()
}

#[track_caller]
fn assert_target(t: Option<&pb::TargetValue>, value: i64, name: &str, source_starts: &str) {
    let t = t.expect("a TargetValue is always present");
    assert_eq!((t.value, t.policy_target.as_str()), (value, name), "{t:?}");
    assert!(t.source.starts_with(source_starts), "{t:?}");
}

#[track_caller]
fn assert_no_target(t: Option<&pb::TargetValue>) {
    assert_eq!(t, Some(&pb::TargetValue::default()));
}

// ---------------------------------------------------------------------------------------------
// docs/design.md §9 step 7 in miniature
// ---------------------------------------------------------------------------------------------

async fn the_programme_year_counts_first_certificates_in_zones_and_green_fields_against_policy_targets(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    programme_zones(&server).await;
    let (jinan, qingdao, yantai) = ("zones/jinan", "zones/qingdao", "zones/yantai");
    let code = |p: &str, n: u32| shandong(p, n);
    // New in 2024: first certificate on the year's first and last day and in between.
    let a = code("3701", 1);
    let b = code("3701", 2);
    let c = code("3701", 3);
    let d = code("3702", 4);
    enterprise(&server, &a, "济南氢能装备", jinan, CLEAN_ENERGY).await;
    enterprise(&server, &b, "济南储能科技", jinan, CLEAN_ENERGY).await;
    enterprise(&server, &c, "济南节能环保", jinan, ENERGY_SAVING).await;
    enterprise(&server, &d, "青岛燃料电池", qingdao, CLEAN_ENERGY).await;
    certify(&server, &a, "GR202437000001", "2024-01-01").await;
    certify(&server, &b, "GR202437000002", "2024-12-31").await;
    certify(&server, &c, "GR202437000003", "2024-06-15").await;
    certify(&server, &d, "GR202437000004", "2024-03-20").await;
    // Not new in 2024: outside every zone; no green category; certified the year before (on
    // its last day); certified in 2023 with a second certificate in 2024; certified in 2025.
    let outside = code("3703", 5);
    let not_green = code("3701", 6);
    let year_before = code("3702", 7);
    let recertified = code("3701", 8);
    let year_after = code("3702", 9);
    enterprise(&server, &outside, "淄博新能源", "", CLEAN_ENERGY).await;
    enterprise(&server, &not_green, "济南软件", jinan, 0).await;
    enterprise(
        &server,
        &year_before,
        "青岛清洁生产",
        qingdao,
        CLEAN_PRODUCTION,
    )
    .await;
    enterprise(&server, &recertified, "济南光伏", jinan, CLEAN_ENERGY).await;
    enterprise(&server, &year_after, "青岛环保", qingdao, ENERGY_SAVING).await;
    certify(&server, &outside, "GR202437000005", "2024-05-01").await;
    certify(&server, &not_green, "GR202437000006", "2024-05-01").await;
    certify(&server, &year_before, "GR202337000007", "2023-12-31").await;
    certify(&server, &recertified, "GR202337000008", "2023-11-20").await;
    certify(&server, &recertified, "GR202437000008", "2024-04-10").await;
    certify(&server, &year_after, "GR202537000009", "2025-01-01").await;
    // New in 2020, before any yearly target: counts, but fills nothing.
    let early = code("3706", 10);
    enterprise(&server, &early, "烟台绿色服务", yantai, GREEN_SERVICES).await;
    certify(&server, &early, "GR202037000010", "2020-07-01").await;
    // The three to be selected also hold a certificate issued today (the first stays theirs).
    let renewed = today().format("%Y-%m-%d").to_string();
    for (n, x) in [&a, &b, &d].into_iter().enumerate() {
        certify(
            &server,
            x,
            &format!("GR{}3700010{n}", this_year()),
            &renewed,
        )
        .await;
    }

    // The 2024 cohort: three selected, two with their policy.
    create_cohort(&server, 2024).await;
    for x in [&a, &b, &d] {
        select(&server, 2024, x).await;
    }
    support_policy(&server, 2024, &a).await;
    support_policy(&server, 2024, &b).await;

    // Two clusters: hydrogen follows the policy target (10 bn yuan by 2023); storage has its own
    // (10 bn by 2025).
    create_cluster(
        &server,
        "hydrogen",
        pb::Cluster {
            display_name: "山东氢能产业集群".into(),
            green_category: CLEAN_ENERGY,
            members: vec![ent(&a), ent(&d)],
            start_year: 2021,
            ..Default::default()
        },
    )
    .await;
    create_cluster(
        &server,
        "storage",
        pb::Cluster {
            display_name: "山东储能产业集群".into(),
            green_category: CLEAN_ENERGY,
            members: vec![ent(&b), ent(&c)],
            target_scale_fen: Some(10 * BN),
            target_year: Some(2025),
            start_year: 2021,
            ..Default::default()
        },
    )
    .await;
    revenue(&server, &a, 2023, 3 * BN).await;
    revenue(&server, &a, 2024, 4 * BN).await;
    revenue(&server, &a, 2025, 50 * BN).await; // after the year: not counted as of 2024
    revenue(&server, &d, 2023, 2 * BN).await;
    revenue(&server, &b, 2024, 8 * BN).await;
    let events_before = verify_chain(&server).await.events_checked;

    let s = statistics(&server, 2024).await;
    assert_eq!(s.year, 2024);
    let hte = new_hte(&s);
    assert_eq!(hte.count, 4);
    assert_target(
        hte.target.as_ref(),
        1000,
        "policyTargets/new-hte-yearly-2021",
        OPINIONS_2021,
    );
    assert_eq!(hte.target_fill_basis_points, 40, "4 of 1,000 = 0.40%");
    assert_eq!(by_zone(&s), [(jinan, 3), (qingdao, 1), (yantai, 0)]);
    let names: Vec<&str> = hte
        .by_zone
        .iter()
        .map(|z| z.display_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "济南高新技术产业开发区",
            "青岛高新技术产业开发区",
            "烟台高新技术产业开发区"
        ]
    );
    assert_eq!(
        by_category(&s),
        categories(&[(ENERGY_SAVING, 1), (CLEAN_ENERGY, 3)])
    );
    assert_eq!(
        cells(&s),
        [
            (jinan, ENERGY_SAVING, 1),
            (jinan, CLEAN_ENERGY, 2),
            (qingdao, CLEAN_ENERGY, 1)
        ]
    );

    let cohort = s.leading_cohort.as_ref().unwrap();
    assert_eq!(cohort.cohort, "leadingCohorts/2024");
    assert_target(
        cohort.target.as_ref(),
        200,
        "policyTargets/leading-cohort-2021",
        OPINIONS_2021,
    );
    assert_eq!((cohort.selected_count, cohort.with_policy_count), (3, 2));
    assert_eq!(cohort.fill_basis_points, 150, "3 of 200 = 1.50%");

    // Clusters as of 2024: hydrogen 4 + 2 = 6 of 10 bn, its 2023 target year passed; storage
    // 8 of 10 bn, ahead of the straight line (3/4 of 2021-2025 elapsed).
    let names: Vec<&str> = s.clusters.iter().map(|c| c.cluster.as_str()).collect();
    assert_eq!(names, ["clusters/hydrogen", "clusters/storage"]);
    let hydrogen = &s.clusters[0];
    assert_eq!(
        (
            hydrogen.revenue_fen,
            hydrogen.target_scale_fen,
            hydrogen.target_year
        ),
        (6 * BN, 10 * BN, 2023)
    );
    assert_eq!(hydrogen.as_of_year, 2024);
    assert_eq!(hydrogen.progress_basis_points, 6_000);
    assert!(!hydrogen.on_track && !hydrogen.target_reached);
    let used: Vec<(String, i32)> = hydrogen
        .members
        .iter()
        .map(|m| (m.enterprise.clone(), m.year))
        .collect();
    let mut want = vec![(ent(&a), 2024), (ent(&d), 2023)];
    want.sort();
    assert_eq!(used, want);
    assert!(
        hydrogen.members.iter().all(|m| m
            .source
            .starts_with("FIGURE_SOURCE_AUDITED_STATEMENT: 鲁审字")),
        "{hydrogen:?}"
    );
    let storage = &s.clusters[1];
    assert_eq!(
        (storage.revenue_fen, storage.progress_basis_points),
        (8 * BN, 8_000)
    );
    assert!(storage.on_track && !storage.target_reached);
    assert_eq!(storage.members_missing_revenue, [ent(&c)]);
    assert_eq!(s.clusters_on_track, 1);
    // Each is exactly what GetClusterProgress says as of the year.
    for c in &s.clusters {
        assert_eq!(c, &progress(&server, &c.cluster, 2024).await.unwrap());
    }
    assert_target(
        s.cluster_count_target.as_ref(),
        5,
        "policyTargets/cluster-count-2025",
        WORK_PLAN_2023,
    );
    let computed = s.compute_time.as_ref().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((now - computed.seconds).abs() < 60, "{computed:?}");

    // 2023: the year-before and the recertified enterprise; no cohort; nothing on track.
    let s = statistics(&server, 2023).await;
    assert_eq!(new_hte(&s).count, 2);
    assert_eq!(new_hte(&s).target_fill_basis_points, 20);
    assert_eq!(by_zone(&s), [(jinan, 1), (qingdao, 1), (yantai, 0)]);
    assert_eq!(
        by_category(&s),
        categories(&[(CLEAN_PRODUCTION, 1), (CLEAN_ENERGY, 1)])
    );
    assert_eq!(
        cells(&s),
        [(jinan, CLEAN_ENERGY, 1), (qingdao, CLEAN_PRODUCTION, 1)]
    );
    let cohort = s.leading_cohort.as_ref().unwrap();
    assert_eq!(cohort.cohort, "");
    assert_eq!(
        (
            cohort.selected_count,
            cohort.with_policy_count,
            cohort.fill_basis_points
        ),
        (0, 0, 0)
    );
    assert_eq!(cohort.target.as_ref().unwrap().value, 200);
    assert_eq!(s.clusters[0].revenue_fen, 5 * BN);
    assert_eq!(s.clusters[1].members_reporting, 0);
    assert_eq!(s.clusters_on_track, 0);
    assert_eq!(s.cluster_count_target.as_ref().unwrap().value, 5);

    // 2025: one; 2025 figures count now.
    let s = statistics(&server, 2025).await;
    assert_eq!(new_hte(&s).count, 1);
    assert_eq!(cells(&s), [(qingdao, ENERGY_SAVING, 1)]);
    assert_eq!(s.clusters[0].revenue_fen, 52 * BN);
    assert!(s.clusters[0].target_reached);

    // 2020: one new enterprise, but no yearly target, cohort size or cluster count in force.
    let s = statistics(&server, 2020).await;
    let hte = new_hte(&s);
    assert_eq!(hte.count, 1);
    assert_eq!(by_zone(&s), [(jinan, 0), (qingdao, 0), (yantai, 1)]);
    assert_no_target(hte.target.as_ref());
    assert_eq!(hte.target_fill_basis_points, 0);
    let cohort = s.leading_cohort.as_ref().unwrap();
    assert_no_target(cohort.target.as_ref());
    assert_eq!(cohort.fill_basis_points, 0);
    assert_no_target(s.cluster_count_target.as_ref());

    // The current year: renewals are not new enterprises.
    assert_eq!(new_hte(&statistics(&server, this_year()).await).count, 0);

    // Reading wrote nothing.
    let check = verify_chain(&server).await;
    assert!(check.intact, "{check:?}");
    assert_eq!(check.events_checked, events_before);
    server.stop().await;
}

async fn an_empty_registry_shows_zeros_and_the_seeded_targets(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let s = statistics(&server, 2024).await;
    let hte = new_hte(&s);
    assert_eq!((hte.count, hte.target_fill_basis_points), (0, 0));
    assert_target(
        hte.target.as_ref(),
        1000,
        "policyTargets/new-hte-yearly-2021",
        OPINIONS_2021,
    );
    assert!(hte.by_zone.is_empty() && hte.by_zone_and_green_category.is_empty());
    assert_eq!(by_category(&s), categories(&[]));
    let cohort = s.leading_cohort.as_ref().unwrap();
    assert_eq!(cohort.cohort, "");
    assert_eq!(cohort.target.as_ref().unwrap().value, 200);
    assert!(s.clusters.is_empty());
    assert_eq!(s.clusters_on_track, 0);
    assert_eq!(s.cluster_count_target.as_ref().unwrap().value, 5);
    // 2026 is past the 2023 work plan's 2025 horizon: no cluster count is in force.
    assert_no_target(
        statistics(&server, 2026)
            .await
            .cluster_count_target
            .as_ref(),
    );
    server.stop().await;
}

async fn targets_follow_the_policy_data_in_force_and_a_cluster_without_one_is_listed_not_on_track(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    programme_zones(&server).await;
    let (a, b, m) = (
        shandong("3701", 21),
        shandong("3702", 22),
        shandong("3701", 23),
    );
    enterprise(&server, &a, "济南氢能", "zones/jinan", CLEAN_ENERGY).await;
    enterprise(&server, &b, "青岛氢能", "zones/qingdao", CLEAN_ENERGY).await;
    enterprise(&server, &m, "风电装备", "", CLEAN_ENERGY).await;
    certify(&server, &a, "GR202437000021", "2024-02-01").await;
    certify(&server, &b, "GR202437000022", "2024-09-01").await;
    revenue(&server, &m, 2023, 3 * BN).await;
    // A cluster with its own target year 2023 takes its scale from the CLUSTER_SCALE target in
    // force for 2023...
    create_cluster(
        &server,
        "wind",
        pb::Cluster {
            display_name: "山东风电产业集群".into(),
            green_category: CLEAN_ENERGY,
            members: vec![ent(&m)],
            target_year: Some(2023),
            start_year: 2021,
            ..Default::default()
        },
    )
    .await;
    let before = statistics(&server, 2023).await;
    assert_eq!(before.clusters[0].target_scale_fen, 10 * BN);

    // ...until a new scale target from 2024 supersedes it: 2023 then has none.
    let target =
        |kind: pb::PolicyTargetKind, value: i64, by: i32, supersedes: &str| pb::PolicyTarget {
            kind: kind as i32,
            value,
            effective_from_year: 2024,
            effective_to_year: 0,
            target_year: by,
            source: "山东省科技厅 2024 年工作方案 (test)".into(),
            source_date: "2024-03-01".into(),
            note: "test target".into(),
            supersedes: supersedes.into(),
            ..Default::default()
        };
    create_target(
        &server,
        "cluster-scale-2024",
        target(
            pb::PolicyTargetKind::ClusterScale,
            20 * BN,
            2030,
            "policyTargets/cluster-scale-2021",
        ),
    )
    .await;
    // And a yearly target of 3 new enterprises from 2024 replaces the 2021 one.
    create_target(
        &server,
        "new-hte-yearly-2024",
        target(
            pb::PolicyTargetKind::YearlyNewHighTechEnterprises,
            3,
            0,
            "policyTargets/new-hte-yearly-2021",
        ),
    )
    .await;

    let s = statistics(&server, 2024).await;
    let hte = new_hte(&s);
    assert_eq!(hte.count, 2);
    assert_target(
        hte.target.as_ref(),
        3,
        "policyTargets/new-hte-yearly-2024",
        "山东省科技厅 2024 年工作方案",
    );
    assert_eq!(hte.target_fill_basis_points, 6_666, "2 of 3, rounded down");
    // 2023 is before the new target and the old one is superseded: none in force.
    let s2023 = statistics(&server, 2023).await;
    assert_no_target(new_hte(&s2023).target.as_ref());
    assert_eq!(new_hte(&s2023).target_fill_basis_points, 0);

    // GetClusterProgress refuses the cluster; statistics still list it, not on track.
    let refused = progress(&server, "clusters/wind", 2023).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let wind = &s2023.clusters[0];
    assert_eq!(wind.cluster, "clusters/wind");
    assert_eq!(
        (wind.revenue_fen, wind.members_reporting, wind.as_of_year),
        (3 * BN, 1, 2023)
    );
    assert_eq!((wind.target_scale_fen, wind.target_year), (0, 0));
    assert_eq!(wind.progress_basis_points, 0);
    assert!(!wind.on_track && !wind.target_reached);
    assert!(
        wind.explanation.contains("no CLUSTER_SCALE target"),
        "{wind:?}"
    );
    assert_eq!(wind.members[0].enterprise, ent(&m));
    assert_eq!(s2023.clusters_on_track, 0);
    server.stop().await;
}

async fn a_bad_year_is_invalid_argument_naming_year(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    for (year, reason) in [
        (0, "REQUIRED"),
        (1979, "OUT_OF_RANGE"),
        (2101, "OUT_OF_RANGE"),
        (-2024, "OUT_OF_RANGE"),
    ] {
        let s = statistics_as(&server, Role::Admin, year).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{year}: {s:?}");
        let violations: Vec<(String, String)> = s
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations
            .into_iter()
            .map(|v| (v.field, v.reason))
            .collect();
        assert_eq!(
            violations,
            [("year".to_string(), reason.to_string())],
            "{year}"
        );
    }
    server.stop().await;
}

async fn only_admin_officer_and_auditor_may_read_statistics(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let allowed = qilu_common::server::roles_of(ROLE_TABLE, "GetProgrammeStatistics")
        .expect("GetProgrammeStatistics is in the role table");
    let mut allowed_sorted: Vec<String> = allowed.iter().map(|r| r.to_string()).collect();
    allowed_sorted.sort();
    assert_eq!(allowed_sorted, ["admin", "auditor", "officer"]);
    for role in Role::ALL {
        let result = statistics_as(&server, role, 2024).await;
        if [Role::Admin, Role::Officer, Role::Auditor].contains(&role) {
            assert!(result.is_ok(), "{role} may read statistics: {result:?}");
        } else {
            let s = result.expect_err("must be refused");
            assert_eq!(s.code(), Code::PermissionDenied, "{role}: {s:?}");
        }
    }
    // An enterprise token for a registered enterprise is refused as well.
    let own = shandong("3701", 31);
    enterprise(&server, &own, "济南企业", "", 0).await;
    let s = client(&server)
        .get_programme_statistics(
            server.enterprise_request(&own, pb::GetProgrammeStatisticsRequest { year: 2024 }),
        )
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    server.stop().await;
}
