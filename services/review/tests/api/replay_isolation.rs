//! Replay isolation for every mutating RPC of the review service: caller A performs a request
//! with request id X; caller B — another enterprise, another expert, another officer or admin —
//! sends the identical request with X and gets its own treatment (refused by the handler, or
//! its own fresh result), never A's stored response. The list of RPCs comes from the
//! descriptor set (every method whose request has `request_id`): a new mutating RPC without a
//! case here fails `every_mutating_rpc_has_an_isolation_case`. Both backends, with the
//! registry running for real.

use qilu_common::auth::Role;
use qilu_common::testing::Backend;
use qilu_common::testing::replay::{Expect, Principal, assert_isolated, request_id};
use qilu_common::{isolation_call, isolation_cases};
use qilu_proto::common as cpb;
use qilu_proto::review as pb;
use tonic::Code;

use crate::support::{Env, uscc};

isolation_cases!(
    "qilu.review.v1",
    "AchievementReviewService",
    cases: {
        create_achievement => "CreateAchievement",
        update_achievement => "UpdateAchievement",
        submit_achievement => "SubmitAchievement",
        withdraw_achievement => "WithdrawAchievement",
        finalize_decision => "FinalizeDecision",
        appeal_veto => "AppealVeto",
        resolve_appeal => "ResolveAppeal",
        create_veto_rule_set => "CreateVetoRuleSet",
        activate_veto_rule_set => "ActivateVetoRuleSet",
        create_expert => "CreateExpert",
        update_expert => "UpdateExpert",
        declare_conflict => "DeclareConflict",
        assign_reviewers => "AssignReviewers",
        submit_review => "SubmitReview",
        delete_achievement => "DeleteAchievement",
        delete_veto_rule_set => "DeleteVetoRuleSet",
        cancel_review => "CancelReview",
        reassign_review => "ReassignReview",
    },
    also: {
        another_callers_request_id_tells_nothing_and_the_same_caller_reusing_it_is_refused,
        a_retry_while_the_registry_is_down_replays_create_and_submit,
    },
);

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

const FIELD: i32 = cpb::IndustryField::HighEndEquipment as i32;

/// The registry and review services with enterprises 1 and 2 registered.
async fn start(backend: Backend) -> Option<Env> {
    let env = Env::start(backend).await?;
    for code in [uscc(1), uscc(2)] {
        env.register(&code, &format!("山东科技有限公司{code}"))
            .await;
    }
    Some(env)
}

/// The fixtures only these cases use.
impl Env {
    /// Enterprise 1 (A) and enterprise 2 (B).
    fn enterprises(&self) -> (Principal, Principal) {
        (
            Principal::enterprise(&self.review, &uscc(1)),
            Principal::enterprise(&self.review, &uscc(2)),
        )
    }

    fn admin(&self) -> Principal {
        Principal::staff(&self.review, "setup-admin", Role::Admin)
    }

