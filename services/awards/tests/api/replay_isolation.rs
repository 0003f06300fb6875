//! Replay isolation for every mutating RPC of the awards service: caller A performs a request
//! with request id X; caller B — another enterprise or another admin — sends the identical
//! request with X and gets its own treatment (refused by the handler, or its own fresh result),
//! never A's stored response. For FileObjection that response names the objector, whose
//! identity is confidential. The list of RPCs comes from the descriptor set (every method whose
//! request has `request_id`): a new mutating RPC without a case here fails
//! `every_mutating_rpc_has_an_isolation_case`. Both backends, with the registry and review
//! services running for real.

use qilu_common::auth::Role;
use qilu_common::testing::Backend;
use qilu_common::testing::replay::{Expect, Principal, assert_isolated, request_id};
use qilu_common::{isolation_call, isolation_cases};
use qilu_proto::awards as pb;
use tonic::Code;

use crate::support::{Env, IT, project, uscc};

isolation_cases!(
    "qilu.awards.v1",
    "AwardAllocationService",
    cases: {
        create_program => "CreateProgram",
        update_program => "UpdateProgram",
        delete_program => "DeleteProgram",
        open_program => "OpenProgram",
        close_program => "CloseProgram",
        allocate_program => "AllocateProgram",
        start_allocation => "StartAllocation",
        publish_results => "PublishResults",
        finalize_program => "FinalizeProgram",
        create_application => "CreateApplication",
        withdraw_application => "WithdrawApplication",
        file_objection => "FileObjection",
        resolve_objection => "ResolveObjection",
    },
);

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

const PROGRAM: &str = "programs/green-2024";

/// An open program with one application: enterprise 1's approved achievement.
async fn with_application(env: &Env) -> (String, pb::Application) {
    let mut p = project(2024);
    p.priority_fields.clear();
    p.per_project_cap_fen = 0;
    env.open_program("green-2024", p).await;
    let e = env.enterprise(1).await;
    let a = env.approved(&e, IT, 90).await;
    let app = env
        .apply("green-2024", &e, &a, 400_000, None)
        .await
        .unwrap();
    (e, app)
}

/// A published program with one funded application.
async fn published(env: &Env) -> pb::Application {
    let (_, app) = with_application(env).await;
    env.close("green-2024").await;
    env.allocate("green-2024").await.unwrap();
    env.publish("green-2024").await;
    app
}

fn objection_request(application: &str, request_id: &str) -> pb::FileObjectionRequest {
    pb::FileObjectionRequest {
        parent: PROGRAM.into(),
        objection: Some(pb::Objection {
            application: application.into(),
            grounds: "成果数据与实际不符".into(),
            evidence: "检测报告编号 2024-117".into(),
            objector_name: "李四".into(),
            objector_contact: "13800000000".into(),
            ..Default::default()
        }),
        request_id: request_id.into(),
    }
}

fn stage<T>(name: &str, request_id: &str, make: impl Fn(String, String) -> T) -> T {
    make(name.to_string(), request_id.to_string())
}

// ---------------------------------------------------------------------------------------------
// One case per mutating RPC
// ---------------------------------------------------------------------------------------------

async fn create_program(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.awards, Role::Admin);
    let x = request_id();
    let req = pb::CreateProgramRequest {
        program_id: "green-2024".into(),
        program: Some(project(2024)),
        request_id: x.clone(),
    };
    // B's own create finds the program there.
    assert_isolated(
        &env.awards.db,
        "CreateProgram",
        &x,
        &a,
        &b,
        Expect::Refused(Code::AlreadyExists),
        isolation_call!(env.client(), create_program, req),
    )
    .await;
}

async fn update_program(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let created = env
        .client()
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: "green-2024".into(),
                program: Some(project(2024)),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let (a, b) = Principal::pair(&env.awards, Role::Admin);
    let x = request_id();
    let req = pb::UpdateProgramRequest {
        program: Some(pb::Program {
            name: created.name.clone(),
            etag: created.etag.clone(),
            display_name: "绿色低碳重点项目 2024".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["display_name".into()],
        }),
        request_id: x.clone(),
    };
    // B's own update carries the etag A's update made stale.
    assert_isolated(
        &env.awards.db,
        "UpdateProgram",
        &x,
        &a,
        &b,
        Expect::Refused(Code::Aborted),
        isolation_call!(env.client(), update_program, req),
    )
    .await;
}

async fn open_program(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    env.client()
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: "green-2024".into(),
                program: Some(project(2024)),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let (a, b) = Principal::pair(&env.awards, Role::Admin);
    let x = request_id();
    let req = stage(PROGRAM, &x, |name, request_id| pb::OpenProgramRequest {
        name,
        request_id,
        ..Default::default()
    });
    // B's own transition finds the program open already.
    assert_isolated(
        &env.awards.db,
        "OpenProgram",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), open_program, req),
    )
    .await;
}

async fn close_program(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    with_application(&env).await;
    let (a, b) = Principal::pair(&env.awards, Role::Admin);
    let x = request_id();
    let req = stage(PROGRAM, &x, |name, request_id| pb::CloseProgramRequest {
        name,
        request_id,
        ..Default::default()
    });
    assert_isolated(
        &env.awards.db,
        "CloseProgram",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), close_program, req),
    )
    .await;
}

async fn allocate_program(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    with_application(&env).await;
    env.close("green-2024").await;
    let (a, b) = Principal::pair(&env.awards, Role::Admin);
    let x = request_id();
    let req = stage(PROGRAM, &x, |name, request_id| pb::AllocateProgramRequest {
        name,
        request_id,
        ..Default::default()
    });
    // An allocation runs once: B's own run finds the program allocated.
    assert_isolated(
        &env.awards.db,
        "AllocateProgram",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), allocate_program, req),
    )
    .await;
}

