//! Group commit (`qilu_common::write`) as a caller sees it: many concurrent writes share one
//! database transaction, and still every acknowledged write is durable and audited, every failed
//! one leaves no trace, the chain stays gap-free, and a `COMMIT` that fails fails every write of
//! its batch. Real server, real gRPC clients, both backends.

use std::collections::BTreeSet;
use std::time::Duration;

use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_registry::Registry;
use sea_orm::{ConnectionTrait, Statement};
use tonic::{Code, Status};

use crate::support::{audit_events, client, execute, with_check};

on_both_backends!(
    sixty_four_concurrent_creates_all_commit_on_a_gap_free_chain,
    concurrent_retries_of_one_request_id_inside_a_batch_create_once,
    failing_writes_inside_a_batch_leave_no_trace_and_the_others_all_commit,
    a_commit_that_fails_fails_every_write_of_its_batch,
);

/// A valid GB 32100 code registered in Jinan, varied by `n`.
fn uscc(n: u32) -> String {
    with_check(&format!("91370100MA3G{n:05}"))
}

fn create_request(n: u32, display_name: &str, request_id: String) -> pb::CreateEnterpriseRequest {
    pb::CreateEnterpriseRequest {
        enterprise: Some(pb::Enterprise {
            uscc: uscc(n),
            display_name: display_name.to_string(),
            legal_representative: "张三".into(),
            established_date: "2010-05-04".into(),
            address: "山东省济南市历下区".into(),
            ..Default::default()
        }),
        request_id,
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Sends `request` on its own task.
fn spawn_create(
    server: &TestServer,
    request: pb::CreateEnterpriseRequest,
) -> tokio::task::JoinHandle<Result<pb::Enterprise, Status>> {
    let mut c = client(server);
    let r = server.request(Role::Officer, request);
    tokio::spawn(async move {
        c.create_enterprise(r)
            .await
            .map(tonic::Response::into_inner)
    })
}

/// The chain verifies, its sequences are exactly 1..=n, and commit times never go back.
async fn assert_chain(server: &TestServer) -> Vec<cpb::AuditEvent> {
    let verdict = client(server)
        .verify_audit_chain(server.request(Role::Auditor, cpb::VerifyAuditChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(verdict.intact, "{verdict:?}");
    let events = audit_events(server, "").await;
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as i64).collect::<Vec<_>>());
    assert_eq!(verdict.head_sequence, events.len() as i64);
    let micros = |e: &cpb::AuditEvent| {
        let t = e.commit_time.unwrap();
        t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000
    };
    for pair in events.windows(2) {
        assert!(micros(&pair[0]) <= micros(&pair[1]), "{pair:#?}");
    }
    events
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

async fn stored_usccs(server: &TestServer) -> BTreeSet<String> {
    let backend = server.db.get_database_backend();
    server
        .db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT uscc FROM enterprise",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "uscc").unwrap())
        .collect()
}

async fn sixty_four_concurrent_creates_all_commit_on_a_gap_free_chain(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            spawn_create(
                &server,
                create_request(n, &format!("并发企业{n}"), new_id()),
            )
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("every create succeeds");
    }
    let events = assert_chain(&server).await;
    assert_eq!(events.len(), 64);
    let audited: BTreeSet<String> = events.iter().map(|e| e.resource.clone()).collect();
    let expected: BTreeSet<String> = (0..64)
        .map(|n| format!("enterprises/{}", uscc(n)))
        .collect();
    assert_eq!(audited, expected);
    assert_eq!(stored_usccs(&server).await.len(), 64);
    assert_eq!(count(&server, "SELECT COUNT(*) FROM idempotency").await, 64);
    server.stop().await;
}

async fn concurrent_retries_of_one_request_id_inside_a_batch_create_once(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    // Eight copies of one request between 24 other writes: they share batches with each other
    // and with the others, so a copy after the first sees its uncommitted record and replays.
    let repeated = create_request(100, "重试企业", new_id());
    let mut copies = Vec::new();
    let mut others = Vec::new();
    for n in 0..32u32 {
        if n % 4 == 1 {
            copies.push(spawn_create(&server, repeated.clone()));
        } else {
            others.push(spawn_create(
                &server,
                create_request(n, "其他企业", new_id()),
            ));
        }
    }
    let mut answers = Vec::new();
    for task in copies {
        answers.push(task.await.unwrap().expect("every retry succeeds"));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
    for task in others {
        task.await.unwrap().expect("every other create succeeds");
    }
    let events = assert_chain(&server).await;
    assert_eq!(events.len(), 25);
    let of_repeated = events
        .iter()
        .filter(|e| e.resource == format!("enterprises/{}", uscc(100)))
        .count();
    assert_eq!(of_repeated, 1);
    assert_eq!(count(&server, "SELECT COUNT(*) FROM idempotency").await, 25);
    server.stop().await;
}

async fn failing_writes_inside_a_batch_leave_no_trace_and_the_others_all_commit(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let existing = client(&server)
        .create_enterprise(server.request(Role::Officer, create_request(0, "已有企业", new_id())))
        .await
        .unwrap()
        .into_inner();
    // Interleaved: good creates; creates of the existing code (the INSERT fails inside the
    // shared transaction, which on PostgreSQL aborts it until its savepoint is rolled back);
    // updates with a stale etag; and a good update.
    let mut good = Vec::new();
    let mut duplicates = Vec::new();
    let mut stale = Vec::new();
    for n in 1..=40u32 {
        match n % 4 {
            0 => duplicates.push(spawn_create(
                &server,
                create_request(0, &format!("重复{n}"), new_id()),
            )),
            1 => {
                let mut c = client(&server);
                let r = server.request(
                    Role::Officer,
                    pb::UpdateEnterpriseRequest {
                        enterprise: Some(pb::Enterprise {
                            name: existing.name.clone(),
                            etag: "W/\"stale\"".into(),
                            display_name: format!("不应写入{n}"),
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["display_name".into()],
                        }),
                        request_id: new_id(),
                    },
                );
                stale.push(tokio::spawn(async move { c.update_enterprise(r).await }));
            }
            _ => good.push((
                n,
                spawn_create(&server, create_request(n, &format!("好企业{n}"), new_id())),
            )),
        }
    }
    for task in duplicates {
        let status = task.await.unwrap().expect_err("a duplicate fails");
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    }
    for task in stale {
        let status = task.await.unwrap().expect_err("a stale etag fails");
        assert_eq!(status.code(), Code::Aborted, "{status:?}");
    }
    let mut expected: BTreeSet<String> = [uscc(0)].into();
    for (n, task) in good {
        task.await.unwrap().expect("every good create succeeds");
        expected.insert(uscc(n));
    }
    assert_eq!(stored_usccs(&server).await, expected);
    let events = assert_chain(&server).await;
    // One event per successful write; none of a failed one.
    assert_eq!(events.len(), expected.len());
    assert!(
        events
            .iter()
            .all(|e| !e.state_json.contains("重复") && !e.state_json.contains("不应写入"))
    );
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM idempotency").await,
        expected.len() as i64
    );
    let now = client(&server)
        .get_enterprise(server.request(
            Role::Officer,
            pb::GetEnterpriseRequest {
                name: existing.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.display_name, "已有企业");
    server.stop().await;
}

/// A constraint checked only at `COMMIT` (deferred) that the enterprise named `poison` breaks,
/// and a trigger that makes the insert of `slow` take a moment, so the writes sent meanwhile
/// queue up and share the next batch.
async fn install_commit_trap(server: &TestServer, backend: Backend) {
    match backend {
        Backend::Postgres => {
            execute(
                server,
                "CREATE FUNCTION gc_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.display_name = 'poison' THEN \
                 RAISE EXCEPTION 'poisoned batch' USING ERRCODE = '23514'; END IF; \
                 RETURN NULL; END $$",
            )
            .await;
            execute(
                server,
                "CREATE CONSTRAINT TRIGGER gc_poison AFTER INSERT ON enterprise \
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION gc_poison()",
            )
            .await;
            execute(
                server,
                "CREATE FUNCTION gc_slow() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.display_name = 'slow' THEN PERFORM pg_sleep(0.6); END IF; \
                 RETURN NEW; END $$",
            )
            .await;
            execute(
                server,
                "CREATE TRIGGER gc_slow BEFORE INSERT ON enterprise \
                 FOR EACH ROW EXECUTE FUNCTION gc_slow()",
            )
            .await;
        }
        Backend::Sqlite => {
            // A deferred foreign key is checked at COMMIT; the poison row breaks it.
            execute(server, "CREATE TABLE gc_parent (id INTEGER PRIMARY KEY)").await;
            execute(
                server,
                "CREATE TABLE gc_child (parent INTEGER REFERENCES gc_parent(id) \
                 DEFERRABLE INITIALLY DEFERRED)",
            )
            .await;
            execute(
                server,
                "CREATE TRIGGER gc_poison AFTER INSERT ON enterprise \
                 WHEN NEW.display_name = 'poison' \
                 BEGIN INSERT INTO gc_child (parent) VALUES (-1); END",
            )
            .await;
            // SQLite has no sleep: a recursive count that takes a moment instead.
            execute(server, "CREATE TABLE gc_scratch (n INTEGER)").await;
            execute(
                server,
                "CREATE TRIGGER gc_slow BEFORE INSERT ON enterprise \
                 WHEN NEW.display_name = 'slow' BEGIN \
                 INSERT INTO gc_scratch SELECT COUNT(*) FROM (WITH RECURSIVE r(i) AS \
                 (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 3000000) SELECT i FROM r); \
                 END",
            )
            .await;
        }
    }
}

async fn a_commit_that_fails_fails_every_write_of_its_batch(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    install_commit_trap(&server, backend).await;
    let slow = spawn_create(&server, create_request(1, "slow", new_id()));
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Queued behind the slow write, in this order: the poison first, then the innocent ones.
    let poison = spawn_create(&server, create_request(2, "poison", new_id()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let innocent: Vec<_> = (3..15u32)
        .map(|n| {
            (
                n,
                spawn_create(&server, create_request(n, "无辜企业", new_id())),
            )
        })
        .collect();
    let slow = slow.await.unwrap();
    let poison = poison.await.unwrap().expect_err("the poisoned write fails");
    assert_ne!(poison.code(), Code::Ok);
    let mut failed = 0;
    let mut committed: BTreeSet<String> = BTreeSet::new();
    if slow.is_ok() {
        committed.insert(uscc(1));
    }
    for (n, task) in innocent {
        match task.await.unwrap() {
            Ok(_) => {
                committed.insert(uscc(n));
            }
            Err(status) => {
                // Told the truth: retryable, and nothing of it was stored.
                assert!(
                    matches!(status.code(), Code::Aborted | Code::Unavailable),
                    "{status:?}"
                );
                failed += 1;
            }
        }
    }
    assert!(
        failed > 0,
        "the writes batched with the poisoned one must fail with it"
    );
    // Exactly the acknowledged writes are stored and audited; the chain is intact.
    assert_eq!(stored_usccs(&server).await, committed);
    let events = assert_chain(&server).await;
    let audited: BTreeSet<String> = events
        .iter()
        .map(|e| e.resource.trim_start_matches("enterprises/").to_string())
        .collect();
    assert_eq!(audited, committed);
    assert_eq!(
        count(&server, "SELECT COUNT(*) FROM idempotency").await,
        committed.len() as i64
    );
    // The writer recovers: the next write commits and continues the chain.
    let next = client(&server)
        .create_enterprise(server.request(Role::Officer, create_request(20, "之后企业", new_id())))
        .await;
    assert!(next.is_ok(), "{next:?}");
    assert_eq!(assert_chain(&server).await.len(), committed.len() + 1);
    server.stop().await;
}
