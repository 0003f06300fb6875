//! The awards change feed as its followers see it: every change of a whole programme carries the
//! resource's state, each resource's newest state is what its Get returns to the same caller
//! (staff, an applicant, the objector, an expert, a service), every arm of `Change.new_state`
//! (read from the descriptor, not listed here) is exercised, and a follower that loads a
//! snapshot taken while writes go on and then follows the feed ends where the List RPCs are.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use qilu_common::auth::Role;
use qilu_common::on_both_backends;
use qilu_common::testing::Backend;
use qilu_proto::awards as pb;
use qilu_proto::awards::award_allocation_service_client::AwardAllocationServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::support::{Env, IT, project, uuid};
use pb::change::NewState;

on_both_backends!(
    a_whole_programme_reaches_each_follower_as_its_gets_show_it,
    the_programme_exercises_every_arm_of_the_change_state,
    a_follower_loading_a_snapshot_taken_during_writes_ends_at_the_lists,
    passing_dates_change_no_get_so_there_is_nothing_to_sweep,
);

const PROGRAM: &str = "awards.qilu.gov.cn/Program";
const APPLICATION: &str = "awards.qilu.gov.cn/Application";
const ALLOCATION: &str = "awards.qilu.gov.cn/Allocation";
const OBJECTION: &str = "awards.qilu.gov.cn/Objection";

/// Who follows the feed (and reads the resources to compare).
#[derive(Debug, Clone)]
enum Who {
    Role(Role),
    Enterprise(String),
    Bearer(String),
}

fn ask<T>(env: &Env, who: &Who, message: T) -> Request<T> {
    match who {
        Who::Role(r) => env.as_role(*r, message),
        Who::Enterprise(uscc) => env.as_enterprise(uscc, message),
        Who::Bearer(b) => with_bearer(b, message),
    }
}

fn with_bearer<T>(bearer: &str, message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    r
}

async fn stop(env: Env) {
    env.awards.stop().await;
    if let Some(r) = env.review {
        r.stop().await;
    }
    env.registry.stop().await;
}

