//! Deleting a DRAFT program (AIP-135) as a caller sees it: only an admin, only a DRAFT (an
//! opened program is refused with its reason and stays), gone from Get and List afterwards, a
//! DELETED change in the feed for those who saw the draft and nobody else, left out of
//! snapshots, its id never given to another program, a retry with the same request id answered
//! as the first call. Both backends, with the registry and review services running for real.

use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::Backend;
use qilu_proto::awards as pb;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::{Env, project, uscc, uuid};

on_both_backends!(a_draft_program_is_deleted_and_an_opened_one_never_is);

async fn create(env: &Env, id: &str) -> Result<pb::Program, Status> {
    env.client()
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: id.to_string(),
                program: Some(project(2024)),
                request_id: String::new(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn delete(
    env: &Env,
    role: Role,
    name: &str,
    etag: &str,
    request_id: &str,
) -> Result<(), Status> {
    env.client()
        .delete_program(env.as_role(
            role,
            pb::DeleteProgramRequest {
                name: name.to_string(),
                etag: etag.to_string(),
                request_id: request_id.to_string(),
            },
        ))
        .await
        .map(|r| r.into_inner())
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

/// The feed's (resource, kind, has state) as `request` sees it.
async fn feed(env: &Env, enterprise: Option<&str>) -> Vec<(String, i32, bool)> {
    let req = pb::ListChangesRequest {
        page_size: 1000,
        ..Default::default()
    };
    let req = match enterprise {
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

async fn a_draft_program_is_deleted_and_an_opened_one_never_is(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let draft = create(&env, "green-draft").await.unwrap();
    let kept = create(&env, "green-kept").await.unwrap();
    let opened = env.open_program("green-open", project(2024)).await;

    // Only an admin; a stale etag aborts; a bad name is INVALID_ARGUMENT on `name`.
    for role in [
        Role::Officer,
        Role::Auditor,
        Role::Service,
        Role::Enterprise,
        Role::Expert,
    ] {
        let s = delete(&env, role, &draft.name, "", "").await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{role}");
    }
    let s = delete(&env, Role::Admin, &draft.name, &kept.etag, "")
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Aborted, "{s:?}");
    let s = delete(&env, Role::Admin, "program/x", "", "")
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert_eq!(
        s.get_details_bad_request()
            .map(|b| b.field_violations[0].field.clone()),
        Some("name".to_string())
    );
    // Not a draft: refused with its reason, and still there as it was.
    let s = delete(&env, Role::Admin, &opened.name, "", "")
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&s),
        [("PROGRAM_NOT_DRAFT".to_string(), opened.name.clone())]
    );
    let still = env
        .client()
        .get_program(env.as_role(
            Role::Admin,
            pb::GetProgramRequest {
                name: opened.name.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still, opened);

    // Deleted; the retry with the same request id answers the same; without it, NOT_FOUND.
    let x = uuid();
    delete(&env, Role::Admin, &draft.name, &draft.etag, &x)
        .await
        .unwrap();
    delete(&env, Role::Admin, &draft.name, &draft.etag, &x)
        .await
        .unwrap();
    let s = delete(&env, Role::Admin, &draft.name, "", "")
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let s = env
        .client()
        .get_program(env.as_role(
            Role::Admin,
            pb::GetProgramRequest {
                name: draft.name.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    let listed: Vec<String> = env
        .client()
        .list_programs(env.as_role(Role::Admin, pb::ListProgramsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .programs
        .into_iter()
        .map(|p| p.name)
        .collect();
    let mut expected = vec![kept.name.clone(), opened.name.clone()];
    expected.sort();
    let mut got = listed.clone();
    got.sort();
    assert_eq!(got, expected);
    // Its id is never given to another program.
    let s = create(&env, "green-draft").await.unwrap_err();
    assert_eq!(
        preconditions(&s),
        [("ID_OF_DELETED_RESOURCE".to_string(), draft.name.clone())]
    );

    // The feed: the draft's creation then its deletion (no state), for staff; an enterprise,
    // which never saw the draft, sees neither. The snapshot leaves it out.
    let of: Vec<(String, i32, bool)> = feed(&env, None)
        .await
        .into_iter()
        .filter(|c| c.0 == draft.name)
        .collect();
    assert_eq!(
        of,
        [
            (draft.name.clone(), pb::ChangeKind::Created as i32, true),
            (draft.name.clone(), pb::ChangeKind::Deleted as i32, false),
        ]
    );
    let enterprise = env.enterprise(1).await;
    assert_eq!(enterprise, uscc(1));
    let seen = feed(&env, Some(&enterprise)).await;
    assert!(seen.iter().all(|c| c.0 != draft.name), "{seen:?}");
    assert!(seen.iter().any(|c| c.0 == opened.name), "{seen:?}");
    let mut stream = env
        .client()
        .export_snapshot(env.as_role(Role::Auditor, pb::ExportSnapshotRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut snapshot = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        snapshot.extend(m.changes.into_iter().map(|c| c.resource));
    }
    assert!(!snapshot.contains(&draft.name), "{snapshot:?}");
    assert!(snapshot.contains(&kept.name) && snapshot.contains(&opened.name));
    let check = env
        .client()
        .verify_audit_chain(env.as_role(
            Role::Auditor,
            qilu_proto::common::VerifyAuditChainRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(check.intact, "{check:?}");
    env.awards.stop().await;
    if let Some(r) = env.review {
        r.stop().await;
    }
    env.registry.stop().await;
}
