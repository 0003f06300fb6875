//! What both modules of the awards service's integration tests share (`allocation`,
//! `replay_isolation`): the registry, review and awards servers started over fresh databases
//! and wired as peers, a clock tests can move, tokens per role or enterprise, and helpers that
//! seed enterprises, experts, achievements (approved or vetoed through the review service's own
//! RPCs) and programs.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use qilu_common::Clock;
use qilu_common::auth::Role;
use qilu_common::testing::{Backend, TestServer};
use qilu_proto::awards as pb;
use qilu_proto::awards::award_allocation_service_client::AwardAllocationServiceClient;
use qilu_proto::common as cpb;
use qilu_proto::registry as rpb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review as vpb;
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use qilu_suite::Clocks;
use qilu_suite::testing::start_apart;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub type Client = AwardAllocationServiceClient<Channel>;

// ---------------------------------------------------------------------------------------------
// The three services, and a clock tests can move
// ---------------------------------------------------------------------------------------------

const DAY_US: i64 = 86_400_000_000;

pub struct Env {
    pub registry: TestServer,
    pub review: Option<TestServer>,
    pub awards: TestServer,
    pub offset: Arc<AtomicI64>,
}

impl Env {
    /// The three services as `qilu_suite` wires them, each on its own port over its own fresh
    /// database (so a test can stop the review service alone), the awards service reading a
    /// clock the test moves with [`Env::advance_days`].
    pub async fn start(backend: Backend) -> Option<Env> {
        let offset = Arc::new(AtomicI64::new(0));
        let moved = offset.clone();
        let clocks = Clocks {
            awards: Some(Clock::new(move || {
                qilu_common::time::now_micros() + moved.load(Ordering::SeqCst)
            })),
            ..Clocks::default()
        };
        let servers = start_apart(
            backend,
            &[
                ("QILU__PEERS__TIMEOUT_MS", "2000".into()),
                ("QILU__PEERS__RETRIES", "1".into()),
            ],
            clocks,
        )
        .await?;
        Some(Env {
            registry: servers.registry,
            review: Some(servers.review),
            awards: servers.awards,
            offset,
        })
    }

    pub fn review(&self) -> &TestServer {
        self.review.as_ref().expect("review running")
    }

    pub fn client(&self) -> Client {
        AwardAllocationServiceClient::new(self.awards.channel.clone())
    }

    pub fn advance_days(&self, days: i64) {
        self.offset.fetch_add(days * DAY_US, Ordering::SeqCst);
    }

    pub fn as_role<T>(&self, role: Role, message: T) -> Request<T> {
        self.awards.request(role, message)
    }

    pub fn as_enterprise<T>(&self, uscc: &str, message: T) -> Request<T> {
        self.awards.enterprise_request(uscc, message)
    }

    /// Registers an ACTIVE enterprise in the registry.
    pub async fn enterprise(&self, n: u32) -> String {
        let uscc = uscc(n);
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

    pub fn review_client(&self) -> AchievementReviewServiceClient<Channel> {
        AchievementReviewServiceClient::new(self.review().channel.clone())
    }

    /// Creates an expert in every field (idempotent per id within a test).
    pub async fn expert(&self, id: &str) {
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
    pub async fn submitted_achievement(&self, uscc: &str, field: cpb::IndustryField) -> String {
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
    pub async fn decide(&self, achievement: &str, points: i32, veto: bool) {
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
    pub async fn approved(&self, uscc: &str, field: cpb::IndustryField, points: i32) -> String {
        let id = self.submitted_achievement(uscc, field).await;
        self.decide(&id, points, false).await;
        id
    }

    /// Creates and opens a program.
    pub async fn open_program(&self, id: &str, program: pb::Program) -> pb::Program {
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
    pub async fn apply(
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

    pub async fn close(&self, program: &str) {
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

    pub async fn allocate(&self, program: &str) -> Result<pb::Allocation, Status> {
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

    pub async fn publish(&self, program: &str) -> pb::Program {
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

/// A valid GB 32100 code registered in Jinan, varied by `n` (check character from the tests'
/// own oracle, independently of the registry).
pub use qilu_common::testing::uscc::uscc_for as uscc;

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub const BIO: cpb::IndustryField = cpb::IndustryField::Biomedicine;
pub const IT: cpb::IndustryField = cpb::IndustryField::NewGenerationInformationTechnology;

/// A project call: budget 1,000,000 fen, cap 600,000, biomedicine 50 %, threshold 70 points.
pub fn project(year: i32) -> pb::Program {
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
