//! Integration tests of leading cohorts, the candidate ranking and support policies, as a caller
//! sees them: the real server on an ephemeral port over a fresh SQLite file and a fresh
//! PostgreSQL database (`sqlite::…` and `postgres::…`).
//!
//! Set-up that belongs to other parts of the registry (a high-tech certificate, annual figures,
//! a policy target, a revoked enterprise) is written straight through the registry's store on
//! the test's own database connection, so these tests depend only on the leading RPCs.

use std::collections::BTreeMap;

use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_registry::Registry;
use qilu_registry::domain::enterprise::EnterpriseState;
use qilu_registry::domain::figures::{AnnualFigures, FigureKind, Reported};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::{
    ENTERPRISE_TYPE, assert_not_found, audit_events_of, client, ent, get_enterprise, shandong,
    violations,
};

on_both_backends!(
    the_cohort_is_ranked_ten_are_selected_each_with_one_policy_and_a_second_is_refused,
    cohorts_take_their_target_from_policy_data_and_list_by_year,
    ranking_marks_missing_figures_breaks_ties_by_uscc_and_filters,
    selection_stops_at_the_target_and_refuses_the_ineligible,
    deselection_ends_the_policy_and_reselection_restores_it,
    leading_follows_the_latest_cohort,
    support_policies_update_with_mask_and_etag_and_reviews_only_append,
    create_support_policy_reports_every_bad_field_with_its_path,
    enterprise_tokens_see_only_their_own_policy_and_membership,
    repeated_request_ids_change_nothing_twice,
    the_status_methods_can_end_an_enterprises_active_policies,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn member(year: i32, uscc: &str) -> String {
    format!("leadingCohorts/{year}/members/{uscc}")
}

fn policy(uscc: &str, year: i32) -> String {
    format!("enterprises/{uscc}/supportPolicies/{year}")
}

/// Creates an ACTIVE enterprise in a green category with a green technology field.
pub(crate) async fn create_enterprise(server: &TestServer, uscc: &str, name: &str, green: i32) {
    client(server)
        .create_enterprise(server.request(
            Role::Officer,
            pb::CreateEnterpriseRequest {
                enterprise: Some(pb::Enterprise {
                    uscc: uscc.into(),
                    display_name: name.into(),
                    legal_representative: "张三".into(),
                    established_date: "2010-05-04".into(),
                    address: "山东省济南市".into(),
                    technology_fields: vec![6],
                    green_category: green,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create {uscc}: {s:?}"));
}

/// Sets what certification and status changes own (not this part's RPCs).
pub(crate) async fn set_enterprise(
    server: &TestServer,
    uscc: &str,
    certified: bool,
    state: EnterpriseState,
) {
    use qilu_registry::store::enterprise as store;
    let current = store::get(&server.db, uscc)
        .await
        .unwrap()
        .unwrap()
        .into_domain()
        .unwrap();
    let mut e = current.clone();
    e.high_tech_certified = certified;
    e.state = state;
    e.version += 1;
    assert!(
        store::update_if_version(&server.db, &e, current.version)
            .await
            .unwrap()
    );
}

/// Records annual figures for `year` (what UpdateAnnualFigures owns).
pub(crate) async fn set_figures(
    server: &TestServer,
    uscc: &str,
    year: i32,
    values: &[(FigureKind, i64)],
) {
    let figures = AnnualFigures {
        uscc: uscc.into(),
        year,
        figures: values
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    Reported {
                        value: *v,
                        source: 2,
                        reference: "鲁审字〔2024〕1号".into(),
                        update_time_us: 1,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
        create_time_us: 1,
        update_time_us: 1,
        version: 1,
    };
    let kinds: Vec<FigureKind> = values.iter().map(|(k, _)| *k).collect();
    qilu_registry::store::figures::write(&server.db, &figures, &kinds)
        .await
        .unwrap();
}

/// An eligible enterprise with full figures for `year` and revenue for the year before.
/// `rd_permille` is R&D per thousand of revenue.
pub(crate) async fn eligible(
    server: &TestServer,
    uscc: &str,
    name: &str,
    year: i32,
    rd_permille: i64,
) {
    create_enterprise(server, uscc, name, 3).await;
    set_enterprise(server, uscc, true, EnterpriseState::Active).await;
    let revenue = 50_000_000_000; // 500 M yuan
    set_figures(
        server,
        uscc,
        year,
        &[
            (FigureKind::RevenueFen, revenue),
            (FigureKind::RdExpenseFen, revenue * rd_permille / 1000),
            (FigureKind::InventionPatents, 10),
            (FigureKind::HighTechProductRevenueFen, revenue * 8 / 10),
        ],
    )
    .await;
    set_figures(
        server,
        uscc,
        year - 1,
        &[(FigureKind::RevenueFen, 40_000_000_000)],
    )
    .await;
}

/// A LEADING_COHORT_SIZE target of `value` from `from_year` (what CreatePolicyTarget owns).
async fn set_cohort_target(server: &TestServer, id: &str, value: i64, from_year: i32) {
    qilu_registry::store::policy::insert(
        &server.db,
        qilu_registry::store::policy::Model {
            id: id.into(),
            kind: qilu_registry::store::policy::kind::LEADING_COHORT_SIZE,
            value,
            effective_from_year: from_year,
            effective_to_year: 0,
            target_year: 0,
            source: "test".into(),
            source_date: "2024-01-01".into(),
            note: String::new(),
            supersedes: String::new(),
            superseded_by: String::new(),
            create_time_us: 1,
            update_time_us: 1,
            version: 1,
        },
    )
    .await
    .unwrap();
}

pub(crate) async fn create_cohort(server: &TestServer, year: i32) -> pb::LeadingCohort {
    client(server)
        .create_leading_cohort(server.request(
            Role::Admin,
            pb::CreateLeadingCohortRequest {
                leading_cohort: Some(pb::LeadingCohort {
                    year,
                    description: format!("{year}年绿色低碳领军企业"),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create cohort {year}: {s:?}"))
        .into_inner()
}

async fn get_cohort(server: &TestServer, year: i32) -> pb::LeadingCohort {
    client(server)
        .get_leading_cohort(server.request(
            Role::Officer,
            pb::GetLeadingCohortRequest {
                name: format!("leadingCohorts/{year}"),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

pub(crate) fn select_request(year: i32, uscc: &str) -> pb::SelectLeadingEnterpriseRequest {
    pb::SelectLeadingEnterpriseRequest {
        cohort: format!("leadingCohorts/{year}"),
        enterprise: ent(uscc),
        reason: "排名靠前，掌握核心技术".into(),
        request_id: String::new(),
    }
}

pub(crate) async fn select(
    server: &TestServer,
    year: i32,
    uscc: &str,
) -> Result<pb::LeadingCohortMember, Status> {
    client(server)
        .select_leading_enterprise(server.request(Role::Admin, select_request(year, uscc)))
        .await
        .map(tonic::Response::into_inner)
}

async fn rank(
    server: &TestServer,
    year: i32,
    filter: &str,
    page_size: i32,
    page_token: &str,
) -> Result<pb::RankLeadingCandidatesResponse, Status> {
    client(server)
        .rank_leading_candidates(server.request(
            Role::Officer,
            pb::RankLeadingCandidatesRequest {
                cohort: format!("leadingCohorts/{year}"),
                figures_year: 0,
                page_size,
                page_token: page_token.into(),
                filter: filter.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Every candidate matching `filter`, following page tokens.
async fn rank_all(server: &TestServer, year: i32, filter: &str) -> Vec<pb::LeadingCandidate> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = rank(server, year, filter, 3, &token).await.unwrap();
        out.extend(page.candidates);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

pub(crate) fn milestones() -> Vec<pb::Milestone> {
    vec![
        pb::Milestone {
            milestone_id: "rd-center".into(),
            title: "建成省级工程技术研究中心".into(),
            due_date: "2099-06-30".into(),
            state: pb::MilestoneState::Planned as i32,
            ..Default::default()
        },
        pb::Milestone {
            milestone_id: "pilot-line".into(),
            title: "氢能中试线投产".into(),
            due_date: "2099-12-31".into(),
            state: pb::MilestoneState::InProgress as i32,
            note: "设备已到货".into(),
            ..Default::default()
        },
    ]
}

pub(crate) fn policy_input(year: i32, uscc: &str) -> pb::SupportPolicy {
    pb::SupportPolicy {
        member: member(year, uscc),
        title: "一企一策：氢能装备".into(),
        summary: "支持企业建设研发平台\n并扩大产能".into(),
        measures: vec![
            pb::SupportMeasure {
                kind: pb::MeasureKind::Funding as i32,
                description: "省级科技计划项目资金".into(),
                amount_fen: 500_000_000,
                provider: "省科技厅".into(),
            },
            pb::SupportMeasure {
                kind: pb::MeasureKind::Talent as i32,
                description: "引进高层次人才".into(),
                amount_fen: 0,
                provider: String::new(),
            },
        ],
        responsible_officer: "officer-1".into(),
        responsible_officer_name: "李四".into(),
        milestones: milestones(),
        ..Default::default()
    }
}

pub(crate) fn create_policy_request(year: i32, uscc: &str) -> pb::CreateSupportPolicyRequest {
    pb::CreateSupportPolicyRequest {
        parent: ent(uscc),
        support_policy: Some(policy_input(year, uscc)),
        request_id: String::new(),
    }
}

pub(crate) async fn create_policy(
    server: &TestServer,
    year: i32,
    uscc: &str,
) -> Result<pb::SupportPolicy, Status> {
    client(server)
        .create_support_policy(server.request(Role::Officer, create_policy_request(year, uscc)))
        .await
        .map(tonic::Response::into_inner)
}

async fn get_policy(server: &TestServer, uscc: &str, year: i32) -> pb::SupportPolicy {
    client(server)
        .get_support_policy(server.request(
            Role::Officer,
            pb::GetSupportPolicyRequest {
                name: policy(uscc, year),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

#[track_caller]
fn assert_invalid(status: &Status, field: &str, reason: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        violations(status)
            .iter()
            .any(|(f, r)| f == field && r == reason),
        "expected {field} {reason}: {:?}",
        violations(status)
    );
}

/// FAILED_PRECONDITION with a PreconditionFailure of `kind` about `subject`.
#[track_caller]
fn assert_precondition(status: &Status, kind: &str, subject: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let pf = status
        .get_details_precondition_failure()
        .expect("PreconditionFailure");
    assert!(
        pf.violations
            .iter()
            .any(|v| v.r#type == kind && v.subject == subject),
        "expected {kind} on {subject}: {pf:?}"
    );
}

async fn assert_chain_intact(server: &TestServer) {
    let check = client(server)
        .verify_audit_chain(server.request(
            Role::Auditor,
            cpb::VerifyAuditChainRequest {
                witnessed_sequence: 0,
                witnessed_hash: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(check.intact, "{check:?}");
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// docs/design.md §9 step 3.
async fn the_cohort_is_ranked_ten_are_selected_each_with_one_policy_and_a_second_is_refused(
    backend: Backend,
) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    // Twelve eligible enterprises, R&D from 3.5% to 9.0% of revenue, and one not certified.
    let mut codes = Vec::new();
    for i in 0..12u32 {
        let code = shandong(if i % 2 == 0 { "3701" } else { "3702" }, 100 + i);
        eligible(
            &server,
            &code,
            &format!("领军候选{i}"),
            2023,
            35 + i64::from(i) * 5,
        )
        .await;
        codes.push(code);
    }
    let uncertified = shandong("3701", 999);
    create_enterprise(&server, &uncertified, "未认定企业", 3).await;

    let cohort = create_cohort(&server, 2024).await;
    assert_eq!(cohort.name, "leadingCohorts/2024");
    assert_eq!(cohort.target_size, 200);
    assert_eq!(cohort.target_policy, "policyTargets/leading-cohort-2021");
    assert_eq!((cohort.selected_count, cohort.with_policy_count), (0, 0));

    // The ranking: highest R&D first, every component recomputable, pages cover each once.
    let first = rank(&server, 2024, "", 50, "").await.unwrap();
    assert_eq!(first.total_size, 12);
    assert_eq!(first.figures_year, 2023);
    assert!(first.scoring_method.contains("rd_intensity"));
    let ranked = rank_all(&server, 2024, "").await;
    assert_eq!(ranked, first.candidates);
    let order: Vec<String> = ranked
        .iter()
        .map(|c| c.enterprise.trim_start_matches("enterprises/").to_string())
        .collect();
    let mut expected = codes.clone();
    expected.reverse();
    assert_eq!(order, expected);
    for (i, c) in ranked.iter().enumerate() {
        assert_eq!(c.rank, i as i32 + 1);
        assert!(c.eligible && !c.selected);
        let weights: i32 = c.components.iter().map(|x| x.weight_basis_points).sum();
        assert_eq!(weights, 10_000);
        let sum: i64 = c
            .components
            .iter()
            .map(|x| x.contribution_millipoints)
            .sum();
        assert_eq!(c.score_millipoints, sum);
        for x in &c.components {
            assert_eq!(
                x.contribution_millipoints,
                x.points_millipoints * i64::from(x.weight_basis_points) / 10_000
            );
            assert!(!x.missing_data, "{x:?}");
        }
        let growth = c
            .components
            .iter()
            .find(|x| x.component == "revenue_growth")
            .unwrap();
        assert_eq!(growth.figures_used.len(), 2);
        assert_eq!(growth.figures_used[0].year, 2023);
        assert_eq!(growth.figures_used[1].year, 2022);
        assert!(
            growth.figures_used[0]
                .source
                .starts_with("AUDITED_STATEMENT"),
            "{:?}",
            growth.figures_used[0]
        );
    }
    assert!(
        ranked
            .windows(2)
            .all(|w| w[0].score_millipoints >= w[1].score_millipoints)
    );

    // Ten are selected, top down.
    for code in &order[..10] {
        let m = select(&server, 2024, code).await.unwrap();
        assert_eq!(m.state, pb::MemberState::Selected as i32);
        assert_eq!(m.name, member(2024, code));
        assert_eq!(m.selected_by, "test-admin");
        assert!(m.ranking_at_selection.as_ref().unwrap().rank >= 1);
        assert!(get_enterprise(&server, code).await.leading);
    }
    assert!(!get_enterprise(&server, &order[10]).await.leading);
    let cohort = get_cohort(&server, 2024).await;
    assert_eq!((cohort.selected_count, cohort.with_policy_count), (10, 0));
    let left = rank(&server, 2024, "selected = false", 50, "")
        .await
        .unwrap();
    assert_eq!(left.total_size, 2);

    // Each gets its one support policy with milestones.
    for code in &order[..10] {
        let p = create_policy(&server, 2024, code).await.unwrap();
        assert_eq!(p.name, policy(code, 2024));
        assert_eq!(p.state, pb::SupportPolicyState::Active as i32);
        assert_eq!(p.milestones.len(), 2);
        assert_eq!(p.milestones[1].state, pb::MilestoneState::InProgress as i32);
        assert_eq!(p.measures[0].amount_fen, 500_000_000);
        assert!(!p.etag.is_empty());
    }
    let cohort = get_cohort(&server, 2024).await;
    assert_eq!((cohort.selected_count, cohort.with_policy_count), (10, 10));
    let m = client(&server)
        .get_leading_cohort_member(server.request(
            Role::Officer,
            pb::GetLeadingCohortMemberRequest {
                name: member(2024, &order[0]),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.support_policy, policy(&order[0], 2024));

    // A second policy for the same enterprise is refused, naming the existing one.
    let s = create_policy(&server, 2024, &order[0]).await.unwrap_err();
    assert_precondition(&s, "ONE_POLICY_PER_ENTERPRISE", &policy(&order[0], 2024));
    // One for an enterprise that was not selected is refused too.
    let s = create_policy(&server, 2024, &order[10]).await.unwrap_err();
    assert_precondition(&s, "MEMBER_NOT_SELECTED", &member(2024, &order[10]));

    // Lists.
    let members = client(&server)
        .list_leading_cohort_members(server.request(
            Role::Auditor,
            pb::ListLeadingCohortMembersRequest {
                parent: "leadingCohorts/2024".into(),
                page_size: 4,
                page_token: String::new(),
                filter: "state = MEMBER_STATE_SELECTED AND has_support_policy = true".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members.members.len(), 4);
    assert!(!members.next_page_token.is_empty());
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = client(&server)
            .list_support_policies(server.request(
                Role::Officer,
                pb::ListSupportPoliciesRequest {
                    parent: "enterprises/-".into(),
                    page_size: 3,
                    page_token: token,
                    filter: "year = 2024 AND state = SUPPORT_POLICY_STATE_ACTIVE AND responsible_officer = \"officer-1\"".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        all.extend(page.support_policies.into_iter().map(|p| p.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut want: Vec<String> = order[..10].iter().map(|c| policy(c, 2024)).collect();
    want.sort();
    assert_eq!(all, want);

    // Every mutation is audited.
    assert_eq!(
        audit_events_of(&server, "leadingCohorts/2024").await.len(),
        11
    );
    assert_eq!(
        audit_events_of(&server, &member(2024, &order[0]))
            .await
            .len(),
        2
    );
    assert_eq!(
        audit_events_of(&server, &policy(&order[0], 2024))
            .await
            .len(),
        1
    );
    let enterprise_events = audit_events_of(&server, &ent(&order[0])).await;
    assert_eq!(enterprise_events.len(), 2, "created, then marked leading");
    assert!(enterprise_events[1].state_json.contains("\"leading\":true"));
    assert_chain_intact(&server).await;
    server.stop().await;
}

async fn cohorts_take_their_target_from_policy_data_and_list_by_year(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    // No target is in force before 2021.
    let early = create_cohort(&server, 2020).await;
    assert_eq!((early.target_size, early.target_policy.as_str()), (0, ""));
    // A later target replaces the seeded one from its first year, resolved when read.
    set_cohort_target(&server, "leading-cohort-2026", 250, 2026).await;
    create_cohort(&server, 2023).await;
    let later = create_cohort(&server, 2026).await;
    assert_eq!(later.target_size, 250);
    assert_eq!(later.target_policy, "policyTargets/leading-cohort-2026");
    assert_eq!(get_cohort(&server, 2023).await.target_size, 200);

    let mut c = client(&server);
    let s = c
        .create_leading_cohort(server.request(
            Role::Admin,
            pb::CreateLeadingCohortRequest {
                leading_cohort: Some(pb::LeadingCohort {
                    year: 2023,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::AlreadyExists, "{s:?}");
    for (year, reason) in [(0, "REQUIRED"), (123, "OUT_OF_RANGE")] {
        let s = c
            .create_leading_cohort(server.request(
                Role::Admin,
                pb::CreateLeadingCohortRequest {
                    leading_cohort: Some(pb::LeadingCohort {
                        year,
                        description: "x".repeat(2001),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap_err();
        assert_invalid(&s, "leading_cohort.year", reason);
        assert_invalid(&s, "leading_cohort.description", "TOO_LONG");
    }
    let s = c
        .create_leading_cohort(
            server.request(Role::Admin, pb::CreateLeadingCohortRequest::default()),
        )
        .await
        .unwrap_err();
    assert_invalid(&s, "leading_cohort", "REQUIRED");
    let s = c
        .create_leading_cohort(
            server.request(Role::Officer, pb::CreateLeadingCohortRequest::default()),
        )
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);

    let s = c
        .get_leading_cohort(server.request(
            Role::Officer,
            pb::GetLeadingCohortRequest {
                name: "leadingCohorts/2030".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_not_found(
        &s,
        "registry.qilu.gov.cn/LeadingCohort",
        "leadingCohorts/2030",
    );
    let s = c
        .get_leading_cohort(server.request(
            Role::Officer,
            pb::GetLeadingCohortRequest {
                name: "cohorts/2030".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&s, "name", "INVALID_RESOURCE_NAME");

    // Listing: ascending years, filtered, one per page.
    let mut years = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_leading_cohorts(server.request(
                Role::Service,
                pb::ListLeadingCohortsRequest {
                    page_size: 1,
                    page_token: token,
                    filter: "year >= 2021".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        years.extend(page.leading_cohorts.iter().map(|c| c.year));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(years, [2023, 2026]);
    for bad in ["year = soon", "colour = red", "year : 2021"] {
        let s = c
            .list_leading_cohorts(server.request(
                Role::Officer,
                pb::ListLeadingCohortsRequest {
                    filter: bad.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{bad}: {s:?}");
    }
    assert_eq!(
        audit_events_of(&server, "leadingCohorts/2026").await.len(),
        1
    );
    assert_chain_intact(&server).await;
    server.stop().await;
}

async fn ranking_marks_missing_figures_breaks_ties_by_uscc_and_filters(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    // Two with the same figures (a tie), one with no figures, one not green and not certified.
    let a = shandong("3702", 1);
    let b = shandong("3701", 2);
    let bare = shandong("3701", 3);
    let grey = shandong("3701", 4);
    eligible(&server, &a, "甲", 2023, 60).await;
    eligible(&server, &b, "乙", 2023, 60).await;
    create_enterprise(&server, &bare, "丙", 1).await;
    set_enterprise(&server, &bare, true, EnterpriseState::Active).await;
    create_enterprise(&server, &grey, "丁", 0).await;
    create_cohort(&server, 2024).await;

    let ranked = rank_all(&server, 2024, "").await;
    let order: Vec<(&str, i32)> = ranked
        .iter()
        .map(|c| (c.enterprise.as_str(), c.rank))
        .collect();
    let (first, second) = if a < b { (&a, &b) } else { (&b, &a) };
    assert_eq!(
        order,
        [
            (ent(first).as_str(), 1),
            (ent(second).as_str(), 2),
            (ent(&bare).as_str(), 3)
        ]
    );
    assert_eq!(ranked[0].score_millipoints, ranked[1].score_millipoints);
    let missing: Vec<&str> = ranked[2]
        .components
        .iter()
        .filter(|x| x.missing_data)
        .map(|x| x.component.as_str())
        .collect();
    assert_eq!(
        missing,
        [
            "rd_intensity",
            "invention_patents",
            "revenue_scale",
            "revenue_growth",
            "high_tech_product_share"
        ]
    );
    assert!(
        ranked[2]
            .components
            .iter()
            .all(|x| !x.missing_data || x.points_millipoints == 0)
    );

    // Filters.
    let ineligible = rank(&server, 2024, "eligible = false", 50, "")
        .await
        .unwrap();
    assert_eq!(ineligible.total_size, 1);
    let g = &ineligible.candidates[0];
    assert_eq!(
        (g.enterprise.as_str(), g.rank, g.eligible),
        (ent(&grey).as_str(), 0, false)
    );
    assert_eq!(g.ineligibility_reasons.len(), 2, "{g:?}");
    let qingdao = rank(&server, 2024, "city = \"Qingdao\"", 50, "")
        .await
        .unwrap();
    assert_eq!(qingdao.total_size, 1);
    assert_eq!(qingdao.candidates[0].enterprise, ent(&a));
    assert_eq!(
        qingdao.candidates[0].rank,
        order.iter().position(|(e, _)| *e == ent(&a)).unwrap() as i32 + 1
    );
    let energy = rank(
        &server,
        2024,
        "green_category = GREEN_CATEGORY_ENERGY_SAVING_AND_ENVIRONMENTAL_PROTECTION",
        50,
        "",
    )
    .await
    .unwrap();
    assert_eq!(energy.candidates.len(), 1);
    assert_eq!(energy.candidates[0].enterprise, ent(&bare));

    // Another fiscal year: nothing reported for 2020, so every figure component is missing.
    let other = client(&server)
        .rank_leading_candidates(server.request(
            Role::Auditor,
            pb::RankLeadingCandidatesRequest {
                cohort: "leadingCohorts/2024".into(),
                figures_year: 2020,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(other.figures_year, 2020);
    assert!(
        other
            .candidates
            .iter()
            .all(|c| c.score_millipoints == 10_000)
    );

    // Bad requests.
    for (filter, field) in [
        ("revenue > 5", "filter"),
        ("selected = maybe", "filter"),
        ("green_category = GREEN", "filter"),
    ] {
        let s = rank(&server, 2024, filter, 50, "").await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{filter}");
        assert!(violations(&s).iter().any(|(f, _)| f == field));
    }
    let s = rank(&server, 2024, "", -1, "").await.unwrap_err();
    assert_invalid(&s, "page_size", "OUT_OF_RANGE");
    let page = rank(&server, 2024, "", 1, "").await.unwrap();
    let s = rank(&server, 2024, "eligible = false", 1, &page.next_page_token)
        .await
        .unwrap_err();
    assert_invalid(&s, "page_token", "PAGE_TOKEN_QUERY_MISMATCH");
    let s = rank(&server, 2031, "", 1, "").await.unwrap_err();
    assert_not_found(
        &s,
        "registry.qilu.gov.cn/LeadingCohort",
        "leadingCohorts/2031",
    );
    let s = client(&server)
        .rank_leading_candidates(server.request(
            Role::Officer,
            pb::RankLeadingCandidatesRequest {
                cohort: "leadingCohorts/24".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&s, "cohort", "INVALID_RESOURCE_NAME");
    let s = client(&server)
        .rank_leading_candidates(server.request(
            Role::Service,
            pb::RankLeadingCandidatesRequest {
                cohort: "leadingCohorts/2024".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    server.stop().await;
}

async fn selection_stops_at_the_target_and_refuses_the_ineligible(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    set_cohort_target(&server, "leading-cohort-2030", 2, 2030).await;
    let codes: Vec<String> = (0..3).map(|i| shandong("3703", 10 + i)).collect();
    for (i, code) in codes.iter().enumerate() {
        eligible(&server, code, &format!("淄博{i}"), 2029, 50).await;
    }
    create_cohort(&server, 2030).await;
    select(&server, 2030, &codes[0]).await.unwrap();
    select(&server, 2030, &codes[1]).await.unwrap();
    let s = select(&server, 2030, &codes[2]).await.unwrap_err();
    assert_precondition(&s, "COHORT_FULL", "leadingCohorts/2030");
    let s = select(&server, 2030, &codes[0]).await.unwrap_err();
    assert_precondition(&s, "ALREADY_SELECTED", &member(2030, &codes[0]));
    assert!(!get_enterprise(&server, &codes[2]).await.leading);

    // No target in force: the cohort's size is 0.
    create_cohort(&server, 2019).await;
    let s = select(&server, 2019, &codes[2]).await.unwrap_err();
    assert_precondition(&s, "NO_COHORT_TARGET", "leadingCohorts/2019");

    // Not certified, not ACTIVE, not green.
    create_cohort(&server, 2031).await;
    let plain = shandong("3703", 50);
    create_enterprise(&server, &plain, "普通企业", 0).await;
    let s = select(&server, 2031, &plain).await.unwrap_err();
    assert_precondition(&s, "NOT_ELIGIBLE", &ent(&plain));
    set_enterprise(&server, &codes[2], true, EnterpriseState::Revoked).await;
    let s = select(&server, 2031, &codes[2]).await.unwrap_err();
    assert_precondition(&s, "NOT_ELIGIBLE", &ent(&codes[2]));
    assert!(s.message().contains("REVOKED"), "{s:?}");

    // Missing things and bad input.
    let missing = shandong("3703", 77);
    let s = select(&server, 2031, &missing).await.unwrap_err();
    assert_not_found(&s, ENTERPRISE_TYPE, &ent(&missing));
    let s = select(&server, 2040, &codes[0]).await.unwrap_err();
    assert_not_found(
        &s,
        "registry.qilu.gov.cn/LeadingCohort",
        "leadingCohorts/2040",
    );
    let s = client(&server)
        .select_leading_enterprise(server.request(
            Role::Admin,
            pb::SelectLeadingEnterpriseRequest {
                cohort: "leadingCohorts/x".into(),
                enterprise: "enterprises/91350100M000100Y4Z".into(),
                reason: "  ".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&s, "cohort", "INVALID_RESOURCE_NAME");
    assert_invalid(&s, "enterprise", "INVALID_CHECKSUM");
    assert_invalid(&s, "reason", "REQUIRED");
    let s = client(&server)
        .select_leading_enterprise(server.request(Role::Officer, select_request(2031, &codes[0])))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    assert_chain_intact(&server).await;
    server.stop().await;
}

async fn deselection_ends_the_policy_and_reselection_restores_it(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = shandong("3706", 1);
    eligible(&server, &code, "烟台企业", 2023, 70).await;
    create_cohort(&server, 2024).await;
    let selected = select(&server, 2024, &code).await.unwrap();
    create_policy(&server, 2024, &code).await.unwrap();
    assert!(get_enterprise(&server, &code).await.leading);

    let deselect = |etag: String, reason: &str| pb::DeselectLeadingEnterpriseRequest {
        name: member(2024, &code),
        reason: reason.into(),
        etag,
        request_id: String::new(),
    };
    let mut c = client(&server);
    // The etag read at selection went stale when the policy was attached.
    let s = c
        .deselect_leading_enterprise(
            server.request(Role::Admin, deselect(selected.etag.clone(), "违规")),
        )
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");
    let s = c
        .deselect_leading_enterprise(server.request(Role::Admin, deselect(String::new(), "")))
        .await
        .unwrap_err();
    assert_invalid(&s, "reason", "REQUIRED");
    let current = c
        .get_leading_cohort_member(server.request(
            Role::Service,
            pb::GetLeadingCohortMemberRequest {
                name: member(2024, &code),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let gone = c
        .deselect_leading_enterprise(
            server.request(Role::Admin, deselect(current.etag, "发生重大安全事故")),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.state, pb::MemberState::Deselected as i32);
    assert_eq!(gone.deselect_reason, "发生重大安全事故");
    assert!(gone.deselect_time.is_some());
    assert_eq!(gone.support_policy, policy(&code, 2024));
    let p = get_policy(&server, &code, 2024).await;
    assert_eq!(p.state, pb::SupportPolicyState::Ended as i32);
    assert!(!get_enterprise(&server, &code).await.leading);
    assert_eq!(get_cohort(&server, 2024).await.selected_count, 0);

    // An ENDED policy is read-only; a member not SELECTED cannot be deselected again.
    let s = c
        .update_support_policy(server.request(
            Role::Officer,
            pb::UpdateSupportPolicyRequest {
                support_policy: Some(pb::SupportPolicy {
                    name: p.name.clone(),
                    title: "新标题".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_precondition(&s, "POLICY_ENDED", &p.name);
    let s = c
        .record_support_policy_review(server.request(
            Role::Officer,
            pb::RecordSupportPolicyReviewRequest {
                name: p.name.clone(),
                conclusion: pb::PolicyReviewConclusion::OffTrack as i32,
                comment: "已终止".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_precondition(&s, "POLICY_ENDED", &p.name);
    let s = c
        .deselect_leading_enterprise(server.request(Role::Admin, deselect(String::new(), "再次")))
        .await
        .unwrap_err();
    assert_precondition(&s, "MEMBER_NOT_SELECTED", &member(2024, &code));
    let s = create_policy(&server, 2024, &code).await.unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition);
    let s = c
        .deselect_leading_enterprise(server.request(
            Role::Admin,
            pb::DeselectLeadingEnterpriseRequest {
                name: member(2024, &shandong("3706", 2)),
                reason: "x".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_not_found(
        &s,
        "registry.qilu.gov.cn/LeadingCohortMember",
        &member(2024, &shandong("3706", 2)),
    );

    // Re-selecting brings back the membership and its one policy.
    let back = select(&server, 2024, &code).await.unwrap();
    assert_eq!(back.state, pb::MemberState::Selected as i32);
    assert!(back.deselect_reason.is_empty() && back.deselect_time.is_none());
    assert_eq!(
        get_policy(&server, &code, 2024).await.state,
        pb::SupportPolicyState::Active as i32
    );
    assert!(get_enterprise(&server, &code).await.leading);
    assert_eq!(get_cohort(&server, 2024).await.with_policy_count, 1);
    assert_eq!(
        audit_events_of(&server, &policy(&code, 2024)).await.len(),
        3
    );
    assert_eq!(audit_events_of(&server, &ent(&code)).await.len(), 4);
    assert_chain_intact(&server).await;
    server.stop().await;
}

async fn leading_follows_the_latest_cohort(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = shandong("3707", 1);
    eligible(&server, &code, "潍坊企业", 2023, 70).await;
    create_cohort(&server, 2024).await;
    select(&server, 2024, &code).await.unwrap();
    assert!(get_enterprise(&server, &code).await.leading);
    // An earlier cohort does not change who leads now.
    create_cohort(&server, 2022).await;
    assert!(get_enterprise(&server, &code).await.leading);
    // A newer one does: the enterprise leads again only once selected into it.
    create_cohort(&server, 2025).await;
    let e = get_enterprise(&server, &code).await;
    assert!(!e.leading);
    let events = audit_events_of(&server, &ent(&code)).await;
    assert_eq!(events.len(), 3);
    assert!(events[2].method.ends_with("CreateLeadingCohort"));
    select(&server, 2025, &code).await.unwrap();
    assert!(get_enterprise(&server, &code).await.leading);
    // Selection into an older cohort leaves the mark alone.
    let other = shandong("3707", 2);
    eligible(&server, &other, "潍坊二", 2021, 70).await;
    select(&server, 2022, &other).await.unwrap();
    assert!(!get_enterprise(&server, &other).await.leading);
    let leading = client(&server)
        .list_enterprises(server.request(
            Role::Officer,
            pb::ListEnterprisesRequest {
                filter: "leading = true".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(leading.enterprises.len(), 1);
    assert_chain_intact(&server).await;
    server.stop().await;
}

async fn support_policies_update_with_mask_and_etag_and_reviews_only_append(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = shandong("3708", 1);
    eligible(&server, &code, "济宁企业", 2023, 70).await;
    create_cohort(&server, 2024).await;
    select(&server, 2024, &code).await.unwrap();
    let created = create_policy(&server, 2024, &code).await.unwrap();
    let mut c = client(&server);
    let update = |p: pb::SupportPolicy, paths: &[&str]| pb::UpdateSupportPolicyRequest {
        support_policy: Some(p),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|s| s.to_string()).collect(),
        }),
        request_id: String::new(),
    };

    // Milestone progress: one reached, one past due (reads OVERDUE), one new.
    let mut changed = created.clone();
    changed.title = "一企一策（修订）".into();
    changed.milestones[0].state = pb::MilestoneState::Done as i32;
    changed.milestones[0].completed_date = "2024-03-01".into();
    changed.milestones[1].due_date = "2024-01-31".into();
    changed.milestones.push(pb::Milestone {
        milestone_id: "listing".into(),
        title: "启动上市辅导".into(),
        due_date: "2099-01-01".into(),
        state: pb::MilestoneState::Planned as i32,
        ..Default::default()
    });
    changed.responsible_officer = "ignored-without-mask".into();
    let updated = c
        .update_support_policy(server.request(
            Role::Officer,
            update(changed.clone(), &["title", "milestones"]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.title, "一企一策（修订）");
    assert_eq!(updated.responsible_officer, "officer-1");
    assert_ne!(updated.etag, created.etag);
    let states: Vec<i32> = updated.milestones.iter().map(|m| m.state).collect();
    assert_eq!(
        states,
        [
            pb::MilestoneState::Done as i32,
            pb::MilestoneState::Overdue as i32,
            pb::MilestoneState::Planned as i32
        ]
    );
    assert_eq!(get_policy(&server, &code, 2024).await, updated);

    // The stale etag is refused; so are bad masks and bad milestones.
    let s = c
        .update_support_policy(server.request(Role::Officer, update(changed.clone(), &["title"])))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");
    let mut fresh = updated.clone();
    let s = c
        .update_support_policy(server.request(Role::Officer, update(fresh.clone(), &[])))
        .await
        .unwrap_err();
    assert_invalid(&s, "update_mask", "REQUIRED");
    let s = c
        .update_support_policy(server.request(Role::Officer, update(fresh.clone(), &["state"])))
        .await
        .unwrap_err();
    assert_invalid(&s, "update_mask", "FIELD_NOT_UPDATABLE");
    fresh.milestones[2].state = pb::MilestoneState::Overdue as i32;
    fresh.milestones[0].completed_date = String::new();
    fresh.measures.clear();
    let s = c
        .update_support_policy(server.request(
            Role::Officer,
            update(fresh.clone(), &["milestones", "measures"]),
        ))
        .await
        .unwrap_err();
    assert_invalid(
        &s,
        "support_policy.milestones[2].state",
        "OUTPUT_ONLY_VALUE",
    );
    assert_invalid(&s, "support_policy.measures", "REQUIRED");
    let s = c
        .update_support_policy(server.request(
            Role::Officer,
            update(
                pb::SupportPolicy {
                    name: policy(&code, 2023),
                    ..Default::default()
                },
                &["title"],
            ),
        ))
        .await
        .unwrap_err();
    assert_not_found(
        &s,
        "registry.qilu.gov.cn/SupportPolicy",
        &policy(&code, 2023),
    );

    // The overdue filter.
    let overdue = c
        .list_support_policies(server.request(
            Role::Auditor,
            pb::ListSupportPoliciesRequest {
                parent: ent(&code),
                filter: "has_overdue_milestone = true".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overdue.support_policies.len(), 1);
    let on_time = c
        .list_support_policies(server.request(
            Role::Auditor,
            pb::ListSupportPoliciesRequest {
                parent: "enterprises/-".into(),
                filter: "has_overdue_milestone = false".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(on_time.support_policies.is_empty());

    // Reviews append; earlier ones never change.
    let review = |etag: &str, conclusion: pb::PolicyReviewConclusion, comment: &str| {
        pb::RecordSupportPolicyReviewRequest {
            name: policy(&code, 2024),
            conclusion: conclusion as i32,
            comment: comment.into(),
            etag: etag.into(),
            request_id: String::new(),
        }
    };
    let r1 = c
        .record_support_policy_review(server.request(
            Role::Officer,
            review(
                &updated.etag,
                pb::PolicyReviewConclusion::OnTrack,
                "研发中心已建成",
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r1.reviews.len(), 1);
    assert_eq!(r1.reviews[0].reviewer, "test-officer");
    let s = c
        .record_support_policy_review(server.request(
            Role::Officer,
            review(&updated.etag, pb::PolicyReviewConclusion::AtRisk, "过期的"),
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Aborted);
    let r2 = c
        .record_support_policy_review(server.request(
            Role::Admin,
            review("", pb::PolicyReviewConclusion::AtRisk, "中试线延期"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r2.reviews.len(), 2);
    assert_eq!(r2.reviews[0], r1.reviews[0]);
    assert_eq!(
        r2.reviews[1].conclusion,
        pb::PolicyReviewConclusion::AtRisk as i32
    );
    let s = c
        .record_support_policy_review(server.request(
            Role::Officer,
            review("", pb::PolicyReviewConclusion::Unspecified, ""),
        ))
        .await
        .unwrap_err();
    assert_invalid(&s, "conclusion", "REQUIRED");
    assert_invalid(&s, "comment", "REQUIRED");
    let s = c
        .record_support_policy_review(server.request(
            Role::Officer,
            pb::RecordSupportPolicyReviewRequest {
                name: policy(&code, 2024),
                conclusion: 9,
                comment: "x".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&s, "conclusion", "UNKNOWN_ENUM_VALUE");
    let s = c
        .record_support_policy_review(server.request(
            Role::Enterprise,
            review("", pb::PolicyReviewConclusion::OnTrack, "自评"),
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);

    // created, updated, reviewed twice.
    let events = audit_events_of(&server, &policy(&code, 2024)).await;
    assert_eq!(events.len(), 4);
    assert!(events[3].state_json.contains("中试线延期"));
    assert_chain_intact(&server).await;
    server.stop().await;
}

async fn create_support_policy_reports_every_bad_field_with_its_path(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = shandong("3709", 1);
    let other = shandong("3709", 2);
    eligible(&server, &code, "泰安企业", 2023, 70).await;
    create_cohort(&server, 2024).await;
    select(&server, 2024, &code).await.unwrap();
    let mut bad = policy_input(2024, &other);
    bad.title = String::new();
    bad.responsible_officer = " ".into();
    bad.measures[0].kind = 0;
    bad.measures[1].amount_fen = -1;
    bad.milestones[0].milestone_id = "Bad_ID".into();
    bad.milestones[1].due_date = "2024-02-30".into();
    bad.milestones[1].state = pb::MilestoneState::Done as i32;
    let s = client(&server)
        .create_support_policy(server.request(
            Role::Officer,
            pb::CreateSupportPolicyRequest {
                parent: ent(&code),
                support_policy: Some(bad),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    for (field, reason) in [
        ("support_policy.member", "PARENT_MISMATCH"),
        ("support_policy.title", "REQUIRED"),
        ("support_policy.responsible_officer", "REQUIRED"),
        ("support_policy.measures[0].kind", "REQUIRED"),
        ("support_policy.measures[1].amount_fen", "OUT_OF_RANGE"),
        ("support_policy.milestones[0].milestone_id", "INVALID_ID"),
        ("support_policy.milestones[1].due_date", "INVALID_DATE"),
    ] {
        assert_invalid(&s, field, reason);
    }
    // Milestone rules across the list.
    let mut dup = policy_input(2024, &code);
    dup.milestones[1].milestone_id = dup.milestones[0].milestone_id.clone();
    dup.milestones[0].state = pb::MilestoneState::Done as i32;
    dup.milestones[0].completed_date = "2999-01-01".into();
    let s = client(&server)
        .create_support_policy(server.request(
            Role::Officer,
            pb::CreateSupportPolicyRequest {
                parent: ent(&code),
                support_policy: Some(dup),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(
        &s,
        "support_policy.milestones[1].milestone_id",
        "DUPLICATE_MILESTONE_ID",
    );
    assert_invalid(
        &s,
        "support_policy.milestones[0].completed_date",
        "IN_FUTURE",
    );
    let s = client(&server)
        .create_support_policy(server.request(
            Role::Officer,
            pb::CreateSupportPolicyRequest {
                parent: ent(&code),
                support_policy: None,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&s, "support_policy", "REQUIRED");
    // A cohort that does not exist.
    let s = create_policy(&server, 2020, &code).await.unwrap_err();
    assert_not_found(
        &s,
        "registry.qilu.gov.cn/LeadingCohort",
        "leadingCohorts/2020",
    );
    // Nothing was written or audited.
    assert!(
        audit_events_of(&server, &policy(&code, 2024))
            .await
            .is_empty()
    );
    let s = client(&server)
        .create_support_policy(server.request(Role::Auditor, create_policy_request(2024, &code)))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    server.stop().await;
}

async fn enterprise_tokens_see_only_their_own_policy_and_membership(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let own = shandong("3710", 1);
    let other = shandong("3710", 2);
    for code in [&own, &other] {
        eligible(&server, code, "威海企业", 2023, 70).await;
    }
    create_cohort(&server, 2024).await;
    for code in [&own, &other] {
        select(&server, 2024, code).await.unwrap();
        create_policy(&server, 2024, code).await.unwrap();
    }
    let mut c = client(&server);
    let mine = c
        .get_support_policy(server.enterprise_request(
            &own,
            pb::GetSupportPolicyRequest {
                name: policy(&own, 2024),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.name, policy(&own, 2024));
    let s = c
        .get_support_policy(server.enterprise_request(
            &own,
            pb::GetSupportPolicyRequest {
                name: policy(&other, 2024),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    let listed = c
        .list_support_policies(server.enterprise_request(
            &own,
            pb::ListSupportPoliciesRequest {
                parent: ent(&own),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.support_policies, vec![mine]);
    for parent in ["enterprises/-".to_string(), ent(&other)] {
        let s = c
            .list_support_policies(server.enterprise_request(
                &own,
                pb::ListSupportPoliciesRequest {
                    parent,
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied);
    }
    let m = c
        .get_leading_cohort_member(server.enterprise_request(
            &own,
            pb::GetLeadingCohortMemberRequest {
                name: member(2024, &own),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.enterprise, ent(&own));
    let s = c
        .get_leading_cohort_member(server.enterprise_request(
            &own,
            pb::GetLeadingCohortMemberRequest {
                name: member(2024, &other),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    let s = c
        .list_leading_cohort_members(server.enterprise_request(
            &own,
            pb::ListLeadingCohortMembersRequest {
                parent: "leadingCohorts/2024".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    let s = c
        .get_support_policy(server.request(
            Role::Officer,
            pb::GetSupportPolicyRequest {
                name: policy(&own, 2023),
            },
        ))
        .await
        .unwrap_err();
    assert_not_found(
        &s,
        "registry.qilu.gov.cn/SupportPolicy",
        &policy(&own, 2023),
    );
    let s = c
        .get_support_policy(server.request(
            Role::Officer,
            pb::GetSupportPolicyRequest {
                name: format!("enterprises/{own}/policies/2024"),
            },
        ))
        .await
        .unwrap_err();
    assert_invalid(&s, "name", "INVALID_RESOURCE_NAME");
    server.stop().await;
}

async fn repeated_request_ids_change_nothing_twice(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = shandong("3711", 1);
    eligible(&server, &code, "日照企业", 2023, 70).await;
    let mut c = client(&server);
    let id = || uuid::Uuid::new_v4().to_string();

    let cohort_req = pb::CreateLeadingCohortRequest {
        leading_cohort: Some(pb::LeadingCohort {
            year: 2024,
            ..Default::default()
        }),
        request_id: id(),
    };
    let a = c
        .create_leading_cohort(server.request(Role::Admin, cohort_req.clone()))
        .await
        .unwrap()
        .into_inner();
    let b = c
        .create_leading_cohort(server.request(Role::Admin, cohort_req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a, b);

    let mut select_req = select_request(2024, &code);
    select_req.request_id = id();
    let a = c
        .select_leading_enterprise(server.request(Role::Admin, select_req.clone()))
        .await
        .unwrap()
        .into_inner();
    let b = c
        .select_leading_enterprise(server.request(Role::Admin, select_req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a, b);

    let mut policy_req = create_policy_request(2024, &code);
    policy_req.request_id = id();
    let a = c
        .create_support_policy(server.request(Role::Officer, policy_req.clone()))
        .await
        .unwrap()
        .into_inner();
    let b = c
        .create_support_policy(server.request(Role::Officer, policy_req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a, b);

    let update_req = pb::UpdateSupportPolicyRequest {
        support_policy: Some(pb::SupportPolicy {
            name: a.name.clone(),
            etag: a.etag.clone(),
            summary: "更新".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["summary".into()],
        }),
        request_id: id(),
    };
    let u1 = c
        .update_support_policy(server.request(Role::Officer, update_req.clone()))
        .await
        .unwrap()
        .into_inner();
    // The retry replays even though its etag is now stale.
    let u2 = c
        .update_support_policy(server.request(Role::Officer, update_req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u1, u2);

    let review_req = pb::RecordSupportPolicyReviewRequest {
        name: a.name.clone(),
        conclusion: pb::PolicyReviewConclusion::OnTrack as i32,
        comment: "按计划推进".into(),
        etag: String::new(),
        request_id: id(),
    };
    for _ in 0..2 {
        let r = c
            .record_support_policy_review(server.request(Role::Officer, review_req.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.reviews.len(), 1);
    }
    assert_eq!(get_policy(&server, &code, 2024).await.reviews.len(), 1);

    let deselect_req = pb::DeselectLeadingEnterpriseRequest {
        name: member(2024, &code),
        reason: "企业申请退出".into(),
        etag: String::new(),
        request_id: id(),
    };
    let a = c
        .deselect_leading_enterprise(server.request(Role::Admin, deselect_req.clone()))
        .await
        .unwrap()
        .into_inner();
    let b = c
        .deselect_leading_enterprise(server.request(Role::Admin, deselect_req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a, b);

    // One event per mutation: cohort created, select, deselect (touches); policy 4 changes.
    assert_eq!(
        audit_events_of(&server, "leadingCohorts/2024").await.len(),
        3
    );
    assert_eq!(
        audit_events_of(&server, &member(2024, &code)).await.len(),
        3
    );
    assert_eq!(
        audit_events_of(&server, &policy(&code, 2024)).await.len(),
        4
    );
    assert_chain_intact(&server).await;
    server.stop().await;
}

/// Revoking an enterprise (RevokeEnterprise) ends its active support policy in the same
/// transaction, audited; the policy keeps its milestones.
async fn the_status_methods_can_end_an_enterprises_active_policies(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = shandong("3713", 1);
    eligible(&server, &code, "临沂企业", 2023, 70).await;
    create_cohort(&server, 2024).await;
    select(&server, 2024, &code).await.unwrap();
    let before = create_policy(&server, 2024, &code).await.unwrap();
    client(&server)
        .revoke_enterprise(server.request(
            Role::Officer,
            pb::RevokeEnterpriseRequest {
                name: format!("enterprises/{code}"),
                reason: "营业执照被依法吊销".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let after = get_policy(&server, &code, 2024).await;
    assert_eq!(after.state, pb::SupportPolicyState::Ended as i32);
    assert_ne!(after.etag, before.etag);
    assert_eq!(after.milestones, before.milestones);
    let events = audit_events_of(&server, &policy(&code, 2024)).await;
    assert_eq!(events.len(), 2, "created, then ended with the revocation");
    assert!(events[1].method.ends_with("/RevokeEnterprise"));
    // Nothing left to end.
    let again = qilu_registry::store::leading::end_active_policies(&server.db, &code, 43)
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_chain_intact(&server).await;
    server.stop().await;
}
