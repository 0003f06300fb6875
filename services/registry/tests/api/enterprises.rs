//! Integration tests of the enterprise registry as a caller sees it: the real server on an
//! ephemeral port, over a fresh SQLite file and a fresh PostgreSQL database. Every scenario runs
//! on both backends (`sqlite::…` and `postgres::…`).

use std::collections::BTreeSet;

use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_registry::Registry;
use qilu_registry::roles::ROLE_TABLE;
use sea_orm::{ConnectionTrait, Statement};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::support::{
    ENTERPRISE_TYPE, assert_invalid_field, assert_not_found, audit_events_paged, client, ent,
    enterprise, shandong, violations, with_check,
};

on_both_backends!(
    valid_usccs_create_active_enterprises_with_division_and_city,
    each_invalid_uscc_is_invalid_argument_on_enterprise_uscc,
    every_bad_field_is_reported_together_with_its_path,
    the_allow_listed_pilot_code_is_accepted_as_a_known_exception,
    validate_uscc_reports_verdicts_and_parts,
    a_department_or_category_outside_the_code_table_is_refused_with_its_reason,
    a_duplicate_uscc_is_already_exists_naming_the_enterprise,
    a_repeated_request_id_creates_once_and_replays_the_first_result,
    a_reused_request_id_with_a_different_request_is_invalid_argument,
    a_non_uuid_request_id_is_invalid_argument,
    concurrent_retries_with_one_request_id_create_once,
    concurrent_updates_with_one_etag_let_exactly_one_win,
    a_call_without_a_token_is_unauthenticated,
    a_garbage_or_foreign_token_is_unauthenticated,
    a_role_outside_the_table_is_permission_denied,
    the_health_check_answers_without_a_token,
    every_role_is_allowed_or_refused_exactly_as_the_role_table_says,
    an_enterprise_token_reaches_only_its_own_enterprise,
    every_mutation_is_audited_once_and_the_chain_verifies,
    an_audit_event_without_a_request_id_records_the_calls_x_request_id,
    editing_an_audit_event_breaks_the_chain_at_that_event,
    deleting_a_middle_audit_event_breaks_the_chain,
    deleting_the_last_audit_event_is_caught_by_the_head,
    a_witnessed_hash_that_does_not_match_breaks_the_chain,
    paging_through_120_enterprises_returns_each_exactly_once,
    page_tokens_and_page_sizes_are_validated,
    list_filters_select_by_name_city_and_technology_field,
    the_name_filter_ignores_ascii_case_on_every_backend,
    update_with_mask_and_current_etag_changes_fields_and_etag,
    update_refuses_stale_etags_bad_masks_and_missing_enterprises,
    an_unregistered_zone_is_refused_on_create_and_update,
    get_of_a_missing_or_malformed_name_is_not_found_or_invalid,
    batch_get_returns_enterprises_in_request_order,
    the_role_table_is_checked_before_any_handler,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A valid code registered in Fuzhou (350100), outside Shandong.
fn fujian(n: u32) -> String {
    with_check(&format!("91350100MA2Y{n:05}"))
}

const VALID_FUJIAN: &str = "91350100M000100Y43";
const VALID_BEIJING: &str = "91110000600037341L";
const PILOT_CODE: &str = "91350100M0001TGQXM";

fn create_request(e: pb::Enterprise) -> pb::CreateEnterpriseRequest {
    pb::CreateEnterpriseRequest {
        enterprise: Some(e),
        request_id: String::new(),
    }
}

/// Creates an enterprise as an officer and returns it.
async fn create(server: &TestServer, e: pb::Enterprise) -> pb::Enterprise {
    let uscc = e.uscc.clone();
    client(server)
        .create_enterprise(server.request(Role::Officer, create_request(e)))
        .await
        .unwrap_or_else(|s| panic!("create {uscc}: {s:?}"))
        .into_inner()
}

/// Creates an enterprise with a name as an officer.
async fn create_named(server: &TestServer, uscc: &str, display_name: &str) -> pb::Enterprise {
    create(server, enterprise(uscc, display_name)).await
}

/// INVALID_ARGUMENT with exactly one violation, of `field` for `reason`.
#[track_caller]
fn assert_single_violation(status: &Status, field: &str, reason: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        violations(status),
        vec![(field.to_string(), reason.to_string())],
        "{status:?}"
    );
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "INVALID_ARGUMENT");
    assert_eq!(info.domain, "qilu.gov.cn");
}

async fn get(server: &TestServer, role: Role, uscc: &str) -> Result<pb::Enterprise, Status> {
    client(server)
        .get_enterprise(server.request(role, pb::GetEnterpriseRequest { name: ent(uscc) }))
        .await
        .map(tonic::Response::into_inner)
}

async fn list(
    server: &TestServer,
    request: pb::ListEnterprisesRequest,
) -> Result<pb::ListEnterprisesResponse, Status> {
    client(server)
        .list_enterprises(server.request(Role::Officer, request))
        .await
        .map(tonic::Response::into_inner)
}