/// Every change after `after` `who` may see, and the cursor after them.
async fn list_all(env: &Env, who: &Who, after: &str) -> (Vec<pb::Change>, String) {
    let mut c = env.client();
    let mut cursor = after.to_string();
    let mut out = Vec::new();
    loop {
        let page = c
            .list_changes(ask(
                env,
                who,
                pb::ListChangesRequest {
                    after_cursor: cursor.clone(),
                    page_size: 1000,
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

/// The newest state of each resource among `changes`, every change required to carry one.
fn newest(changes: &[pb::Change]) -> BTreeMap<String, NewState> {
    let mut out = BTreeMap::new();
    for c in changes {
        let state = c
            .new_state
            .clone()
            .unwrap_or_else(|| panic!("change {} of {} has no state", c.sequence, c.resource));
        assert!(!c.resource_type.is_empty(), "{c:?}");
        out.insert(c.resource.clone(), state);
    }
    out
}

/// The resource as its Get returns it to `who`.
async fn get_as(env: &Env, who: &Who, resource_type: &str, name: &str) -> Result<NewState, Status> {
    let mut c = env.client();
    let name = name.to_string();
    Ok(match resource_type {
        PROGRAM => NewState::Program(
            c.get_program(ask(env, who, pb::GetProgramRequest { name }))
                .await?
                .into_inner(),
        ),
        APPLICATION => NewState::Application(
            c.get_application(ask(env, who, pb::GetApplicationRequest { name }))
                .await?
                .into_inner(),
        ),
        ALLOCATION => NewState::Allocation(
            // The feed carries allocations in the BASIC view (entries are the applications').
            c.get_allocation(ask(
                env,
                who,
                pb::GetAllocationRequest {
                    name,
                    view: pb::AllocationView::Basic as i32,
                },
            ))
            .await?
            .into_inner(),
        ),
        OBJECTION => NewState::Objection(
            c.get_objection(ask(env, who, pb::GetObjectionRequest { name }))
                .await?
                .into_inner(),
        ),
        other => panic!("no Get for {other}"),
    })
}

fn type_of(state: &NewState) -> &'static str {
    match state {
        NewState::Program(_) => PROGRAM,
        NewState::Application(_) => APPLICATION,
        NewState::Allocation(_) => ALLOCATION,
        NewState::Objection(_) => OBJECTION,
    }
}

/// Follows the whole feed as `who` and checks each resource's newest state against its Get as
/// `who`; returns the changes and the newest states.
async fn follow_and_compare(env: &Env, who: &Who) -> (Vec<pb::Change>, BTreeMap<String, NewState>) {
    let (changes, _) = list_all(env, who, "").await;
    let states = newest(&changes);
    for (name, state) in &states {
        let got = get_as(env, who, type_of(state), name)
            .await
            .unwrap_or_else(|s| panic!("{who:?} follows {name} but may not Get it: {s:?}"));
        assert_eq!(
            &got, state,
            "{who:?}: the feed's newest {name} is not its Get"
        );
    }
    (changes, states)
}

/// What [`programme`] made.
struct Programme {
    program: String,
    apps: Vec<pb::Application>,
    usccs: Vec<String>,
    /// The bearer of the enterprise that filed both objections.
    objector: String,
    objections: Vec<String>,
}

/// A realistic programme, every kind of write of the service: a draft left as a draft; a
/// project call created, updated and opened; four applications (one withdrawn); closed,
/// allocated, published; one objection upheld (a new allocation revision, outcomes revised) and
/// one dismissed; after the window, final.
async fn programme(env: &Env) -> Programme {
    let mut c = env.client();
    let admin = |m| env.as_role(Role::Admin, m);
    c.create_program(admin(pb::CreateProgramRequest {
        program_id: "draft-2025".into(),
        program: Some(project(2025)),
        request_id: uuid(),
    }))
    .await
    .unwrap();
    let mut p = project(2024);
    p.priority_fields.clear();
    p.per_project_cap_fen = 0;
    let program = "programs/green-2024".to_string();
    c.create_program(env.as_role(
        Role::Admin,
        pb::CreateProgramRequest {
            program_id: "green-2024".into(),
            program: Some(p),
            request_id: uuid(),
        },
    ))
    .await
    .unwrap();
    c.update_program(env.as_role(
        Role::Admin,
        pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: program.clone(),
                display_name: "绿色低碳项目 2024（第一批）".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
            request_id: uuid(),
        },
    ))
    .await
    .unwrap();
    c.open_program(env.as_role(
        Role::Admin,
        pb::OpenProgramRequest {
            name: program.clone(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    let mut apps = Vec::new();
    let mut usccs = Vec::new();
    for (n, points) in [(1, 90), (2, 85), (3, 80), (4, 75)] {
        let e = env.enterprise(n).await;
        let a = env.approved(&e, IT, points).await;
        apps.push(
            env.apply("green-2024", &e, &a, 400_000, None)
                .await
                .unwrap(),
        );
        usccs.push(e);
    }
    c.withdraw_application(env.as_enterprise(
        &usccs[3],
        pb::WithdrawApplicationRequest {
            name: apps[3].name.clone(),
            reason: "改投下一批".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    env.close("green-2024").await;
    env.allocate("green-2024").await.unwrap();
    env.publish("green-2024").await;

    let objector = env
        .awards
        .bearer("enterprise-e3", &[Role::Enterprise], Some(&usccs[2]), None);
    let mut objections = Vec::new();
    for (app, resolution, remedy) in [
        (
            &apps[0],
            pb::ObjectionResolution::Upheld,
            pb::ObjectionRemedy::ExcludeApplication,
        ),
        (
            &apps[1],
            pb::ObjectionResolution::Dismissed,
            pb::ObjectionRemedy::Unspecified,
        ),
    ] {
        let o = c
            .file_objection(with_bearer(
                &objector,
                pb::FileObjectionRequest {
                    parent: program.clone(),
                    objection: Some(pb::Objection {
                        application: app.name.clone(),
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
            .unwrap()
            .into_inner();
        c.resolve_objection(env.as_role(
            Role::Admin,
            pb::ResolveObjectionRequest {
                name: o.name.clone(),
                resolution: resolution as i32,
                remedy: remedy as i32,
                reason: "核查完毕".into(),
                etag: o.etag.clone(),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap();
        objections.push(o.name);
    }
    env.advance_days(11);
    c.finalize_program(env.as_role(
        Role::Admin,
        pb::FinalizeProgramRequest {
            name: program.clone(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    Programme {
        program,
        apps,
        usccs,
        objector,
        objections,
    }
}

fn names(states: &BTreeMap<String, NewState>) -> BTreeSet<String> {
    states.keys().cloned().collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn a_whole_programme_reaches_each_follower_as_its_gets_show_it(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let p = programme(&env).await;
    let allocation = format!("{}/allocation", p.program);

    // Staff follow everything; officers without the objector's identity, as GetObjection.
    let mut everything = set(&["programs/draft-2025", &p.program, &allocation]);
    everything.extend(p.apps.iter().map(|a| a.name.clone()));
    everything.extend(p.objections.iter().cloned());
    let (_, officer) = follow_and_compare(&env, &Who::Role(Role::Officer)).await;
    assert_eq!(names(&officer), everything);
    let Some(NewState::Objection(o)) = officer.get(&p.objections[0]) else {
        panic!("objection state");
    };
    assert!(o.objector.is_empty() && o.objector_name.is_empty(), "{o:?}");
    let (_, admin) = follow_and_compare(&env, &Who::Role(Role::Admin)).await;
    assert_eq!(names(&admin), everything);
    let Some(NewState::Objection(o)) = admin.get(&p.objections[0]) else {
        panic!("objection state");
    };
    assert_eq!(o.objector_name, "李四");

    // An applicant follows the programme, the published allocation and its own application
    // only, and sees the outcome from publication on, never before.
    let applicant = Who::Enterprise(p.usccs[0].clone());
    let (changes, own) = follow_and_compare(&env, &applicant).await;
    assert_eq!(
        names(&own),
        set(&[&p.program, &allocation, &p.apps[0].name])
    );
    assert!(
        !changes
            .iter()
            .any(|c| c.resource == allocation && c.method.ends_with("/AllocateProgram")),
        "the allocation reaches non-staff followers only once published"
    );
    let (staff_changes, _) = list_all(&env, &Who::Role(Role::Officer), "").await;
    let allocated = |cs: &[pb::Change]| -> pb::Application {
        let c = cs
            .iter()
            .find(|c| c.resource == p.apps[0].name && c.method.ends_with("/AllocateProgram"))
            .expect("the allocation's change of the application");
        let Some(NewState::Application(a)) = &c.new_state else {
            panic!("application state");
        };
        a.clone()
    };
    assert_ne!(
        allocated(&staff_changes).outcome,
        0,
        "staff see the outcome"
    );
    let hidden = allocated(&changes);
    assert_eq!(
        (hidden.outcome, hidden.rank, hidden.amount_fen),
        (0, 0, 0),
        "an applicant sees no outcome before publication"
    );
    assert!(
        changes
            .iter()
            .any(|c| c.resource == p.apps[0].name && c.method.ends_with("/PublishResults")),
        "publication is a change of the application to its applicant"
    );
    let Some(NewState::Application(now)) = own.get(&p.apps[0].name) else {
        panic!("application state");
    };
    assert_eq!(now.outcome, pb::ApplicationOutcome::Excluded as i32);

    // The objector follows its own objections, with its identity.
    let (_, objector) = follow_and_compare(&env, &Who::Bearer(p.objector.clone())).await;
    let mut expected = set(&[&p.program, &allocation, &p.apps[2].name]);
    expected.extend(p.objections.iter().cloned());
    assert_eq!(names(&objector), expected);
    // An expert reads programmes and published allocations only; a service account every
    // programme and application and the published allocation, but no objection (the role
    // table's Gets).
    let (_, expert) = follow_and_compare(&env, &Who::Role(Role::Expert)).await;
    assert_eq!(names(&expert), set(&[&p.program, &allocation]));
    let (_, service) = follow_and_compare(&env, &Who::Role(Role::Service)).await;
    let mut expected = set(&["programs/draft-2025", &p.program, &allocation]);
    expected.extend(p.apps.iter().map(|a| a.name.clone()));
    assert_eq!(names(&service), expected);
    stop(env).await;
}

async fn the_programme_exercises_every_arm_of_the_change_state(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    programme(&env).await;
    let pool = prost_reflect::DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap();
    let change = pool.get_message_by_name("qilu.awards.v1.Change").unwrap();
    let oneof = change
        .oneofs()
        .find(|o| o.name() == "new_state")
        .expect("Change.new_state");
    let arms: BTreeSet<String> = oneof.fields().map(|f| f.name().to_string()).collect();
    assert!(arms.len() >= 4, "{arms:?}");

    let (changes, _) = list_all(&env, &Who::Role(Role::Admin), "").await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in &changes {
        let dynamic =
            prost_reflect::DynamicMessage::decode(change.clone(), c.encode_to_vec().as_slice())
                .unwrap();
        let set: Vec<String> = oneof
            .fields()
            .filter(|f| dynamic.has_field(f))
            .map(|f| f.name().to_string())
            .collect();
        assert_eq!(
            set.len(),
            1,
            "change {} of {} ({}) carries no state",
            c.sequence,
            c.resource,
            c.method
        );
        *seen.entry(set[0].clone()).or_default() += 1;
    }
    let missing: Vec<&String> = arms.iter().filter(|a| !seen.contains_key(*a)).collect();
    assert!(
        missing.is_empty(),
        "no change of the programme carries {missing:?}: {seen:?}"
    );
    stop(env).await;
}

/// The admin's writes of the reconstruction scenario, on their own task: programs created,
/// updated and opened, applications made and one withdrawn.
async fn keep_writing(
    mut c: AwardAllocationServiceClient<Channel>,
    admin: String,
    applicants: Vec<(String, String, String)>,
) {
    for i in 0..6 {
        let id = format!("wave-{i}");
        c.create_program(with_bearer(
            &admin,
            pb::CreateProgramRequest {
                program_id: id.clone(),
                program: Some(project(2030 + i)),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap();
        if i % 2 == 0 {
            c.open_program(with_bearer(
                &admin,
                pb::OpenProgramRequest {
                    name: format!("programs/{id}"),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        }
    }
    let mut made = Vec::new();
    for (uscc, bearer, achievement) in &applicants {
        let a = c
            .create_application(with_bearer(
                bearer,
                pb::CreateApplicationRequest {
                    parent: "programs/green-2024".into(),
                    application: Some(pb::Application {
                        enterprise: format!("enterprises/{uscc}"),
                        achievement: format!("achievements/{achievement}"),
                        requested_amount_fen: 300_000,
                        ..Default::default()
                    }),
                    request_id: uuid(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        made.push((bearer.clone(), a));
    }
    if let Some((bearer, a)) = made.first() {
        c.withdraw_application(with_bearer(
            bearer,
            pb::WithdrawApplicationRequest {
                name: a.name.clone(),
                reason: "撤回".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    }
    c.update_program(with_bearer(
        &admin,
        pb::UpdateProgramRequest {
            program: Some(pb::Program {
                name: "programs/wave-1".into(),
                display_name: "第二批".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
            request_id: uuid(),
        },
    ))
    .await
    .unwrap();
}

async fn a_follower_loading_a_snapshot_taken_during_writes_ends_at_the_lists(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mut p = project(2024);
    p.per_project_cap_fen = 0;
    p.priority_fields.clear();
    env.open_program("green-2024", p).await;
    let mut applicants = Vec::new();
    for n in 1..=3 {
        let e = env.enterprise(n).await;
        let a = env.approved(&e, IT, 80 + n as i32).await;
        let bearer = env.awards.bearer(
            &format!("enterprise-{e}"),
            &[Role::Enterprise],
            Some(&e),
            None,
        );
        applicants.push((e, bearer, a));
    }
    // One application before the snapshot, the rest while it is taken.
    let first = applicants.remove(0);
    env.apply("green-2024", &first.0, &first.2, 300_000, None)
        .await
        .unwrap();
    let admin = env.awards.bearer("test-admin", &[Role::Admin], None, None);
    let writer = tokio::spawn(keep_writing(env.client(), admin, applicants));

    let officer = Who::Role(Role::Officer);
    let mut stream = env
        .client()
        .export_snapshot(ask(&env, &officer, pb::ExportSnapshotRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut follower: BTreeMap<String, NewState> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    while let Some(batch) = stream.message().await.unwrap() {
        assert!(cursor.as_ref().is_none_or(|c| *c == batch.cursor));
        cursor = Some(batch.cursor.clone());
        follower.extend(newest(&batch.changes));
    }
    let cursor = cursor.expect("a snapshot names its cursor");
    writer.await.unwrap();
    let (changes, _) = list_all(&env, &officer, &cursor).await;
    follower.extend(newest(&changes));

    let mut c = env.client();
    let mut programs = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_programs(ask(
                &env,
                &officer,
                pb::ListProgramsRequest {
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        for p in page.programs {
            programs.insert(p.name.clone(), NewState::Program(p));
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let mut applications = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_applications(ask(
                &env,
                &officer,
                pb::ListApplicationsRequest {
                    parent: "programs/-".into(),
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        for a in page.applications {
            applications.insert(a.name.clone(), NewState::Application(a));
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(programs.len(), 7);
    assert_eq!(applications.len(), 3);
    let by_type = |t: &str| -> BTreeMap<String, NewState> {
        follower
            .iter()
            .filter(|(_, s)| type_of(s) == t)
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect()
    };
    assert_eq!(by_type(PROGRAM), programs);
    assert_eq!(by_type(APPLICATION), applications);
    stop(env).await;
}

async fn passing_dates_change_no_get_so_there_is_nothing_to_sweep(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    // An application window that closes in three days: the program stays OPEN (applications
    // are refused after it, and an admin closes the program), so its Get does not change.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let mut p = project(2024);
    p.deadlines = Some(pb::StageDeadlines {
        application_start_date: today.format("%Y-%m-%d").to_string(),
        application_deadline: (today + chrono::Days::new(3))
            .format("%Y-%m-%d")
            .to_string(),
        ..Default::default()
    });
    env.open_program("dated-2024", p).await;
    let officer = Who::Role(Role::Officer);
    let (before, _) = follow_and_compare(&env, &officer).await;
    env.advance_days(30);
    let report = env.awards.sweep().await;
    assert_eq!(report.changed, 0, "{report:?}");
    let (after, states) = follow_and_compare(&env, &officer).await;
    assert_eq!(before, after, "no change is written when dates pass");
    let Some(NewState::Program(program)) = states.get("programs/dated-2024") else {
        panic!("program state");
    };
    assert_eq!(program.state, pb::ProgramState::Open as i32);
    // The window's end is a refusal, not a state.
    let e = env.enterprise(1).await;
    let a = env.approved(&e, IT, 90).await;
    let late = env
        .apply("dated-2024", &e, &a, 300_000, None)
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    stop(env).await;
}
