//! Integration tests of achievement review as a caller sees it: the real review server on an
//! ephemeral port, over a fresh SQLite file and a fresh PostgreSQL database, WITH THE REGISTRY
//! RUNNING FOR REAL (its own server and database): owners are registered through the registry's
//! client and checked by the review service over gRPC. Every scenario runs on both backends
//! (`sqlite::…` and `postgres::…`).

use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::Backend;
use qilu_proto::common as cpb;
use qilu_proto::review as pb;
use sea_orm::{ConnectionTrait, Statement};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::{Env, uscc};

on_both_backends!(
    programme_year_step_4_screens_reviews_and_upholds_a_veto,
    a_clean_achievement_is_approved_by_three_unaffiliated_experts_under_blind_review,
    a_low_scored_achievement_is_rejected_and_the_decision_explains_itself,
    a_rule_veto_is_final_at_submission_and_no_rule_set_change_alters_it,
    one_expert_veto_outweighs_five_perfect_scores,
    a_conflicted_expert_can_never_be_assigned_or_score,
    a_veto_is_appealed_once_and_not_after_thirty_days,
    a_non_owner_enterprise_sees_nothing,
    registry_stopped_means_unavailable_and_nothing_written,
    an_unregistered_or_inactive_owner_is_refused,
    drafts_update_by_mask_and_etag_and_withdrawal_cancels_open_reviews,
    bad_requests_name_their_fields,
    every_role_outside_the_table_is_refused_before_the_handler,
    paging_through_achievements_and_experts_returns_each_once,
    a_repeated_request_id_creates_one_achievement,
);

const BIOMEDICINE: i32 = cpb::IndustryField::Biomedicine as i32;
const HIGH_END_EQUIPMENT: i32 = cpb::IndustryField::HighEndEquipment as i32;
const NEW_MATERIALS: i32 = cpb::IndustryField::NewMaterials as i32;

fn green(code: &str, kgce: Option<i64>) -> pb::GreenData {
    pb::GreenData {
        industry_code: code.to_string(),
        annual_energy_kgce: kgce,
        annual_electricity_kwh: Some(1_200_000),
        ..Default::default()
    }
}

fn draft(owner: &str, title: &str, field: i32, green_data: pb::GreenData) -> pb::Achievement {
    pb::Achievement {
        owner: format!("enterprises/{owner}"),
        title: title.to_string(),
        industry_field: field,
        technology_readiness_level: 7,
        summary: "成果简介".into(),
        green_data: Some(green_data),
        ..Default::default()
    }
}