/// `StartAllocation` keeps its request ids with its operations (`operation.request_key`, scoped
/// to the caller), not in the idempotency table the other cases count: A's retry returns A's
/// operation; B (another admin) with A's id gets its own treatment — refused, the program being
/// allocated by A's operation — never A's operation.
async fn start_allocation(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    with_application(&env).await;
    env.close("green-2024").await;
    let (a, b) = Principal::pair(&env.awards, Role::Admin);
    let x = request_id();
    let req = pb::StartAllocationRequest {
        name: PROGRAM.into(),
        request_id: x.clone(),
        ..Default::default()
    };
    let mut c = env.client();
    let first = c
        .start_allocation(a.request(req.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = c
        .start_allocation(a.request(req.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.name, first.name, "A's retry is A's operation");
    let theirs = c
        .start_allocation(b.request(req.clone()))
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Code::FailedPrecondition, "{theirs:?}");
    let last = c
        .start_allocation(a.request(req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.name, first.name, "A's record is untouched by B");
}

async fn publish_results(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    with_application(&env).await;
    env.close("green-2024").await;
    env.allocate("green-2024").await.unwrap();
    let (a, b) = Principal::pair(&env.awards, Role::Admin);
    let x = request_id();
    let req = stage(PROGRAM, &x, |name, request_id| pb::PublishResultsRequest {
        name,
        request_id,
        ..Default::default()
    });
    assert_isolated(
        &env.awards.db,
        "PublishResults",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), publish_results, req),
    )
    .await;
}

async fn finalize_program(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    published(&env).await;
    env.advance_days(11);
    let (a, b) = Principal::pair(&env.awards, Role::Admin);
    let x = request_id();
    let req = stage(PROGRAM, &x, |name, request_id| pb::FinalizeProgramRequest {
        name,
        request_id,
        ..Default::default()
    });
    assert_isolated(
        &env.awards.db,
        "FinalizeProgram",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), finalize_program, req),
    )
    .await;
}

async fn create_application(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mut p = project(2024);
    p.priority_fields.clear();
    env.open_program("green-2024", p).await;
    let e1 = env.enterprise(1).await;
    let e2 = env.enterprise(2).await;
    let achievement = env.approved(&e1, IT, 90).await;
    let a = Principal::enterprise(&env.awards, &e1);
    let b = Principal::enterprise(&env.awards, &e2);
    let x = request_id();
    let req = pb::CreateApplicationRequest {
        parent: PROGRAM.into(),
        application: Some(pb::Application {
            enterprise: format!("enterprises/{e1}"),
            achievement: format!("achievements/{achievement}"),
            requested_amount_fen: 400_000,
            ..Default::default()
        }),
        request_id: x.clone(),
    };
    // Enterprise 2 may apply only for itself.
    assert_isolated(
        &env.awards.db,
        "CreateApplication",
        &x,
        &a,
        &b,
        Expect::Refused(Code::PermissionDenied),
        isolation_call!(env.client(), create_application, req),
    )
    .await;
}

async fn withdraw_application(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (e1, app) = with_application(&env).await;
    let e2 = env.enterprise(2).await;
    let a = Principal::enterprise(&env.awards, &e1);
    let b = Principal::enterprise(&env.awards, &e2);
    let x = request_id();
    let req = pb::WithdrawApplicationRequest {
        name: app.name.clone(),
        reason: "改投其他项目".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    assert_isolated(
        &env.awards.db,
        "WithdrawApplication",
        &x,
        &a,
        &b,
        Expect::Refused(Code::PermissionDenied),
        isolation_call!(env.client(), withdraw_application, req),
    )
    .await;
}

async fn file_objection(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let app = published(&env).await;
    let a = Principal::enterprise(&env.awards, &uscc(3));
    let b = Principal::enterprise(&env.awards, &uscc(4));
    let x = request_id();
    // B files its own objection; A's (and A's identity) stays A's.
    assert_isolated(
        &env.awards.db,
        "FileObjection",
        &x,
        &a,
        &b,
        Expect::Fresh,
        isolation_call!(
            env.client(),
            file_objection,
            objection_request(&app.name, &x)
        ),
    )
    .await;
}

async fn resolve_objection(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let app = published(&env).await;
    let objection = env
        .client()
        .file_objection(
            Principal::enterprise(&env.awards, &uscc(3)).request(objection_request(&app.name, "")),
        )
        .await
        .unwrap()
        .into_inner();
    let (a, b) = Principal::pair(&env.awards, Role::Admin);
    let x = request_id();
    let req = pb::ResolveObjectionRequest {
        name: objection.name.clone(),
        resolution: pb::ObjectionResolution::Dismissed as i32,
        reason: "证据不足".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    // B's own resolution finds the objection resolved.
    assert_isolated(
        &env.awards.db,
        "ResolveObjection",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), resolve_objection, req),
    )
    .await;
}

async fn delete_program(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    env.client()
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: "green-2024".into(),
                program: Some(project(2024)),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let (a, b) = Principal::pair(&env.awards, Role::Admin);
    let x = request_id();
    let req = pb::DeleteProgramRequest {
        name: PROGRAM.into(),
        request_id: x.clone(),
        ..Default::default()
    };
    // B's own delete finds the draft gone.
    assert_isolated(
        &env.awards.db,
        "DeleteProgram",
        &x,
        &a,
        &b,
        Expect::Refused(Code::NotFound),
        isolation_call!(env.client(), delete_program, req),
    )
    .await;
}
