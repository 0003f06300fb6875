//! Replay isolation for every mutating RPC of the awards service: caller A performs a request
//! with request id X; caller B — another enterprise or another admin — sends the identical
//! request with X and gets its own treatment (refused by the handler, or its own fresh result),
//! never A's stored response. For FileObjection that response names the objector, whose
//! identity is confidential. The list of RPCs comes from the descriptor set (every method whose
//! request has `request_id`): a new mutating RPC without a case here fails
//! `every_mutating_rpc_has_an_isolation_case`. Both backends, with the registry and review
//! services running for real.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use prost::Message;
use qilu_awards::{Awards, Clock};
use qilu_common::app::ServiceApp;
use qilu_common::auth::Role;
use qilu_common::config::Config;
use qilu_common::on_both_backends;
use qilu_common::server::ServiceDef;
use qilu_common::testing::replay::{Expect, Principal, assert_isolated, mutating_rpcs, request_id};
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::awards as pb;
use qilu_proto::awards::award_allocation_service_client::AwardAllocationServiceClient;
use qilu_proto::common as cpb;
use qilu_proto::registry as rpb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review as vpb;
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use qilu_registry::Registry;
use qilu_review::Review;
use sea_orm::DatabaseConnection;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

type Client = AwardAllocationServiceClient<Channel>;

/// Declares the cases: one test per RPC on both backends, and the list the completeness test
/// compares with the descriptor set.
macro_rules! isolation_cases {
    ($($name:ident => $method:literal),* $(,)?) => {
        on_both_backends!($($name),*);
        const CASES: &[&str] = &[$($method),*];
    };
}

isolation_cases!(
    create_program => "CreateProgram",
    update_program => "UpdateProgram",
    open_program => "OpenProgram",
    close_program => "CloseProgram",
    allocate_program => "AllocateProgram",
    publish_results => "PublishResults",
    finalize_program => "FinalizeProgram",
    create_application => "CreateApplication",
    withdraw_application => "WithdrawApplication",
    file_objection => "FileObjection",
    resolve_objection => "ResolveObjection",
);

#[test]
fn every_mutating_rpc_has_an_isolation_case() {
    let rpcs = mutating_rpcs("qilu.awards.v1", "AwardAllocationService");
    let cases: std::collections::BTreeSet<String> = CASES.iter().map(|c| c.to_string()).collect();
    assert_eq!(cases.len(), CASES.len(), "a case appears twice");
    assert_eq!(cases, rpcs);
}

/// `c.$rpc(request as the principal)`, encoded: the call [`assert_isolated`] repeats.
macro_rules! call {
    ($client:expr, $rpc:ident, $req:expr) => {{
        let client = $client;
        let req = $req;
        move |p: Principal| {
            let mut c = client.clone();
            let r = req.clone();
            async move {
                c.$rpc(p.request(r))
                    .await
                    .map(|x| x.into_inner().encode_to_vec())
            }
        }
    }};
}

// ---------------------------------------------------------------------------------------------
// The three services, and a clock tests can move (as in tests/api.rs)
// ---------------------------------------------------------------------------------------------

/// Clock offsets (µs) by the awards server's database URL, which is unique per test.
fn offsets() -> &'static Mutex<HashMap<String, Arc<AtomicI64>>> {
    static OFFSETS: OnceLock<Mutex<HashMap<String, Arc<AtomicI64>>>> = OnceLock::new();
    OFFSETS.get_or_init(Default::default)
}

/// The awards service with a clock that reads the system time plus a per-test offset.
struct AwardsWithClock;

impl ServiceApp for AwardsWithClock {
    const NAME: &'static str = Awards::NAME;
    const GRPC_NAME: &'static str = Awards::GRPC_NAME;

    async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
        Awards::migrate(db).await
    }

    async fn build(config: &Config, db: DatabaseConnection) -> Result<ServiceDef, String> {
        let offset = Arc::new(AtomicI64::new(0));
        offsets()
            .lock()
            .unwrap()
            .insert(config.database.url.clone(), offset.clone());
        let clock =
            Clock::new(move || qilu_common::time::now_micros() + offset.load(Ordering::SeqCst));
        qilu_awards::service_with_clock(config, db, clock)
    }
}

