//! Backup and restore (docs/operations.md, "Backup and restore"): a dump taken of the running
//! suite, restored into fresh databases, serves again as it was at the dump — every audit chain
//! verifies, the change feed resumes at a cursor handed out before the dump, and a retry of a write
//! made before the dump replays its first answer instead of writing twice. Writes made after the
//! dump are not in it (that is what point-in-time recovery is for).
//!
//! PostgreSQL: `pg_dump --format=custom` of each service's database, `pg_restore --no-owner`
//! into a new one. SQLite: `VACUUM INTO` (a consistent copy of a live database, as any SQLite
//! client can take it), the copy becoming the service's file.

use std::path::Path;
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
use qilu_proto::review as vpb;
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use qilu_suite::{Options, PerService, Running, Service};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tonic::transport::Channel;

// The request ids of the writes whose retries must replay after the restore.
const ENTERPRISE_1: &str = "0192f0c2-0000-7000-8000-000000000001";
const ENTERPRISE_2: &str = "0192f0c2-0000-7000-8000-000000000002";
const ENTERPRISE_3: &str = "0192f0c2-0000-7000-8000-000000000003";
const EXPERT: &str = "0192f0c2-0000-7000-8000-000000000004";
const PROGRAM: &str = "0192f0c2-0000-7000-8000-000000000005";

/// Valid GB 32100 codes (the tests' own oracle).
fn code(n: u32) -> String {
    qilu_common::testing::uscc::uscc_for(n)
}

struct SuiteUnderTest {
    running: Running,
    channel: Channel,
    config: Config,
}

async fn start(dbs: &PerService<TestDb>) -> SuiteUnderTest {
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
    let running = qilu_suite::start(&config, listener, &options)
        .await
        .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let config = running.config().clone();
    SuiteUnderTest {
        running,
        channel,
        config,
    }
}

