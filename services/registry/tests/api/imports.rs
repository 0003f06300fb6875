//! Imports as resources: created, filled with chunks of rows (resumable by offset), started as
//! a long-running operation that reports its progress to any client, survives a restart of the
//! server mid-import (every row processed exactly once), stops between batches when cancelled,
//! writes nothing but verdicts when validating only, and pages its rows' verdicts — each exactly
//! what the streaming import of the kind answers for the same rows. Both backends.

use std::time::Duration;

use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::longrunning as lro;
use qilu_proto::longrunning::operations_client::OperationsClient;
use qilu_proto::registry as pb;
use qilu_registry::Registry;
use sea_orm::{ConnectionTrait, Statement};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::support::{client, ent, shandong, this_year, violations};

on_both_backends!(
    an_import_operation_gives_every_row_the_streaming_verdict,
    progress_is_visible_to_another_client_while_the_import_runs,
    an_import_operation_survives_a_restart_and_processes_every_row_once,
    a_cancelled_import_stops_between_batches,
    a_validate_only_import_writes_nothing_but_verdicts,
    bad_chunks_and_starts_are_refused_with_their_reasons,
    row_results_page_in_row_order_and_filter_by_outcome,
    certificate_imports_as_operations_give_the_streaming_verdicts,
    imports_list_newest_first_in_pages_and_filter,
);

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

async fn start(backend: Backend) -> Option<TestServer> {
    TestServer::start::<Registry>(backend).await
}

fn ops(server: &TestServer) -> OperationsClient<Channel> {
    OperationsClient::new(server.channel.clone())
}

/// An enterprise row numbered `n` for a valid code made from `n`.
fn row(n: i64) -> pb::ImportEnterpriseRow {
    code_row(n, &shandong("3702", n as u32))
}

fn code_row(n: i64, code: &str) -> pb::ImportEnterpriseRow {
    pb::ImportEnterpriseRow {
        row_number: n,
        enterprise: Some(pb::Enterprise {
            uscc: code.into(),
            display_name: format!("青岛绿色材料{n}"),
            established_date: "2015-06-01".into(),
            ..Default::default()
        }),
    }
}

/// `count` valid rows numbered from 1.
fn rows(count: i64) -> Vec<pb::ImportEnterpriseRow> {
    (1..=count).map(row).collect()
}

/// Rows with every way a row is refused, among good ones.
fn mixed_rows() -> Vec<pb::ImportEnterpriseRow> {
    let good = shandong("3702", 7);
    let mut bad_check = good.clone();
    let last = bad_check.pop().unwrap();
    bad_check.push(if last == '0' { '1' } else { '0' });
    let mut zoned = row(5);
    zoned.enterprise.as_mut().unwrap().zone = "zones/nowhere".into();
    let mut undated = row(6);
    undated.enterprise.as_mut().unwrap().established_date = "2015-13-01".into();
    vec![
        row(1),
        code_row(2, &bad_check),
        row(3),
        code_row(4, &shandong("3702", 3)), // the USCC of row 3 again
        zoned,
        undated,
        row(3), // row number 3 again
        pb::ImportEnterpriseRow {
            row_number: 8,
            enterprise: None,
        },
        code_row(9, &good),
    ]
}

