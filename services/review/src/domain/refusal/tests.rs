//! Each refusal is decided by its rule and answers with the reason, subject and message the
//! contract documents.

use super::*;
use crate::domain::achievement::Fields;
use crate::domain::green::GreenData;
use crate::domain::review::{AssignmentMethod, Scores};
use qilu_common::ApiError;

fn achievement(state: State) -> Achievement {
    Achievement {
        id: "a1".into(),
        owner: "91350100M000100Y43".into(),
        fields: Fields {
            title: "t".into(),
            industry_field: 1,
            technology_readiness_level: 5,
            summary: String::new(),
            green_data: GreenData::default(),
        },
        state,
        screening: None,
        review_round: 1,
        decision: None,
        previous_decisions: Vec::new(),
        appeal: None,
        appeal_deadline: None,
        withdraw_reason: String::new(),
        submit_time_us: None,
        create_time_us: 0,
        update_time_us: 0,
        version: 1,
    }
}

fn review(id: &str, state: ReviewState, scores: Option<Scores>) -> Review {
    Review {
        id: id.into(),
        achievement_id: "a1".into(),
        expert_id: format!("e-{id}"),
        round: 1,
        state,
        method: AssignmentMethod::Automatic,
        assigned_by: String::new(),
        scores,
        comment: String::new(),
        veto: None,
        cancel_reason: String::new(),
        assign_time_us: 0,
        submit_time_us: None,
        update_time_us: 0,
        version: 1,
        due_date: "2027-01-06".into(),
    }
}

fn expert(active: bool, load_limit: i32, affiliations: &[&str]) -> Expert {
    Expert {
        id: "wang".into(),
        display_name: "Wang".into(),
        industry_fields: vec![1],
        affiliations: affiliations.iter().map(|a| a.to_string()).collect(),
        organization: String::new(),
        load_limit,
        declared_conflicts: Vec::new(),
        active,
        create_time_us: 0,
        update_time_us: 0,
        version: 1,
    }
}

/// (reason, subject, message) of a single-precondition refusal.
fn answer(e: impl Into<ApiError>) -> (String, String, String) {
    match e.into() {
        ApiError::FailedPrecondition {
            message,
            violations,
        } if violations.len() == 1 => (
            violations[0].kind.clone(),
            violations[0].subject.clone(),
            message,
        ),
        other => panic!("not one precondition: {other:?}"),
    }
}

#[test]
fn only_a_draft_is_updated_or_submitted_and_only_before_decision_withdrawn() {
    let draft = achievement(State::Draft);
    assert!(may_update(&draft).is_ok());
    assert!(may_submit(&draft, &draft.owner).is_ok());
    let (reason, subject, message) = answer(may_submit(&draft, "other").unwrap_err());
    assert_eq!(
        (reason.as_str(), subject.as_str(), message.as_str()),
        (
            "ACHIEVEMENT_NOT_DRAFT",
            "achievements/a1",
            "achievements/a1 is DRAFT; only a DRAFT can be submitted"
        )
    );
    let submitted = achievement(State::Submitted);
    assert_eq!(
        answer(may_update(&submitted).unwrap_err()).2,
        "achievements/a1 is SUBMITTED; only a DRAFT can be updated"
    );
    assert!(may_withdraw(&submitted).is_ok());
    assert!(may_assign(&submitted).is_ok());
    let vetoed = achievement(State::Vetoed);
    assert_eq!(
        answer(may_withdraw(&vetoed).unwrap_err()).0,
        "ACHIEVEMENT_NOT_WITHDRAWABLE"
    );
    assert_eq!(
        answer(may_assign(&vetoed).unwrap_err()).0,
        "ACHIEVEMENT_NOT_REVIEWABLE"
    );
    assert_eq!(
        answer(may_finalize(&submitted).unwrap_err()).0,
        "ACHIEVEMENT_NOT_UNDER_REVIEW"
    );
    assert!(may_finalize(&achievement(State::UnderReview)).is_ok());
}

#[test]
fn a_decision_waits_for_every_review_and_needs_one() {
    let a = achievement(State::UnderReview);
    let scores = Scores::new([20, 20, 10, 10]).ok();
    let open = [
        review("r1", ReviewState::Submitted, scores),
        review("r2", ReviewState::Assigned, None),
    ];
    let ApiError::FailedPrecondition {
        message,
        violations,
    } = reviews_to_decide(&a, &open).unwrap_err().into()
    else {
        panic!("expected FAILED_PRECONDITION");
    };
    assert_eq!(
        message,
        "1 of the reviews of achievements/a1 round 1 are not in yet"
    );
    assert_eq!(violations[0].kind, "REVIEW_NOT_SUBMITTED");
    assert_eq!(violations[0].subject, "achievements/a1/reviews/r2");
    assert_eq!(
        violations[0].description,
        "experts/e-r2 has not submitted achievements/a1/reviews/r2"
    );
    let cancelled = [review("r3", ReviewState::Cancelled, None)];
    assert_eq!(
        answer(reviews_to_decide(&a, &cancelled).unwrap_err()).0,
        "NO_REVIEWS"
    );
    let done = reviews_to_decide(&a, &open[..1]).unwrap();
    assert_eq!(done[0].total_points, 60);
    assert_eq!(done[0].expert, "experts/e-r1");
}

