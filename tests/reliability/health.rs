//! gRPC health follows each service's database: a server of two services (as `qilu dev` runs
//! them) whose review database cannot be reached reports review NOT_SERVING, the registry
//! SERVING, and the server as a whole (`""`) NOT_SERVING.

use std::time::{Duration, Instant};

use qilu_common::app::{ServiceApp, open_database};
use qilu_common::server::serve;
use qilu_common::testing::{Backend, TestDb, test_config};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn closed_port() -> u16 {
    // Bound and released: nothing listens there for the length of the test.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_is_not_serving_for_the_service_whose_database_is_unreachable() {
    let registry_db = TestDb::new(Backend::Sqlite).await.unwrap();
    let review_db = TestDb::new(Backend::Sqlite).await.unwrap();
    let registry_config = test_config(&[("QILU__DATABASE__URL", registry_db.url.clone())]);
    let review_config = test_config(&[("QILU__DATABASE__URL", review_db.url.clone())]);
    let registry = qilu_registry::Registry::build(
        &registry_config,
        open_database::<qilu_registry::Registry>(&registry_config, true)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    // The review service runs over its database, but its health probe is pointed at a
    // PostgreSQL that is not there: what it sees when its database goes away.
    let review_conn = open_database::<qilu_review::Review>(&review_config, true)
        .await
        .unwrap();
    let gone = test_config(&[(
        "QILU__DATABASE__URL",
        format!("postgres://postgres@127.0.0.1:{}/gone", closed_port()),
    )]);
    let review = qilu_review::service(&gone, review_conn).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve(listener, vec![registry, review], &registry_config, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let mut status = async |service: &str| {
        health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
    };
    let give_up = Instant::now() + Duration::from_secs(10);
    while status(qilu_proto::service_names::REVIEW).await != ServingStatus::NotServing as i32 {
        assert!(Instant::now() < give_up, "review never NOT_SERVING");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status("").await, ServingStatus::NotServing as i32);
    assert_eq!(
        status(qilu_proto::service_names::REGISTRY).await,
        ServingStatus::Serving as i32
    );
    let _ = stop.send(());
    server.await.unwrap();
}