    /// A draft of enterprise 1; `energy_kgce` of 80,000,000 in industry 4411 is vetoed at
    /// submission by the default rule set.
    async fn draft(&self, industry: &str, energy_kgce: i64) -> pb::Achievement {
        let owner = uscc(1);
        self.client()
            .create_achievement(self.review.enterprise_request(
                &owner,
                pb::CreateAchievementRequest {
                    achievement: Some(draft(&owner, industry, energy_kgce)),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn submitted(&self, industry: &str, energy_kgce: i64) -> pb::Achievement {
        let a = self.draft(industry, energy_kgce).await;
        self.client()
            .submit_achievement(self.review.enterprise_request(
                &uscc(1),
                pb::SubmitAchievementRequest {
                    name: a.name,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn expert(&self, id: &str) {
        self.client()
            .create_expert(self.admin().request(expert_request(id, String::new())))
            .await
            .unwrap();
    }

    /// A submitted achievement with one expert (`r1`) assigned; returns it and the review.
    async fn under_review(&self) -> (pb::Achievement, String) {
        self.expert("r1").await;
        let a = self.submitted("3421", 50_000).await;
        let assigned = self
            .client()
            .assign_reviewers(self.admin().request(pb::AssignReviewersRequest {
                name: a.name.clone(),
                reviewer_count: 1,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        (a, assigned.reviews[0].name.clone())
    }
}

fn draft(owner: &str, industry: &str, energy_kgce: i64) -> pb::Achievement {
    pb::Achievement {
        owner: format!("enterprises/{owner}"),
        title: "数控机床".into(),
        industry_field: FIELD,
        technology_readiness_level: 7,
        summary: "成果简介".into(),
        green_data: Some(pb::GreenData {
            industry_code: industry.to_string(),
            annual_energy_kgce: Some(energy_kgce),
            annual_electricity_kwh: Some(1_200_000),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn expert_request(id: &str, request_id: String) -> pb::CreateExpertRequest {
    pb::CreateExpertRequest {
        expert_id: id.to_string(),
        expert: Some(pb::Expert {
            display_name: format!("专家{id}"),
            industry_fields: vec![FIELD],
            organization: "山东大学".into(),
            load_limit: 5,
            ..Default::default()
        }),
        request_id,
    }
}

fn review_request(name: &str, request_id: &str) -> pb::SubmitReviewRequest {
    pb::SubmitReviewRequest {
        name: name.to_string(),
        scores: Some(pb::CriterionScores {
            innovation: 25,
            technical_level: 25,
            economic_benefit: 15,
            green_benefit: 15,
        }),
        comment: "评审意见".into(),
        request_id: request_id.to_string(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// One case per mutating RPC
// ---------------------------------------------------------------------------------------------

async fn create_achievement(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let (a, b) = env.enterprises();
    let x = request_id();
    let req = pb::CreateAchievementRequest {
        achievement: Some(draft(&uscc(1), "3421", 50_000)),
        request_id: x.clone(),
    };
    // B may create only for itself: refused, and never shown A's draft.
    assert_isolated(
        &env.review.db,
        "CreateAchievement",
        &x,
        &a,
        &b,
        Expect::Refused(Code::PermissionDenied),
        isolation_call!(env.client(), create_achievement, req),
    )
    .await;
    // An admin acting with the same id does its own work: a second, separate draft.
    let (admin, _) = Principal::pair(&env.review, Role::Admin);
    let req = pb::CreateAchievementRequest {
        achievement: Some(draft(&uscc(1), "3421", 50_000)),
        request_id: request_id(),
    };
    let y = req.request_id.clone();
    assert_isolated(
        &env.review.db,
        "CreateAchievement",
        &y,
        &a,
        &admin,
        Expect::Fresh,
        isolation_call!(env.client(), create_achievement, req),
    )
    .await;
}

async fn update_achievement(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let d = env.draft("3421", 50_000).await;
    let (a, b) = env.enterprises();
    let x = request_id();
    let req = pb::UpdateAchievementRequest {
        achievement: Some(pb::Achievement {
            name: d.name.clone(),
            title: "新标题".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["title".into()],
        }),
        request_id: x.clone(),
    };
    assert_isolated(
        &env.review.db,
        "UpdateAchievement",
        &x,
        &a,
        &b,
        Expect::Refused(Code::NotFound),
        isolation_call!(env.client(), update_achievement, req),
    )
    .await;
}

async fn submit_achievement(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let d = env.draft("3421", 50_000).await;
    let (a, b) = env.enterprises();
    let x = request_id();
    let req = pb::SubmitAchievementRequest {
        name: d.name.clone(),
        request_id: x.clone(),
        ..Default::default()
    };
    assert_isolated(
        &env.review.db,
        "SubmitAchievement",
        &x,
        &a,
        &b,
        Expect::Refused(Code::NotFound),
        isolation_call!(env.client(), submit_achievement, req),
    )
    .await;
}

async fn withdraw_achievement(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let d = env.draft("3421", 50_000).await;
    let (a, b) = env.enterprises();
    let x = request_id();
    let req = pb::WithdrawAchievementRequest {
        name: d.name.clone(),
        reason: "不再申报".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    assert_isolated(
        &env.review.db,
        "WithdrawAchievement",
        &x,
        &a,
        &b,
        Expect::Refused(Code::NotFound),
        isolation_call!(env.client(), withdraw_achievement, req),
    )
    .await;
}

async fn finalize_decision(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let (achievement, review) = env.under_review().await;
    env.client()
        .submit_review(Principal::expert(&env.review, "r1").request(review_request(&review, "")))
        .await
        .unwrap();
    let (a, b) = Principal::pair(&env.review, Role::Officer);
    let x = request_id();
    let req = pb::FinalizeDecisionRequest {
        name: achievement.name.clone(),
        request_id: x.clone(),
        ..Default::default()
    };
    // B's own finalize finds the decision already made.
    assert_isolated(
        &env.review.db,
        "FinalizeDecision",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), finalize_decision, req),
    )
    .await;
}

async fn appeal_veto(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let vetoed = env.submitted("4411", 80_000_000).await;
    assert_eq!(vetoed.state, pb::AchievementState::Vetoed as i32);
    let (a, b) = env.enterprises();
    let x = request_id();
    let req = pb::AppealVetoRequest {
        name: vetoed.name.clone(),
        grounds: "评审程序存在瑕疵".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    assert_isolated(
        &env.review.db,
        "AppealVeto",
        &x,
        &a,
        &b,
        Expect::Refused(Code::NotFound),
        isolation_call!(env.client(), appeal_veto, req),
    )
    .await;
}

async fn resolve_appeal(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let vetoed = env.submitted("4411", 80_000_000).await;
    env.client()
        .appeal_veto(env.review.enterprise_request(
            &uscc(1),
            pb::AppealVetoRequest {
                name: vetoed.name.clone(),
                grounds: "评审程序存在瑕疵".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let (a, b) = Principal::pair(&env.review, Role::Admin);
    let x = request_id();
    let req = pb::ResolveAppealRequest {
        name: vetoed.name.clone(),
        resolution: pb::AppealResolution::Upheld as i32,
        reason: "经复核".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    // B's own resolution finds no pending appeal.
    assert_isolated(
        &env.review.db,
        "ResolveAppeal",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), resolve_appeal, req),
    )
    .await;
}

fn rule_set_request(id: &str, request_id: &str) -> pb::CreateVetoRuleSetRequest {
    pb::CreateVetoRuleSetRequest {
        veto_rule_set_id: id.to_string(),
        veto_rule_set: Some(pb::VetoRuleSet {
            display_name: "Two-high screening".into(),
            description: "Scope: GB/T 4754 division 31 (steel). Threshold: 10,000 tce.".into(),
            industry_scope: vec![pb::IndustryScopeEntry {
                code: "31".into(),
                description: "黑色金属冶炼和压延加工业 (steel)".into(),
            }],
            annual_energy_threshold_kgce: 10_000_000,
            ..Default::default()
        }),
        request_id: request_id.to_string(),
    }
}

async fn create_veto_rule_set(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.review, Role::Admin);
    let x = request_id();
    // B's own create of the same id finds it taken.
    assert_isolated(
        &env.review.db,
        "CreateVetoRuleSet",
        &x,
        &a,
        &b,
        Expect::Refused(Code::AlreadyExists),
        isolation_call!(
            env.client(),
            create_veto_rule_set,
            rule_set_request("isolation", &x)
        ),
    )
    .await;
}

async fn activate_veto_rule_set(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let created = env
        .client()
        .create_veto_rule_set(env.admin().request(rule_set_request("isolation", "")))
        .await
        .unwrap()
        .into_inner();
    let (a, b) = Principal::pair(&env.review, Role::Admin);
    let x = request_id();
    let req = pb::ActivateVetoRuleSetRequest {
        name: created.name.clone(),
        etag: created.etag.clone(),
        request_id: x.clone(),
    };
    // B's own activation with the etag A's activation made stale.
    assert_isolated(
        &env.review.db,
        "ActivateVetoRuleSet",
        &x,
        &a,
        &b,
        Expect::Refused(Code::Aborted),
        isolation_call!(env.client(), activate_veto_rule_set, req),
    )
    .await;
}

async fn create_expert(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.review, Role::Admin);
    let x = request_id();
    assert_isolated(
        &env.review.db,
        "CreateExpert",
        &x,
        &a,
        &b,
        Expect::Refused(Code::AlreadyExists),
        isolation_call!(env.client(), create_expert, expert_request("e1", x.clone())),
    )
    .await;
}

async fn update_expert(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    env.expert("e1").await;
    env.expert("e2").await;
    let a = Principal::expert(&env.review, "e1");
    let b = Principal::expert(&env.review, "e2");
    let x = request_id();
    let req = pb::UpdateExpertRequest {
        expert: Some(pb::Expert {
            name: "experts/e1".into(),
            organization: "中国科学院".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["organization".into()],
        }),
        request_id: x.clone(),
    };
    // Expert e2 may update only itself.
    assert_isolated(
        &env.review.db,
        "UpdateExpert",
        &x,
        &a,
        &b,
        Expect::Refused(Code::PermissionDenied),
        isolation_call!(env.client(), update_expert, req),
    )
    .await;
}

async fn declare_conflict(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    env.expert("e1").await;
    env.expert("e2").await;
    let a = Principal::expert(&env.review, "e1");
    let b = Principal::expert(&env.review, "e2");
    let x = request_id();
    let req = pb::DeclareConflictRequest {
        name: "experts/e1".into(),
        enterprise: format!("enterprises/{}", uscc(1)),
        reason: "董事长是我的同学".into(),
        request_id: x.clone(),
    };
    assert_isolated(
        &env.review.db,
        "DeclareConflict",
        &x,
        &a,
        &b,
        Expect::Refused(Code::PermissionDenied),
        isolation_call!(env.client(), declare_conflict, req),
    )
    .await;
}

async fn assign_reviewers(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    env.expert("r1").await;
    env.expert("r2").await;
    let achievement = env.submitted("3421", 50_000).await;
    let (a, b) = Principal::pair(&env.review, Role::Officer);
    let x = request_id();
    let req = pb::AssignReviewersRequest {
        name: achievement.name.clone(),
        reviewer_count: 1,
        request_id: x.clone(),
        ..Default::default()
    };
    // B's own automatic assignment adds a reviewer of its own.
    assert_isolated(
        &env.review.db,
        "AssignReviewers",
        &x,
        &a,
        &b,
        Expect::Fresh,
        isolation_call!(env.client(), assign_reviewers, req),
    )
    .await;
}

async fn submit_review(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let (_, review) = env.under_review().await;
    env.expert("r2").await;
    let a = Principal::expert(&env.review, "r1");
    let b = Principal::expert(&env.review, "r2");
    let x = request_id();
    // Expert r2 is not assigned to r1's review.
    assert_isolated(
        &env.review.db,
        "SubmitReview",
        &x,
        &a,
        &b,
        Expect::Refused(Code::PermissionDenied),
        isolation_call!(env.client(), submit_review, review_request(&review, &x)),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Around the cases
// ---------------------------------------------------------------------------------------------

/// B's *different* request under A's id is simply B's own request (no "id already used"
/// answer that would tell B about A's call); A reusing its own id for another request is
/// still INVALID_ARGUMENT REQUEST_ID_REUSED (AIP-155).
async fn another_callers_request_id_tells_nothing_and_the_same_caller_reusing_it_is_refused(
    backend: Backend,
) {
    let Some(env) = start(backend).await else {
        return;
    };
    let (a, b) = env.enterprises();
    let x = request_id();
    let create = |owner: &str| pb::CreateAchievementRequest {
        achievement: Some(draft(owner, "3421", 50_000)),
        request_id: x.clone(),
    };
    let mine = env
        .client()
        .create_achievement(a.request(create(&uscc(1))))
        .await
        .unwrap()
        .into_inner();
    let theirs = env
        .client()
        .create_achievement(b.request(create(&uscc(2))))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(theirs.name, mine.name);
    assert_eq!(theirs.owner, format!("enterprises/{}", uscc(2)));
    let mut other = create(&uscc(1));
    other.achievement.as_mut().unwrap().title = "另一个成果".into();
    let s = env
        .client()
        .create_achievement(a.request(other))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert_eq!(
        tonic_types::StatusExt::get_details_bad_request(&s)
            .unwrap()
            .field_violations[0]
            .reason,
        "REQUEST_ID_REUSED"
    );
    // A token refresh (a new token, same claims) still replays.
    let subject = format!("enterprise-{}", uscc(1));
    let token = qilu_common::auth::mint_hs256(
        &env.review.config.auth,
        &qilu_common::auth::TokenRequest {
            subject: subject.clone(),
            roles: vec![Role::Enterprise],
            enterprise: Some(uscc(1)),
            expert: None,
            ttl_seconds: 7200,
        },
    )
    .unwrap();
    let refreshed = Principal {
        bearer: format!("Bearer {token}"),
        subject,
    };
    assert_ne!(refreshed.bearer, a.bearer);
    let again = env
        .client()
        .create_achievement(refreshed.request(create(&uscc(1))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, mine);
}

/// A create or submit that completed replays on retry even while the registry is down: the
/// replay is looked up before the registry is asked. A new request still gets UNAVAILABLE.
async fn a_retry_while_the_registry_is_down_replays_create_and_submit(backend: Backend) {
    let Some(mut env) = start(backend).await else {
        return;
    };
    let owner = Principal::enterprise(&env.review, &uscc(1));
    let create = pb::CreateAchievementRequest {
        achievement: Some(draft(&uscc(1), "3421", 50_000)),
        request_id: request_id(),
    };
    let created = env
        .client()
        .create_achievement(owner.request(create.clone()))
        .await
        .unwrap()
        .into_inner();
    let submit = pb::SubmitAchievementRequest {
        name: created.name.clone(),
        request_id: request_id(),
        ..Default::default()
    };
    let submitted = env
        .client()
        .submit_achievement(owner.request(submit.clone()))
        .await
        .unwrap()
        .into_inner();
    env.registry.take().unwrap().stop().await;
    let again = env
        .client()
        .create_achievement(owner.request(create.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, created);
    let again = env
        .client()
        .submit_achievement(owner.request(submit))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, submitted);
    // Not a replay: the registry is needed, and it is down.
    let s = env
        .client()
        .create_achievement(owner.request(pb::CreateAchievementRequest {
            request_id: request_id(),
            ..create
        }))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
}

async fn delete_achievement(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let d = env.draft("3421", 50_000).await;
    let (a, b) = env.enterprises();
    let x = request_id();
    let req = pb::DeleteAchievementRequest {
        name: d.name.clone(),
        request_id: x.clone(),
        ..Default::default()
    };
    // B never learns that A's draft existed.
    assert_isolated(
        &env.review.db,
        "DeleteAchievement",
        &x,
        &a,
        &b,
        Expect::Refused(Code::NotFound),
        isolation_call!(env.client(), delete_achievement, req),
    )
    .await;
}

async fn delete_veto_rule_set(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    env.client()
        .create_veto_rule_set(env.admin().request(rule_set_request("steel-typo", "")))
        .await
        .unwrap();
    let (a, b) = Principal::pair(&env.review, Role::Admin);
    let x = request_id();
    let req = pb::DeleteVetoRuleSetRequest {
        name: "vetoRuleSets/steel-typo".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    // B's own delete finds it gone.
    assert_isolated(
        &env.review.db,
        "DeleteVetoRuleSet",
        &x,
        &a,
        &b,
        Expect::Refused(Code::NotFound),
        isolation_call!(env.client(), delete_veto_rule_set, req),
    )
    .await;
}

async fn cancel_review(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let (_, review) = env.under_review().await;
    let (a, b) = Principal::pair(&env.review, Role::Admin);
    let x = request_id();
    let req = pb::CancelReviewRequest {
        name: review,
        reason: "专家失联".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    // B's own cancellation finds the review cancelled already.
    assert_isolated(
        &env.review.db,
        "CancelReview",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), cancel_review, req),
    )
    .await;
}

async fn reassign_review(backend: Backend) {
    let Some(env) = start(backend).await else {
        return;
    };
    let (_, review) = env.under_review().await;
    env.expert("r2").await;
    let (a, b) = Principal::pair(&env.review, Role::Admin);
    let x = request_id();
    let req = pb::ReassignReviewRequest {
        name: review,
        expert: "experts/r2".into(),
        reason: "专家失联".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    // B's own reassignment finds the review taken away already.
    assert_isolated(
        &env.review.db,
        "ReassignReview",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), reassign_review, req),
    )
    .await;
}
