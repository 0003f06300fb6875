//! The change feed as a follower relies on it: every change carries its state, the changes time
//! makes reach the feed through the sweep (once, however many replicas sweep, and again after an
//! outage without duplicates), and a follower that starts from a snapshot and follows the feed
//! ends equal to the registry's lists after a simulated two years. Both backends.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use prost::Message;
use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use sea_orm::ConnectionTrait;

use crate::support::{client, enterprise, shandong, start_on_clock};
use crate::{certification, leading, zones_policy};

on_both_backends!(
    every_change_carries_its_state_and_every_arm_of_the_contract_occurs,
    time_makes_changes_once_and_a_follower_ends_equal_to_the_lists,
    a_sweep_that_meets_an_outage_resumes_without_duplicates,
);

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn create(server: &TestServer, uscc: &str, name: &str) {
    client(server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(enterprise(uscc, name)),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
}

async fn certify(server: &TestServer, uscc: &str, number: &str, issue: &str) -> String {
    client(server)
        .create_high_tech_certificate(server.request(
            Role::Officer,
            pb::CreateHighTechCertificateRequest {
                parent: format!("enterprises/{uscc}"),
                high_tech_certificate: Some(pb::HighTechCertificate {
                    certificate_number: number.into(),
                    issue_date: issue.into(),
                    issuing_authority: "山东省高新技术企业认定管理机构".into(),
                    technology_field: cpb::HighTechField::NewEnergyAndEnergySaving as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .name
}

async fn file(server: &TestServer, certificate: &str, year: i32) {
    client(server)
        .file_annual_report(server.request(
            Role::Officer,
            pb::FileAnnualReportRequest {
                name: certificate.into(),
                report_year: year,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
}

/// Every change after `cursor`, and the cursor after them.
async fn changes_after(server: &TestServer, cursor: &str) -> (Vec<pb::Change>, String) {
    let mut out = Vec::new();
    let mut cursor = cursor.to_string();
    loop {
        let page = client(server)
            .list_changes(server.request(
                Role::Service,
                pb::ListChangesRequest {
                    after_cursor: cursor,
                    page_size: 7,
                    filter: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        out.extend(page.changes);
        cursor = page.next_cursor;
        if page.caught_up {
            return (out, cursor);
        }
    }
}

/// A snapshot: its changes and its cursor.
async fn export(server: &TestServer) -> (Vec<pb::Change>, String) {
    let mut stream = client(server)
        .export_snapshot(server.request(Role::Service, pb::ExportSnapshotRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut changes = Vec::new();
    let mut cursor: Option<String> = None;
    while let Some(message) = stream.message().await.unwrap() {
        assert!(cursor.as_ref().is_none_or(|c| *c == message.cursor));
        cursor = Some(message.cursor);
        changes.extend(message.changes);
    }
    (changes, cursor.expect("a snapshot names its cursor"))
}

/// What a follower keeps: the newest state of each resource, encoded.
#[derive(Debug, Default, PartialEq)]
struct Replica(BTreeMap<String, Vec<u8>>);

impl Replica {
    fn apply(&mut self, change: &pb::Change) {
        use pb::change::NewState;
        let state = change
            .new_state
            .as_ref()
            .unwrap_or_else(|| panic!("change {} has no state", change.sequence));
        let bytes = match state {
            NewState::Enterprise(e) => e.encode_to_vec(),
            NewState::HighTechCertificate(c) => c.encode_to_vec(),
            other => other_bytes(other),
        };
        self.0.insert(change.resource.clone(), bytes);
    }

    fn of_prefix(&self, f: impl Fn(&str) -> bool) -> BTreeMap<String, Vec<u8>> {
        self.0
            .iter()
            .filter(|(k, _)| f(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn other_bytes(state: &pb::change::NewState) -> Vec<u8> {
    let mut buf = Vec::new();
    state.encode(&mut buf);
    buf
}

/// The registry's enterprises and certificates by name, encoded, as an officer lists them.
async fn listed(server: &TestServer) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
    let enterprises = client(server)
        .list_enterprises(server.request(
            Role::Officer,
            pb::ListEnterprisesRequest {
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .enterprises
        .into_iter()
        .map(|e| (e.name.clone(), e.encode_to_vec()))
        .collect();
    let certificates = client(server)
        .list_high_tech_certificates(server.request(
            Role::Officer,
            pb::ListHighTechCertificatesRequest {
                parent: "enterprises/-".into(),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .high_tech_certificates
        .into_iter()
        .map(|c| (c.name.clone(), c.encode_to_vec()))
        .collect();
    (enterprises, certificates)
}

fn is_certificate(name: &str) -> bool {
    name.contains("/highTechCertificates/")
}

fn is_enterprise(name: &str) -> bool {
    name.starts_with("enterprises/") && name.matches('/').count() == 1
}

/// A certificate that expires, one revoked for two missed annual reports and one kept valid,
/// followed month by month for two years and four months, sweeping each month (once with two
/// replicas at the same moment). A follower starts from a snapshot taken while writes race it
/// and follows the feed; after every sweep its enterprises and certificates equal the lists, and
/// the transitions appear exactly once.
async fn time_makes_changes_once_and_a_follower_ends_equal_to_the_lists(backend: Backend) {
    let Some((server, clock, set_today)) = start_on_clock(backend, d("2024-03-16")).await else {
        return;
    };
    let (a, b, c) = (
        shandong("3701", 1),
        shandong("3702", 2),
        shandong("3703", 3),
    );
    create(&server, &a, "甲").await;
    create(&server, &b, "乙").await;
    let expiring = certify(&server, &a, "GR202337000001", "2023-04-01").await;
    let revoked = certify(&server, &b, "GR202437000002", "2024-03-01").await;

    // The snapshot is read while another enterprise and its certificate are written.
    let snapshot = export(&server);
    let writes = async {
        create(&server, &c, "丙").await;
        certify(&server, &c, "GR202437000003", "2024-03-10").await
    };
    let ((snapshot_changes, snapshot_cursor), valid) = tokio::join!(snapshot, writes);
    let mut replica = Replica::default();
    let snapshot_head: i64 = i64::from_str_radix(&snapshot_cursor[1..], 16).unwrap();
    for change in &snapshot_changes {
        assert!(
            change.sequence <= snapshot_head,
            "a snapshot holds nothing after its cursor"
        );
        replica.apply(change);
    }
    let mut cursor = snapshot_cursor;

    // A second replica of the registry on the same database, for a concurrent sweep.
    let replica_sweeper =
        qilu_registry::service_with_clock(&server.config, server.db.clone(), clock)
            .sweeper()
            .unwrap();

    let mut swept = Vec::new();
    let mut day = d("2024-04-16");
    while day <= d("2026-07-16") {
        set_today(day);
        // The reports that keep the valid and the expiring certificate valid, on time.
        if day == d("2025-04-16") {
            file(&server, &valid, 2024).await;
            file(&server, &expiring, 2023).await;
            file(&server, &expiring, 2024).await;
        }
        if day == d("2026-04-16") {
            file(&server, &valid, 2025).await;
        }
        let report = if day == d("2025-06-16") {
            // Two replicas sweep at the same moment: one change per transition in all.
            let (one, two) = tokio::join!(server.sweep(), replica_sweeper.run());
            let two = two.unwrap();
            assert_eq!(one.examined, two.examined);
            qilu_common::sweep::SweepReport {
                changed: one.changed + two.changed,
                ..one
            }
        } else {
            server.sweep().await
        };
        // Sweeping again finds nothing left to write.
        assert_eq!(server.sweep().await.changed, 0, "second sweep on {day}");
        let (changes, next) = changes_after(&server, &cursor).await;
        cursor = next;
        for change in &changes {
            assert!(
                change.sequence > snapshot_head,
                "the feed repeats nothing of the snapshot"
            );
            replica.apply(change);
        }
        let sweep_changes: Vec<&pb::Change> = changes
            .iter()
            .filter(|c| c.method.ends_with("/SweepTimeDrivenChanges"))
            .collect();
        assert_eq!(sweep_changes.len() as u64, report.changed, "{day}");
        swept.extend(sweep_changes.into_iter().cloned());
        let (enterprises, certificates) = listed(&server).await;
        assert_eq!(
            replica.of_prefix(is_enterprise),
            enterprises,
            "enterprises on {day}"
        );
        assert_eq!(
            replica.of_prefix(is_certificate),
            certificates,
            "certificates on {day}"
        );
        day = day.checked_add_months(chrono::Months::new(1)).unwrap();
    }

    // The transitions time made, each exactly once, from the sweep's system actor.
    let state_of = |c: &pb::Change| match &c.new_state {
        Some(pb::change::NewState::HighTechCertificate(x)) => Some((x.name.clone(), x.state)),
        _ => None,
    };
    // State transitions only (a sweep change may also carry a report turning MISSED).
    let mut last: BTreeMap<String, i32> = BTreeMap::new();
    let mut transitions: Vec<(String, i32)> = Vec::new();
    for (name, state) in swept.iter().filter_map(state_of) {
        let before = last.insert(name.clone(), state);
        if before.unwrap_or(pb::CertificateState::Valid as i32) != state {
            transitions.push((name, state));
        }
    }
    let expired = pb::CertificateState::Expired as i32;
    let revoked_state = pb::CertificateState::Revoked as i32;
    assert_eq!(
        transitions,
        [
            (expiring.clone(), expired),
            (revoked.clone(), revoked_state)
        ]
        .into_iter()
        .filter(|t| transitions.contains(t))
        .collect::<Vec<_>>(),
        "no other transition"
    );
    assert!(
        transitions.contains(&(expiring.clone(), expired)),
        "{transitions:?}"
    );
    assert!(
        transitions.contains(&(revoked.clone(), revoked_state)),
        "{transitions:?}"
    );
    assert!(
        !transitions.iter().any(|(n, _)| *n == valid),
        "{transitions:?}"
    );
    let uncertified: Vec<String> = swept
        .iter()
        .filter_map(|c| match &c.new_state {
            Some(pb::change::NewState::Enterprise(e)) if !e.high_tech_certified => {
                Some(e.name.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(uncertified.len(), 2, "{uncertified:?}");
    let events = client(&server)
        .list_audit_events(server.request(
            Role::Auditor,
            cpb::ListAuditEventsRequest {
                page_size: 1000,
                filter: format!("resource = \"{revoked}\""),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    let last = events.last().unwrap();
    assert_eq!(last.actor, "system:sweep");
    assert!(last.published_state.is_some());
    let verdict = client(&server)
        .verify_audit_chain(server.request(Role::Auditor, cpb::VerifyAuditChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(verdict.intact, "{verdict:?}");
    server.stop().await;
}

/// A sweep whose write fails (the database refuses audit events) changes nothing; the next
/// sweep writes each transition once.
async fn a_sweep_that_meets_an_outage_resumes_without_duplicates(backend: Backend) {
    let Some((server, _clock, set_today)) = start_on_clock(backend, d("2024-03-16")).await else {
        return;
    };
    let mut certificates = Vec::new();
    for n in 0..3 {
        let uscc = shandong("3701", 10 + n);
        create(&server, &uscc, "丁").await;
        certificates
            .push(certify(&server, &uscc, &format!("GR20233700001{n}"), "2023-04-01").await);
    }
    let (_, head) = changes_after(&server, "").await;
    // Three years on, all three expired.
    set_today(d("2026-04-02"));
    let refuse = match server.db.get_database_backend() {
        sea_orm::DbBackend::Postgres => vec![
            "CREATE FUNCTION qilu_test_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER qilu_test_refuse BEFORE INSERT ON audit_event FOR EACH ROW EXECUTE FUNCTION qilu_test_refuse()",
        ],
        _ => vec![
            "CREATE TRIGGER qilu_test_refuse BEFORE INSERT ON audit_event BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        ],
    };
    for statement in refuse {
        server.db.execute_unprepared(statement).await.unwrap();
    }
    let sweeper = qilu_registry::service_with_clock(
        &server.config,
        server.db.clone(),
        qilu_common::Clock::fixed_on(d("2026-04-02")),
    )
    .sweeper()
    .unwrap();
    assert!(sweeper.run().await.is_err(), "the sweep's write must fail");
    assert!(changes_after(&server, &head).await.0.is_empty());
    server
        .db
        .execute_unprepared("DROP TRIGGER qilu_test_refuse ON audit_event")
        .await
        .or(server
            .db
            .execute_unprepared("DROP TRIGGER qilu_test_refuse")
            .await)
        .unwrap();
    let report = server.sweep().await;
    // Three certificates expired, three enterprises no longer certified.
    assert_eq!(report.changed, 6, "{report:?}");
    assert_eq!(server.sweep().await.changed, 0);
    let (after, _) = changes_after(&server, &head).await;
    assert_eq!(after.len(), 6);
    for name in &certificates {
        assert_eq!(after.iter().filter(|c| c.resource == *name).count(), 1);
    }
    server.stop().await;
}

/// The arms of `qilu.registry.v1.Change.new_state`, read from the published descriptor, so a type
/// added to the oneof without a flow that produces it fails here.
fn new_state_arms() -> Vec<String> {
    let pool = prost_reflect::DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap();
    let change = pool.get_message_by_name("qilu.registry.v1.Change").unwrap();
    let oneof = change.oneofs().find(|o| o.name() == "new_state").unwrap();
    oneof.fields().map(|f| f.name().to_string()).collect()
}

fn arm_of(state: &pb::change::NewState) -> &'static str {
    use pb::change::NewState;
    match state {
        NewState::Enterprise(_) => "enterprise",
        NewState::AnnualFigures(_) => "annual_figures",
        NewState::HighTechCertificate(_) => "high_tech_certificate",
        NewState::LeadingCohort(_) => "leading_cohort",
        NewState::LeadingCohortMember(_) => "leading_cohort_member",
        NewState::SupportPolicy(_) => "support_policy",
        NewState::Zone(_) => "zone",
        NewState::Cluster(_) => "cluster",
        NewState::PolicyTarget(_) => "policy_target",
    }
}

/// A programme's worth of registry writes touches every resource type; every change of it
/// carries its state, of the arm its resource type names, every arm the descriptor lists
/// occurs, and a snapshot holds the same newest states as the feed.
async fn every_change_carries_its_state_and_every_arm_of_the_contract_occurs(backend: Backend) {
    let Some(server) = TestServer::start::<qilu_registry::Registry>(backend).await else {
        return;
    };
    zones_policy::programme_zones(&server).await;
    let code = shandong("3701", 500);
    leading::eligible(&server, &code, "领军甲", 2023, 60).await;
    certification::write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: certification::figures_name(&code, 2024),
            revenue_fen: certification::amount(60_000_000_000, pb::FigureSource::AuditedStatement),
            ..Default::default()
        },
        &["revenue_fen"],
    )
    .await
    .unwrap();
    certify(&server, &code, "GR202537000500", "2025-11-20").await;
    zones_policy::create_cluster(
        &server,
        Role::Officer,
        "hydrogen",
        zones_policy::hydrogen(&[&code]),
        "",
    )
    .await
    .unwrap();
    zones_policy::create_target(
        &server,
        Role::Admin,
        "leading-cohort-2024",
        pb::PolicyTarget {
            supersedes: "policyTargets/leading-cohort-2021".into(),
            ..zones_policy::target(pb::PolicyTargetKind::LeadingCohortSize, 250, 2021, 0, 2025)
        },
        "",
    )
    .await
    .unwrap();
    leading::create_cohort(&server, 2024).await;
    leading::select(&server, 2024, &code).await.unwrap();
    leading::create_policy(&server, 2024, &code).await.unwrap();

    let (changes, cursor) = changes_after(&server, "").await;
    let mut seen = std::collections::BTreeSet::new();
    for c in &changes {
        let state = c
            .new_state
            .as_ref()
            .unwrap_or_else(|| panic!("{} ({}) has no state", c.resource, c.method));
        let arm = arm_of(state);
        assert_eq!(
            c.resource_type.rsplit('/').next().unwrap().to_lowercase(),
            arm.replace('_', ""),
            "{} carries a {arm}",
            c.resource
        );
        seen.insert(arm.to_string());
    }
    let arms: std::collections::BTreeSet<String> = new_state_arms().into_iter().collect();
    assert_eq!(seen, arms, "every arm of Change.new_state occurs");

    // The snapshot is the feed's newest state of each resource, as of the same cursor.
    let (snapshot, snapshot_cursor) = export(&server).await;
    assert_eq!(snapshot_cursor, cursor);
    let mut newest = BTreeMap::new();
    for c in &changes {
        newest.insert(c.resource.clone(), c.clone());
    }
    let exported: BTreeMap<String, pb::Change> = snapshot
        .into_iter()
        .map(|c| (c.resource.clone(), c))
        .collect();
    assert_eq!(exported, newest);

    // What zones, clusters and cohorts add up from other resources moved without a write to
    // them (the cohort's policy count, say); after a sweep the feed's newest state is their Get.
    server.sweep().await;
    let (more, _) = changes_after(&server, &cursor).await;
    assert!(!more.is_empty(), "the sweep records what moved");
    for c in more {
        newest.insert(c.resource.clone(), c);
    }
    let mut registry = client(&server);
    for (name, change) in &newest {
        use pb::change::NewState;
        let got = match change.new_state.as_ref().unwrap() {
            NewState::Zone(_) => NewState::Zone(
                registry
                    .get_zone(
                        server.request(Role::Officer, pb::GetZoneRequest { name: name.clone() }),
                    )
                    .await
                    .unwrap()
                    .into_inner(),
            ),
            NewState::Cluster(_) => NewState::Cluster(
                registry
                    .get_cluster(
                        server.request(Role::Officer, pb::GetClusterRequest { name: name.clone() }),
                    )
                    .await
                    .unwrap()
                    .into_inner(),
            ),
            NewState::LeadingCohort(_) => NewState::LeadingCohort(
                registry
                    .get_leading_cohort(server.request(
                        Role::Officer,
                        pb::GetLeadingCohortRequest { name: name.clone() },
                    ))
                    .await
                    .unwrap()
                    .into_inner(),
            ),
            _ => continue,
        };
        assert_eq!(change.new_state.as_ref(), Some(&got), "{name}");
    }
    server.stop().await;
}
