//! Upgrades from a release (docs/operations.md, "Upgrades"): databases made by the `v0.1.0`
//! binaries — `qilu dev --demo`'s programme year, dumped as SQL in `tests/fixtures/v0.1.0/`
//! (`*.sqlite.sql.gz` from SQLite, `*.postgres.sql.gz` by `pg_dump --format=plain`) — are
//! loaded into fresh databases; the current binaries start on them, run their migrations forward,
//! and keep everything the release promised: every audit chain verifies, the release's resources
//! read back, and new writes extend the chains.
//!
//! When a release adds migrations, this is the test that shows they apply to real data of the
//! previous one. A new release adds its own fixture beside this one (docs/releasing.md).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::config::Config;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestDb, test_config};
use qilu_proto::awards as apb;
use qilu_proto::awards::award_allocation_service_client::AwardAllocationServiceClient;
use qilu_proto::common::VerifyAuditChainRequest;
use qilu_proto::registry as rpb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use qilu_suite::{Options, PerService, Service};
use sea_orm::{ConnectionTrait, Database};
use tonic::transport::Channel;

/// Audit events the release's demo year wrote: registry, review, awards.
const RELEASE_EVENTS: [i64; 3] = [921, 30, 10];
/// An enterprise the release's demo imported, and its name.
const DEMO_ENTERPRISE: &str = "91371202MA3D00012N";

fn fixture(release: &str, service: Service, backend: Backend) -> PathBuf {
    let kind = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(release)
        .join(format!("{}.{kind}.sql.gz", service.name()))
}

fn unzip(path: &Path) -> String {
    let mut sql = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut sql)
        .unwrap();
    sql
}

/// Loads a release's SQL dump into the fresh database at `url`.
async fn load(backend: Backend, dump: &Path, url: &str) {
    let sql = unzip(dump);
    match backend {
        Backend::Sqlite => {
            let db = Database::connect(format!("{url}?mode=rwc")).await.unwrap();
            db.execute_unprepared(&sql).await.unwrap();
            db.close().await.unwrap();
        }
        Backend::Postgres => {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("dump.sql");
            std::fs::write(&file, sql).unwrap();
            let out = Command::new("psql")
                .args([
                    "--quiet",
                    "--set",
                    "ON_ERROR_STOP=1",
                    "--dbname",
                    url,
                    "--file",
                ])
                .arg(&file)
                .output()
                .expect("psql is installed (PostgreSQL client tools)");
            assert!(
                out.status.success(),
                "psql: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn request<T>(config: &Config, role: Role, message: T) -> tonic::Request<T> {
    let token = mint_hs256(
        &config.auth,
        &TokenRequest {
            subject: format!("upgrade-{role}"),
            roles: vec![role],
            enterprise: None,
            expert: None,
            ttl_seconds: 600,
        },
    )
    .unwrap();
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn chains(channel: &Channel, config: &Config) -> [i64; 3] {
    let ask = || request(config, Role::Auditor, VerifyAuditChainRequest::default());
    let results = [
        EnterpriseRegistryServiceClient::new(channel.clone())
            .verify_audit_chain(ask())
            .await
            .unwrap()
            .into_inner(),
        AchievementReviewServiceClient::new(channel.clone())
            .verify_audit_chain(ask())
            .await
            .unwrap()
            .into_inner(),
        AwardAllocationServiceClient::new(channel.clone())
            .verify_audit_chain(ask())
            .await
            .unwrap()
            .into_inner(),
    ];
    for r in &results {
        assert!(r.intact, "a release's chain broke on upgrade: {r:?}");
    }
    results.map(|r| r.events_checked)
}

async fn the_current_binaries_run_on_v0_1_0_databases(backend: Backend) {
    let Some(registry) = TestDb::new(backend).await else {
        return;
    };
    let dbs = PerService {
        registry,
        review: TestDb::new(backend).await.unwrap(),
        awards: TestDb::new(backend).await.unwrap(),
    };
    for service in Service::ALL {
        load(
            backend,
            &fixture("v0.1.0", service, backend),
            &dbs.get(service).url,
        )
        .await;
    }

    let config = test_config(&[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = Options {
        database_urls: PerService {
            registry: Some(dbs.registry.url.clone()),
            review: Some(dbs.review.url.clone()),
            awards: Some(dbs.awards.url.clone()),
        },
        ..Options::default()
    };
    // Start-up migrates each database forward from the release's schema.
    let running = qilu_suite::start(&config, listener, &options)
        .await
        .unwrap();
    let config = running.config().clone();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();

    assert_eq!(chains(&channel, &config).await, RELEASE_EVENTS);

    // The release's resources read back.
    let mut registry = EnterpriseRegistryServiceClient::new(channel.clone());
    let enterprise = registry
        .get_enterprise(request(
            &config,
            Role::Officer,
            rpb::GetEnterpriseRequest {
                name: format!("enterprises/{DEMO_ENTERPRISE}"),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(enterprise.uscc, DEMO_ENTERPRISE);
    let feed = registry
        .list_changes(request(
            &config,
            Role::Officer,
            rpb::ListChangesRequest {
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        feed.changes.len(),
        921,
        "the feed is the release's audit log"
    );
    let allocation = AwardAllocationServiceClient::new(channel.clone())
        .get_allocation(request(
            &config,
            Role::Admin,
            apb::GetAllocationRequest {
                name: "programs/green-projects-2025/allocation".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(allocation.entries.len(), 2);
    // The release's reviews got their due date (assignment day + 30) from the migration, and
    // the overdue filter reads them.
    let mut review = AchievementReviewServiceClient::new(channel.clone());
    let reviews = review
        .list_reviews(request(
            &config,
            Role::Auditor,
            qilu_proto::review::ListReviewsRequest {
                parent: "achievements/-".into(),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert!(!reviews.is_empty());
    for r in &reviews {
        let d = r.due_date.as_bytes();
        assert!(
            d.len() == 10 && d[4] == b'-' && d[7] == b'-',
            "{}: due {:?}",
            r.name,
            r.due_date
        );
    }
    review
        .list_reviews(request(
            &config,
            Role::Auditor,
            qilu_proto::review::ListReviewsRequest {
                parent: "achievements/-".into(),
                filter: "overdue = true".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();

    // New writes extend the release's chains.
    registry
        .create_enterprise(request(
            &config,
            Role::Officer,
            rpb::CreateEnterpriseRequest {
                enterprise: Some(rpb::Enterprise {
                    uscc: qilu_common::testing::uscc::uscc_for(90_001),
                    display_name: "升级后新登记企业有限公司".into(),
                    established_date: "2020-01-01".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(chains(&channel, &config).await, [922, 30, 10]);
    running.stop().await.unwrap();
}

on_both_backends!(the_current_binaries_run_on_v0_1_0_databases);
