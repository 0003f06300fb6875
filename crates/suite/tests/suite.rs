//! The composition root as its callers use it: the suite on one port, the suite on a port per
//! service with peers wired to each other, and the migrate one-shot — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestDb, test_config};
use qilu_proto::service_names::{AWARDS, REGISTRY, REVIEW};
use qilu_suite::{Clocks, Options, PerService, Service};
use tokio::net::TcpListener;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The gRPC health status of `service` at `addr` (`Err` carries the status code).
async fn health(addr: SocketAddr, service: &str) -> Result<i32, tonic::Code> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .map(|r| r.into_inner().status)
        .map_err(|s| s.code())
}

async fn fresh(backend: Backend) -> Option<(PerService<TestDb>, Options)> {
    let dbs = PerService {
        registry: TestDb::new(backend).await?,
        review: TestDb::new(backend).await?,
        awards: TestDb::new(backend).await?,
    };
    let options = Options {
        database_urls: PerService {
            registry: Some(dbs.registry.url.clone()),
            review: Some(dbs.review.url.clone()),
            awards: Some(dbs.awards.url.clone()),
        },
        clocks: Clocks::default(),
    };
    Some((dbs, options))
}

async fn one_listener_serves_all_three_with_peers_pointing_at_itself(backend: Backend) {
    let Some((_dbs, options)) = fresh(backend).await else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let running = qilu_suite::start(&test_config(&[]), listener, &options)
        .await
        .unwrap();
    assert_eq!(running.addr(), addr);
    assert_eq!(running.config().server.addr, addr);
    let here = format!("http://{addr}");
    let peers = &running.config().peers;
    assert_eq!(
        (&peers.registry, &peers.review, &peers.awards),
        (&here, &here, &here)
    );
    for service in [REGISTRY, REVIEW, AWARDS, ""] {
        assert_eq!(
            health(addr, service).await,
            Ok(ServingStatus::Serving as i32),
            "{service:?}"
        );
    }
    running.stop().await.unwrap();
    assert!(
        TcpListener::bind(addr).await.is_ok(),
        "the port is free once stopped"
    );
}

async fn apart_each_service_has_its_port_and_stops_alone(backend: Backend) {
    let Some((_dbs, options)) = fresh(backend).await else {
        return;
    };
    let listeners = PerService {
        registry: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        review: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        awards: TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let running = qilu_suite::start_apart(&test_config(&[]), listeners, &options)
        .await
        .unwrap();
    let addrs = PerService {
        registry: running.registry.addr(),
        review: running.review.addr(),
        awards: running.awards.addr(),
    };
    for (service, name) in [
        (Service::Registry, REGISTRY),
        (Service::Review, REVIEW),
        (Service::Awards, AWARDS),
    ] {
        let config = running.get(service).config();
        assert_eq!(config.server.addr, *addrs.get(service));
        assert_eq!(config.peers.registry, format!("http://{}", addrs.registry));
        assert_eq!(config.peers.review, format!("http://{}", addrs.review));
        assert_eq!(config.peers.awards, format!("http://{}", addrs.awards));
        assert_eq!(
            Some(&config.database.url),
            options.database_urls.get(service).as_ref(),
            "{service:?} runs over its own database"
        );
        assert_eq!(
            health(*addrs.get(service), name).await,
            Ok(ServingStatus::Serving as i32)
        );
    }
    assert_eq!(
        health(addrs.registry, AWARDS).await,
        Err(tonic::Code::NotFound),
        "the registry's server does not mount the awards service"
    );
    running.review.stop().await.unwrap();
    assert_eq!(
        health(addrs.registry, REGISTRY).await,
        Ok(ServingStatus::Serving as i32),
        "stopping the review service leaves the registry serving"
    );
    running.awards.stop().await.unwrap();
    running.registry.stop().await.unwrap();
}

on_both_backends!(
    one_listener_serves_all_three_with_peers_pointing_at_itself,
    apart_each_service_has_its_port_and_stops_alone,
);

#[tokio::test]
async fn migrate_creates_each_services_database_from_the_url_template() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/{{service}}.db", dir.path().display());
    let config = test_config(&[("QILU__DATABASE__URL", url)]);
    for service in [Service::Review, Service::Awards] {
        qilu_suite::migrate(&config, service).await.unwrap();
    }
    assert!(!dir.path().join("registry.db").exists());
    assert!(dir.path().join("review.db").exists());
    assert!(dir.path().join("awards.db").exists());
    // Applying them again is a no-op, as the one-shot job relies on.
    for service in Service::ALL {
        qilu_suite::migrate(&config, service).await.unwrap();
    }
    assert!(dir.path().join("registry.db").exists());
}