async fn create(env: &Env, a: pb::Achievement) -> pb::Achievement {
    let owner = a.owner.trim_start_matches("enterprises/").to_string();
    env.client()
        .create_achievement(env.as_enterprise(
            &owner,
            pb::CreateAchievementRequest {
                achievement: Some(a),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create: {s:?}"))
        .into_inner()
}

async fn submit(env: &Env, owner: &str, name: &str) -> Result<pb::Achievement, Status> {
    env.client()
        .submit_achievement(env.as_enterprise(
            owner,
            pb::SubmitAchievementRequest {
                name: name.to_string(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// Creates and submits an achievement; returns it as submitted.
async fn submitted(
    env: &Env,
    owner: &str,
    title: &str,
    field: i32,
    green_data: pb::GreenData,
) -> pb::Achievement {
    let a = create(env, draft(owner, title, field, green_data)).await;
    submit(env, owner, &a.name).await.unwrap()
}

async fn expert(
    env: &Env,
    id: &str,
    fields: &[i32],
    affiliations: &[&str],
    limit: i32,
) -> pb::Expert {
    env.client()
        .create_expert(
            env.as_role(
                Role::Admin,
                pb::CreateExpertRequest {
                    expert_id: id.to_string(),
                    expert: Some(pb::Expert {
                        display_name: format!("专家{id}"),
                        industry_fields: fields.to_vec(),
                        affiliations: affiliations
                            .iter()
                            .map(|u| format!("enterprises/{u}"))
                            .collect(),
                        organization: "山东大学".into(),
                        load_limit: limit,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ),
        )
        .await
        .unwrap_or_else(|s| panic!("create expert {id}: {s:?}"))
        .into_inner()
}

async fn assign_auto(env: &Env, name: &str, n: i32) -> Result<pb::AssignReviewersResponse, Status> {
    env.client()
        .assign_reviewers(env.as_role(
            Role::Officer,
            pb::AssignReviewersRequest {
                name: name.to_string(),
                reviewer_count: n,
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn assign_manual(
    env: &Env,
    role: Role,
    name: &str,
    experts: &[&str],
) -> Result<pb::AssignReviewersResponse, Status> {
    env.client()
        .assign_reviewers(env.as_role(
            role,
            pb::AssignReviewersRequest {
                name: name.to_string(),
                experts: experts.iter().map(|e| format!("experts/{e}")).collect(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

fn review_of<'a>(assigned: &'a pb::AssignReviewersResponse, expert: &str) -> &'a str {
    &assigned
        .reviews
        .iter()
        .find(|r| r.expert == format!("experts/{expert}"))
        .unwrap_or_else(|| panic!("no review for {expert}: {assigned:?}"))
        .name
}

async fn score(
    env: &Env,
    expert: &str,
    review: &str,
    s: [i32; 4],
    veto: Option<(pb::VetoCategory, &str)>,
) -> Result<pb::Review, Status> {
    env.client()
        .submit_review(env.as_expert(
            expert,
            pb::SubmitReviewRequest {
                name: review.to_string(),
                scores: Some(pb::CriterionScores {
                    innovation: s[0],
                    technical_level: s[1],
                    economic_benefit: s[2],
                    green_benefit: s[3],
                }),
                comment: "评审意见".into(),
                veto: veto.map(|(c, e)| pb::ExpertVeto {
                    category: c as i32,
                    evidence: e.to_string(),
                }),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn finalize(env: &Env, name: &str) -> Result<pb::Achievement, Status> {
    env.client()
        .finalize_decision(env.as_role(
            Role::Officer,
            pb::FinalizeDecisionRequest {
                name: name.to_string(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn appeal(env: &Env, owner: &str, name: &str) -> Result<pb::Achievement, Status> {
    env.client()
        .appeal_veto(env.as_enterprise(
            owner,
            pb::AppealVetoRequest {
                name: name.to_string(),
                grounds: "评审程序存在瑕疵 (procedural grounds)".into(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn resolve(
    env: &Env,
    name: &str,
    resolution: pb::AppealResolution,
) -> Result<pb::Achievement, Status> {
    env.client()
        .resolve_appeal(env.as_role(
            Role::Admin,
            pb::ResolveAppealRequest {
                name: name.to_string(),
                resolution: resolution as i32,
                reason: "经复核 (after review)".into(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn get(env: &Env, name: &str) -> pb::Achievement {
    env.client()
        .get_achievement(env.as_role(
            Role::Auditor,
            pb::GetAchievementRequest {
                name: name.to_string(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn audit_events(env: &Env) -> Vec<cpb::AuditEvent> {
    env.client()
        .list_audit_events(env.as_role(
            Role::Auditor,
            cpb::ListAuditEventsRequest {
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .audit_events
}

async fn assert_chain_intact(env: &Env) {
    let check = env
        .client()
        .verify_audit_chain(env.as_role(Role::Auditor, cpb::VerifyAuditChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(check.intact, "{check:?}");
    assert!(check.events_checked > 0, "{check:?}");
}

/// The (kind, subject) pairs of a FAILED_PRECONDITION.
#[track_caller]
fn preconditions(status: &Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    status
        .get_details_precondition_failure()
        .map(|p| {
            p.violations
                .iter()
                .map(|v| (v.r#type.clone(), v.subject.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The field paths of an INVALID_ARGUMENT.
#[track_caller]
fn bad_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

const PERFECT: [i32; 4] = [30, 30, 20, 20];

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// docs/design.md §9 step 4, end to end.
async fn programme_year_step_4_screens_reviews_and_upholds_a_veto(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let steelworks = uscc(1);
    let chemicals = uscc(2);
    let pharma = uscc(3);
    let materials = uscc(4);
    env.register(&steelworks, "济南钢铁有限公司").await;
    env.register(&chemicals, "淄博化工有限公司").await;
    env.register(&pharma, "济南生物医药有限公司").await;
    env.register(&materials, "青岛新材料有限公司").await;

    // A steel-industry achievement (division 31) using 12,000 tce a year: vetoed by rule.
    let steel = submitted(
        &env,
        &steelworks,
        "高炉节能改造",
        HIGH_END_EQUIPMENT,
        green("31", Some(12_000_000)),
    )
    .await;
    assert_eq!(steel.state, pb::AchievementState::Vetoed as i32);
    let verdict = steel.screening.as_ref().unwrap();
    assert_eq!(verdict.outcome, pb::ScreeningOutcome::Veto as i32);
    assert_eq!(verdict.rule_id, "annual-energy");
    assert_eq!(verdict.rule_set, "vetoRuleSets/default-2021");
    assert_eq!(verdict.rule_set_version, 1);
    assert_eq!(verdict.threshold, ">= 5,000 tce in scope 31");
    assert!(verdict.source.contains("5,000 tce"), "{}", verdict.source);
    assert!(
        verdict.explanation.contains("12,000 tce"),
        "{}",
        verdict.explanation
    );
    let decision = steel.decision.as_ref().unwrap();
    assert_eq!(decision.outcome, pb::DecisionOutcome::Vetoed as i32);
    assert_eq!(decision.decided_by, "screening");
    assert_eq!(decision.vetoes[0].path, pb::VetoPath::Rule as i32);
    assert_eq!(
        decision.vetoes[0].rule,
        "annual-energy @ vetoRuleSets/default-2021 v1"
    );
    assert!(!steel.appeal_deadline.is_empty());

    // One with no energy figure: NEEDS_REVIEW naming what is missing.
    let unknown = submitted(
        &env,
        &chemicals,
        "有机合成新工艺",
        NEW_MATERIALS,
        green("2614", None),
    )
    .await;
    assert_eq!(unknown.state, pb::AchievementState::Submitted as i32);
    let verdict = unknown.screening.as_ref().unwrap();
    assert_eq!(verdict.outcome, pb::ScreeningOutcome::NeedsReview as i32);
    assert_eq!(verdict.missing_inputs, ["green_data.annual_energy_kgce"]);
    let listed = env
        .client()
        .list_achievements(env.as_role(
            Role::Officer,
            pb::ListAchievementsRequest {
                filter: "screening.outcome = SCREENING_OUTCOME_NEEDS_REVIEW".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.achievements.len(), 1);
    assert_eq!(listed.achievements[0].name, unknown.name);

    // A clean biomedicine achievement to three experts, none affiliated with its owner.
    for id in ["bio-a", "bio-b", "bio-c"] {
        expert(&env, id, &[BIOMEDICINE], &[], 5).await;
    }
    expert(&env, "bio-insider", &[BIOMEDICINE], &[&pharma], 5).await;
    let clean = submitted(
        &env,
        &pharma,
        "新型疫苗佐剂",
        BIOMEDICINE,
        green("2761", Some(300_000)),
    )
    .await;
    assert_eq!(
        clean.screening.as_ref().unwrap().outcome,
        pb::ScreeningOutcome::Pass as i32
    );
    let assigned = assign_auto(&env, &clean.name, 3).await.unwrap();
    let mut chosen: Vec<&str> = assigned.reviews.iter().map(|r| r.expert.as_str()).collect();
    chosen.sort();
    assert_eq!(chosen, ["experts/bio-a", "experts/bio-b", "experts/bio-c"]);
    assert!(
        assigned
            .excluded
            .iter()
            .any(|e| e.expert == "experts/bio-insider" && e.reason == "affiliated with the owner")
    );
    for (id, s) in [
        ("bio-a", [26, 25, 16, 18]),
        ("bio-b", [24, 26, 15, 17]),
        ("bio-c", [27, 24, 17, 16]),
    ] {
        score(&env, id, review_of(&assigned, id), s, None)
            .await
            .unwrap();
    }
    let approved = finalize(&env, &clean.name).await.unwrap();
    assert_eq!(approved.state, pb::AchievementState::Approved as i32);

    // Another vetoed by a single expert despite high scores, appealed, the veto upheld.
    for id in ["mat-a", "mat-b", "mat-c"] {
        expert(&env, id, &[NEW_MATERIALS], &[], 5).await;
    }
    let coated = submitted(
        &env,
        &materials,
        "高性能涂层材料",
        NEW_MATERIALS,
        green("2641", Some(900_000)),
    )
    .await;
    let assigned = assign_auto(&env, &coated.name, 3).await.unwrap();
    score(&env, "mat-a", review_of(&assigned, "mat-a"), PERFECT, None)
        .await
        .unwrap();
    score(
        &env,
        "mat-b",
        review_of(&assigned, "mat-b"),
        [29, 29, 19, 19],
        None,
    )
    .await
    .unwrap();
    score(
        &env,
        "mat-c",
        review_of(&assigned, "mat-c"),
        [28, 28, 18, 18],
        Some((
            pb::VetoCategory::HighlyPolluting,
            "涂装工序VOCs排放超标 (site visit 2026-05-12)",
        )),
    )
    .await
    .unwrap();
    let vetoed = finalize(&env, &coated.name).await.unwrap();
    assert_eq!(vetoed.state, pb::AchievementState::Vetoed as i32);
    let d = vetoed.decision.as_ref().unwrap();
    assert_eq!(d.vetoes.len(), 1);
    assert_eq!(d.vetoes[0].path, pb::VetoPath::Expert as i32);
    assert_eq!(d.vetoes[0].expert, "experts/mat-c");
    let appealed = appeal(&env, &materials, &coated.name).await.unwrap();
    assert!(appealed.appeal.is_some());
    let upheld = resolve(&env, &coated.name, pb::AppealResolution::Upheld)
        .await
        .unwrap();
    assert_eq!(upheld.state, pb::AchievementState::Vetoed as i32);
    let a = upheld.appeal.as_ref().unwrap();
    assert_eq!(a.resolution, pb::AppealResolution::Upheld as i32);
    assert_eq!(a.resolved_by, "test-admin");
    assert!(!a.resolution_reason.is_empty());

    // The awards service's view.
    let statuses = env
        .client()
        .batch_get_achievement_status(env.as_role(
            Role::Service,
            pb::BatchGetAchievementStatusRequest {
                names: vec![
                    steel.name.clone(),
                    clean.name.clone(),
                    coated.name.clone(),
                    "achievements/0000nothing".into(),
                ],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .statuses;
    let facts: Vec<(bool, bool, i32)> = statuses
        .iter()
        .map(|s| (s.found, s.vetoed, s.decision))
        .collect();
    assert_eq!(
        facts,
        [
            (true, true, pb::DecisionOutcome::Vetoed as i32),
            (true, false, pb::DecisionOutcome::Approved as i32),
            (true, true, pb::DecisionOutcome::Vetoed as i32),
            (false, false, 0),
        ]
    );
    assert_eq!(statuses[1].owner, format!("enterprises/{pharma}"));
    assert_chain_intact(&env).await;
    env.stop().await;
}

async fn a_clean_achievement_is_approved_by_three_unaffiliated_experts_under_blind_review(
    backend: Backend,
) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(11);
    env.register(&owner, "烟台生物科技有限公司").await;
    for id in ["e1", "e2", "e3"] {
        expert(&env, id, &[BIOMEDICINE], &[], 3).await;
    }
    let a = submitted(
        &env,
        &owner,
        "单抗药物",
        BIOMEDICINE,
        green("2761", Some(10_000)),
    )
    .await;
    let assigned = assign_auto(&env, &a.name, 3).await.unwrap();
    assert_eq!(
        get(&env, &a.name).await.state,
        pb::AchievementState::UnderReview as i32
    );
    let (r1, r2, r3) = (
        review_of(&assigned, "e1").to_string(),
        review_of(&assigned, "e2").to_string(),
        review_of(&assigned, "e3").to_string(),
    );

    // Blind: before its own is in, e1 sees only its own review.
    let denied = env
        .client()
        .get_review(env.as_expert("e1", pb::GetReviewRequest { name: r2.clone() }))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let list_as = |id: &'static str| {
        let env = &env;
        let parent = a.name.clone();
        async move {
            env.client()
                .list_reviews(env.as_expert(
                    id,
                    pb::ListReviewsRequest {
                        parent,
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .reviews
        }
    };
    assert_eq!(list_as("e1").await.len(), 1);
    score(&env, "e1", &r1, [25, 25, 15, 15], None)
        .await
        .unwrap();
    assert_eq!(
        list_as("e1").await.len(),
        3,
        "after submitting, e1 sees every review"
    );
    let seen = env
        .client()
        .get_review(env.as_expert("e1", pb::GetReviewRequest { name: r2.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.state, pb::ReviewState::Assigned as i32);
    assert_eq!(list_as("e2").await.len(), 1, "e2 still sees only its own");
    // Only the assigned expert may submit; a review is submitted once.
    let s = score(&env, "e1", &r2, PERFECT, None).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    let s = score(&env, "e1", &r1, PERFECT, None).await.unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "REVIEW_NOT_OPEN");

    // The decision waits for every review, naming the missing ones.
    score(&env, "e2", &r2, [28, 27, 18, 17], None)
        .await
        .unwrap();
    let s = finalize(&env, &a.name).await.unwrap_err();
    assert_eq!(
        preconditions(&s),
        [("REVIEW_NOT_SUBMITTED".to_string(), r3.clone())]
    );
    // The owner sees no review before the decision.
    let before = env
        .client()
        .list_reviews(env.as_enterprise(
            &owner,
            pb::ListReviewsRequest {
                parent: a.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(before.reviews.is_empty());
    score(&env, "e3", &r3, [24, 26, 16, 16], None)
        .await
        .unwrap();
    let done = finalize(&env, &a.name).await.unwrap();
    assert_eq!(done.state, pb::AchievementState::Approved as i32);
    let d = done.decision.as_ref().unwrap();
    // 80 + 90 + 82 = 252 / 3 = 84.000
    assert_eq!((d.score_sum, d.score_count, d.trimmed), (252, 3, false));
    assert_eq!(d.aggregate_score_millipoints, 84_000);
    assert_eq!(d.threshold_points, 70);
    assert!(
        d.threshold_source
            .starts_with("review.approval_threshold_points v1"),
        "{}",
        d.threshold_source
    );
    assert_eq!(
        d.explanation,
        "Approved: mean 84.000 of 3 reviews (3 counted) >= 70; no veto"
    );
    assert_eq!(d.decided_by, "test-officer");

    // Now the owner sees the submitted reviews, experts redacted.
    let after = env
        .client()
        .list_reviews(env.as_enterprise(
            &owner,
            pb::ListReviewsRequest {
                parent: a.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.reviews.len(), 3);
    assert!(after.reviews.iter().all(|r| r.expert.is_empty()));
    let own = env
        .client()
        .get_achievement(env.as_enterprise(
            &owner,
            pb::GetAchievementRequest {
                name: a.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        own.decision
            .unwrap()
            .scores
            .iter()
            .all(|s| s.expert.is_empty())
    );
    // An expert's worklist across achievements is empty once all is in.
    let worklist = env
        .client()
        .list_reviews(env.as_expert(
            "e1",
            pb::ListReviewsRequest {
                parent: "achievements/-".into(),
                filter: "state = REVIEW_STATE_ASSIGNED".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(worklist.reviews.is_empty());
    assert_chain_intact(&env).await;
    env.stop().await;
}

async fn a_low_scored_achievement_is_rejected_and_the_decision_explains_itself(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(21);
    env.register(&owner, "潍坊装备有限公司").await;
    for id in ["r1", "r2"] {
        expert(&env, id, &[HIGH_END_EQUIPMENT], &[], 3).await;
    }
    let a = submitted(
        &env,
        &owner,
        "数控机床",
        HIGH_END_EQUIPMENT,
        green("3421", Some(50_000)),
    )
    .await;
    let assigned = assign_auto(&env, &a.name, 2).await.unwrap();
    score(
        &env,
        "r1",
        review_of(&assigned, "r1"),
        [20, 20, 15, 15],
        None,
    )
    .await
    .unwrap(); // 70
    score(
        &env,
        "r2",
        review_of(&assigned, "r2"),
        [20, 20, 14, 15],
        None,
    )
    .await
    .unwrap(); // 69
    let done = finalize(&env, &a.name).await.unwrap();
    assert_eq!(done.state, pb::AchievementState::Rejected as i32);
    let d = done.decision.unwrap();
    assert_eq!(d.outcome, pb::DecisionOutcome::Rejected as i32);
    assert_eq!((d.score_sum, d.score_count), (139, 2));
    assert_eq!(d.aggregate_score_millipoints, 69_500);
    assert_eq!(
        d.explanation,
        "Rejected: mean 69.500 of 2 reviews (2 counted) < 70; no veto"
    );
    // A decided achievement is not decided again, nor appealed (no veto).
    let s = finalize(&env, &a.name).await.unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "ACHIEVEMENT_NOT_UNDER_REVIEW");
    let s = appeal(&env, &owner, &a.name).await.unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "ACHIEVEMENT_NOT_VETOED");
    env.stop().await;
}

async fn a_rule_veto_is_final_at_submission_and_no_rule_set_change_alters_it(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(31);
    env.register(&owner, "日照钢铁有限公司").await;
    let steel = submitted(
        &env,
        &owner,
        "转炉煤气回收",
        HIGH_END_EQUIPMENT,
        green("3120", Some(5_000_000)),
    )
    .await;
    assert_eq!(
        steel.state,
        pb::AchievementState::Vetoed as i32,
        "at the threshold vetoes"
    );
    let before = steel.screening.clone().unwrap();
    // Vetoed: nothing more happens to it by review.
    let s = assign_auto(&env, &steel.name, 1).await.unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "ACHIEVEMENT_NOT_REVIEWABLE");

    // A new rule set with a higher threshold and a closure list, then activated.
    let mut c = env.client();
    let created = c
        .create_veto_rule_set(env.as_role(
            Role::Admin,
            pb::CreateVetoRuleSetRequest {
                veto_rule_set_id: "shandong-2026".into(),
                veto_rule_set: Some(pb::VetoRuleSet {
                    display_name: "Two-high screening 2026".into(),
                    description: "Scope: GB/T 4754 division 31 (steel). Threshold: 10,000 tce (key energy-using unit). Closure list: test notice.".into(),
                    industry_scope: vec![pb::IndustryScopeEntry {
                        code: "31".into(),
                        description: "黑色金属冶炼和压延加工业 (steel)".into(),
                    }],
                    annual_energy_threshold_kgce: 10_000_000,
                    unit_energy_limits: vec![pb::UnitEnergyLimit {
                        product_code: "crude-steel".into(),
                        product_unit: "t".into(),
                        limit_gce: 545_000,
                        source: "test limit".into(),
                    }],
                    closure_list: vec![pb::ClosureEntry {
                        entry_id: "coke-ovens".into(),
                        industry_code: "2521".into(),
                        description: "small coke ovens".into(),
                        source: "test closure notice".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.version, 2);
    assert_eq!(created.state, pb::VetoRuleSetState::Inactive as i32);
    // Under the new rules the same data would pass: the dry run says so and stores nothing.
    let dry = c
        .screen_achievement(env.as_enterprise(
            &owner,
            pb::ScreenAchievementRequest {
                name: steel.name.clone(),
                rule_set: created.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dry.outcome, pb::ScreeningOutcome::Pass as i32);
    assert_eq!(dry.rule_set_version, 2);
    let activated = c
        .activate_veto_rule_set(env.as_role(
            Role::Admin,
            pb::ActivateVetoRuleSetRequest {
                name: created.name.clone(),
                etag: created.etag.clone(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(activated.state, pb::VetoRuleSetState::Active as i32);
    let active = c
        .list_veto_rule_sets(env.as_role(
            Role::Expert,
            pb::ListVetoRuleSetsRequest {
                filter: "state = VETO_RULE_SET_STATE_ACTIVE".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .veto_rule_sets;
    assert_eq!(active.len(), 1, "exactly one active");
    assert_eq!(active[0].name, "vetoRuleSets/shandong-2026");
    // The stored verdict and decision are exactly as made.
    let after = get(&env, &steel.name).await;
    assert_eq!(after.screening.unwrap(), before);
    assert_eq!(after.state, pb::AchievementState::Vetoed as i32);
    // New submissions use the new set: a closure-list hit vetoes.
    let coke = submitted(
        &env,
        &owner,
        "焦炉改造",
        HIGH_END_EQUIPMENT,
        green("2521", Some(1)),
    )
    .await;
    let v = coke.screening.unwrap();
    assert_eq!(
        (v.rule_id.as_str(), v.rule_set_version),
        ("closure-list/coke-ovens", 2)
    );
    assert_eq!(
        coke.decision.unwrap().vetoes[0].category,
        pb::VetoCategory::HighlyPolluting as i32
    );
    // Rule sets are immutable data: a duplicate id is refused.
    let dup = c
        .create_veto_rule_set(env.as_role(
            Role::Admin,
            pb::CreateVetoRuleSetRequest {
                veto_rule_set_id: "shandong-2026".into(),
                veto_rule_set: Some(created.clone()),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists, "{dup:?}");
    assert_chain_intact(&env).await;
    env.stop().await;
}

async fn one_expert_veto_outweighs_five_perfect_scores(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(41);
    env.register(&owner, "东营石化科技有限公司").await;
    for id in ["p1", "p2", "p3", "p4", "p5"] {
        expert(&env, id, &[NEW_MATERIALS], &[], 2).await;
    }
    let a = submitted(
        &env,
        &owner,
        "催化新材料",
        NEW_MATERIALS,
        green("2661", Some(2_000_000)),
    )
    .await;
    let assigned = assign_auto(&env, &a.name, 5).await.unwrap();
    for id in ["p1", "p2", "p3", "p4"] {
        score(&env, id, review_of(&assigned, id), PERFECT, None)
            .await
            .unwrap();
    }
    let vetoing = score(
        &env,
        "p5",
        review_of(&assigned, "p5"),
        PERFECT,
        Some((pb::VetoCategory::EnergyIntensive, "装置综合能耗远超同类")),
    )
    .await
    .unwrap();
    assert!(vetoing.veto.is_some());
    let done = finalize(&env, &a.name).await.unwrap();
    assert_eq!(done.state, pb::AchievementState::Vetoed as i32);
    let d = done.decision.unwrap();
    assert_eq!(d.outcome, pb::DecisionOutcome::Vetoed as i32);
    assert!(d.trimmed, "five reviews: trimmed mean");
    assert_eq!(
        (d.score_sum, d.score_count, d.aggregate_score_millipoints),
        (300, 3, 100_000)
    );
    assert_eq!(d.scores.iter().filter(|s| s.trimmed).count(), 2);
    assert_eq!(d.vetoes.len(), 1);
    assert_eq!(
        d.vetoes[0].category,
        pb::VetoCategory::EnergyIntensive as i32
    );
    assert!(
        d.explanation
            .starts_with("Vetoed: 1 expert veto by experts/p5"),
        "{}",
        d.explanation
    );
    let filtered = env
        .client()
        .list_reviews(env.as_role(
            Role::Auditor,
            pb::ListReviewsRequest {
                parent: a.name.clone(),
                filter: "vetoed = true".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert_eq!(filtered.len(), 1);
    env.stop().await;
}

async fn a_conflicted_expert_can_never_be_assigned_or_score(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(51);
    let other = uscc(52);
    env.register(&owner, "威海医疗器械有限公司").await;
    env.register(&other, "其他企业").await;
    expert(&env, "insider", &[BIOMEDICINE], &[&owner, &other], 5).await;
    expert(&env, "friend", &[BIOMEDICINE], &[], 5).await;
    expert(&env, "clean", &[BIOMEDICINE], &[], 5).await;
    expert(&env, "later", &[BIOMEDICINE], &[], 5).await;
    // The friend declares its conflict itself.
    let declared = env
        .client()
        .declare_conflict(env.as_expert(
            "friend",
            pb::DeclareConflictRequest {
                name: "experts/friend".into(),
                enterprise: format!("enterprises/{owner}"),
                reason: "董事长是我的同学".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(declared.declared_conflicts.len(), 1);
    assert_eq!(declared.declared_conflicts[0].declared_by, "expert-friend");
    // An expert declares only for itself.
    let s = env
        .client()
        .declare_conflict(env.as_expert(
            "clean",
            pb::DeclareConflictRequest {
                name: "experts/friend".into(),
                enterprise: format!("enterprises/{owner}"),
                reason: "x".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);

    let a = submitted(
        &env,
        &owner,
        "介入导管",
        BIOMEDICINE,
        green("3581", Some(20_000)),
    )
    .await;
    // Manual: each conflicted expert refused, naming the conflict; nothing assigned.
    let s = assign_manual(&env, Role::Admin, &a.name, &["clean", "insider"])
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&s),
        [(
            "EXPERT_AFFILIATED_WITH_OWNER".to_string(),
            "experts/insider".to_string()
        )]
    );
    assert!(s.message().contains("affiliated with the owner"), "{s:?}");
    let s = assign_manual(&env, Role::Admin, &a.name, &["friend"])
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&s),
        [(
            "EXPERT_DECLARED_CONFLICT".to_string(),
            "experts/friend".to_string()
        )]
    );
    assert!(s.message().contains("董事长是我的同学"), "{s:?}");
    assert_eq!(
        get(&env, &a.name).await.state,
        pb::AchievementState::Submitted as i32
    );
    // Officers assign automatically only.
    let s = assign_manual(&env, Role::Officer, &a.name, &["clean"])
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    // Automatic: the conflicted are passed over; asking for more than remain assigns nothing.
    let s = assign_auto(&env, &a.name, 3).await.unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "NOT_ENOUGH_EXPERTS");
    assert!(s.message().contains("found 2"), "{s:?}");
    let assigned = assign_auto(&env, &a.name, 2).await.unwrap();
    let mut chosen: Vec<&str> = assigned.reviews.iter().map(|r| r.expert.as_str()).collect();
    chosen.sort();
    assert_eq!(chosen, ["experts/clean", "experts/later"]);
    let reasons: Vec<(&str, &str)> = assigned
        .excluded
        .iter()
        .map(|e| (e.expert.as_str(), e.reason.as_str()))
        .collect();
    assert!(
        reasons.contains(&("experts/insider", "affiliated with the owner")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("experts/friend", "declared conflict: 董事长是我的同学")),
        "{reasons:?}"
    );

    // A conflict arising after assignment: found again at scoring, the review cancelled.
    let later = env
        .client()
        .get_expert(env.as_role(
            Role::Admin,
            pb::GetExpertRequest {
                name: "experts/later".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(later.open_reviews, 1);
    env.client()
        .update_expert(env.as_role(
            Role::Admin,
            pb::UpdateExpertRequest {
                expert: Some(pb::Expert {
                    name: "experts/later".into(),
                    affiliations: vec![format!("enterprises/{owner}")],
                    etag: later.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["affiliations".into()],
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let later_review = review_of(&assigned, "later").to_string();
    let s = score(&env, "later", &later_review, PERFECT, None)
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&s),
        [(
            "EXPERT_AFFILIATED_WITH_OWNER".to_string(),
            "experts/later".to_string()
        )]
    );
    let cancelled = env
        .client()
        .get_review(env.as_role(
            Role::Auditor,
            pb::GetReviewRequest {
                name: later_review.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state, pb::ReviewState::Cancelled as i32);
    assert!(
        cancelled
            .cancel_reason
            .contains("conflict found at scoring")
    );
    // A declaration cancels open reviews at once.
    let clean_review = review_of(&assigned, "clean").to_string();
    env.client()
        .declare_conflict(env.as_role(
            Role::Admin,
            pb::DeclareConflictRequest {
                name: "experts/clean".into(),
                enterprise: format!("enterprises/{owner}"),
                reason: "consulting contract 2025".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let r = env
        .client()
        .get_review(env.as_role(
            Role::Auditor,
            pb::GetReviewRequest {
                name: clean_review.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.state, pb::ReviewState::Cancelled as i32);
    let s = score(&env, "clean", &clean_review, PERFECT, None)
        .await
        .unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "REVIEW_NOT_OPEN");
    // With every reviewer cancelled there is nothing to decide on.
    let s = finalize(&env, &a.name).await.unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "NO_REVIEWS");
    assert_chain_intact(&env).await;
    env.stop().await;
}

async fn a_veto_is_appealed_once_and_not_after_thirty_days(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(61);
    env.register(&owner, "聊城热电有限公司").await;
    let a = submitted(
        &env,
        &owner,
        "燃煤锅炉",
        HIGH_END_EQUIPMENT,
        green("4411", Some(80_000_000)),
    )
    .await;
    assert_eq!(a.state, pb::AchievementState::Vetoed as i32);
    // 31 days later: too late.
    env.advance_days(31);
    let s = appeal(&env, &owner, &a.name).await.unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "APPEAL_WINDOW_CLOSED");
    assert!(s.message().contains(&a.appeal_deadline), "{s:?}");
    // On the 30th day (the deadline day in Asia/Shanghai): in time.
    env.advance_days(30);
    let appealed = appeal(&env, &owner, &a.name).await.unwrap();
    assert_eq!(
        appealed.appeal.as_ref().unwrap().filed_by,
        format!("enterprise-{owner}")
    );
    // Not twice.
    let s = appeal(&env, &owner, &a.name).await.unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "APPEAL_ALREADY_FILED");
    // Resolution needs an admin and a reason; overturned → a new round.
    let s = env
        .client()
        .resolve_appeal(env.as_role(
            Role::Admin,
            pb::ResolveAppealRequest {
                name: a.name.clone(),
                resolution: pb::AppealResolution::Overturned as i32,
                reason: "  ".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&s), ["reason"]);
    let overturned = resolve(&env, &a.name, pb::AppealResolution::Overturned)
        .await
        .unwrap();
    assert_eq!(overturned.state, pb::AchievementState::Submitted as i32);
    assert_eq!(overturned.review_round, 2);
    assert!(overturned.decision.is_none());
    assert_eq!(overturned.previous_decisions.len(), 1);
    assert_eq!(
        overturned.screening, a.screening,
        "the verdict is never rewritten"
    );
    assert!(overturned.appeal_deadline.is_empty());
    let s = resolve(&env, &a.name, pb::AppealResolution::Upheld)
        .await
        .unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "NO_PENDING_APPEAL");
    // An overturned rule veto goes to human review.
    expert(&env, "heat", &[HIGH_END_EQUIPMENT], &[], 2).await;
    let assigned = assign_auto(&env, &a.name, 1).await.unwrap();
    assert_eq!(assigned.reviews[0].round, 2);
    env.stop().await;
}

async fn a_non_owner_enterprise_sees_nothing(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(71);
    let stranger = uscc(72);
    env.register(&owner, "本企业").await;
    env.register(&stranger, "他企业").await;
    let a = submitted(
        &env,
        &owner,
        "秘密成果",
        BIOMEDICINE,
        green("2761", Some(1)),
    )
    .await;
    let mut c = env.client();
    let name = a.name.clone();
    let nf = |r: Result<tonic::Response<pb::Achievement>, Status>| {
        assert_eq!(r.unwrap_err().code(), Code::NotFound);
    };
    nf(c.get_achievement(
        env.as_enterprise(&stranger, pb::GetAchievementRequest { name: name.clone() }),
    )
    .await);
    nf(c.submit_achievement(env.as_enterprise(
        &stranger,
        pb::SubmitAchievementRequest {
            name: name.clone(),
            ..Default::default()
        },
    ))
    .await);
    nf(c.withdraw_achievement(env.as_enterprise(
        &stranger,
        pb::WithdrawAchievementRequest {
            name: name.clone(),
            ..Default::default()
        },
    ))
    .await);
    nf(c.appeal_veto(env.as_enterprise(
        &stranger,
        pb::AppealVetoRequest {
            name: name.clone(),
            grounds: "x".into(),
            ..Default::default()
        },
    ))
    .await);
    let s = c
        .screen_achievement(env.as_enterprise(
            &stranger,
            pb::ScreenAchievementRequest {
                name: name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let s = c
        .list_reviews(env.as_enterprise(
            &stranger,
            pb::ListReviewsRequest {
                parent: name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    for filter in ["", &format!("owner = \"enterprises/{owner}\"")] {
        let listed = c
            .list_achievements(env.as_enterprise(
                &stranger,
                pb::ListAchievementsRequest {
                    filter: filter.to_string(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(listed.achievements.is_empty(), "{filter}");
    }
    let s = c
        .create_achievement(env.as_enterprise(
            &stranger,
            pb::CreateAchievementRequest {
                achievement: Some(draft(&owner, "冒名", BIOMEDICINE, green("2761", Some(1)))),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    // The owner sees its own; an unassigned expert sees nothing either.
    let own = c
        .list_achievements(env.as_enterprise(&owner, pb::ListAchievementsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.achievements.len(), 1);
    expert(&env, "outsider", &[BIOMEDICINE], &[], 1).await;
    let s = c
        .get_achievement(
            env.as_expert("outsider", pb::GetAchievementRequest { name: name.clone() }),
        )
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    env.stop().await;
}

async fn registry_stopped_means_unavailable_and_nothing_written(backend: Backend) {
    let Some(mut env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(81);
    env.register(&owner, "菏泽科技有限公司").await;
    let a = create(
        &env,
        draft(&owner, "草稿", BIOMEDICINE, green("2761", Some(1))),
    )
    .await;
    let events_before = audit_events(&env).await.len();
    env.registry.take().unwrap().stop().await;
    let s = env
        .client()
        .create_achievement(env.as_enterprise(
            &owner,
            pb::CreateAchievementRequest {
                achievement: Some(draft(&owner, "新成果", BIOMEDICINE, green("2761", Some(1)))),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    let s = submit(&env, &owner, &a.name).await.unwrap_err();
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    assert_eq!(
        s.get_details_error_info().unwrap().reason,
        "DEPENDENCY_UNAVAILABLE"
    );
    // Nothing written: no new achievement, the draft untouched, no audit event.
    assert_eq!(audit_events(&env).await.len(), events_before);
    assert_eq!(
        get(&env, &a.name).await.state,
        pb::AchievementState::Draft as i32
    );
    let all = env
        .client()
        .list_achievements(env.as_role(Role::Officer, pb::ListAchievementsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.achievements.len(), 1);
    assert_chain_intact(&env).await;
    env.stop().await;
}

async fn an_unregistered_or_inactive_owner_is_refused(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let ghost = uscc(91);
    let s = env
        .client()
        .create_achievement(env.as_role(
            Role::Admin,
            pb::CreateAchievementRequest {
                achievement: Some(draft(&ghost, "无主", BIOMEDICINE, green("2761", Some(1)))),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&s),
        [(
            "OWNER_NOT_REGISTERED".to_string(),
            format!("enterprises/{ghost}")
        )]
    );
    let revoked = uscc(92);
    env.register(&revoked, "吊销企业").await;
    let a = create(
        &env,
        draft(&revoked, "成果", BIOMEDICINE, green("2761", Some(1))),
    )
    .await;
    // The licence is revoked in the registry (its own database) after the draft was made.
    let registry_db = &env.registry.as_ref().unwrap().db;
    registry_db
        .execute_raw(Statement::from_string(
            registry_db.get_database_backend(),
            format!("UPDATE enterprise SET state = 2 WHERE uscc = '{revoked}'"),
        ))
        .await
        .unwrap();
    let s = submit(&env, &revoked, &a.name).await.unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "OWNER_NOT_ACTIVE");
    assert_eq!(
        get(&env, &a.name).await.state,
        pb::AchievementState::Draft as i32
    );
    env.stop().await;
}

async fn drafts_update_by_mask_and_etag_and_withdrawal_cancels_open_reviews(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(101);
    env.register(&owner, "泰安新能源有限公司").await;
    let a = create(
        &env,
        draft(&owner, "旧标题", BIOMEDICINE, green("2761", None)),
    )
    .await;
    let mut c = env.client();
    let update =
        |etag: &str, paths: &[&str], title: &str, kgce: Option<i64>| pb::UpdateAchievementRequest {
            achievement: Some(pb::Achievement {
                name: a.name.clone(),
                title: title.to_string(),
                green_data: Some(pb::GreenData {
                    annual_energy_kgce: kgce,
                    industry_code: "9999".into(), // not in the mask: ignored
                    ..Default::default()
                }),
                etag: etag.to_string(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
            request_id: "6f1c1b1e-1d6a-4a43-9a39-0b7b1e1e0a01".into(),
        };
    let req = update(
        &a.etag,
        &["title", "green_data.annual_energy_kgce"],
        "新标题",
        Some(42_000),
    );
    let u = c
        .update_achievement(env.as_enterprise(&owner, req.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u.title, "新标题");
    let g = u.green_data.clone().unwrap();
    assert_eq!(
        (g.industry_code.as_str(), g.annual_energy_kgce),
        ("2761", Some(42_000))
    );
    assert_ne!(u.etag, a.etag);
    // The same request id replays the first result and changes nothing.
    let again = c
        .update_achievement(env.as_enterprise(&owner, req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, u);
    // A stale etag is ABORTED; an unknown mask path names update_mask.
    let mut stale = update(&a.etag, &["title"], "x", None);
    stale.request_id.clear();
    let s = c
        .update_achievement(env.as_enterprise(&owner, stale))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Aborted);
    let mut bad = update(&u.etag, &["state"], "x", None);
    bad.request_id.clear();
    let s = c
        .update_achievement(env.as_enterprise(&owner, bad))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&s), ["update_mask"]);

    // Submitted: no more updates; assigned, then withdrawn: the open review is cancelled.
    let submitted = submit(&env, &owner, &a.name).await.unwrap();
    let mut late = update(&submitted.etag, &["title"], "x", None);
    late.request_id.clear();
    let s = c
        .update_achievement(env.as_enterprise(&owner, late))
        .await
        .unwrap_err();
    assert_eq!(preconditions(&s)[0].0, "ACHIEVEMENT_NOT_DRAFT");
    expert(&env, "w1", &[BIOMEDICINE], &[], 1).await;
    let assigned = assign_auto(&env, &a.name, 1).await.unwrap();
    let withdrawn = c
        .withdraw_achievement(env.as_enterprise(
            &owner,
            pb::WithdrawAchievementRequest {
                name: a.name.clone(),
                reason: "转让他方".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.state, pb::AchievementState::Withdrawn as i32);
    assert_eq!(withdrawn.withdraw_reason, "转让他方");
    let r = c
        .get_review(env.as_role(
            Role::Admin,
            pb::GetReviewRequest {
                name: assigned.reviews[0].name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.state, pb::ReviewState::Cancelled as i32);
    assert_eq!(r.cancel_reason, "achievement withdrawn");
    // Every change is in the audit log, the chain intact.
    let events = audit_events(&env).await;
    assert!(
        events
            .iter()
            .any(|e| e.resource == assigned.reviews[0].name)
    );
    assert_eq!(events.iter().filter(|e| e.resource == a.name).count(), 5); // create, update, submit, assign, withdraw
    assert_chain_intact(&env).await;
    env.stop().await;
}

async fn bad_requests_name_their_fields(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(111);
    env.register(&owner, "枣庄企业").await;
    let mut c = env.client();
    let mut a = draft(&owner, "", 0, green("3x", Some(-5)));
    a.technology_readiness_level = 12;
    let s = c
        .create_achievement(env.as_enterprise(
            &owner,
            pb::CreateAchievementRequest {
                achievement: Some(a),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&s),
        [
            "achievement.title",
            "achievement.industry_field",
            "achievement.technology_readiness_level",
            "achievement.green_data.industry_code",
            "achievement.green_data.annual_energy_kgce",
        ]
    );
    expert(&env, "x1", &[BIOMEDICINE], &[], 2).await;
    let ok = submitted(&env, &owner, "成果", BIOMEDICINE, green("2761", Some(1))).await;
    let assigned = assign_auto(&env, &ok.name, 1).await.unwrap();
    let s = score(
        &env,
        "x1",
        &assigned.reviews[0].name,
        [31, 30, 21, -1],
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(
        bad_fields(&s),
        [
            "scores.innovation",
            "scores.economic_benefit",
            "scores.green_benefit"
        ]
    );
    let s = score(
        &env,
        "x1",
        &assigned.reviews[0].name,
        PERFECT,
        Some((pb::VetoCategory::Unspecified, "")),
    )
    .await
    .unwrap_err();
    assert_eq!(bad_fields(&s), ["veto.category", "veto.evidence"]);
    let s = c
        .assign_reviewers(env.as_role(
            Role::Admin,
            pb::AssignReviewersRequest {
                name: ok.name.clone(),
                reviewer_count: 1,
                experts: vec!["experts/x1".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&s), ["reviewer_count"]);
    let s = c
        .get_achievement(env.as_role(
            Role::Officer,
            pb::GetAchievementRequest {
                name: "achievement/1".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&s), ["name"]);
    let s = c
        .get_achievement(env.as_role(
            Role::Officer,
            pb::GetAchievementRequest {
                name: "achievements/0000".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let s = c
        .create_expert(env.as_role(
            Role::Admin,
            pb::CreateExpertRequest {
                expert_id: "Bad Id".into(),
                expert: Some(pb::Expert {
                    display_name: "x".into(),
                    industry_fields: vec![],
                    load_limit: 0,
                    affiliations: vec!["enterprises/123".into()],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&s),
        [
            "expert_id",
            "expert.industry_fields",
            "expert.affiliations[0]",
            "expert.load_limit"
        ]
    );
    // An expert may not raise its own load limit.
    let s = c
        .update_expert(env.as_expert(
            "x1",
            pb::UpdateExpertRequest {
                expert: Some(pb::Expert {
                    name: "experts/x1".into(),
                    load_limit: 100,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["load_limit".into()],
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    env.stop().await;
}

/// Calls `method` with an empty request as `role`.
async fn call_empty(env: &Env, method: &str, role: Role) -> Result<(), Status> {
    let mut c = env.client();
    macro_rules! call {
        ($m:ident, $req:ty) => {
            c.$m(env.as_role(role, <$req>::default())).await.map(|_| ())
        };
    }
    match method {
        "CreateAchievement" => call!(create_achievement, pb::CreateAchievementRequest),
        "GetAchievement" => call!(get_achievement, pb::GetAchievementRequest),
        "ListAchievements" => call!(list_achievements, pb::ListAchievementsRequest),
        "UpdateAchievement" => call!(update_achievement, pb::UpdateAchievementRequest),
        "SubmitAchievement" => call!(submit_achievement, pb::SubmitAchievementRequest),
        "WithdrawAchievement" => call!(withdraw_achievement, pb::WithdrawAchievementRequest),
        "DeleteAchievement" => call!(delete_achievement, pb::DeleteAchievementRequest),
        "DeleteVetoRuleSet" => call!(delete_veto_rule_set, pb::DeleteVetoRuleSetRequest),
        "CancelReview" => call!(cancel_review, pb::CancelReviewRequest),
        "ReassignReview" => call!(reassign_review, pb::ReassignReviewRequest),
        "CreateVetoRuleSet" => call!(create_veto_rule_set, pb::CreateVetoRuleSetRequest),
        "GetVetoRuleSet" => call!(get_veto_rule_set, pb::GetVetoRuleSetRequest),
        "ListVetoRuleSets" => call!(list_veto_rule_sets, pb::ListVetoRuleSetsRequest),
        "ActivateVetoRuleSet" => call!(activate_veto_rule_set, pb::ActivateVetoRuleSetRequest),
        "ScreenAchievement" => call!(screen_achievement, pb::ScreenAchievementRequest),
        "CreateExpert" => call!(create_expert, pb::CreateExpertRequest),
        "GetExpert" => call!(get_expert, pb::GetExpertRequest),
        "ListExperts" => call!(list_experts, pb::ListExpertsRequest),
        "UpdateExpert" => call!(update_expert, pb::UpdateExpertRequest),
        "DeclareConflict" => call!(declare_conflict, pb::DeclareConflictRequest),
        "AssignReviewers" => call!(assign_reviewers, pb::AssignReviewersRequest),
        "SubmitReview" => call!(submit_review, pb::SubmitReviewRequest),
        "GetReview" => call!(get_review, pb::GetReviewRequest),
        "ListReviews" => call!(list_reviews, pb::ListReviewsRequest),
        "FinalizeDecision" => call!(finalize_decision, pb::FinalizeDecisionRequest),
        "AppealVeto" => call!(appeal_veto, pb::AppealVetoRequest),
        "ResolveAppeal" => call!(resolve_appeal, pb::ResolveAppealRequest),
        "BatchGetAchievementStatus" => {
            call!(
                batch_get_achievement_status,
                pb::BatchGetAchievementStatusRequest
            )
        }
        "ListChanges" => call!(list_changes, pb::ListChangesRequest),
        "WatchChanges" => call!(watch_changes, pb::WatchChangesRequest),
        "GetChangeFeedHead" => call!(get_change_feed_head, pb::GetChangeFeedHeadRequest),
        "ExportSnapshot" => call!(export_snapshot, pb::ExportSnapshotRequest),
        "ListAuditEvents" => call!(list_audit_events, cpb::ListAuditEventsRequest),
        "VerifyAuditChain" => call!(verify_audit_chain, cpb::VerifyAuditChainRequest),
        other => panic!("no call for {other}"),
    }
}

async fn every_role_outside_the_table_is_refused_before_the_handler(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mut refused = 0;
    for entry in qilu_review::roles::ROLE_TABLE {
        for role in Role::ALL {
            let result = call_empty(&env, entry.method, role).await;
            if entry.roles.contains(&role) {
                // Allowed through the table; an empty request then fails (or not) on its merits.
                if let Err(s) = &result {
                    assert_ne!(
                        s.code(),
                        Code::Unauthenticated,
                        "{} as {role}",
                        entry.method
                    );
                }
            } else {
                let s = result.expect_err(&format!("{} as {role} must be refused", entry.method));
                assert_eq!(
                    s.code(),
                    Code::PermissionDenied,
                    "{} as {role}: {s:?}",
                    entry.method
                );
                refused += 1;
            }
        }
    }
    assert!(refused > 50, "{refused}");
    // No refused call wrote anything.
    assert!(audit_events(&env).await.is_empty());
    env.stop().await;
}

async fn paging_through_achievements_and_experts_returns_each_once(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(121);
    env.register(&owner, "滨州企业").await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(
            create(
                &env,
                draft(
                    &owner,
                    &format!("成果{i}"),
                    BIOMEDICINE,
                    green("2761", None),
                ),
            )
            .await
            .name,
        );
        expert(&env, &format!("pg-{i}"), &[BIOMEDICINE], &[], 1).await;
    }
    for order in ["", "create_time desc"] {
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = env
                .client()
                .list_achievements(env.as_enterprise(
                    &owner,
                    pb::ListAchievementsRequest {
                        page_size: 3,
                        page_token: token.clone(),
                        order_by: order.into(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            assert!(page.achievements.len() <= 3);
            seen.extend(page.achievements.into_iter().map(|a| a.name));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let mut expected = made.clone();
        if order.ends_with("desc") {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{order:?}");
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = env
            .client()
            .list_experts(env.as_role(
                Role::Officer,
                pb::ListExpertsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    filter: "industry_fields = INDUSTRY_FIELD_BIOMEDICINE AND state = EXPERT_STATE_ACTIVE".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        names.extend(page.experts.into_iter().map(|e| e.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        names,
        (0..7)
            .map(|i| format!("experts/pg-{i}"))
            .collect::<Vec<_>>()
    );
    // A token is bound to its query.
    let first = env
        .client()
        .list_achievements(env.as_role(
            Role::Officer,
            pb::ListAchievementsRequest {
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let s = env
        .client()
        .list_achievements(env.as_role(
            Role::Officer,
            pb::ListAchievementsRequest {
                page_size: 1,
                page_token: first.next_page_token,
                filter: "title:\"成果\"".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&s), ["page_token"]);
    env.stop().await;
}

async fn a_repeated_request_id_creates_one_achievement(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(131);
    env.register(&owner, "德州企业").await;
    let request = pb::CreateAchievementRequest {
        achievement: Some(draft(&owner, "一次", BIOMEDICINE, green("2761", Some(1)))),
        request_id: "0b6f3c2e-8f0a-4c55-9b1e-3d2a7c9e4f10".into(),
    };
    let first = env
        .client()
        .create_achievement(env.as_enterprise(&owner, request.clone()))
        .await
        .unwrap()
        .into_inner();
    let second = env
        .client()
        .create_achievement(env.as_enterprise(&owner, request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    let events = audit_events(&env).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].resource, first.name);
    assert_eq!(events[0].request_id, "0b6f3c2e-8f0a-4c55-9b1e-3d2a7c9e4f10");
    env.stop().await;
}
