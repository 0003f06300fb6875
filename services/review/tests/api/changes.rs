//! The change feed as a follower sees it (`ListChanges`, `WatchChanges`, `GetChangeFeedHead`,
//! `ExportSnapshot`): after a realistic review flow every change carries the resource's state,
//! the newest one equals what Get returns (to an officer, and to an owner enterprise, which sees
//! nothing of another's), every arm of `Change.new_state` the contract declares is produced, a
//! follower that loads a snapshot taken while writes continue and then follows the feed ends
//! where the service is, and watching delivers what commits. Both backends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::Backend;
use qilu_proto::common as cpb;
use qilu_proto::review as pb;
use qilu_proto::review::change::NewState;
use tonic::Request;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::{Env, uscc};

on_both_backends!(
    after_a_review_flow_the_newest_change_of_each_resource_is_its_get,
    the_flow_produces_every_arm_of_new_state_the_contract_declares,
    a_follower_rebuilds_the_achievements_from_a_snapshot_and_the_feed,
    watching_delivers_new_changes_and_the_head_starts_now,
    reflection_lists_the_feed_rpcs,
);

const BIOMEDICINE: i32 = cpb::IndustryField::Biomedicine as i32;
const HIGH_END_EQUIPMENT: i32 = cpb::IndustryField::HighEndEquipment as i32;
const SCORES: [i32; 4] = [25, 25, 15, 15];

/// Who reads the feed: a role, or an enterprise by its USCC.
#[derive(Clone, Copy)]
enum Reader<'a> {
    Role(Role),
    Enterprise(&'a str),
}

fn req<T>(env: &Env, who: Reader<'_>, message: T) -> Request<T> {
    match who {
        Reader::Role(role) => env.as_role(role, message),
        Reader::Enterprise(u) => env.as_enterprise(u, message),
    }
}

fn green(code: &str, kgce: Option<i64>) -> pb::GreenData {
    pb::GreenData {
        industry_code: code.to_string(),
        annual_energy_kgce: kgce,
        annual_electricity_kwh: Some(1_200_000),
        ..Default::default()
    }
}

