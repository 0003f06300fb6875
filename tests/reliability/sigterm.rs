//! SIGTERM under load, to the real registry process (its own `main.rs`, built as this package's
//! `qilu-registry-under-test`): calls in flight complete, calls that had not started get
//! UNAVAILABLE, every acknowledged write is stored and no failed call left a write behind, and
//! the process exits 0 within its drain deadline.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestDb, test_config};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::load::{Load, inspect, officer, stored_usccs, unexpected};

const DRAIN_SECONDS: u64 = 5;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn sigterm_under_load_drains_in_flight_calls_and_exits_zero(backend: Backend) {
    let Some(test_db) = TestDb::new(backend).await else {
        return;
    };
    // The process loads the built-in defaults (same HS256 development secret as test_config).
    let config = test_config(&[("QILU__DATABASE__URL", test_db.url.clone())]);
    let bearer = officer(&config.auth);
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("registry.log");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qilu-registry-under-test"))
        .arg("--config-dir")
        .arg(dir.path())
        .current_dir(dir.path())
        .env_remove("QILU_ENV")
        .env("QILU__DATABASE__URL", &test_db.url)
        .env("QILU__SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("QILU__SERVER__DRAIN_SECONDS", DRAIN_SECONDS.to_string())
        .env("QILU__TELEMETRY__FILTER", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1));
    let give_up = Instant::now() + Duration::from_secs(60);
    let channel = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("registry exited before serving ({status}):\n{}", log());
        }
        if let Ok(channel) = endpoint.connect().await {
            let serving = HealthClient::new(channel.clone())
                .check(HealthCheckRequest {
                    service: qilu_proto::service_names::REGISTRY.into(),
                })
                .await
                .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32);
            if serving {
                break channel;
            }
        }
        assert!(
            Instant::now() < give_up,
            "registry never SERVING:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let load = Load::start(
        &[channel],
        &bearer,
        16,
        Arc::new(AtomicU32::new(0)),
        Duration::from_millis(20),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let term_at = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let limit = Duration::from_secs(DRAIN_SECONDS + 5);
    let (status, exited_at) = tokio::task::spawn_blocking(move || {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, Instant::now());
            }
            if term_at.elapsed() > limit {
                let _ = child.kill();
                panic!("the registry did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
    .await
    .unwrap();
    let outcomes = load.finish().await;
    let exit_took = exited_at - term_at;
    assert!(status.success(), "exit status {status}:\n{}", log());
    assert!(
        exit_took <= Duration::from_secs(DRAIN_SECONDS) + Duration::from_secs(1),
        "exit {exit_took:?} after SIGTERM, past the {DRAIN_SECONDS} s drain deadline"
    );

    // A call the client had already queued on the connection when the server's GOAWAY arrived
    // was never processed; hyper reports it as canceled, which tonic turns into CANCELLED.
    // Such calls are "not started" like UNAVAILABLE ones (checked below: nothing of theirs is
    // stored), so a client may retry them.
    let not_started: Vec<_> = outcomes
        .iter()
        .filter(|o| o.code != Code::Cancelled)
        .cloned()
        .collect();
    let odd = unexpected(&not_started);
    assert!(
        odd.is_empty(),
        "calls failed other than UNAVAILABLE: {odd:#?}"
    );
    let cancelled = outcomes.len() - not_started.len();
    let acknowledged: BTreeSet<String> = outcomes
        .iter()
        .filter(|o| o.code == Code::Ok)
        .map(|o| o.uscc.clone())
        .collect();
    let in_flight = outcomes
        .iter()
        .filter(|o| o.code == Code::Ok && o.started < term_at && o.ended > term_at)
        .count();
    let unavailable = outcomes
        .iter()
        .filter(|o| o.code == Code::Unavailable)
        .count();
    let db = inspect(&test_db.url).await;
    let stored = stored_usccs(&db).await;
    db.close().await.unwrap();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let cut: Vec<&String> = stored.difference(&acknowledged).collect();
    assert!(
        cut.is_empty(),
        "writes committed but answered with an error (calls cut off mid-flight): {cut:?}"
    );
    assert!(in_flight > 0, "no call was in flight at SIGTERM");
    println!(
        "sigterm ({backend:?}): {} acknowledged writes (all stored), {in_flight} in flight at SIGTERM completed, {unavailable} UNAVAILABLE and {cancelled} CANCELLED (not started) after; exit 0 {} ms after SIGTERM (drain deadline {DRAIN_SECONDS} s)",
        acknowledged.len(),
        exit_took.as_millis()
    );
}

on_both_backends!(sigterm_under_load_drains_in_flight_calls_and_exits_zero);
