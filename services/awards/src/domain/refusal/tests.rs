//! Each refusal is decided by its rule and answers with the reason, subject and message the
//! contract documents.

use super::*;
use crate::domain::program::{Deadlines, Kind, Settings};
use qilu_common::ApiError;

fn program(kind: Kind, state: State) -> Program {
    Program {
        id: "green".into(),
        kind,
        settings: Settings {
            display_name: "Green".into(),
            year: 2026,
            description: String::new(),
            award_quotas: vec![],
            quota_caps: vec![],
            budget_fen: 0,
            per_project_cap_fen: 0,
            priority_fields: vec![],
            score_threshold_millipoints: 0,
            requires_high_tech_certification: true,
            deadlines: Deadlines::default(),
            objection_window_days: 10,
        },
        state,
        allocation_revision: 0,
        publish_time_us: None,
        objection_window_end_us: None,
        finalize_time_us: None,
        create_time_us: 0,
        update_time_us: 0,
        version: 1,
    }
}

fn objection(state: ObjectionState) -> Objection {
    Objection {
        program_id: "green".into(),
        id: "o1".into(),
        application_id: "a1".into(),
        grounds: String::new(),
        evidence: String::new(),
        objector: String::new(),
        objector_name: String::new(),
        objector_contact: String::new(),
        state,
        resolution: 0,
        remedy: 0,
        resolution_reason: String::new(),
        resolved_by: String::new(),
        resolve_time_us: None,
        allocation_revision: 0,
        create_time_us: 0,
        update_time_us: 0,
        version: 1,
    }
}

