//! Integration tests of the award and project allocation service as a caller sees it: the real
//! awards server on an ephemeral port, with the real registry and review services running
//! beside it (each over its own fresh database), over SQLite and over PostgreSQL. Every scenario
//! runs on both backends (`sqlite::…` and `postgres::…`). Approved and vetoed achievements are
//! made through the review service's own RPCs (expert, assignment, review, decision).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::awards as pb;
use qilu_proto::common as cpb;
use qilu_proto::registry as rpb;
use qilu_proto::review as vpb;
use qilu_registry::Registry;
use sea_orm::{ConnectionTrait, Statement};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::support::{BIO, Env, IT, project, uscc, uuid};

on_both_backends!(
    a_project_program_runs_from_creation_to_final,
    program_inputs_are_validated_with_field_paths_and_drafts_stay_hidden,
    illegal_stage_transitions_are_failed_precondition,
    applications_on_vetoed_unapproved_or_foreign_achievements_are_refused_naming_why,
    applications_are_own_only_one_per_achievement_and_nominate_a_listed_bucket,
    sixteen_concurrent_allocations_store_one_result_within_quotas_and_caps,
    an_achievement_vetoed_since_applying_is_excluded_with_that_reason,
    an_upheld_objection_revises_the_outcome_as_a_new_revision,
    objector_identity_is_shown_only_to_admin_auditor_and_the_objector,
    the_review_service_down_during_allocation_is_unavailable_and_writes_nothing,
    the_registry_down_when_applying_is_unavailable_and_writes_nothing,
    field_distribution_compares_years_against_targets,
    every_role_is_allowed_or_refused_exactly_as_the_role_table_says,
    a_years_programs_together_never_exceed_the_statutory_first_prize_ceiling,
    allocation_counts_awards_made_in_the_years_other_programs_against_the_ceiling,
);

// ---------------------------------------------------------------------------------------------
// Setup only these scenarios use (the part shared with `replay_isolation` is in `support`)
// ---------------------------------------------------------------------------------------------

impl Env {
    fn with_bearer<T>(&self, bearer: &str, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.metadata_mut()
            .insert("authorization", bearer.parse().unwrap());
        r
    }