#[test]
fn named_experts_are_refused_for_the_first_reason_that_applies() {
    let a = achievement(State::Submitted);
    let none = BTreeSet::new();
    assert!(may_name_expert(&expert(true, 2, &[]), &a, &none, 1).is_ok());
    let already: BTreeSet<String> = ["wang".to_string()].into();
    assert_eq!(
        answer(may_name_expert(&expert(true, 2, &[]), &a, &already, 0).unwrap_err()).2,
        "experts/wang already holds a review of achievements/a1 in round 1"
    );
    assert_eq!(
        answer(may_name_expert(&expert(false, 2, &[&a.owner]), &a, &none, 0).unwrap_err()).0,
        "EXPERT_AFFILIATED_WITH_OWNER"
    );
    assert_eq!(
        answer(may_name_expert(&expert(false, 2, &[]), &a, &none, 0).unwrap_err()).0,
        "EXPERT_INACTIVE"
    );
    assert_eq!(
        answer(may_name_expert(&expert(true, 2, &[]), &a, &none, 2).unwrap_err()).2,
        "experts/wang holds 2 open reviews, its load limit is 2"
    );
}

#[test]
fn scores_need_an_open_review_of_the_current_round_and_no_conflict() {
    let a = achievement(State::UnderReview);
    assert!(may_score(&review("r1", ReviewState::Assigned, None), &a).is_ok());
    assert_eq!(
        answer(may_score(&review("r1", ReviewState::Submitted, None), &a).unwrap_err()).0,
        "REVIEW_NOT_OPEN"
    );
    let mut later = achievement(State::UnderReview);
    later.review_round = 2;
    assert_eq!(
        answer(may_score(&review("r1", ReviewState::Assigned, None), &later).unwrap_err()).2,
        "achievements/a1 is UNDER_REVIEW in round 2; this review belongs to round 1"
    );
    assert!(conflict_at_scoring(&expert(true, 2, &[]), &a).is_none());
    let refused = conflict_at_scoring(&expert(true, 2, &[&a.owner]), &a);
    assert_eq!(
        refused.map(answer).map(|(r, s, _)| (r, s)),
        Some(("EXPERT_AFFILIATED_WITH_OWNER".into(), "experts/wang".into()))
    );
}

#[test]
fn a_veto_is_appealed_once_within_its_window() {
    let tz = chrono_tz::Asia::Shanghai;
    let mut a = achievement(State::Vetoed);
    a.appeal_deadline = Some("2026-04-30".into());
    let noon = |d: &str| {
        chrono::DateTime::parse_from_rfc3339(&format!("{d}T04:00:00Z"))
            .map(|t| t.timestamp_micros())
            .unwrap_or_default()
    };
    assert!(may_appeal(&a, noon("2026-04-30"), tz).is_ok());
    assert_eq!(
        answer(may_appeal(&a, noon("2026-05-01"), tz).unwrap_err()).2,
        "the appeal window of achievements/a1 closed at the end of 2026-04-30 (30 days after the veto, Asia/Shanghai)"
    );
    assert_eq!(
        answer(may_appeal(&achievement(State::Approved), 0, tz).unwrap_err()).0,
        "ACHIEVEMENT_NOT_VETOED"
    );
    assert!(matches!(
        may_appeal(&achievement(State::Vetoed), 0, tz),
        Err(AppealRefused::NoDeadline { .. })
    ));
    assert_eq!(
        answer(pending_appeal(&a).unwrap_err()).0,
        "NO_PENDING_APPEAL"
    );
    a.appeal = Some(Appeal {
        grounds: "g".into(),
        filed_by: "u".into(),
        file_time_us: 0,
        resolution: None,
        resolution_reason: String::new(),
        resolved_by: String::new(),
        resolve_time_us: None,
    });
    assert!(pending_appeal(&a).is_ok());
    assert_eq!(
        answer(may_appeal(&a, noon("2026-04-01"), tz).unwrap_err()).0,
        "APPEAL_ALREADY_FILED"
    );
}

#[test]
fn owner_and_rule_set_refusals_keep_their_messages() {
    assert_eq!(
        answer(NoActiveRuleSet::AtSubmit),
        (
            "NO_ACTIVE_RULE_SET".into(),
            "vetoRuleSets".into(),
            "no veto rule set is active; an admin must activate one".into()
        )
    );
    assert_eq!(
        answer(OwnerRefused::NotActive {
            name: "enterprises/X".into(),
            state: "ENTERPRISE_STATE_REVOKED".into()
        })
        .2,
        "enterprises/X is ENTERPRISE_STATE_REVOKED in the registry; only an ACTIVE enterprise may hold achievements under review"
    );
}

#[test]
fn only_an_assigned_review_is_cancelled_and_only_a_never_activated_rule_set_deleted() {
    assert!(may_cancel(&review("r1", ReviewState::Assigned, None)).is_ok());
    for state in [ReviewState::Submitted, ReviewState::Cancelled] {
        assert_eq!(
            may_cancel(&review("r1", state, None)),
            Err(ReviewRefused::NotOpen {
                review: "achievements/a1/reviews/r1".into(),
                state,
            })
        );
    }
    assert!(may_delete_rule_set("vetoRuleSets/x".into(), None).is_ok());
    assert_eq!(
        may_delete_rule_set("vetoRuleSets/x".into(), Some(1)),
        Err(RuleSetRefused::EverActivated {
            name: "vetoRuleSets/x".into()
        })
    );
}
