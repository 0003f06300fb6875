//! Results that fit and publicity that is public: an allocation run as a long-running operation
//! (followed through `google.longrunning.Operations`, surviving a restart of the awards server
//! while a peer is down), its entries paged and filtered in rank order, every revision readable
//! after an upheld objection, and published results read by a public portal and by a competitor
//! who did not apply, who then objects to an application by the id it read there.

use std::time::Duration;

use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::Backend;
use qilu_proto::awards as pb;
use qilu_proto::longrunning as lro;
use qilu_proto::longrunning::operations_client::OperationsClient;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::support::{Env, IT, project, uuid};

on_both_backends!(
    an_allocation_runs_as_an_operation_and_its_entries_page_in_rank_order,
    an_allocation_operation_waits_for_a_peer_and_survives_a_restart,
    a_waiting_allocation_is_cancelled_and_writes_nothing,
    published_results_are_readable_by_everyone_and_a_competitor_objects_by_their_ids,
);

fn ops(env: &Env) -> OperationsClient<Channel> {
    OperationsClient::new(env.awards.channel.clone())
}

fn decode<M: prost::Message + Default>(any: &prost_types::Any) -> M {
    M::decode(any.value.as_slice()).unwrap()
}

fn progress(op: &lro::Operation) -> pb::AllocationProgress {
    let any = op.metadata.as_ref().unwrap();
    assert_eq!(
        any.type_url,
        "type.googleapis.com/qilu.awards.v1.AllocationProgress"
    );
    decode(any)
}