fn application(state: AppState) -> Application {
    Application {
        program_id: "green".into(),
        id: "a1".into(),
        uscc: "91350100M000100Y43".into(),
        achievement_id: "x".into(),
        category: 0,
        grade: 0,
        industry_field: 0,
        title: String::new(),
        requested_amount_fen: 1,
        state,
        score_millipoints: 0,
        outcome: 0,
        outcome_reason: String::new(),
        rank: 0,
        amount_fen: 0,
        withdraw_reason: String::new(),
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
fn stages_move_one_step_and_refuse_the_others_by_name() {
    let draft = program(Kind::Project, State::Draft);
    assert!(may_update(&draft).is_ok());
    assert_eq!(
        answer(may_open(&draft).unwrap_err()),
        (
            "PROGRAM_INCOMPLETE".into(),
            "programs/green".into(),
            "a PROJECT program needs a positive budget_fen before it opens".into()
        )
    );
    let mut ready = draft.clone();
    ready.settings.budget_fen = 100;
    assert_eq!(may_open(&ready).ok(), Some(State::Open));
    let open = program(Kind::Project, State::Open);
    assert_eq!(
        answer(may_update(&open).unwrap_err()).2,
        "programs/green is PROGRAM_STATE_OPEN; only a DRAFT program can be updated"
    );
    let (reason, _, message) = answer(transition(&open, Transition::Finalize).unwrap_err());
    assert_eq!(reason, "ILLEGAL_STAGE_TRANSITION");
    assert_eq!(
        message,
        "programs/green: Finalize needs a PROGRAM_STATE_PUBLICIZED program; this one is PROGRAM_STATE_OPEN"
    );
    assert_eq!(
        answer(may_allocate(&open, true).unwrap_err()).2,
        "programs/green is PROGRAM_STATE_OPEN; a preview needs a CLOSED or ALLOCATED program"
    );
    assert!(may_allocate(&program(Kind::Project, State::Allocated), true).is_ok());
    assert!(may_allocate(&program(Kind::Project, State::Allocated), false).is_err());
}

#[test]
fn a_program_is_final_only_after_its_window_and_its_objections() {
    let tz = chrono_tz::Asia::Shanghai;
    let mut p = program(Kind::Award, State::Publicized);
    p.objection_window_end_us = Some(1_000);
    let (reason, _, message) = answer(may_finalize(&p, 1_000, tz, &[]).unwrap_err());
    assert_eq!(reason, "OBJECTION_WINDOW_OPEN");
    assert!(message.contains("+08:00 (end of day, programme time zone)"));
    let ApiError::FailedPrecondition {
        message,
        violations,
    } = may_finalize(&p, 1_001, tz, &[objection(ObjectionState::Open)])
        .unwrap_err()
        .into()
    else {
        panic!("expected FAILED_PRECONDITION");
    };
    assert_eq!(
        message,
        "1 open objection(s) on programs/green must be resolved first"
    );
    assert_eq!(violations[0].kind, "OBJECTION_OPEN");
    assert_eq!(violations[0].subject, "programs/green/objections/o1");
    assert_eq!(
        may_finalize(&p, 1_001, tz, &[objection(ObjectionState::Resolved)]).ok(),
        Some(State::Final)
    );
}

#[test]
fn peers_facts_disqualify_with_the_first_reason_that_applies() {
    let p = program(Kind::Award, State::Open);
    let mut e = rpb::Enterprise {
        uscc: "91350100M000100Y43".into(),
        state: rpb::EnterpriseState::Active as i32,
        high_tech_certified: false,
        ..Default::default()
    };
    assert_eq!(
        enterprise_ineligible(&e, &p).map(|r| r.to_string()),
        Some(
            "enterprises/91350100M000100Y43 holds no valid high-tech certificate, which programs/green requires"
                .into()
        )
    );
    e.high_tech_certified = true;
    assert!(enterprise_ineligible(&e, &p).is_none());
    let a = "achievements/x";
    let owner = "91350100M000100Y43";
    assert_eq!(
        achievement_ineligible(None, a, owner).map(|r| r.kind()),
        Some("ACHIEVEMENT_NOT_FOUND")
    );
    let mut s = vpb::AchievementStatus {
        found: true,
        owner: format!("enterprises/{owner}"),
        state: vpb::AchievementState::Vetoed as i32,
        ..Default::default()
    };
    let vetoed = achievement_ineligible(Some(&s), a, owner);
    assert_eq!(
        vetoed.as_ref().map(Ineligible::exclusion).as_deref(),
        Some(
            "achievement vetoed since applying: achievements/x is vetoed (one-vote veto: energy-intensive or highly polluting)"
        )
    );
    s.state = vpb::AchievementState::Submitted as i32;
    let (reason, subject, message) = answer(achievement_ineligible(Some(&s), a, owner).unwrap());
    assert_eq!(
        (reason.as_str(), subject.as_str(), message.as_str()),
        (
            "ACHIEVEMENT_NOT_APPROVED",
            a,
            "achievements/x is ACHIEVEMENT_STATE_SUBMITTED; only an APPROVED achievement may apply"
        )
    );
    s.state = vpb::AchievementState::Approved as i32;
    assert!(achievement_ineligible(Some(&s), a, owner).is_none());
    assert_eq!(
        achievement_ineligible(Some(&s), a, "OTHER").map(|r| r.kind()),
        Some("ACHIEVEMENT_NOT_OWNED")
    );
}

#[test]
fn applications_are_filed_while_open_and_withdrawn_before_allocation() {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    assert!(may_apply(&program(Kind::Award, State::Open), today).is_ok());
    assert_eq!(
        answer(may_apply(&program(Kind::Award, State::Closed), today).unwrap_err()).0,
        "PROGRAM_NOT_OPEN"
    );
    let mut late = program(Kind::Award, State::Open);
    late.settings.deadlines.application_deadline = chrono::NaiveDate::from_ymd_opt(2026, 2, 28);
    assert_eq!(
        answer(may_apply(&late, today).unwrap_err()).0,
        "OUTSIDE_APPLICATION_WINDOW"
    );
    let closed = program(Kind::Award, State::Closed);
    assert!(may_withdraw(&application(AppState::Active), &closed).is_ok());
    assert_eq!(
        answer(may_withdraw(&application(AppState::Withdrawn), &closed).unwrap_err()).2,
        "programs/green/applications/a1 is already withdrawn"
    );
    assert_eq!(
        answer(
            may_withdraw(
                &application(AppState::Active),
                &program(Kind::Award, State::Allocated)
            )
            .unwrap_err()
        )
        .0,
        "PROGRAM_ALREADY_ALLOCATED"
    );
}

#[test]
fn objections_are_filed_and_resolved_only_in_public_notice() {
    let mut p = program(Kind::Award, State::Publicized);
    p.objection_window_end_us = Some(10);
    assert!(may_object(&p, 10).is_ok());
    assert_eq!(
        answer(may_object(&p, 11).unwrap_err()).0,
        "OBJECTION_WINDOW_CLOSED"
    );
    assert!(may_resolve(&objection(ObjectionState::Open), &p).is_ok());
    assert_eq!(
        answer(may_resolve(&objection(ObjectionState::Resolved), &p).unwrap_err()).2,
        "programs/green/objections/o1 is already resolved"
    );
    assert_eq!(
        answer(
            may_resolve(
                &objection(ObjectionState::Open),
                &program(Kind::Award, State::Final)
            )
            .unwrap_err()
        )
        .0,
        "PROGRAM_NOT_PUBLICIZED"
    );
}
