//! PostgreSQL stopped (fast, then immediate) and started again under write load, through the
//! real registry on a private cluster.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use qilu_common::testing::test_config;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::load::{
    Load, Outcome, Replica, audit_facts, create_once, inspect, officer, stored_usccs, unexpected,
    verify_chain,
};
use crate::pg::PrivatePostgres;

const SERVICE: &str = qilu_proto::service_names::REGISTRY;
/// How long each outage lasts.
const OUTAGE: Duration = Duration::from_secs(3);
/// The load runs this long between outages.
const STEADY: Duration = Duration::from_secs(3);

/// Health statuses of the registry (`SERVICE`) and of the server (`""`) as they change.
struct HealthWatch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(Instant, &'static str, i32)>>,
}

impl HealthWatch {
    fn start(channel: Channel) -> HealthWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut client = HealthClient::new(channel);
            let mut log = Vec::new();
            let mut last = [-1, -1];
            while !flag.load(Ordering::Relaxed) {
                for (i, name) in [SERVICE, ""].into_iter().enumerate() {
                    let check = client.check(HealthCheckRequest {
                        service: name.to_string(),
                    });
                    let status = match tokio::time::timeout(Duration::from_secs(1), check).await {
                        Ok(Ok(r)) => r.into_inner().status,
                        _ => -1,
                    };
                    if status != last[i] {
                        log.push((Instant::now(), name, status));
                        last[i] = status;
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            log
        });
        HealthWatch { stop, task }
    }