async fn create(env: &Env, owner: &str, title: &str, field: i32, g: pb::GreenData) -> String {
    env.client()
        .create_achievement(env.as_enterprise(
            owner,
            pb::CreateAchievementRequest {
                achievement: Some(pb::Achievement {
                    owner: format!("enterprises/{owner}"),
                    title: title.to_string(),
                    industry_field: field,
                    technology_readiness_level: 6,
                    summary: "成果简介".into(),
                    green_data: Some(g),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create: {s:?}"))
        .into_inner()
        .name
}

async fn submit(env: &Env, owner: &str, name: &str) -> pb::Achievement {
    env.client()
        .submit_achievement(env.as_enterprise(
            owner,
            pb::SubmitAchievementRequest {
                name: name.to_string(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("submit: {s:?}"))
        .into_inner()
}

async fn expert(env: &Env, id: &str) {
    env.client()
        .create_expert(env.as_role(
            Role::Admin,
            pb::CreateExpertRequest {
                expert_id: id.to_string(),
                expert: Some(pb::Expert {
                    display_name: format!("专家{id}"),
                    industry_fields: vec![BIOMEDICINE],
                    organization: "山东大学".into(),
                    load_limit: 5,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("create expert {id}: {s:?}"));
}

/// Assigns `n` experts automatically; returns (review, expert id) pairs.
async fn assign(env: &Env, name: &str, n: i32) -> Vec<(String, String)> {
    env.client()
        .assign_reviewers(env.as_role(
            Role::Officer,
            pb::AssignReviewersRequest {
                name: name.to_string(),
                reviewer_count: n,
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("assign: {s:?}"))
        .into_inner()
        .reviews
        .into_iter()
        .map(|r| (r.name, r.expert.trim_start_matches("experts/").to_string()))
        .collect()
}

async fn score(env: &Env, review: &str, expert: &str, veto: bool) {
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
                veto: veto.then(|| pb::ExpertVeto {
                    category: pb::VetoCategory::EnergyIntensive as i32,
                    evidence: "高耗能 (energy-intensive)".into(),
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("score: {s:?}"));
}

async fn finalize(env: &Env, name: &str) -> pb::Achievement {
    env.client()
        .finalize_decision(env.as_role(
            Role::Officer,
            pb::FinalizeDecisionRequest {
                name: name.to_string(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("finalize: {s:?}"))
        .into_inner()
}

/// The owners, and the achievements of the flow.
struct Flow {
    owner: String,
    other: String,
    /// Expert-vetoed, appealed, overturned, then approved in round 2.
    reviewed: String,
}

/// A realistic year: a new rule set activated; an achievement vetoed by rule at submission; one
/// reviewed by three experts, vetoed by one of them, appealed, overturned and approved by two
/// others in a new round; another enterprise's achievement assigned and then withdrawn (its open
/// review cancelled).
async fn flow(env: &Env) -> Flow {
    let owner = uscc(81);
    let other = uscc(82);
    env.register(&owner, "济南绿色科技有限公司").await;
    env.register(&other, "青岛海洋科技有限公司").await;
    let mut c = env.client();
    let rules = c
        .create_veto_rule_set(env.as_role(
            Role::Admin,
            pb::CreateVetoRuleSetRequest {
                veto_rule_set_id: "feed-2026".into(),
                veto_rule_set: Some(pb::VetoRuleSet {
                    display_name: "Two-high screening 2026".into(),
                    description: "Scope: division 31 (steel). Threshold: 5,000 tce.".into(),
                    industry_scope: vec![pb::IndustryScopeEntry {
                        code: "31".into(),
                        description: "黑色金属冶炼和压延加工业 (steel)".into(),
                    }],
                    annual_energy_threshold_kgce: 5_000_000,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    c.activate_veto_rule_set(env.as_role(
        Role::Admin,
        pb::ActivateVetoRuleSetRequest {
            name: rules.name.clone(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();

    // Screened and vetoed by rule at once.
    let steel = create(
        env,
        &owner,
        "高炉节能改造",
        HIGH_END_EQUIPMENT,
        green("31", Some(12_000_000)),
    )
    .await;
    let steel = submit(env, &owner, &steel).await;
    assert_eq!(steel.state, pb::AchievementState::Vetoed as i32);

    for id in ["feed-a", "feed-b", "feed-c", "feed-d", "feed-e"] {
        expert(env, id).await;
    }
    let reviewed = create(
        env,
        &owner,
        "新型疫苗佐剂",
        BIOMEDICINE,
        green("2761", Some(1)),
    )
    .await;
    c.update_achievement(env.as_enterprise(
        &owner,
        pb::UpdateAchievementRequest {
            achievement: Some(pb::Achievement {
                name: reviewed.clone(),
                title: "新型疫苗佐剂 (第二版)".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["title".into()],
            }),
            request_id: String::new(),
        },
    ))
    .await
    .unwrap();
    submit(env, &owner, &reviewed).await;
    let round_1 = assign(env, &reviewed, 3).await;
    for (i, (review, expert)) in round_1.iter().enumerate() {
        score(env, review, expert, i == 1).await;
    }
    let vetoed = finalize(env, &reviewed).await;
    assert_eq!(vetoed.state, pb::AchievementState::Vetoed as i32);
    c.appeal_veto(env.as_enterprise(
        &owner,
        pb::AppealVetoRequest {
            name: reviewed.clone(),
            grounds: "评审程序存在瑕疵 (procedural grounds)".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    c.resolve_appeal(env.as_role(
        Role::Admin,
        pb::ResolveAppealRequest {
            name: reviewed.clone(),
            resolution: pb::AppealResolution::Overturned as i32,
            reason: "经复核 (after review)".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    for (review, expert) in assign(env, &reviewed, 2).await {
        score(env, &review, &expert, false).await;
    }
    let approved = finalize(env, &reviewed).await;
    assert_eq!(approved.state, pb::AchievementState::Approved as i32);

    // The other enterprise's achievement: assigned, then withdrawn (its review cancelled).
    let withdrawn = create(
        env,
        &other,
        "海水淡化膜",
        BIOMEDICINE,
        green("2761", Some(1)),
    )
    .await;
    submit(env, &other, &withdrawn).await;
    assign(env, &withdrawn, 1).await;
    c.withdraw_achievement(env.as_enterprise(
        &other,
        pb::WithdrawAchievementRequest {
            name: withdrawn.clone(),
            reason: "改投其他项目 (moved elsewhere)".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    Flow {
        owner,
        other,
        reviewed,
    }
}

/// Every change after `after` that `who` may see, following pages until caught up.
async fn changes_after(env: &Env, who: Reader<'_>, after: &str) -> (Vec<pb::Change>, String) {
    let mut out = Vec::new();
    let mut cursor = after.to_string();
    loop {
        let page = env
            .client()
            .list_changes(req(
                env,
                who,
                pb::ListChangesRequest {
                    after_cursor: cursor.clone(),
                    page_size: 7,
                    filter: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        out.extend(page.changes);
        cursor = page.next_cursor;
        if page.caught_up {
            return (out, cursor);
        }
    }
}

/// The newest change of each resource.
fn newest(changes: &[pb::Change]) -> BTreeMap<String, pb::Change> {
    let mut out = BTreeMap::new();
    for c in changes {
        out.insert(c.resource.clone(), c.clone());
    }
    out
}

/// What Get returns for `resource` to `who`, as the same oneof arm.
async fn get_state(env: &Env, who: Reader<'_>, resource: &str) -> NewState {
    let mut c = env.client();
    let name = resource.to_string();
    if resource.starts_with("vetoRuleSets/") {
        let r = c.get_veto_rule_set(req(env, who, pb::GetVetoRuleSetRequest { name }));
        NewState::VetoRuleSet(r.await.unwrap().into_inner())
    } else if resource.starts_with("experts/") {
        let r = c.get_expert(req(env, who, pb::GetExpertRequest { name }));
        NewState::Expert(r.await.unwrap().into_inner())
    } else if resource.contains("/reviews/") {
        let r = c.get_review(req(env, who, pb::GetReviewRequest { name }));
        NewState::Review(r.await.unwrap().into_inner())
    } else {
        let r = c.get_achievement(req(env, who, pb::GetAchievementRequest { name }));
        NewState::Achievement(r.await.unwrap().into_inner())
    }
}

/// Every change `who` sees carries its state, and each resource's newest equals its Get.
async fn assert_newest_is_get(env: &Env, who: Reader<'_>) -> BTreeMap<String, pb::Change> {
    let (changes, _) = changes_after(env, who, "").await;
    assert!(!changes.is_empty());
    for c in &changes {
        assert!(c.new_state.is_some(), "no state: {c:?}");
        assert!(!c.resource_type.is_empty(), "{c:?}");
    }
    let sequences: Vec<i64> = changes.iter().map(|c| c.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    let newest = newest(&changes);
    for (resource, change) in &newest {
        let got = get_state(env, who, resource).await;
        assert_eq!(change.new_state.as_ref(), Some(&got), "{resource}");
    }
    newest
}

async fn after_a_review_flow_the_newest_change_of_each_resource_is_its_get(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let f = flow(&env).await;
    let all = assert_newest_is_get(&env, Reader::Role(Role::Officer)).await;
    // Reviews, experts (their open reviews moved with every assignment and submission), rule
    // sets (the seeded one deactivated) and both enterprises' achievements.
    let types: BTreeSet<&str> = all.values().map(|c| c.resource_type.as_str()).collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "review.qilu.gov.cn/Achievement",
            "review.qilu.gov.cn/Expert",
            "review.qilu.gov.cn/Review",
            "review.qilu.gov.cn/VetoRuleSet",
        ])
    );
    let Some(NewState::Expert(e)) = &all["experts/feed-a"].new_state else {
        panic!("an expert's change");
    };
    assert_eq!(
        e.open_reviews, 0,
        "every review of the flow is in or cancelled"
    );

    // The owner sees its own achievements, redacted as its Get redacts them, and rule sets.
    let own = assert_newest_is_get(&env, Reader::Enterprise(&f.owner)).await;
    let owned: BTreeSet<&String> = own
        .keys()
        .filter(|r| r.starts_with("achievements/"))
        .collect();
    let listed = env
        .client()
        .list_achievements(env.as_enterprise(&f.owner, pb::ListAchievementsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .achievements;
    assert_eq!(owned, listed.iter().map(|a| &a.name).collect());
    assert!(
        own.keys()
            .all(|r| r.starts_with("achievements/") || r.starts_with("vetoRuleSets/")),
        "{:?}",
        own.keys()
    );
    let Some(NewState::Achievement(reviewed)) = &own[&f.reviewed].new_state else {
        panic!("the owner's achievement");
    };
    let previous = &reviewed.previous_decisions[0];
    assert!(previous.scores.iter().all(|s| s.expert.is_empty()));
    assert!(!previous.explanation.contains("experts/"));

    // The other enterprise sees its own only: nothing of the first one's.
    let theirs = assert_newest_is_get(&env, Reader::Enterprise(&f.other)).await;
    for (resource, change) in &theirs {
        if let Some(NewState::Achievement(a)) = &change.new_state {
            assert_eq!(a.owner, format!("enterprises/{}", f.other), "{resource}");
        }
    }
    assert!(!theirs.contains_key(&f.reviewed));
    // A service sees achievements and rule sets, not reviews or experts (whose Gets it may not
    // call).
    let (service, _) = changes_after(&env, Reader::Role(Role::Service), "").await;
    assert!(service.iter().all(|c| matches!(
        c.new_state,
        Some(NewState::Achievement(_) | NewState::VetoRuleSet(_))
    )));
    let expected: BTreeSet<&String> = all
        .keys()
        .filter(|r| !r.contains("/reviews/") && !r.starts_with("experts/"))
        .collect();
    assert_eq!(newest(&service).keys().collect::<BTreeSet<_>>(), expected);
    env.stop().await;
}

async fn the_flow_produces_every_arm_of_new_state_the_contract_declares(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    flow(&env).await;
    let pool = DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap();
    let change = pool.get_message_by_name("qilu.review.v1.Change").unwrap();
    let oneof = change
        .oneofs()
        .find(|o| o.name() == "new_state")
        .expect("Change.new_state");
    let arms: BTreeSet<String> = oneof.fields().map(|f| f.name().to_string()).collect();
    assert!(arms.len() >= 4, "{arms:?}");
    let (changes, _) = changes_after(&env, Reader::Role(Role::Admin), "").await;
    let mut seen = BTreeSet::new();
    for c in &changes {
        let message = DynamicMessage::decode(change.clone(), c.encode_to_vec().as_slice()).unwrap();
        let set: Vec<String> = oneof
            .fields()
            .filter(|f| message.has_field(f))
            .map(|f| f.name().to_string())
            .collect();
        assert_eq!(set.len(), 1, "{} carries {set:?}", c.resource);
        seen.extend(set);
    }
    assert_eq!(seen, arms, "arms the flow never produced");
    env.stop().await;
}

async fn a_follower_rebuilds_the_achievements_from_a_snapshot_and_the_feed(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let f = flow(&env).await;
    // Writes go on while the snapshot is exported.
    let writer = {
        let env_client = env.client();
        let requests: Vec<_> = (0..6)
            .map(|i| {
                env.as_enterprise(
                    &f.owner,
                    pb::CreateAchievementRequest {
                        achievement: Some(pb::Achievement {
                            owner: format!("enterprises/{}", f.owner),
                            title: format!("并发成果 {i}"),
                            industry_field: BIOMEDICINE,
                            technology_readiness_level: 5,
                            green_data: Some(green("2761", Some(1))),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                )
            })
            .collect();
        tokio::spawn(async move {
            let mut c = env_client;
            for r in requests {
                c.create_achievement(r).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut stream = env
        .client()
        .export_snapshot(env.as_role(Role::Officer, pb::ExportSnapshotRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut state: BTreeMap<String, NewState> = BTreeMap::new();
    let mut cursor = None;
    while let Some(message) = stream.message().await.unwrap() {
        assert!(cursor.is_none() || cursor.as_ref() == Some(&message.cursor));
        cursor = Some(message.cursor.clone());
        for c in message.changes {
            let s = c.new_state.expect("a snapshot carries every state");
            assert!(state.insert(c.resource, s).is_none(), "a resource twice");
        }
    }
    let cursor = cursor.expect("a snapshot names its cursor");
    writer.await.unwrap();
    // Then the feed from the snapshot's cursor, applied in order.
    let (changes, _) = changes_after(&env, Reader::Role(Role::Officer), &cursor).await;
    for c in changes {
        state.insert(c.resource, c.new_state.expect("state"));
    }
    let rebuilt: BTreeMap<String, pb::Achievement> = state
        .into_iter()
        .filter_map(|(name, s)| match s {
            NewState::Achievement(a) => Some((name, a)),
            _ => None,
        })
        .collect();
    let listed: BTreeMap<String, pb::Achievement> = env
        .client()
        .list_achievements(env.as_role(
            Role::Officer,
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
        .map(|a| (a.name.clone(), a))
        .collect();
    assert_eq!(listed.len(), 9);
    assert_eq!(rebuilt, listed);
    env.stop().await;
}

async fn watching_delivers_new_changes_and_the_head_starts_now(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let owner = uscc(83);
    env.register(&owner, "烟台新能源有限公司").await;
    let first = create(
        &env,
        &owner,
        "储能电池回收",
        BIOMEDICINE,
        green("2761", None),
    )
    .await;
    let head = env
        .client()
        .get_change_feed_head(env.as_role(Role::Auditor, pb::GetChangeFeedHeadRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(head.sequence, 1);
    assert!(head.commit_time.is_some());
    let mut watch = env
        .client()
        .watch_changes(env.as_enterprise(
            &owner,
            pb::WatchChangesRequest {
                after_cursor: head.cursor.clone(),
                filter: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let second = create(&env, &owner, "氢燃料电池", BIOMEDICINE, green("2761", None)).await;
    let delivered = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let m = watch
                .message()
                .await
                .unwrap()
                .expect("the stream stays open");
            if !m.changes.is_empty() {
                return m;
            }
        }
    })
    .await
    .expect("a new change within 20 s");
    assert_eq!(delivered.changes.len(), 1);
    let change = &delivered.changes[0];
    assert_eq!(change.resource, second);
    assert_eq!(change.kind, pb::ChangeKind::Created as i32);
    assert_eq!(delivered.cursor, change.cursor);
    let Some(NewState::Achievement(a)) = &change.new_state else {
        panic!("an achievement");
    };
    assert_eq!(a.title, "氢燃料电池");
    // From the head: only what came after it.
    let (after_head, _) = changes_after(&env, Reader::Role(Role::Officer), &head.cursor).await;
    assert_eq!(
        after_head.iter().map(|c| &c.resource).collect::<Vec<_>>(),
        [&second]
    );
    assert!(after_head.iter().all(|c| c.sequence > head.sequence));
    assert_ne!(first, second);
    env.stop().await;
}

async fn reflection_lists_the_feed_rpcs(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mut reflection = ServerReflectionClient::new(env.review.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            qilu_proto::service_names::REVIEW.to_string(),
        )),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
        panic!("unexpected reflection response: {response:?}");
    };
    let methods: BTreeSet<String> = files
        .file_descriptor_proto
        .iter()
        .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).unwrap())
        .flat_map(|f| f.service)
        .filter(|s| s.name() == "AchievementReviewService")
        .flat_map(|s| s.method)
        .map(|m| m.name().to_string())
        .collect();
    for rpc in [
        "ListChanges",
        "WatchChanges",
        "GetChangeFeedHead",
        "ExportSnapshot",
    ] {
        assert!(methods.contains(rpc), "{rpc} not in {methods:?}");
    }
    env.stop().await;
}