/// Every enterprise matching `filter`, in order, following page tokens.
async fn list_all(server: &TestServer, filter: &str, order_by: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(
            server,
            pb::ListEnterprisesRequest {
                page_size: 7,
                page_token: token,
                filter: filter.into(),
                order_by: order_by.into(),
            },
        )
        .await
        .unwrap_or_else(|s| panic!("list {filter:?}: {s:?}"));
        out.extend(page.enterprises.into_iter().map(|e| e.uscc));
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

async fn audit_events_in_pages_of_two(server: &TestServer, filter: &str) -> Vec<cpb::AuditEvent> {
    audit_events_paged(server, filter, 2).await
}

async fn verify(server: &TestServer, sequence: i64, hash: &str) -> cpb::VerifyAuditChainResponse {
    client(server)
        .verify_audit_chain(server.request(
            Role::Auditor,
            cpb::VerifyAuditChainRequest {
                witnessed_sequence: sequence,
                witnessed_hash: hash.into(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("verify: {s:?}"))
        .into_inner()
}

async fn execute_one(server: &TestServer, sql: &str) {
    let backend = server.db.get_database_backend();
    let result = server
        .db
        .execute_raw(Statement::from_string(backend, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(result.rows_affected(), 1, "{sql}");
}

/// Three audited mutations: two creations and one update.
async fn three_mutations(server: &TestServer) {
    let a = shandong("3701", 1);
    let b = fujian(2);
    create_named(server, &a, "山东甲公司").await;
    create_named(server, &b, "福建乙公司").await;
    update(
        server,
        Role::Officer,
        pb::Enterprise {
            name: ent(&a),
            display_name: "山东甲新材料公司".into(),
            ..Default::default()
        },
        &["display_name"],
        "",
    )
    .await
    .unwrap();
    let check = verify(server, 0, "").await;
    assert!(check.intact, "{check:?}");
    assert_eq!(check.events_checked, 3);
}

async fn update(
    server: &TestServer,
    role: Role,
    e: pb::Enterprise,
    paths: &[&str],
    request_id: &str,
) -> Result<pb::Enterprise, Status> {
    client(server)
        .update_enterprise(server.request(
            role,
            pb::UpdateEnterpriseRequest {
                enterprise: Some(e),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                }),
                request_id: request_id.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn time_us(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("timestamp set");
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1000
}

/// Attaches a bearer header to a request.
fn with_bearer<T>(message: T, bearer: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    request
}

// ---------------------------------------------------------------------------------------------
// Creation and USCC validation
// ---------------------------------------------------------------------------------------------

async fn valid_usccs_create_active_enterprises_with_division_and_city(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let jinan = with_check("91370100MA3C00000");
    assert_eq!(jinan, "91370100MA3C00000E");
    let laiwu = shandong("3712", 7);
    for (uscc, division, city) in [
        (VALID_FUJIAN, "350100", ""),
        (VALID_BEIJING, "110000", ""),
        (jinan.as_str(), "370100", "Jinan"),
        // Laiwu (3712) merged into Jinan in 2019.
        (laiwu.as_str(), "371200", "Jinan"),
    ] {
        let created = create_named(&server, uscc, "  山东氢能科技有限公司 ").await;
        assert_eq!(created.name, ent(uscc));
        assert_eq!(created.uscc, uscc);
        assert_eq!(created.division_code, division, "{uscc}");
        assert_eq!(created.city, city, "{uscc}");
        assert_eq!(created.display_name, "山东氢能科技有限公司");
        assert_eq!(created.established_date, "2010-05-04");
        assert_eq!(created.state, pb::EnterpriseState::Active as i32);
        assert!(!created.etag.is_empty());
        assert!(!created.uscc_known_exception);
        assert!(!created.high_tech_certified);
        assert!(!created.leading);
        assert!(created.create_time.is_some());
        assert_eq!(created.create_time, created.update_time);

        let read = get(&server, Role::Auditor, uscc).await.unwrap();
        assert_eq!(read, created, "a read returns what the creation returned");
    }

    // Lower case and surrounding spaces are normalised.
    let lower = fujian(3).to_lowercase();
    let created = create_named(&server, &format!(" {lower} "), "福建公司").await;
    assert_eq!(created.uscc, lower.to_uppercase());
    assert_eq!(created.name, ent(&lower.to_uppercase()));
    server.stop().await;
}

async fn each_invalid_uscc_is_invalid_argument_on_enterprise_uscc(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    for (uscc, reason) in [
        ("91350100M000100Y4Z", "INVALID_CHECKSUM"),
        ("91310115MA1H8R7C6D", "INVALID_CHECKSUM"),
        ("91350100M000100Y4", "INVALID_FORMAT"),
        ("91350100M000100Y433", "INVALID_FORMAT"),
        ("9135010om0001i0y43", "INVALID_FORMAT"),
        ("山东氢能科技有限公司", "INVALID_FORMAT"),
        ("91350100M000100Y4３", "INVALID_FORMAT"),
        ("", "REQUIRED"),
        ("   ", "REQUIRED"),
    ] {
        let status = client(&server)
            .create_enterprise(server.request(
                Role::Admin,
                create_request(enterprise(uscc, "山东氢能科技有限公司")),
            ))
            .await
            .expect_err(uscc);
        assert_single_violation(&status, "enterprise.uscc", reason);
    }
    let missing = client(&server)
        .create_enterprise(server.request(Role::Admin, pb::CreateEnterpriseRequest::default()))
        .await
        .unwrap_err();
    assert_single_violation(&missing, "enterprise", "REQUIRED");

    let all = list(&server, Default::default()).await.unwrap();
    assert!(all.enterprises.is_empty(), "nothing was created");
    assert!(audit_events_in_pages_of_two(&server, "").await.is_empty());
    server.stop().await;
}

async fn every_bad_field_is_reported_together_with_its_path(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let bad_fields = |uscc: &str| pb::Enterprise {
        uscc: uscc.into(),
        display_name: "   ".into(),
        established_date: "2999-01-01".into(),
        zone: "Zones/Jinan".into(),
        ..Default::default()
    };
    let status = client(&server)
        .create_enterprise(server.request(
            Role::Officer,
            create_request(bad_fields("91350100M000100Y4Z")),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let got: BTreeSet<(String, String)> = violations(&status).into_iter().collect();
    let want: BTreeSet<(String, String)> = [
        ("enterprise.uscc", "INVALID_CHECKSUM"),
        ("enterprise.display_name", "REQUIRED"),
        ("enterprise.established_date", "IN_FUTURE"),
        ("enterprise.zone", "INVALID_RESOURCE_NAME"),
    ]
    .into_iter()
    .map(|(f, r)| (f.to_string(), r.to_string()))
    .collect();
    assert_eq!(got, want, "{status:?}");

    // A good code with bad fields: only the fields are reported.
    let status = client(&server)
        .create_enterprise(server.request(Role::Officer, create_request(bad_fields(VALID_FUJIAN))))
        .await
        .unwrap_err();
    let fields: BTreeSet<String> = violations(&status).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "enterprise.display_name",
            "enterprise.established_date",
            "enterprise.zone"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );

    // Other single-field problems name their paths too.
    for (mutate, field, reason) in [
        (
            (|e: &mut pb::Enterprise| e.established_date = "2010/05/04".into())
                as fn(&mut pb::Enterprise),
            "enterprise.established_date",
            "INVALID_DATE",
        ),
        (
            |e: &mut pb::Enterprise| e.established_date = String::new(),
            "enterprise.established_date",
            "REQUIRED",
        ),
        (
            |e: &mut pb::Enterprise| e.display_name = "名".repeat(201),
            "enterprise.display_name",
            "TOO_LONG",
        ),
        (
            |e: &mut pb::Enterprise| e.technology_fields = vec![4, 99],
            "enterprise.technology_fields[1]",
            "UNKNOWN_ENUM_VALUE",
        ),
        (
            |e: &mut pb::Enterprise| e.green_category = 42,
            "enterprise.green_category",
            "UNKNOWN_ENUM_VALUE",
        ),
    ] {
        let mut e = enterprise(VALID_FUJIAN, "福建公司");
        mutate(&mut e);
        let status = client(&server)
            .create_enterprise(server.request(Role::Officer, create_request(e)))
            .await
            .unwrap_err();
        assert_single_violation(&status, field, reason);
    }
    assert_not_found(
        &get(&server, Role::Admin, VALID_FUJIAN).await.unwrap_err(),
        ENTERPRISE_TYPE,
        &ent(VALID_FUJIAN),
    );
    server.stop().await;
}

async fn the_allow_listed_pilot_code_is_accepted_as_a_known_exception(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let created = create_named(&server, PILOT_CODE, "福建试点企业").await;
    assert!(created.uscc_known_exception);
    assert_eq!(created.name, ent(PILOT_CODE));
    assert_eq!(created.division_code, "350100");
    let read = get(&server, Role::Officer, PILOT_CODE).await.unwrap();
    assert!(read.uscc_known_exception);
    assert_eq!(read, created);

    let report = client(&server)
        .validate_uscc(server.request(
            Role::Officer,
            pb::ValidateUsccRequest {
                uscc: PILOT_CODE.to_lowercase(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.verdict, pb::UsccVerdict::KnownException as i32);
    assert_eq!(report.uscc, PILOT_CODE);
    assert_eq!(report.expected_check_character, "1");
    assert!(!report.problems.is_empty(), "the exception is explained");

    // A near miss of the pilot code is not on the list.
    let status = client(&server)
        .create_enterprise(server.request(
            Role::Officer,
            create_request(enterprise("91350100M0001TGQXN", "冒名企业")),
        ))
        .await
        .unwrap_err();
    assert_single_violation(&status, "enterprise.uscc", "INVALID_CHECKSUM");
    server.stop().await;
}

async fn a_department_or_category_outside_the_code_table_is_refused_with_its_reason(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    // Each passes the checksum; only the GB 32100-2015 code table tells them apart.
    let farmers = with_check("93370100MA3C00003");
    let foundation = with_check("53370100MA3C00003");
    let unknown_category = with_check("94370100MA3C00003");
    let unknown_department = with_check("B1370100MA3C00003");
    for (code, reason) in [
        (&unknown_category, "UNKNOWN_CATEGORY"),
        (&unknown_department, "UNKNOWN_REGISTERING_DEPARTMENT"),
    ] {
        let status = client(&server)
            .create_enterprise(server.request(
                Role::Officer,
                create_request(enterprise(code, "编码表外企业")),
            ))
            .await
            .unwrap_err();
        assert_single_violation(&status, "enterprise.uscc", reason);
        let status = get(&server, Role::Officer, code).await.unwrap_err();
        assert_single_violation(&status, "name", reason);

        let report = client(&server)
            .validate_uscc(
                server.request(Role::Expert, pb::ValidateUsccRequest { uscc: code.clone() }),
            )
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            pb::UsccVerdict::try_from(report.verdict).unwrap(),
            pb::UsccVerdict::UnknownDepartmentOrCategory,
            "{code}: {report:?}"
        );
        assert!(report.category_name.is_empty(), "{code}");
        assert_eq!(report.problems.len(), 1, "{code}: {:?}", report.problems);
    }
    for (code, department, category) in [
        (&farmers, "工商", "农民专业合作社"),
        (&foundation, "民政", "基金会"),
    ] {
        let created = create_named(&server, code, "编码表内组织").await;
        assert!(!created.uscc_known_exception);
        let report = client(&server)
            .validate_uscc(
                server.request(Role::Expert, pb::ValidateUsccRequest { uscc: code.clone() }),
            )
            .await
            .unwrap()
            .into_inner();
        assert_eq!(report.verdict, pb::UsccVerdict::Valid as i32, "{code}");
        assert_eq!(report.registering_department_name, department);
        assert_eq!(report.category_name, category);
    }
    server.stop().await;
}

async fn validate_uscc_reports_verdicts_and_parts(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let jinan = with_check("91370100MA3C00000");
    let qingdao = shandong("3702", 5);
    struct Case<'a> {
        input: &'a str,
        verdict: pb::UsccVerdict,
        division: &'a str,
        city: &'a str,
        expected_check: &'a str,
    }
    let cases = [
        Case {
            input: VALID_FUJIAN,
            verdict: pb::UsccVerdict::Valid,
            division: "350100",
            city: "",
            expected_check: "3",
        },
        Case {
            input: VALID_BEIJING,
            verdict: pb::UsccVerdict::Valid,
            division: "110000",
            city: "",
            expected_check: "L",
        },
        Case {
            input: &jinan,
            verdict: pb::UsccVerdict::Valid,
            division: "370100",
            city: "Jinan",
            expected_check: "E",
        },
        Case {
            input: &qingdao,
            verdict: pb::UsccVerdict::Valid,
            division: "370200",
            city: "Qingdao",
            expected_check: &qingdao[17..],
        },
        Case {
            input: "91350100M000100Y4Z",
            verdict: pb::UsccVerdict::InvalidChecksum,
            division: "350100",
            city: "",
            expected_check: "3",
        },
        Case {
            input: "91310115MA1H8R7C6D",
            verdict: pb::UsccVerdict::InvalidChecksum,
            division: "310115",
            city: "",
            expected_check: "7",
        },
        Case {
            input: PILOT_CODE,
            verdict: pb::UsccVerdict::KnownException,
            division: "350100",
            city: "",
            expected_check: "1",
        },
        Case {
            input: "91350100M000100Y4",
            verdict: pb::UsccVerdict::InvalidFormat,
            division: "",
            city: "",
            expected_check: "",
        },
        Case {
            input: "9135010om0001i0y43",
            verdict: pb::UsccVerdict::InvalidFormat,
            division: "",
            city: "",
            expected_check: "",
        },
        Case {
            input: "山东氢能科技有限公司",
            verdict: pb::UsccVerdict::InvalidFormat,
            division: "",
            city: "",
            expected_check: "",
        },
    ];
    for case in cases {
        // Every authenticated role may validate; the expert is the least privileged.
        let report = client(&server)
            .validate_uscc(server.request(
                Role::Expert,
                pb::ValidateUsccRequest {
                    uscc: format!("  {}  ", case.input.to_lowercase()),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("{}: {s:?}", case.input))
            .into_inner();
        let input = case.input;
        assert_eq!(
            pb::UsccVerdict::try_from(report.verdict).unwrap(),
            case.verdict,
            "{input}: {report:?}"
        );
        assert_eq!(report.division_code, case.division, "{input}");
        assert_eq!(report.city, case.city, "{input}");
        assert_eq!(
            report.expected_check_character, case.expected_check,
            "{input}"
        );
        if case.verdict == pb::UsccVerdict::InvalidFormat {
            assert!(report.registering_department.is_empty(), "{input}");
            assert!(!report.problems.is_empty(), "{input}");
        } else {
            assert_eq!(report.uscc, input.to_uppercase());
            assert_eq!(report.registering_department, "9", "{input}");
            assert_eq!(report.category, "1", "{input}");
            assert_eq!(report.organization_code, input[8..17], "{input}");
        }
        if case.verdict != pb::UsccVerdict::Valid {
            assert!(!report.problems.is_empty(), "{input}: problems explained");
        }
    }
    for (input, reason) in [("", "REQUIRED"), ("   ", "REQUIRED")] {
        let status = client(&server)
            .validate_uscc(server.request(
                Role::Enterprise,
                pb::ValidateUsccRequest { uscc: input.into() },
            ))
            .await
            .unwrap_err();
        assert_single_violation(&status, "uscc", reason);
    }
    let status = client(&server)
        .validate_uscc(server.request(
            Role::Officer,
            pb::ValidateUsccRequest {
                uscc: "9".repeat(300),
            },
        ))
        .await
        .unwrap_err();
    assert_single_violation(&status, "uscc", "TOO_LONG");
    server.stop().await;
}

async fn a_duplicate_uscc_is_already_exists_naming_the_enterprise(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let first = create_named(&server, VALID_FUJIAN, "福建第一公司").await;
    for again in [VALID_FUJIAN.to_string(), VALID_FUJIAN.to_lowercase()] {
        let status = client(&server)
            .create_enterprise(server.request(
                Role::Admin,
                create_request(enterprise(&again, "福建第二公司")),
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        let info = status.get_details_resource_info().expect("ResourceInfo");
        assert_eq!(info.resource_name, ent(VALID_FUJIAN));
        assert_eq!(info.resource_type, ENTERPRISE_TYPE);
        assert_eq!(
            status.get_details_error_info().unwrap().reason,
            "RESOURCE_ALREADY_EXISTS"
        );
    }
    assert_eq!(
        get(&server, Role::Admin, VALID_FUJIAN).await.unwrap(),
        first
    );
    assert_eq!(audit_events_in_pages_of_two(&server, "").await.len(), 1);
    // The failed attempts left the write path usable (no lock or transaction left behind).
    create_named(&server, VALID_BEIJING, "北京公司").await;
    let check = verify(&server, 0, "").await;
    assert!(check.intact, "{check:?}");
    assert_eq!(check.events_checked, 2);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------------

async fn a_repeated_request_id_creates_once_and_replays_the_first_result(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = pb::CreateEnterpriseRequest {
        enterprise: Some(enterprise(VALID_FUJIAN, "福建幂等公司")),
        request_id: request_id.clone(),
    };
    let first = client(&server)
        .create_enterprise(server.request(Role::Officer, request.clone()))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    for _ in 0..2 {
        let again = client(&server)
            .create_enterprise(server.request(Role::Officer, request.clone()))
            .await
            .expect("a retry is answered with the first result")
            .into_inner();
        assert_eq!(again, first, "identical, etag and create_time included");
    }
    let events =
        audit_events_in_pages_of_two(&server, &format!("resource = \"{}\"", ent(VALID_FUJIAN)))
            .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].request_id, request_id);
    assert_eq!(audit_events_in_pages_of_two(&server, "").await.len(), 1);

    // The same for an update.
    let update_id = uuid::Uuid::new_v4().to_string();
    let change = pb::Enterprise {
        name: ent(VALID_FUJIAN),
        etag: first.etag.clone(),
        display_name: "福建幂等新名".into(),
        ..Default::default()
    };
    let updated = update(
        &server,
        Role::Officer,
        change.clone(),
        &["display_name"],
        &update_id,
    )
    .await
    .unwrap();
    let replayed = update(
        &server,
        Role::Officer,
        change,
        &["display_name"],
        &update_id,
    )
    .await
    .expect("the retry is not refused for its now-stale etag");
    assert_eq!(replayed, updated);
    assert_eq!(audit_events_in_pages_of_two(&server, "").await.len(), 2);
    let check = verify(&server, 0, "").await;
    assert!(check.intact);
    assert_eq!(check.events_checked, 2);
    server.stop().await;
}

async fn a_reused_request_id_with_a_different_request_is_invalid_argument(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    client(&server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(enterprise(VALID_FUJIAN, "福建公司")),
                request_id: request_id.clone(),
            },
        ))
        .await
        .unwrap();
    let status = client(&server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(enterprise(VALID_BEIJING, "北京公司")),
                request_id: request_id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_single_violation(&status, "request_id", "REQUEST_ID_REUSED");
    assert_not_found(
        &get(&server, Role::Officer, VALID_BEIJING)
            .await
            .unwrap_err(),
        ENTERPRISE_TYPE,
        &ent(VALID_BEIJING),
    );

    // The same id on another method is a different request too.
    let status = update(
        &server,
        Role::Officer,
        pb::Enterprise {
            name: ent(VALID_FUJIAN),
            display_name: "改名".into(),
            ..Default::default()
        },
        &["display_name"],
        &request_id,
    )
    .await
    .unwrap_err();
    assert_single_violation(&status, "request_id", "REQUEST_ID_REUSED");
    assert_eq!(
        get(&server, Role::Officer, VALID_FUJIAN)
            .await
            .unwrap()
            .display_name,
        "福建公司"
    );
    assert_eq!(audit_events_in_pages_of_two(&server, "").await.len(), 1);
    server.stop().await;
}

async fn a_non_uuid_request_id_is_invalid_argument(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    for bad in ["retry-1", "1", "6f9619ff-8b86-d011-b42d-00c04fc964fg"] {
        let status = client(&server)
            .create_enterprise(server.request(
                Role::Officer,
                pb::CreateEnterpriseRequest {
                    enterprise: Some(enterprise(VALID_FUJIAN, "福建公司")),
                    request_id: bad.into(),
                },
            ))
            .await
            .unwrap_err();
        assert_single_violation(&status, "request_id", "INVALID_REQUEST_ID");
    }
    assert!(get(&server, Role::Officer, VALID_FUJIAN).await.is_err());
    assert!(audit_events_in_pages_of_two(&server, "").await.is_empty());
    server.stop().await;
}

async fn concurrent_retries_with_one_request_id_create_once(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let request = pb::CreateEnterpriseRequest {
        enterprise: Some(enterprise(VALID_BEIJING, "北京并发公司")),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = client(&server);
        let r = server.request(Role::Officer, request.clone());
        tasks.push(tokio::spawn(async move {
            c.create_enterprise(r)
                .await
                .map(tonic::Response::into_inner)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().expect("every retry succeeds"));
    }
    assert!(results.iter().all(|r| *r == results[0]), "{results:#?}");
    assert_eq!(audit_events_in_pages_of_two(&server, "").await.len(), 1);
    assert!(verify(&server, 0, "").await.intact);
    server.stop().await;
}

async fn concurrent_updates_with_one_etag_let_exactly_one_win(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let created = create_named(&server, VALID_BEIJING, "北京公司").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut c = client(&server);
        let r = server.request(
            Role::Officer,
            pb::UpdateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    name: ent(VALID_BEIJING),
                    etag: created.etag.clone(),
                    display_name: format!("北京公司{i}"),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".into()],
                }),
                request_id: String::new(),
            },
        );
        tasks.push(tokio::spawn(async move {
            c.update_enterprise(r)
                .await
                .map(tonic::Response::into_inner)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(e) => winners.push(e),
            Err(s) => assert_eq!(s.code(), Code::Aborted, "{s:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:#?}");
    assert_eq!(
        get(&server, Role::Officer, VALID_BEIJING).await.unwrap(),
        winners[0]
    );
    assert_eq!(audit_events_in_pages_of_two(&server, "").await.len(), 2);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Authentication and authorization
// ---------------------------------------------------------------------------------------------

async fn a_call_without_a_token_is_unauthenticated(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let mut c = client(&server);
    let s = c
        .get_enterprise(pb::GetEnterpriseRequest {
            name: ent(VALID_FUJIAN),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    let s = c
        .create_enterprise(create_request(enterprise(VALID_FUJIAN, "福建公司")))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    let s = c
        .validate_uscc(pb::ValidateUsccRequest {
            uscc: VALID_FUJIAN.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    let s = c
        .verify_audit_chain(cpb::VerifyAuditChainRequest::default())
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    assert!(get(&server, Role::Admin, VALID_FUJIAN).await.is_err());
    server.stop().await;
}

async fn a_garbage_or_foreign_token_is_unauthenticated(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let mut foreign_auth = server.config.auth.clone();
    foreign_auth.hs256_secret = Some("not-the-server-secret".into());
    let foreign = mint_hs256(
        &foreign_auth,
        &TokenRequest {
            subject: "mallory".into(),
            roles: vec![Role::Admin],
            enterprise: None,
            expert: None,
            ttl_seconds: 600,
        },
    )
    .unwrap();
    let mut wrong_audience = server.config.auth.clone();
    wrong_audience.audience = "someone-else".into();
    let other_audience = mint_hs256(
        &wrong_audience,
        &TokenRequest {
            subject: "mallory".into(),
            roles: vec![Role::Admin],
            enterprise: None,
            expert: None,
            ttl_seconds: 600,
        },
    )
    .unwrap();
    let admin = server.bearer("admin", &[Role::Admin], None, None);
    let admin_token = admin.trim_start_matches("Bearer ").to_string();
    for bearer in [
        "Bearer not.a.jwt".to_string(),
        "Bearer ".to_string(),
        "garbage".to_string(),
        format!("Basic {admin_token}"),
        admin_token.clone(),
        format!("Bearer {foreign}"),
        format!("Bearer {other_audience}"),
        format!("Bearer {admin_token}x"),
    ] {
        let s = client(&server)
            .create_enterprise(with_bearer(
                create_request(enterprise(VALID_FUJIAN, "福建公司")),
                &bearer,
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::Unauthenticated, "{bearer}: {s:?}");
        assert!(
            !s.message().contains(&admin_token),
            "the token is not echoed"
        );
    }
    assert!(get(&server, Role::Admin, VALID_FUJIAN).await.is_err());
    // The proper header works.
    client(&server)
        .create_enterprise(with_bearer(
            create_request(enterprise(VALID_FUJIAN, "福建公司")),
            &admin,
        ))
        .await
        .unwrap();
    server.stop().await;
}

async fn a_role_outside_the_table_is_permission_denied(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    create_named(&server, VALID_FUJIAN, "福建公司").await;
    let mut c = client(&server);
    for role in [Role::Auditor, Role::Expert, Role::Service, Role::Enterprise] {
        let s = c
            .create_enterprise(
                server.request(role, create_request(enterprise(VALID_BEIJING, "北京公司"))),
            )
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{role}: {s:?}");
        assert_eq!(
            s.get_details_error_info().unwrap().reason,
            "PERMISSION_DENIED"
        );
    }
    let s = c
        .list_audit_events(server.request(Role::Officer, cpb::ListAuditEventsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    let s = c
        .verify_audit_chain(server.request(Role::Officer, cpb::VerifyAuditChainRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    let s = get(&server, Role::Expert, VALID_FUJIAN).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    // A token with no recognised role is refused everywhere.
    let nobody = server.bearer("nobody", &[], None, None);
    let s = c
        .validate_uscc(with_bearer(
            pb::ValidateUsccRequest {
                uscc: VALID_FUJIAN.into(),
            },
            &nobody,
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(get(&server, Role::Admin, VALID_BEIJING).await.is_err());
    assert_eq!(audit_events_in_pages_of_two(&server, "").await.len(), 1);
    server.stop().await;
}

async fn the_health_check_answers_without_a_token(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut health = HealthClient::new(server.channel.clone());
    for service in ["", qilu_proto::service_names::REGISTRY] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|s| panic!("health {service:?}: {s:?}"))
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    server.stop().await;
}

/// The RPCs this slice implements.
const IMPLEMENTED: [&str; 8] = [
    "CreateEnterprise",
    "GetEnterprise",
    "ListEnterprises",
    "UpdateEnterprise",
    "BatchGetEnterprises",
    "ValidateUscc",
    "ListAuditEvents",
    "VerifyAuditChain",
];

/// Calls `method` as `role`; an enterprise caller acts for `own`, which every call targets.
async fn call_as(
    server: &TestServer,
    method: &str,
    role: Role,
    own: &str,
    n: u32,
) -> Result<(), Status> {
    fn wrap<T>(server: &TestServer, role: Role, own: &str, message: T) -> Request<T> {
        if role == Role::Enterprise {
            server.enterprise_request(own, message)
        } else {
            server.request(role, message)
        }
    }
    let mut c = client(server);
    let name = ent(own);
    match method {
        "CreateEnterprise" => c
            .create_enterprise(wrap(
                server,
                role,
                own,
                create_request(enterprise(&shandong("3705", n), "东营公司")),
            ))
            .await
            .map(drop),
        "GetEnterprise" => c
            .get_enterprise(wrap(server, role, own, pb::GetEnterpriseRequest { name }))
            .await
            .map(drop),
        "ListEnterprises" => c
            .list_enterprises(wrap(
                server,
                role,
                own,
                pb::ListEnterprisesRequest::default(),
            ))
            .await
            .map(drop),
        "UpdateEnterprise" => c
            .update_enterprise(wrap(
                server,
                role,
                own,
                pb::UpdateEnterpriseRequest {
                    enterprise: Some(pb::Enterprise {
                        name,
                        display_name: format!("青岛公司{n}"),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".into()],
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .map(drop),
        "BatchGetEnterprises" => c
            .batch_get_enterprises(wrap(
                server,
                role,
                own,
                pb::BatchGetEnterprisesRequest { names: vec![name] },
            ))
            .await
            .map(drop),
        "ValidateUscc" => c
            .validate_uscc(wrap(
                server,
                role,
                own,
                pb::ValidateUsccRequest { uscc: own.into() },
            ))
            .await
            .map(drop),
        "ListAuditEvents" => c
            .list_audit_events(wrap(
                server,
                role,
                own,
                cpb::ListAuditEventsRequest::default(),
            ))
            .await
            .map(drop),
        "VerifyAuditChain" => c
            .verify_audit_chain(wrap(
                server,
                role,
                own,
                cpb::VerifyAuditChainRequest::default(),
            ))
            .await
            .map(drop),
        other => panic!("no call for {other}"),
    }
}

async fn every_role_is_allowed_or_refused_exactly_as_the_role_table_says(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let own = shandong("3702", 1);
    create_named(&server, &own, "青岛公司").await;
    let mut n = 100;
    let mut allowed_calls = 0;
    for method in IMPLEMENTED {
        let roles = qilu_common::server::roles_of(ROLE_TABLE, method)
            .unwrap_or_else(|| panic!("{method} is missing from the role table"));
        for role in Role::ALL {
            n += 1;
            let result = call_as(&server, method, role, &own, n).await;
            if roles.contains(&role) {
                allowed_calls += 1;
                if let Err(s) = &result {
                    assert!(
                        !matches!(s.code(), Code::PermissionDenied | Code::Unauthenticated),
                        "{method} as {role} is in the table but was refused: {s:?}"
                    );
                }
                assert!(
                    result.is_ok(),
                    "{method} as {role} should succeed: {result:?}"
                );
            } else {
                let s = result.expect_err(&format!("{method} as {role} must be refused"));
                assert_eq!(
                    s.code(),
                    Code::PermissionDenied,
                    "{method} as {role}: {s:?}"
                );
            }
        }
    }
    assert!(allowed_calls > IMPLEMENTED.len());
    let check = verify(&server, 0, "").await;
    assert!(check.intact, "{check:?}");
    server.stop().await;
}

async fn an_enterprise_token_reaches_only_its_own_enterprise(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let own = shandong("3701", 11);
    let other = shandong("3701", 12);
    create_named(&server, &own, "本企业").await;
    create_named(&server, &other, "他企业").await;
    let mut c = client(&server);

    let read = c
        .get_enterprise(
            server.enterprise_request(&own, pb::GetEnterpriseRequest { name: ent(&own) }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.uscc, own);
    // The claim is normalised like any code.
    c.get_enterprise(server.enterprise_request(
        &own.to_lowercase(),
        pb::GetEnterpriseRequest { name: ent(&own) },
    ))
    .await
    .unwrap();

    let s = c
        .get_enterprise(
            server.enterprise_request(&own, pb::GetEnterpriseRequest { name: ent(&other) }),
        )
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    // Not even whether another enterprise exists leaks.
    let s = c
        .get_enterprise(server.enterprise_request(
            &own,
            pb::GetEnterpriseRequest {
                name: ent(VALID_FUJIAN),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");

    let s = c
        .list_enterprises(server.enterprise_request(&own, pb::ListEnterprisesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    let s = c
        .batch_get_enterprises(server.enterprise_request(
            &own,
            pb::BatchGetEnterprisesRequest {
                names: vec![ent(&own)],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");

    let change = |uscc: &str| pb::UpdateEnterpriseRequest {
        enterprise: Some(pb::Enterprise {
            name: ent(uscc),
            address: "济南市高新区".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["address".into()],
        }),
        request_id: String::new(),
    };
    let s = c
        .update_enterprise(server.enterprise_request(&own, change(&other)))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    let updated = c
        .update_enterprise(server.enterprise_request(&own, change(&own)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.address, "济南市高新区");
    assert_eq!(
        get(&server, Role::Officer, &other).await.unwrap().address,
        "山东省济南市历下区"
    );

    // An enterprise token without its claim is scoped to nothing.
    let unscoped = server.bearer("enterprise-x", &[Role::Enterprise], None, None);
    let s = c
        .get_enterprise(with_bearer(
            pb::GetEnterpriseRequest { name: ent(&own) },
            &unscoped,
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------

async fn every_mutation_is_audited_once_and_the_chain_verifies(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let empty = verify(&server, 0, "").await;
    assert!(empty.intact);
    assert_eq!(empty.events_checked, 0);
    assert_eq!(empty.head_sequence, 0);

    let a = shandong("3701", 21);
    let b = fujian(22);
    let mut c = client(&server);
    c.create_enterprise(server.request(
        Role::Officer,
        create_request(enterprise(&a, "山东审计公司")),
    ))
    .await
    .unwrap();
    c.create_enterprise(
        server.request(Role::Admin, create_request(enterprise(&b, "福建审计公司"))),
    )
    .await
    .unwrap();
    let rid = uuid::Uuid::new_v4().to_string();
    let change = pb::Enterprise {
        name: ent(&a),
        display_name: "山东审计新材料公司".into(),
        technology_fields: vec![cpb::HighTechField::NewMaterials as i32],
        ..Default::default()
    };
    update(
        &server,
        Role::Officer,
        change.clone(),
        &["display_name", "technology_fields"],
        &rid,
    )
    .await
    .unwrap();
    // Nothing else changes anything: a replay, refusals and reads.
    update(
        &server,
        Role::Officer,
        change,
        &["display_name", "technology_fields"],
        &rid,
    )
    .await
    .unwrap();
    assert!(
        c.create_enterprise(server.request(Role::Officer, create_request(enterprise(&a, "重复"))))
            .await
            .is_err()
    );
    assert!(
        c.create_enterprise(server.request(
            Role::Officer,
            create_request(enterprise("91350100M000100Y4Z", "坏码"))
        ))
        .await
        .is_err()
    );
    get(&server, Role::Officer, &a).await.unwrap();

    let events = audit_events_in_pages_of_two(&server, "").await;
    assert_eq!(events.len(), 3, "{events:#?}");
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3]);
    let expected = [
        (&a, "test-officer", "officer", "CreateEnterprise"),
        (&b, "test-admin", "admin", "CreateEnterprise"),
        (&a, "test-officer", "officer", "UpdateEnterprise"),
    ];
    let mut previous = "0".repeat(64);
    for (event, (uscc, actor, role, method)) in events.iter().zip(expected) {
        assert_eq!(event.resource, ent(uscc));
        assert_eq!(event.actor, actor);
        assert_eq!(event.actor_roles, [role]);
        assert!(
            event.method.ends_with(&format!(
                "qilu.registry.v1.EnterpriseRegistryService/{method}"
            )),
            "{}",
            event.method
        );
        assert!(
            event.state_json.contains(uscc.as_str()),
            "{}",
            event.state_json
        );
        serde_json::from_str::<serde_json::Value>(&event.state_json).expect("state is JSON");
        assert!(event.commit_time.is_some());
        assert_eq!(event.previous_hash, previous);
        assert_eq!(event.hash.len(), 64);
        previous = event.hash.clone();
    }
    assert!(events[2].state_json.contains("山东审计新材料公司"));
    assert_eq!(events[2].request_id, rid);

    let for_a = audit_events_in_pages_of_two(&server, &format!("resource = \"{}\"", ent(&a))).await;
    assert_eq!(for_a.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 3]);
    let for_b = audit_events_in_pages_of_two(&server, &format!("resource = \"{}\"", ent(&b))).await;
    assert_eq!(for_b.iter().map(|e| e.sequence).collect::<Vec<_>>(), [2]);
    let by_officer = audit_events_in_pages_of_two(&server, "actor = \"test-officer\"").await;
    assert_eq!(
        by_officer.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 3]
    );
    let both = audit_events_in_pages_of_two(
        &server,
        &format!("resource = \"{}\" AND actor = \"test-admin\"", ent(&a)),
    )
    .await;
    assert!(both.is_empty());
    for bad in ["method = \"x\"", "resource : \"enterprises\"", "resource ="] {
        let s = client(&server)
            .list_audit_events(server.request(
                Role::Admin,
                cpb::ListAuditEventsRequest {
                    filter: bad.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_invalid_field(&s, "filter");
    }

    let check = verify(&server, 0, "").await;
    assert!(check.intact, "{check:?}");
    assert_eq!(check.events_checked, 3);
    assert_eq!(check.head_sequence, 3);
    assert_eq!(check.head_hash, events[2].hash);
    assert_eq!(check.first_bad_sequence, 0);
    assert!(check.problem.is_empty());
    // A witness of any earlier head agrees, in either case.
    let witnessed = verify(&server, 2, &events[1].hash.to_uppercase()).await;
    assert!(witnessed.intact, "{witnessed:?}");
    server.stop().await;
}

async fn an_audit_event_without_a_request_id_records_the_calls_x_request_id(backend: Backend) {
    // audit.proto, AuditEvent.request_id: without a `request_id` the event carries the call's
    // `x-request-id`, so it can be matched to the call's logs.
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let mut client = EnterpriseRegistryServiceClient::new(server.channel.clone());
    let mut request = server.request(
        Role::Officer,
        pb::CreateEnterpriseRequest {
            enterprise: Some(pb::Enterprise {
                uscc: VALID_FUJIAN.into(),
                display_name: "福建公司".into(),
                established_date: "2015-01-01".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        },
    );
    request
        .metadata_mut()
        .insert("x-request-id", "trace-me-42".parse().unwrap());
    let response = client.create_enterprise(request).await.unwrap();
    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-me-42")
    );
    let events = audit_events_in_pages_of_two(&server, "").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].request_id, "trace-me-42");
    assert_eq!(
        events[0].method,
        "qilu.registry.v1.EnterpriseRegistryService/CreateEnterprise"
    );
    server.stop().await;
}

async fn editing_an_audit_event_breaks_the_chain_at_that_event(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    three_mutations(&server).await;
    execute_one(
        &server,
        r#"UPDATE audit_event SET state_json = '{"uscc":"forged"}' WHERE sequence = 2"#,
    )
    .await;
    let check = verify(&server, 0, "").await;
    assert!(!check.intact, "{check:?}");
    assert_eq!(check.first_bad_sequence, 2);
    assert_eq!(check.events_checked, 1);
    assert!(!check.problem.is_empty());
    server.stop().await;
}

async fn deleting_a_middle_audit_event_breaks_the_chain(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    three_mutations(&server).await;
    execute_one(&server, "DELETE FROM audit_event WHERE sequence = 2").await;
    let check = verify(&server, 0, "").await;
    assert!(!check.intact, "{check:?}");
    assert_eq!(check.first_bad_sequence, 2);
    assert!(!check.problem.is_empty());
    server.stop().await;
}

async fn deleting_the_last_audit_event_is_caught_by_the_head(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    three_mutations(&server).await;
    execute_one(&server, "DELETE FROM audit_event WHERE sequence = 3").await;
    let check = verify(&server, 0, "").await;
    assert!(!check.intact, "{check:?}");
    assert_eq!(check.first_bad_sequence, 3);
    assert_eq!(check.head_sequence, 3);
    assert_eq!(check.events_checked, 2);
    assert!(!check.problem.is_empty());
    server.stop().await;
}

async fn a_witnessed_hash_that_does_not_match_breaks_the_chain(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    three_mutations(&server).await;
    let events = audit_events_in_pages_of_two(&server, "").await;
    assert!(verify(&server, 2, &events[1].hash).await.intact);

    let check = verify(&server, 2, &events[0].hash).await;
    assert!(!check.intact, "{check:?}");
    assert_eq!(check.first_bad_sequence, 2);

    let check = verify(&server, 2, &"0".repeat(64)).await;
    assert!(!check.intact, "{check:?}");
    assert_eq!(check.first_bad_sequence, 2);

    // A witness of an event the log does not have.
    let check = verify(&server, 9, &events[2].hash).await;
    assert!(!check.intact, "{check:?}");
    assert_eq!(check.first_bad_sequence, 9);

    let s = client(&server)
        .verify_audit_chain(server.request(
            Role::Auditor,
            cpb::VerifyAuditChainRequest {
                witnessed_sequence: -1,
                witnessed_hash: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_single_violation(&s, "witnessed_sequence", "OUT_OF_RANGE");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------

/// 120 valid Jinan codes; their display names are in a different order than their codes.
async fn create_120(server: &TestServer) -> Vec<(String, String)> {
    let mut made = Vec::new();
    for i in 0..120u32 {
        let uscc = with_check(&format!(
            "91370100MA{:07}",
            1_000_000 + (i * 7919) % 9_000_000
        ));
        let display_name = format!("济南企业{:03}号", (i * 37) % 120);
        create_named(server, &uscc, &display_name).await;
        made.push((uscc, display_name));
    }
    made
}

async fn paging_through_120_enterprises_returns_each_exactly_once(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let made = create_120(&server).await;

    let mut by_code: Vec<String> = made.iter().map(|(u, _)| u.clone()).collect();
    by_code.sort();
    let mut by_name_desc = made.clone();
    by_name_desc.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let by_name_desc: Vec<String> = by_name_desc.into_iter().map(|(u, _)| u).collect();

    for (order_by, expected) in [("", &by_code), ("display_name desc", &by_name_desc)] {
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut token = String::new();
        loop {
            let page = list(
                &server,
                pb::ListEnterprisesRequest {
                    page_size: 50,
                    page_token: token.clone(),
                    filter: String::new(),
                    order_by: order_by.into(),
                },
            )
            .await
            .unwrap();
            sizes.push(page.enterprises.len());
            seen.extend(page.enterprises.into_iter().map(|e| e.uscc));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
            assert!(sizes.len() < 10, "paging does not end");
        }
        assert_eq!(sizes, [50, 50, 20], "{order_by:?}");
        assert_eq!(&seen, expected, "{order_by:?}");
    }

    let mut desc = by_code.clone();
    desc.reverse();
    assert_eq!(list_all(&server, "", "uscc desc").await, desc);
    let mut by_name_asc = by_name_desc.clone();
    by_name_asc.reverse();
    assert_eq!(list_all(&server, "", "display_name").await, by_name_asc);

    // The default page size is 50.
    let first = list(&server, Default::default()).await.unwrap();
    assert_eq!(first.enterprises.len(), 50);
    assert!(!first.next_page_token.is_empty());
    server.stop().await;
}

async fn page_tokens_and_page_sizes_are_validated(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    for i in 0..5 {
        create_named(&server, &shandong("3701", i), &format!("济南企业{i}")).await;
    }
    let first = list(
        &server,
        pb::ListEnterprisesRequest {
            page_size: 2,
            filter: "city = \"Jinan\"".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(first.enterprises.len(), 2);
    let token = first.next_page_token;
    assert!(!token.is_empty());
    for (filter, order_by) in [
        ("city = \"Qingdao\"", ""),
        ("", ""),
        ("city = \"Jinan\"", "display_name"),
    ] {
        let s = list(
            &server,
            pb::ListEnterprisesRequest {
                page_size: 2,
                page_token: token.clone(),
                filter: filter.into(),
                order_by: order_by.into(),
            },
        )
        .await
        .unwrap_err();
        assert_single_violation(&s, "page_token", "PAGE_TOKEN_QUERY_MISMATCH");
    }
    let s = list(
        &server,
        pb::ListEnterprisesRequest {
            page_token: "not-a-token!".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_single_violation(&s, "page_token", "INVALID_PAGE_TOKEN");
    let s = list(
        &server,
        pb::ListEnterprisesRequest {
            page_size: -1,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_single_violation(&s, "page_size", "OUT_OF_RANGE");
    for bad in ["revenue", "uscc sideways", "display_name desc extra"] {
        let s = list(
            &server,
            pb::ListEnterprisesRequest {
                order_by: bad.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_single_violation(&s, "order_by", "INVALID_ORDER_BY");
    }
    // The same token with the same query continues.
    let rest = list(
        &server,
        pb::ListEnterprisesRequest {
            page_size: 10,
            page_token: token,
            filter: "city = \"Jinan\"".into(),
            order_by: String::new(),
        },
    )
    .await
    .unwrap();
    assert_eq!(rest.enterprises.len(), 3);
    assert!(rest.next_page_token.is_empty());
    // A huge page size is capped, not refused.
    let all = list(
        &server,
        pb::ListEnterprisesRequest {
            page_size: i32::MAX,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(all.enterprises.len(), 5);

    // Equal names page by USCC, never skipping or repeating one.
    let mut codes = Vec::new();
    for i in 0..5 {
        let uscc = shandong("3702", i);
        create_named(&server, &uscc, "同名公司").await;
        codes.push(uscc);
    }
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let page = list(
            &server,
            pb::ListEnterprisesRequest {
                page_size: 2,
                page_token: token,
                filter: r#"display_name:"同名""#.into(),
                order_by: "display_name desc".into(),
            },
        )
        .await
        .unwrap();
        seen.extend(page.enterprises.into_iter().map(|e| e.uscc));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    codes.reverse();
    assert_eq!(seen, codes);
    server.stop().await;
}

async fn list_filters_select_by_name_city_and_technology_field(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let materials = cpb::HighTechField::NewMaterials as i32;
    let energy = cpb::HighTechField::NewEnergyAndEnergySaving as i32;
    let jinan_h2 = shandong("3701", 1);
    let qingdao_h2 = shandong("3702", 2);
    let laiwu = shandong("3712", 3);
    let percent = fujian(4);
    let number = fujian(5);
    let underscore = fujian(6);
    for (uscc, name, fields) in [
        (&jinan_h2, "山东氢能科技有限公司", vec![energy, materials]),
        (&qingdao_h2, "青岛氢能装备有限公司", vec![energy]),
        (&laiwu, "莱芜新材料有限公司", vec![materials]),
        (&percent, "华夏100%绿电公司", vec![]),
        (&number, "华夏100号绿电公司", vec![]),
        (&underscore, "华夏_绿电公司", vec![]),
    ] {
        create(
            &server,
            pb::Enterprise {
                technology_fields: fields,
                ..enterprise(uscc, name)
            },
        )
        .await;
    }
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<String>>()
    };
    for (filter, expected) in [
        (
            r#"display_name:"氢能""#,
            sorted(vec![&jinan_h2, &qingdao_h2]),
        ),
        (r#"display_name:"100%绿""#, sorted(vec![&percent])),
        (r#"display_name:"100%""#, sorted(vec![&percent])),
        (r#"display_name:"_""#, sorted(vec![&underscore])),
        (
            r#"display_name:"华夏""#,
            sorted(vec![&percent, &number, &underscore]),
        ),
        (r#"display_name:"不存在""#, vec![]),
        (r#"city = "Jinan""#, sorted(vec![&jinan_h2, &laiwu])),
        (r#"city = "Qingdao""#, sorted(vec![&qingdao_h2])),
        (r#"city = """#, sorted(vec![&percent, &number, &underscore])),
        (
            "technology_fields = HIGH_TECH_FIELD_NEW_MATERIALS",
            sorted(vec![&jinan_h2, &laiwu]),
        ),
        (
            "technology_fields:HIGH_TECH_FIELD_NEW_ENERGY_AND_ENERGY_SAVING",
            sorted(vec![&jinan_h2, &qingdao_h2]),
        ),
        (
            r#"display_name:"氢能" AND city = "Jinan""#,
            sorted(vec![&jinan_h2]),
        ),
        ("state = ENTERPRISE_STATE_ACTIVE", {
            let mut all = vec![
                jinan_h2.clone(),
                qingdao_h2.clone(),
                laiwu.clone(),
                percent.clone(),
                number.clone(),
                underscore.clone(),
            ];
            all.sort();
            all
        }),
        ("leading = true", vec![]),
        (
            "high_tech_certified = false AND city = \"Qingdao\"",
            sorted(vec![&qingdao_h2]),
        ),
    ] {
        assert_eq!(list_all(&server, filter, "").await, expected, "{filter}");
    }
    for (bad, reason) in [
        ("revenue > 5", "UNSUPPORTED_FILTER_FIELD"),
        ("uscc = \"91350100M000100Y43\"", "UNSUPPORTED_FILTER_FIELD"),
        ("city:\"Jinan\"", "INVALID_FILTER"),
        ("technology_fields = NEW_MATERIALS", "INVALID_FILTER"),
        ("leading = maybe", "INVALID_FILTER"),
        ("city = \"Jinan", "INVALID_FILTER"),
        (
            "city = \"Jinan\" OR city = \"Qingdao\"",
            "UNSUPPORTED_FILTER",
        ),
    ] {
        let s = list(
            &server,
            pb::ListEnterprisesRequest {
                filter: bad.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_single_violation(&s, "filter", reason);
    }
    server.stop().await;
}

async fn the_name_filter_ignores_ascii_case_on_every_backend(backend: Backend) {
    // `display_name:"…"` must select the same enterprises whichever database the registry runs
    // on: a substring match that ignores case (names are searched by people), while
    // `city = "…"` compares exactly on both.
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    create_named(&server, VALID_FUJIAN, "Fujian Hydrogen Co").await;
    assert_eq!(
        list_all(&server, r#"display_name:"Hydrogen""#, "").await,
        [VALID_FUJIAN]
    );
    assert!(list_all(&server, r#"city = "jinan""#, "").await.is_empty());
    assert_eq!(
        list_all(&server, r#"display_name:"hydrogen""#, "").await,
        [VALID_FUJIAN],
        "the substring filter must ignore case on every backend"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Update, Get, BatchGet
// ---------------------------------------------------------------------------------------------

async fn update_with_mask_and_current_etag_changes_fields_and_etag(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let uscc = shandong("3701", 31);
    let created = create_named(&server, &uscc, "山东旧名公司").await;
    // An enterprise may only name a registered zone.
    client(&server)
        .create_zone(server.request(
            Role::Officer,
            pb::CreateZoneRequest {
                zone_id: "jinan-hightech".into(),
                zone: Some(pb::Zone {
                    display_name: "济南高新技术产业开发区".into(),
                    level: pb::ZoneLevel::National as i32,
                    division_code: "370100".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let updated = update(
        &server,
        Role::Officer,
        pb::Enterprise {
            name: ent(&uscc),
            etag: created.etag.clone(),
            display_name: " 山东新名公司 ".into(),
            technology_fields: vec![
                cpb::HighTechField::NewMaterials as i32,
                cpb::HighTechField::ElectronicInformation as i32,
                cpb::HighTechField::NewMaterials as i32,
            ],
            zone: "zones/jinan-hightech".into(),
            // Not in the mask: ignored.
            address: "被忽略的地址".into(),
            established_date: "1999-01-01".into(),
            uscc: VALID_FUJIAN.into(),
            ..Default::default()
        },
        &["display_name", "technology_fields", "zone"],
        "",
    )
    .await
    .unwrap();
    assert_eq!(updated.display_name, "山东新名公司");
    assert_eq!(updated.technology_fields, [1, 4]);
    assert_eq!(updated.zone, "zones/jinan-hightech");
    assert_eq!(updated.address, created.address);
    assert_eq!(updated.established_date, created.established_date);
    assert_eq!(updated.uscc, uscc);
    assert_eq!(updated.name, created.name);
    assert_eq!(updated.city, "Jinan");
    assert_eq!(updated.create_time, created.create_time);
    assert!(time_us(&updated.update_time) > time_us(&created.update_time));
    assert_ne!(updated.etag, created.etag);
    assert!(!updated.etag.is_empty());
    assert_eq!(get(&server, Role::Auditor, &uscc).await.unwrap(), updated);

    // With the new etag another update goes through, and clearing a field works.
    let again = update(
        &server,
        Role::Admin,
        pb::Enterprise {
            name: ent(&uscc),
            etag: updated.etag.clone(),
            ..Default::default()
        },
        &["zone", "technology_fields"],
        "",
    )
    .await
    .unwrap();
    assert_eq!(again.zone, "");
    assert!(again.technology_fields.is_empty());
    assert_ne!(again.etag, updated.etag);
    server.stop().await;
}

async fn an_unregistered_zone_is_refused_on_create_and_update(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let status = client(&server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    uscc: VALID_FUJIAN.into(),
                    display_name: "福建公司".into(),
                    established_date: "2015-01-01".into(),
                    zone: "zones/nowhere".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        [("enterprise.zone".to_string(), "UNKNOWN_ZONE".to_string())]
    );
    let created = create_named(&server, VALID_FUJIAN, "福建公司").await;
    let status = update(
        &server,
        Role::Officer,
        pb::Enterprise {
            name: ent(VALID_FUJIAN),
            etag: created.etag,
            zone: "zones/nowhere".into(),
            ..Default::default()
        },
        &["zone"],
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(
        violations(&status),
        [("enterprise.zone".to_string(), "UNKNOWN_ZONE".to_string())]
    );
    server.stop().await;
}

async fn update_refuses_stale_etags_bad_masks_and_missing_enterprises(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let uscc = shandong("3701", 41);
    let created = create_named(&server, &uscc, "山东公司").await;
    let current = update(
        &server,
        Role::Officer,
        pb::Enterprise {
            name: ent(&uscc),
            etag: created.etag.clone(),
            address: "新地址".into(),
            ..Default::default()
        },
        &["address"],
        "",
    )
    .await
    .unwrap();

    let change = |etag: &str, display_name: &str| pb::Enterprise {
        name: ent(&uscc),
        etag: etag.into(),
        display_name: display_name.into(),
        ..Default::default()
    };
    let s = update(
        &server,
        Role::Officer,
        change(&created.etag, "过期"),
        &["display_name"],
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");
    let s = update(
        &server,
        Role::Officer,
        change("garbage-etag", "过期"),
        &["display_name"],
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");

    for path in ["uscc", "revenue", "state", "name"] {
        let s = update(
            &server,
            Role::Officer,
            change(&current.etag, "名"),
            &["display_name", path],
            "",
        )
        .await
        .unwrap_err();
        assert_single_violation(&s, "update_mask", "FIELD_NOT_UPDATABLE");
    }
    let s = update(&server, Role::Officer, change(&current.etag, "名"), &[], "")
        .await
        .unwrap_err();
    assert_single_violation(&s, "update_mask", "REQUIRED");
    let s = update(
        &server,
        Role::Officer,
        change(&current.etag, "  "),
        &["display_name"],
        "",
    )
    .await
    .unwrap_err();
    assert_single_violation(&s, "enterprise.display_name", "REQUIRED");
    let s = update(
        &server,
        Role::Officer,
        pb::Enterprise {
            established_date: "2999-12-31".into(),
            ..change(&current.etag, "名")
        },
        &["established_date"],
        "",
    )
    .await
    .unwrap_err();
    assert_single_violation(&s, "enterprise.established_date", "IN_FUTURE");

    // Missing and malformed targets.
    let missing = shandong("3701", 42);
    let s = update(
        &server,
        Role::Officer,
        pb::Enterprise {
            name: ent(&missing),
            display_name: "无".into(),
            ..Default::default()
        },
        &["display_name"],
        "",
    )
    .await
    .unwrap_err();
    assert_not_found(&s, ENTERPRISE_TYPE, &ent(&missing));
    let s = update(
        &server,
        Role::Officer,
        pb::Enterprise {
            name: "enterprises/91350100M000100Y4Z".into(),
            display_name: "无".into(),
            ..Default::default()
        },
        &["display_name"],
        "",
    )
    .await
    .unwrap_err();
    assert_single_violation(&s, "enterprise.name", "INVALID_CHECKSUM");
    let s = client(&server)
        .update_enterprise(server.request(Role::Officer, pb::UpdateEnterpriseRequest::default()))
        .await
        .unwrap_err();
    assert_single_violation(&s, "enterprise", "REQUIRED");

    // None of the refusals changed anything or reached the audit log.
    assert_eq!(get(&server, Role::Officer, &uscc).await.unwrap(), current);
    assert_eq!(audit_events_in_pages_of_two(&server, "").await.len(), 2);
    assert!(verify(&server, 0, "").await.intact);
    server.stop().await;
}

async fn get_of_a_missing_or_malformed_name_is_not_found_or_invalid(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let s = get(&server, Role::Officer, VALID_FUJIAN).await.unwrap_err();
    assert_not_found(&s, ENTERPRISE_TYPE, &ent(VALID_FUJIAN));
    assert_eq!(
        s.get_details_error_info().unwrap().reason,
        "RESOURCE_NOT_FOUND"
    );
    // A lower-case name is normalised and found as missing under its canonical name.
    let s = client(&server)
        .get_enterprise(server.request(
            Role::Officer,
            pb::GetEnterpriseRequest {
                name: ent(&VALID_BEIJING.to_lowercase()),
            },
        ))
        .await
        .unwrap_err();
    assert_not_found(&s, ENTERPRISE_TYPE, &ent(VALID_BEIJING));

    for (bad, reason) in [
        (VALID_FUJIAN.to_string(), "INVALID_RESOURCE_NAME"),
        (String::new(), "INVALID_RESOURCE_NAME"),
        (format!("zones/{VALID_FUJIAN}"), "INVALID_RESOURCE_NAME"),
        ("enterprises/".to_string(), "REQUIRED"),
        (
            "enterprises/91350100M000100Y4Z".to_string(),
            "INVALID_CHECKSUM",
        ),
        ("enterprises/山东氢能".to_string(), "INVALID_FORMAT"),
    ] {
        let s = client(&server)
            .get_enterprise(server.request(
                Role::Officer,
                pb::GetEnterpriseRequest { name: bad.clone() },
            ))
            .await
            .expect_err(&bad);
        assert_single_violation(&s, "name", reason);
    }
    server.stop().await;
}

async fn batch_get_returns_enterprises_in_request_order(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let a = shandong("3701", 51);
    let b = shandong("3702", 52);
    let c = fujian(53);
    for (u, n) in [(&a, "甲"), (&b, "乙"), (&c, "丙")] {
        create_named(&server, u, n).await;
    }
    let batch = |names: Vec<String>| {
        let server = &server;
        async move {
            client(server)
                .batch_get_enterprises(
                    server.request(Role::Service, pb::BatchGetEnterprisesRequest { names }),
                )
                .await
                .map(|r| {
                    r.into_inner()
                        .enterprises
                        .into_iter()
                        .map(|e| e.uscc)
                        .collect::<Vec<_>>()
                })
        }
    };
    assert_eq!(
        batch(vec![ent(&c), ent(&a), ent(&b), ent(&a)])
            .await
            .unwrap(),
        [c.clone(), a.clone(), b.clone(), a.clone()]
    );
    assert_eq!(
        batch(vec![ent(&b), ent(&c)]).await.unwrap(),
        [b.clone(), c.clone()]
    );
    assert!(batch(vec![]).await.unwrap().is_empty());

    let missing = fujian(54);
    let s = batch(vec![ent(&a), ent(&missing)]).await.unwrap_err();
    assert_not_found(&s, ENTERPRISE_TYPE, &ent(&missing));
    let s = batch(vec![ent(&a), "enterprises/91350100M000100Y4Z".into()])
        .await
        .unwrap_err();
    assert_single_violation(&s, "names[1]", "INVALID_CHECKSUM");
    let s = batch(vec![ent(&a); 1001]).await.unwrap_err();
    assert_single_violation(&s, "names", "TOO_MANY");
    server.stop().await;
}

async fn the_role_table_is_checked_before_any_handler(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let mut c = client(&server);
    // An auditor may not create a zone: refused before the request is even parsed.
    let s = c
        .create_zone(server.request(Role::Auditor, pb::CreateZoneRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    // The server is still up.
    create_named(&server, VALID_FUJIAN, "福建公司").await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The role table against the contract (no database needed)
// ---------------------------------------------------------------------------------------------

mod contract {
    use std::collections::BTreeSet;

    use prost::Message;
    use qilu_common::auth::Role;
    use qilu_registry::roles::ROLE_TABLE;

    fn contract_methods() -> BTreeSet<String> {
        let set = prost_types::FileDescriptorSet::decode(qilu_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let services: Vec<_> = set
            .file
            .iter()
            .filter(|f| f.package() == "qilu.registry.v1")
            .flat_map(|f| f.service.iter())
            .filter(|s| s.name() == "EnterpriseRegistryService")
            .collect();
        assert_eq!(services.len(), 1, "exactly one EnterpriseRegistryService");
        assert_eq!(
            format!("qilu.registry.v1.{}", services[0].name()),
            qilu_proto::service_names::REGISTRY
        );
        services[0]
            .method
            .iter()
            .map(|m| m.name().to_string())
            .collect()
    }

    #[test]
    fn the_role_table_lists_exactly_the_rpcs_of_the_contract() {
        let contract = contract_methods();
        let table: BTreeSet<String> = ROLE_TABLE.iter().map(|m| m.method.to_string()).collect();
        assert_eq!(table.len(), ROLE_TABLE.len(), "no method is listed twice");
        let missing: Vec<_> = contract.difference(&table).collect();
        let extra: Vec<_> = table.difference(&contract).collect();
        assert!(missing.is_empty(), "RPCs without roles: {missing:?}");
        assert!(
            extra.is_empty(),
            "roles for RPCs the contract lacks: {extra:?}"
        );
        for row in ROLE_TABLE {
            assert!(!row.roles.is_empty(), "{} allows nobody", row.method);
        }
        for method in super::IMPLEMENTED {
            assert!(contract.contains(method), "{method}");
        }
    }

    #[test]
    fn audit_methods_are_for_admin_and_auditor_only() {
        for method in ["ListAuditEvents", "VerifyAuditChain"] {
            let roles = qilu_common::server::roles_of(ROLE_TABLE, method).unwrap();
            let roles: BTreeSet<Role> = roles.iter().copied().collect();
            assert_eq!(
                roles,
                BTreeSet::from([Role::Admin, Role::Auditor]),
                "{method}"
            );
        }
    }
}