const DAY_US: i64 = 86_400_000_000;

struct Env {
    registry: TestServer,
    review: Option<TestServer>,
    awards: TestServer,
    offset: Arc<AtomicI64>,
}

impl Env {
    async fn start(backend: Backend) -> Option<Env> {
        let registry = TestServer::start::<Registry>(backend).await?;
        let registry_url = format!("http://{}", registry.addr);
        let review = TestServer::start_with::<Review>(
            backend,
            &[("QILU__PEERS__REGISTRY", registry_url.clone())],
        )
        .await?;
        let awards = TestServer::start_with::<AwardsWithClock>(
            backend,
            &[
                ("QILU__PEERS__REGISTRY", registry_url),
                ("QILU__PEERS__REVIEW", format!("http://{}", review.addr)),
                ("QILU__PEERS__TIMEOUT_MS", "2000".into()),
                ("QILU__PEERS__RETRIES", "1".into()),
            ],
        )
        .await?;
        let offset = offsets()
            .lock()
            .unwrap()
            .get(&awards.config.database.url)
            .cloned()
            .expect("clock registered");
        Some(Env {
            registry,
            review: Some(review),
            awards,
            offset,
        })
    }

    fn review(&self) -> &TestServer {
        self.review.as_ref().expect("review running")
    }

    fn client(&self) -> Client {
        AwardAllocationServiceClient::new(self.awards.channel.clone())
    }

    fn advance_days(&self, days: i64) {
        self.offset.fetch_add(days * DAY_US, Ordering::SeqCst);
    }

    fn as_role<T>(&self, role: Role, message: T) -> Request<T> {
        self.awards.request(role, message)
    }

    fn as_enterprise<T>(&self, uscc: &str, message: T) -> Request<T> {
        self.awards.enterprise_request(uscc, message)
    }