    async fn finish(self) -> Vec<(Instant, &'static str, i32)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// One outage: when the stop began, when PostgreSQL was gone, when it accepted connections.
struct Window {
    mode: &'static str,
    stop_at: Instant,
    down_at: Instant,
    ready_at: Instant,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_and_restarted_under_write_load_loses_no_acknowledged_write() {
    let Some(pg) = blocking(PrivatePostgres::start).await else {
        return;
    };
    let pg = Arc::new(pg);
    let config = test_config(&[("QILU__DATABASE__URL", pg.url())]);
    let acquire = Duration::from_millis(config.database.acquire_timeout_ms);
    // The fail-fast bound: the pool's acquire timeout, plus a second for a loaded machine.
    let fail_fast = acquire + Duration::from_secs(1);
    let replica = Replica::start(&config).await;
    let bearer = officer(&config.auth);
    let db = inspect(&pg.url()).await;
    let events_before = audit_facts(&db).await.0.len();
    db.close().await.unwrap();

    let health = HealthWatch::start(replica.channel.clone());
    let load = Load::start(
        std::slice::from_ref(&replica.channel),
        &bearer,
        12,
        Arc::new(AtomicU32::new(0)),
        Duration::from_millis(20),
    );
    tokio::time::sleep(STEADY).await;
    let mut windows = Vec::new();
    for mode in ["fast", "immediate"] {
        let stop_at = Instant::now();
        let p = pg.clone();
        blocking(move || p.stop_server(mode)).await;
        let down_at = Instant::now();
        tokio::time::sleep(OUTAGE).await;
        let p = pg.clone();
        blocking(move || p.start_server(false)).await;
        let ready_at = pg.wait_accepting(Duration::from_secs(30)).await;
        windows.push(Window {
            mode,
            stop_at,
            down_at,
            ready_at,
        });
        tokio::time::sleep(STEADY).await;
    }
    let outcomes = load.finish().await;
    let health_log = health.finish().await;

    // Only OK and UNAVAILABLE, and UNAVAILABLE says the database is down.
    let odd = unexpected(&outcomes);
    assert!(
        odd.is_empty(),
        "calls failed other than UNAVAILABLE: {odd:#?}"
    );
    let unavailable: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.code == Code::Unavailable)
        .collect();
    let reasons: BTreeSet<&str> = unavailable.iter().map(|o| o.reason.as_str()).collect();
    assert!(
        reasons.iter().all(|r| *r == "DATABASE_UNAVAILABLE"),
        "UNAVAILABLE reasons: {reasons:?}"
    );
    // No call hung past the fail-fast bound.
    let slowest = outcomes.iter().map(Outcome::took).max().unwrap();
    let slowest_failure = unavailable
        .iter()
        .map(|o| o.took())
        .max()
        .unwrap_or_default();
    assert!(
        slowest <= fail_fast,
        "a call took {slowest:?}, past the fail-fast bound {fail_fast:?}"
    );

    println!(
        "outage: {} calls, {} acknowledged, {} UNAVAILABLE; slowest call {} ms, slowest UNAVAILABLE {} ms (acquire timeout {} ms)",
        outcomes.len(),
        outcomes.len() - unavailable.len(),
        unavailable.len(),
        ms(slowest),
        ms(slowest_failure),
        ms(acquire)
    );
    for w in &windows {
        let first_ok = outcomes
            .iter()
            .filter(|o| o.code == Code::Ok && o.ended > w.down_at)
            .map(|o| o.ended)
            .min()
            .expect("a write succeeded after the restart");
        let recovery = first_ok.saturating_duration_since(w.ready_at);
        let failed = unavailable
            .iter()
            .filter(|o| o.ended >= w.stop_at && o.started <= first_ok)
            .count();
        let not_serving = |name: &str| {
            health_log
                .iter()
                .find(|(at, n, s)| {
                    *n == name && *at > w.stop_at && *s == ServingStatus::NotServing as i32
                })
                .map(|(at, _, _)| *at)
        };
        let serving_again = |name: &str| {
            health_log
                .iter()
                .find(|(at, n, s)| {
                    *n == name && *at > w.ready_at && *s == ServingStatus::Serving as i32
                })
                .map(|(at, _, _)| *at)
        };
        for name in [SERVICE, ""] {
            let down = not_serving(name)
                .unwrap_or_else(|| panic!("{} outage: health {name:?} never NOT_SERVING", w.mode));
            assert!(
                down < w.ready_at,
                "{} outage: health {name:?} turned NOT_SERVING only after the restart",
                w.mode
            );
            serving_again(name).unwrap_or_else(|| {
                panic!(
                    "{} outage: health {name:?} not SERVING after the restart",
                    w.mode
                )
            });
        }
        let detected = not_serving(SERVICE).unwrap() - w.stop_at;
        let healthy = serving_again(SERVICE).unwrap() - w.ready_at;
        println!(
            "outage ({}): stop took {} ms, down {} ms; {failed} calls UNAVAILABLE; recovery {} ms after PostgreSQL accepted connections; health NOT_SERVING {} ms after the stop began, SERVING {} ms after the restart",
            w.mode,
            ms(w.down_at - w.stop_at),
            ms(w.ready_at - w.down_at),
            ms(recovery),
            ms(detected),
            ms(healthy)
        );
        assert!(
            recovery < Duration::from_secs(1),
            "{} outage: the first write succeeded {recovery:?} after PostgreSQL accepted connections",
            w.mode
        );
    }

    // Nothing acknowledged was lost.
    let db = inspect(&pg.url()).await;
    let stored = stored_usccs(&db).await;
    let acknowledged: BTreeSet<String> = outcomes
        .iter()
        .filter(|o| o.code == Code::Ok)
        .map(|o| o.uscc.clone())
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let committed_unacknowledged = unavailable
        .iter()
        .filter(|o| stored.contains(&o.uscc))
        .count();

    // Every failed call retried with its request id succeeds, once.
    let mut client = EnterpriseRegistryServiceClient::new(replica.channel.clone());
    for failed in &unavailable {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let retry = create_once(&mut client, &bearer, &failed.uscc, &failed.request_id).await;
            if retry.code == Code::Ok {
                break;
            }
            assert!(
                retry.code == Code::Unavailable && attempts < 20,
                "retry of {} with its request id: {:?} {} {}",
                failed.uscc,
                retry.code,
                retry.reason,
                retry.message
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let stored = stored_usccs(&db).await;
    let expected: BTreeSet<String> = outcomes.iter().map(|o| o.uscc.clone()).collect();
    assert_eq!(
        stored, expected,
        "after the retries every call's enterprise exists"
    );
    let (sequences, repeated) = audit_facts(&db).await;
    assert!(
        repeated.is_empty(),
        "request ids recorded twice: {repeated:?}"
    );
    assert_eq!(
        sequences.len(),
        events_before + stored.len(),
        "one audit event per enterprise"
    );
    assert!(
        sequences.iter().zip(1..).all(|(s, n)| *s == n),
        "audit sequences have gaps"
    );
    let verdict = verify_chain(&replica.channel, &bearer).await;
    assert!(verdict.intact, "audit chain broken: {verdict:?}");
    assert_eq!(verdict.events_checked as usize, sequences.len());
    println!(
        "outage: acknowledged {} writes, lost 0; {} UNAVAILABLE calls had committed (replayed on retry), {} retried writes, no duplicates; audit chain of {} events intact",
        acknowledged.len(),
        committed_unacknowledged,
        unavailable.len(),
        verdict.events_checked
    );
    db.close().await.unwrap();
    replica.stop().await;
}
