//! Integration tests of enterprise status changes (revoke, deregister), bulk import and the
//! change feed, as a caller sees them: the real server on an ephemeral port over a fresh SQLite
//! file and a fresh PostgreSQL database. Every scenario runs on both backends.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_registry::Registry;
use sea_orm::{ConnectionTrait, Statement};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::support::{
    ENTERPRISE_TYPE, assert_invalid_field, audit_events, client, ent, enterprise, shandong, today,
    violations,
};

on_both_backends!(
    revoke_then_deregister_records_reason_dates_and_new_etags,
    illegal_transitions_are_failed_precondition_naming_the_state,
    status_changes_reject_bad_input_with_field_paths,
    status_changes_are_idempotent_audited_and_refuse_stale_etags,
    only_admins_and_officers_change_status_or_import,
    ten_thousand_rows_with_one_percent_bad_import_in_batches_and_reimport_changes_nothing,
    import_creates_updates_and_leaves_identical_rows_unchanged,
    bad_and_duplicate_rows_are_rejected_deterministically_with_field_paths,
    validate_only_writes_nothing_and_rejected_rows_only_lists_rejections,
    a_retried_import_with_its_request_id_replays_the_first_response,
    a_broken_import_stream_keeps_the_batches_already_committed,
    list_changes_pages_through_every_change_in_commit_order,
    list_changes_filters_and_validates_cursors,
    watch_resumes_after_a_disconnect_and_sees_every_change_exactly_once,
    only_staff_and_services_read_the_change_feed,
    bulk_inserted_enterprises_read_back_field_for_field,
    a_batch_failing_mid_stream_rejects_exactly_its_rows_and_results_stay_in_order,
    a_stream_error_answers_only_after_the_batches_handed_over_are_committed,
    a_commit_that_fails_rejects_the_rows_of_every_batch_it_held_and_only_those,
    an_import_streaming_at_shutdown_ends_promptly_saying_how_far_it_got,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const IMPORT_METHOD: &str = "qilu.registry.v1.EnterpriseRegistryService/ImportEnterprises";

/// The same code with a wrong check character.
fn bad_checksum(code: &str) -> String {
    let last = code.chars().last().unwrap();
    let wrong = if last == '0' { '1' } else { '0' };
    format!("{}{wrong}", &code[..17])
}

async fn create(server: &TestServer, uscc: &str, display_name: &str) -> pb::Enterprise {
    client(server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(enterprise(uscc, display_name)),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create {uscc}: {s:?}"))
        .into_inner()
}

async fn get(server: &TestServer, uscc: &str) -> Result<pb::Enterprise, Status> {
    client(server)
        .get_enterprise(server.request(Role::Officer, pb::GetEnterpriseRequest { name: ent(uscc) }))
        .await
        .map(tonic::Response::into_inner)
}

fn revoke_request(uscc: &str, reason: &str, effective_date: &str) -> pb::RevokeEnterpriseRequest {
    pb::RevokeEnterpriseRequest {
        name: ent(uscc),
        reason: reason.into(),
        effective_date: effective_date.into(),
        ..Default::default()
    }
}

fn deregister_request(
    uscc: &str,
    reason: &str,
    effective_date: &str,
) -> pb::DeregisterEnterpriseRequest {
    pb::DeregisterEnterpriseRequest {
        name: ent(uscc),
        reason: reason.into(),
        effective_date: effective_date.into(),
        ..Default::default()
    }
}

async fn revoke(
    server: &TestServer,
    request: pb::RevokeEnterpriseRequest,
) -> Result<pb::Enterprise, Status> {
    client(server)
        .revoke_enterprise(server.request(Role::Officer, request))
        .await
        .map(tonic::Response::into_inner)
}

async fn deregister(
    server: &TestServer,
    request: pb::DeregisterEnterpriseRequest,
) -> Result<pb::Enterprise, Status> {
    client(server)
        .deregister_enterprise(server.request(Role::Officer, request))
        .await
        .map(tonic::Response::into_inner)
}

/// INVALID_ARGUMENT with exactly one violation, of `field` for `reason`.
#[track_caller]
fn assert_single_violation(status: &Status, field: &str, reason: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        violations(status),
        vec![(field.to_string(), reason.to_string())],
        "{status:?}"
    );
}

async fn assert_chain_intact(server: &TestServer, events: i64) {
    let check = client(server)
        .verify_audit_chain(server.request(Role::Auditor, cpb::VerifyAuditChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(check.intact, "{check:?}");
    assert_eq!(check.events_checked, events, "{check:?}");
}

async fn count(server: &TestServer, table: &str) -> i64 {
    let backend = server.db.get_database_backend();
    let row = server
        .db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn row(row_number: i64, e: pb::Enterprise) -> pb::ImportEnterpriseRow {
    pb::ImportEnterpriseRow {
        row_number,
        enterprise: Some(e),
    }
}

/// Options of an import run (sent on the first message).
#[derive(Default, Clone)]
struct Options {
    request_id: String,
    validate_only: bool,
    rejected_rows_only: bool,
}

/// The rows split into messages of `per_message`, options on the first.
fn messages(
    rows: Vec<pb::ImportEnterpriseRow>,
    per_message: usize,
    options: &Options,
) -> Vec<pb::ImportEnterprisesRequest> {
    let mut out: Vec<pb::ImportEnterprisesRequest> = rows
        .chunks(per_message)
        .map(|chunk| pb::ImportEnterprisesRequest {
            rows: chunk.to_vec(),
            ..Default::default()
        })
        .collect();
    if out.is_empty() {
        out.push(pb::ImportEnterprisesRequest::default());
    }
    out[0].request_id = options.request_id.clone();
    out[0].validate_only = options.validate_only;
    out[0].rejected_rows_only = options.rejected_rows_only;
    out
}

async fn import_as(
    server: &TestServer,
    role: Role,
    messages: Vec<pb::ImportEnterprisesRequest>,
) -> Result<pb::ImportEnterprisesResponse, Status> {
    client(server)
        .import_enterprises(server.request(role, tokio_stream::iter(messages)))
        .await
        .map(tonic::Response::into_inner)
}

async fn import(
    server: &TestServer,
    rows: Vec<pb::ImportEnterpriseRow>,
    per_message: usize,
    options: &Options,
) -> pb::ImportEnterprisesResponse {
    import_as(server, Role::Officer, messages(rows, per_message, options))
        .await
        .unwrap_or_else(|s| panic!("import: {s:?}"))
}

fn outcome_of(r: &pb::ImportRowResult) -> pb::ImportRowOutcome {
    pb::ImportRowOutcome::try_from(r.outcome).unwrap()
}

fn problem_fields(r: &pb::ImportRowResult) -> Vec<String> {
    r.problems.iter().map(|p| p.field.clone()).collect()
}

async fn list_changes(
    server: &TestServer,
    after_cursor: &str,
    page_size: i32,
    filter: &str,
) -> Result<pb::ListChangesResponse, Status> {
    client(server)
        .list_changes(server.request(
            Role::Service,
            pb::ListChangesRequest {
                after_cursor: after_cursor.into(),
                page_size,
                filter: filter.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Every change after `after` matching `filter`, following cursors, and the final cursor.
async fn all_changes(
    server: &TestServer,
    after: &str,
    page_size: i32,
    filter: &str,
) -> (Vec<pb::Change>, String) {
    let mut out = Vec::new();
    let mut cursor = after.to_string();
    loop {
        let page = list_changes(server, &cursor, page_size, filter)
            .await
            .unwrap_or_else(|s| panic!("list changes: {s:?}"));
        assert!(!page.next_cursor.is_empty());
        out.extend(page.changes);
        cursor = page.next_cursor;
        if page.caught_up {
            return (out, cursor);
        }
    }
}

fn change_enterprise(c: &pb::Change) -> &pb::Enterprise {
    match &c.new_state {
        Some(pb::change::NewState::Enterprise(e)) => e,
        other => panic!("change {} has no enterprise state: {other:?}", c.sequence),
    }
}

fn kind_of(c: &pb::Change) -> pb::ChangeKind {
    pb::ChangeKind::try_from(c.kind).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Status changes
// ---------------------------------------------------------------------------------------------

async fn revoke_then_deregister_records_reason_dates_and_new_etags(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let a = shandong("3701", 1);
    let created = create(&server, &a, "济南甲公司").await;
    assert_eq!(created.state, pb::EnterpriseState::Active as i32);
    assert!(created.state_reason.is_empty());
    assert!(created.state_change_time.is_none());
    assert!(created.state_effective_date.is_empty());

    let revoked = revoke(
        &server,
        pb::RevokeEnterpriseRequest {
            etag: created.etag.clone(),
            ..revoke_request(&a, " 鲁市监处〔2026〕12号 ", "2025-03-01")
        },
    )
    .await
    .unwrap();
    assert_eq!(revoked.state, pb::EnterpriseState::Revoked as i32);
    assert_eq!(revoked.state_reason, "鲁市监处〔2026〕12号");
    assert_eq!(revoked.state_effective_date, "2025-03-01");
    assert!(revoked.state_change_time.is_some());
    assert_eq!(revoked.state_change_time, revoked.update_time);
    assert_ne!(revoked.etag, created.etag);
    assert_eq!(revoked.display_name, created.display_name);
    assert_eq!(
        get(&server, &a).await.unwrap(),
        revoked,
        "persisted as returned"
    );

    // Deregistration defaults its effective date to today in the programme time zone.
    let deregistered = deregister(&server, deregister_request(&a, "注销登记", ""))
        .await
        .unwrap();
    assert_eq!(deregistered.state, pb::EnterpriseState::Deregistered as i32);
    assert_eq!(deregistered.state_reason, "注销登记");
    assert_eq!(deregistered.state_effective_date, today().to_string());
    assert_ne!(deregistered.etag, revoked.etag);
    assert_eq!(get(&server, &a).await.unwrap(), deregistered);

    // ACTIVE → DEREGISTERED directly.
    let b = shandong("3702", 2);
    create(&server, &b, "青岛乙公司").await;
    let b_done = deregister(&server, deregister_request(&b, "自行注销", "2024-12-31"))
        .await
        .unwrap();
    assert_eq!(b_done.state, pb::EnterpriseState::Deregistered as i32);

    // The state filter of ListEnterprises sees the new states.
    let listed = client(&server)
        .list_enterprises(server.request(
            Role::Officer,
            pb::ListEnterprisesRequest {
                filter: "state = ENTERPRISE_STATE_DEREGISTERED".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.enterprises.len(), 2);
    server.stop().await;
}

async fn illegal_transitions_are_failed_precondition_naming_the_state(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let a = shandong("3703", 3);
    create(&server, &a, "淄博公司").await;
    revoke(&server, revoke_request(&a, "吊销", "2025-01-01"))
        .await
        .unwrap();
    let precondition = |s: &Status, state: &str| {
        assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
        let details = s
            .get_details_precondition_failure()
            .expect("PreconditionFailure");
        assert_eq!(details.violations.len(), 1);
        assert_eq!(details.violations[0].subject, ent(&a));
        assert!(
            details.violations[0].description.contains(state),
            "{:?}",
            details.violations[0]
        );
    };
    let s = revoke(&server, revoke_request(&a, "再次吊销", ""))
        .await
        .unwrap_err();
    precondition(&s, "REVOKED");
    deregister(&server, deregister_request(&a, "注销", "2025-06-01"))
        .await
        .unwrap();
    let s = revoke(&server, revoke_request(&a, "吊销", ""))
        .await
        .unwrap_err();
    precondition(&s, "DEREGISTERED");
    let s = deregister(&server, deregister_request(&a, "再次注销", ""))
        .await
        .unwrap_err();
    precondition(&s, "DEREGISTERED");
    // Refusals change nothing and are not audited.
    assert_eq!(
        audit_events(&server, &format!("resource = \"{}\"", ent(&a)))
            .await
            .len(),
        3
    );
    server.stop().await;
}

async fn status_changes_reject_bad_input_with_field_paths(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let a = shandong("3704", 4);
    create(&server, &a, "枣庄公司").await;
    let s = revoke(&server, revoke_request(&a, "  ", ""))
        .await
        .unwrap_err();
    assert_single_violation(&s, "reason", "REQUIRED");
    let s = deregister(&server, deregister_request(&a, "", ""))
        .await
        .unwrap_err();
    assert_single_violation(&s, "reason", "REQUIRED");
    let s = revoke(&server, revoke_request(&a, &"因".repeat(2001), ""))
        .await
        .unwrap_err();
    assert_single_violation(&s, "reason", "TOO_LONG");
    let s = revoke(&server, revoke_request(&a, "x\u{7}", ""))
        .await
        .unwrap_err();
    assert_single_violation(&s, "reason", "CONTROL_CHARACTER");
    let s = revoke(&server, revoke_request(&a, "吊销", "2025/03/01"))
        .await
        .unwrap_err();
    assert_single_violation(&s, "effective_date", "INVALID_DATE");
    let s = revoke(&server, revoke_request(&a, "吊销", "2999-01-01"))
        .await
        .unwrap_err();
    assert_single_violation(&s, "effective_date", "IN_FUTURE");
    let s = deregister(&server, deregister_request(&a, "注销", "2009-12-31"))
        .await
        .unwrap_err();
    assert_single_violation(&s, "effective_date", "BEFORE_ESTABLISHMENT");
    let s = revoke(
        &server,
        pb::RevokeEnterpriseRequest {
            name: a.clone(),
            ..revoke_request(&a, "吊销", "")
        },
    )
    .await
    .unwrap_err();
    assert_single_violation(&s, "name", "INVALID_RESOURCE_NAME");
    let s = revoke(&server, revoke_request(&bad_checksum(&a), "吊销", ""))
        .await
        .unwrap_err();
    assert_single_violation(&s, "name", "INVALID_CHECKSUM");
    let s = deregister(
        &server,
        pb::DeregisterEnterpriseRequest {
            request_id: "retry-1".into(),
            ..deregister_request(&a, "注销", "")
        },
    )
    .await
    .unwrap_err();
    assert_single_violation(&s, "request_id", "INVALID_REQUEST_ID");
    let missing = shandong("3705", 5);
    let s = revoke(&server, revoke_request(&missing, "吊销", ""))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    let info = s.get_details_resource_info().expect("ResourceInfo");
    assert_eq!(info.resource_name, ent(&missing));
    assert_eq!(info.resource_type, ENTERPRISE_TYPE);
    // Deregistration cannot take effect before the revocation did.
    revoke(&server, revoke_request(&a, "吊销", "2025-03-01"))
        .await
        .unwrap();
    let s = deregister(&server, deregister_request(&a, "注销", "2025-02-28"))
        .await
        .unwrap_err();
    assert_single_violation(&s, "effective_date", "BEFORE_PREVIOUS_CHANGE");
    deregister(&server, deregister_request(&a, "注销", "2025-03-01"))
        .await
        .unwrap();
    server.stop().await;
}

async fn status_changes_are_idempotent_audited_and_refuse_stale_etags(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let a = shandong("3706", 6);
    let created = create(&server, &a, "烟台公司").await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = pb::RevokeEnterpriseRequest {
        request_id: request_id.clone(),
        etag: created.etag.clone(),
        ..revoke_request(&a, "吊销营业执照", "2025-05-05")
    };
    let first = revoke(&server, request.clone()).await.unwrap();
    // The retry replays the first result although the etag is now stale and the state REVOKED.
    let second = revoke(&server, request.clone()).await.unwrap();
    assert_eq!(first, second);
    // A stale etag on a fresh request is ABORTED.
    let s = deregister(
        &server,
        pb::DeregisterEnterpriseRequest {
            etag: created.etag.clone(),
            ..deregister_request(&a, "注销", "")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");
    let deregistered = deregister(
        &server,
        pb::DeregisterEnterpriseRequest {
            etag: first.etag.clone(),
            ..deregister_request(&a, "注销", "")
        },
    )
    .await
    .unwrap();
    let events = audit_events(&server, &format!("resource = \"{}\"", ent(&a))).await;
    assert_eq!(events.len(), 3, "create, revoke once, deregister");
    assert!(events[1].method.ends_with("/RevokeEnterprise"));
    assert_eq!(events[1].request_id, request_id);
    assert!(
        events[1].state_json.contains("吊销营业执照"),
        "{}",
        events[1].state_json
    );
    assert!(events[1].state_json.contains("\"REVOKED\""));
    assert!(events[2].method.ends_with("/DeregisterEnterprise"));
    assert!(events[2].state_json.contains("\"DEREGISTERED\""));
    assert_eq!(deregistered.state_reason, "注销");
    assert_chain_intact(&server, 3).await;
    server.stop().await;
}

async fn only_admins_and_officers_change_status_or_import(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let mut n = 10;
    for role in Role::ALL {
        n += 1;
        let own = shandong("3707", n);
        create(&server, &own, "潍坊公司").await;
        let wrap = |m| {
            if role == Role::Enterprise {
                server.enterprise_request(&own, m)
            } else {
                server.request(role, m)
            }
        };
        let allowed = matches!(role, Role::Admin | Role::Officer);
        let mut c = client(&server);
        let revoked = c
            .revoke_enterprise(wrap(revoke_request(&own, "吊销", "")))
            .await;
        let deregistered = c
            .deregister_enterprise(if role == Role::Enterprise {
                server.enterprise_request(&own, deregister_request(&own, "注销", ""))
            } else {
                server.request(role, deregister_request(&own, "注销", ""))
            })
            .await;
        let rows = vec![row(1, enterprise(&shandong("3708", n), "济宁公司"))];
        let imported = c
            .import_enterprises(if role == Role::Enterprise {
                server.enterprise_request(
                    &own,
                    tokio_stream::iter(messages(rows, 10, &Options::default())),
                )
            } else {
                server.request(
                    role,
                    tokio_stream::iter(messages(rows, 10, &Options::default())),
                )
            })
            .await;
        if allowed {
            assert!(revoked.is_ok(), "{role}: {revoked:?}");
            assert!(deregistered.is_ok(), "{role}: {deregistered:?}");
            assert_eq!(imported.unwrap().into_inner().created_count, 1, "{role}");
        } else {
            for s in [
                revoked.unwrap_err(),
                deregistered.unwrap_err(),
                imported.unwrap_err(),
            ] {
                assert_eq!(s.code(), Code::PermissionDenied, "{role}: {s:?}");
            }
        }
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Bulk import
// ---------------------------------------------------------------------------------------------

/// The kinds of bad row the 10,000-row import carries, and the field each is rejected on.
fn bad_row(kind: usize, row_number: i64, uscc: &str) -> (pb::ImportEnterpriseRow, &'static str) {
    let mut e = enterprise(uscc, "坏行公司");
    let field = match kind % 5 {
        0 => {
            e.uscc = bad_checksum(uscc);
            "enterprise.uscc"
        }
        1 => {
            e.display_name = "   ".into();
            "enterprise.display_name"
        }
        2 => {
            e.established_date = "2999-01-01".into();
            "enterprise.established_date"
        }
        3 => {
            e.zone = "Zones/Jinan".into();
            "enterprise.zone"
        }
        _ => {
            return (
                pb::ImportEnterpriseRow {
                    row_number,
                    enterprise: None,
                },
                "enterprise",
            );
        }
    };
    (row(row_number, e), field)
}

async fn ten_thousand_rows_with_one_percent_bad_import_in_batches_and_reimport_changes_nothing(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    // Rows may name only a registered zone (as CreateEnterprise requires).
    EnterpriseRegistryServiceClient::new(server.channel.clone())
        .create_zone(server.request(
            Role::Officer,
            pb::CreateZoneRequest {
                zone_id: "jinan".into(),
                zone: Some(pb::Zone {
                    display_name: "济南高新技术产业开发区".into(),
                    level: pb::ZoneLevel::National as i32,
                    division_code: "370100".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let mut unknown = enterprise(&shandong("3702", 99_999), "青岛未登记园区企业");
    unknown.zone = "zones/nowhere".into();
    let refused = import(&server, vec![row(2, unknown)], 500, &Options::default()).await;
    assert_eq!(refused.rejected_count, 1);
    assert_eq!(problem_fields(&refused.row_results[0]), ["enterprise.zone"]);

    const ROWS: u32 = 10_000;
    let mut rows = Vec::with_capacity(ROWS as usize);
    let mut expected_bad = Vec::new();
    for i in 0..ROWS {
        let row_number = i64::from(i) + 2; // the CSV's header is line 1
        let uscc = shandong(["3701", "3702", "3706", "3713"][(i % 4) as usize], i);
        if i % 100 == 37 {
            let (r, field) = bad_row((i / 100) as usize, row_number, &uscc);
            rows.push(r);
            expected_bad.push((row_number, field));
        } else {
            let mut e = enterprise(&uscc, &format!("山东绿色科技{i}号有限公司"));
            e.technology_fields = vec![(i % 8 + 1) as i32];
            e.green_category = (i % 3) as i32;
            if i % 2 == 0 {
                e.zone = "zones/jinan".into();
            }
            rows.push(row(row_number, e));
        }
    }
    assert_eq!(expected_bad.len(), 100);

    let started = Instant::now();
    let first = import(&server, rows.clone(), 500, &Options::default()).await;
    let first_rate = f64::from(ROWS) / started.elapsed().as_secs_f64();
    eprintln!(
        "IMPORT {backend:?}: 10,000 rows (9,900 created, 100 rejected) in {:.2?}: {first_rate:.0} rows/s",
        started.elapsed()
    );
    assert_eq!(first.received_count, 10_000);
    assert_eq!(first.accepted_count, 9_900);
    assert_eq!(first.created_count, 9_900);
    assert_eq!(first.updated_count, 0);
    assert_eq!(first.unchanged_count, 0);
    assert_eq!(first.rejected_count, 100);
    assert!(!first.validate_only);
    assert_eq!(first.row_results.len(), 10_000);
    // Results come in the order received, each bad row with the reason for it.
    let rejected: Vec<(i64, Vec<String>)> = first
        .row_results
        .iter()
        .filter(|r| outcome_of(r) == pb::ImportRowOutcome::Rejected)
        .map(|r| (r.row_number, problem_fields(r)))
        .collect();
    let expected: Vec<(i64, Vec<String>)> = expected_bad
        .iter()
        .map(|(n, f)| (*n, vec![f.to_string()]))
        .collect();
    assert_eq!(rejected, expected);
    for r in &first.row_results {
        assert!(
            r.problems.iter().all(|p| !p.description.is_empty()),
            "{r:?}"
        );
    }
    assert!(
        first
            .row_results
            .iter()
            .zip(&rows)
            .all(|(r, sent)| r.row_number == sent.row_number)
    );
    assert_eq!(count(&server, "enterprise").await, 9_900);
    assert_eq!(
        count(&server, "audit_event").await,
        1 + 9_900,
        "the zone, then one event per created enterprise"
    );
    // The import's last change is the newest in the feed.
    let tail = list_changes(&server, &first.last_change_cursor, 10, "")
        .await
        .unwrap();
    assert!(tail.changes.is_empty() && tail.caught_up);
    let sample = get(&server, &shandong("3702", 1)).await.unwrap();
    assert_eq!(sample.display_name, "山东绿色科技1号有限公司");
    assert_eq!(sample.city, "Qingdao");
    assert_eq!(sample.state, pb::EnterpriseState::Active as i32);

    // The same file again changes nothing: no writes, no audit events, no version bumps.
    let started = Instant::now();
    let second = import(&server, rows, 500, &Options::default()).await;
    let second_rate = f64::from(ROWS) / started.elapsed().as_secs_f64();
    eprintln!(
        "IMPORT {backend:?}: identical re-import of 10,000 rows in {:.2?}: {second_rate:.0} rows/s",
        started.elapsed()
    );
    assert_eq!(second.accepted_count, 0);
    assert_eq!(second.created_count, 0);
    assert_eq!(second.updated_count, 0);
    assert_eq!(second.unchanged_count, 9_900);
    assert_eq!(second.rejected_count, 100);
    assert!(second.last_change_cursor.is_empty());
    assert_eq!(count(&server, "audit_event").await, 1 + 9_900);
    assert_eq!(get(&server, &shandong("3702", 1)).await.unwrap(), sample);
    assert_chain_intact(&server, 1 + 9_900).await;
    server.stop().await;
}

async fn import_creates_updates_and_leaves_identical_rows_unchanged(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let same = shandong("3709", 1);
    let changed = shandong("3709", 2);
    let fresh = shandong("3709", 3);
    let same_before = create(&server, &same, "泰安甲公司").await;
    let changed_before = create(&server, &changed, "泰安乙公司").await;
    let mut new_changed = enterprise(&changed, "泰安乙新能源公司");
    new_changed.technology_fields = vec![6];
    let response = import(
        &server,
        vec![
            // Lower-case and padded codes are normalised as CreateEnterprise does.
            row(
                10,
                enterprise(&format!(" {} ", same.to_lowercase()), "泰安甲公司"),
            ),
            row(11, new_changed),
            row(12, enterprise(&fresh, "泰安丙公司")),
        ],
        1,
        &Options::default(),
    )
    .await;
    let outcomes: Vec<_> = response.row_results.iter().map(outcome_of).collect();
    assert_eq!(
        outcomes,
        [
            pb::ImportRowOutcome::Unchanged,
            pb::ImportRowOutcome::Updated,
            pb::ImportRowOutcome::Created
        ]
    );
    assert_eq!(response.row_results[0].uscc, same, "normalised");
    assert_eq!(
        (
            response.accepted_count,
            response.created_count,
            response.updated_count,
            response.unchanged_count
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(get(&server, &same).await.unwrap(), same_before);
    let changed_after = get(&server, &changed).await.unwrap();
    assert_eq!(changed_after.display_name, "泰安乙新能源公司");
    assert_eq!(changed_after.technology_fields, vec![6]);
    assert_ne!(changed_after.etag, changed_before.etag);
    assert_eq!(changed_after.create_time, changed_before.create_time);
    let fresh_after = get(&server, &fresh).await.unwrap();
    assert_eq!(fresh_after.state, pb::EnterpriseState::Active as i32);

    // Audited once per changed enterprise, by the import method.
    assert_eq!(
        audit_events(&server, &format!("resource = \"{}\"", ent(&same)))
            .await
            .len(),
        1
    );
    let changed_events = audit_events(&server, &format!("resource = \"{}\"", ent(&changed))).await;
    assert_eq!(changed_events.len(), 2);
    assert_eq!(changed_events[1].method, IMPORT_METHOD);
    let fresh_events = audit_events(&server, &format!("resource = \"{}\"", ent(&fresh))).await;
    assert_eq!(fresh_events.len(), 1);
    assert_eq!(fresh_events[0].method, IMPORT_METHOD);
    assert_chain_intact(&server, 4).await;

    // The import's cursor is the feed position after its last change.
    let (feed, end) = all_changes(&server, "", 10, "").await;
    assert_eq!(feed.len(), 4);
    assert_eq!(response.last_change_cursor, feed[3].cursor);
    assert_eq!(end, response.last_change_cursor);
    let after = list_changes(&server, &response.last_change_cursor, 10, "")
        .await
        .unwrap();
    assert!(after.changes.is_empty() && after.caught_up);
    server.stop().await;
}

async fn bad_and_duplicate_rows_are_rejected_deterministically_with_field_paths(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let a = shandong("3710", 1);
    let b = shandong("3710", 2);
    let c = shandong("3710", 3);
    let rows = || {
        let mut many_problems = enterprise(&c, "");
        many_problems.established_date = "2999-12-31".into();
        let mut bad_field = enterprise(&c, "威海丁公司");
        bad_field.technology_fields = vec![4, 99];
        vec![
            row(1, enterprise(&a, "威海甲公司")),
            row(2, enterprise(&bad_checksum(&b), "威海乙公司")),
            // Row number 1 again: rejected, and so it does not take B.
            row(1, enterprise(&b, "威海乙公司")),
            // A again: the first valid row with a USCC keeps it.
            row(4, enterprise(&a, "威海甲公司（重复）")),
            row(0, many_problems),
            pb::ImportEnterpriseRow {
                row_number: 6,
                enterprise: None,
            },
            row(7, enterprise(&b, "威海乙公司")),
            row(8, bad_field),
        ]
    };
    let mut by_split = Vec::new();
    for (i, per_message) in [8usize, 1, 3].into_iter().enumerate() {
        // Later runs find the first run's enterprises stored: UNCHANGED instead of CREATED.
        let response = import(&server, rows(), per_message, &Options::default()).await;
        assert_eq!(response.received_count, 8);
        assert_eq!(response.rejected_count, 6);
        let summary: Vec<(i64, pb::ImportRowOutcome, Vec<String>)> = response
            .row_results
            .iter()
            .map(|r| (r.row_number, outcome_of(r), problem_fields(r)))
            .collect();
        by_split.push(summary);
        if i == 0 {
            assert_eq!(response.created_count, 2);
            assert_eq!(response.row_results[1].uscc, bad_checksum(&b), "as typed");
            assert!(
                response.row_results[3].problems[0]
                    .description
                    .contains("row 1"),
                "{:?}",
                response.row_results[3]
            );
        } else {
            assert_eq!(response.unchanged_count, 2);
        }
    }
    use pb::ImportRowOutcome::{Created, Rejected, Unchanged};
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let expected = |ok: pb::ImportRowOutcome| {
        vec![
            (1, ok, vec![]),
            (2, Rejected, strings(&["enterprise.uscc"])),
            (1, Rejected, strings(&["row_number"])),
            (4, Rejected, strings(&["enterprise.uscc"])),
            (
                0,
                Rejected,
                strings(&[
                    "row_number",
                    "enterprise.display_name",
                    "enterprise.established_date",
                ]),
            ),
            (6, Rejected, strings(&["enterprise"])),
            (7, ok, vec![]),
            (8, Rejected, strings(&["enterprise.technology_fields[1]"])),
        ]
    };
    assert_eq!(by_split[0], expected(Created));
    assert_eq!(by_split[1], expected(Unchanged));
    assert_eq!(by_split[2], expected(Unchanged));
    assert_eq!(get(&server, &a).await.unwrap().display_name, "威海甲公司");
    assert!(get(&server, &c).await.is_err());

    // More than 1000 rows in one message breaks the contract: the call fails on `rows`.
    let too_many: Vec<_> = (1..=1001)
        .map(|n| row(n, enterprise(&shandong("3711", n as u32), "日照公司")))
        .collect();
    let s = import_as(
        &server,
        Role::Officer,
        messages(too_many, 1001, &Options::default()),
    )
    .await
    .unwrap_err();
    assert_single_violation(&s, "rows", "TOO_MANY_ROWS");
    // An empty stream imports nothing.
    let empty = import(&server, vec![], 1, &Options::default()).await;
    assert_eq!(empty.received_count, 0);
    server.stop().await;
}

async fn validate_only_writes_nothing_and_rejected_rows_only_lists_rejections(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let existing = shandong("3713", 1);
    create(&server, &existing, "临沂甲公司").await;
    let rows = vec![
        row(1, enterprise(&existing, "临沂甲公司")),
        row(2, enterprise(&existing.replace("00001", "00002"), "x")),
        row(3, enterprise(&shandong("3713", 3), "临沂丙公司")),
        row(4, enterprise(&shandong("3713", 4), "")),
    ];
    let preview = import(
        &server,
        rows.clone(),
        2,
        &Options {
            validate_only: true,
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        },
    )
    .await;
    assert!(preview.validate_only);
    let outcomes: Vec<_> = preview.row_results.iter().map(outcome_of).collect();
    assert_eq!(
        outcomes,
        [
            pb::ImportRowOutcome::Unchanged,
            pb::ImportRowOutcome::Rejected,
            pb::ImportRowOutcome::Created,
            pb::ImportRowOutcome::Rejected,
        ]
    );
    assert_eq!(preview.created_count, 1);
    assert!(preview.last_change_cursor.is_empty());
    assert!(
        get(&server, &shandong("3713", 3)).await.is_err(),
        "nothing written"
    );
    assert_eq!(count(&server, "audit_event").await, 1);
    assert_eq!(count(&server, "idempotency").await, 0);

    let real = import(
        &server,
        rows,
        10,
        &Options {
            rejected_rows_only: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(real.received_count, 4);
    assert_eq!(
        (
            real.created_count,
            real.unchanged_count,
            real.rejected_count
        ),
        (1, 1, 2)
    );
    let listed: Vec<i64> = real.row_results.iter().map(|r| r.row_number).collect();
    assert_eq!(listed, [2, 4]);
    assert!(get(&server, &shandong("3713", 3)).await.is_ok());
    server.stop().await;
}

async fn a_retried_import_with_its_request_id_replays_the_first_response(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let options = Options {
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let rows: Vec<_> = (1..=3)
        .map(|n| row(n, enterprise(&shandong("3714", n as u32), "德州公司")))
        .collect();
    let first = import(&server, rows, 2, &options).await;
    assert_eq!(first.created_count, 3);
    // The retry gets the first response; its rows are not read (the fourth is not created).
    let other_rows = vec![row(1, enterprise(&shandong("3714", 4), "德州丁公司"))];
    let retry = import(&server, other_rows, 1, &options).await;
    assert_eq!(retry, first);
    assert!(get(&server, &shandong("3714", 4)).await.is_err());
    assert_eq!(count(&server, "audit_event").await, 3);
    // The same id with other options is a different request.
    let s = import_as(
        &server,
        Role::Officer,
        messages(
            vec![],
            1,
            &Options {
                rejected_rows_only: true,
                ..options.clone()
            },
        ),
    )
    .await
    .unwrap_err();
    assert_single_violation(&s, "request_id", "REQUEST_ID_REUSED");
    let s = import_as(
        &server,
        Role::Officer,
        messages(
            vec![],
            1,
            &Options {
                request_id: "import-1".into(),
                ..Default::default()
            },
        ),
    )
    .await
    .unwrap_err();
    assert_single_violation(&s, "request_id", "INVALID_REQUEST_ID");
    server.stop().await;
}

async fn a_broken_import_stream_keeps_the_batches_already_committed(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let rows: Vec<_> = (1..=600)
        .map(|n| row(n, enterprise(&shandong("3715", n as u32), "聊城公司")))
        .collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ImportEnterprisesRequest>(8);
    let mut c = client(&server);
    let call = tokio::spawn({
        let request = server.request(
            Role::Officer,
            tokio_stream::wrappers::ReceiverStream::new(rx),
        );
        async move { c.import_enterprises(request).await }
    });
    // 500 rows fill the first batch, which commits; 100 more wait for the next batch.
    for m in messages(rows[..600].to_vec(), 250, &Options::default())
        .into_iter()
        .take(2)
    {
        tx.send(m).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&server, "enterprise").await < 500 {
        assert!(Instant::now() < deadline, "first batch never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send(pb::ImportEnterprisesRequest {
        rows: rows[500..].to_vec(),
        ..Default::default()
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The client goes away mid-stream.
    call.abort();
    let _ = call.await;
    drop(tx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&server, "enterprise").await, 500);
    assert_eq!(count(&server, "audit_event").await, 500);
    assert_chain_intact(&server, 500).await;

    // Importing the whole file again finishes the job.
    let again = import(&server, rows, 100, &Options::default()).await;
    assert_eq!(again.unchanged_count, 500);
    assert_eq!(again.created_count, 100);
    assert_eq!(count(&server, "enterprise").await, 600);
    assert_chain_intact(&server, 600).await;
    server.stop().await;
}

/// Makes every insert of the enterprise `uscc` fail inside the database (a trigger), so the
/// import batch holding it fails at its insert statement.
async fn refuse_inserts_of(server: &TestServer, uscc: &str) {
    let sql = match server.db.get_database_backend() {
        sea_orm::DbBackend::Postgres => vec![
            "CREATE FUNCTION qilu_test_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql".to_string(),
            format!("CREATE TRIGGER qilu_test_refuse BEFORE INSERT ON enterprise FOR EACH ROW WHEN (NEW.uscc = '{uscc}') EXECUTE FUNCTION qilu_test_refuse()"),
        ],
        _ => vec![format!(
            "CREATE TRIGGER qilu_test_refuse BEFORE INSERT ON enterprise WHEN NEW.uscc = '{uscc}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )],
    };
    for statement in sql {
        server.db.execute_unprepared(&statement).await.unwrap();
    }
}

async fn allow_inserts_again(server: &TestServer) {
    server
        .db
        .execute_unprepared("DROP TRIGGER qilu_test_refuse ON enterprise")
        .await
        .or(server
            .db
            .execute_unprepared("DROP TRIGGER qilu_test_refuse")
            .await)
        .unwrap();
}

/// The pipeline (the handler validates while the committer commits) reports one result per row
/// in stream order, and a batch that fails in the middle of the stream rejects exactly its own
/// rows: the batches before and after it commit, with their audit events, and the feed cursor
/// is the chain's head.
async fn a_batch_failing_mid_stream_rejects_exactly_its_rows_and_results_stay_in_order(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    // 1,600 rows, every 97th malformed: valid rows fill batches of 500, 500, 500 and 84.
    let bad = |n: i64| n % 97 == 0;
    let rows: Vec<_> = (1..=1600i64)
        .map(|n| {
            let code = shandong("3706", n as u32);
            let code = if bad(n) { bad_checksum(&code) } else { code };
            row(n, enterprise(&code, "烟台公司"))
        })
        .collect();
    let valid: Vec<i64> = (1..=1600).filter(|&n| !bad(n)).collect();
    // Row 700 is the 693rd valid row: the second batch holds valid rows 501..=1000.
    let batch_of = |n: i64| valid.iter().position(|&v| v == n).map(|i| i / 500);
    assert_eq!(batch_of(700), Some(1));
    refuse_inserts_of(&server, &shandong("3706", 700)).await;

    // Messages of 300 rows: batch boundaries fall inside messages.
    let response = import(&server, rows.clone(), 300, &Options::default()).await;
    assert_eq!(response.row_results.len(), 1600);
    for (i, r) in response.row_results.iter().enumerate() {
        let n = i as i64 + 1;
        assert_eq!(r.row_number, n, "results in stream order");
        match (bad(n), batch_of(n)) {
            (true, _) => {
                assert_eq!(outcome_of(r), pb::ImportRowOutcome::Rejected, "row {n}");
                assert_eq!(problem_fields(r), vec!["enterprise.uscc"], "row {n}");
            }
            (false, Some(1)) => {
                assert_eq!(outcome_of(r), pb::ImportRowOutcome::Rejected, "row {n}");
                assert_eq!(problem_fields(r), vec!["enterprise"], "row {n}");
                assert!(r.problems[0].description.contains("not saved"), "{r:?}");
            }
            (false, _) => assert_eq!(outcome_of(r), pb::ImportRowOutcome::Created, "row {n}"),
        }
    }
    let created = valid.len() as i64 - 500;
    assert_eq!(response.created_count, created);
    assert_eq!(response.rejected_count, 1600 - created);
    assert_eq!(count(&server, "enterprise").await, created);
    assert_eq!(count(&server, "audit_event").await, created);
    assert_chain_intact(&server, created).await;
    let (feed, end) = all_changes(&server, "", 1000, "").await;
    assert_eq!(feed.len() as i64, created);
    assert_eq!(response.last_change_cursor, feed[feed.len() - 1].cursor);
    assert_eq!(end, response.last_change_cursor);

    // Without the trigger the same file creates exactly the failed batch's rows.
    allow_inserts_again(&server).await;
    let again = import(&server, rows, 300, &Options::default()).await;
    assert_eq!(again.created_count, 500);
    assert_eq!(again.unchanged_count, created);
    assert_chain_intact(&server, created + 500).await;
    server.stop().await;
}

/// Makes the `COMMIT` of any transaction that inserted the enterprise `uscc` fail (a constraint
/// checked only at commit), so every import batch sharing that transaction fails with it.
async fn poison_commits_inserting(server: &TestServer, uscc: &str) {
    let sql = match server.db.get_database_backend() {
        sea_orm::DbBackend::Postgres => vec![
            "CREATE FUNCTION qilu_test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'poisoned commit' USING ERRCODE = '23514'; END $$".to_string(),
            format!("CREATE CONSTRAINT TRIGGER qilu_test_poison AFTER INSERT ON enterprise DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.uscc = '{uscc}') EXECUTE FUNCTION qilu_test_poison()"),
        ],
        _ => vec![
            // A deferred foreign key is checked at COMMIT; the poison row breaks it.
            "CREATE TABLE qilu_test_parent (id INTEGER PRIMARY KEY)".to_string(),
            "CREATE TABLE qilu_test_child (parent INTEGER REFERENCES qilu_test_parent(id) DEFERRABLE INITIALLY DEFERRED)".to_string(),
            format!("CREATE TRIGGER qilu_test_poison AFTER INSERT ON enterprise WHEN NEW.uscc = '{uscc}' BEGIN INSERT INTO qilu_test_child (parent) VALUES (-1); END"),
        ],
    };
    for statement in sql {
        server.db.execute_unprepared(&statement).await.unwrap();
    }
}

/// Consecutive batches of one import may share the writer's transaction (the committer submits
/// a batch and goes on with the next before the first is durable). A `COMMIT` that fails must
/// then reject the rows of every batch it held, as not saved, and nothing else: each row
/// reported created is stored and audited, each row reported not saved is absent, the chain is
/// intact, and importing the file again creates exactly the rows not saved.
async fn a_commit_that_fails_rejects_the_rows_of_every_batch_it_held_and_only_those(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let codes: Vec<String> = (1..=2000u32).map(|n| shandong("3708", n)).collect();
    let rows: Vec<_> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| row(i as i64 + 1, enterprise(code, "济宁公司")))
        .collect();
    // Row 700 is in the second of four batches.
    poison_commits_inserting(&server, &codes[699]).await;
    let response = import(&server, rows.clone(), 250, &Options::default()).await;
    assert_eq!(response.row_results.len(), 2000);
    let mut created = BTreeSet::new();
    let mut not_saved = BTreeSet::new();
    for (i, r) in response.row_results.iter().enumerate() {
        assert_eq!(r.row_number, i as i64 + 1, "results in stream order");
        match outcome_of(r) {
            pb::ImportRowOutcome::Created => {
                created.insert(codes[i].clone());
            }
            pb::ImportRowOutcome::Rejected => {
                assert_eq!(problem_fields(r), vec!["enterprise"], "row {}", i + 1);
                assert!(r.problems[0].description.contains("not saved"), "{r:?}");
                not_saved.insert(codes[i].clone());
            }
            other => panic!("row {}: {other:?}", i + 1),
        }
    }
    assert!(
        not_saved.contains(&codes[699]),
        "the poisoned row's batch fails"
    );
    // Whole batches fail, never part of one.
    for batch in codes.chunks(500) {
        let failed = batch.iter().filter(|c| not_saved.contains(*c)).count();
        assert!(failed == 0 || failed == batch.len(), "{failed} of a batch");
    }
    assert_eq!(response.created_count as usize, created.len());
    let backend_db = server.db.get_database_backend();
    let stored: BTreeSet<String> = server
        .db
        .query_all_raw(Statement::from_string(
            backend_db,
            "SELECT uscc FROM enterprise",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "uscc").unwrap())
        .collect();
    assert_eq!(
        stored, created,
        "exactly the rows reported created are stored"
    );
    assert_eq!(count(&server, "audit_event").await, created.len() as i64);
    assert_chain_intact(&server, created.len() as i64).await;
    // The feed cursor is the last durable batch's.
    let (feed, _) = all_changes(&server, "", 1000, "").await;
    assert_eq!(feed.len(), created.len());
    match feed.last() {
        Some(last) => assert_eq!(response.last_change_cursor, last.cursor),
        None => assert_eq!(response.last_change_cursor, ""),
    }

    // Without the trap the same file creates exactly the rows that were not saved.
    server
        .db
        .execute_unprepared(match backend_db {
            sea_orm::DbBackend::Postgres => "DROP TRIGGER qilu_test_poison ON enterprise",
            _ => "DROP TRIGGER qilu_test_poison",
        })
        .await
        .unwrap();
    let again = import(&server, rows, 250, &Options::default()).await;
    assert_eq!(again.created_count as usize, not_saved.len());
    assert_eq!(again.unchanged_count as usize, created.len());
    assert_chain_intact(&server, 2000).await;
    server.stop().await;
}

/// An import still streaming when the server begins shutting down ends promptly (the drain does
/// not wait for the client to finish), with UNAVAILABLE saying how far it got; the batch already
/// handed over is stored, the rows after it are not.
async fn an_import_streaming_at_shutdown_ends_promptly_saying_how_far_it_got(backend: Backend) {
    // A long drain: the import must not be what the server waits for.
    let Some(server) = TestServer::start_with::<Registry>(
        backend,
        &[("QILU__SERVER__DRAIN_SECONDS", "30".into())],
    )
    .await
    else {
        return;
    };
    let rows: Vec<_> = (1..=600i64)
        .map(|n| row(n, enterprise(&shandong("3709", n as u32), "泰安公司")))
        .collect();
    let (sender, stream) = tokio::sync::mpsc::channel(4);
    for message in messages(rows, 300, &Options::default()) {
        sender.send(message).await.unwrap();
    }
    // The stream stays open: the client has more to send.
    let request = server.request(
        Role::Officer,
        tokio_stream::wrappers::ReceiverStream::new(stream),
    );
    let mut importer = client(&server);
    let call = tokio::spawn(async move { importer.import_enterprises(request).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&server, "enterprise").await < 500 {
        assert!(
            Instant::now() < deadline,
            "the first batch was never committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let stop = tokio::spawn(server.stop());
    let status = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the import ends at shutdown")
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "SERVER_SHUTTING_DOWN");
    assert_eq!(info.metadata["rows_received"], "600");
    assert_eq!(info.metadata["rows_written"], "500");
    assert!(details.retry_info().is_some(), "{status:?}");
    qilu_common::testing::assert_stopped_promptly(stop, started, "an import streaming").await;
    drop(sender);
}

/// A message the run refuses ends the call, but only once the batches already handed to the
/// committer are committed: when the error arrives, the database holds them.
async fn a_stream_error_answers_only_after_the_batches_handed_over_are_committed(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let rows: Vec<_> = (1..=2001i64)
        .map(|n| row(n, enterprise(&shandong("3707", n as u32), "潍坊公司")))
        .collect();
    let mut sent = messages(rows[..1000].to_vec(), 500, &Options::default());
    // 1,001 rows in one message: TOO_MANY_ROWS.
    sent.push(pb::ImportEnterprisesRequest {
        rows: rows[1000..].to_vec(),
        ..Default::default()
    });
    let status = import_as(&server, Role::Officer, sent).await.unwrap_err();
    assert_single_violation(&status, "rows", "TOO_MANY_ROWS");
    // No waiting: the two full batches were committed before the call answered.
    assert_eq!(count(&server, "enterprise").await, 1000);
    assert_eq!(count(&server, "audit_event").await, 1000);
    assert_chain_intact(&server, 1000).await;
    server.stop().await;
}

/// The import's storage paths (on PostgreSQL one `unnest` insert of column arrays, the nullable
/// columns as text; the batch lookup by primary-key probes) keep every column, NULLs included.
async fn bulk_inserted_enterprises_read_back_field_for_field(backend: Backend) {
    use qilu_registry::domain::enterprise::{
        Enterprise, EnterpriseFields, EnterpriseState, StateChange,
    };
    use qilu_registry::domain::uscc::{KnownExceptions, Uscc};
    use qilu_registry::store::{changes as changes_store, enterprise as enterprise_store};

    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let known = KnownExceptions::default();
    let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let plain = Enterprise {
        uscc: Uscc::parse(&shandong("3701", 1), &known).unwrap(),
        fields: EnterpriseFields {
            display_name: "济南\"引号\"公司 'x'".into(),
            legal_representative: String::new(),
            established_date: date("2001-02-03"),
            address: "a\\b\n{c}".into(),
            zone: None,
            technology_fields: Vec::new(),
            green_category: 0,
        },
        state: EnterpriseState::Active,
        high_tech_certified: false,
        leading: false,
        create_time_us: 1,
        update_time_us: 2,
        version: 1,
        state_change: None,
    };
    let changed = Enterprise {
        uscc: Uscc::parse(&shandong("3702", 2), &known).unwrap(),
        fields: EnterpriseFields {
            display_name: "青岛公司".into(),
            legal_representative: "李四".into(),
            established_date: date("1999-12-31"),
            address: "青岛".into(),
            zone: Some("zones/qingdao".into()),
            technology_fields: vec![1, 4, 8],
            green_category: 3,
        },
        state: EnterpriseState::Revoked,
        high_tech_certified: true,
        leading: true,
        create_time_us: 1_700_000_000_000_000,
        update_time_us: 1_700_000_000_000_001,
        version: 7,
        state_change: Some(StateChange {
            reason: "吊销".into(),
            change_time_us: 1_700_000_000_000_001,
            effective_date: date("2024-01-31"),
        }),
    };
    changes_store::insert_enterprises(&server.db, &[plain.clone(), changed.clone()])
        .await
        .unwrap();
    let codes = vec![
        changed.uscc.as_str().to_string(),
        shandong("3703", 3),
        plain.uscc.as_str().to_string(),
        changed.uscc.as_str().to_string(),
    ];
    let mut read: Vec<Enterprise> = enterprise_store::get_many(&server.db, &codes)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.into_domain().unwrap())
        .collect();
    read.sort_by(|a, b| a.uscc.as_str().cmp(b.uscc.as_str()));
    assert_eq!(
        read,
        vec![plain, changed],
        "each code at most once, every column intact"
    );
    assert!(
        enterprise_store::get_many(&server.db, &[])
            .await
            .unwrap()
            .is_empty()
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Change feed
// ---------------------------------------------------------------------------------------------

async fn list_changes_pages_through_every_change_in_commit_order(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    // An empty registry: nothing, caught up, and a cursor all the same.
    let empty = list_changes(&server, "", 0, "").await.unwrap();
    assert!(empty.changes.is_empty() && empty.caught_up);
    assert!(!empty.next_cursor.is_empty());

    let a = shandong("3716", 1);
    let b = shandong("3716", 2);
    create(&server, &a, "滨州甲公司").await;
    create(&server, &b, "滨州乙公司").await;
    client(&server)
        .update_enterprise(server.request(
            Role::Officer,
            pb::UpdateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    name: ent(&a),
                    display_name: "滨州甲新材料公司".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".into()],
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let revoked = revoke(&server, revoke_request(&b, "吊销", "2025-01-02"))
        .await
        .unwrap();

    let (changes, end) = all_changes(&server, &empty.next_cursor, 3, "").await;
    let summary: Vec<(i64, String, pb::ChangeKind)> = changes
        .iter()
        .map(|c| (c.sequence, c.resource.clone(), kind_of(c)))
        .collect();
    assert_eq!(
        summary,
        [
            (1, ent(&a), pb::ChangeKind::Created),
            (2, ent(&b), pb::ChangeKind::Created),
            (3, ent(&a), pb::ChangeKind::Updated),
            (4, ent(&b), pb::ChangeKind::Updated),
        ]
    );
    let cursors: Vec<&str> = changes.iter().map(|c| c.cursor.as_str()).collect();
    let mut sorted = cursors.clone();
    sorted.sort_unstable();
    assert_eq!(cursors, sorted, "cursors compare in commit order");
    assert_eq!(end, changes[3].cursor);
    for c in &changes {
        assert_eq!(c.resource_type, ENTERPRISE_TYPE);
        assert!(c.commit_time.is_some());
    }
    assert!(changes[0].method.ends_with("/CreateEnterprise"));
    assert!(changes[2].method.ends_with("/UpdateEnterprise"));
    assert!(changes[3].method.ends_with("/RevokeEnterprise"));
    assert_eq!(
        change_enterprise(&changes[2]).display_name,
        "滨州甲新材料公司"
    );
    assert_eq!(
        change_enterprise(&changes[3]),
        &revoked,
        "the state after the change"
    );
    assert_eq!(changes[3].commit_time, revoked.update_time);

    // Caught up: nothing new, the cursor stays.
    let again = list_changes(&server, &end, 10, "").await.unwrap();
    assert!(again.changes.is_empty() && again.caught_up);
    assert_eq!(again.next_cursor, end);
    // A short page is not caught up.
    let first_two = list_changes(&server, "", 2, "").await.unwrap();
    assert_eq!(first_two.changes.len(), 2);
    assert!(!first_two.caught_up);
    assert_eq!(first_two.next_cursor, changes[1].cursor);
    server.stop().await;
}

async fn list_changes_filters_and_validates_cursors(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let a = shandong("3717", 1);
    let b = shandong("3717", 2);
    create(&server, &a, "菏泽甲公司").await;
    create(&server, &b, "菏泽乙公司").await;
    revoke(&server, revoke_request(&a, "吊销", ""))
        .await
        .unwrap();
    deregister(&server, deregister_request(&b, "注销", ""))
        .await
        .unwrap();

    let (created, end) = all_changes(&server, "", 1, "kind = CHANGE_KIND_CREATED").await;
    assert_eq!(
        created.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        [1, 2]
    );
    // Filtered-out changes still advance the cursor.
    let (all, all_end) = all_changes(&server, "", 50, "").await;
    assert_eq!(all.len(), 4);
    assert_eq!(end, all_end);
    let (of_a, _) = all_changes(&server, "", 50, &format!("resource = \"{}\"", ent(&a))).await;
    assert_eq!(of_a.iter().map(|c| c.sequence).collect::<Vec<_>>(), [1, 3]);
    let (updated_b, _) = all_changes(
        &server,
        "",
        50,
        &format!(
            "resource = \"{}\" AND kind = CHANGE_KIND_UPDATED AND resource_type = \"{ENTERPRISE_TYPE}\"",
            ent(&b)
        ),
    )
    .await;
    assert_eq!(
        updated_b.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        [4]
    );
    let (zones, zones_end) = all_changes(
        &server,
        "",
        50,
        "resource_type = \"registry.qilu.gov.cn/Zone\"",
    )
    .await;
    assert!(zones.is_empty());
    assert_eq!(zones_end, all_end);
    // Resuming mid-way gives the rest.
    let (rest, _) = all_changes(&server, &all[1].cursor, 50, "").await;
    assert_eq!(rest.iter().map(|c| c.sequence).collect::<Vec<_>>(), [3, 4]);

    for (cursor, reason) in [
        ("garbage", "INVALID_CURSOR"),
        ("c000000000000000A", "INVALID_CURSOR"),
        ("c00000000000003e7", "UNKNOWN_CURSOR"),
    ] {
        let s = list_changes(&server, cursor, 10, "").await.unwrap_err();
        assert_single_violation(&s, "after_cursor", reason);
    }
    for filter in [
        "kind = CREATED",
        "actor = \"x\"",
        "resource_type = \"Enterprise\"",
        "resource != \"zones/a\"",
        "kind =",
    ] {
        let s = list_changes(&server, "", 10, filter).await.unwrap_err();
        assert_invalid_field(&s, "filter");
    }
    let s = list_changes(&server, "", -1, "").await.unwrap_err();
    assert_single_violation(&s, "page_size", "OUT_OF_RANGE");
    let s = client(&server)
        .watch_changes(server.request(
            Role::Service,
            pb::WatchChangesRequest {
                after_cursor: "nope".into(),
                filter: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_single_violation(&s, "after_cursor", "INVALID_CURSOR");
    server.stop().await;
}

/// The next change of a watch stream (buffering the rest of its message).
async fn next_change(
    stream: &mut tonic::Streaming<pb::WatchChangesResponse>,
    buffer: &mut Vec<pb::Change>,
) -> pb::Change {
    loop {
        if !buffer.is_empty() {
            return buffer.remove(0);
        }
        let message = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("a change within 20 s")
            .expect("stream healthy")
            .expect("stream open");
        buffer.extend(message.changes);
    }
}

async fn watch(server: &TestServer, after: &str) -> tonic::Streaming<pb::WatchChangesResponse> {
    client(server)
        .watch_changes(server.request(
            Role::Service,
            pb::WatchChangesRequest {
                after_cursor: after.into(),
                filter: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn watch_resumes_after_a_disconnect_and_sees_every_change_exactly_once(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    for n in 1..=5 {
        create(&server, &shandong("3701", 100 + n), "济南公司").await;
    }
    let mut seen: Vec<pb::Change> = Vec::new();

    // First connection: the backlog, then a live change, then the client vanishes after taking
    // only part of what was sent.
    let mut stream = watch(&server, "").await;
    let mut buffer = Vec::new();
    for _ in 0..5 {
        seen.push(next_change(&mut stream, &mut buffer).await);
    }
    create(&server, &shandong("3701", 106), "济南公司").await;
    seen.push(next_change(&mut stream, &mut buffer).await);
    revoke(&server, revoke_request(&shandong("3701", 101), "吊销", ""))
        .await
        .unwrap();
    let rows: Vec<_> = (1..=20)
        .map(|n| row(n, enterprise(&shandong("3702", 200 + n as u32), "青岛公司")))
        .collect();
    import(&server, rows, 5, &Options::default()).await;
    // Take three more, then disconnect with the rest unread.
    for _ in 0..3 {
        seen.push(next_change(&mut stream, &mut buffer).await);
    }
    drop(buffer);
    drop(stream);
    let resume_from = seen.last().unwrap().cursor.clone();

    // Changes committed while away.
    for n in 7..=9 {
        create(&server, &shandong("3701", 100 + n), "济南公司").await;
    }
    deregister(
        &server,
        deregister_request(&shandong("3701", 102), "注销", ""),
    )
    .await
    .unwrap();

    // Resume: the rest of the backlog, then live changes.
    let mut stream = watch(&server, &resume_from).await;
    let mut buffer = Vec::new();
    let total_before_live = count(&server, "audit_event").await;
    while (seen.len() as i64) < total_before_live {
        seen.push(next_change(&mut stream, &mut buffer).await);
    }
    create(&server, &shandong("3701", 110), "济南公司").await;
    seen.push(next_change(&mut stream, &mut buffer).await);
    drop(stream);

    let total = count(&server, "audit_event").await;
    assert_eq!(total, 5 + 1 + 1 + 20 + 3 + 1 + 1);
    let sequences: Vec<i64> = seen.iter().map(|c| c.sequence).collect();
    assert_eq!(
        sequences,
        (1..=total).collect::<Vec<_>>(),
        "every change once, in order"
    );
    let unique: BTreeSet<&str> = seen.iter().map(|c| c.cursor.as_str()).collect();
    assert_eq!(unique.len() as i64, total);
    // The feed agrees with the audit log, change by change.
    let events = audit_events(&server, "").await;
    for (c, e) in seen.iter().zip(&events) {
        assert_eq!((c.sequence, &c.resource), (e.sequence, &e.resource));
        assert_eq!(c.method, e.method);
    }
    let revoked = seen
        .iter()
        .find(|c| c.method.ends_with("/RevokeEnterprise"))
        .unwrap();
    assert_eq!(
        change_enterprise(revoked).state,
        pb::EnterpriseState::Revoked as i32
    );
    assert_eq!(kind_of(revoked), pb::ChangeKind::Updated);
    assert_eq!(
        seen.iter()
            .filter(|c| c.method == IMPORT_METHOD && kind_of(c) == pb::ChangeKind::Created)
            .count(),
        20
    );
    server.stop().await;
}

async fn only_staff_and_services_read_the_change_feed(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let own = shandong("3703", 7);
    create(&server, &own, "淄博公司").await;
    for role in Role::ALL {
        let request = |m| -> Request<_> {
            if role == Role::Enterprise {
                server.enterprise_request(&own, m)
            } else {
                server.request(role, m)
            }
        };
        let listed = client(&server)
            .list_changes(request(pb::ListChangesRequest::default()))
            .await;
        let watched = client(&server)
            .watch_changes(if role == Role::Enterprise {
                server.enterprise_request(&own, pb::WatchChangesRequest::default())
            } else {
                server.request(role, pb::WatchChangesRequest::default())
            })
            .await;
        let allowed = matches!(
            role,
            Role::Admin | Role::Officer | Role::Auditor | Role::Service
        );
        if allowed {
            assert_eq!(listed.unwrap().into_inner().changes.len(), 1, "{role}");
            let mut stream = watched.unwrap().into_inner();
            let first = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(first.changes.len(), 1, "{role}");
            assert_eq!(first.cursor, first.changes[0].cursor);
        } else {
            assert_eq!(listed.unwrap_err().code(), Code::PermissionDenied, "{role}");
            assert_eq!(
                watched.unwrap_err().code(),
                Code::PermissionDenied,
                "{role}"
            );
        }
    }
    server.stop().await;
}