    /// Registers an ACTIVE enterprise in the registry.
    async fn enterprise(&self, n: u32) -> String {
        let uscc = shandong(n);
        let mut c = EnterpriseRegistryServiceClient::new(self.registry.channel.clone());
        c.create_enterprise(self.registry.request(
            Role::Admin,
            rpb::CreateEnterpriseRequest {
                enterprise: Some(rpb::Enterprise {
                    uscc: uscc.clone(),
                    display_name: format!("山东绿色科技有限公司{n}"),
                    legal_representative: "张三".into(),
                    established_date: "2010-05-04".into(),
                    address: "山东省济南市历下区".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
        uscc
    }

    fn review_client(&self) -> AchievementReviewServiceClient<Channel> {
        AchievementReviewServiceClient::new(self.review().channel.clone())
    }

    /// Creates an expert in every field (idempotent per id within a test).
    async fn expert(&self, id: &str) {
        let mut c = self.review_client();
        let r = c
            .create_expert(self.review().request(
                Role::Admin,
                vpb::CreateExpertRequest {
                    expert_id: id.into(),
                    expert: Some(vpb::Expert {
                        display_name: format!("专家 {id}"),
                        industry_fields: (1..=10).collect(),
                        load_limit: 100,
                        organization: "山东大学".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await;
        if let Err(s) = r {
            assert_eq!(s.code(), Code::AlreadyExists, "{s:?}");
        }
    }

    /// A submitted achievement of `uscc` in `field`; returns its id.
    async fn submitted_achievement(&self, uscc: &str, field: cpb::IndustryField) -> String {
        let mut c = self.review_client();
        let a = c
            .create_achievement(self.review().request(
                Role::Admin,
                vpb::CreateAchievementRequest {
                    achievement: Some(vpb::Achievement {
                        owner: format!("enterprises/{uscc}"),
                        title: format!("绿色技术成果 {}", field.as_str_name()),
                        industry_field: field as i32,
                        technology_readiness_level: 7,
                        summary: "清洁生产".into(),
                        green_data: Some(vpb::GreenData {
                            industry_code: "27".into(),
                            annual_energy_kgce: Some(200_000),
                            annual_electricity_kwh: Some(300_000),
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
        c.submit_achievement(self.review().request(
            Role::Admin,
            vpb::SubmitAchievementRequest {
                name: a.name.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
        a.name.trim_start_matches("achievements/").to_string()
    }

    /// Reviews a submitted achievement with one expert scoring `points` (of 100; `veto` to
    /// veto) and decides it. The review service approves at ≥ 70 points.
    async fn decide(&self, achievement: &str, points: i32, veto: bool) {
        self.expert("e1").await;
        let mut c = self.review_client();
        let name = format!("achievements/{achievement}");
        let assigned = c
            .assign_reviewers(self.review().request(
                Role::Admin,
                vpb::AssignReviewersRequest {
                    name: name.clone(),
                    experts: vec!["experts/e1".into()],
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let review = &assigned.reviews[0];
        // 30 + 30 + 20 + 20 = 100 points; spread `points` over the criteria.
        let innovation = points.min(30);
        let technical = (points - innovation).min(30);
        let economic = (points - innovation - technical).min(20);
        let green = points - innovation - technical - economic;
        let bearer = self
            .review()
            .bearer("expert-e1", &[Role::Expert], None, Some("e1"));
        let mut r = Request::new(vpb::SubmitReviewRequest {
            name: review.name.clone(),
            scores: Some(vpb::CriterionScores {
                innovation,
                technical_level: technical,
                economic_benefit: economic,
                green_benefit: green,
            }),
            comment: "评审意见".into(),
            veto: veto.then(|| vpb::ExpertVeto {
                category: vpb::VetoCategory::EnergyIntensive as i32,
                evidence: "单位产品能耗超过国家限额".into(),
            }),
            ..Default::default()
        });
        r.metadata_mut()
            .insert("authorization", bearer.parse().unwrap());
        c.submit_review(r).await.unwrap();
        c.finalize_decision(self.review().request(
            Role::Admin,
            vpb::FinalizeDecisionRequest {
                name,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    }

    /// An APPROVED achievement of `uscc` scored `points`.
    async fn approved(&self, uscc: &str, field: cpb::IndustryField, points: i32) -> String {
        let id = self.submitted_achievement(uscc, field).await;
        self.decide(&id, points, false).await;
        id
    }

    /// Creates and opens a program.
    async fn open_program(&self, id: &str, program: pb::Program) -> pb::Program {
        let mut c = self.client();
        c.create_program(self.as_role(
            Role::Admin,
            pb::CreateProgramRequest {
                program_id: id.into(),
                program: Some(program),
                request_id: uuid(),
            },
        ))
        .await
        .unwrap();
        c.open_program(self.as_role(
            Role::Admin,
            pb::OpenProgramRequest {
                name: format!("programs/{id}"),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
    }

    /// Applies as the enterprise itself.
    async fn apply(
        &self,
        program: &str,
        uscc: &str,
        achievement: &str,
        requested: i64,
        bucket: Option<(pb::AwardCategory, pb::AwardGrade)>,
    ) -> Result<pb::Application, Status> {
        let (category, grade) = bucket.map_or((0, 0), |(c, g)| (c as i32, g as i32));
        self.client()
            .create_application(self.as_enterprise(
                uscc,
                pb::CreateApplicationRequest {
                    parent: format!("programs/{program}"),
                    application: Some(pb::Application {
                        enterprise: format!("enterprises/{uscc}"),
                        achievement: format!("achievements/{achievement}"),
                        category,
                        grade,
                        requested_amount_fen: requested,
                        ..Default::default()
                    }),
                    request_id: uuid(),
                },
            ))
            .await
            .map(|r| r.into_inner())
    }

    async fn close(&self, program: &str) {
        self.client()
            .close_program(self.as_role(
                Role::Admin,
                pb::CloseProgramRequest {
                    name: format!("programs/{program}"),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
    }

    async fn allocate(&self, program: &str) -> Result<pb::Allocation, Status> {
        self.client()
            .allocate_program(self.as_role(
                Role::Admin,
                pb::AllocateProgramRequest {
                    name: format!("programs/{program}"),
                    request_id: uuid(),
                    ..Default::default()
                },
            ))
            .await
            .map(|r| r.into_inner())
    }

    async fn publish(&self, program: &str) -> pb::Program {
        self.client()
            .publish_results(self.as_role(
                Role::Admin,
                pb::PublishResultsRequest {
                    name: format!("programs/{program}"),
                    request_id: uuid(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A valid GB 32100 code registered in Jinan, varied by `n`.
fn shandong(n: u32) -> String {
    let body = format!("91370100MA3C{n:05}");
    let sum: u32 = body
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| ALPHABET.find(c).unwrap() as u32 * w)
        .sum();
    let check = ALPHABET
        .chars()
        .nth(((31 - sum % 31) % 31) as usize)
        .unwrap();
    format!("{body}{check}")
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

const BIO: cpb::IndustryField = cpb::IndustryField::Biomedicine;
const IT: cpb::IndustryField = cpb::IndustryField::NewGenerationInformationTechnology;

/// A project call: budget 1,000,000 fen, cap 600,000, biomedicine 50 %, threshold 70 points.
fn project(year: i32) -> pb::Program {
    pb::Program {
        display_name: format!("绿色低碳项目 {year}"),
        kind: pb::ProgramKind::Project as i32,
        year,
        budget_fen: 1_000_000,
        per_project_cap_fen: 600_000,
        priority_fields: vec![pb::PriorityFieldShare {
            field: BIO as i32,
            target_share_basis_points: 5000,
        }],
        score_threshold_millipoints: 70_000,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// Two different callers with the same staff role.
fn two(env: &Env, role: Role) -> (Principal, Principal) {
    (
        Principal::staff(&env.awards, &format!("{role}-a"), role),
        Principal::staff(&env.awards, &format!("{role}-b"), role),
    )
}

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
    let (a, b) = two(&env, Role::Admin);
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
        call!(env.client(), create_program, req),
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
    let (a, b) = two(&env, Role::Admin);
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
        call!(env.client(), update_program, req),
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
    let (a, b) = two(&env, Role::Admin);
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
        call!(env.client(), open_program, req),
    )
    .await;
}

async fn close_program(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    with_application(&env).await;
    let (a, b) = two(&env, Role::Admin);
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
        call!(env.client(), close_program, req),
    )
    .await;
}

async fn allocate_program(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    with_application(&env).await;
    env.close("green-2024").await;
    let (a, b) = two(&env, Role::Admin);
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
        call!(env.client(), allocate_program, req),
    )
    .await;
}

async fn publish_results(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    with_application(&env).await;
    env.close("green-2024").await;
    env.allocate("green-2024").await.unwrap();
    let (a, b) = two(&env, Role::Admin);
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
        call!(env.client(), publish_results, req),
    )
    .await;
}

async fn finalize_program(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    published(&env).await;
    env.advance_days(11);
    let (a, b) = two(&env, Role::Admin);
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
        call!(env.client(), finalize_program, req),
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
        call!(env.client(), create_application, req),
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
        call!(env.client(), withdraw_application, req),
    )
    .await;
}

async fn file_objection(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let app = published(&env).await;
    let a = Principal::enterprise(&env.awards, &shandong(3));
    let b = Principal::enterprise(&env.awards, &shandong(4));
    let x = request_id();
    // B files its own objection; A's (and A's identity) stays A's.
    assert_isolated(
        &env.awards.db,
        "FileObjection",
        &x,
        &a,
        &b,
        Expect::Fresh,
        call!(
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
            Principal::enterprise(&env.awards, &shandong(3))
                .request(objection_request(&app.name, "")),
        )
        .await
        .unwrap()
        .into_inner();
    let (a, b) = two(&env, Role::Admin);
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
        call!(env.client(), resolve_objection, req),
    )
    .await;
}
