//! The review workflow's remedies and deletions as a caller sees them (issue 18): an admin
//! cancels or reassigns an assigned review that never comes (conflict rules still hold for the
//! new expert, the reason is recorded, experts' open-review counts follow), reviews are due on
//! a date and overdue ones are listed as the service's clock moves, a cancelled review no longer
//! blocks the decision, and only drafts are deleted (a DRAFT achievement, a rule set never
//! activated): gone from Get and List, a DELETED change in the feed, left out of snapshots, ids
//! and versions never reused. Both backends, the registry running for real.

use chrono::Days;
use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::Backend;
use qilu_common::testing::replay::request_id;
use qilu_proto::common as cpb;
use qilu_proto::review as pb;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::{Env, uscc};

on_both_backends!(
    an_admin_cancels_a_silent_review_and_the_others_decide,
    a_review_is_reassigned_only_to_an_expert_free_of_conflict,
    reviews_are_due_in_thirty_days_and_listed_once_overdue,
    a_draft_achievement_is_deleted_and_nothing_else_is,
    only_a_rule_set_never_activated_is_deleted_and_its_id_stays_retired,
);

const FIELD: i32 = cpb::IndustryField::Biomedicine as i32;
const SCORES: [i32; 4] = [25, 25, 15, 15];

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

async fn draft(env: &Env, owner: &str) -> pb::Achievement {
    env.client()
        .create_achievement(env.as_enterprise(
            owner,
            pb::CreateAchievementRequest {
                achievement: Some(pb::Achievement {
                    owner: format!("enterprises/{owner}"),
                    title: "抗体药物".into(),
                    industry_field: FIELD,
                    technology_readiness_level: 7,
                    summary: "成果简介".into(),
                    green_data: Some(pb::GreenData {
                        industry_code: "2761".into(),
                        annual_energy_kgce: Some(50_000),
                        annual_electricity_kwh: Some(1_200_000),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create: {s:?}"))
        .into_inner()
}

async fn submitted(env: &Env, owner: &str) -> pb::Achievement {
    let a = draft(env, owner).await;
    env.client()
        .submit_achievement(env.as_enterprise(
            owner,
            pb::SubmitAchievementRequest {
                name: a.name,
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("submit: {s:?}"))
        .into_inner()
}

async fn expert(env: &Env, id: &str, affiliations: &[&str]) {
    env.client()
        .create_expert(
            env.as_role(
                Role::Admin,
                pb::CreateExpertRequest {
                    expert_id: id.to_string(),
                    expert: Some(pb::Expert {
                        display_name: format!("专家{id}"),
                        industry_fields: vec![FIELD],
                        affiliations: affiliations
                            .iter()
                            .map(|u| format!("enterprises/{u}"))
                            .collect(),
                        organization: "山东大学".into(),
                        load_limit: 5,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ),
        )
        .await
        .unwrap_or_else(|s| panic!("create expert {id}: {s:?}"));
}

/// Assigns the named experts (admin, manual); returns the reviews in the order named.
async fn assign(env: &Env, achievement: &str, experts: &[&str], due: &str) -> Vec<pb::Review> {
    let assigned = env
        .client()
        .assign_reviewers(env.as_role(
            Role::Admin,
            pb::AssignReviewersRequest {
                name: achievement.to_string(),
                experts: experts.iter().map(|e| format!("experts/{e}")).collect(),
                due_date: due.to_string(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("assign: {s:?}"))
        .into_inner();
    experts
        .iter()
        .map(|e| {
            assigned
                .reviews
                .iter()
                .find(|r| r.expert == format!("experts/{e}"))
                .cloned()
                .unwrap_or_else(|| panic!("no review for {e}"))
        })
        .collect()
}

async fn score(env: &Env, expert: &str, review: &str) -> Result<pb::Review, Status> {
    env.client()
        .submit_review(env.as_expert(
            expert,
            pb::SubmitReviewRequest {
                name: review.to_string(),
                scores: Some(pb::CriterionScores {
                    innovation: SCORES[0],
                    technical_level: SCORES[1],
                    economic_benefit: SCORES[2],
                    green_benefit: SCORES[3],
                }),
                comment: "评审意见".into(),
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

async fn cancel(
    env: &Env,
    role: Role,
    review: &str,
    reason: &str,
    request_id: &str,
) -> Result<pb::Review, Status> {
    env.client()
        .cancel_review(env.as_role(
            role,
            pb::CancelReviewRequest {
                name: review.to_string(),
                reason: reason.to_string(),
                request_id: request_id.to_string(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn reassign(
    env: &Env,
    review: &str,
    to: &str,
    request_id: &str,
) -> Result<pb::ReassignReviewResponse, Status> {
    env.client()
        .reassign_review(env.as_role(
            Role::Admin,
            pb::ReassignReviewRequest {
                name: review.to_string(),
                expert: format!("experts/{to}"),
                reason: "专家长期未提交评审 (no review after 40 days)".into(),
                request_id: request_id.to_string(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn get_review(env: &Env, name: &str) -> pb::Review {
    env.client()
        .get_review(env.as_role(
            Role::Auditor,
            pb::GetReviewRequest {
                name: name.to_string(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("get review: {s:?}"))
        .into_inner()
}

async fn open_reviews(env: &Env, id: &str) -> i32 {
    env.client()
        .get_expert(env.as_role(
            Role::Auditor,
            pb::GetExpertRequest {
                name: format!("experts/{id}"),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .open_reviews
}

/// Every review name `ListReviews` gives `request`'s caller for `filter`, over all achievements.
async fn list_reviews(env: &Env, role: Role, filter: &str) -> Result<Vec<String>, Status> {
    env.client()
        .list_reviews(env.as_role(
            role,
            pb::ListReviewsRequest {
                parent: "achievements/-".into(),
                filter: filter.to_string(),
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner().reviews.into_iter().map(|r| r.name).collect())
}

/// Every change of the feed `request`'s caller sees, as (resource, kind, has state).
async fn changes(env: &Env, as_enterprise: Option<&str>) -> Vec<(String, i32, bool)> {
    let req = pb::ListChangesRequest {
        page_size: 1000,
        ..Default::default()
    };
    let req = match as_enterprise {
        Some(u) => env.as_enterprise(u, req),
        None => env.as_role(Role::Auditor, req),
    };
    env.client()
        .list_changes(req)
        .await
        .unwrap()
        .into_inner()
        .changes
        .into_iter()
        .map(|c| (c.resource, c.kind, c.new_state.is_some()))
        .collect()
}

/// The resources of an `ExportSnapshot` as an auditor sees it.
async fn snapshot(env: &Env) -> Vec<String> {
    let mut stream = env
        .client()
        .export_snapshot(env.as_role(Role::Auditor, pb::ExportSnapshotRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        out.extend(message.changes.into_iter().map(|c| c.resource));
    }
    out
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

const DELETED: i32 = pb::ChangeKind::Deleted as i32;
const ASSIGNED: i32 = pb::ReviewState::Assigned as i32;
const CANCELLED: i32 = pb::ReviewState::Cancelled as i32;

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// Three experts assigned, two submit, one never does: the decision waits for it until an admin
/// cancels it with a reason; then the two decide.
async fn an_admin_cancels_a_silent_review_and_the_others_decide(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(301);
    env.register(&owner, "济南生物医药有限公司").await;
    for e in ["li", "wang", "zhao"] {
        expert(&env, e, &[]).await;
    }
    let a = submitted(&env, &owner).await;
    let reviews = assign(&env, &a.name, &["li", "wang", "zhao"], "").await;
    score(&env, "li", &reviews[0].name).await.unwrap();
    score(&env, "wang", &reviews[1].name).await.unwrap();
    let silent = &reviews[2].name;
    // Today the silent review blocks the decision, by name.
    let s = finalize(&env, &a.name).await.unwrap_err();
    assert_eq!(
        preconditions(&s),
        [("REVIEW_NOT_SUBMITTED".to_string(), silent.clone())]
    );
    assert_eq!(open_reviews(&env, "zhao").await, 1);

    // Only an admin cancels, and only with a reason.
    for role in [Role::Officer, Role::Auditor, Role::Expert, Role::Enterprise] {
        let s = cancel(&env, role, silent, "无响应", "").await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{role}: {s:?}");
    }
    let s = cancel(&env, Role::Admin, silent, "", "").await.unwrap_err();
    assert_eq!(bad_fields(&s), ["reason"]);
    let s = cancel(&env, Role::Admin, "achievements/x", "无响应", "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&s), ["name"]);
    assert_eq!(get_review(&env, silent).await.state, ASSIGNED);

    // Cancelled, with the admin's reason; a retry with the same request id answers the same.
    let x = request_id();
    let reason = "专家失联超过30天 (unreachable for 30 days)";
    let cancelled = cancel(&env, Role::Admin, silent, reason, &x).await.unwrap();
    assert_eq!(cancelled.state, CANCELLED);
    assert_eq!(cancelled.cancel_reason, reason);
    assert_eq!(
        cancel(&env, Role::Admin, silent, reason, &x).await.unwrap(),
        cancelled
    );
    assert_eq!(get_review(&env, silent).await, cancelled);
    assert_eq!(open_reviews(&env, "zhao").await, 0);
    // A cancelled review stays cancelled.
    let s = cancel(&env, Role::Admin, silent, reason, "")
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&s),
        [("REVIEW_NOT_OPEN".to_string(), silent.clone())]
    );
    // Nor can its expert still score it.
    let s = score(&env, "zhao", silent).await.unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    // A submitted review cannot be cancelled.
    let s = cancel(&env, Role::Admin, &reviews[0].name, reason, "")
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&s),
        [("REVIEW_NOT_OPEN".to_string(), reviews[0].name.clone())]
    );

    // The audit log holds the cancellation with the admin and the reason, and the expert's new
    // open-review count follows in the feed.
    let events = env
        .client()
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
        .audit_events;
    let event = events
        .iter()
        .find(|e| e.method.ends_with("/CancelReview") && e.resource == *silent)
        .expect("the cancellation is audited");
    assert_eq!(event.actor_roles, ["admin"]);
    assert!(event.state_json.contains(reason), "{}", event.state_json);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.method.ends_with("/CancelReview"))
            .map(|e| e.resource.as_str())
            .collect::<Vec<_>>(),
        [silent.as_str(), "experts/zhao"],
        "one cancellation (the retry wrote nothing), and the expert's new load"
    );
    let feed = env
        .client()
        .list_changes(env.as_role(
            Role::Auditor,
            pb::ListChangesRequest {
                page_size: 1000,
                filter: r#"resource = "experts/zhao""#.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .changes;
    match feed.last().and_then(|c| c.new_state.clone()) {
        Some(pb::change::NewState::Expert(e)) => assert_eq!(e.open_reviews, 0),
        other => panic!("the expert's newest change: {other:?}"),
    }

    // The decision now rests on the two submitted reviews.
    let decided = finalize(&env, &a.name).await.unwrap();
    assert_eq!(decided.state, pb::AchievementState::Approved as i32);
    let decision = decided.decision.unwrap();
    assert_eq!(decision.score_count, 2);
    let used: Vec<&str> = decision.scores.iter().map(|s| s.review.as_str()).collect();
    assert!(!used.contains(&silent.as_str()), "{used:?}");
    env.stop().await;
}

/// A silent expert's review goes to another expert: never to one in conflict with the owner or
/// one who already held a review of the round; the load moves with it; the new expert decides.
async fn a_review_is_reassigned_only_to_an_expert_free_of_conflict(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(302);
    env.register(&owner, "青岛生物科技有限公司").await;
    expert(&env, "silent", &[]).await;
    expert(&env, "other", &[]).await;
    expert(&env, "insider", &[&owner]).await;
    expert(&env, "declared", &[]).await;
    expert(&env, "fresh", &[]).await;
    env.client()
        .declare_conflict(env.as_role(
            Role::Admin,
            pb::DeclareConflictRequest {
                name: "experts/declared".into(),
                enterprise: format!("enterprises/{owner}"),
                reason: "亲属任职 (a relative works there)".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let a = submitted(&env, &owner).await;
    let reviews = assign(&env, &a.name, &["silent", "other"], "").await;
    let silent = reviews[0].name.clone();

    // Refused, and nothing changes: conflicts, an expert already in the round (the one replaced
    // included), an unknown expert, a bad request.
    for (to, kind) in [
        ("insider", "EXPERT_AFFILIATED_WITH_OWNER"),
        ("declared", "EXPERT_DECLARED_CONFLICT"),
        ("other", "EXPERT_ALREADY_ASSIGNED"),
        ("silent", "EXPERT_ALREADY_ASSIGNED"),
    ] {
        let s = reassign(&env, &silent, to, "").await.unwrap_err();
        assert_eq!(
            preconditions(&s),
            [(kind.to_string(), format!("experts/{to}"))],
            "{to}"
        );
    }
    let s = reassign(&env, &silent, "nobody", "").await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    let s = env
        .client()
        .reassign_review(env.as_role(
            Role::Admin,
            pb::ReassignReviewRequest {
                name: silent.clone(),
                expert: "fresh".into(),
                due_date: "2020-01-01".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&s), ["expert", "reason", "due_date"]);
    let s = env
        .client()
        .reassign_review(env.as_role(
            Role::Officer,
            pb::ReassignReviewRequest {
                name: silent.clone(),
                expert: "experts/fresh".into(),
                reason: "未提交".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    assert_eq!(get_review(&env, &silent).await.state, ASSIGNED);
    assert_eq!(
        (
            open_reviews(&env, "silent").await,
            open_reviews(&env, "fresh").await
        ),
        (1, 0)
    );

    // Reassigned: the old review cancelled with the reason, a new one in the same round.
    let x = request_id();
    let moved = reassign(&env, &silent, "fresh", &x).await.unwrap();
    let old = moved.cancelled_review.clone().unwrap();
    let new = moved.review.clone().unwrap();
    assert_eq!(old.name, silent);
    assert_eq!(old.state, CANCELLED);
    assert!(
        old.cancel_reason
            .starts_with("reassigned to experts/fresh: "),
        "{}",
        old.cancel_reason
    );
    assert_eq!(new.expert, "experts/fresh");
    assert_eq!(new.state, ASSIGNED);
    assert_eq!(new.round, old.round);
    assert_eq!(new.assignment_method, pb::AssignmentMethod::Manual as i32);
    assert!(!new.due_date.is_empty());
    // The retry replays the same answer and assigns no third review.
    assert_eq!(reassign(&env, &silent, "fresh", &x).await.unwrap(), moved);
    let of_achievement = env
        .client()
        .list_reviews(env.as_role(
            Role::Auditor,
            pb::ListReviewsRequest {
                parent: a.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert_eq!(of_achievement.len(), 3);
    assert_eq!(
        (
            open_reviews(&env, "silent").await,
            open_reviews(&env, "fresh").await
        ),
        (0, 1)
    );
    // The cancelled review cannot be reassigned again; the old expert no longer sees it.
    let s = reassign(&env, &silent, "fresh", "").await.unwrap_err();
    assert_eq!(
        preconditions(&s),
        [("REVIEW_NOT_OPEN".to_string(), silent.clone())]
    );
    let s = env
        .client()
        .get_achievement(env.as_expert(
            "silent",
            pb::GetAchievementRequest {
                name: a.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);

    // The new expert reviews; the decision counts the two submitted reviews.
    score(&env, "other", &reviews[1].name).await.unwrap();
    assert_eq!(
        preconditions(&finalize(&env, &a.name).await.unwrap_err()),
        [("REVIEW_NOT_SUBMITTED".to_string(), new.name.clone())]
    );
    score(&env, "fresh", &new.name).await.unwrap();
    let decided = finalize(&env, &a.name).await.unwrap();
    assert_eq!(decided.decision.unwrap().score_count, 2);
    assert_eq!(open_reviews(&env, "fresh").await, 0);
    env.stop().await;
}

/// Due dates default to 30 days after assignment; an explicit one is checked; overdue reviews
/// are listed as the clock moves past them, and leave the list once submitted or cancelled.
async fn reviews_are_due_in_thirty_days_and_listed_once_overdue(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(303);
    env.register(&owner, "烟台医药有限公司").await;
    for e in ["a", "b", "c"] {
        expert(&env, e, &[]).await;
    }
    let first = submitted(&env, &owner).await;
    let second = submitted(&env, &owner).await;
    let by_default = assign(&env, &first.name, &["a", "b"], "").await;
    let assigned_on = {
        let t = by_default[0].assign_time.unwrap();
        chrono::DateTime::from_timestamp(t.seconds, 0)
            .unwrap()
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .date_naive()
    };
    let expected = assigned_on.checked_add_days(Days::new(30)).unwrap();
    for r in &by_default {
        assert_eq!(r.due_date, expected.format("%Y-%m-%d").to_string());
    }
    // An explicit date: ten days on.
    let ten_days = assigned_on.checked_add_days(Days::new(10)).unwrap();
    let explicit = assign(
        &env,
        &second.name,
        &["c"],
        &ten_days.format("%Y-%m-%d").to_string(),
    )
    .await;
    assert_eq!(
        explicit[0].due_date,
        ten_days.format("%Y-%m-%d").to_string()
    );
    assert_eq!(
        get_review(&env, &explicit[0].name).await.due_date,
        explicit[0].due_date
    );
    // Bad dates name the field, and nothing is assigned.
    for bad in ["2026-02-30", "yesterday", "2020-01-01", "2099-01-01"] {
        let s = env
            .client()
            .assign_reviewers(env.as_role(
                Role::Admin,
                pb::AssignReviewersRequest {
                    name: second.name.clone(),
                    experts: vec!["experts/a".into()],
                    due_date: bad.to_string(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&s), ["due_date"], "{bad}");
    }
    let s = list_reviews(&env, Role::Auditor, "overdue = 1")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&s), ["filter"]);

    // Nothing is overdue today, nor on the due day itself.
    assert!(
        list_reviews(&env, Role::Auditor, "overdue = true")
            .await
            .unwrap()
            .is_empty()
    );
    env.advance_days(10);
    assert!(
        list_reviews(&env, Role::Auditor, "overdue = true")
            .await
            .unwrap()
            .is_empty()
    );
    // The day after the explicit date: that one is overdue, the others are not.
    env.advance_days(11);
    assert_eq!(
        list_reviews(&env, Role::Auditor, "overdue = true")
            .await
            .unwrap(),
        [explicit[0].name.clone()]
    );
    assert_eq!(
        list_reviews(&env, Role::Auditor, "overdue = false")
            .await
            .unwrap()
            .len(),
        2
    );
    // Past 30 days, all three; one submitted and one cancelled leave the list.
    env.advance_days(31);
    let mut all = vec![
        by_default[0].name.clone(),
        by_default[1].name.clone(),
        explicit[0].name.clone(),
    ];
    all.sort();
    let mut overdue = list_reviews(&env, Role::Officer, "overdue = true")
        .await
        .unwrap();
    overdue.sort();
    assert_eq!(overdue, all);
    // An expert sees its own overdue review in its worklist.
    let mine = env
        .client()
        .list_reviews(env.as_expert(
            "a",
            pb::ListReviewsRequest {
                parent: "achievements/-".into(),
                filter: "overdue = true".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .reviews;
    assert_eq!(
        mine.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        [by_default[0].name.as_str()]
    );
    score(&env, "a", &by_default[0].name).await.unwrap();
    cancel(
        &env,
        Role::Admin,
        &explicit[0].name,
        "逾期未评 (overdue)",
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        list_reviews(
            &env,
            Role::Auditor,
            "overdue = true AND state = REVIEW_STATE_ASSIGNED"
        )
        .await
        .unwrap(),
        [by_default[1].name.clone()]
    );
    env.stop().await;
}

async fn delete_achievement(
    env: &Env,
    owner: &str,
    name: &str,
    etag: &str,
    request_id: &str,
) -> Result<(), Status> {
    env.client()
        .delete_achievement(env.as_enterprise(
            owner,
            pb::DeleteAchievementRequest {
                name: name.to_string(),
                etag: etag.to_string(),
                request_id: request_id.to_string(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// A DRAFT is deleted by its owner (or an admin): gone from Get and List, a DELETED change the
/// owner sees too, out of the snapshot. A submitted achievement is withdrawn, never deleted.
async fn a_draft_achievement_is_deleted_and_nothing_else_is(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(304);
    let stranger = uscc(305);
    env.register(&owner, "潍坊新药有限公司").await;
    env.register(&stranger, "淄博化工有限公司").await;
    let d = draft(&env, &owner).await;
    let kept = draft(&env, &owner).await;
    let sent = submitted(&env, &owner).await;

    // Another enterprise learns nothing; roles outside the table are refused; a stale etag aborts.
    let s = delete_achievement(&env, &stranger, &d.name, "", "")
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    for role in [Role::Officer, Role::Auditor, Role::Expert, Role::Service] {
        let s = env
            .client()
            .delete_achievement(env.as_role(
                role,
                pb::DeleteAchievementRequest {
                    name: d.name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{role}");
    }
    let s = delete_achievement(&env, &owner, &d.name, &kept.etag, "")
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");
    let s = delete_achievement(&env, &owner, "achievement/1", "", "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&s), ["name"]);
    // Not a draft: refused with its reason, and still there.
    let s = delete_achievement(&env, &owner, &sent.name, "", "")
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&s),
        [("ACHIEVEMENT_NOT_DRAFT".to_string(), sent.name.clone())]
    );

    // The owner deletes its draft; the retry with the same request id answers the same.
    let x = request_id();
    delete_achievement(&env, &owner, &d.name, &d.etag, &x)
        .await
        .unwrap();
    delete_achievement(&env, &owner, &d.name, &d.etag, &x)
        .await
        .unwrap();
    // Without the id, a second delete finds nothing.
    let s = delete_achievement(&env, &owner, &d.name, "", "")
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let s = env
        .client()
        .get_achievement(env.as_role(
            Role::Admin,
            pb::GetAchievementRequest {
                name: d.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let listed: Vec<String> = env
        .client()
        .list_achievements(env.as_role(
            Role::Admin,
            pb::ListAchievementsRequest {
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .achievements
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert!(!listed.contains(&d.name), "{listed:?}");
    assert!(listed.contains(&kept.name) && listed.contains(&sent.name));
    // An admin deletes a draft on the owner's behalf.
    env.client()
        .delete_achievement(env.as_role(
            Role::Admin,
            pb::DeleteAchievementRequest {
                name: kept.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();

    // The feed: one DELETED change per draft, without state, the last of each; the owner sees
    // its drafts go, the stranger sees nothing; the snapshot leaves them out.
    for reader in [None, Some(owner.as_str())] {
        let feed = changes(&env, reader).await;
        for gone in [&d.name, &kept.name] {
            let of: Vec<&(String, i32, bool)> = feed.iter().filter(|c| c.0 == **gone).collect();
            assert_eq!(of.len(), 2, "{gone}: {of:?}");
            assert_eq!(of[1].1, DELETED);
            assert!(!of[1].2, "a deletion carries no state");
            assert_eq!(
                feed.iter().filter(|c| c.1 == DELETED).count(),
                2,
                "{feed:?}"
            );
        }
    }
    assert!(
        changes(&env, Some(&stranger))
            .await
            .iter()
            .all(|c| !c.0.starts_with("achievements/")),
    );
    let snap = snapshot(&env).await;
    assert!(!snap.contains(&d.name) && !snap.contains(&kept.name));
    assert!(snap.contains(&sent.name));
    env.stop().await;
}

async fn create_rule_set(env: &Env, id: &str) -> Result<pb::VetoRuleSet, Status> {
    env.client()
        .create_veto_rule_set(env.as_role(
            Role::Admin,
            pb::CreateVetoRuleSetRequest {
                veto_rule_set_id: id.to_string(),
                veto_rule_set: Some(pb::VetoRuleSet {
                    display_name: "Two-high screening, steel".into(),
                    description:
                        "Scope: GB/T 4754 division 31 (steel). Threshold: 10,000 tce.".into(),
                    industry_scope: vec![pb::IndustryScopeEntry {
                        code: "31".into(),
                        description: "黑色金属冶炼和压延加工业 (steel)".into(),
                    }],
                    annual_energy_threshold_kgce: 10_000_000,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn delete_rule_set(env: &Env, role: Role, name: &str, x: &str) -> Result<(), Status> {
    env.client()
        .delete_veto_rule_set(env.as_role(
            role,
            pb::DeleteVetoRuleSetRequest {
                name: name.to_string(),
                request_id: x.to_string(),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// A rule set never activated is deleted (admin only); one that was ever active never is (even
/// after another replaced it); a deleted rule set's id and version are never given again.
async fn only_a_rule_set_never_activated_is_deleted_and_its_id_stays_retired(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mistake = create_rule_set(&env, "steel-typo").await.unwrap();
    let used = create_rule_set(&env, "steel-2026").await.unwrap();
    for role in [Role::Officer, Role::Auditor, Role::Expert, Role::Enterprise] {
        let s = delete_rule_set(&env, role, &mistake.name, "")
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{role}");
    }
    // The seeded rule set is active; steel-2026 was active once, then replaced.
    let s = delete_rule_set(&env, Role::Admin, "vetoRuleSets/default-2021", "")
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&s),
        [(
            "VETO_RULE_SET_ACTIVATED".to_string(),
            "vetoRuleSets/default-2021".to_string()
        )]
    );
    for name in [&used.name, &"vetoRuleSets/default-2021".to_string()] {
        env.client()
            .activate_veto_rule_set(env.as_role(
                Role::Admin,
                pb::ActivateVetoRuleSetRequest {
                    name: name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
    }
    let s = delete_rule_set(&env, Role::Admin, &used.name, "")
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&s),
        [("VETO_RULE_SET_ACTIVATED".to_string(), used.name.clone())]
    );

    let x = request_id();
    delete_rule_set(&env, Role::Admin, &mistake.name, &x)
        .await
        .unwrap();
    delete_rule_set(&env, Role::Admin, &mistake.name, &x)
        .await
        .unwrap();
    let s = delete_rule_set(&env, Role::Admin, &mistake.name, "")
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let s = env
        .client()
        .get_veto_rule_set(env.as_role(
            Role::Expert,
            pb::GetVetoRuleSetRequest {
                name: mistake.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let listed: Vec<String> = env
        .client()
        .list_veto_rule_sets(env.as_role(Role::Auditor, pb::ListVetoRuleSetsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .veto_rule_sets
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(listed, ["vetoRuleSets/default-2021", used.name.as_str()]);
    // Its id is not given again; the next rule set's version comes after the deleted one's.
    let s = create_rule_set(&env, "steel-typo").await.unwrap_err();
    assert_eq!(
        preconditions(&s),
        [("ID_OF_DELETED_RESOURCE".to_string(), mistake.name.clone())]
    );
    assert_eq!(mistake.version, used.version - 1);
    let next = create_rule_set(&env, "steel-2027").await.unwrap();
    assert_eq!(next.version, used.version + 1);
    // Deleting the newest keeps its version out of use too.
    delete_rule_set(&env, Role::Admin, &next.name, "")
        .await
        .unwrap();
    let after = create_rule_set(&env, "steel-2028").await.unwrap();
    assert_eq!(after.version, next.version + 1);

    // The feed has the deletions, seen by an enterprise too (rule sets are public); the
    // snapshot leaves them out.
    let feed = changes(&env, Some(&uscc(306))).await;
    let deleted: Vec<&str> = feed
        .iter()
        .filter(|c| c.1 == DELETED)
        .map(|c| c.0.as_str())
        .collect();
    assert_eq!(deleted, [mistake.name.as_str(), next.name.as_str()]);
    let snap = snapshot(&env).await;
    assert!(!snap.contains(&mistake.name) && !snap.contains(&next.name));
    assert!(snap.contains(&after.name));
    env.stop().await;
}
