//! Write load through the real gRPC stack: workers calling CreateEnterprise, each call with a
//! new enterprise (a valid GB 32100 code) and a new request id, every outcome recorded with its
//! timing so the tests can say what was acknowledged, what failed how, and how long it took.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::config::AuthConfig;
use qilu_proto::registry as pb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// A client-side bound far above the fail-fast bound: a call that takes this long hung.
pub const HANG: Duration = Duration::from_secs(15);

/// A valid Jinan (3701) code, distinct for each `n` < 100,000. What is under test here is
/// availability, not the check, so the codes come from the same GB 32100 crate the registry uses.
pub fn uscc(n: u32) -> String {
    let body = format!("91370100MA3C{n:05}");
    let check = qilu_uscc::check_character(&body).unwrap();
    format!("{body}{check}")
}

/// An officer's bearer header for servers configured with `auth`.
pub fn officer(auth: &AuthConfig) -> String {
    let token = mint_hs256(
        auth,
        &TokenRequest {
            subject: "reliability-officer".into(),
            roles: vec![Role::Officer, Role::Auditor],
            enterprise: None,
            expert: None,
            ttl_seconds: 3600,
        },
    )
    .unwrap();
    format!("Bearer {token}")
}

/// One CreateEnterprise call and how it ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which worker made the call (worker `i` calls channel `i % channels`).
    pub worker: usize,
    pub uscc: String,
    pub request_id: String,
    pub started: Instant,
    pub ended: Instant,
    pub code: Code,
    /// The `ErrorInfo` reason, if the error carried one.
    pub reason: String,
    pub message: String,
}

impl Outcome {
    pub fn took(&self) -> Duration {
        self.ended - self.started
    }
}

/// The request for enterprise `uscc` (the same bytes on every retry).
pub fn create_request(uscc: &str, request_id: &str) -> pb::CreateEnterpriseRequest {
    pb::CreateEnterpriseRequest {
        enterprise: Some(pb::Enterprise {
            uscc: uscc.to_string(),
            display_name: format!("可靠性测试企业 {uscc}"),
            legal_representative: "张三".into(),
            established_date: "2010-05-04".into(),
            address: "山东省济南市历下区".into(),
            ..Default::default()
        }),
        request_id: request_id.to_string(),
    }
}

/// One call, timed; a call past [`HANG`] is recorded as DEADLINE_EXCEEDED ("hung").
pub async fn create_once(
    client: &mut EnterpriseRegistryServiceClient<Channel>,
    bearer: &str,
    uscc: &str,
    request_id: &str,
) -> Outcome {
    let mut request = tonic::Request::new(create_request(uscc, request_id));
    request
        .metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    let started = Instant::now();
    let result = tokio::time::timeout(HANG, client.create_enterprise(request)).await;
    let ended = Instant::now();
    let (code, reason, message) = match result {
        Ok(Ok(_)) => (Code::Ok, String::new(), String::new()),
        Ok(Err(status)) => (
            status.code(),
            status
                .get_error_details()
                .error_info()
                .map(|i| i.reason.clone())
                .unwrap_or_default(),
            status.message().to_string(),
        ),
        Err(_) => (
            Code::DeadlineExceeded,
            String::new(),
            format!("hung for {HANG:?}"),
        ),
    };
    Outcome {
        worker: 0,
        uscc: uscc.to_string(),
        request_id: request_id.to_string(),
        started,
        ended,
        code,
        reason,
        message,
    }
}

/// Workers creating enterprises until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Vec<Outcome>>>,
}

impl Load {
    /// `workers` concurrent callers on each of `channels` (round robin), numbering enterprises
    /// from `counter`. Each worker pauses `pause` after a failed call (as a client backing off
    /// would) so an outage is not a busy loop.
    pub fn start(
        channels: &[Channel],
        bearer: &str,
        workers: usize,
        counter: Arc<AtomicU32>,
        pause: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..workers)
            .map(|i| {
                let mut client =
                    EnterpriseRegistryServiceClient::new(channels[i % channels.len()].clone());
                let bearer = bearer.to_string();
                let stop = stop.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        assert!(n < 100_000, "the load ran out of enterprise codes");
                        let request_id = uuid::Uuid::new_v4().to_string();
                        let mut outcome =
                            create_once(&mut client, &bearer, &uscc(n), &request_id).await;
                        outcome.worker = i;
                        let failed = outcome.code != Code::Ok;
                        outcomes.push(outcome);
                        if failed {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    outcomes
                })
            })
            .collect();
        Load {
            stop,
            workers: handles,
        }
    }

    /// Stops the workers (each finishes its current call) and returns every outcome.
    pub async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for worker in self.workers {
            all.extend(worker.await.unwrap());
        }
        all.sort_by_key(|o| o.started);
        all
    }
}

/// Outcomes other than OK and UNAVAILABLE, described (at most 10), for an assertion message.
pub fn unexpected(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| !matches!(o.code, Code::Ok | Code::Unavailable))
        .take(10)
        .map(|o| format!("{} {:?} {} {}", o.uscc, o.code, o.reason, o.message))
        .collect()
}

/// The USCCs of the enterprise rows in `db`.
pub async fn stored_usccs(db: &sea_orm::DatabaseConnection) -> std::collections::BTreeSet<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    db.query_all_raw(Statement::from_string(
        backend,
        "SELECT uscc FROM enterprise".to_string(),
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|row| row.try_get::<String>("", "uscc").unwrap())
    .collect()
}

/// A connection for inspecting rows afterwards.
pub async fn inspect(url: &str) -> sea_orm::DatabaseConnection {
    sea_orm::Database::connect(url).await.unwrap()
}

/// VerifyAuditChain through the service.
pub async fn verify_chain(
    channel: &Channel,
    bearer: &str,
) -> qilu_proto::common::VerifyAuditChainResponse {
    let mut request = tonic::Request::new(qilu_proto::common::VerifyAuditChainRequest::default());
    request
        .metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    EnterpriseRegistryServiceClient::new(channel.clone())
        .verify_audit_chain(request)
        .await
        .unwrap()
        .into_inner()
}

/// Audit sequences in order, and request ids recorded more than once.
pub async fn audit_facts(db: &sea_orm::DatabaseConnection) -> (Vec<i64>, Vec<String>) {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let sequences = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT sequence FROM audit_event ORDER BY sequence".to_string(),
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.try_get::<i64>("", "sequence").unwrap())
        .collect();
    let repeated = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT request_id FROM audit_event GROUP BY request_id HAVING COUNT(*) > 1"
                .to_string(),
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.try_get::<String>("", "request_id").unwrap())
        .collect();
    (sequences, repeated)
}

/// A registry served in this process (as a replica would be) over `config`'s database.
pub struct Replica {
    pub channel: Channel,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    /// Opens (and migrates) the database, builds the registry with its health probe, serves it
    /// on an ephemeral port.
    pub async fn start(config: &qilu_common::config::Config) -> Replica {
        use qilu_common::app::{ServiceApp, open_database};
        let db = open_database::<qilu_registry::Registry>(config, true)
            .await
            .unwrap();
        let service = qilu_registry::Registry::build(config, db.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_config = config.clone();
        let task = tokio::spawn(async move {
            qilu_common::server::serve(listener, vec![service], &server_config, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
            let _ = db.close().await;
        });
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Replica {
            channel,
            stop: Some(tx),
            task,
        }
    }

    /// Shuts the server down and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap();
    }
}
