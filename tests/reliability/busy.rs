//! A SQLite write lock held past `database.busy_timeout_ms` by another connection (an operator's
//! shell, a backup) is not a lost database: the call is UNAVAILABLE with reason `DATABASE_BUSY`
//! (nothing was written, so the same request may be retried), and health stays SERVING.

use std::time::{Duration, Instant};

use qilu_common::testing::{Backend, TestServer};
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::load::{create_once, officer, uscc};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_lock_held_past_the_busy_timeout_is_database_busy_and_health_stays_serving() {
    let server = TestServer::start_with::<qilu_registry::Registry>(
        Backend::Sqlite,
        &[("QILU__DATABASE__BUSY_TIMEOUT_MS", "200".into())],
    )
    .await
    .unwrap();
    let bearer = officer(&server.config.auth);
    let mut client = EnterpriseRegistryServiceClient::new(server.channel.clone());
    let request_id = uuid::Uuid::new_v4().to_string();

    let holder = server
        .db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .unwrap();
    let blocked = create_once(&mut client, &bearer, &uscc(1), &request_id).await;
    assert_eq!(blocked.code, Code::Unavailable, "{blocked:?}");
    assert_eq!(blocked.reason, "DATABASE_BUSY", "{blocked:?}");
    assert!(
        blocked.took() < Duration::from_secs(2),
        "waited {:?} with a 200 ms busy timeout",
        blocked.took()
    );
    // Give the health probe a few rounds: the database still answers reads.
    let until = Instant::now() + Duration::from_millis(1500);
    let mut health = HealthClient::new(server.channel.clone());
    while Instant::now() < until {
        for service in [qilu_proto::service_names::REGISTRY, ""] {
            let status = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            assert_eq!(
                status,
                ServingStatus::Serving as i32,
                "health of {service:?} while a lock is held"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    holder.rollback().await.unwrap();

    let retried = create_once(&mut client, &bearer, &uscc(1), &request_id).await;
    assert_eq!(retried.code, Code::Ok, "{retried:?}");
    server.stop().await;
}