async fn create(server: &TestServer, kind: pb::ImportKind, validate_only: bool) -> pb::Import {
    client(server)
        .create_import(server.request(
            Role::Officer,
            pb::CreateImportRequest {
                import: Some(pb::Import {
                    kind: kind as i32,
                    validate_only,
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// Appends `rows` in chunks of at most 1000, each at its offset.
async fn append(server: &TestServer, name: &str, rows: &[pb::ImportEnterpriseRow]) -> pb::Import {
    let mut last = None;
    for (i, chunk) in rows.chunks(1000).enumerate() {
        last = Some(
            client(server)
                .append_import_rows(server.request(
                    Role::Officer,
                    pb::AppendImportRowsRequest {
                        name: name.into(),
                        first_row_offset: (i * 1000) as i64,
                        enterprise_rows: chunk.to_vec(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    last.unwrap()
}

async fn start_import(server: &TestServer, name: &str) -> lro::Operation {
    client(server)
        .start_import(server.request(
            Role::Officer,
            pb::StartImportRequest {
                name: name.into(),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn get(server: &TestServer, name: &str) -> pb::Import {
    client(server)
        .get_import(server.request(Role::Admin, pb::GetImportRequest { name: name.into() }))
        .await
        .unwrap()
        .into_inner()
}

fn progress(op: &lro::Operation) -> pb::ImportProgress {
    let any = op.metadata.as_ref().unwrap();
    assert_eq!(
        any.type_url,
        "type.googleapis.com/qilu.registry.v1.ImportProgress"
    );
    prost::Message::decode(any.value.as_slice()).unwrap()
}

fn response(op: &lro::Operation) -> pb::Import {
    match op.result.as_ref().unwrap() {
        lro::operation::Result::Response(any) => {
            assert_eq!(any.type_url, "type.googleapis.com/qilu.registry.v1.Import");
            prost::Message::decode(any.value.as_slice()).unwrap()
        }
        lro::operation::Result::Error(e) => panic!("operation failed: {e:?}"),
    }
}

/// Waits (as another caller, an admin) until the operation is done, at most `limit`.
async fn wait_done(server: &TestServer, name: &str, limit: Duration) -> lro::Operation {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let op = ops(server)
            .wait_operation(server.request(
                Role::Admin,
                lro::WaitOperationRequest {
                    name: name.into(),
                    timeout: Some(prost_types::Duration {
                        seconds: 2,
                        nanos: 0,
                    }),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        if op.done {
            return op;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "operation {name} not done after {limit:?}: {:?}",
            progress(&op)
        );
    }
}

/// Every verdict of an import (or only those matching `filter`), through every page.
async fn results(
    server: &TestServer,
    name: &str,
    filter: &str,
    page_size: i32,
) -> Vec<pb::ImportRowResult> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = client(server)
            .list_import_row_results(server.request(
                Role::Officer,
                pb::ListImportRowResultsRequest {
                    parent: name.into(),
                    page_size,
                    page_token: token,
                    filter: filter.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.row_results.len() <= page_size as usize);
        all.extend(page.row_results);
        if page.next_page_token.is_empty() {
            return all;
        }
        token = page.next_page_token;
    }
}

/// The streaming import of the same rows (one message per 1000 rows).
async fn stream(
    server: &TestServer,
    rows: &[pb::ImportEnterpriseRow],
    validate_only: bool,
) -> pb::ImportEnterprisesResponse {
    let messages: Vec<pb::ImportEnterprisesRequest> = rows
        .chunks(1000)
        .map(|chunk| pb::ImportEnterprisesRequest {
            rows: chunk.to_vec(),
            validate_only,
            ..Default::default()
        })
        .collect();
    client(server)
        .import_enterprises(server.request(Role::Officer, tokio_stream::iter(messages)))
        .await
        .unwrap()
        .into_inner()
}

/// A whole import through the operation: created, appended, started, waited for.
async fn run(
    server: &TestServer,
    rows: &[pb::ImportEnterpriseRow],
    validate_only: bool,
) -> (pb::Import, lro::Operation) {
    let import = create(server, pb::ImportKind::Enterprises, validate_only).await;
    append(server, &import.name, rows).await;
    let op = start_import(server, &import.name).await;
    let done = wait_done(server, &op.name, Duration::from_secs(120)).await;
    (response(&done), done)
}

async fn count(server: &TestServer, sql: &str) -> i64 {
    let backend = server.db.get_database_backend();
    let row = server
        .db
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Audit events written by import operations.
async fn operation_events(server: &TestServer) -> (i64, i64) {
    (
        count(
            server,
            "SELECT COUNT(*) FROM audit_event WHERE method LIKE '%/StartImport'",
        )
        .await,
        count(
            server,
            "SELECT COUNT(DISTINCT resource) FROM audit_event WHERE method LIKE '%/StartImport'",
        )
        .await,
    )
}

/// Polls the import (as an admin, not its creator) until `until` holds of it.
async fn watch(server: &TestServer, name: &str, until: impl Fn(&pb::Import) -> bool) -> pb::Import {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let import = get(server, name).await;
        if until(&import) {
            return import;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "import never got there: {import:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn figures_row(n: i64, code: &str, year: i32, employees: i64) -> pb::ImportAnnualFiguresRow {
    pb::ImportAnnualFiguresRow {
        row_number: n,
        annual_figures: Some(pb::AnnualFigures {
            name: format!("{}/annualFigures/{year}", ent(code)),
            employees: Some(pb::ReportedAmount {
                value: employees,
                source: pb::FigureSource::AuditedStatement as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// The same rows, streamed to one server and imported as an operation on another, get the same
/// verdicts, row for row, and the same counts; so do annual figures.
async fn an_import_operation_gives_every_row_the_streaming_verdict(backend: Backend) {
    let Some(streamed) = start(backend).await else {
        return;
    };
    let Some(operated) = start(backend).await else {
        return;
    };
    let mut all = mixed_rows();
    all.extend((100..1300).map(row)); // more than one batch and more than one chunk
    all.push(row(100)); // a late duplicate row number
    let expected = stream(&streamed, &all, false).await;
    let (import, done) = run(&operated, &all, false).await;
    let got = results(&operated, &import.name, "", 1000).await;
    assert_eq!(got, expected.row_results);
    assert_eq!(
        (
            import.created_count,
            import.updated_count,
            import.unchanged_count,
            import.rejected_count
        ),
        (
            expected.created_count,
            expected.updated_count,
            expected.unchanged_count,
            expected.rejected_count
        )
    );
    assert_eq!(import.state, pb::ImportState::Succeeded as i32);
    assert_eq!(import.rows_processed, all.len() as i64);
    assert!(!import.last_change_cursor.is_empty());
    let meta = progress(&done);
    assert_eq!(
        (meta.rows_total, meta.rows_processed, meta.created_count),
        (all.len() as i64, all.len() as i64, expected.created_count)
    );
    // What the operation wrote reads back as the streamed rows do.
    let code = shandong("3702", 1);
    let read = |server: &TestServer| {
        let mut c = client(server);
        let req = server.request(Role::Officer, pb::GetEnterpriseRequest { name: ent(&code) });
        async move { c.get_enterprise(req).await.unwrap().into_inner() }
    };
    assert_eq!(
        read(&operated).await.display_name,
        read(&streamed).await.display_name
    );

    // Again, as an operation on both: every accepted row UNCHANGED on both.
    let again_streamed = stream(&streamed, &all, false).await;
    let (again, _) = run(&operated, &all, false).await;
    assert_eq!(
        results(&operated, &again.name, "", 500).await,
        again_streamed.row_results
    );
    assert_eq!(again.created_count + again.updated_count, 0);

    // Annual figures: created, updated, unchanged and rejected rows alike.
    let year = this_year() - 1;
    let code = shandong("3702", 100);
    let unknown = shandong("3799", 1);
    let figures = vec![
        figures_row(1, &code, year, 120),
        figures_row(2, &code, year, 120), // the same enterprise-year again
        figures_row(3, &unknown, year, 10), // not registered
        figures_row(4, &code, year - 1, -5), // negative
        figures_row(5, &shandong("3702", 101), year, 30),
    ];
    let streamed_figures = client(&streamed)
        .import_annual_figures(streamed.request(
            Role::Officer,
            tokio_stream::iter([pb::ImportAnnualFiguresRequest {
                rows: figures.clone(),
                ..Default::default()
            }]),
        ))
        .await
        .unwrap()
        .into_inner();
    let import = create(&operated, pb::ImportKind::AnnualFigures, false).await;
    client(&operated)
        .append_import_rows(operated.request(
            Role::Officer,
            pb::AppendImportRowsRequest {
                name: import.name.clone(),
                first_row_offset: 0,
                annual_figures_rows: figures,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let op = start_import(&operated, &import.name).await;
    let done = response(&wait_done(&operated, &op.name, Duration::from_secs(60)).await);
    assert_eq!(
        results(&operated, &import.name, "", 50).await,
        streamed_figures.row_results
    );
    assert_eq!(
        (done.created_count, done.rejected_count),
        (
            streamed_figures.created_count,
            streamed_figures.rejected_count
        )
    );
    assert_eq!(done.created_count, 2);
}

/// A second client (an admin, not the officer who started it) sees the operation's progress
/// and the import's counts move while it runs, never backwards, up to every row.
async fn progress_is_visible_to_another_client_while_the_import_runs(backend: Backend) {
    let Some(server) = start(backend).await else {
        return;
    };
    let all = rows(6000);
    let import = create(&server, pb::ImportKind::Enterprises, false).await;
    let staged = append(&server, &import.name, &all).await;
    assert_eq!(
        (staged.state, staged.rows_total),
        (pb::ImportState::Staging as i32, 6000)
    );
    let op = start_import(&server, &import.name).await;
    let mut seen = Vec::new();
    loop {
        let now = ops(&server)
            .get_operation(server.request(
                Role::Admin,
                lro::GetOperationRequest {
                    name: op.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let meta = progress(&now);
        assert_eq!(meta.import, import.name);
        assert_eq!(meta.rows_total, 6000);
        assert_eq!(
            meta.rows_processed,
            meta.created_count + meta.updated_count + meta.unchanged_count + meta.rejected_count
        );
        seen.push(meta.rows_processed);
        if now.done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(
        seen.iter().any(|&n| n > 0 && n < 6000),
        "no progress between start and end was visible: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&6000));
    let read = get(&server, &import.name).await;
    assert_eq!(read.state, pb::ImportState::Succeeded as i32);
    assert_eq!(read.operation, op.name);
    assert_eq!(read.creator, "test-officer");
    assert_eq!(read.created_count, 6000);
    // The import is listed, newest first, and found by state.
    let listed = client(&server)
        .list_imports(server.request(
            Role::Admin,
            pb::ListImportsRequest {
                filter: "state = IMPORT_STATE_SUCCEEDED AND kind = IMPORT_KIND_ENTERPRISES".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.imports, vec![read]);
}

/// The server stops mid-import and starts again: the operation is taken over and finishes,
/// every row processed exactly once — each enterprise created once, each row one verdict.
async fn an_import_operation_survives_a_restart_and_processes_every_row_once(backend: Backend) {
    let Some(server) = start(backend).await else {
        return;
    };
    let total = 8000;
    let all = rows(total);
    let import = create(&server, pb::ImportKind::Enterprises, false).await;
    append(&server, &import.name, &all).await;
    let op = start_import(&server, &import.name).await;
    let before = watch(&server, &import.name, |i| i.rows_processed > 0).await;
    let server = server.restart::<Registry>().await;
    let after_restart = get(&server, &import.name).await;
    assert!(
        after_restart.rows_processed >= before.rows_processed
            && after_restart.rows_processed < total,
        "the restart came mid-import: {after_restart:?}"
    );
    assert_eq!(
        after_restart.rows_processed % 500,
        0,
        "batches commit whole"
    );
    let done = wait_done(&server, &op.name, Duration::from_secs(120)).await;
    let finished = response(&done);
    assert!(progress(&done).attempt >= 2, "{:?}", progress(&done));
    assert_eq!(finished.state, pb::ImportState::Succeeded as i32);
    assert_eq!(
        (
            finished.rows_processed,
            finished.created_count,
            finished.rejected_count
        ),
        (total, total, 0)
    );
    let verdicts = results(&server, &import.name, "", 1000).await;
    assert_eq!(verdicts.len(), total as usize);
    assert!(verdicts.iter().enumerate().all(|(i, r)| {
        r.row_number == i as i64 + 1 && r.outcome == pb::ImportRowOutcome::Created as i32
    }));
    // Each enterprise created by exactly one event; nothing else written by the operation.
    assert_eq!(operation_events(&server).await, (total, total));
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM enterprise").await,
        total
    );
}

/// Cancelled while it runs, the import stops at a batch boundary: the batches before it are
/// written with their verdicts, nothing after.
async fn a_cancelled_import_stops_between_batches(backend: Backend) {
    let Some(server) = start(backend).await else {
        return;
    };
    let total = 8000;
    let import = create(&server, pb::ImportKind::Enterprises, false).await;
    append(&server, &import.name, &rows(total)).await;
    let op = start_import(&server, &import.name).await;
    watch(&server, &import.name, |i| i.rows_processed > 0).await;
    ops(&server)
        .cancel_operation(server.request(
            Role::Officer,
            lro::CancelOperationRequest {
                name: op.name.clone(),
            },
        ))
        .await
        .unwrap();
    let done = wait_done(&server, &op.name, Duration::from_secs(60)).await;
    match done.result.as_ref().unwrap() {
        lro::operation::Result::Error(e) => assert_eq!(e.code, Code::Cancelled as i32, "{e:?}"),
        other => panic!("cancelled operation answered {other:?}"),
    }
    let stopped = get(&server, &import.name).await;
    assert_eq!(stopped.state, pb::ImportState::Cancelled as i32);
    assert!(
        stopped.rows_processed > 0 && stopped.rows_processed < total,
        "{stopped:?}"
    );
    assert_eq!(stopped.rows_processed % 500, 0);
    assert_eq!(stopped.created_count, stopped.rows_processed);
    assert_eq!(
        results(&server, &import.name, "", 1000).await.len() as i64,
        stopped.rows_processed
    );
    assert_eq!(
        operation_events(&server).await,
        (stopped.rows_processed, stopped.rows_processed)
    );
    // A cancelled import takes no more rows.
    let status = client(&server)
        .append_import_rows(server.request(
            Role::Officer,
            pb::AppendImportRowsRequest {
                name: import.name.clone(),
                first_row_offset: total,
                enterprise_rows: vec![row(total + 1)],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_precondition(&status, "IMPORT_NOT_STAGING");
}

/// `validate_only`: every row judged as the streaming import's `validate_only` judges it,
/// nothing written, no audit event.
async fn a_validate_only_import_writes_nothing_but_verdicts(backend: Backend) {
    let Some(server) = start(backend).await else {
        return;
    };
    let events = count(&server, "SELECT COUNT(*) FROM audit_event").await;
    let all = mixed_rows();
    let expected = stream(&server, &all, true).await;
    let (import, _) = run(&server, &all, true).await;
    assert!(import.validate_only);
    assert_eq!(
        results(&server, &import.name, "", 100).await,
        expected.row_results
    );
    assert!(import.created_count > 0);
    assert_eq!(count(&server, "SELECT COUNT(*) FROM enterprise").await, 0);
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM audit_event").await,
        events
    );
    assert!(import.last_change_cursor.is_empty());
}

fn assert_precondition(status: &tonic::Status, kind: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let failure = status
        .get_details_precondition_failure()
        .expect("PreconditionFailure");
    assert_eq!(failure.violations[0].r#type, kind, "{status:?}");
}

/// Chunks are placed by offset: a repeat is a no-op, a gap or a differing repeat is refused
/// naming the offset to send next; rows of another kind, too many rows, a missing kind, an
/// unknown import and a second start are refused; only staff may import.
async fn bad_chunks_and_starts_are_refused_with_their_reasons(backend: Backend) {
    let Some(server) = start(backend).await else {
        return;
    };
    let mut c = client(&server);
    let appender = client(&server);
    let append_as = |offset: i64, rows: Vec<pb::ImportEnterpriseRow>, name: &str| {
        let mut c = appender.clone();
        let req = server.request(
            Role::Officer,
            pb::AppendImportRowsRequest {
                name: name.into(),
                first_row_offset: offset,
                enterprise_rows: rows,
                ..Default::default()
            },
        );
        async move { c.append_import_rows(req).await.map(|r| r.into_inner()) }
    };
    // A retried create replays the first.
    let create_req = pb::CreateImportRequest {
        import: Some(pb::Import {
            kind: pb::ImportKind::Enterprises as i32,
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let import = c
        .create_import(server.request(Role::Officer, create_req.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = c
        .create_import(server.request(Role::Officer, create_req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, import);
    assert!(import.name.starts_with("imports/"));
    assert_eq!(import.state, pb::ImportState::Staging as i32);
    let name = import.name.clone();

    let first = append_as(0, rows(3), &name).await.unwrap();
    assert_eq!(first.rows_total, 3);
    // The same chunk again: accepted, nothing added.
    assert_eq!(append_as(0, rows(3), &name).await.unwrap().rows_total, 3);
    // Overlapping the stored rows exactly, then new ones: only the new ones are added.
    assert_eq!(
        append_as(2, (3..=5).map(row).collect(), &name)
            .await
            .unwrap()
            .rows_total,
        5
    );
    // A gap.
    let gap = append_as(7, vec![row(8)], &name).await.unwrap_err();
    assert_precondition(&gap, "IMPORT_ROWS_GAP");
    assert!(gap.message().contains("offset 5"), "{gap:?}");
    // A differing repeat.
    let differ = append_as(1, vec![row(99)], &name).await.unwrap_err();
    assert_precondition(&differ, "IMPORT_ROWS_DIFFER");
    assert!(differ.message().contains("offset 1"), "{differ:?}");
    // Rows of another kind, none at all, too many, a negative offset.
    let other = c
        .append_import_rows(server.request(
            Role::Officer,
            pb::AppendImportRowsRequest {
                name: name.clone(),
                first_row_offset: 5,
                annual_figures_rows: vec![figures_row(1, &shandong("3702", 1), this_year() - 1, 1)],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::InvalidArgument);
    assert!(
        violations(&other).contains(&("annual_figures_rows".into(), "IMPORT_KIND_MISMATCH".into()))
    );
    let empty = append_as(5, vec![], &name).await.unwrap_err();
    assert!(violations(&empty).contains(&("enterprise_rows".into(), "REQUIRED".into())));
    let many = append_as(5, (6..=1006).map(row).collect(), &name)
        .await
        .unwrap_err();
    assert!(violations(&many).contains(&("enterprise_rows".into(), "TOO_MANY_ROWS".into())));
    let negative = append_as(-1, vec![row(6)], &name).await.unwrap_err();
    assert!(violations(&negative).contains(&("first_row_offset".into(), "OUT_OF_RANGE".into())));
    assert_eq!(get(&server, &name).await.rows_total, 5);

    // Unknown imports and bad names.
    let missing = append_as(0, vec![row(1)], "imports/0190a0a0a0a0a0a0a0a0a0a0a0a0a0a0")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let bad = append_as(0, vec![row(1)], "enterprises/x")
        .await
        .unwrap_err();
    assert!(violations(&bad).contains(&("name".into(), "INVALID_RESOURCE_NAME".into())));
    // A create without a kind.
    let kindless = c
        .create_import(server.request(
            Role::Officer,
            pb::CreateImportRequest {
                import: Some(pb::Import::default()),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert!(violations(&kindless).contains(&("import.kind".into(), "REQUIRED".into())));
    // Only staff import.
    let denied = c
        .create_import(server.request(
            Role::Auditor,
            pb::CreateImportRequest {
                import: Some(pb::Import {
                    kind: pb::ImportKind::Enterprises as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Started: a retried start returns the same operation; another start, or new rows, are
    // refused; the last chunk sent again is still a no-op.
    let start_req = pb::StartImportRequest {
        name: name.clone(),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let op = c
        .start_import(server.request(Role::Officer, start_req.clone()))
        .await
        .unwrap()
        .into_inner();
    let retried = c
        .start_import(server.request(Role::Officer, start_req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.name, op.name);
    let second = start_import_err(&server, &name).await;
    assert_precondition(&second, "IMPORT_NOT_STAGING");
    let late = append_as(5, vec![row(6)], &name).await.unwrap_err();
    assert_precondition(&late, "IMPORT_NOT_STAGING");
    assert_eq!(
        append_as(2, (3..=5).map(row).collect(), &name)
            .await
            .unwrap()
            .rows_total,
        5
    );
    let done = response(&wait_done(&server, &op.name, Duration::from_secs(60)).await);
    assert_eq!((done.rows_processed, done.created_count), (5, 5));
}

async fn start_import_err(server: &TestServer, name: &str) -> tonic::Status {
    client(server)
        .start_import(server.request(
            Role::Officer,
            pb::StartImportRequest {
                name: name.into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err()
}

/// Row results page in row order, whole pages, and filter by outcome; a token is bound to its
/// filter.
async fn row_results_page_in_row_order_and_filter_by_outcome(backend: Backend) {
    let Some(server) = start(backend).await else {
        return;
    };
    // Every tenth row names an unregistered zone.
    let all: Vec<pb::ImportEnterpriseRow> = (1..=2500)
        .map(|n| {
            let mut r = row(n);
            if n % 10 == 0 {
                r.enterprise.as_mut().unwrap().zone = "zones/nowhere".into();
            }
            r
        })
        .collect();
    let (import, _) = run(&server, &all, false).await;
    assert_eq!((import.created_count, import.rejected_count), (2250, 250));
    let every = results(&server, &import.name, "", 1000).await;
    assert_eq!(
        every.iter().map(|r| r.row_number).collect::<Vec<_>>(),
        (1..=2500).collect::<Vec<_>>()
    );
    let rejected = results(
        &server,
        &import.name,
        "outcome = IMPORT_ROW_OUTCOME_REJECTED",
        100,
    )
    .await;
    assert_eq!(
        rejected.iter().map(|r| r.row_number).collect::<Vec<_>>(),
        (1..=250).map(|n| n * 10).collect::<Vec<_>>()
    );
    assert!(
        rejected
            .iter()
            .all(|r| r.problems[0].field == "enterprise.zone")
    );
    // A token is bound to its filter.
    let first = client(&server)
        .list_import_row_results(server.request(
            Role::Officer,
            pb::ListImportRowResultsRequest {
                parent: import.name.clone(),
                page_size: 10,
                filter: "outcome = IMPORT_ROW_OUTCOME_REJECTED".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mismatch = client(&server)
        .list_import_row_results(server.request(
            Role::Officer,
            pb::ListImportRowResultsRequest {
                parent: import.name.clone(),
                page_size: 10,
                page_token: first.next_page_token,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert!(
        violations(&mismatch).contains(&("page_token".into(), "PAGE_TOKEN_QUERY_MISMATCH".into()))
    );
    let bad_filter = client(&server)
        .list_import_row_results(server.request(
            Role::Officer,
            pb::ListImportRowResultsRequest {
                parent: import.name.clone(),
                filter: "outcome = SOMETHING".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_filter.code(), Code::InvalidArgument);
}

fn certificate_row(
    n: i64,
    code: &str,
    number: &str,
    reports: &[(i32, &str)],
) -> pb::ImportHighTechCertificateRow {
    pb::ImportHighTechCertificateRow {
        row_number: n,
        enterprise: ent(code),
        high_tech_certificate: Some(pb::HighTechCertificate {
            certificate_number: number.into(),
            issue_date: "2025-03-01".into(),
            technology_field: qilu_proto::common::HighTechField::NewMaterials as i32,
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

/// Certificates with their history, streamed to one server and imported as an operation on
/// another, validating only and then for real: the same verdicts row for row (the history
/// rows' validation is a write rolled back, so this also pins that path).
async fn certificate_imports_as_operations_give_the_streaming_verdicts(backend: Backend) {
    let Some(streamed) = start(backend).await else {
        return;
    };
    let Some(operated) = start(backend).await else {
        return;
    };
    let codes: Vec<String> = (1..=3).map(|n| shandong("3703", n)).collect();
    let seed: Vec<pb::ImportEnterpriseRow> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| code_row(i as i64 + 1, c))
        .collect();
    stream(&streamed, &seed, false).await;
    stream(&operated, &seed, false).await;
    let rows = vec![
        certificate_row(1, &codes[0], "GR202537000001", &[(2025, "2026-05-10")]),
        certificate_row(2, &codes[1], "GR202537000001", &[]), // the number of row 1 again
        certificate_row(3, &shandong("3799", 9), "GR202537000003", &[]), // not registered
        certificate_row(4, &codes[1], "GR202537000004", &[(2025, "2099-01-01")]), // future
        certificate_row(5, &codes[2], "GR202537000005", &[]),
        certificate_row(5, &codes[2], "GR202537000006", &[]), // row number 5 again
    ];
    let streamed_run = |validate_only: bool| {
        let mut c = client(&streamed);
        let req = streamed.request(
            Role::Officer,
            tokio_stream::iter([pb::ImportHighTechCertificatesRequest {
                rows: rows.clone(),
                validate_only,
                ..Default::default()
            }]),
        );
        async move {
            c.import_high_tech_certificates(req)
                .await
                .unwrap()
                .into_inner()
        }
    };
    let operated_run = |validate_only: bool| {
        let server = &operated;
        let rows = rows.clone();
        async move {
            let import = create(server, pb::ImportKind::HighTechCertificates, validate_only).await;
            client(server)
                .append_import_rows(server.request(
                    Role::Officer,
                    pb::AppendImportRowsRequest {
                        name: import.name.clone(),
                        first_row_offset: 0,
                        high_tech_certificate_rows: rows,
                        ..Default::default()
                    },
                ))
                .await
                .unwrap();
            let op = start_import(server, &import.name).await;
            let done = response(&wait_done(server, &op.name, Duration::from_secs(60)).await);
            (done.clone(), results(server, &done.name, "", 50).await)
        }
    };
    for validate_only in [true, false] {
        let expected = streamed_run(validate_only).await;
        let (done, got) = operated_run(validate_only).await;
        assert_eq!(got, expected.row_results, "validate_only = {validate_only}");
        assert_eq!(
            (done.created_count, done.rejected_count),
            (expected.created_count, expected.rejected_count)
        );
        assert_eq!(done.created_count, 2);
        let stored = count(&operated, "SELECT COUNT(*) FROM high_tech_certificate").await;
        assert_eq!(stored, if validate_only { 0 } else { 2 });
    }
}

/// `ListImports`: newest first, in pages whose token is bound to the filter; filtered by kind,
/// state and creator.
async fn imports_list_newest_first_in_pages_and_filter(backend: Backend) {
    let Some(server) = start(backend).await else {
        return;
    };
    let mut made = Vec::new();
    for kind in [
        pb::ImportKind::Enterprises,
        pb::ImportKind::AnnualFigures,
        pb::ImportKind::Enterprises,
    ] {
        made.push(create(&server, kind, false).await.name);
    }
    let list = |page_size: i32, page_token: String, filter: &str| {
        let mut c = client(&server);
        let req = server.request(
            Role::Admin,
            pb::ListImportsRequest {
                page_size,
                page_token,
                filter: filter.into(),
            },
        );
        async move { c.list_imports(req).await.map(|r| r.into_inner()) }
    };
    let first = list(2, String::new(), "").await.unwrap();
    let names = |r: &pb::ListImportsResponse| -> Vec<String> {
        r.imports.iter().map(|i| i.name.clone()).collect()
    };
    assert_eq!(names(&first), vec![made[2].clone(), made[1].clone()]);
    let second = list(2, first.next_page_token.clone(), "").await.unwrap();
    assert_eq!(names(&second), vec![made[0].clone()]);
    assert!(second.next_page_token.is_empty());
    let enterprises = list(0, String::new(), "kind = IMPORT_KIND_ENTERPRISES")
        .await
        .unwrap();
    assert_eq!(names(&enterprises), vec![made[2].clone(), made[0].clone()]);
    let mine = list(
        0,
        String::new(),
        "creator = \"test-officer\" AND state = IMPORT_STATE_STAGING",
    )
    .await
    .unwrap();
    assert_eq!(mine.imports.len(), 3);
    let nobody = list(0, String::new(), "creator = \"someone-else\"")
        .await
        .unwrap();
    assert!(nobody.imports.is_empty());
    let mismatch = list(2, first.next_page_token, "kind = IMPORT_KIND_ENTERPRISES")
        .await
        .unwrap_err();
    assert!(
        violations(&mismatch).contains(&("page_token".into(), "PAGE_TOKEN_QUERY_MISMATCH".into()))
    );
    let unknown = list(0, String::new(), "owner = \"x\"").await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
}
