//! What every module of the registry's integration tests shares, written once: the client, the
//! resource names and a plain enterprise to create, and the assertions on a `Status`'s rich
//! details (field violations, `ResourceInfo`), and a registry whose "today" the test sets
//! (`start_on`). A module keeps only the fixtures of its own resource family.

use chrono::{Datelike, NaiveDate};
use qilu_common::Clock;
use qilu_common::app::ServiceApp;
use qilu_common::auth::Role;
use qilu_common::config::Config;
use qilu_common::server::ServiceDef;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_registry::Registry;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

pub use qilu_common::testing::uscc::{check_char, uscc_for, with_check};

/// The registry's generated client.
pub type Client = EnterpriseRegistryServiceClient<Channel>;

/// The `ResourceInfo.resource_type` of an enterprise.
pub const ENTERPRISE_TYPE: &str = "registry.qilu.gov.cn/Enterprise";

/// A valid code registered in Shandong prefecture `prefecture` (e.g. `3701`), varied by `n`
/// in positions 13-17.
pub fn shandong(prefecture: &str, n: u32) -> String {
    with_check(&format!("91{prefecture}00MA3C{n:05}"))
}

/// Today in the programme's time zone (Asia/Shanghai), where the registry's dates live.
pub fn today() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
}

/// The current year in the programme's time zone.
pub fn this_year() -> i32 {
    today().year()
}

/// A client of `server` on its shared channel.
pub fn client(server: &TestServer) -> Client {
    EnterpriseRegistryServiceClient::new(server.channel.clone())
}

/// The resource name of the enterprise with this code.
pub fn ent(uscc: &str) -> String {
    format!("enterprises/{uscc}")
}

/// An enterprise with the fields every create needs and nothing optional.
pub fn enterprise(uscc: &str, display_name: &str) -> pb::Enterprise {
    pb::Enterprise {
        uscc: uscc.to_string(),
        display_name: display_name.to_string(),
        legal_representative: "张三".into(),
        established_date: "2010-05-04".into(),
        address: "山东省济南市历下区".into(),
        ..Default::default()
    }
}

/// The enterprise with this code, read as an officer; panics when the read fails.
pub async fn get_enterprise(server: &TestServer, uscc: &str) -> pb::Enterprise {
    client(server)
        .get_enterprise(server.request(Role::Officer, pb::GetEnterpriseRequest { name: ent(uscc) }))
        .await
        .unwrap()
        .into_inner()
}

/// Every audit event matching `filter` (all of them for `""`), read as an auditor page by page.
pub async fn audit_events(server: &TestServer, filter: &str) -> Vec<cpb::AuditEvent> {
    audit_events_paged(server, filter, 1000).await
}

/// [`audit_events`] in pages of `page_size` (tests of paging itself use small pages).
pub async fn audit_events_paged(
    server: &TestServer,
    filter: &str,
    page_size: i32,
) -> Vec<cpb::AuditEvent> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client(server)
            .list_audit_events(server.request(
                Role::Auditor,
                cpb::ListAuditEventsRequest {
                    page_size,
                    page_token: token,
                    filter: filter.into(),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("list audit events {filter:?}: {s:?}"))
            .into_inner();
        out.extend(page.audit_events);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

/// Every audit event of the resource `name`.
pub async fn audit_events_of(server: &TestServer, name: &str) -> Vec<cpb::AuditEvent> {
    audit_events(server, &format!("resource = \"{name}\"")).await
}

/// An update mask of these paths.
pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

/// The `BadRequest` field violations of `status` as `(field, reason)`, in order.
pub fn violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| (v.field.clone(), v.reason.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// INVALID_ARGUMENT with (at least) a violation on `field`.
pub fn assert_invalid_field(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        violations(status).iter().any(|(f, _)| f == field),
        "expected a violation on {field}: {status:?}"
    );
}

/// NOT_FOUND naming the resource `name` of `resource_type` in its `ResourceInfo`.
pub fn assert_not_found(status: &Status, resource_type: &str, name: &str) {
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let info = status.get_details_resource_info().expect("ResourceInfo");
    assert_eq!(
        (info.resource_type.as_str(), info.resource_name.as_str()),
        (resource_type, name)
    );
}

/// Runs one SQL statement on the server's database (set-up or tampering a test needs).
pub async fn execute(server: &TestServer, sql: &str) {
    let backend = server.db.get_database_backend();
    server
        .db
        .execute_raw(Statement::from_string(backend, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

// "Today" set by the test: the registry built with an injected clock.

tokio::task_local! {
    /// The clock the registry built inside this scope uses.
    static CLOCK: Clock;
}

/// The registry with the clock of the enclosing [`CLOCK`] scope.
struct RegistryAt;

impl ServiceApp for RegistryAt {
    const NAME: &'static str = Registry::NAME;
    const GRPC_NAME: &'static str = Registry::GRPC_NAME;

    async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
        Registry::migrate(db).await
    }

    async fn build(config: &Config, db: DatabaseConnection) -> Result<ServiceDef, String> {
        let clock = CLOCK
            .try_with(Clock::clone)
            .unwrap_or_else(|_| Clock::system());
        Ok(qilu_registry::service_with_clock(config, db, clock))
    }
}

/// A registry whose "today" (programme time zone) is whatever date the returned setter was
/// last given; it starts on `first`.
pub async fn start_on(
    backend: Backend,
    first: NaiveDate,
) -> Option<(TestServer, impl Fn(NaiveDate))> {
    start_on_clock(backend, first)
        .await
        .map(|(server, _, set)| (server, set))
}

/// [`start_on`], also returning the clock the registry reads (to build a second replica's
/// sweeper on the same database and date).
pub async fn start_on_clock(
    backend: Backend,
    first: NaiveDate,
) -> Option<(TestServer, Clock, impl Fn(NaiveDate))> {
    // Noon UTC is 20:00 in Shanghai: the same date in the programme time zone.
    let noon = |day: NaiveDate| {
        day.and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros()
    };
    let now = Arc::new(AtomicI64::new(noon(first)));
    let read = now.clone();
    let clock = Clock::new(move || read.load(Ordering::SeqCst));
    let server = CLOCK
        .scope(clock.clone(), TestServer::start::<RegistryAt>(backend))
        .await?;
    Some((server, clock, move |day| {
        now.store(noon(day), Ordering::SeqCst)
    }))
}
