//! The README's run command, as a newcomer runs it: `qilu dev` starts all three services on one
//! port over fresh SQLite files, health reports each SERVING, reflection lists them, a minted
//! token works, and SIGTERM stops the process cleanly (exit 0).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qilu_proto::registry::ValidateUsccRequest;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::{QILU, free_port};

struct DevServer {
    child: Child,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET, enough for the metrics endpoint.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

async fn connect(addr: &str, deadline: Duration) -> Channel {
    let start = Instant::now();
    loop {
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        {
            let mut health = HealthClient::new(channel.clone());
            if let Ok(r) = health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                && r.into_inner().status == ServingStatus::Serving as i32
            {
                return channel;
            }
        }
        assert!(
            start.elapsed() < deadline,
            "qilu dev did not come up on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn qilu_dev_serves_all_three_services_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(QILU)
        .args(["dev", "--addr", &addr, "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config-dir")
        .arg(dir.path().join("no-config"))
        .env("QILU__TELEMETRY__FILTER", "warn")
        .env("QILU__METRICS__ADDR", &metrics_addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut server = DevServer { child };
    let channel = connect(&addr, Duration::from_secs(60)).await;

    // Health: every service SERVING.
    let mut health = HealthClient::new(channel.clone());
    for service in [
        "qilu.registry.v1.EnterpriseRegistryService",
        "qilu.review.v1.AchievementReviewService",
        "qilu.awards.v1.AwardAllocationService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }

    // Reflection lists them, without a token.
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "qilu.registry.v1.EnterpriseRegistryService",
        "qilu.review.v1.AchievementReviewService",
        "qilu.awards.v1.AwardAllocationService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }

    // A token from `qilu token` works against the running server.
    let out = Command::new(QILU)
        .args(["token", "--role", "officer", "--config-dir"])
        .arg(dir.path().join("no-config"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut registry = EnterpriseRegistryServiceClient::new(channel.clone());
    let mut request = tonic::Request::new(ValidateUsccRequest {
        uscc: "91350100M000100Y43".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let verdict = registry.validate_uscc(request).await.unwrap().into_inner();
    assert_eq!(
        verdict.verdict,
        qilu_proto::registry::UsccVerdict::Valid as i32
    );

    // Prometheus metrics count the calls per method and status code.
    let metrics = http_get(&metrics_addr, "/metrics");
    assert!(
        metrics.contains("qilu_grpc_server_requests_total")
            && metrics.contains("ValidateUscc")
            && metrics.contains("qilu_grpc_server_request_duration_seconds")
            // A histogram with buckets (aggregatable across replicas), not a summary.
            && metrics.contains("qilu_grpc_server_request_duration_seconds_bucket{")
            && metrics.contains("le=\"0.005\""),
        "{metrics}"
    );
    // Every metric says what it is, and each service's pool is sampled under its own name.
    assert!(
        metrics.contains("# HELP qilu_grpc_server_requests_total ")
            && metrics.contains("# HELP qilu_db_client_connections "),
        "{metrics}"
    );
    for service in ["registry", "review", "awards"] {
        assert!(
            metrics.contains(&format!(
                "qilu_db_client_connections_max{{pool_name=\"{service}\"}}"
            )) && metrics.contains(&format!(
                "qilu_db_client_connection_wait_time_seconds_bucket{{pool_name=\"{service}\",le=\"0.0005\"}}"
            )),
            "{service}: {metrics}"
        );
    }

    // The SQLite files are where the README says.
    for service in ["registry", "review", "awards"] {
        assert!(
            dir.path()
                .join("data")
                .join(format!("{service}.db"))
                .exists()
        );
    }

    // SIGTERM: clean exit.
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn an_invalid_configuration_fails_fast_naming_the_key() {
    let out = Command::new(QILU)
        .args(["print-config"])
        .env("QILU__SERVER__ADDR", "nowhere")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("addr"), "{stderr}");
}

#[test]
fn print_config_redacts_secrets() {
    let out = Command::new(QILU)
        .args(["print-config"])
        .env(
            "QILU__DATABASE__URL",
            "postgres://qilu:topsecret@db/qilu_{service}",
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("topsecret"), "{stdout}");
    assert!(!stdout.contains("qilu-development-secret"), "{stdout}");
    assert!(stdout.contains("<redacted>"));
}