impl SuiteUnderTest {
    fn request<T>(&self, role: Role, message: T) -> tonic::Request<T> {
        let token = mint_hs256(
            &self.config.auth,
            &TokenRequest {
                subject: format!("backup-{role}"),
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

    fn registry(&self) -> EnterpriseRegistryServiceClient<Channel> {
        EnterpriseRegistryServiceClient::new(self.channel.clone())
    }

    async fn create_enterprise(&self, n: u32, request_id: &str) -> rpb::Enterprise {
        self.registry()
            .create_enterprise(self.request(
                Role::Officer,
                rpb::CreateEnterpriseRequest {
                    enterprise: Some(rpb::Enterprise {
                        uscc: code(n),
                        display_name: format!("山东绿色企业{n}有限公司"),
                        established_date: "2016-03-01".into(),
                        ..Default::default()
                    }),
                    request_id: request_id.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn create_expert(&self, request_id: &str) -> vpb::Expert {
        AchievementReviewServiceClient::new(self.channel.clone())
            .create_expert(self.request(
                Role::Admin,
                vpb::CreateExpertRequest {
                    expert_id: "zhang-wei".into(),
                    expert: Some(vpb::Expert {
                        display_name: "张伟".into(),
                        industry_fields: vec![
                            qilu_proto::common::IndustryField::Biomedicine as i32,
                        ],
                        organization: "山东大学".into(),
                        load_limit: 5,
                        ..Default::default()
                    }),
                    request_id: request_id.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn create_program(&self, request_id: &str) -> apb::Program {
        AwardAllocationServiceClient::new(self.channel.clone())
            .create_program(self.request(
                Role::Admin,
                apb::CreateProgramRequest {
                    program_id: "green-2026".into(),
                    program: Some(apb::Program {
                        display_name: "绿色低碳项目 2026".into(),
                        kind: apb::ProgramKind::Project as i32,
                        year: 2026,
                        budget_fen: 1_000_000,
                        per_project_cap_fen: 600_000,
                        score_threshold_millipoints: 70_000,
                        ..Default::default()
                    }),
                    request_id: request_id.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn changes_after(&self, cursor: &str) -> rpb::ListChangesResponse {
        self.registry()
            .list_changes(self.request(
                Role::Officer,
                rpb::ListChangesRequest {
                    after_cursor: cursor.into(),
                    page_size: 100,
                    filter: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Each service's chain: intact, and how many events it checked.
    async fn chains(&self) -> [i64; 3] {
        let verify = VerifyAuditChainRequest::default();
        let registry = self
            .registry()
            .verify_audit_chain(self.request(Role::Auditor, verify.clone()))
            .await
            .unwrap()
            .into_inner();
        let review = AchievementReviewServiceClient::new(self.channel.clone())
            .verify_audit_chain(self.request(Role::Auditor, verify.clone()))
            .await
            .unwrap()
            .into_inner();
        let awards = AwardAllocationServiceClient::new(self.channel.clone())
            .verify_audit_chain(self.request(Role::Auditor, verify))
            .await
            .unwrap()
            .into_inner();
        for r in [&registry, &review, &awards] {
            assert!(r.intact, "chain broken after restore: {r:?}");
        }
        [
            registry.events_checked,
            review.events_checked,
            awards.events_checked,
        ]
    }
}

/// Takes a consistent copy of `url`'s database while the suite serves from it.
async fn dump(backend: Backend, url: &str, into: &Path) {
    match backend {
        Backend::Postgres => {
            let out = Command::new("pg_dump")
                .args(["--format=custom", "--no-owner", "--dbname", url, "--file"])
                .arg(into)
                .output()
                .expect("pg_dump is installed (PostgreSQL client tools)");
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Backend::Sqlite => {
            let db = Database::connect(url).await.unwrap();
            db.execute_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("VACUUM INTO '{}'", into.display()),
            ))
            .await
            .unwrap();
            db.close().await.unwrap();
        }
    }
}

/// Restores a copy taken by [`dump`] into the fresh database `url`.
fn restore(backend: Backend, from: &Path, url: &str) {
    match backend {
        Backend::Postgres => {
            let out = Command::new("pg_restore")
                .args(["--no-owner", "--exit-on-error", "--dbname", url])
                .arg(from)
                .output()
                .expect("pg_restore is installed (PostgreSQL client tools)");
            assert!(
                out.status.success(),
                "pg_restore: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap();
            std::fs::copy(from, path).unwrap();
        }
    }
}

async fn databases(backend: Backend) -> Option<PerService<TestDb>> {
    Some(PerService {
        registry: TestDb::new(backend).await?,
        review: TestDb::new(backend).await?,
        awards: TestDb::new(backend).await?,
    })
}

async fn a_restored_dump_verifies_resumes_its_feed_and_replays_retries(backend: Backend) {
    let Some(live) = databases(backend).await else {
        return;
    };
    let suite = start(&live).await;

    // Before the dump: two enterprises, an expert, a program; a follower reads the feed once.
    let first = suite.create_enterprise(1, ENTERPRISE_1).await;
    let feed = suite.changes_after("").await;
    assert_eq!(feed.changes.len(), 1);
    let cursor = feed.next_cursor.clone();
    let second = suite.create_enterprise(2, ENTERPRISE_2).await;
    let expert = suite.create_expert(EXPERT).await;
    let program = suite.create_program(PROGRAM).await;
    let at_dump = suite.chains().await;
    assert_eq!(at_dump, [2, 1, 1]);

    // The dump, taken while the suite serves.
    let dir = tempfile::tempdir().unwrap();
    for service in Service::ALL {
        let file = dir.path().join(format!("{}.dump", service.name()));
        dump(backend, &live.get(service).url, &file).await;
    }
    // After the dump: not in it. A follower that read it holds a cursor past the dump.
    suite.create_enterprise(3, ENTERPRISE_3).await;
    let late_cursor = suite.changes_after("").await.next_cursor;
    suite.running.stop().await.unwrap();

    // Restored into fresh databases, the suite starts on them.
    let restored = databases(backend).await.unwrap();
    for service in Service::ALL {
        let file = dir.path().join(format!("{}.dump", service.name()));
        restore(backend, &file, &restored.get(service).url);
    }
    let suite = start(&restored).await;

    // Every chain verifies, with exactly the events of the dump.
    assert_eq!(suite.chains().await, at_dump);

    // The follower resumes at its cursor: the second enterprise, and nothing after the dump.
    let resumed = suite.changes_after(&cursor).await;
    let resources: Vec<&str> = resumed
        .changes
        .iter()
        .map(|c| c.resource.as_str())
        .collect();
    assert_eq!(resources, [format!("enterprises/{}", code(2))]);
    assert!(resumed.caught_up);
    // A cursor from after the dump names a change the restored registry never made: refused,
    // so that follower knows to re-read (docs/operations.md).
    let refused = suite
        .registry()
        .list_changes(suite.request(
            Role::Officer,
            rpb::ListChangesRequest {
                after_cursor: late_cursor,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("after the newest change"),
        "{refused:?}"
    );

    // Retries of writes made before the dump replay their first answers.
    assert_eq!(suite.create_enterprise(1, ENTERPRISE_1).await, first);
    assert_eq!(suite.create_enterprise(2, ENTERPRISE_2).await, second);
    assert_eq!(suite.create_expert(EXPERT).await, expert);
    assert_eq!(suite.create_program(PROGRAM).await, program);
    assert_eq!(suite.chains().await, at_dump, "a replay writes nothing");

    // The write made after the dump is gone, and can be made again.
    let third = suite.create_enterprise(3, ENTERPRISE_3).await;
    assert_eq!(third.uscc, code(3));
    assert_eq!(suite.chains().await, [3, 1, 1]);
    suite.running.stop().await.unwrap();
}

on_both_backends!(a_restored_dump_verifies_resumes_its_feed_and_replays_retries);
