//! Every Update RPC takes back what its Get returned (AIP-134 read-modify-write, as every
//! generated client does it): the resource read, sent back as read under a mask of every field
//! a caller may write (from the descriptor: `qilu_common::testing::round_trip`), is accepted,
//! and the next Get equals the first — an update that changes nothing writes nothing, so even
//! the etag and `update_time` stay. Each resource is made with its computed fields showing:
//! a support policy with a late (OVERDUE) milestone, figures with their update times, a zone
//! with its enterprise count, a cluster following a policy target. Both backends.

use qilu_common::auth::Role;
use qilu_common::round_trip_cases;
use qilu_common::testing::round_trip::full_mask;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::registry as pb;
use qilu_registry::Registry;
use tonic::Code;

use crate::support::{client, ent, get_enterprise, shandong};
use crate::{certification, leading, zones_policy};

round_trip_cases!(
    "qilu.registry.v1",
    "EnterpriseRegistryService",
    cases: {
        an_enterprise_read_is_written_back_unchanged => "UpdateEnterprise",
        annual_figures_read_are_written_back_unchanged => "UpdateAnnualFigures",
        a_support_policy_with_a_late_milestone_is_written_back_unchanged => "UpdateSupportPolicy",
        a_zone_read_is_written_back_unchanged => "UpdateZone",
        a_cluster_read_is_written_back_unchanged => "UpdateCluster",
    },
    also: {
        overdue_on_input_keeps_the_stored_state_and_nothing_else,
    },
);

fn resource(name: &str) -> String {
    format!("qilu.registry.v1.{name}")
}

