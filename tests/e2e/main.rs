//! Cross-service end-to-end tests: the suite as a caller sees it, all three services mounted
//! together (as `qilu dev` does) over real databases, on SQLite and PostgreSQL.
//!
//! docs/design.md §9 (the programme year) names the tests that exercise each of its steps; this
//! binary checks what only the whole suite shows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backup;
mod http;
mod upgrade;

use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::config::Config;
use qilu_common::on_both_backends;
use qilu_common::testing::Backend;
use qilu_proto::awards::award_allocation_service_client::AwardAllocationServiceClient;
use qilu_proto::common::{ListAuditEventsRequest, VerifyAuditChainRequest};
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::registry::{CreateEnterpriseRequest, Enterprise};
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use qilu_suite::testing::TestSuite;
use tonic::transport::Channel;

/// The three services on one port, each over its own fresh database (`qilu_suite`, as
/// `qilu dev` runs them).
struct Suite {
    channel: Channel,
    config: Config,
    server: TestSuite,
}

impl Suite {
    async fn start(backend: Backend) -> Option<Suite> {
        let server = TestSuite::start(backend, &[]).await?;
        Some(Suite {
            channel: server.channel.clone(),
            config: server.config.clone(),
            server,
        })
    }

    fn request<T>(&self, role: Role, message: T) -> tonic::Request<T> {
        let token = self.token(role);
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    }

    /// A token of `role` that the suite accepts.
    fn token(&self, role: Role) -> String {
        mint_hs256(
            &self.config.auth,
            &TokenRequest {
                subject: format!("e2e-{role}"),
                roles: vec![role],
                enterprise: None,
                expert: None,
                ttl_seconds: 600,
            },
        )
        .unwrap()
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

async fn each_service_keeps_its_own_audit_chain(backend: Backend) {
    let Some(suite) = Suite::start(backend).await else {
        return;
    };
    let mut registry = EnterpriseRegistryServiceClient::new(suite.channel.clone());
    let mut review = AchievementReviewServiceClient::new(suite.channel.clone());
    let mut awards = AwardAllocationServiceClient::new(suite.channel.clone());

    registry
        .create_enterprise(suite.request(
            Role::Officer,
            CreateEnterpriseRequest {
                enterprise: Some(Enterprise {
                    uscc: "91350100M000100Y43".into(),
                    display_name: "山东绿氢科技有限公司".into(),
                    established_date: "2015-06-01".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();

    let registry_events = registry
        .list_audit_events(suite.request(Role::Auditor, ListAuditEventsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert_eq!(registry_events.len(), 1);
    assert_eq!(
        registry_events[0].resource,
        "enterprises/91350100M000100Y43"
    );

    // The registry's change is in the registry's log only: each service owns its database.
    let review_events = review
        .list_audit_events(suite.request(Role::Auditor, ListAuditEventsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert!(review_events.is_empty());
    let awards_events = awards
        .list_audit_events(suite.request(Role::Auditor, ListAuditEventsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert!(awards_events.is_empty());

    // Every service's chain verifies.
    let r = registry
        .verify_audit_chain(suite.request(Role::Auditor, VerifyAuditChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(r.intact && r.events_checked == 1, "{r:?}");
    let r = review
        .verify_audit_chain(suite.request(Role::Auditor, VerifyAuditChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(r.intact && r.events_checked == 0, "{r:?}");
    let r = awards
        .verify_audit_chain(suite.request(Role::Admin, VerifyAuditChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(r.intact, "{r:?}");

    // Roles are per service: an officer may not read any audit log.
    let denied = review
        .list_audit_events(suite.request(Role::Officer, ListAuditEventsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    suite.stop().await;
}

on_both_backends!(each_service_keeps_its_own_audit_chain);
