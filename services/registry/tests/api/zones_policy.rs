//! Integration tests of high-tech zones, industrial clusters, cluster progress and policy
//! targets, as a caller sees them: the real server on an ephemeral port over a fresh SQLite file
//! and a fresh PostgreSQL database (`sqlite::…` and `postgres::…`).

use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_registry::Registry;
use qilu_registry::domain::figures::{AnnualFigures, FigureKind, Reported};
use qilu_registry::roles::ROLE_TABLE;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::{
    assert_not_found, audit_events, client, ent, mask, shandong, this_year, violations,
};

on_both_backends!(
    an_officer_registers_the_programme_zones_and_a_hydrogen_cluster_and_reads_its_progress,
    zones_are_created_read_listed_and_updated_with_their_city_and_enterprise_count,
    bad_zone_inputs_are_invalid_argument_naming_each_field,
    missing_or_malformed_names_are_not_found_or_invalid_argument,
    zone_and_cluster_updates_refuse_stale_etags_and_bad_masks,
    repeated_request_ids_create_once_and_duplicate_ids_already_exist,
    zone_listing_filters_orders_and_pages,
    a_cluster_target_comes_from_the_cluster_or_else_the_policy_target_in_force,
    bad_cluster_inputs_are_invalid_argument_naming_each_field,
    cluster_updates_replace_members_and_revert_to_the_policy_target,
    cluster_listing_filters_by_category_member_target_year_and_name,
    an_enterprise_reads_only_the_clusters_it_belongs_to,
    every_role_is_allowed_or_refused_as_the_role_table_says,
    progress_counts_each_members_latest_revenue_up_to_the_as_of_year,
    progress_without_figures_names_every_member_and_is_not_on_track,
    seeded_policy_targets_are_listed_with_kind_state_and_year_filters,
    a_new_policy_target_supersedes_the_old_one_in_the_same_transaction,
    overlapping_or_misdirected_policy_targets_are_refused,
    bad_policy_target_inputs_are_invalid_argument_naming_each_field,
    policy_target_creation_is_idempotent_and_assigns_ids,
    every_mutation_here_is_audited_and_the_chain_verifies,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// 10 bn yuan in fen: the seeded CLUSTER_SCALE target of the 2021 opinions.
const TEN_BN_YUAN_FEN: i64 = 1_000_000_000_000;
const ZONE_TYPE: &str = "registry.qilu.gov.cn/Zone";
const CLUSTER_TYPE: &str = "registry.qilu.gov.cn/Cluster";
const POLICY_TARGET_TYPE: &str = "registry.qilu.gov.cn/PolicyTarget";

/// Registers an enterprise (optionally in a zone) as an officer.
async fn enterprise(server: &TestServer, uscc: &str, display_name: &str, zone: &str) {
    client(server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    uscc: uscc.into(),
                    display_name: display_name.into(),
                    legal_representative: "张三".into(),
                    established_date: "2010-05-04".into(),
                    address: "山东省".into(),
                    zone: zone.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create {uscc}: {s:?}"));
}

/// Records a revenue figure directly in the store (the annual-figures RPCs belong to another
/// part of the registry; progress only reads what the store holds).
async fn revenue(server: &TestServer, uscc: &str, year: i32, fen: i64, reference: &str) {
    let mut figures = std::collections::BTreeMap::new();
    figures.insert(
        FigureKind::RevenueFen,
        Reported {
            value: fen,
            source: pb::FigureSource::AuditedStatement as i32,
            reference: reference.into(),
            update_time_us: 1,
        },
    );
    qilu_registry::store::figures::write(
        &server.db,
        &AnnualFigures {
            uscc: uscc.into(),
            year,
            figures,
            create_time_us: 1,
            update_time_us: 1,
            version: 1,
        },
        &[FigureKind::RevenueFen],
    )
    .await
    .unwrap();
}

pub(crate) fn zone(display_name: &str, level: pb::ZoneLevel, division_code: &str) -> pb::Zone {
    pb::Zone {
        display_name: display_name.into(),
        level: level as i32,
        division_code: division_code.into(),
        ..Default::default()
    }
}

pub(crate) async fn create_zone(
    server: &TestServer,
    role: Role,
    id: &str,
    z: pb::Zone,
    request_id: &str,
) -> Result<pb::Zone, Status> {
    client(server)
        .create_zone(server.request(
            role,
            pb::CreateZoneRequest {
                zone_id: id.into(),
                zone: Some(z),
                request_id: request_id.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn get_zone(server: &TestServer, name: &str) -> Result<pb::Zone, Status> {
    client(server)
        .get_zone(server.request(Role::Expert, pb::GetZoneRequest { name: name.into() }))
        .await
        .map(tonic::Response::into_inner)
}

async fn update_zone(
    server: &TestServer,
    z: pb::Zone,
    paths: &[&str],
    request_id: &str,
) -> Result<pb::Zone, Status> {
    client(server)
        .update_zone(server.request(
            Role::Officer,
            pb::UpdateZoneRequest {
                zone: Some(z),
                update_mask: mask(paths),
                request_id: request_id.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The hydrogen-energy cluster with `members`, following the policy target.
pub(crate) fn hydrogen(members: &[&str]) -> pb::Cluster {
    pb::Cluster {
        display_name: "山东氢能产业集群".into(),
        green_category: cpb::GreenCategory::CleanEnergy as i32,
        description: "氢能制取、储运与燃料电池".into(),
        members: members.iter().map(|u| ent(u)).collect(),
        start_year: 2021,
        ..Default::default()
    }
}

pub(crate) async fn create_cluster(
    server: &TestServer,
    role: Role,
    id: &str,
    c: pb::Cluster,
    request_id: &str,
) -> Result<pb::Cluster, Status> {
    client(server)
        .create_cluster(server.request(
            role,
            pb::CreateClusterRequest {
                cluster_id: id.into(),
                cluster: Some(c),
                request_id: request_id.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn get_cluster(server: &TestServer, name: &str) -> Result<pb::Cluster, Status> {
    client(server)
        .get_cluster(server.request(Role::Auditor, pb::GetClusterRequest { name: name.into() }))
        .await
        .map(tonic::Response::into_inner)
}

async fn update_cluster(
    server: &TestServer,
    c: pb::Cluster,
    paths: &[&str],
    request_id: &str,
) -> Result<pb::Cluster, Status> {
    client(server)
        .update_cluster(server.request(
            Role::Officer,
            pb::UpdateClusterRequest {
                cluster: Some(c),
                update_mask: mask(paths),
                request_id: request_id.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
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

pub(crate) fn target(
    kind: pb::PolicyTargetKind,
    value: i64,
    from: i32,
    to: i32,
    by: i32,
) -> pb::PolicyTarget {
    pb::PolicyTarget {
        kind: kind as i32,
        value,
        effective_from_year: from,
        effective_to_year: to,
        target_year: by,
        source: "山东省科技厅 2024 年工作方案 (test)".into(),
        source_date: "2024-03-01".into(),
        note: "test target".into(),
        ..Default::default()
    }
}

pub(crate) async fn create_target(
    server: &TestServer,
    role: Role,
    id: &str,
    t: pb::PolicyTarget,
    request_id: &str,
) -> Result<pb::PolicyTarget, Status> {
    client(server)
        .create_policy_target(server.request(
            role,
            pb::CreatePolicyTargetRequest {
                policy_target_id: id.into(),
                policy_target: Some(t),
                request_id: request_id.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn get_target(server: &TestServer, name: &str) -> Result<pb::PolicyTarget, Status> {
    client(server)
        .get_policy_target(server.request(
            Role::Service,
            pb::GetPolicyTargetRequest { name: name.into() },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Every policy target matching `filter`, following page tokens (pages of 2).
async fn list_targets(server: &TestServer, filter: &str, order_by: &str) -> Vec<pb::PolicyTarget> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client(server)
            .list_policy_targets(server.request(
                Role::Officer,
                pb::ListPolicyTargetsRequest {
                    page_size: 2,
                    page_token: token,
                    filter: filter.into(),
                    order_by: order_by.into(),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("list targets {filter:?}: {s:?}"))
            .into_inner();
        out.extend(page.policy_targets);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

/// Every zone name matching `filter` in `order_by`, following page tokens (pages of 2).
async fn list_zone_names(server: &TestServer, filter: &str, order_by: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client(server)
            .list_zones(server.request(
                Role::Enterprise,
                pb::ListZonesRequest {
                    page_size: 2,
                    page_token: token,
                    filter: filter.into(),
                    order_by: order_by.into(),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("list zones {filter:?}: {s:?}"))
            .into_inner();
        out.extend(page.zones.into_iter().map(|z| z.name));
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

/// Every cluster name matching `filter` in `order_by`, following page tokens (pages of 2).
async fn list_cluster_names(server: &TestServer, filter: &str, order_by: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client(server)
            .list_clusters(server.request(
                Role::Service,
                pb::ListClustersRequest {
                    page_size: 2,
                    page_token: token,
                    filter: filter.into(),
                    order_by: order_by.into(),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("list clusters {filter:?}: {s:?}"))
            .into_inner();
        out.extend(page.clusters.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

/// INVALID_ARGUMENT with exactly these `(field, reason)` violations, in order.
#[track_caller]
fn assert_violations(result: Result<impl std::fmt::Debug, Status>, expected: &[(&str, &str)]) {
    let status = result.expect_err("must be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, r)| (f.to_string(), r.to_string()))
        .collect();
    assert_eq!(violations(&status), expected, "{status:?}");
}

#[track_caller]
fn assert_result_not_found(
    result: Result<impl std::fmt::Debug, Status>,
    resource_type: &str,
    name: &str,
) {
    assert_not_found(&result.expect_err("must be NOT_FOUND"), resource_type, name);
}

#[track_caller]
fn assert_precondition(result: Result<impl std::fmt::Debug, Status>, kind: &str, subject: &str) {
    let status = result.expect_err("must be FAILED_PRECONDITION");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let failure = status
        .get_details_precondition_failure()
        .expect("PreconditionFailure");
    assert_eq!(failure.violations[0].r#type, kind, "{status:?}");
    assert_eq!(failure.violations[0].subject, subject, "{status:?}");
}

#[track_caller]
fn assert_code(result: Result<impl std::fmt::Debug, Status>, code: Code) {
    let status = result.expect_err("must be refused");
    assert_eq!(status.code(), code, "{status:?}");
}

async fn verify_chain(server: &TestServer) -> cpb::VerifyAuditChainResponse {
    client(server)
        .verify_audit_chain(server.request(Role::Auditor, cpb::VerifyAuditChainRequest::default()))
        .await
        .unwrap()
        .into_inner()
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The Jinan and Qingdao national high-tech zones.
pub(crate) async fn programme_zones(server: &TestServer) -> (pb::Zone, pb::Zone) {
    let jinan = create_zone(
        server,
        Role::Officer,
        "jinan",
        pb::Zone {
            approval_date: "1991-03-06".into(),
            ..zone("济南高新技术产业开发区", pb::ZoneLevel::National, "370100")
        },
        "",
    )
    .await
    .unwrap();
    let qingdao = create_zone(
        server,
        Role::Officer,
        "qingdao",
        pb::Zone {
            approval_date: "1992-11-09".into(),
            ..zone("青岛高新技术产业开发区", pb::ZoneLevel::National, "370200")
        },
        "",
    )
    .await
    .unwrap();
    (jinan, qingdao)
}

// ---------------------------------------------------------------------------------------------
// docs/design.md §9 step 1
// ---------------------------------------------------------------------------------------------

async fn an_officer_registers_the_programme_zones_and_a_hydrogen_cluster_and_reads_its_progress(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (jinan, qingdao) = programme_zones(&server).await;
    assert_eq!(
        (jinan.name.as_str(), jinan.city.as_str()),
        ("zones/jinan", "Jinan")
    );
    assert_eq!(
        (qingdao.name.as_str(), qingdao.city.as_str()),
        ("zones/qingdao", "Qingdao")
    );
    assert_eq!(jinan.level, pb::ZoneLevel::National as i32);

    // The year's policy targets are in place: the seeded 10 bn yuan by 2023.
    let in_force = list_targets(
        &server,
        "kind = POLICY_TARGET_KIND_CLUSTER_SCALE AND year = 2023 AND state = POLICY_TARGET_STATE_IN_FORCE",
        "",
    )
    .await;
    assert_eq!(in_force.len(), 1);
    assert_eq!(in_force[0].name, "policyTargets/cluster-scale-2021");
    assert_eq!(in_force[0].value, TEN_BN_YUAN_FEN);
    assert_eq!(in_force[0].target_year, 2023);

    let a = shandong("3701", 1);
    let b = shandong("3702", 2);
    enterprise(&server, &a, "济南氢能装备有限公司", "zones/jinan").await;
    enterprise(&server, &b, "青岛燃料电池有限公司", "zones/qingdao").await;
    let cluster = create_cluster(
        &server,
        Role::Officer,
        "hydrogen-energy",
        hydrogen(&[&a, &b]),
        "",
    )
    .await
    .unwrap();
    assert_eq!(cluster.name, "clusters/hydrogen-energy");
    assert_eq!(cluster.target_scale_fen, None);
    assert_eq!(cluster.target_year, None);
    assert_eq!(cluster.effective_target_scale_fen, TEN_BN_YUAN_FEN);
    assert_eq!(cluster.effective_target_year, 2023);
    assert_eq!(cluster.target_source, "policyTargets/cluster-scale-2021");
    assert_eq!(cluster.members, vec![ent(&a), ent(&b)]);

    // Two members' revenues: 3.6 bn yuan (2023) and 2.64 bn yuan (2022, its latest).
    revenue(&server, &a, 2022, 300_000_000_000, "2022 审计报告").await;
    revenue(&server, &a, 2023, 360_000_000_000, "2023 审计报告").await;
    revenue(&server, &b, 2022, 264_000_000_000, "2022 审计报告").await;
    let p = progress(&server, &cluster.name, 0).await.unwrap();
    assert_eq!(p.cluster, "clusters/hydrogen-energy");
    assert_eq!(p.display_name, "山东氢能产业集群");
    assert_eq!(p.as_of_year, 2023);
    assert_eq!(p.member_count, 2);
    assert_eq!(p.members_reporting, 2);
    assert_eq!(p.revenue_fen, 624_000_000_000);
    assert_eq!(p.target_scale_fen, TEN_BN_YUAN_FEN);
    assert_eq!(p.target_year, 2023);
    assert_eq!(p.progress_basis_points, 6240);
    assert!(!p.target_reached);
    assert!(!p.on_track, "in the target year the whole target is due");
    assert!(p.members_missing_revenue.is_empty());
    let by_member: Vec<(String, i32, i64, String)> = p
        .members
        .iter()
        .map(|m| {
            (
                m.enterprise.clone(),
                m.year,
                m.revenue_fen,
                m.source.clone(),
            )
        })
        .collect();
    assert_eq!(
        by_member,
        vec![
            (
                ent(&a),
                2023,
                360_000_000_000,
                "FIGURE_SOURCE_AUDITED_STATEMENT: 2023 审计报告".to_string()
            ),
            (
                ent(&b),
                2022,
                264_000_000_000,
                "FIGURE_SOURCE_AUDITED_STATEMENT: 2022 审计报告".to_string()
            ),
        ]
    );
    assert_eq!(
        p.explanation,
        "6.24 bn of 10 bn yuan (62.40%) as of 2023; target 2023; behind the straight line from 2021 to 2023"
    );
    // As of 2022: 5.64 bn of 10 bn, half-way along 2021→2023, so on track.
    let p = progress(&server, &cluster.name, 2022).await.unwrap();
    assert_eq!(
        (p.as_of_year, p.revenue_fen, p.progress_basis_points),
        (2022, 564_000_000_000, 5640)
    );
    assert!(p.on_track, "{}", p.explanation);

    // Zones count their active enterprises.
    assert_eq!(
        get_zone(&server, "zones/jinan")
            .await
            .unwrap()
            .enterprise_count,
        1
    );
    let check = verify_chain(&server).await;
    assert!(check.intact, "{check:?}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Zones
// ---------------------------------------------------------------------------------------------

async fn zones_are_created_read_listed_and_updated_with_their_city_and_enterprise_count(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let created = create_zone(
        &server,
        Role::Admin,
        "weifang",
        zone(
            "  潍坊高新技术产业开发区 ",
            pb::ZoneLevel::National,
            "370700",
        ),
        "",
    )
    .await
    .unwrap();
    assert_eq!(created.display_name, "潍坊高新技术产业开发区");
    assert_eq!(created.city, "Weifang");
    assert_eq!(created.enterprise_count, 0);
    assert_eq!(created.approval_date, "");
    assert!(created.create_time.is_some() && !created.etag.is_empty());

    for (n, state) in [(1, "active"), (2, "active"), (3, "outside every zone")] {
        let z = if state == "outside every zone" {
            ""
        } else {
            "zones/weifang"
        };
        enterprise(&server, &shandong("3707", n), &format!("潍坊企业{n}"), z).await;
    }
    // Every authenticated role reads zones.
    let read = get_zone(&server, "zones/weifang").await.unwrap();
    assert_eq!(read.enterprise_count, 2);
    assert_eq!(read.etag, created.etag);
    // Revoked or deregistered enterprises do not count (state changed in the store: the status
    // RPCs belong to another part).
    let backend_kind = server.db.get_database_backend();
    use sea_orm::ConnectionTrait;
    server
        .db
        .execute_raw(sea_orm::Statement::from_string(
            backend_kind,
            format!(
                "UPDATE enterprise SET state = 2 WHERE uscc = '{}'",
                shandong("3707", 2)
            ),
        ))
        .await
        .unwrap();
    assert_eq!(
        get_zone(&server, "zones/weifang")
            .await
            .unwrap()
            .enterprise_count,
        1
    );

    let updated = update_zone(
        &server,
        pb::Zone {
            name: "zones/weifang".into(),
            etag: created.etag.clone(),
            level: pb::ZoneLevel::Provincial as i32,
            approval_date: "2010-09-26".into(),
            display_name: "ignored: not in the mask".into(),
            ..Default::default()
        },
        &["level", "approval_date"],
        "",
    )
    .await
    .unwrap();
    assert_eq!(updated.level, pb::ZoneLevel::Provincial as i32);
    assert_eq!(updated.approval_date, "2010-09-26");
    assert_eq!(updated.display_name, "潍坊高新技术产业开发区");
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.enterprise_count, 1);
    // Moving the zone's division re-derives its city; clearing the date clears it.
    let moved = update_zone(
        &server,
        pb::Zone {
            name: "zones/weifang".into(),
            division_code: "371200".into(),
            ..Default::default()
        },
        &["division_code", "approval_date"],
        "",
    )
    .await
    .unwrap();
    assert_eq!(moved.city, "Jinan", "Laiwu (3712) merged into Jinan");
    assert_eq!(moved.approval_date, "");
    assert_eq!(get_zone(&server, "zones/weifang").await.unwrap(), moved);

    // A zone exists for the store check CreateEnterprise uses.
    assert!(
        qilu_registry::store::zones::zone_exists(&server.db, "zones/weifang")
            .await
            .unwrap()
    );
    assert!(
        !qilu_registry::store::zones::zone_exists(&server.db, "zones/other")
            .await
            .unwrap()
    );
    assert!(
        !qilu_registry::store::zones::zone_exists(&server.db, "weifang")
            .await
            .unwrap()
    );
    server.stop().await;
}

async fn bad_zone_inputs_are_invalid_argument_naming_each_field(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let good = || zone("济南高新区", pb::ZoneLevel::National, "370100");
    assert_violations(
        create_zone(&server, Role::Officer, "Jinan", good(), "").await,
        &[("zone_id", "INVALID_ID")],
    );
    assert_violations(
        create_zone(&server, Role::Officer, "", good(), "").await,
        &[("zone_id", "INVALID_ID")],
    );
    assert_violations(
        client(&server)
            .create_zone(server.request(
                Role::Officer,
                pb::CreateZoneRequest {
                    zone_id: "jinan".into(),
                    zone: None,
                    request_id: String::new(),
                },
            ))
            .await,
        &[("zone", "REQUIRED")],
    );
    // Everything wrong at once, each with its path.
    assert_violations(
        create_zone(
            &server,
            Role::Officer,
            "jinan",
            pb::Zone {
                display_name: " ".into(),
                level: 0,
                division_code: "350100".into(),
                approval_date: "2099-01-01".into(),
                ..Default::default()
            },
            "",
        )
        .await,
        &[
            ("zone.display_name", "REQUIRED"),
            ("zone.level", "REQUIRED"),
            ("zone.division_code", "NOT_IN_SHANDONG"),
            ("zone.approval_date", "IN_FUTURE"),
        ],
    );
    for (patch, field, reason) in [
        (
            pb::Zone { level: 7, ..good() },
            "zone.level",
            "UNKNOWN_ENUM_VALUE",
        ),
        (
            pb::Zone {
                division_code: "3701".into(),
                ..good()
            },
            "zone.division_code",
            "INVALID_DIVISION_CODE",
        ),
        (
            pb::Zone {
                division_code: "370000".into(),
                ..good()
            },
            "zone.division_code",
            "NOT_IN_SHANDONG",
        ),
        (
            pb::Zone {
                division_code: String::new(),
                ..good()
            },
            "zone.division_code",
            "REQUIRED",
        ),
        (
            pb::Zone {
                approval_date: "1991/03/06".into(),
                ..good()
            },
            "zone.approval_date",
            "INVALID_DATE",
        ),
        (
            pb::Zone {
                approval_date: "1991-3-6".into(),
                ..good()
            },
            "zone.approval_date",
            "INVALID_DATE",
        ),
        (
            pb::Zone {
                approval_date: "1979-12-31".into(),
                ..good()
            },
            "zone.approval_date",
            "TOO_EARLY",
        ),
        (
            pb::Zone {
                display_name: "济".repeat(201),
                ..good()
            },
            "zone.display_name",
            "TOO_LONG",
        ),
        (
            pb::Zone {
                display_name: "济南\u{7}".into(),
                ..good()
            },
            "zone.display_name",
            "CONTROL_CHARACTER",
        ),
    ] {
        assert_violations(
            create_zone(&server, Role::Officer, "jinan", patch, "").await,
            &[(field, reason)],
        );
    }
    // The edges that pass.
    create_zone(
        &server,
        Role::Officer,
        &"z".repeat(63),
        pb::Zone {
            display_name: "济".repeat(200),
            approval_date: "1980-01-01".into(),
            ..good()
        },
        "",
    )
    .await
    .unwrap();
    // Officers and admins only.
    for role in [Role::Auditor, Role::Enterprise, Role::Expert, Role::Service] {
        assert_code(
            create_zone(&server, role, "jinan", good(), "").await,
            Code::PermissionDenied,
        );
    }
    server.stop().await;
}

async fn missing_or_malformed_names_are_not_found_or_invalid_argument(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    assert_result_not_found(
        get_zone(&server, "zones/nowhere").await,
        ZONE_TYPE,
        "zones/nowhere",
    );
    assert_result_not_found(
        get_cluster(&server, "clusters/nothing").await,
        CLUSTER_TYPE,
        "clusters/nothing",
    );
    assert_result_not_found(
        progress(&server, "clusters/nothing", 0).await,
        CLUSTER_TYPE,
        "clusters/nothing",
    );
    assert_result_not_found(
        get_target(&server, "policyTargets/none").await,
        POLICY_TARGET_TYPE,
        "policyTargets/none",
    );
    assert_result_not_found(
        update_zone(
            &server,
            pb::Zone {
                name: "zones/nowhere".into(),
                display_name: "x".into(),
                ..Default::default()
            },
            &["display_name"],
            "",
        )
        .await,
        ZONE_TYPE,
        "zones/nowhere",
    );
    assert_result_not_found(
        update_cluster(
            &server,
            pb::Cluster {
                name: "clusters/nothing".into(),
                display_name: "x".into(),
                ..Default::default()
            },
            &["display_name"],
            "",
        )
        .await,
        CLUSTER_TYPE,
        "clusters/nothing",
    );
    for bad in ["nowhere", "zones/", "zones/Bad", "clusters/x", ""] {
        assert_violations(
            get_zone(&server, bad).await,
            &[("name", "INVALID_RESOURCE_NAME")],
        );
    }
    for bad in ["hydrogen", "zones/hydrogen", "clusters/氢能"] {
        assert_violations(
            get_cluster(&server, bad).await,
            &[("name", "INVALID_RESOURCE_NAME")],
        );
        assert_violations(
            progress(&server, bad, 0).await,
            &[("name", "INVALID_RESOURCE_NAME")],
        );
    }
    for bad in ["cluster-scale-2021", "policyTargets/Cluster"] {
        assert_violations(
            get_target(&server, bad).await,
            &[("name", "INVALID_RESOURCE_NAME")],
        );
    }
    assert_violations(
        update_zone(
            &server,
            pb::Zone {
                name: "jinan".into(),
                ..Default::default()
            },
            &["level"],
            "",
        )
        .await,
        &[("zone.name", "INVALID_RESOURCE_NAME")],
    );
    assert_violations(
        update_cluster(
            &server,
            pb::Cluster {
                name: "hydrogen".into(),
                ..Default::default()
            },
            &["members"],
            "",
        )
        .await,
        &[("cluster.name", "INVALID_RESOURCE_NAME")],
    );
    server.stop().await;
}

async fn zone_and_cluster_updates_refuse_stale_etags_and_bad_masks(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (jinan, _) = programme_zones(&server).await;
    let renamed = update_zone(
        &server,
        pb::Zone {
            name: jinan.name.clone(),
            etag: jinan.etag.clone(),
            display_name: "济南国家高新技术产业开发区".into(),
            ..Default::default()
        },
        &["display_name"],
        "",
    )
    .await
    .unwrap();
    // The first etag is stale now.
    assert_code(
        update_zone(
            &server,
            pb::Zone {
                name: jinan.name.clone(),
                etag: jinan.etag.clone(),
                display_name: "旧".into(),
                ..Default::default()
            },
            &["display_name"],
            "",
        )
        .await,
        Code::Aborted,
    );
    assert_eq!(
        get_zone(&server, &jinan.name).await.unwrap().display_name,
        renamed.display_name
    );
    assert_violations(
        update_zone(
            &server,
            pb::Zone {
                name: jinan.name.clone(),
                ..Default::default()
            },
            &[],
            "",
        )
        .await,
        &[("update_mask", "REQUIRED")],
    );
    assert_violations(
        update_zone(
            &server,
            pb::Zone {
                name: jinan.name.clone(),
                city: "Qingdao".into(),
                ..Default::default()
            },
            &["city", "level"],
            "",
        )
        .await,
        &[
            ("update_mask", "FIELD_NOT_UPDATABLE"),
            ("zone.level", "REQUIRED"),
        ],
    );

    let cluster = create_cluster(&server, Role::Officer, "hydrogen", hydrogen(&[]), "")
        .await
        .unwrap();
    let changed = update_cluster(
        &server,
        pb::Cluster {
            name: cluster.name.clone(),
            etag: cluster.etag.clone(),
            description: "新描述".into(),
            ..Default::default()
        },
        &["description"],
        "",
    )
    .await
    .unwrap();
    assert_ne!(changed.etag, cluster.etag);
    assert_code(
        update_cluster(
            &server,
            pb::Cluster {
                name: cluster.name.clone(),
                etag: cluster.etag.clone(),
                description: "旧".into(),
                ..Default::default()
            },
            &["description"],
            "",
        )
        .await,
        Code::Aborted,
    );
    assert_violations(
        update_cluster(
            &server,
            pb::Cluster {
                name: cluster.name.clone(),
                ..Default::default()
            },
            &["effective_target_year", "green_category"],
            "",
        )
        .await,
        &[
            ("update_mask", "FIELD_NOT_UPDATABLE"),
            ("cluster.green_category", "REQUIRED"),
        ],
    );
    assert_violations(
        update_cluster(
            &server,
            pb::Cluster {
                name: cluster.name.clone(),
                ..Default::default()
            },
            &[],
            "",
        )
        .await,
        &[("update_mask", "REQUIRED")],
    );
    assert_eq!(get_cluster(&server, &cluster.name).await.unwrap(), changed);
    server.stop().await;
}

async fn repeated_request_ids_create_once_and_duplicate_ids_already_exist(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let id = rid();
    let z = zone("济南高新区", pb::ZoneLevel::National, "370100");
    let first = create_zone(&server, Role::Officer, "jinan", z.clone(), &id)
        .await
        .unwrap();
    let again = create_zone(&server, Role::Officer, "jinan", z.clone(), &id)
        .await
        .unwrap();
    assert_eq!(first, again);
    // A different request under the same id is refused, not replayed.
    assert_code(
        create_zone(&server, Role::Officer, "jinan2", z.clone(), &id).await,
        Code::InvalidArgument,
    );
    let dup = create_zone(&server, Role::Officer, "jinan", z.clone(), "")
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");
    assert_eq!(
        dup.get_details_resource_info().unwrap().resource_name,
        "zones/jinan"
    );
    assert_violations(
        create_zone(&server, Role::Officer, "jinan3", z.clone(), "not-a-uuid").await,
        &[("request_id", "INVALID_REQUEST_ID")],
    );

    // Updates replay too: the second call changes nothing and returns the first result.
    let uid = rid();
    let change = pb::Zone {
        name: "zones/jinan".into(),
        display_name: "济南高新技术产业开发区".into(),
        ..Default::default()
    };
    let u1 = update_zone(&server, change.clone(), &["display_name"], &uid)
        .await
        .unwrap();
    let u2 = update_zone(&server, change, &["display_name"], &uid)
        .await
        .unwrap();
    assert_eq!(u1, u2);
    assert_eq!(
        get_zone(&server, "zones/jinan").await.unwrap().etag,
        u1.etag
    );

    let cid = rid();
    let c1 = create_cluster(&server, Role::Admin, "hydrogen", hydrogen(&[]), &cid)
        .await
        .unwrap();
    let c2 = create_cluster(&server, Role::Admin, "hydrogen", hydrogen(&[]), &cid)
        .await
        .unwrap();
    assert_eq!(c1, c2);
    let dup = create_cluster(&server, Role::Admin, "hydrogen", hydrogen(&[]), "")
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");
    let ucid = rid();
    let change = pb::Cluster {
        name: "clusters/hydrogen".into(),
        target_scale_fen: Some(5),
        target_year: Some(2030),
        ..Default::default()
    };
    let u1 = update_cluster(
        &server,
        change.clone(),
        &["target_scale_fen", "target_year"],
        &ucid,
    )
    .await
    .unwrap();
    let u2 = update_cluster(&server, change, &["target_scale_fen", "target_year"], &ucid)
        .await
        .unwrap();
    assert_eq!(u1, u2);

    // One audit event per mutation that happened: 1 zone create + 1 update, 1 cluster create + 1 update.
    assert_eq!(
        audit_events(&server, "resource = \"zones/jinan\"")
            .await
            .len(),
        2
    );
    assert_eq!(
        audit_events(&server, "resource = \"clusters/hydrogen\"")
            .await
            .len(),
        2
    );
    server.stop().await;
}

async fn zone_listing_filters_orders_and_pages(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    programme_zones(&server).await;
    for (id, name, level, code) in [
        (
            "zibo",
            "淄博高新技术产业开发区",
            pb::ZoneLevel::National,
            "370300",
        ),
        (
            "jinan-zhangqiu",
            "章丘省级高新区 (济南)",
            pb::ZoneLevel::Provincial,
            "370100",
        ),
        (
            "heze",
            "菏泽高新技术产业开发区",
            pb::ZoneLevel::Provincial,
            "371700",
        ),
    ] {
        create_zone(&server, Role::Officer, id, zone(name, level, code), "")
            .await
            .unwrap();
    }
    let all = list_zone_names(&server, "", "").await;
    assert_eq!(
        all,
        [
            "zones/heze",
            "zones/jinan",
            "zones/jinan-zhangqiu",
            "zones/qingdao",
            "zones/zibo"
        ]
    );
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(list_zone_names(&server, "", "name desc").await, reversed);
    assert_eq!(
        list_zone_names(&server, "level = ZONE_LEVEL_NATIONAL", "").await,
        ["zones/jinan", "zones/qingdao", "zones/zibo"]
    );
    assert_eq!(
        list_zone_names(&server, "city = \"Jinan\"", "").await,
        ["zones/jinan", "zones/jinan-zhangqiu"]
    );
    assert_eq!(
        list_zone_names(&server, "display_name:\"济南\"", "").await,
        ["zones/jinan", "zones/jinan-zhangqiu"]
    );
    assert_eq!(
        list_zone_names(
            &server,
            "city = \"Jinan\" AND level = ZONE_LEVEL_PROVINCIAL",
            "display_name desc"
        )
        .await,
        ["zones/jinan-zhangqiu"]
    );
    let by_name = list_zone_names(&server, "", "display_name").await;
    assert_eq!(by_name.len(), 5);
    let mut by_name_desc = list_zone_names(&server, "", "display_name desc").await;
    by_name_desc.reverse();
    assert_eq!(by_name, by_name_desc);
    for (filter, order) in [
        ("level = NATIONAL", ""),
        ("division_code = \"370100\"", ""),
        ("display_name = \"济南\"", ""),
        ("", "city"),
        ("", "name sideways"),
    ] {
        let s = client(&server)
            .list_zones(server.request(
                Role::Officer,
                pb::ListZonesRequest {
                    filter: filter.into(),
                    order_by: order.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        let field = if filter.is_empty() {
            "order_by"
        } else {
            "filter"
        };
        assert_eq!(
            violations(&s).first().map(|v| v.0.as_str()),
            Some(field),
            "{s:?}"
        );
    }
    // A token is bound to its query.
    let page = client(&server)
        .list_zones(server.request(
            Role::Officer,
            pb::ListZonesRequest {
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let s = client(&server)
        .list_zones(server.request(
            Role::Officer,
            pb::ListZonesRequest {
                page_size: 1,
                page_token: page.next_page_token,
                order_by: "display_name".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violations(&s)[0].0, "page_token");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------------

async fn a_cluster_target_comes_from_the_cluster_or_else_the_policy_target_in_force(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let own = create_cluster(
        &server,
        Role::Officer,
        "own",
        pb::Cluster {
            target_scale_fen: Some(5_000_000_000_000),
            target_year: Some(2027),
            ..hydrogen(&[])
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        (
            own.effective_target_scale_fen,
            own.effective_target_year,
            own.target_source.as_str()
        ),
        (5_000_000_000_000, 2027, "cluster")
    );
    let scale_only = create_cluster(
        &server,
        Role::Officer,
        "scale-only",
        pb::Cluster {
            target_scale_fen: Some(7),
            ..hydrogen(&[])
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        (
            scale_only.effective_target_scale_fen,
            scale_only.effective_target_year
        ),
        (7, 2023)
    );
    assert_eq!(scale_only.target_source, "policyTargets/cluster-scale-2021");
    let year_only = create_cluster(
        &server,
        Role::Officer,
        "year-only",
        pb::Cluster {
            target_year: Some(2025),
            ..hydrogen(&[])
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        (
            year_only.effective_target_scale_fen,
            year_only.effective_target_year
        ),
        (TEN_BN_YUAN_FEN, 2025)
    );
    let follows = create_cluster(&server, Role::Officer, "follows", hydrogen(&[]), "")
        .await
        .unwrap();
    assert_eq!(follows.effective_target_year, 2023);
    // start_year defaults to the year of creation (programme time zone).
    let undated = create_cluster(
        &server,
        Role::Officer,
        "undated",
        pb::Cluster {
            start_year: 0,
            ..hydrogen(&[])
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(undated.start_year, this_year());

    // A 2024 plan supersedes the 2021 target: clusters that follow the policy follow it.
    create_target(
        &server,
        Role::Admin,
        "cluster-scale-2024",
        pb::PolicyTarget {
            supersedes: "policyTargets/cluster-scale-2021".into(),
            ..target(
                pb::PolicyTargetKind::ClusterScale,
                2 * TEN_BN_YUAN_FEN,
                2024,
                0,
                2027,
            )
        },
        "",
    )
    .await
    .unwrap();
    let follows = get_cluster(&server, "clusters/follows").await.unwrap();
    assert_eq!(
        (
            follows.effective_target_scale_fen,
            follows.effective_target_year,
            follows.target_source.as_str()
        ),
        (
            2 * TEN_BN_YUAN_FEN,
            2027,
            "policyTargets/cluster-scale-2024"
        )
    );
    assert_eq!(
        get_cluster(&server, "clusters/own")
            .await
            .unwrap()
            .target_source,
        "cluster"
    );
    // A cluster whose own year (2025) the new target covers takes its value.
    let year_only = get_cluster(&server, "clusters/year-only").await.unwrap();
    assert_eq!(year_only.effective_target_scale_fen, 2 * TEN_BN_YUAN_FEN);

    // With no CLUSTER_SCALE target in force for 2022 any more, a cluster aiming at 2022 must
    // name its own scale.
    assert_precondition(
        create_cluster(
            &server,
            Role::Officer,
            "early",
            pb::Cluster {
                target_year: Some(2022),
                ..hydrogen(&[])
            },
            "",
        )
        .await,
        "NO_CLUSTER_SCALE_TARGET",
        "clusters/early",
    );
    let early = create_cluster(
        &server,
        Role::Officer,
        "early",
        pb::Cluster {
            target_year: Some(2022),
            target_scale_fen: Some(1),
            ..hydrogen(&[])
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(early.target_source, "cluster");
    server.stop().await;
}

async fn bad_cluster_inputs_are_invalid_argument_naming_each_field(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let a = shandong("3701", 1);
    enterprise(&server, &a, "济南氢能", "").await;
    let unknown = shandong("3702", 99);
    assert_violations(
        create_cluster(&server, Role::Officer, "Hydrogen", hydrogen(&[]), "").await,
        &[("cluster_id", "INVALID_ID")],
    );
    assert_violations(
        client(&server)
            .create_cluster(server.request(
                Role::Officer,
                pb::CreateClusterRequest {
                    cluster_id: "h".into(),
                    ..Default::default()
                },
            ))
            .await,
        &[("cluster", "REQUIRED")],
    );
    assert_violations(
        create_cluster(
            &server,
            Role::Officer,
            "h",
            pb::Cluster {
                display_name: String::new(),
                green_category: 0,
                description: "x".repeat(4001),
                members: vec![ent(&a), "91370100MA3C00001".into(), ent(&a)],
                target_scale_fen: Some(0),
                target_year: Some(1900),
                start_year: 2999,
                ..Default::default()
            },
            "",
        )
        .await,
        &[
            ("cluster.display_name", "REQUIRED"),
            ("cluster.green_category", "REQUIRED"),
            ("cluster.description", "TOO_LONG"),
            ("cluster.members[1]", "INVALID_RESOURCE_NAME"),
            ("cluster.members[2]", "DUPLICATE"),
            ("cluster.target_scale_fen", "NOT_POSITIVE"),
            ("cluster.target_year", "OUT_OF_RANGE"),
            ("cluster.start_year", "OUT_OF_RANGE"),
        ],
    );
    // Members must be registered: each unknown one is named by its index.
    assert_violations(
        create_cluster(
            &server,
            Role::Officer,
            "h",
            hydrogen(&[&unknown, &a, &shandong("3703", 5)]),
            "",
        )
        .await,
        &[
            ("cluster.members[0]", "UNKNOWN_ENTERPRISE"),
            ("cluster.members[2]", "UNKNOWN_ENTERPRISE"),
        ],
    );
    assert_violations(
        create_cluster(
            &server,
            Role::Officer,
            "h",
            pb::Cluster {
                members: vec!["enterprises/91350100M000100Y4Z".into()],
                ..hydrogen(&[])
            },
            "",
        )
        .await,
        &[("cluster.members[0]", "INVALID_CHECKSUM")],
    );
    let too_many: Vec<String> = (0..10_001).map(|i| ent(&shandong("3701", i))).collect();
    assert_violations(
        create_cluster(
            &server,
            Role::Officer,
            "h",
            pb::Cluster {
                members: too_many,
                ..hydrogen(&[])
            },
            "",
        )
        .await,
        &[("cluster.members", "TOO_MANY")],
    );
    for (patch, field, reason) in [
        (
            pb::Cluster {
                green_category: 42,
                ..hydrogen(&[])
            },
            "cluster.green_category",
            "UNKNOWN_ENUM_VALUE",
        ),
        (
            pb::Cluster {
                target_scale_fen: Some(-1),
                ..hydrogen(&[])
            },
            "cluster.target_scale_fen",
            "NOT_POSITIVE",
        ),
        (
            pb::Cluster {
                start_year: 2030,
                ..hydrogen(&[])
            },
            "cluster.start_year",
            "IN_FUTURE",
        ),
        (
            pb::Cluster {
                target_year: Some(2020),
                ..hydrogen(&[])
            },
            "cluster.target_year",
            "BEFORE_START_YEAR",
        ),
        (
            pb::Cluster {
                display_name: "氢".repeat(201),
                ..hydrogen(&[])
            },
            "cluster.display_name",
            "TOO_LONG",
        ),
        (
            pb::Cluster {
                description: "a\u{0}b".into(),
                ..hydrogen(&[])
            },
            "cluster.description",
            "CONTROL_CHARACTER",
        ),
    ] {
        assert_violations(
            create_cluster(&server, Role::Officer, "h", patch, "").await,
            &[(field, reason)],
        );
    }
    // Edges that pass: 1 fen, a target year equal to the start year, a multi-line description.
    create_cluster(
        &server,
        Role::Officer,
        "h",
        pb::Cluster {
            target_scale_fen: Some(1),
            target_year: Some(2021),
            description: "第一行\n第二行".into(),
            ..hydrogen(&[&a])
        },
        "",
    )
    .await
    .unwrap();
    // Nothing refused was stored or audited.
    assert_eq!(
        audit_events(&server, "resource = \"clusters/h\"")
            .await
            .len(),
        1
    );
    server.stop().await;
}

async fn cluster_updates_replace_members_and_revert_to_the_policy_target(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (a, b, c) = (
        shandong("3701", 1),
        shandong("3702", 2),
        shandong("3703", 3),
    );
    for (u, n) in [(&a, "甲"), (&b, "乙"), (&c, "丙")] {
        enterprise(&server, u, n, "").await;
    }
    let cluster = create_cluster(
        &server,
        Role::Officer,
        "hydrogen",
        pb::Cluster {
            target_scale_fen: Some(123),
            target_year: Some(2030),
            ..hydrogen(&[&b, &a])
        },
        "",
    )
    .await
    .unwrap();
    // Members come back sorted by USCC.
    let mut sorted = vec![ent(&a), ent(&b)];
    sorted.sort();
    assert_eq!(cluster.members, sorted);
    let updated = update_cluster(
        &server,
        pb::Cluster {
            name: cluster.name.clone(),
            etag: cluster.etag.clone(),
            members: vec![ent(&c), ent(&a)],
            display_name: "山东半岛氢能集群".into(),
            ..Default::default()
        },
        &["members", "display_name", "target_scale_fen", "target_year"],
        "",
    )
    .await
    .unwrap();
    let mut expected = vec![ent(&a), ent(&c)];
    expected.sort();
    assert_eq!(updated.members, expected);
    assert_eq!(updated.display_name, "山东半岛氢能集群");
    // Unset in the masked cluster = revert to the policy target.
    assert_eq!(
        (updated.target_scale_fen, updated.target_year),
        (None, None)
    );
    assert_eq!(updated.effective_target_scale_fen, TEN_BN_YUAN_FEN);
    assert_eq!(updated.target_source, "policyTargets/cluster-scale-2021");
    assert_eq!(get_cluster(&server, &cluster.name).await.unwrap(), updated);
    // The member filter sees the new membership.
    assert!(
        list_cluster_names(&server, &format!("members = \"{}\"", ent(&b)), "")
            .await
            .is_empty()
    );
    assert_eq!(
        list_cluster_names(&server, &format!("members = \"{}\"", ent(&c)), "").await,
        ["clusters/hydrogen"]
    );
    // Unknown members, a start year after the own target year: refused, nothing changes.
    assert_violations(
        update_cluster(
            &server,
            pb::Cluster {
                name: cluster.name.clone(),
                members: vec![ent(&shandong("3704", 4))],
                ..Default::default()
            },
            &["members"],
            "",
        )
        .await,
        &[("cluster.members[0]", "UNKNOWN_ENTERPRISE")],
    );
    assert_violations(
        update_cluster(
            &server,
            pb::Cluster {
                name: cluster.name.clone(),
                target_year: Some(2022),
                start_year: 2024,
                ..Default::default()
            },
            &["target_year", "start_year"],
            "",
        )
        .await,
        &[("cluster.target_year", "BEFORE_START_YEAR")],
    );
    // start_year 0 reverts to the year of creation; clearing members empties the cluster.
    let reverted = update_cluster(
        &server,
        pb::Cluster {
            name: cluster.name.clone(),
            ..Default::default()
        },
        &["start_year", "members", "description"],
        "",
    )
    .await
    .unwrap();
    assert_eq!(reverted.start_year, this_year());
    assert!(reverted.members.is_empty());
    assert_eq!(reverted.description, "");
    assert_eq!(get_cluster(&server, &cluster.name).await.unwrap(), reverted);
    // Officers and admins only.
    for role in [Role::Auditor, Role::Enterprise, Role::Expert, Role::Service] {
        let s = client(&server)
            .update_cluster(server.request(
                role,
                pb::UpdateClusterRequest {
                    cluster: Some(pb::Cluster {
                        name: cluster.name.clone(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["description"]),
                    request_id: String::new(),
                },
            ))
            .await;
        assert_code(s, Code::PermissionDenied);
    }
    server.stop().await;
}

async fn cluster_listing_filters_by_category_member_target_year_and_name(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (a, b) = (shandong("3701", 1), shandong("3702", 2));
    enterprise(&server, &a, "甲", "").await;
    enterprise(&server, &b, "乙", "").await;
    create_cluster(&server, Role::Officer, "hydrogen", hydrogen(&[&a]), "")
        .await
        .unwrap();
    create_cluster(
        &server,
        Role::Officer,
        "solar",
        pb::Cluster {
            display_name: "光伏产业集群".into(),
            target_year: Some(2025),
            ..hydrogen(&[&a, &b])
        },
        "",
    )
    .await
    .unwrap();
    create_cluster(
        &server,
        Role::Officer,
        "recycling",
        pb::Cluster {
            display_name: "资源循环利用集群".into(),
            green_category: cpb::GreenCategory::EnergySavingAndEnvironmentalProtection as i32,
            target_year: Some(2023),
            target_scale_fen: Some(10),
            ..hydrogen(&[])
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        list_cluster_names(&server, "", "").await,
        ["clusters/hydrogen", "clusters/recycling", "clusters/solar"]
    );
    assert_eq!(
        list_cluster_names(&server, "", "name desc").await,
        ["clusters/solar", "clusters/recycling", "clusters/hydrogen"]
    );
    assert_eq!(
        list_cluster_names(&server, "green_category = GREEN_CATEGORY_CLEAN_ENERGY", "").await,
        ["clusters/hydrogen", "clusters/solar"]
    );
    assert_eq!(
        list_cluster_names(&server, &format!("members = \"{}\"", ent(&a)), "").await,
        ["clusters/hydrogen", "clusters/solar"]
    );
    assert_eq!(
        list_cluster_names(&server, &format!("members:\"{}\"", ent(&b)), "").await,
        ["clusters/solar"]
    );
    // Effective year: 2023 from the policy (hydrogen) or set on the cluster (recycling).
    assert_eq!(
        list_cluster_names(&server, "effective_target_year = 2023", "").await,
        ["clusters/hydrogen", "clusters/recycling"]
    );
    assert_eq!(
        list_cluster_names(&server, "effective_target_year = 2025", "").await,
        ["clusters/solar"]
    );
    assert_eq!(
        list_cluster_names(
            &server,
            "display_name:\"氢能\" AND effective_target_year = 2023",
            ""
        )
        .await,
        ["clusters/hydrogen"]
    );
    let by_name = list_cluster_names(&server, "", "display_name").await;
    let mut desc = list_cluster_names(&server, "", "display_name desc").await;
    desc.reverse();
    assert_eq!(by_name, desc);
    // Listed clusters carry their effective targets.
    let page = client(&server)
        .list_clusters(server.request(Role::Auditor, pb::ListClustersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let targets: Vec<(String, i64, i32, String)> = page
        .clusters
        .into_iter()
        .map(|c| {
            (
                c.name,
                c.effective_target_scale_fen,
                c.effective_target_year,
                c.target_source,
            )
        })
        .collect();
    assert_eq!(
        targets,
        vec![
            (
                "clusters/hydrogen".into(),
                TEN_BN_YUAN_FEN,
                2023,
                "policyTargets/cluster-scale-2021".into()
            ),
            ("clusters/recycling".into(), 10, 2023, "cluster".into()),
            (
                "clusters/solar".into(),
                TEN_BN_YUAN_FEN,
                2025,
                "policyTargets/cluster-scale-2021".into()
            ),
        ]
    );
    for bad in [
        "green_category = CLEAN_ENERGY",
        "members = \"91370100MA3C000011\"",
        "effective_target_year = soon",
        "effective_target_year > 2020",
        "target_scale_fen = 5",
    ] {
        let s = client(&server)
            .list_clusters(server.request(
                Role::Officer,
                pb::ListClustersRequest {
                    filter: bad.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(
            violations(&s).first().map(|v| v.0.as_str()),
            Some("filter"),
            "{bad}: {s:?}"
        );
    }
    server.stop().await;
}

async fn an_enterprise_reads_only_the_clusters_it_belongs_to(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (member, outsider) = (shandong("3701", 1), shandong("3701", 2));
    enterprise(&server, &member, "成员", "").await;
    enterprise(&server, &outsider, "非成员", "").await;
    create_cluster(&server, Role::Officer, "hydrogen", hydrogen(&[&member]), "")
        .await
        .unwrap();
    let mut c = client(&server);
    let read = c
        .get_cluster(server.enterprise_request(
            &member,
            pb::GetClusterRequest {
                name: "clusters/hydrogen".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.members, vec![ent(&member)]);
    for name in ["clusters/hydrogen", "clusters/does-not-exist"] {
        let s = c
            .get_cluster(
                server.enterprise_request(&outsider, pb::GetClusterRequest { name: name.into() }),
            )
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{name}: {s:?}");
    }
    // Progress and listings are staff-only, even for members.
    let s = c
        .get_cluster_progress(server.enterprise_request(
            &member,
            pb::GetClusterProgressRequest {
                name: "clusters/hydrogen".into(),
                as_of_year: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    let s = c
        .list_clusters(server.enterprise_request(&member, pb::ListClustersRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    // Zones are public to every authenticated role.
    programme_zones(&server).await;
    c.get_zone(server.enterprise_request(
        &outsider,
        pb::GetZoneRequest {
            name: "zones/jinan".into(),
        },
    ))
    .await
    .unwrap();
    server.stop().await;
}

/// Calls one of this file's RPCs as `role` with a valid request (creations use fresh ids).
async fn call_as(
    server: &TestServer,
    method: &str,
    role: Role,
    member: &str,
    n: u32,
) -> Result<(), Status> {
    let mut c = client(server);
    // Requests of different message types: a macro wraps each with the caller's token.
    macro_rules! wrap {
        ($m:expr) => {
            if role == Role::Enterprise {
                server.enterprise_request(member, $m)
            } else {
                server.request(role, $m)
            }
        };
    }
    match method {
        "CreateZone" => c
            .create_zone(wrap!(pb::CreateZoneRequest {
                zone_id: format!("z{n}"),
                zone: Some(zone("测试区", pb::ZoneLevel::Provincial, "370100")),
                request_id: String::new(),
            }))
            .await
            .map(drop),
        "GetZone" => c
            .get_zone(wrap!(pb::GetZoneRequest {
                name: "zones/jinan".into()
            }))
            .await
            .map(drop),
        "ListZones" => c
            .list_zones(wrap!(pb::ListZonesRequest::default()))
            .await
            .map(drop),
        "UpdateZone" => c
            .update_zone(wrap!(pb::UpdateZoneRequest {
                zone: Some(pb::Zone {
                    name: "zones/jinan".into(),
                    approval_date: "1991-03-06".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["approval_date"]),
                request_id: String::new(),
            }))
            .await
            .map(drop),
        "CreateCluster" => c
            .create_cluster(wrap!(pb::CreateClusterRequest {
                cluster_id: format!("c{n}"),
                cluster: Some(hydrogen(&[])),
                request_id: String::new(),
            }))
            .await
            .map(drop),
        "GetCluster" => c
            .get_cluster(wrap!(pb::GetClusterRequest {
                name: "clusters/hydrogen".into()
            }))
            .await
            .map(drop),
        "ListClusters" => c
            .list_clusters(wrap!(pb::ListClustersRequest::default()))
            .await
            .map(drop),
        "UpdateCluster" => c
            .update_cluster(wrap!(pb::UpdateClusterRequest {
                cluster: Some(pb::Cluster {
                    name: "clusters/hydrogen".into(),
                    description: format!("v{n}"),
                    ..Default::default()
                }),
                update_mask: mask(&["description"]),
                request_id: String::new(),
            }))
            .await
            .map(drop),
        "GetClusterProgress" => c
            .get_cluster_progress(wrap!(pb::GetClusterProgressRequest {
                name: "clusters/hydrogen".into(),
                as_of_year: 0
            }))
            .await
            .map(drop),
        "CreatePolicyTarget" => c
            .create_policy_target(wrap!(pb::CreatePolicyTargetRequest {
                policy_target_id: format!("t{n}"),
                // One year each, far apart, so they never overlap.
                policy_target: Some(target(
                    pb::PolicyTargetKind::ClusterCount,
                    6,
                    2030 + n as i32,
                    2030 + n as i32,
                    0
                )),
                request_id: String::new(),
            }))
            .await
            .map(drop),
        "GetPolicyTarget" => c
            .get_policy_target(wrap!(pb::GetPolicyTargetRequest {
                name: "policyTargets/cluster-scale-2021".into()
            }))
            .await
            .map(drop),
        "ListPolicyTargets" => c
            .list_policy_targets(wrap!(pb::ListPolicyTargetsRequest::default()))
            .await
            .map(drop),
        other => panic!("unknown method {other}"),
    }
}

async fn every_role_is_allowed_or_refused_as_the_role_table_says(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let member = shandong("3701", 1);
    enterprise(&server, &member, "成员", "").await;
    programme_zones(&server).await;
    create_cluster(&server, Role::Officer, "hydrogen", hydrogen(&[&member]), "")
        .await
        .unwrap();
    let methods = [
        "CreateZone",
        "GetZone",
        "ListZones",
        "UpdateZone",
        "CreateCluster",
        "GetCluster",
        "ListClusters",
        "UpdateCluster",
        "GetClusterProgress",
        "CreatePolicyTarget",
        "GetPolicyTarget",
        "ListPolicyTargets",
    ];
    let mut n = 0;
    for method in methods {
        let allowed = qilu_common::server::roles_of(ROLE_TABLE, method)
            .unwrap_or_else(|| panic!("{method} is missing from the role table"));
        for role in Role::ALL {
            n += 1;
            let result = call_as(&server, method, role, &member, n).await;
            if allowed.contains(&role) {
                assert!(
                    result.is_ok(),
                    "{method} as {role} should succeed: {result:?}"
                );
            } else {
                let s = result.expect_err(&format!("{method} as {role} must be refused"));
                assert_eq!(
                    s.code(),
                    Code::PermissionDenied,
                    "{method} as {role}: {s:?}"
                );
            }
        }
    }
    let check = verify_chain(&server).await;
    assert!(check.intact, "{check:?}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------------------------

async fn progress_counts_each_members_latest_revenue_up_to_the_as_of_year(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (a, b, c) = (
        shandong("3701", 1),
        shandong("3702", 2),
        shandong("3703", 3),
    );
    for u in [&a, &b, &c] {
        enterprise(&server, u, "成员", "").await;
    }
    // Own target: 10 bn yuan by 2025, from 2021: a straight line of 2.5 bn a year.
    let cluster = create_cluster(
        &server,
        Role::Officer,
        "h",
        pb::Cluster {
            target_scale_fen: Some(TEN_BN_YUAN_FEN),
            target_year: Some(2025),
            ..hydrogen(&[&a, &b, &c])
        },
        "",
    )
    .await
    .unwrap();
    revenue(&server, &a, 2021, 100_000_000_000, "").await;
    revenue(&server, &a, 2023, 300_000_000_000, "").await;
    revenue(&server, &b, 2022, 200_000_000_000, "").await;
    revenue(&server, &b, 2024, 200_000_000_001, "").await;

    // All years: a 2023 (3 bn) + b 2024 (2 bn + 1 fen) = 5 bn + 1 fen as of 2024; 3/4 of the
    // time elapsed needs 7.5 bn: behind.
    let p = progress(&server, &cluster.name, 0).await.unwrap();
    assert_eq!(
        (p.as_of_year, p.revenue_fen, p.progress_basis_points),
        (2024, 500_000_000_001, 5000)
    );
    assert_eq!((p.member_count, p.members_reporting), (3, 2));
    assert_eq!(p.members_missing_revenue, vec![ent(&c)]);
    assert!(!p.on_track && !p.target_reached);
    assert!(
        p.explanation
            .contains("1 of 3 members without a revenue figure"),
        "{}",
        p.explanation
    );
    // As of 2023: a 2023 (3 bn) + b 2022 (2 bn) = 5 bn; half the time needs exactly 5 bn: on track.
    let p = progress(&server, &cluster.name, 2023).await.unwrap();
    assert_eq!(
        (p.as_of_year, p.revenue_fen, p.progress_basis_points),
        (2023, 500_000_000_000, 5000)
    );
    assert!(p.on_track, "{}", p.explanation);
    let years: Vec<i32> = p.members.iter().map(|m| m.year).collect();
    assert_eq!(years.len(), 2);
    // As of 2021: only a's 2021 figure; b has none yet and is listed as missing.
    let p = progress(&server, &cluster.name, 2021).await.unwrap();
    assert_eq!(
        (p.as_of_year, p.revenue_fen, p.members_reporting),
        (2021, 100_000_000_000, 1)
    );
    let mut missing = vec![ent(&b), ent(&c)];
    missing.sort();
    assert_eq!(p.members_missing_revenue, missing);
    assert!(p.on_track, "nothing is expected in the start year");
    // Reaching the target exactly.
    revenue(&server, &c, 2025, 500_000_000_000 - 1, "").await;
    let p = progress(&server, &cluster.name, 0).await.unwrap();
    assert_eq!(
        (p.revenue_fen, p.progress_basis_points),
        (TEN_BN_YUAN_FEN, 10_000)
    );
    assert!(p.target_reached && p.on_track);
    assert!(
        p.explanation
            .starts_with("10 bn of 10 bn yuan (100.00%) as of 2025; target 2025; reached"),
        "{}",
        p.explanation
    );
    for bad in [-1, 1979, 2101] {
        assert_violations(
            progress(&server, &cluster.name, bad).await,
            &[("as_of_year", "OUT_OF_RANGE")],
        );
    }
    server.stop().await;
}

async fn progress_without_figures_names_every_member_and_is_not_on_track(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (a, b) = (shandong("3701", 1), shandong("3702", 2));
    enterprise(&server, &a, "甲", "").await;
    enterprise(&server, &b, "乙", "").await;
    create_cluster(&server, Role::Officer, "h", hydrogen(&[&b, &a]), "")
        .await
        .unwrap();
    let p = progress(&server, "clusters/h", 0).await.unwrap();
    assert_eq!(
        (p.as_of_year, p.revenue_fen, p.progress_basis_points),
        (0, 0, 0)
    );
    assert_eq!((p.member_count, p.members_reporting), (2, 0));
    let mut missing = vec![ent(&a), ent(&b)];
    missing.sort();
    assert_eq!(p.members_missing_revenue, missing);
    assert!(!p.on_track && !p.target_reached);
    assert!(p.members.is_empty());
    assert!(
        p.explanation
            .starts_with("no member has a revenue figure; target 10 bn yuan by 2023"),
        "{}",
        p.explanation
    );
    // An empty cluster too.
    create_cluster(&server, Role::Officer, "empty", hydrogen(&[]), "")
        .await
        .unwrap();
    let p = progress(&server, "clusters/empty", 0).await.unwrap();
    assert_eq!(p.member_count, 0);
    assert!(!p.on_track);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Policy targets
// ---------------------------------------------------------------------------------------------

async fn seeded_policy_targets_are_listed_with_kind_state_and_year_filters(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let names = |ts: Vec<pb::PolicyTarget>| ts.into_iter().map(|t| t.name).collect::<Vec<_>>();
    let all = list_targets(&server, "", "").await;
    assert_eq!(all.len(), 5);
    assert!(
        all.iter()
            .all(|t| t.state == pb::PolicyTargetState::InForce as i32)
    );
    assert!(
        all.iter()
            .all(|t| !t.source.is_empty() && !t.etag.is_empty())
    );
    // Default order: effective_from_year, then name.
    assert_eq!(
        names(all),
        [
            "policyTargets/cluster-scale-2021",
            "policyTargets/leading-cohort-2021",
            "policyTargets/new-hte-yearly-2021",
            "policyTargets/cluster-count-2025",
            "policyTargets/green-hte-2025",
        ]
    );
    assert_eq!(
        names(list_targets(&server, "", "effective_from_year desc").await),
        [
            "policyTargets/green-hte-2025",
            "policyTargets/cluster-count-2025",
            "policyTargets/new-hte-yearly-2021",
            "policyTargets/leading-cohort-2021",
            "policyTargets/cluster-scale-2021",
        ]
    );
    assert_eq!(list_targets(&server, "", "create_time").await.len(), 5);
    let leading = get_target(&server, "policyTargets/leading-cohort-2021")
        .await
        .unwrap();
    assert_eq!(
        (
            leading.kind,
            leading.value,
            leading.effective_from_year,
            leading.effective_to_year
        ),
        (pb::PolicyTargetKind::LeadingCohortSize as i32, 200, 2021, 0)
    );
    assert_eq!(leading.source_date, "2021-09-01");
    assert_eq!(
        names(list_targets(&server, "year = 2022", "").await),
        [
            "policyTargets/cluster-scale-2021",
            "policyTargets/leading-cohort-2021",
            "policyTargets/new-hte-yearly-2021",
        ]
    );
    assert_eq!(list_targets(&server, "year = 2024", "").await.len(), 5);
    assert_eq!(list_targets(&server, "year = 2020", "").await.len(), 0);
    assert_eq!(
        list_targets(&server, "year = 2026", "").await.len(),
        3,
        "the 2025 plan ends in 2025"
    );
    assert_eq!(
        names(
            list_targets(
                &server,
                "kind = POLICY_TARGET_KIND_YEARLY_NEW_HIGH_TECH_ENTERPRISES",
                ""
            )
            .await
        ),
        ["policyTargets/new-hte-yearly-2021"]
    );
    assert!(
        list_targets(&server, "state = POLICY_TARGET_STATE_SUPERSEDED", "")
            .await
            .is_empty()
    );
    for (filter, order) in [
        ("kind = CLUSTER_SCALE", ""),
        ("state = POLICY_TARGET_STATE_UNSPECIFIED", ""),
        ("year = twenty", ""),
        ("year >= 2020", ""),
        ("value = 200", ""),
        ("", "value"),
        ("", "create_time up"),
    ] {
        let s = client(&server)
            .list_policy_targets(server.request(
                Role::Auditor,
                pb::ListPolicyTargetsRequest {
                    filter: filter.into(),
                    order_by: order.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        let field = if filter.is_empty() {
            "order_by"
        } else {
            "filter"
        };
        assert_eq!(
            violations(&s).first().map(|v| v.0.as_str()),
            Some(field),
            "{filter} {order}: {s:?}"
        );
    }
    server.stop().await;
}

async fn a_new_policy_target_supersedes_the_old_one_in_the_same_transaction(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let old = get_target(&server, "policyTargets/leading-cohort-2021")
        .await
        .unwrap();
    let new = create_target(
        &server,
        Role::Admin,
        "leading-cohort-2024",
        pb::PolicyTarget {
            supersedes: "policyTargets/leading-cohort-2021".into(),
            ..target(pb::PolicyTargetKind::LeadingCohortSize, 250, 2021, 0, 2025)
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(new.name, "policyTargets/leading-cohort-2024");
    assert_eq!(new.state, pb::PolicyTargetState::InForce as i32);
    assert_eq!(new.supersedes, "policyTargets/leading-cohort-2021");
    assert_eq!(new.superseded_by, "");
    assert_eq!(new.source_date, "2024-03-01");
    let old_now = get_target(&server, "policyTargets/leading-cohort-2021")
        .await
        .unwrap();
    assert_eq!(old_now.state, pb::PolicyTargetState::Superseded as i32);
    assert_eq!(old_now.superseded_by, "policyTargets/leading-cohort-2024");
    assert_ne!(old_now.etag, old.etag);
    assert_eq!(
        old_now.update_time, new.create_time,
        "changed in the same transaction"
    );
    // The old one stays readable and listable; the in-force filter finds the new one.
    let in_force = list_targets(
        &server,
        "kind = POLICY_TARGET_KIND_LEADING_COHORT_SIZE AND year = 2023 AND state = POLICY_TARGET_STATE_IN_FORCE",
        "",
    )
    .await;
    assert_eq!(
        in_force.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["policyTargets/leading-cohort-2024"]
    );
    let superseded = list_targets(&server, "state = POLICY_TARGET_STATE_SUPERSEDED", "").await;
    assert_eq!(superseded.len(), 1);
    assert_eq!(superseded[0].name, "policyTargets/leading-cohort-2021");
    // The store's in-force lookup (used by cohorts and clusters) agrees.
    let m = qilu_registry::store::policy::in_force(
        &server.db,
        qilu_registry::store::policy::kind::LEADING_COHORT_SIZE,
        2023,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(m.value, 250);
    // Both changes are audited: the new target and the old one's new state.
    let created = audit_events(&server, "resource = \"policyTargets/leading-cohort-2024\"").await;
    let marked = audit_events(&server, "resource = \"policyTargets/leading-cohort-2021\"").await;
    assert_eq!((created.len(), marked.len()), (1, 1));
    assert_eq!(created[0].request_id, marked[0].request_id);
    assert!(
        marked[0].state_json.contains("leading-cohort-2024"),
        "{}",
        marked[0].state_json
    );
    // A superseded target cannot be superseded again.
    assert_precondition(
        create_target(
            &server,
            Role::Admin,
            "leading-cohort-2025",
            pb::PolicyTarget {
                supersedes: "policyTargets/leading-cohort-2021".into(),
                ..target(pb::PolicyTargetKind::LeadingCohortSize, 300, 2025, 0, 0)
            },
            "",
        )
        .await,
        "ALREADY_SUPERSEDED",
        "policyTargets/leading-cohort-2021",
    );
    // A target is never edited: there is no update RPC, and a superseded chain continues.
    create_target(
        &server,
        Role::Admin,
        "leading-cohort-2025",
        pb::PolicyTarget {
            supersedes: "policyTargets/leading-cohort-2024".into(),
            ..target(pb::PolicyTargetKind::LeadingCohortSize, 300, 2025, 0, 0)
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        list_targets(&server, "state = POLICY_TARGET_STATE_SUPERSEDED", "")
            .await
            .len(),
        2
    );
    let check = verify_chain(&server).await;
    assert!(check.intact, "{check:?}");
    server.stop().await;
}

async fn overlapping_or_misdirected_policy_targets_are_refused(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    // The seeded 2021 cluster scale is open-ended: any later range overlaps it.
    assert_precondition(
        create_target(
            &server,
            Role::Admin,
            "cluster-scale-2030",
            target(pb::PolicyTargetKind::ClusterScale, 1, 2030, 2031, 2031),
            "",
        )
        .await,
        "OVERLAPPING_TARGET",
        "policyTargets/cluster-scale-2021",
    );
    // The 2025 plan's cluster count covers 2023-2025: edges overlap, the year after does not.
    assert_precondition(
        create_target(
            &server,
            Role::Admin,
            "cc-2025",
            target(pb::PolicyTargetKind::ClusterCount, 6, 2025, 2027, 2027),
            "",
        )
        .await,
        "OVERLAPPING_TARGET",
        "policyTargets/cluster-count-2025",
    );
    assert_precondition(
        create_target(
            &server,
            Role::Admin,
            "cc-2020",
            target(pb::PolicyTargetKind::ClusterCount, 6, 2020, 2023, 2023),
            "",
        )
        .await,
        "OVERLAPPING_TARGET",
        "policyTargets/cluster-count-2025",
    );
    create_target(
        &server,
        Role::Admin,
        "cc-2026",
        target(pb::PolicyTargetKind::ClusterCount, 8, 2026, 2030, 2030),
        "",
    )
    .await
    .unwrap();
    create_target(
        &server,
        Role::Admin,
        "cc-2020",
        target(pb::PolicyTargetKind::ClusterCount, 2, 2020, 2022, 2022),
        "",
    )
    .await
    .unwrap();
    // Now 2031 onwards is free, but 2030 onwards is not.
    assert_precondition(
        create_target(
            &server,
            Role::Admin,
            "cc-2030",
            target(pb::PolicyTargetKind::ClusterCount, 9, 2030, 0, 2035),
            "",
        )
        .await,
        "OVERLAPPING_TARGET",
        "policyTargets/cc-2026",
    );
    // Superseding needs the same kind and an existing target.
    assert_violations(
        create_target(
            &server,
            Role::Admin,
            "x",
            pb::PolicyTarget {
                supersedes: "policyTargets/leading-cohort-2021".into(),
                ..target(pb::PolicyTargetKind::ClusterScale, 1, 2024, 0, 2025)
            },
            "",
        )
        .await,
        &[("policy_target.supersedes", "KIND_MISMATCH")],
    );
    assert_violations(
        create_target(
            &server,
            Role::Admin,
            "x",
            pb::PolicyTarget {
                supersedes: "policyTargets/no-such-target".into(),
                ..target(pb::PolicyTargetKind::ClusterScale, 1, 2024, 0, 2025)
            },
            "",
        )
        .await,
        &[("policy_target.supersedes", "UNKNOWN_POLICY_TARGET")],
    );
    // An existing id is ALREADY_EXISTS.
    let s = create_target(
        &server,
        Role::Admin,
        "cluster-scale-2021",
        pb::PolicyTarget {
            supersedes: "policyTargets/cluster-scale-2021".into(),
            ..target(pb::PolicyTargetKind::ClusterScale, 1, 2024, 0, 2025)
        },
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::AlreadyExists, "{s:?}");
    // ... and the refused superseding left the old target in force.
    let old = get_target(&server, "policyTargets/cluster-scale-2021")
        .await
        .unwrap();
    assert_eq!(old.state, pb::PolicyTargetState::InForce as i32);
    // Only admins record targets.
    for role in [
        Role::Officer,
        Role::Auditor,
        Role::Service,
        Role::Enterprise,
        Role::Expert,
    ] {
        assert_code(
            create_target(
                &server,
                role,
                "y",
                target(pb::PolicyTargetKind::ClusterCount, 1, 2040, 2040, 0),
                "",
            )
            .await,
            Code::PermissionDenied,
        );
    }
    server.stop().await;
}

async fn bad_policy_target_inputs_are_invalid_argument_naming_each_field(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    assert_violations(
        create_target(
            &server,
            Role::Admin,
            "Bad Id",
            pb::PolicyTarget {
                kind: 0,
                value: -5,
                effective_from_year: 0,
                effective_to_year: 1800,
                target_year: 3000,
                source: "  ".into(),
                source_date: "2021-9-1".into(),
                note: "n".repeat(2001),
                supersedes: "cluster-scale-2021".into(),
                ..Default::default()
            },
            "",
        )
        .await,
        &[
            ("policy_target_id", "INVALID_ID"),
            ("policy_target.kind", "REQUIRED"),
            ("policy_target.value", "NEGATIVE"),
            ("policy_target.effective_from_year", "REQUIRED"),
            ("policy_target.effective_to_year", "OUT_OF_RANGE"),
            ("policy_target.target_year", "OUT_OF_RANGE"),
            ("policy_target.source", "REQUIRED"),
            ("policy_target.note", "TOO_LONG"),
            ("policy_target.source_date", "INVALID_DATE"),
            ("policy_target.supersedes", "INVALID_RESOURCE_NAME"),
        ],
    );
    let good = || target(pb::PolicyTargetKind::ClusterCount, 6, 2040, 2041, 2041);
    for (patch, field, reason) in [
        (
            pb::PolicyTarget { kind: 99, ..good() },
            "policy_target.kind",
            "UNKNOWN_ENUM_VALUE",
        ),
        (
            pb::PolicyTarget {
                effective_to_year: 2039,
                ..good()
            },
            "policy_target.effective_to_year",
            "BEFORE_FROM_YEAR",
        ),
        (
            pb::PolicyTarget {
                target_year: 2039,
                ..good()
            },
            "policy_target.target_year",
            "BEFORE_FROM_YEAR",
        ),
        (
            pb::PolicyTarget {
                effective_from_year: 1979,
                effective_to_year: 0,
                target_year: 0,
                ..good()
            },
            "policy_target.effective_from_year",
            "OUT_OF_RANGE",
        ),
        (
            pb::PolicyTarget {
                source_date: "2999-01-01".into(),
                ..good()
            },
            "policy_target.source_date",
            "IN_FUTURE",
        ),
        (
            pb::PolicyTarget {
                source: "s".repeat(2001),
                ..good()
            },
            "policy_target.source",
            "TOO_LONG",
        ),
        (
            pb::PolicyTarget {
                source: "bad\u{1b}source".into(),
                ..good()
            },
            "policy_target.source",
            "CONTROL_CHARACTER",
        ),
    ] {
        assert_violations(
            create_target(&server, Role::Admin, "t", patch, "").await,
            &[(field, reason)],
        );
    }
    assert_violations(
        client(&server)
            .create_policy_target(
                server.request(Role::Admin, pb::CreatePolicyTargetRequest::default()),
            )
            .await,
        &[("policy_target", "REQUIRED")],
    );
    // The edges that pass: value 0, a one-year range, a target year equal to the first year.
    let t = create_target(
        &server,
        Role::Admin,
        "t",
        pb::PolicyTarget {
            value: 0,
            effective_to_year: 2040,
            target_year: 2040,
            ..good()
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        (
            t.value,
            t.effective_from_year,
            t.effective_to_year,
            t.target_year
        ),
        (0, 2040, 2040, 2040)
    );
    server.stop().await;
}

async fn policy_target_creation_is_idempotent_and_assigns_ids(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let id = rid();
    let t = target(pb::PolicyTargetKind::ClusterCount, 6, 2026, 2030, 2030);
    let first = create_target(&server, Role::Admin, "", t.clone(), &id)
        .await
        .unwrap();
    assert!(
        first.name.starts_with("policyTargets/cluster-count-2026-"),
        "{}",
        first.name
    );
    let again = create_target(&server, Role::Admin, "", t.clone(), &id)
        .await
        .unwrap();
    assert_eq!(first, again);
    // Without the request id a retry is a new target, refused as overlapping the first.
    assert_precondition(
        create_target(&server, Role::Admin, "", t, "").await,
        "OVERLAPPING_TARGET",
        &first.name,
    );
    assert_eq!(
        audit_events(&server, &format!("resource = \"{}\"", first.name))
            .await
            .len(),
        1
    );
    assert_eq!(get_target(&server, &first.name).await.unwrap(), first);
    server.stop().await;
}

async fn every_mutation_here_is_audited_and_the_chain_verifies(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let a = shandong("3701", 1);
    enterprise(&server, &a, "甲", "").await;
    let (jinan, _) = programme_zones(&server).await;
    update_zone(
        &server,
        pb::Zone {
            name: jinan.name.clone(),
            display_name: "济南高新区".into(),
            ..Default::default()
        },
        &["display_name"],
        "",
    )
    .await
    .unwrap();
    create_cluster(&server, Role::Admin, "hydrogen", hydrogen(&[&a]), "")
        .await
        .unwrap();
    update_cluster(
        &server,
        pb::Cluster {
            name: "clusters/hydrogen".into(),
            members: vec![],
            ..Default::default()
        },
        &["members"],
        "",
    )
    .await
    .unwrap();
    create_target(
        &server,
        Role::Admin,
        "cluster-scale-2024",
        pb::PolicyTarget {
            supersedes: "policyTargets/cluster-scale-2021".into(),
            ..target(
                pb::PolicyTargetKind::ClusterScale,
                TEN_BN_YUAN_FEN,
                2021,
                0,
                2025,
            )
        },
        "",
    )
    .await
    .unwrap();
    // Reads and refusals add nothing.
    get_zone(&server, &jinan.name).await.unwrap();
    get_cluster(&server, "clusters/hydrogen").await.unwrap();
    progress(&server, "clusters/hydrogen", 0).await.unwrap();
    let _ = create_zone(
        &server,
        Role::Officer,
        "jinan",
        zone("重复", pb::ZoneLevel::National, "370100"),
        "",
    )
    .await;

    let zone_events = audit_events(&server, "resource = \"zones/jinan\"").await;
    assert_eq!(zone_events.len(), 2);
    assert!(
        zone_events[0].method.ends_with("/CreateZone"),
        "{:?}",
        zone_events[0]
    );
    assert!(zone_events[1].method.ends_with("/UpdateZone"));
    assert_eq!(zone_events[0].actor, "test-officer");
    assert!(zone_events[1].state_json.contains("济南高新区"));
    let cluster_events = audit_events(&server, "resource = \"clusters/hydrogen\"").await;
    assert_eq!(cluster_events.len(), 2);
    assert!(cluster_events[0].state_json.contains(&a));
    assert!(!cluster_events[1].state_json.contains(&a));
    assert_eq!(
        audit_events(&server, "resource = \"policyTargets/cluster-scale-2024\"")
            .await
            .len(),
        1
    );
    assert_eq!(
        audit_events(&server, "resource = \"policyTargets/cluster-scale-2021\"")
            .await
            .len(),
        1
    );
    let check = verify_chain(&server).await;
    assert!(check.intact, "{check:?}");
    // 1 enterprise + 2 zones + 1 zone update + 1 cluster + 1 cluster update + 2 target events.
    assert_eq!(check.events_checked, 8);
    server.stop().await;
}
