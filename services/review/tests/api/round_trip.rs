//! Every Update RPC of the review service takes back what its Get returned (AIP-134
//! read-modify-write, as every generated client does it): the resource read, sent back as read
//! under a mask of every field a caller may write (from the descriptor:
//! `qilu_common::testing::round_trip`), is accepted, and the next Get equals the first — an
//! update that changes nothing writes nothing, so the etag and `update_time` stay. A new Update
//! RPC without a case here fails `every_update_rpc_has_a_round_trip_case`. Both backends.

use qilu_common::auth::Role;
use qilu_common::round_trip_cases;
use qilu_common::testing::Backend;
use qilu_common::testing::round_trip::full_mask;
use qilu_proto::common as cpb;
use qilu_proto::review as pb;

use crate::support::{Env, uscc};

round_trip_cases!(
    "qilu.review.v1",
    "AchievementReviewService",
    cases: {
        a_draft_achievement_read_is_written_back_unchanged => "UpdateAchievement",
        an_expert_read_is_written_back_unchanged => "UpdateExpert",
    },
);

const FIELD: i32 = cpb::IndustryField::Biomedicine as i32;

async fn a_draft_achievement_read_is_written_back_unchanged(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(41);
    env.register(&owner, "山东往返生物科技有限公司").await;
    let created = env
        .client()
        .create_achievement(env.as_enterprise(
            &owner,
            pb::CreateAchievementRequest {
                achievement: Some(pb::Achievement {
                    owner: format!("enterprises/{owner}"),
                    title: "新型疫苗佐剂".into(),
                    industry_field: FIELD,
                    technology_readiness_level: 6,
                    summary: "成果简介".into(),
                    green_data: Some(pb::GreenData {
                        industry_code: "2761".into(),
                        annual_energy_kgce: Some(800_000),
                        annual_electricity_kwh: Some(1_200_000),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let get = || async {
        env.client()
            .get_achievement(env.as_enterprise(
                &owner,
                pb::GetAchievementRequest {
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
        .update_achievement(env.as_enterprise(
            &owner,
            pb::UpdateAchievementRequest {
                achievement: Some(first.clone()),
                update_mask: Some(full_mask("qilu.review.v1.Achievement")),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("an achievement as read must be accepted: {s:?}"))
        .into_inner();
    assert_eq!(back, first);
    assert_eq!(get().await, first);
    env.stop().await;
}

async fn an_expert_read_is_written_back_unchanged(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let created = env
        .client()
        .create_expert(env.as_role(
            Role::Admin,
            pb::CreateExpertRequest {
                expert_id: "rt1".into(),
                expert: Some(pb::Expert {
                    display_name: "往返专家".into(),
                    industry_fields: vec![FIELD],
                    organization: "山东大学".into(),
                    load_limit: 5,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let get = || async {
        env.client()
            .get_expert(env.as_role(
                Role::Admin,
                pb::GetExpertRequest {
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
        .update_expert(env.as_role(
            Role::Admin,
            pb::UpdateExpertRequest {
                expert: Some(first.clone()),
                update_mask: Some(full_mask("qilu.review.v1.Expert")),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("an expert as read must be accepted: {s:?}"))
        .into_inner();
    assert_eq!(back, first);
    assert_eq!(get().await, first);
    env.stop().await;
}