async fn an_enterprise_read_is_written_back_unchanged(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    zones_policy::programme_zones(&server).await;
    let code = shandong("3701", 71);
    leading::create_enterprise(&server, &code, "济南往返科技有限公司", 3).await;
    leading::set_enterprise(
        &server,
        &code,
        true,
        qilu_registry::domain::enterprise::EnterpriseState::Active,
    )
    .await;
    let first = get_enterprise(&server, &code).await;
    let back = client(&server)
        .update_enterprise(server.request(
            Role::Officer,
            pb::UpdateEnterpriseRequest {
                enterprise: Some(first.clone()),
                update_mask: Some(full_mask(&resource("Enterprise"))),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("an enterprise as read must be accepted: {s:?}"))
        .into_inner();
    assert_eq!(back, first);
    assert_eq!(get_enterprise(&server, &code).await, first);
    server.stop().await;
}

async fn annual_figures_read_are_written_back_unchanged(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = shandong("3702", 72);
    leading::eligible(&server, &code, "青岛往返科技有限公司", 2023, 60).await;
    use pb::FigureSource::AuditedStatement as A;
    certification::write_figures(
        &server,
        Role::Officer,
        pb::AnnualFigures {
            name: certification::figures_name(&code, 2024),
            revenue_fen: certification::amount(60_000_000_000, A),
            rd_expense_fen: certification::amount(3_000_000_000, A),
            ..Default::default()
        },
        &["revenue_fen", "rd_expense_fen", "core_ip_owned"],
    )
    .await
    .unwrap();
    let get = || async {
        client(&server)
            .get_annual_figures(server.request(
                Role::Officer,
                pb::GetAnnualFiguresRequest {
                    name: certification::figures_name(&code, 2024),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    };
    let first = get().await;
    let mut c = client(&server);
    let back = c
        .update_annual_figures(server.request(
            Role::Officer,
            pb::UpdateAnnualFiguresRequest {
                annual_figures: Some(first.clone()),
                update_mask: Some(full_mask(&resource("AnnualFigures"))),
                allow_missing: false,
                request_id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("figures as read must be accepted: {s:?}"))
        .into_inner();
    assert_eq!(back, first);
    assert_eq!(get().await, first);
    server.stop().await;
}

/// A selected member's policy whose first milestone fell due in 2020 (OVERDUE on read), with
/// one milestone DONE and one CANCELLED beside it.
async fn policy_with_a_late_milestone(server: &TestServer, code: &str) -> pb::SupportPolicy {
    leading::eligible(server, code, "烟台往返科技有限公司", 2023, 70).await;
    leading::create_cohort(server, 2024).await;
    leading::select(server, 2024, code).await.unwrap();
    let mut input = leading::policy_input(2024, code);
    input.milestones = vec![
        pb::Milestone {
            milestone_id: "late".into(),
            title: "建成中试基地".into(),
            due_date: "2020-06-30".into(),
            state: pb::MilestoneState::InProgress as i32,
            note: "土建延误".into(),
            ..Default::default()
        },
        pb::Milestone {
            milestone_id: "done".into(),
            title: "完成立项".into(),
            due_date: "2020-01-31".into(),
            state: pb::MilestoneState::Done as i32,
            completed_date: "2020-01-15".into(),
            ..Default::default()
        },
        pb::Milestone {
            milestone_id: "dropped".into(),
            title: "海外并购".into(),
            due_date: "2021-01-31".into(),
            state: pb::MilestoneState::Cancelled as i32,
            note: "条件不具备".into(),
            ..Default::default()
        },
    ];
    client(server)
        .create_support_policy(server.request(
            Role::Officer,
            pb::CreateSupportPolicyRequest {
                parent: ent(code),
                support_policy: Some(input),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn get_policy(server: &TestServer, name: &str) -> pb::SupportPolicy {
    client(server)
        .get_support_policy(server.request(
            Role::Officer,
            pb::GetSupportPolicyRequest { name: name.into() },
        ))
        .await
        .unwrap()
        .into_inner()
}

fn update_policy(policy: pb::SupportPolicy, paths: Vec<String>) -> pb::UpdateSupportPolicyRequest {
    pb::UpdateSupportPolicyRequest {
        support_policy: Some(policy),
        update_mask: Some(prost_types::FieldMask { paths }),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

async fn a_support_policy_with_a_late_milestone_is_written_back_unchanged(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = shandong("3706", 73);
    let created = policy_with_a_late_milestone(&server, &code).await;
    let first = get_policy(&server, &created.name).await;
    let late = &first.milestones[0];
    assert_eq!(
        (late.state, late.overdue),
        (pb::MilestoneState::Overdue as i32, true),
        "{late:?}"
    );
    let states: Vec<(i32, bool)> = first.milestones[1..]
        .iter()
        .map(|m| (m.state, m.overdue))
        .collect();
    assert_eq!(
        states,
        [
            (pb::MilestoneState::Done as i32, false),
            (pb::MilestoneState::Cancelled as i32, false)
        ]
    );
    let events = crate::support::audit_events_of(&server, &first.name)
        .await
        .len();
    let mask = full_mask(&resource("SupportPolicy")).paths;
    let back = client(&server)
        .update_support_policy(server.request(Role::Officer, update_policy(first.clone(), mask)))
        .await
        .unwrap_or_else(|s| panic!("a policy as read must be accepted: {s:?}"))
        .into_inner();
    assert_eq!(back, first);
    assert_eq!(get_policy(&server, &first.name).await, first);
    // Nothing changed, so nothing was written: no audit event, no change in the feed.
    assert_eq!(
        crate::support::audit_events_of(&server, &first.name)
            .await
            .len(),
        events
    );
    server.stop().await;
}

/// OVERDUE sent back keeps the stored state (IN_PROGRESS stays IN_PROGRESS, and is read again
/// once the due date moves out); beside a real change it changes only that; for a milestone
/// the policy does not have open it is refused on the field.
async fn overdue_on_input_keeps_the_stored_state_and_nothing_else(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = shandong("3706", 74);
    let created = policy_with_a_late_milestone(&server, &code).await;
    let first = get_policy(&server, &created.name).await;
    let mut c = client(&server);

    // Move the late milestone's due date out, leaving its state as read (OVERDUE).
    let mut moved = first.clone();
    moved.milestones[0].due_date = "2099-06-30".into();
    let after = c
        .update_support_policy(server.request(
            Role::Officer,
            update_policy(moved, vec!["milestones".into()]),
        ))
        .await
        .unwrap()
        .into_inner();
    let m = &after.milestones[0];
    assert_eq!(
        (m.state, m.overdue, m.due_date.as_str(), m.note.as_str()),
        (
            pb::MilestoneState::InProgress as i32,
            false,
            "2099-06-30",
            "土建延误"
        )
    );
    assert_ne!(after.etag, first.etag);

    // OVERDUE for a new milestone id, or for a DONE one, is refused on its field.
    let mut bad = after.clone();
    bad.milestones.push(pb::Milestone {
        milestone_id: "new".into(),
        title: "新增".into(),
        due_date: "2020-01-01".into(),
        state: pb::MilestoneState::Overdue as i32,
        ..Default::default()
    });
    bad.milestones[1].state = pb::MilestoneState::Overdue as i32;
    let s = c
        .update_support_policy(
            server.request(Role::Officer, update_policy(bad, vec!["milestones".into()])),
        )
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let got = crate::support::violations(&s);
    assert_eq!(
        got,
        [
            (
                "support_policy.milestones[1].state".to_string(),
                "OUTPUT_ONLY_VALUE".to_string()
            ),
            (
                "support_policy.milestones[3].state".to_string(),
                "OUTPUT_ONLY_VALUE".to_string()
            ),
        ]
    );
    server.stop().await;
}

async fn a_zone_read_is_written_back_unchanged(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let (jinan, _) = zones_policy::programme_zones(&server).await;
    // An enterprise in the zone, so its computed count shows.
    let code = shandong("3701", 75);
    leading::create_enterprise(&server, &code, "济南园区企业", 3).await;
    let mut e = get_enterprise(&server, &code).await;
    e.zone = jinan.name.clone();
    client(&server)
        .update_enterprise(server.request(
            Role::Officer,
            pb::UpdateEnterpriseRequest {
                enterprise: Some(e),
                update_mask: crate::support::mask(&["zone"]),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let get = || async {
        client(&server)
            .get_zone(server.request(
                Role::Officer,
                pb::GetZoneRequest {
                    name: jinan.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    };
    let first = get().await;
    let back = client(&server)
        .update_zone(server.request(
            Role::Officer,
            pb::UpdateZoneRequest {
                zone: Some(first.clone()),
                update_mask: Some(full_mask(&resource("Zone"))),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("a zone as read must be accepted: {s:?}"))
        .into_inner();
    assert_eq!(back, first);
    assert_eq!(get().await, first);
    server.stop().await;
}

async fn a_cluster_read_is_written_back_unchanged(backend: Backend) {
    let Some(server) = TestServer::start::<Registry>(backend).await else {
        return;
    };
    let code = shandong("3702", 76);
    leading::create_enterprise(&server, &code, "青岛氢能企业", 3).await;
    // The seeded cluster-scale target is in force: the cluster shows its effective target.
    let created = zones_policy::create_cluster(
        &server,
        Role::Admin,
        "hydrogen",
        zones_policy::hydrogen(&[&code]),
        "",
    )
    .await
    .unwrap();
    let get = || async {
        client(&server)
            .get_cluster(server.request(
                Role::Officer,
                pb::GetClusterRequest {
                    name: created.name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    };
    let first = get().await;
    let back = client(&server)
        .update_cluster(server.request(
            Role::Officer,
            pb::UpdateClusterRequest {
                cluster: Some(first.clone()),
                update_mask: Some(full_mask(&resource("Cluster"))),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("a cluster as read must be accepted: {s:?}"))
        .into_inner();
    assert_eq!(back, first);
    assert_eq!(get().await, first);
    server.stop().await;
}
