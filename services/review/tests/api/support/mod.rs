//! What both modules of the review service's integration tests share: the registry and the
//! review service started over fresh databases and wired as peers, the review service's clock
//! injectable (tests move "today"), tokens per role, enterprise or expert, and registering an
//! owner in the registry through its own client.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use qilu_common::app::ServiceApp;
use qilu_common::auth::Role;
use qilu_common::config::Config;
use qilu_common::server::ServiceDef;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::registry as rpb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use qilu_registry::Registry;
use qilu_review::{Clock, Review};
use sea_orm::DatabaseConnection;
use tonic::Request;
use tonic::transport::Channel;

/// A valid GB 32100 code registered in Jinan, varied by `n` (check character from the tests'
/// own oracle, independently of the registry).
pub use qilu_common::testing::uscc::uscc_for as uscc;

/// The review service's generated client.
pub type Client = AchievementReviewServiceClient<Channel>;

tokio::task_local! {
    /// The clock the review server built inside this scope uses.
    static CLOCK: Clock;
}

/// The review service with the clock of the enclosing [`CLOCK`] scope.
struct ReviewAt;

impl ServiceApp for ReviewAt {
    const NAME: &'static str = Review::NAME;
    const GRPC_NAME: &'static str = Review::GRPC_NAME;

    async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
        Review::migrate(db).await
    }

    async fn build(config: &Config, db: DatabaseConnection) -> Result<ServiceDef, String> {
        let clock = CLOCK
            .try_with(Clock::clone)
            .unwrap_or_else(|_| Clock::system());
        qilu_review::service_with_clock(config, db, clock)
    }
}

/// The registry and the review service, each over its own fresh database, the review
/// service asking the registry over gRPC.
pub struct Env {
    /// `None` once stopped.
    pub registry: Option<TestServer>,
    pub review: TestServer,
    /// Added to the real time by the review server's clock, µs.
    pub offset: Arc<AtomicI64>,
}

const DAY_US: i64 = 86_400_000_000;

impl Env {
    pub async fn start(backend: Backend) -> Option<Env> {
        let registry = TestServer::start::<Registry>(backend).await?;
        let offset = Arc::new(AtomicI64::new(0));
        let o = offset.clone();
        let clock = Clock::new(move || qilu_common::time::now_micros() + o.load(Ordering::SeqCst));
        let overrides = [("QILU__PEERS__REGISTRY", format!("http://{}", registry.addr))];
        let review = CLOCK
            .scope(
                clock,
                TestServer::start_with::<ReviewAt>(backend, &overrides),
            )
            .await?;
        Some(Env {
            registry: Some(registry),
            review,
            offset,
        })
    }

    pub fn advance_days(&self, days: i64) {
        self.offset.store(days * DAY_US, Ordering::SeqCst);
    }

    pub fn client(&self) -> Client {
        AchievementReviewServiceClient::new(self.review.channel.clone())
    }

    pub fn as_role<T>(&self, role: Role, message: T) -> Request<T> {
        self.review.request(role, message)
    }

    pub fn as_enterprise<T>(&self, uscc: &str, message: T) -> Request<T> {
        self.review.enterprise_request(uscc, message)
    }

    pub fn as_expert<T>(&self, id: &str, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let bearer = self
            .review
            .bearer(&format!("expert-{id}"), &[Role::Expert], None, Some(id));
        request
            .metadata_mut()
            .insert("authorization", bearer.parse().unwrap());
        request
    }

    /// Registers an enterprise in the registry (as an officer, through its client).
    pub async fn register(&self, uscc: &str, name: &str) {
        let registry = self.registry.as_ref().expect("registry running");
        EnterpriseRegistryServiceClient::new(registry.channel.clone())
            .create_enterprise(registry.request(
                Role::Officer,
                rpb::CreateEnterpriseRequest {
                    enterprise: Some(rpb::Enterprise {
                        uscc: uscc.to_string(),
                        display_name: name.to_string(),
                        established_date: "2012-03-04".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("register {uscc}: {s:?}"));
    }

    pub async fn stop(self) {
        self.review.stop().await;
        if let Some(registry) = self.registry {
            registry.stop().await;
        }
    }
}
