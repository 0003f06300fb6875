//! Every Update RPC of the awards service takes back what its Get returned (AIP-134
//! read-modify-write, as every generated client does it): the resource read, sent back as read
//! under a mask of every field a caller may write (from the descriptor:
//! `qilu_common::testing::round_trip`), is accepted, and the next Get equals the first — an
//! update that changes nothing writes nothing, so the etag and `update_time` stay. A new Update
//! RPC without a case here fails `every_update_rpc_has_a_round_trip_case`. Both backends.

use qilu_common::auth::Role;
use qilu_common::round_trip_cases;
use qilu_common::testing::Backend;
use qilu_common::testing::round_trip::full_mask;
use qilu_proto::awards as pb;

use crate::support::{Env, project};

round_trip_cases!(
    "qilu.awards.v1",
    "AwardAllocationService",
    cases: {
        a_draft_program_read_is_written_back_unchanged => "UpdateProgram",
    },
);

async fn a_draft_program_read_is_written_back_unchanged(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let created = env
        .client()
        .create_program(env.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: "round-trip-2024".into(),
                program: Some(project(2024)),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let get = || async {
        env.client()
            .get_program(env.as_role(
                Role::Admin,
                pb::GetProgramRequest {
                    name: created.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    };
    let first = get().await;
    let back = env
        .client()
        .update_program(env.as_role(
            Role::Admin,
            pb::UpdateProgramRequest {
                program: Some(first.clone()),
                update_mask: Some(full_mask("qilu.awards.v1.Program")),
                request_id: crate::support::uuid(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("a program as read must be accepted: {s:?}"))
        .into_inner();
    assert_eq!(back, first);
    assert_eq!(get().await, first);
}
