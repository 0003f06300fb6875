//! Hostile and oversized input at the edge, as a caller sees it: the real server on an ephemeral
//! port, over a fresh SQLite file and a fresh PostgreSQL database (`sqlite::…`, `postgres::…`).
//! Every bound here is one of `qilu_common::limits` or `server.max_header_bytes`; each test also
//! checks that the server still answers the next call (a stack overflow would abort the process,
//! a dropped connection would fail it).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qilu_common::auth::Role;
use qilu_common::limits::{
    MAX_FILTER_CONDITIONS, MAX_FILTER_VALUE_CHARS, MAX_STATUS_DETAILS_BYTES,
    MAX_STATUS_MESSAGE_BYTES,
};
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_registry::Registry;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::support::client;

on_both_backends!(
    a_40000_condition_filter_is_invalid_argument_and_the_server_answers_the_next_call,
    filters_at_their_bounds_work_and_one_past_is_invalid_argument,
    oversized_order_by_and_page_tokens_are_invalid_argument_on_their_field,
    a_5000_char_or_1_mb_name_gets_its_real_error_with_the_field_path_in_small_trailers,
    a_watch_ends_promptly_at_shutdown_with_unavailable_and_its_resume_cursor,
    a_64_kib_header_is_refused_alone_and_the_channel_keeps_working,
    tokens_before_nbf_issued_in_the_future_or_expired_are_unauthenticated,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Two valid GB 32100 codes from docs/rules.md, "Unified Social Credit Code".
const FUJIAN: &str = "91350100M000100Y43";
const BEIJING: &str = "91110000600037341L";

async fn create_enterprise(server: &TestServer, code: &str) {
    client(server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    uscc: code.to_string(),
                    display_name: format!("山东绿色科技{code}"),
                    established_date: "2012-03-01".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create {code}: {s:?}"));
}

/// The server still works: an ordinary list answers.
async fn still_answers(server: &TestServer) {
    client(server)
        .list_enterprises(server.request(Role::Officer, pb::ListEnterprisesRequest::default()))
        .await
        .expect("the server answers the next call");
}

/// Asserts INVALID_ARGUMENT with a violation of `field` (and `reason` when given), in trailers
/// within the documented bounds.
fn assert_invalid(status: &Status, field: &str, reason: Option<&str>) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_small(status);
    let details = status.get_error_details();
    let bad = details.bad_request().expect("BadRequest details");
    let v = &bad.field_violations[0];
    assert_eq!(v.field, field, "{status:?}");
    if let Some(reason) = reason {
        assert_eq!(v.reason, reason, "{status:?}");
    }
}

fn assert_small(status: &Status) {
    assert!(
        status.message().len() <= MAX_STATUS_MESSAGE_BYTES,
        "message of {} bytes",
        status.message().len()
    );
    assert!(
        status.details().len() <= MAX_STATUS_DETAILS_BYTES,
        "details of {} bytes",
        status.details().len()
    );
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------------
// Filters, order_by, page tokens
// ---------------------------------------------------------------------------------------------

async fn a_40000_condition_filter_is_invalid_argument_and_the_server_answers_the_next_call(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    create_enterprise(&server, FUJIAN).await;
    let dates = vec!["issue_date > \"2020-01-01\""; 40_000].join(" AND ");

    // The attack the testers found: an enterprise token listing its own certificates.
    let status = client(&server)
        .list_high_tech_certificates(server.enterprise_request(
            FUJIAN,
            pb::ListHighTechCertificatesRequest {
                parent: format!("enterprises/{FUJIAN}"),
                filter: dates.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "filter", Some("FILTER_TOO_LONG"));
    assert!(status.message().contains("at most 2048"), "{status:?}");
    still_answers(&server).await;

    let actors = vec!["actor = \"x\""; 40_000].join(" AND ");
    let status = client(&server)
        .list_audit_events(server.request(
            Role::Auditor,
            cpb::ListAuditEventsRequest {
                filter: actors,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "filter", Some("FILTER_TOO_LONG"));
    still_answers(&server).await;

    // Short conditions: the count bound, not the byte bound, refuses them.
    let many = vec!["a=b"; 100].join(" AND ");
    let status = client(&server)
        .list_enterprises(server.request(
            Role::Officer,
            pb::ListEnterprisesRequest {
                filter: many.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "filter", Some("TOO_MANY_FILTER_CONDITIONS"));
    let status = client(&server)
        .list_changes(server.request(
            Role::Officer,
            pb::ListChangesRequest {
                filter: many,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "filter", Some("TOO_MANY_FILTER_CONDITIONS"));
    still_answers(&server).await;
    server.stop().await;
}

async fn filters_at_their_bounds_work_and_one_past_is_invalid_argument(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    create_enterprise(&server, FUJIAN).await;
    let list_certificates = |filter: String| {
        let mut c = client(&server);
        let request = server.request(
            Role::Officer,
            pb::ListHighTechCertificatesRequest {
                parent: "enterprises/-".into(),
                filter,
                ..Default::default()
            },
        );
        async move { c.list_high_tech_certificates(request).await }
    };
    let at_bound = vec!["issue_date > \"2020-01-01\""; MAX_FILTER_CONDITIONS].join(" AND ");
    list_certificates(at_bound)
        .await
        .expect("a filter at the condition bound runs on the database");
    let past = vec!["issue_date > \"2020-01-01\""; MAX_FILTER_CONDITIONS + 1].join(" AND ");
    let status = list_certificates(past).await.unwrap_err();
    assert_invalid(&status, "filter", Some("TOO_MANY_FILTER_CONDITIONS"));

    // A substring match at the value bound, made of LIKE wildcards, is an ordinary (escaped)
    // pattern on both databases, far from SQLite's "LIKE or GLOB pattern too complex".
    let list_enterprises = |filter: String| {
        let mut c = client(&server);
        let request = server.request(
            Role::Officer,
            pb::ListEnterprisesRequest {
                filter,
                ..Default::default()
            },
        );
        async move { c.list_enterprises(request).await }
    };
    let wildcards = "%_".repeat(MAX_FILTER_VALUE_CHARS / 2);
    let page = list_enterprises(format!("display_name:\"{wildcards}\""))
        .await
        .expect("a substring at the value bound")
        .into_inner();
    assert!(
        page.enterprises.is_empty(),
        "wildcards are matched literally"
    );
    let name = "绿".repeat(MAX_FILTER_VALUE_CHARS + 1);
    let status = list_enterprises(format!("display_name:\"{name}\""))
        .await
        .unwrap_err();
    assert_invalid(&status, "filter", Some("FILTER_VALUE_TOO_LONG"));
    still_answers(&server).await;
    server.stop().await;
}

async fn oversized_order_by_and_page_tokens_are_invalid_argument_on_their_field(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let long = "x".repeat(100_000);
    let status = client(&server)
        .list_enterprises(server.request(
            Role::Officer,
            pb::ListEnterprisesRequest {
                order_by: long.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "order_by", Some("TOO_LONG"));
    let status = client(&server)
        .list_high_tech_certificates(server.request(
            Role::Officer,
            pb::ListHighTechCertificatesRequest {
                parent: "enterprises/-".into(),
                order_by: long.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "order_by", Some("TOO_LONG"));
    let status = client(&server)
        .list_enterprises(server.request(
            Role::Officer,
            pb::ListEnterprisesRequest {
                page_token: long.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "page_token", Some("TOO_LONG"));
    let status = client(&server)
        .list_audit_events(server.request(
            Role::Auditor,
            cpb::ListAuditEventsRequest {
                page_token: long.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "page_token", Some("TOO_LONG"));
    // A change-feed cursor of any length is refused with a preview, not an echo.
    let status = client(&server)
        .list_changes(server.request(
            Role::Officer,
            pb::ListChangesRequest {
                after_cursor: long,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&status, "after_cursor", Some("INVALID_CURSOR"));
    assert!(status.message().contains("(100000 chars)"), "{status:?}");
    still_answers(&server).await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Bounded error echoes
// ---------------------------------------------------------------------------------------------

async fn a_5000_char_or_1_mb_name_gets_its_real_error_with_the_field_path_in_small_trailers(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    create_enterprise(&server, FUJIAN).await;
    for length in [5_000, 1 << 20] {
        let name = format!("enterprises/{}", "氢".repeat(length / 3));
        let status = client(&server)
            .get_enterprise(server.request(
                Role::Officer,
                pb::GetEnterpriseRequest { name: name.clone() },
            ))
            .await
            .unwrap_err();
        assert_invalid(&status, "name", None);
        let status = client(&server)
            .get_high_tech_certificate(server.request(
                Role::Officer,
                pb::GetHighTechCertificateRequest {
                    name: format!("{name}/highTechCertificates/1"),
                },
            ))
            .await
            .unwrap_err();
        assert_invalid(&status, "name", None);
        let status = client(&server)
            .list_annual_figures(server.request(
                Role::Officer,
                pb::ListAnnualFiguresRequest {
                    parent: name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_invalid(&status, "parent", None);
        // Every field of a create is wrong at once: each violation is shortened, the list is
        // bounded, and the first field path is still there.
        let huge = "x".repeat(length);
        let status = client(&server)
            .create_enterprise(server.request(
                Role::Officer,
                pb::CreateEnterpriseRequest {
                    enterprise: Some(pb::Enterprise {
                        uscc: huge.clone(),
                        display_name: huge.clone(),
                        legal_representative: huge.clone(),
                        established_date: huge.clone(),
                        address: huge.clone(),
                        zone: huge.clone(),
                        ..Default::default()
                    }),
                    request_id: huge.clone(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_small(&status);
        let details = status.get_error_details();
        let fields: Vec<&str> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert!(
            fields.iter().any(|f| f.starts_with("enterprise.")),
            "{fields:?}"
        );
        // A NOT_FOUND for a long (but well-formed) resource keeps its ResourceInfo, shortened.
        let status = client(&server)
            .get_enterprise(server.request(
                Role::Officer,
                pb::GetEnterpriseRequest {
                    name: format!("enterprises/{BEIJING}"),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        still_answers(&server).await;
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Shutdown, headers, tokens
// ---------------------------------------------------------------------------------------------

async fn a_watch_ends_promptly_at_shutdown_with_unavailable_and_its_resume_cursor(
    backend: Backend,
) {
    // A long drain: the watch must not be what the server waits for.
    let Some(server) = TestServer::start_with::<Registry>(
        backend,
        &[("QILU__SERVER__DRAIN_SECONDS", "30".into())],
    )
    .await
    else {
        return;
    };
    create_enterprise(&server, FUJIAN).await;
    let mut stream = client(&server)
        .watch_changes(server.request(Role::Officer, pb::WatchChangesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().expect("the backlog");
    assert_eq!(first.changes.len(), 1);
    let cursor = first.cursor.clone();

    let started = Instant::now();
    let stop = tokio::spawn(server.stop());
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_heartbeat)) => continue,
                Ok(None) => panic!("the watch ended without saying why"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the watch ends at shutdown");
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    assert!(
        end.message().contains(&format!(
            "server shutting down; resume from cursor {cursor}"
        )),
        "{end:?}"
    );
    let info = end.get_error_details();
    let info = info.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "SERVER_SHUTTING_DOWN");
    assert_eq!(info.metadata["resume_cursor"], cursor);
    qilu_common::testing::assert_stopped_promptly(stop, started, "a watcher open").await;
}

async fn a_64_kib_header_is_refused_alone_and_the_channel_keeps_working(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let mut big = server.request(Role::Officer, pb::ListEnterprisesRequest::default());
    big.metadata_mut()
        .insert("x-padding", "p".repeat(64 * 1024).parse().unwrap());
    let status = client(&server).list_enterprises(big).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("server.max_header_bytes"),
        "{status:?}"
    );
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().unwrap().reason,
        "REQUEST_HEADERS_TOO_LARGE"
    );
    // The same channel (the same HTTP/2 connection) goes on serving.
    still_answers(&server).await;
    let mut normal = server.request(Role::Officer, pb::ListEnterprisesRequest::default());
    normal
        .metadata_mut()
        .insert("x-padding", "p".repeat(4 * 1024).parse().unwrap());
    client(&server)
        .list_enterprises(normal)
        .await
        .expect("a call with ordinary headers");
    server.stop().await;
}

async fn tokens_before_nbf_issued_in_the_future_or_expired_are_unauthenticated(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let auth = &server.config.auth;
    let t = now();
    let leeway = auth.leeway_seconds;
    let claims = |nbf: Option<u64>, iat: u64, exp: u64| {
        let mut c = serde_json::json!({
            "sub": "officer-1", "roles": ["officer"], "iss": auth.issuer, "aud": auth.audience,
            "iat": iat, "exp": exp,
        });
        if let Some(nbf) = nbf {
            c["nbf"] = nbf.into();
        }
        c
    };
    let call = |claims: serde_json::Value| {
        let mut request = Request::new(pb::ListEnterprisesRequest::default());
        request.metadata_mut().insert(
            "authorization",
            server.bearer_for_claims(&claims).parse().unwrap(),
        );
        let mut c = client(&server);
        async move { c.list_enterprises(request).await }
    };
    let cases = [
        (
            claims(Some(t + leeway + 600), t, t + 3600),
            "token not valid yet (nbf is in the future)",
        ),
        (
            claims(None, t + leeway + 600, t + 3600),
            "issued in the future",
        ),
        (
            claims(None, t - 7200, t - leeway - 600),
            "token expired (exp is in the past)",
        ),
    ];
    for (claims, expected) in cases {
        let status = call(claims.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{claims}: {status:?}");
        assert!(status.message().contains(expected), "{claims}: {status:?}");
    }
    // Within the leeway, clock skew is tolerated.
    call(claims(Some(t + 5), t + 5, t + 3600))
        .await
        .expect("a token a few seconds ahead");
    server.stop().await;
}
