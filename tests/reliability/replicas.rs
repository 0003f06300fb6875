//! Two registry replicas on one PostgreSQL database: stateless servers writing concurrently must
//! both succeed and share one gap-free, verifiable audit chain (writers serialise on the audit
//! head row).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use qilu_common::testing::{Backend, TestDb, test_config};
use tonic::Code;

use crate::load::{Load, Replica, audit_facts, inspect, officer, stored_usccs, verify_chain};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres_database_write_concurrently_into_one_gap_free_chain() {
    let Some(test_db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let config = test_config(&[("QILU__DATABASE__URL", test_db.url.clone())]);
    // Both start at once: their migrations wait for each other on the advisory lock.
    let (a, b) = tokio::join!(Replica::start(&config), Replica::start(&config));
    let bearer = officer(&config.auth);
    let db = inspect(&test_db.url).await;
    let events_before = audit_facts(&db).await.0.len();

    let started = Instant::now();
    let load = Load::start(
        &[a.channel.clone(), b.channel.clone()],
        &bearer,
        16,
        Arc::new(AtomicU32::new(0)),
        Duration::from_millis(20),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let outcomes = load.finish().await;
    let elapsed = started.elapsed();

    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.code != Code::Ok)
        .take(10)
        .map(|o| format!("{} {:?} {} {}", o.uscc, o.code, o.reason, o.message))
        .collect();
    assert!(failed.is_empty(), "writes failed on a replica: {failed:#?}");
    let per_replica = [0, 1].map(|r| outcomes.iter().filter(|o| o.worker % 2 == r).count());
    assert!(
        per_replica.iter().all(|n| *n > 0),
        "each replica acknowledged writes: {per_replica:?}"
    );

    let stored = stored_usccs(&db).await;
    let acknowledged: BTreeSet<String> = outcomes.iter().map(|o| o.uscc.clone()).collect();
    assert_eq!(stored, acknowledged);
    let (sequences, repeated) = audit_facts(&db).await;
    assert!(
        repeated.is_empty(),
        "request ids recorded twice: {repeated:?}"
    );
    assert_eq!(sequences.len(), events_before + outcomes.len());
    assert!(
        sequences.iter().zip(1..).all(|(s, n)| *s == n),
        "audit sequences have gaps or repeats"
    );
    for replica in [&a, &b] {
        let verdict = verify_chain(&replica.channel, &bearer).await;
        assert!(verdict.intact, "audit chain broken: {verdict:?}");
        assert_eq!(verdict.events_checked as usize, sequences.len());
    }
    println!(
        "replicas: {} writes in {} ms ({:.0}/s), replica A {} and replica B {}; audit sequences 1..={} gap-free, chain intact on both",
        outcomes.len(),
        elapsed.as_millis(),
        outcomes.len() as f64 / elapsed.as_secs_f64(),
        per_replica[0],
        per_replica[1],
        sequences.len()
    );
    db.close().await.unwrap();
    a.stop().await;
    b.stop().await;
}