/// Waits (as the caller `role`) until the operation is done, at most `limit`.
async fn wait_done(env: &Env, name: &str, limit: Duration) -> lro::Operation {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let op = ops(env)
            .wait_operation(env.as_role(
                Role::Admin,
                lro::WaitOperationRequest {
                    name: name.into(),
                    timeout: Some(prost_types::Duration {
                        seconds: 2,
                        nanos: 0,
                    }),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        if op.done {
            return op;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "operation {name} not done after {limit:?}: {:?}",
            progress(&op)
        );
    }
}

/// A closed project program with `n` applications of scores 90, 89, ... (budget for 2).
async fn closed_program(env: &Env, program: &str, n: u32) -> Vec<pb::Application> {
    let mut p = project(2024);
    p.priority_fields.clear();
    p.per_project_cap_fen = 0;
    env.open_program(program, p).await;
    let mut apps = Vec::new();
    for i in 0..n {
        let e = env.enterprise(100 + i).await;
        let a = env.approved(&e, IT, 90 - i32::try_from(i).unwrap()).await;
        apps.push(env.apply(program, &e, &a, 400_000, None).await.unwrap());
    }
    env.close(program).await;
    apps
}

fn start(
    env: &Env,
    role: Role,
    program: &str,
    request_id: &str,
) -> Request<pb::StartAllocationRequest> {
    env.as_role(
        role,
        pb::StartAllocationRequest {
            name: format!("programs/{program}"),
            request_id: request_id.into(),
            ..Default::default()
        },
    )
}

async fn entries(
    env: &Env,
    role: Role,
    parent: &str,
    filter: &str,
    page_size: i32,
) -> (Vec<pb::AllocationEntry>, i32, usize) {
    let mut all = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = env
            .client()
            .list_allocation_entries(env.as_role(
                role,
                pb::ListAllocationEntriesRequest {
                    parent: parent.into(),
                    page_size,
                    page_token: token.clone(),
                    filter: filter.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        all.extend(page.entries);
        if page.next_page_token.is_empty() {
            return (all, page.total_size, pages);
        }
        token = page.next_page_token;
    }
}

async fn an_allocation_runs_as_an_operation_and_its_entries_page_in_rank_order(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let apps = closed_program(&env, "big-2024", 7).await;
    let mut c = env.client();

    // Only an admin starts one; a program that is not CLOSED is refused at once.
    let denied = c
        .start_allocation(start(&env, Role::Officer, "big-2024", ""))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let request_id = uuid();
    let op = c
        .start_allocation(start(&env, Role::Admin, "big-2024", &request_id))
        .await
        .unwrap()
        .into_inner();
    assert!(op.name.starts_with("operations/awards-"), "{}", op.name);
    assert_eq!(progress(&op).program, "programs/big-2024");
    // A retried start is the same operation.
    let again = c
        .start_allocation(start(&env, Role::Admin, "big-2024", &request_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.name, op.name);

    let done = wait_done(&env, &op.name, Duration::from_secs(60)).await;
    let meta = progress(&done);
    assert_eq!(meta.stage, pb::AllocationStage::Done as i32);
    assert_eq!((meta.applications, meta.written), (7, 7));
    let Some(lro::operation::Result::Response(response)) = &done.result else {
        panic!("no response: {done:?}");
    };
    assert_eq!(
        response.type_url,
        "type.googleapis.com/qilu.awards.v1.Allocation"
    );
    let allocation: pb::Allocation = decode(response);
    assert_eq!(allocation.revision, 1);
    assert_eq!(allocation.entry_count, 7);
    assert_eq!(allocation.view, pb::AllocationView::Basic as i32);
    assert!(allocation.entries.is_empty());
    assert_eq!(allocation.revision_name, "programs/big-2024/allocation@1");

    // The program moved; a second start (another request id) is refused, and the first start's
    // retry still returns the finished operation.
    let twice = c
        .start_allocation(start(&env, Role::Admin, "big-2024", &uuid()))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let replayed = c
        .start_allocation(start(&env, Role::Admin, "big-2024", &request_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.name, op.name);
    assert!(replayed.done);

    // Listed for its starter and admins; invisible to another caller.
    let listed = ops(&env)
        .list_operations(env.as_role(
            Role::Admin,
            lro::ListOperationsRequest {
                name: "operations".into(),
                filter: "done = true AND target = \"programs/big-2024\"".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .operations
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>(),
        [op.name.as_str()]
    );
    let hidden = ops(&env)
        .get_operation(env.as_enterprise(
            &apps[0].enterprise["enterprises/".len()..],
            lro::GetOperationRequest {
                name: op.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    // Every entry, paged 3 at a time, equals the FULL view, in rank order.
    let full = c
        .get_allocation(env.as_role(
            Role::Admin,
            pb::GetAllocationRequest {
                name: "programs/big-2024/allocation".into(),
                view: pb::AllocationView::Full as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let (paged, total, pages) =
        entries(&env, Role::Admin, "programs/big-2024/allocation", "", 3).await;
    assert_eq!((total, pages), (7, 3));
    assert_eq!(paged, full.entries);
    let ranks: Vec<i32> = paged.iter().map(|e| e.rank).collect();
    assert_eq!(ranks, [1, 2, 3, 4, 5, 6, 7]);
    assert!(paged.iter().all(|e| {
        !e.achievement_title.is_empty()
            && e.enterprise_display_name
                .starts_with("山东绿色科技有限公司")
    }));
    let basic = c
        .get_allocation(env.as_role(
            Role::Admin,
            pb::GetAllocationRequest {
                name: "programs/big-2024/allocation".into(),
                view: pb::AllocationView::Basic as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(basic.entries.is_empty());
    assert_eq!(basic.entry_count, 7);

    // Filtered: the funded ones (budget 1,000,000 at 400,000 each: two), still in rank order.
    let (funded, total, _) = entries(
        &env,
        Role::Admin,
        "programs/big-2024/allocation@1",
        "outcome = APPLICATION_OUTCOME_FUNDED",
        1,
    )
    .await;
    assert_eq!(total, 2);
    assert_eq!(funded.iter().map(|e| e.rank).collect::<Vec<_>>(), [1, 2]);
    let bad = c
        .list_allocation_entries(env.as_role(
            Role::Admin,
            pb::ListAllocationEntriesRequest {
                parent: "programs/big-2024/allocation".into(),
                filter: "score > 3".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let missing = c
        .get_allocation(env.as_role(
            Role::Admin,
            pb::GetAllocationRequest {
                name: "programs/big-2024/allocation@9".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Not published yet: an enterprise, the public and a service may not read it.
    for role in [Role::Public, Role::Service, Role::Expert] {
        let err = c
            .get_allocation(env.as_role(
                role,
                pb::GetAllocationRequest {
                    name: "programs/big-2024/allocation".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?}");
    }

    // A finished operation can be deleted (by its starter or an admin); then it is gone.
    ops(&env)
        .delete_operation(env.as_role(
            Role::Admin,
            lro::DeleteOperationRequest {
                name: op.name.clone(),
            },
        ))
        .await
        .unwrap();
    let gone = ops(&env)
        .get_operation(env.as_role(
            Role::Admin,
            lro::GetOperationRequest {
                name: op.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    env.awards.stop().await;
}

async fn an_allocation_operation_waits_for_a_peer_and_survives_a_restart(backend: Backend) {
    let Some(mut env) = Env::start(backend).await else {
        return;
    };
    closed_program(&env, "restart-2024", 3).await;
    // The review service goes down: the operation waits for it instead of failing.
    let review = env.review.take().unwrap().pause().await;
    let op = env
        .client()
        .start_allocation(start(&env, Role::Admin, "restart-2024", &uuid()))
        .await
        .unwrap()
        .into_inner();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        let now = ops(&env)
            .get_operation(env.as_role(
                Role::Admin,
                lro::GetOperationRequest {
                    name: op.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!now.done, "done while its peer is down: {now:?}");
        if progress(&now).stage == pb::AllocationStage::Waiting as i32 {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "never waiting");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        progress(&waiting).waiting_for.contains("review"),
        "{:?}",
        progress(&waiting)
    );

    // The awards server restarts (its task ends with it); the operation is in the database.
    env.awards = env.awards.restart::<qilu_awards::Awards>().await;
    let after_restart = ops(&env)
        .get_operation(env.as_role(
            Role::Admin,
            lro::GetOperationRequest {
                name: op.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after_restart.name, op.name);
    assert!(!after_restart.done);

    // The peer comes back: the restarted server takes the operation over and finishes it.
    env.review = Some(review.resume::<qilu_review::Review>().await);
    let done = wait_done(&env, &op.name, Duration::from_secs(90)).await;
    let Some(lro::operation::Result::Response(response)) = &done.result else {
        panic!("failed: {done:?}");
    };
    let allocation: pb::Allocation = decode(response);
    assert_eq!(allocation.entry_count, 3);
    assert!(progress(&done).attempt >= 2, "{:?}", progress(&done));
    let program = env
        .client()
        .get_program(env.as_role(
            Role::Admin,
            pb::GetProgramRequest {
                name: "programs/restart-2024".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(program.state, pb::ProgramState::Allocated as i32);
    env.awards.stop().await;
}

async fn a_waiting_allocation_is_cancelled_and_writes_nothing(backend: Backend) {
    let Some(mut env) = Env::start(backend).await else {
        return;
    };
    closed_program(&env, "cancel-2024", 2).await;
    let review = env.review.take().unwrap().pause().await;
    let op = env
        .client()
        .start_allocation(start(&env, Role::Admin, "cancel-2024", &uuid()))
        .await
        .unwrap()
        .into_inner();
    // Another caller cannot cancel it (it does not see it); its starter can.
    let other = ops(&env)
        .cancel_operation(env.awards.request(
            Role::Officer,
            lro::CancelOperationRequest {
                name: op.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    ops(&env)
        .cancel_operation(env.as_role(
            Role::Admin,
            lro::CancelOperationRequest {
                name: op.name.clone(),
            },
        ))
        .await
        .unwrap();
    let done = wait_done(&env, &op.name, Duration::from_secs(60)).await;
    let Some(lro::operation::Result::Error(status)) = &done.result else {
        panic!("not cancelled: {done:?}");
    };
    assert_eq!(status.code, Code::Cancelled as i32);
    // Nothing was allocated: the program is still CLOSED and can be allocated afresh.
    let program = env
        .client()
        .get_program(env.as_role(
            Role::Admin,
            pb::GetProgramRequest {
                name: "programs/cancel-2024".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(program.state, pb::ProgramState::Closed as i32);
    env.review = Some(review.resume::<qilu_review::Review>().await);
    let again = env
        .client()
        .start_allocation(start(&env, Role::Admin, "cancel-2024", &uuid()))
        .await
        .unwrap()
        .into_inner();
    let done = wait_done(&env, &again.name, Duration::from_secs(60)).await;
    assert!(matches!(
        done.result,
        Some(lro::operation::Result::Response(_))
    ));
    env.awards.stop().await;
}

async fn published_results_are_readable_by_everyone_and_a_competitor_objects_by_their_ids(
    backend: Backend,
) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    closed_program(&env, "public-2024", 3).await;
    env.allocate("public-2024").await.unwrap();
    env.publish("public-2024").await;
    let mut c = env.client();
    let parent = "programs/public-2024/allocation";

    // A public portal reads the published results: names, titles, outcomes, amounts, reasons;
    // no scores, requested amounts or staff accounts.
    let public = c
        .get_allocation(env.as_role(
            Role::Public,
            pb::GetAllocationRequest {
                name: parent.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(public.entries.len(), 3);
    assert!(public.run_by.is_empty());
    for e in &public.entries {
        assert_eq!((e.score_millipoints, e.requested_amount_fen), (0, 0));
        assert!(!e.enterprise_display_name.is_empty() && !e.achievement_title.is_empty());
        assert!(!e.reason.is_empty() && e.outcome != 0);
    }
    let staff = c
        .get_allocation(env.as_role(
            Role::Auditor,
            pb::GetAllocationRequest {
                name: parent.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(staff.entries.iter().all(|e| e.score_millipoints > 0));
    assert_eq!(staff.run_by, "test-admin");
    let programs = c
        .list_programs(env.as_role(Role::Public, pb::ListProgramsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        programs
            .programs
            .iter()
            .any(|p| p.name == "programs/public-2024")
    );

    // A competitor that did not apply reads the entries and objects by the id it read there.
    let outsider = env.enterprise(900).await;
    let (seen, _, _) = entries(&env, Role::Public, parent, "", 2).await;
    let (as_outsider, _, _) = {
        let page = c
            .list_allocation_entries(env.as_enterprise(
                &outsider,
                pb::ListAllocationEntriesRequest {
                    parent: parent.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        (page.entries, page.total_size, 1)
    };
    assert_eq!(as_outsider, seen);
    let funded = seen
        .iter()
        .find(|e| e.outcome == pb::ApplicationOutcome::Funded as i32)
        .unwrap()
        .clone();
    let objection = c
        .file_objection(env.as_enterprise(
            &outsider,
            pb::FileObjectionRequest {
                parent: "programs/public-2024".into(),
                objection: Some(pb::Objection {
                    application: funded.application.clone(),
                    grounds: "公示的能耗数据与实际不符".into(),
                    evidence: "检测报告编号 2024-221".into(),
                    objector_name: "王五".into(),
                    objector_contact: "13900000000".into(),
                    ..Default::default()
                }),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    // Upheld: revision 2 excludes it; revision 1, the first published result, stays readable.
    c.resolve_objection(env.as_role(
        Role::Admin,
        pb::ResolveObjectionRequest {
            name: objection.name.clone(),
            resolution: pb::ObjectionResolution::Upheld as i32,
            remedy: pb::ObjectionRemedy::ExcludeApplication as i32,
            reason: "核查属实".into(),
            etag: objection.etag.clone(),
            request_id: uuid(),
        },
    ))
    .await
    .unwrap();
    let revisions = c
        .list_allocation_revisions(env.as_role(
            Role::Public,
            pb::ListAllocationRevisionsRequest {
                name: parent.into(),
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revisions.allocations.len(), 1);
    assert_eq!(revisions.allocations[0].revision, 2);
    assert_eq!(
        revisions.allocations[0].revised_by_objection,
        objection.name
    );
    let older = c
        .list_allocation_revisions(env.as_role(
            Role::Public,
            pb::ListAllocationRevisionsRequest {
                name: parent.into(),
                page_size: 1,
                page_token: revisions.next_page_token.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(older.allocations[0].revision, 1);
    assert!(older.next_page_token.is_empty());
    let outcome_in = |entries: &[pb::AllocationEntry]| {
        entries
            .iter()
            .find(|e| e.application == funded.application)
            .unwrap()
            .outcome
    };
    let (first, _, _) = entries(&env, Role::Public, &format!("{parent}@1"), "", 10).await;
    let (now, _, _) = entries(&env, Role::Public, parent, "", 10).await;
    assert_eq!(outcome_in(&first), pb::ApplicationOutcome::Funded as i32);
    assert_eq!(outcome_in(&now), pb::ApplicationOutcome::Excluded as i32);
    env.awards.stop().await;
}