    async fn program(&self, program: &str) -> pb::Program {
        self.client()
            .get_program(self.as_role(
                Role::Admin,
                pb::GetProgramRequest {
                    name: format!("programs/{program}"),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn application(&self, name: &str) -> pb::Application {
        self.client()
            .get_application(
                self.as_role(Role::Admin, pb::GetApplicationRequest { name: name.into() }),
            )
            .await
            .unwrap()
            .into_inner()
    }

    async fn audit_count(&self) -> usize {
        let mut c = self.client();
        let mut n = 0;
        let mut token = String::new();
        loop {
            let page = c
                .list_audit_events(self.as_role(
                    Role::Auditor,
                    cpb::ListAuditEventsRequest {
                        page_size: 1000,
                        page_token: token.clone(),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            n += page.audit_events.len();
            if page.next_page_token.is_empty() {
                return n;
            }
            token = page.next_page_token;
        }
    }

    async fn chain_verifies(&self) {
        let v = self
            .client()
            .verify_audit_chain(self.as_role(Role::Auditor, Default::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(v.intact, "{v:?}");
    }

    async fn stop(self) {
        self.awards.stop().await;
        if let Some(r) = self.review {
            r.stop().await;
        }
        self.registry.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The first precondition violation's kind.
fn precondition_kind(s: &Status) -> String {
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    s.get_error_details()
        .precondition_failure()
        .expect("PreconditionFailure")
        .violations[0]
        .r#type
        .clone()
}

/// The field paths of a BadRequest.
fn bad_fields(s: &Status) -> Vec<String> {
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    s.get_error_details()
        .bad_request()
        .expect("BadRequest")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

const ENERGY: cpb::IndustryField = cpb::IndustryField::NewEnergy;

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

async fn a_project_program_runs_from_creation_to_final(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mut c = env.client();
    let created = c
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: "green-2024".into(),
                program: Some(project(2024)),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.state, pb::ProgramState::Draft as i32);
    assert_eq!(created.objection_window_days, 10, "default window");

    // Update with a field mask and the current etag; a stale etag is ABORTED.
    let mut change = created.clone();
    change.display_name = "绿色低碳重点项目 2024".into();
    let updated = c
        .update_program(env.as_role(
            Role::Admin,
            pb::UpdateProgramRequest {
                program: Some(change.clone()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".into()],
                }),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.display_name, "绿色低碳重点项目 2024");
    assert_ne!(updated.etag, created.etag);
    let stale = c
        .update_program(env.as_role(
            Role::Admin,
            pb::UpdateProgramRequest {
                program: Some(change),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    c.open_program(env.as_role(
        Role::Admin,
        pb::OpenProgramRequest {
            name: "programs/green-2024".into(),
            etag: updated.etag.clone(),
            request_id: uuid(),
        },
    ))
    .await
    .unwrap();

    // Three applicants: biomedicine 90 and 75 points, IT 85 points; one more below threshold.
    let e1 = env.enterprise(1).await;
    let e2 = env.enterprise(2).await;
    let e3 = env.enterprise(3).await;
    let e4 = env.enterprise(4).await;
    let a1 = env.approved(&e1, BIO, 90).await;
    let a2 = env.approved(&e2, IT, 85).await;
    let a3 = env.approved(&e3, BIO, 75).await;
    // Exactly at this program's threshold (70 points): it qualifies at the boundary.
    let a4 = env.approved(&e4, ENERGY, 70).await;
    let app1 = env
        .apply("green-2024", &e1, &a1, 500_000, None)
        .await
        .unwrap();
    let app2 = env
        .apply("green-2024", &e2, &a2, 400_000, None)
        .await
        .unwrap();
    let app3 = env
        .apply("green-2024", &e3, &a3, 300_000, None)
        .await
        .unwrap();
    let app4 = env
        .apply("green-2024", &e4, &a4, 200_000, None)
        .await
        .unwrap();
    assert_eq!(
        app1.industry_field, BIO as i32,
        "field copied from the achievement"
    );
    assert!(app1.title.contains("BIOMEDICINE"));
    assert_eq!(app1.state, pb::ApplicationState::Active as i32);

    // Nothing can be allocated while OPEN.
    let early = env.allocate("green-2024").await.unwrap_err();
    assert_eq!(precondition_kind(&early), "ILLEGAL_STAGE_TRANSITION");
    env.close("green-2024").await;

    // An officer previews: nothing stored, the program stays CLOSED.
    let before = env.audit_count().await;
    let preview = c
        .allocate_program(env.as_role(
            Role::Officer,
            pb::AllocateProgramRequest {
                name: "programs/green-2024".into(),
                validate_only: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(preview.validate_only);
    assert!(preview.name.is_empty());
    assert_eq!(env.audit_count().await, before);
    assert_eq!(
        env.program("green-2024").await.state,
        pb::ProgramState::Closed as i32
    );
    // An officer may not run it.
    let denied = c
        .allocate_program(env.as_role(
            Role::Officer,
            pb::AllocateProgramRequest {
                name: "programs/green-2024".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let allocation = env.allocate("green-2024").await.unwrap();
    assert_eq!(allocation.name, "programs/green-2024/allocation");
    assert_eq!(allocation.revision, 1);
    assert_eq!(
        allocation.input_digest, preview.input_digest,
        "same inputs, same digest"
    );
    assert_eq!(allocation.entries, preview.entries, "deterministic");
    assert_eq!(allocation.input_digest.len(), 64);
    assert_eq!(allocation.run_by, "test-admin");
    let totals = allocation.totals.unwrap();
    assert_eq!(totals.applications, 4);
    assert!(totals.amount_fen <= 1_000_000);
    assert_eq!(totals.budget_left_fen, 1_000_000 - totals.amount_fen);
    for e in &allocation.entries {
        assert!(!e.reason.is_empty(), "every outcome has a reason: {e:?}");
        assert_ne!(e.outcome, 0);
    }
    // Biomedicine pool (500,000 fen): e1's 500,000 fills it. Open pool 500,000: e2 (85) takes
    // 400,000; e3 (300,000) no longer fits the 100,000 left and is skipped; e4 (200,000) neither.
    let by_app: HashMap<&str, &pb::AllocationEntry> = allocation
        .entries
        .iter()
        .map(|e| (e.application.as_str(), e))
        .collect();
    let funded = pb::ApplicationOutcome::Funded as i32;
    let not_selected = pb::ApplicationOutcome::NotSelected as i32;
    assert_eq!(by_app[app1.name.as_str()].outcome, funded);
    assert_eq!(by_app[app1.name.as_str()].pool, "budget/BIOMEDICINE");
    assert_eq!(by_app[app2.name.as_str()].outcome, funded);
    assert_eq!(by_app[app2.name.as_str()].pool, "budget/open");
    assert_eq!(by_app[app3.name.as_str()].outcome, not_selected);
    assert!(
        by_app[app3.name.as_str()].reason.contains("did not fit"),
        "{}",
        by_app[app3.name.as_str()].reason
    );
    assert_eq!(by_app[app4.name.as_str()].outcome, not_selected);
    assert_eq!(by_app[app4.name.as_str()].score_millipoints, 70_000);
    let pools: Vec<(&str, i64)> = allocation
        .pools
        .iter()
        .map(|p| (p.pool_id.as_str(), p.reserved))
        .collect();
    assert_eq!(
        pools,
        [("budget/BIOMEDICINE", 500_000), ("budget/open", 500_000)]
    );

    // Stored: the program is ALLOCATED and GetAllocation returns the same.
    let program = env.program("green-2024").await;
    assert_eq!(program.state, pb::ProgramState::Allocated as i32);
    assert_eq!(program.allocation, "programs/green-2024/allocation");
    let stored = c
        .get_allocation(env.as_role(
            Role::Auditor,
            pb::GetAllocationRequest {
                name: "programs/green-2024/allocation".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored, allocation);

    // Applicants do not see outcomes before publication; staff do.
    let own = c
        .get_application(env.as_enterprise(
            &e1,
            pb::GetApplicationRequest {
                name: app1.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.outcome, 0);
    assert!(own.outcome_reason.is_empty());
    let staff = env.application(&app1.name).await;
    assert_eq!(staff.outcome, funded);
    assert_eq!(staff.amount_fen, 500_000);
    assert_eq!(staff.score_millipoints, 90_000);
    assert_eq!(staff.rank, 1);

    // Withdrawal is refused after allocation.
    let late = c
        .withdraw_application(env.as_enterprise(
            &e4,
            pb::WithdrawApplicationRequest {
                name: app4.name.clone(),
                reason: "改投其他项目".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&late), "PROGRAM_ALREADY_ALLOCATED");

    let published = env.publish("green-2024").await;
    assert_eq!(published.state, pb::ProgramState::Publicized as i32);
    let publish = published.publish_time.unwrap();
    let end = published.objection_window_end_time.unwrap();
    // The window ends at the end of the 10th day after publication, Shanghai time.
    let span = end.seconds - publish.seconds;
    assert!(
        span > 10 * 86_400 && span <= 11 * 86_400,
        "window of {span} s"
    );
    assert_eq!((end.seconds + 1 + 8 * 3600) % 86_400, 0, "{end:?}");
    let own = c
        .get_application(env.as_enterprise(
            &e1,
            pb::GetApplicationRequest {
                name: app1.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.outcome, funded, "visible once published");

    // Not final while the window is open; final after it.
    let early = c
        .finalize_program(env.as_role(
            Role::Admin,
            pb::FinalizeProgramRequest {
                name: "programs/green-2024".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&early), "OBJECTION_WINDOW_OPEN");
    env.advance_days(11);
    let done = c
        .finalize_program(env.as_role(
            Role::Admin,
            pb::FinalizeProgramRequest {
                name: "programs/green-2024".into(),
                request_id: uuid(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, pb::ProgramState::Final as i32);
    assert!(done.finalize_time.is_some());
    let again = c
        .finalize_program(env.as_role(
            Role::Admin,
            pb::FinalizeProgramRequest {
                name: "programs/green-2024".into(),
                request_id: uuid(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&again), "ILLEGAL_STAGE_TRANSITION");

    // The distribution of this program: biomedicine 500,000 of 900,000 fen against 50 %.
    let dist = c
        .get_field_distribution(env.as_role(
            Role::Officer,
            pb::GetFieldDistributionRequest {
                scope: Some(pb::get_field_distribution_request::Scope::Program(
                    "programs/green-2024".into(),
                )),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let year = &dist.years[0];
    assert_eq!(year.year, 2024);
    assert_eq!(year.total_count, 2);
    assert_eq!(year.total_amount_fen, 900_000);
    let bio = year.fields.iter().find(|f| f.field == BIO as i32).unwrap();
    assert!(bio.priority);
    assert_eq!(bio.applications, 2);
    assert_eq!(bio.count, 1);
    assert_eq!(bio.amount_share_basis_points, 5556);
    assert_eq!(bio.target_share_basis_points, 5000);

    // Every mutation is audited, by resource, and the chain verifies.
    let events = c
        .list_audit_events(env.as_role(
            Role::Auditor,
            cpb::ListAuditEventsRequest {
                filter: "resource = \"programs/green-2024\"".into(),
                page_size: 100,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    // create, update, open, close, allocate, publish, finalize.
    assert_eq!(events.audit_events.len(), 7, "{:?}", events.audit_events);
    env.chain_verifies().await;
    env.stop().await;
}

async fn program_inputs_are_validated_with_field_paths_and_drafts_stay_hidden(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mut c = env.client();
    let mut bad = project(2024);
    bad.priority_fields = vec![
        pb::PriorityFieldShare {
            field: BIO as i32,
            target_share_basis_points: 6000,
        },
        pb::PriorityFieldShare {
            field: IT as i32,
            target_share_basis_points: 5000,
        },
    ];
    bad.per_project_cap_fen = 2_000_000;
    bad.score_threshold_millipoints = 100_001;
    bad.deadlines = Some(pb::StageDeadlines {
        application_deadline: "2024-02-30".into(),
        ..Default::default()
    });
    let err = c
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: "Bad_Id".into(),
                program: Some(bad.clone()),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&err),
        ["program_id", "program.deadlines.application_deadline"]
    );
    bad.deadlines = None;
    let err = c
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: "bad".into(),
                program: Some(bad),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&err),
        [
            "program.per_project_cap_fen",
            "program.priority_fields",
            "program.score_threshold_millipoints"
        ]
    );
    // Award quotas: ungraded categories use UNGRADED; a pair at most once; caps positive.
    let award = pb::Program {
        display_name: "山东省科学技术奖 2024".into(),
        kind: pb::ProgramKind::Award as i32,
        year: 2024,
        award_quotas: vec![
            pb::AwardQuota {
                category: pb::AwardCategory::TopAward as i32,
                grade: pb::AwardGrade::First as i32,
                quota: 2,
                amount_fen: 300_000_000,
            },
            pb::AwardQuota {
                category: pb::AwardCategory::NaturalScience as i32,
                grade: pb::AwardGrade::First as i32,
                quota: 10,
                amount_fen: 30_000_000,
            },
            pb::AwardQuota {
                category: pb::AwardCategory::NaturalScience as i32,
                grade: pb::AwardGrade::First as i32,
                quota: 5,
                amount_fen: 30_000_000,
            },
        ],
        quota_caps: vec![pb::QuotaCap {
            description: "first prizes ≤ 35".into(),
            limit: 0,
            ..Default::default()
        }],
        budget_fen: 5,
        ..Default::default()
    };
    let err = c
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: "awards-2024".into(),
                program: Some(award),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&err),
        [
            "program.award_quotas[0].grade",
            "program.award_quotas[2]",
            "program.quota_caps[0].limit",
            "program.budget_fen"
        ]
    );
    let err = c
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: "nokind".into(),
                program: Some(pb::Program {
                    year: 2024,
                    ..Default::default()
                }),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["program.kind"]);

    // A draft is invisible to enterprise and expert tokens; staff see it.
    c.create_program(env.as_role(
        Role::Admin,
        pb::CreateProgramRequest {
            program_id: "draft-2024".into(),
            program: Some(project(2024)),
            request_id: uuid(),
        },
    ))
    .await
    .unwrap();
    let dup = c
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: "draft-2024".into(),
                program: Some(project(2024)),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    env.open_program("open-2025", project(2025)).await;
    let e1 = env.enterprise(1).await;
    for r in [
        c.get_program(env.as_enterprise(
            &e1,
            pb::GetProgramRequest {
                name: "programs/draft-2024".into(),
            },
        ))
        .await,
        c.get_program(env.as_role(
            Role::Expert,
            pb::GetProgramRequest {
                name: "programs/draft-2024".into(),
            },
        ))
        .await,
    ] {
        assert_eq!(r.unwrap_err().code(), Code::NotFound);
    }
    let seen: Vec<String> = c
        .list_programs(env.as_enterprise(&e1, pb::ListProgramsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .programs
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(seen, ["programs/open-2025"]);
    let staff: Vec<String> = c
        .list_programs(env.as_role(Role::Officer, pb::ListProgramsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .programs
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        staff,
        ["programs/open-2025", "programs/draft-2024"],
        "year desc"
    );
    // Filters and paging.
    let filtered = c
        .list_programs(env.as_role(
            Role::Officer,
            pb::ListProgramsRequest {
                filter:
                    "year >= 2025 AND kind = PROGRAM_KIND_PROJECT AND display_name:\"绿色\"".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filtered.programs.len(), 1);
    let first = c
        .list_programs(env.as_role(
            Role::Officer,
            pb::ListProgramsRequest {
                page_size: 1,
                order_by: "name".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.programs[0].name, "programs/draft-2024");
    let second = c
        .list_programs(env.as_role(
            Role::Officer,
            pb::ListProgramsRequest {
                page_size: 1,
                order_by: "name".into(),
                page_token: first.next_page_token,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.programs[0].name, "programs/open-2025");
    assert!(second.next_page_token.is_empty());
    let err = c
        .list_programs(env.as_role(
            Role::Officer,
            pb::ListProgramsRequest {
                filter: "colour = red".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["filter"]);

    // Update masks: unknown paths and kind are refused; a repeated request id replays.
    let current = env.program("draft-2024").await;
    let err = c
        .update_program(env.as_role(
            Role::Admin,
            pb::UpdateProgramRequest {
                program: Some(current.clone()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["kind".into()],
                }),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["update_mask"]);
    let mut change = current.clone();
    change.budget_fen = 2_000_000;
    let rid = uuid();
    let req = pb::UpdateProgramRequest {
        program: Some(change),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["budget_fen".into()],
        }),
        request_id: rid,
    };
    let one = c
        .update_program(env.as_role(Role::Admin, req.clone()))
        .await
        .unwrap()
        .into_inner();
    let two = c
        .update_program(env.as_role(Role::Admin, req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one, two, "replayed, not applied twice");
    assert_eq!(one.budget_fen, 2_000_000);
    env.chain_verifies().await;
    env.stop().await;
}

async fn illegal_stage_transitions_are_failed_precondition(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mut c = env.client();
    let mut incomplete = project(2024);
    incomplete.budget_fen = 0;
    incomplete.per_project_cap_fen = 0;
    c.create_program(env.as_role(
        Role::Admin,
        pb::CreateProgramRequest {
            program_id: "p".into(),
            program: Some(incomplete),
            request_id: uuid(),
        },
    ))
    .await
    .unwrap();
    let name = "programs/p".to_string();
    let close = c
        .close_program(env.as_role(
            Role::Admin,
            pb::CloseProgramRequest {
                name: name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&close), "ILLEGAL_STAGE_TRANSITION");
    let open = c
        .open_program(env.as_role(
            Role::Admin,
            pb::OpenProgramRequest {
                name: name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&open), "PROGRAM_INCOMPLETE");
    let publish = c
        .publish_results(env.as_role(
            Role::Admin,
            pb::PublishResultsRequest {
                name: name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&publish), "ILLEGAL_STAGE_TRANSITION");
    let stale = c
        .open_program(env.as_role(
            Role::Admin,
            pb::OpenProgramRequest {
                name: name.clone(),
                etag: "0000000000000000".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let missing = c
        .open_program(env.as_role(
            Role::Admin,
            pb::OpenProgramRequest {
                name: "programs/nope".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = c
        .get_program(env.as_role(
            Role::Admin,
            pb::GetProgramRequest {
                name: "projects/x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&malformed), ["name"]);
    // Only admins open programs.
    let denied = c
        .open_program(env.as_role(
            Role::Officer,
            pb::OpenProgramRequest {
                name,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    env.stop().await;
}

async fn applications_on_vetoed_unapproved_or_foreign_achievements_are_refused_naming_why(
    backend: Backend,
) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    env.open_program("green-2024", project(2024)).await;
    let mut certified = project(2024);
    certified.requires_high_tech_certification = true;
    env.open_program("certified-2024", certified).await;
    let e1 = env.enterprise(1).await;
    let e2 = env.enterprise(2).await;

    // Vetoed by a single expert despite a high score.
    let vetoed = env.submitted_achievement(&e1, BIO).await;
    env.decide(&vetoed, 95, true).await;
    let err = env
        .apply("green-2024", &e1, &vetoed, 100_000, None)
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&err), "ACHIEVEMENT_VETOED");
    assert!(err.message().contains("vetoed"), "{}", err.message());

    // Submitted but not decided: not approved.
    let pending = env.submitted_achievement(&e1, BIO).await;
    let err = env
        .apply("green-2024", &e1, &pending, 100_000, None)
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&err), "ACHIEVEMENT_NOT_APPROVED");
    assert!(err.message().contains("SUBMITTED"), "{}", err.message());

    // Rejected on score.
    let rejected = env.submitted_achievement(&e1, BIO).await;
    env.decide(&rejected, 40, false).await;
    let err = env
        .apply("green-2024", &e1, &rejected, 100_000, None)
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&err), "ACHIEVEMENT_NOT_APPROVED");

    // Someone else's achievement; an unknown one.
    let theirs = env.approved(&e2, BIO, 90).await;
    let err = env
        .apply("green-2024", &e1, &theirs, 100_000, None)
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&err), "ACHIEVEMENT_NOT_OWNED");
    let err = env
        .apply("green-2024", &e1, "doesnotexist", 100_000, None)
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&err), "ACHIEVEMENT_NOT_FOUND");

    // An uncertified enterprise in a program that requires certification; an unregistered one.
    let err = env
        .apply("certified-2024", &e2, &theirs, 100_000, None)
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&err), "ENTERPRISE_NOT_CERTIFIED");
    let ghost = uscc(99);
    let err = env
        .apply("green-2024", &ghost, &theirs, 100_000, None)
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&err), "ENTERPRISE_NOT_REGISTERED");

    // A revoked enterprise (RevokeEnterprise is not implemented on this branch of the registry:
    // the registry's own row is changed instead).
    env.registry
        .db
        .execute_raw(Statement::from_string(
            env.registry.db.get_database_backend(),
            format!(
                "UPDATE enterprise SET state = {} WHERE uscc = '{e2}'",
                rpb::EnterpriseState::Revoked as i32
            ),
        ))
        .await
        .unwrap();
    let err = env
        .apply("green-2024", &e2, &theirs, 100_000, None)
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&err), "ENTERPRISE_NOT_ACTIVE");

    // Nothing was written.
    let listed = env
        .client()
        .list_applications(env.as_role(
            Role::Admin,
            pb::ListApplicationsRequest {
                parent: "programs/-".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.applications.is_empty());
    env.stop().await;
}

async fn applications_are_own_only_one_per_achievement_and_nominate_a_listed_bucket(
    backend: Backend,
) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mut c = env.client();
    let award = pb::Program {
        display_name: "山东省科学技术奖 2024".into(),
        kind: pb::ProgramKind::Award as i32,
        year: 2024,
        award_quotas: vec![pb::AwardQuota {
            category: pb::AwardCategory::ScienceTechnologyProgress as i32,
            grade: pb::AwardGrade::First as i32,
            quota: 2,
            amount_fen: 30_000_000,
        }],
        deadlines: Some(pb::StageDeadlines {
            application_deadline: "2099-12-31".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    env.open_program("awards-2024", award).await;
    let e1 = env.enterprise(1).await;
    let e2 = env.enterprise(2).await;
    let a1 = env.approved(&e1, BIO, 88).await;
    let progress_first = Some((
        pb::AwardCategory::ScienceTechnologyProgress,
        pb::AwardGrade::First,
    ));

    // An enterprise applies only for itself.
    let err = c
        .create_application(env.as_enterprise(
            &e2,
            pb::CreateApplicationRequest {
                parent: "programs/awards-2024".into(),
                application: Some(pb::Application {
                    enterprise: format!("enterprises/{e1}"),
                    achievement: format!("achievements/{a1}"),
                    category: pb::AwardCategory::ScienceTechnologyProgress as i32,
                    grade: pb::AwardGrade::First as i32,
                    ..Default::default()
                }),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A bucket the program does not list (no upgrade to special prize).
    let err = env
        .apply(
            "awards-2024",
            &e1,
            &a1,
            0,
            Some((
                pb::AwardCategory::ScienceTechnologyProgress,
                pb::AwardGrade::Special,
            )),
        )
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["application.grade"]);
    let err = env
        .apply("awards-2024", &e1, &a1, 5, progress_first)
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["application.requested_amount_fen"]);

    // The admin may apply on the enterprise's behalf.
    let app = c
        .create_application(env.as_role(
            Role::Admin,
            pb::CreateApplicationRequest {
                parent: "programs/awards-2024".into(),
                application: Some(pb::Application {
                    enterprise: format!("enterprises/{e1}"),
                    achievement: format!("achievements/{a1}"),
                    category: pb::AwardCategory::ScienceTechnologyProgress as i32,
                    grade: pb::AwardGrade::First as i32,
                    ..Default::default()
                }),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(app.name.starts_with("programs/awards-2024/applications/"));
    let dup = env
        .apply("awards-2024", &e1, &a1, 0, progress_first)
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    assert_eq!(
        dup.get_error_details()
            .resource_info()
            .unwrap()
            .resource_name,
        app.name
    );

    // Own only for reads; the other enterprise sees nothing of it.
    let err = c
        .get_application(env.as_enterprise(
            &e2,
            pb::GetApplicationRequest {
                name: app.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let theirs = c
        .list_applications(env.as_enterprise(
            &e2,
            pb::ListApplicationsRequest {
                parent: "programs/awards-2024".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.applications.is_empty());
    let mine = c
        .list_applications(env.as_enterprise(
            &e1,
            pb::ListApplicationsRequest {
                parent: "programs/awards-2024".into(),
                filter: "industry_field = INDUSTRY_FIELD_BIOMEDICINE".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.applications.len(), 1);

    // Withdraw (own, with a stale etag refused), then the same achievement may not re-apply.
    let stale = c
        .withdraw_application(env.as_enterprise(
            &e1,
            pb::WithdrawApplicationRequest {
                name: app.name.clone(),
                etag: "stale".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let withdrawn = c
        .withdraw_application(env.as_enterprise(
            &e1,
            pb::WithdrawApplicationRequest {
                name: app.name.clone(),
                reason: "材料不全".into(),
                etag: app.etag.clone(),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawn.state, pb::ApplicationState::Withdrawn as i32);
    assert_eq!(withdrawn.withdraw_reason, "材料不全");
    let twice = c
        .withdraw_application(env.as_enterprise(
            &e1,
            pb::WithdrawApplicationRequest {
                name: app.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&twice), "APPLICATION_WITHDRAWN");

    // After the deadline (programme time zone) no more applications.
    let a2 = env.approved(&e2, IT, 80).await;
    env.offset.store(
        (chrono::NaiveDate::from_ymd_opt(2100, 1, 2)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros())
            - qilu_common::time::now_micros(),
        Ordering::SeqCst,
    );
    let late = env
        .apply("awards-2024", &e2, &a2, 0, progress_first)
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&late), "OUTSIDE_APPLICATION_WINDOW");
    env.chain_verifies().await;
    env.stop().await;
}

async fn sixteen_concurrent_allocations_store_one_result_within_quotas_and_caps(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let natural = pb::AwardCategory::NaturalScience;
    let progress = pb::AwardCategory::ScienceTechnologyProgress;
    let first = pb::AwardGrade::First;
    let second = pb::AwardGrade::Second;
    let award = pb::Program {
        display_name: "山东省科学技术奖 2024".into(),
        kind: pb::ProgramKind::Award as i32,
        year: 2024,
        award_quotas: vec![
            pb::AwardQuota {
                category: natural as i32,
                grade: first as i32,
                quota: 2,
                amount_fen: 30_000_000,
            },
            pb::AwardQuota {
                category: progress as i32,
                grade: first as i32,
                quota: 2,
                amount_fen: 30_000_000,
            },
            pb::AwardQuota {
                category: progress as i32,
                grade: second as i32,
                quota: 2,
                amount_fen: 20_000_000,
            },
        ],
        quota_caps: vec![pb::QuotaCap {
            description: "first prizes ≤ 3 (scaled-down reform cap)".into(),
            grades: vec![first as i32],
            limit: 3,
            ..Default::default()
        }],
        priority_fields: vec![pb::PriorityFieldShare {
            field: IT as i32,
            target_share_basis_points: 5000,
        }],
        score_threshold_millipoints: 70_000,
        ..Default::default()
    };
    env.open_program("awards-2024", award).await;
    let buckets = [(natural, first), (progress, first), (progress, second)];
    let fields = [IT, BIO, ENERGY];
    let mut n = 0;
    for (b, bucket) in buckets.iter().enumerate() {
        for k in 0..3 {
            n += 1;
            let e = env.enterprise(n).await;
            let field = fields[(b + k) % 3];
            let a = env.approved(&e, field, 75 + (n as i32 % 20)).await;
            env.apply("awards-2024", &e, &a, 0, Some(*bucket))
                .await
                .unwrap();
        }
    }
    env.close("awards-2024").await;

    let results = futures::future::join_all((0..16).map(|_| env.allocate("awards-2024"))).await;
    let ok: Vec<&pb::Allocation> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 1, "exactly one run is stored: {results:?}");
    for r in &results {
        if let Err(s) = r {
            assert_eq!(precondition_kind(s), "ILLEGAL_STAGE_TRANSITION", "{s:?}");
        }
    }
    let stored = env
        .client()
        .get_allocation(env.as_role(
            Role::Admin,
            pb::GetAllocationRequest {
                name: "programs/awards-2024/allocation".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(&stored, ok[0]);
    assert_eq!(stored.revision, 1);
    assert_eq!(
        stored.entries.len(),
        9,
        "one entry per application, no doubles"
    );
    for b in &stored.buckets {
        assert!(b.used <= b.size, "{b:?}");
        let awarded = stored
            .entries
            .iter()
            .filter(|e| {
                e.category == b.category
                    && e.grade == b.grade
                    && e.outcome == pb::ApplicationOutcome::Awarded as i32
            })
            .count() as i64;
        assert_eq!(awarded, b.used);
    }
    let cap = &stored.caps[0];
    assert!(cap.used <= cap.limit, "{cap:?}");
    assert_eq!(cap.used, 3, "the cap binds: 4 first-prize seats, limit 3");
    let totals = stored.totals.unwrap();
    assert!(totals.amount_fen <= totals.budget_fen);
    assert_eq!(totals.selected, 5);
    // Exactly one stored revision's worth of application updates: each application audited
    // once by the allocation (plus its creation).
    let events = env
        .client()
        .list_audit_events(env.as_role(
            Role::Auditor,
            cpb::ListAuditEventsRequest {
                filter: "resource = \"programs/awards-2024/allocation\"".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(events.audit_events.len(), 1);
    env.chain_verifies().await;
    env.stop().await;
}

async fn an_achievement_vetoed_since_applying_is_excluded_with_that_reason(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    env.open_program("green-2024", project(2024)).await;
    let e1 = env.enterprise(1).await;
    let e2 = env.enterprise(2).await;
    let a1 = env.approved(&e1, BIO, 90).await;
    let a2 = env.approved(&e2, IT, 80).await;
    let app1 = env
        .apply("green-2024", &e1, &a1, 300_000, None)
        .await
        .unwrap();
    let app2 = env
        .apply("green-2024", &e2, &a2, 300_000, None)
        .await
        .unwrap();
    env.close("green-2024").await;
    // The review service's record changes after the application (e.g. a veto upheld on a
    // re-examination): simulated on the review service's own database.
    env.review()
        .db
        .execute_raw(Statement::from_string(
            env.review().db.get_database_backend(),
            format!(
                "UPDATE achievement SET state = {} WHERE id = '{a1}'",
                vpb::AchievementState::Vetoed as i32
            ),
        ))
        .await
        .unwrap();
    let allocation = env.allocate("green-2024").await.unwrap();
    let entry = allocation
        .entries
        .iter()
        .find(|e| e.application == app1.name)
        .unwrap();
    assert_eq!(entry.outcome, pb::ApplicationOutcome::Excluded as i32);
    assert_eq!(entry.rank, 0);
    assert!(
        entry.reason.contains("vetoed since applying"),
        "{}",
        entry.reason
    );
    let stored = env.application(&app1.name).await;
    assert_eq!(stored.outcome, pb::ApplicationOutcome::Excluded as i32);
    assert_eq!(stored.outcome_reason, entry.reason);
    let other = env.application(&app2.name).await;
    assert_eq!(other.outcome, pb::ApplicationOutcome::Funded as i32);
    env.stop().await;
}

/// A published project program where the budget funds two of three: returns the program id and
/// the applications in rank order (e1 90, e2 85 funded; e3 80 not selected).
async fn published_program(env: &Env) -> (String, Vec<pb::Application>, Vec<String>) {
    let mut p = project(2024);
    p.priority_fields.clear();
    p.per_project_cap_fen = 0;
    env.open_program("green-2024", p).await;
    let mut apps = Vec::new();
    let mut usccs = Vec::new();
    for (n, points) in [(1, 90), (2, 85), (3, 80)] {
        let e = env.enterprise(n).await;
        let a = env.approved(&e, IT, points).await;
        apps.push(
            env.apply("green-2024", &e, &a, 400_000, None)
                .await
                .unwrap(),
        );
        usccs.push(e);
    }
    env.close("green-2024").await;
    env.allocate("green-2024").await.unwrap();
    env.publish("green-2024").await;
    ("green-2024".into(), apps, usccs)
}

async fn file(
    env: &Env,
    bearer: &str,
    program: &str,
    application: &str,
) -> Result<pb::Objection, Status> {
    env.client()
        .file_objection(env.with_bearer(
            bearer,
            pb::FileObjectionRequest {
                parent: format!("programs/{program}"),
                objection: Some(pb::Objection {
                    application: application.into(),
                    grounds: "成果数据与实际不符".into(),
                    evidence: "检测报告编号 2024-117".into(),
                    objector_name: "李四".into(),
                    objector_contact: "13800000000".into(),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn an_upheld_objection_revises_the_outcome_as_a_new_revision(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (program, apps, usccs) = published_program(&env).await;
    let funded = pb::ApplicationOutcome::Funded as i32;
    let not_selected = pb::ApplicationOutcome::NotSelected as i32;
    assert_eq!(env.application(&apps[0].name).await.outcome, funded);
    assert_eq!(env.application(&apps[2].name).await.outcome, not_selected);

    let objector = env
        .awards
        .bearer("enterprise-e3", &[Role::Enterprise], Some(&usccs[2]), None);
    let upheld = file(&env, &objector, &program, &apps[0].name)
        .await
        .unwrap();
    let dismissed = file(&env, &objector, &program, &apps[1].name)
        .await
        .unwrap();
    assert_eq!(upheld.state, pb::ObjectionState::Open as i32);

    // Not final while an objection is open, even after the window.
    env.advance_days(11);
    let err = env
        .client()
        .finalize_program(env.as_role(
            Role::Admin,
            pb::FinalizeProgramRequest {
                name: format!("programs/{program}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&err), "OBJECTION_OPEN");
    // And no new objection after the window.
    let late = file(&env, &objector, &program, &apps[0].name)
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&late), "OBJECTION_WINDOW_CLOSED");

    let mut c = env.client();
    let bad = c
        .resolve_objection(env.as_role(
            Role::Admin,
            pb::ResolveObjectionRequest {
                name: upheld.name.clone(),
                resolution: pb::ObjectionResolution::Upheld as i32,
                reason: "核查属实".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&bad), ["remedy"]);
    let resolved = c
        .resolve_objection(env.as_role(
            Role::Admin,
            pb::ResolveObjectionRequest {
                name: upheld.name.clone(),
                resolution: pb::ObjectionResolution::Upheld as i32,
                remedy: pb::ObjectionRemedy::ExcludeApplication as i32,
                reason: "检测报告证实能耗数据造假".into(),
                etag: upheld.etag.clone(),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.state, pb::ObjectionState::Resolved as i32);
    assert_eq!(resolved.allocation_revision, 2);
    assert_eq!(resolved.resolved_by, "test-admin");

    // Revision 2: the objected application is excluded with the objection's reason; its money
    // goes down the ranking to the next one.
    let allocation = c
        .get_allocation(env.as_role(
            Role::Admin,
            pb::GetAllocationRequest {
                name: format!("programs/{program}/allocation"),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(allocation.revision, 2);
    assert_eq!(allocation.revised_by_objection, upheld.name);
    let excluded = env.application(&apps[0].name).await;
    assert_eq!(excluded.outcome, pb::ApplicationOutcome::Excluded as i32);
    assert!(
        excluded.outcome_reason.contains(&upheld.name)
            && excluded.outcome_reason.contains("能耗数据造假"),
        "{}",
        excluded.outcome_reason
    );
    assert_eq!(excluded.amount_fen, 0);
    let promoted = env.application(&apps[2].name).await;
    assert_eq!(promoted.outcome, funded, "{}", promoted.outcome_reason);
    assert_eq!(promoted.amount_fen, 400_000);
    assert!(allocation.totals.unwrap().amount_fen <= 1_000_000);

    // Resolved once only; the dismissed one changes nothing.
    let again = c
        .resolve_objection(env.as_role(
            Role::Admin,
            pb::ResolveObjectionRequest {
                name: upheld.name.clone(),
                resolution: pb::ObjectionResolution::Dismissed as i32,
                reason: "重复".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(precondition_kind(&again), "OBJECTION_RESOLVED");
    let d = c
        .resolve_objection(env.as_role(
            Role::Admin,
            pb::ResolveObjectionRequest {
                name: dismissed.name.clone(),
                resolution: pb::ObjectionResolution::Dismissed as i32,
                reason: "异议理由不成立".into(),
                request_id: uuid(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.resolution, pb::ObjectionResolution::Dismissed as i32);
    assert_eq!(d.allocation_revision, 0);
    assert_eq!(env.application(&apps[1].name).await.outcome, funded);

    // Reinstating it again (a second objection, upheld) restores revision 1's outcome.
    env.advance_days(-11);
    let second = file(&env, &objector, &program, &apps[0].name)
        .await
        .unwrap();
    c.resolve_objection(env.as_role(
        Role::Admin,
        pb::ResolveObjectionRequest {
            name: second.name.clone(),
            resolution: pb::ObjectionResolution::Upheld as i32,
            remedy: pb::ObjectionRemedy::ReinstateApplication as i32,
            reason: "复核后原异议不成立".into(),
            request_id: uuid(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    assert_eq!(env.application(&apps[0].name).await.outcome, funded);
    assert_eq!(env.application(&apps[2].name).await.outcome, not_selected);

    env.advance_days(11);
    let done = c
        .finalize_program(env.as_role(
            Role::Admin,
            pb::FinalizeProgramRequest {
                name: format!("programs/{program}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.state, pb::ProgramState::Final as i32);
    env.chain_verifies().await;
    env.stop().await;
}

async fn get_objection_as(env: &Env, name: &str, bearer: String) -> Result<pb::Objection, Status> {
    env.client()
        .get_objection(env.with_bearer(&bearer, pb::GetObjectionRequest { name: name.into() }))
        .await
        .map(|r| r.into_inner())
}

async fn objector_identity_is_shown_only_to_admin_auditor_and_the_objector(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (program, apps, usccs) = published_program(&env).await;
    let objector = env
        .awards
        .bearer("enterprise-e3", &[Role::Enterprise], Some(&usccs[2]), None);
    let filed = file(&env, &objector, &program, &apps[0].name)
        .await
        .unwrap();
    assert_eq!(filed.objector, "enterprise-e3", "the objector sees itself");
    assert_eq!(filed.objector_name, "李四");
    let mut c = env.client();
    for role in [Role::Admin, Role::Auditor] {
        let o = get_objection_as(
            &env,
            &filed.name,
            env.awards.bearer("staff", &[role], None, None),
        )
        .await
        .unwrap();
        assert_eq!(o.objector_name, "李四", "{role:?}");
        assert_eq!(o.objector_contact, "13800000000");
    }
    let o = get_objection_as(
        &env,
        &filed.name,
        env.awards.bearer("officer", &[Role::Officer], None, None),
    )
    .await
    .unwrap();
    assert!(o.objector.is_empty() && o.objector_name.is_empty() && o.objector_contact.is_empty());
    assert_eq!(o.grounds, filed.grounds);
    // Another enterprise does not see it at all.
    let other = env
        .awards
        .bearer("enterprise-e1", &[Role::Enterprise], Some(&usccs[0]), None);
    assert_eq!(
        get_objection_as(&env, &filed.name, other.clone())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let listed = c
        .list_objections(env.with_bearer(
            &other,
            pb::ListObjectionsRequest {
                parent: format!("programs/{program}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.objections.is_empty());
    let officer_list = c
        .list_objections(env.as_role(
            Role::Officer,
            pb::ListObjectionsRequest {
                parent: format!("programs/{program}"),
                filter: "state = OBJECTION_STATE_OPEN".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(officer_list.objections.len(), 1);
    assert!(officer_list.objections[0].objector_name.is_empty());
    // Missing fields are named.
    let err = c
        .file_objection(env.with_bearer(
            &objector,
            pb::FileObjectionRequest {
                parent: format!("programs/{program}"),
                objection: Some(pb::Objection {
                    application: apps[0].name.clone(),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        bad_fields(&err),
        [
            "objection.grounds",
            "objection.objector_name",
            "objection.objector_contact"
        ]
    );
    // The audit log keeps the identity (auditors read it there too).
    let events = c
        .list_audit_events(env.as_role(
            Role::Auditor,
            cpb::ListAuditEventsRequest {
                filter: format!("resource = \"{}\"", filed.name),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(events.audit_events.len(), 1);
    env.stop().await;
}

async fn the_review_service_down_during_allocation_is_unavailable_and_writes_nothing(
    backend: Backend,
) {
    let Some(mut env) = Env::start(backend).await else {
        return;
    };
    env.open_program("green-2024", project(2024)).await;
    let e1 = env.enterprise(1).await;
    let a1 = env.approved(&e1, BIO, 90).await;
    let app = env
        .apply("green-2024", &e1, &a1, 300_000, None)
        .await
        .unwrap();
    env.close("green-2024").await;
    let before = env.audit_count().await;
    let program_before = env.program("green-2024").await;

    env.review.take().unwrap().stop().await;
    let err = env.allocate("green-2024").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(
        err.get_error_details().error_info().unwrap().metadata["dependency"],
        "review"
    );

    // Nothing written: same program, no allocation, no outcome, no audit event.
    assert_eq!(env.program("green-2024").await, program_before);
    let missing = env
        .client()
        .get_allocation(env.as_role(
            Role::Admin,
            pb::GetAllocationRequest {
                name: "programs/green-2024/allocation".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(env.application(&app.name).await.outcome, 0);
    assert_eq!(env.audit_count().await, before);
    env.chain_verifies().await;
    env.awards.stop().await;
    env.registry.stop().await;
}

async fn the_registry_down_when_applying_is_unavailable_and_writes_nothing(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    env.open_program("green-2024", project(2024)).await;
    let e1 = env.enterprise(1).await;
    let a1 = env.approved(&e1, BIO, 90).await;
    let before = env.audit_count().await;
    let Env {
        registry,
        review,
        awards,
        offset,
    } = env;
    registry.stop().await;
    // The review service is still up; the registry is asked first.
    let env = Env {
        registry: TestServer::start::<Registry>(backend).await.unwrap(),
        review,
        awards,
        offset,
    };
    let err = env
        .apply("green-2024", &e1, &a1, 300_000, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(env.audit_count().await, before);
    env.stop().await;
}

async fn field_distribution_compares_years_against_targets(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mut c = env.client();
    // 2023: biomedicine gets 1 of 2 funded projects; 2024: 2 of 2.
    let mut n = 0;
    for (year, fields) in [(2023, [BIO, IT]), (2024, [BIO, BIO])] {
        let id = format!("green-{year}");
        let mut p = project(year);
        p.per_project_cap_fen = 0;
        p.priority_fields[0].target_share_basis_points = 2000 + (year - 2023) * 1000;
        env.open_program(&id, p).await;
        for f in fields {
            n += 1;
            let e = env.enterprise(n).await;
            let a = env.approved(&e, f, 90).await;
            env.apply(&id, &e, &a, 400_000, None).await.unwrap();
        }
        env.close(&id).await;
        env.allocate(&id).await.unwrap();
    }
    let ask = |include_provisional| pb::GetFieldDistributionRequest {
        scope: Some(pb::get_field_distribution_request::Scope::Years(
            pb::YearRange {
                start_year: 2023,
                end_year: 2025,
            },
        )),
        kind: pb::ProgramKind::Project as i32,
        include_provisional,
    };
    // Only FINAL programs count by default: none yet.
    let d = c
        .get_field_distribution(env.as_role(Role::Auditor, ask(false)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.years.len(), 3);
    assert!(
        d.years
            .iter()
            .all(|y| y.programs.is_empty() && y.total_count == 0)
    );
    let d = c
        .get_field_distribution(env.as_role(Role::Auditor, ask(true)))
        .await
        .unwrap()
        .into_inner();
    let y2023 = &d.years[0];
    let y2024 = &d.years[1];
    assert_eq!(y2023.programs, ["programs/green-2023"]);
    let bio23 = y2023.fields.iter().find(|f| f.field == BIO as i32).unwrap();
    let bio24 = y2024.fields.iter().find(|f| f.field == BIO as i32).unwrap();
    assert_eq!(bio23.count_share_basis_points, 5000);
    assert_eq!(bio23.target_share_basis_points, 2000);
    assert!(!bio23.has_previous_year);
    assert_eq!(bio24.count_share_basis_points, 10_000);
    assert_eq!(bio24.target_share_basis_points, 3000);
    assert!(bio24.has_previous_year);
    assert_eq!(
        bio24.count_share_change_basis_points, 5000,
        "the share rises"
    );
    assert_eq!(bio24.amount_share_change_basis_points, 5000);
    // A field with neither an application nor a target in a year has no row.
    assert!(y2024.fields.iter().all(|f| f.field != IT as i32));
    assert!(d.years[2].programs.is_empty());
    let err = c
        .get_field_distribution(env.as_role(
            Role::Auditor,
            pb::GetFieldDistributionRequest {
                scope: Some(pb::get_field_distribution_request::Scope::Years(
                    pb::YearRange {
                        start_year: 2024,
                        end_year: 2023,
                    },
                )),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&err), ["years.end_year"]);
    // Years no program can have are refused by field, and never overflow the range arithmetic
    // (the fuzz test once found `i32::MAX - -5` panicking here).
    for (start_year, end_year, field) in [
        (-5, i32::MAX, "years.start_year"),
        (i32::MIN, 2024, "years.start_year"),
        (2024, i32::MAX, "years.end_year"),
    ] {
        let err = c
            .get_field_distribution(env.as_role(
                Role::Auditor,
                pb::GetFieldDistributionRequest {
                    scope: Some(pb::get_field_distribution_request::Scope::Years(
                        pb::YearRange {
                            start_year,
                            end_year,
                        },
                    )),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{start_year}..{end_year}"
        );
        assert_eq!(bad_fields(&err), [field], "{start_year}..{end_year}");
    }
    let denied = c
        .get_field_distribution(env.as_role(Role::Expert, ask(true)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    env.stop().await;
}

/// Calls `method` with an empty request as `role`.
async fn call_empty(env: &Env, method: &str, role: Role) -> Result<(), Status> {
    let mut c = env.client();
    macro_rules! call {
        ($rpc:ident) => {
            c.$rpc(env.as_role(role, Default::default()))
                .await
                .map(|_| ())
        };
    }
    match method {
        "CreateProgram" => call!(create_program),
        "GetProgram" => call!(get_program),
        "ListPrograms" => call!(list_programs),
        "UpdateProgram" => call!(update_program),
        "DeleteProgram" => call!(delete_program),
        "OpenProgram" => call!(open_program),
        "CloseProgram" => call!(close_program),
        "AllocateProgram" => call!(allocate_program),
        "StartAllocation" => call!(start_allocation),
        "GetAllocation" => call!(get_allocation),
        "ListAllocationEntries" => call!(list_allocation_entries),
        "ListAllocationRevisions" => call!(list_allocation_revisions),
        "PublishResults" => call!(publish_results),
        "FinalizeProgram" => call!(finalize_program),
        "CreateApplication" => call!(create_application),
        "GetApplication" => call!(get_application),
        "ListApplications" => call!(list_applications),
        "WithdrawApplication" => call!(withdraw_application),
        "FileObjection" => call!(file_objection),
        "GetObjection" => call!(get_objection),
        "ResolveObjection" => call!(resolve_objection),
        "ListObjections" => call!(list_objections),
        "GetFieldDistribution" => call!(get_field_distribution),
        "ListAuditEvents" => call!(list_audit_events),
        "VerifyAuditChain" => call!(verify_audit_chain),
        "ListChanges" => call!(list_changes),
        // The streams are dropped as soon as they are granted.
        "WatchChanges" => call!(watch_changes),
        "GetChangeFeedHead" => call!(get_change_feed_head),
        "ExportSnapshot" => call!(export_snapshot),
        other => panic!("no call for {other}"),
    }
}

async fn every_role_is_allowed_or_refused_exactly_as_the_role_table_says(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    assert_eq!(
        qilu_awards::roles::ROLE_TABLE.len(),
        29,
        "every RPC of the contract"
    );
    for row in qilu_awards::roles::ROLE_TABLE {
        for role in Role::ALL {
            let result = call_empty(&env, row.method, role).await;
            if row.roles.contains(&role) {
                // Allowed: whatever the handler says about an empty request, never a refusal
                // of the role itself.
                if let Err(s) = &result {
                    assert!(
                        !matches!(s.code(), Code::PermissionDenied | Code::Unauthenticated),
                        "{} as {role} is in the table but was refused: {s:?}",
                        row.method
                    );
                }
            } else {
                let s = result.expect_err(&format!("{} as {role} must be refused", row.method));
                assert_eq!(s.code(), Code::PermissionDenied, "{} as {role}", row.method);
            }
        }
    }
    env.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Statutory ceilings across a year's programs
// ---------------------------------------------------------------------------------------------

/// An AWARD program of `year` with `(category, grade, seats)` buckets and a 70-point threshold.
fn award(year: i32, buckets: &[(pb::AwardCategory, pb::AwardGrade, i32)]) -> pb::Program {
    pb::Program {
        display_name: format!("山东省科学技术奖 {year}"),
        kind: pb::ProgramKind::Award as i32,
        year,
        award_quotas: buckets
            .iter()
            .map(|&(category, grade, quota)| pb::AwardQuota {
                category: category as i32,
                grade: grade as i32,
                quota,
                amount_fen: 30_000_000,
            })
            .collect(),
        score_threshold_millipoints: 70_000,
        ..Default::default()
    }
}

async fn create_as_admin(env: &Env, id: &str, program: pb::Program) -> Result<pb::Program, Status> {
    env.client()
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: id.into(),
                program: Some(program),
                request_id: uuid(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn open_as_admin(env: &Env, id: &str) -> Result<pb::Program, Status> {
    env.client()
        .open_program(env.as_role(
            Role::Admin,
            pb::OpenProgramRequest {
                name: format!("programs/{id}"),
                ..Default::default()
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// Asserts `s` is the statutory ceiling `key` refusing `year` at `total` against `limit`.
#[track_caller]
fn assert_ceiling_refusal(s: &Status, key: &str, year: i32, total: i64, limit: i64) {
    assert_eq!(precondition_kind(s), "STATUTORY_CEILING_EXCEEDED", "{s:?}");
    let v = s
        .get_error_details()
        .precondition_failure()
        .unwrap()
        .violations[0]
        .clone();
    assert_eq!(
        v.subject,
        format!("awardCeilings/{key}/years/{year}"),
        "{v:?}"
    );
    for part in [
        format!("{key} v"),
        format!("programme year {year}"),
        format!("total {total}"),
        format!("limit of {limit}"),
    ] {
        assert!(
            v.description.contains(&part),
            "{part:?} in {:?}",
            v.description
        );
    }
}

async fn a_years_programs_together_never_exceed_the_statutory_first_prize_ceiling(
    backend: Backend,
) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    use pb::AwardCategory::{NaturalScience, ScienceTechnologyProgress, TechnologicalInvention};
    use pb::AwardGrade::{First, Second};
    // Three drafts of 2025: drafts are plans and never block each other.
    create_as_admin(
        &env,
        "natural-2025",
        award(
            2025,
            &[(NaturalScience, First, 20), (NaturalScience, Second, 40)],
        ),
    )
    .await
    .unwrap();
    create_as_admin(
        &env,
        "progress-2025",
        award(2025, &[(ScienceTechnologyProgress, First, 10)]),
    )
    .await
    .unwrap();
    create_as_admin(
        &env,
        "invention-2025",
        award(2025, &[(TechnologicalInvention, First, 10)]),
    )
    .await
    .unwrap();
    // Opening commits the quotas: 20, then 20 + 10 = 30; the third would make 40 > 35.
    open_as_admin(&env, "natural-2025").await.unwrap();
    open_as_admin(&env, "progress-2025").await.unwrap();
    let refused = open_as_admin(&env, "invention-2025").await.unwrap_err();
    assert_ceiling_refusal(&refused, "first-prizes", 2025, 40, 35);
    let v = refused
        .get_error_details()
        .precondition_failure()
        .unwrap()
        .violations[0]
        .clone();
    assert!(v.description.contains("programs/natural-2025"), "{v:?}");
    assert!(v.description.contains("programs/progress-2025"), "{v:?}");
    assert_eq!(
        env.program("invention-2025").await.state,
        pb::ProgramState::Draft as i32,
        "a refused open changes nothing"
    );

    // Updating the draft down to the 5 seats left makes it openable; 6 would not be.
    let current = env.program("invention-2025").await;
    let update = |quota: i32, etag: String| pb::UpdateProgramRequest {
        program: Some(pb::Program {
            name: "programs/invention-2025".into(),
            etag,
            ..award(2025, &[(TechnologicalInvention, First, quota)])
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["award_quotas".into()],
        }),
        request_id: uuid(),
    };
    let refused = env
        .client()
        .update_program(env.as_role(Role::Admin, update(6, current.etag.clone())))
        .await
        .unwrap_err();
    assert_ceiling_refusal(&refused, "first-prizes", 2025, 36, 35);
    env.client()
        .update_program(env.as_role(Role::Admin, update(5, current.etag)))
        .await
        .unwrap();
    open_as_admin(&env, "invention-2025").await.unwrap();

    // The year is full: creating one more first prize in 2025 is refused at once.
    let refused = create_as_admin(
        &env,
        "late-2025",
        award(2025, &[(NaturalScience, First, 1)]),
    )
    .await
    .unwrap_err();
    assert_ceiling_refusal(&refused, "first-prizes", 2025, 36, 35);
    // Second prizes still fit under the 300 of the three categories: 75 + 225 = 300.
    create_as_admin(
        &env,
        "seconds-2025",
        award(2025, &[(ScienceTechnologyProgress, Second, 225)]),
    )
    .await
    .unwrap();
    open_as_admin(&env, "seconds-2025").await.unwrap();
    let refused = create_as_admin(
        &env,
        "one-more-2025",
        award(2025, &[(TechnologicalInvention, Second, 1)]),
    )
    .await
    .unwrap_err();
    assert_ceiling_refusal(&refused, "three-categories", 2025, 301, 300);
    // A single program past a ceiling is refused on its own too (top award ≤ 2).
    let refused = create_as_admin(
        &env,
        "top-2025",
        award(
            2025,
            &[(pb::AwardCategory::TopAward, pb::AwardGrade::Ungraded, 3)],
        ),
    )
    .await
    .unwrap_err();
    assert_ceiling_refusal(&refused, "top-award", 2025, 3, 2);

    // Another year is independent: 35 first prizes in 2026 open beside the full 2025.
    create_as_admin(
        &env,
        "natural-2026",
        award(2026, &[(NaturalScience, First, 35)]),
    )
    .await
    .unwrap();
    open_as_admin(&env, "natural-2026").await.unwrap();
    // Moving a draft into the full year is refused like creating it there.
    create_as_admin(&env, "movable", award(2027, &[(NaturalScience, First, 1)]))
        .await
        .unwrap();
    let movable = env.program("movable").await;
    let refused = env
        .client()
        .update_program(env.as_role(
            Role::Admin,
            pb::UpdateProgramRequest {
                program: Some(pb::Program {
                    name: "programs/movable".into(),
                    etag: movable.etag,
                    year: 2026,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["year".into()],
                }),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap_err();
    assert_ceiling_refusal(&refused, "first-prizes", 2026, 36, 35);
    env.chain_verifies().await;
    env.stop().await;
}

async fn allocation_counts_awards_made_in_the_years_other_programs_against_the_ceiling(
    backend: Backend,
) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    use pb::AwardCategory::{NaturalScience, ScienceTechnologyProgress};
    use pb::AwardGrade::First;
    // Two programs of 2028 open with 2 first prizes each under the seeded ceiling (35).
    env.open_program("natural-2028", award(2028, &[(NaturalScience, First, 2)]))
        .await;
    env.open_program(
        "progress-2028",
        award(2028, &[(ScienceTechnologyProgress, First, 2)]),
    )
    .await;
    let mut n = 0;
    for (program, category) in [
        ("natural-2028", NaturalScience),
        ("progress-2028", ScienceTechnologyProgress),
    ] {
        for points in [90, 85] {
            n += 1;
            let e = env.enterprise(500 + n).await;
            let a = env.approved(&e, BIO, points).await;
            env.apply(program, &e, &a, 0, Some((category, First)))
                .await
                .unwrap();
        }
        env.close(program).await;
    }
    // Then the ceiling is lowered for 2028 by a new version of the data (as an operator's
    // migration would add it): 3 first prizes.
    let db = &env.awards.db;
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "INSERT INTO award_ceiling (key, version, description, categories, grades, \
         limit_per_year, effective_from_year, effective_to_year, source, create_time_us) \
         VALUES ('first-prizes', 2, 'first prizes ≤ 3 a year (test)', '[]', '[2]', 3, 2028, \
         2028, 'integration test: a lowered ceiling', 0)"
            .to_string(),
    ))
    .await
    .unwrap();

    let first = env.allocate("natural-2028").await.unwrap();
    let awarded = |a: &pb::Allocation| {
        a.entries
            .iter()
            .filter(|e| e.outcome == pb::ApplicationOutcome::Awarded as i32)
            .count()
    };
    assert_eq!(awarded(&first), 2);
    let cap = first
        .caps
        .iter()
        .find(|c| c.description.contains("first-prizes v2"))
        .unwrap();
    assert_eq!((cap.limit, cap.used), (3, 2), "{cap:?}");

    // The preview and the run of the second program see the 2 awarded elsewhere: 1 seat left.
    let preview = env
        .client()
        .allocate_program(env.as_role(
            Role::Officer,
            pb::AllocateProgramRequest {
                name: "programs/progress-2028".into(),
                validate_only: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(awarded(&preview), 1);
    let second = env.allocate("progress-2028").await.unwrap();
    assert_eq!(awarded(&second), 1);
    let cap = second
        .caps
        .iter()
        .find(|c| c.description.contains("first-prizes v2"))
        .unwrap();
    assert_eq!((cap.limit, cap.used), (1, 1), "{cap:?}");
    assert!(
        cap.description.contains("2 of 3 already awarded"),
        "{cap:?}"
    );
    let skipped = second
        .entries
        .iter()
        .find(|e| e.outcome == pb::ApplicationOutcome::NotSelected as i32)
        .unwrap();
    assert!(
        skipped.reason.contains("statutory ceiling"),
        "the reason names the ceiling: {skipped:?}"
    );
    assert_eq!(
        awarded(&first) + awarded(&second),
        3,
        "the year never exceeds 3"
    );
    env.chain_verifies().await;
    env.stop().await;
}
