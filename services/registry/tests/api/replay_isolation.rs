//! Replay isolation for every mutating RPC of the registry: caller A performs a request with
//! request id X; caller B — another enterprise, or another officer or admin — sends the
//! identical request with X and gets its own treatment (refused by the handler, or its own
//! fresh result), never A's stored response. The list of RPCs comes from the descriptor set
//! (every method whose request has `request_id`): a new mutating RPC without a case here fails
//! `every_mutating_rpc_has_an_isolation_case`. Both backends.
//!
//! Also here: the migration that re-keyed the `idempotency` table by caller, from the old
//! schema, on both backends.

use std::collections::BTreeMap;

use qilu_common::auth::{Caller, Role};
use qilu_common::idempotency::{self, CallerScope, RequestId, UNATTRIBUTED};
use qilu_common::testing::replay::{Expect, Principal, assert_isolated, encoded, request_id};
use qilu_common::testing::{Backend, TestDb, TestServer};
use qilu_common::{isolation_call, isolation_cases};
use qilu_proto::common as cpb;
use qilu_proto::registry as pb;
use qilu_registry::Registry;
use qilu_registry::domain::figures::{AnnualFigures, FigureKind, Reported};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::{Client, client, ent, mask, this_year, uscc_for};

isolation_cases!(
    "qilu.registry.v1",
    "EnterpriseRegistryService",
    cases: {
        create_enterprise => "CreateEnterprise",
        update_enterprise => "UpdateEnterprise",
        revoke_enterprise => "RevokeEnterprise",
        deregister_enterprise => "DeregisterEnterprise",
        import_enterprises => "ImportEnterprises",
        import_high_tech_certificates => "ImportHighTechCertificates",
        import_annual_figures => "ImportAnnualFigures",
        create_import => "CreateImport",
        start_import => "StartImport",
        update_annual_figures => "UpdateAnnualFigures",
        create_high_tech_certificate => "CreateHighTechCertificate",
        file_annual_report => "FileAnnualReport",
        revoke_high_tech_certificate => "RevokeHighTechCertificate",
        create_leading_cohort => "CreateLeadingCohort",
        select_leading_enterprise => "SelectLeadingEnterprise",
        deselect_leading_enterprise => "DeselectLeadingEnterprise",
        create_support_policy => "CreateSupportPolicy",
        update_support_policy => "UpdateSupportPolicy",
        record_support_policy_review => "RecordSupportPolicyReview",
        create_zone => "CreateZone",
        update_zone => "UpdateZone",
        create_cluster => "CreateCluster",
        update_cluster => "UpdateCluster",
        create_policy_target => "CreatePolicyTarget",
    },
    also: { migration_attributes_staff_records_and_retires_the_rest },
);

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

fn enterprise(code: &str) -> pb::Enterprise {
    pb::Enterprise {
        uscc: code.to_string(),
        display_name: format!("山东绿色科技{code}"),
        legal_representative: "张三".into(),
        established_date: "2010-05-04".into(),
        address: "山东省济南市".into(),
        technology_fields: vec![cpb::HighTechField::NewEnergyAndEnergySaving as i32],
        green_category: 3,
        ..Default::default()
    }
}

struct Env {
    server: TestServer,
}

impl Env {
    async fn start(backend: Backend) -> Option<Env> {
        let server = TestServer::start::<Registry>(backend).await?;
        let env = Env { server };
        env.create(&uscc_for(1)).await;
        env.create(&uscc_for(2)).await;
        Some(env)
    }

    fn client(&self) -> Client {
        client(&self.server)
    }

    fn db(&self) -> &DatabaseConnection {
        &self.server.db
    }

    async fn create(&self, code: &str) {
        self.client()
            .create_enterprise(self.server.request(
                Role::Officer,
                pb::CreateEnterpriseRequest {
                    enterprise: Some(enterprise(code)),
                    request_id: String::new(),
                },
            ))
            .await
            .unwrap();
    }

    /// Enterprise 1 (A) and enterprise 2 (B).
    fn enterprises(&self) -> (Principal, Principal) {
        (
            Principal::enterprise(&self.server, &uscc_for(1)),
            Principal::enterprise(&self.server, &uscc_for(2)),
        )
    }

    fn officer(&self) -> Principal {
        Principal::staff(&self.server, "setup-officer", Role::Officer)
    }

    fn admin(&self) -> Principal {
        Principal::staff(&self.server, "setup-admin", Role::Admin)
    }

    /// A certificate of enterprise 1 issued on 15 January last year (its first report due).
    async fn certificate(&self) -> pb::HighTechCertificate {
        self.client()
            .create_high_tech_certificate(self.officer().request(certificate_request("")))
            .await
            .unwrap()
            .into_inner()
    }

    /// Enterprise 1 as a leading candidate of cohort `year`: certified, with figures for the
    /// year before, and the cohort.
    async fn candidate(&self, year: i32) {
        use qilu_registry::domain::enterprise::EnterpriseState;
        use qilu_registry::store::enterprise as store;
        let code = uscc_for(1);
        let current = store::get(self.db(), &code)
            .await
            .unwrap()
            .unwrap()
            .into_domain()
            .unwrap();
        let mut e = current.clone();
        e.high_tech_certified = true;
        e.state = EnterpriseState::Active;
        e.version += 1;
        assert!(
            store::update_if_version(self.db(), &e, current.version)
                .await
                .unwrap()
        );
        let revenue = 50_000_000_000;
        for (y, values) in [
            (
                year - 1,
                vec![
                    (FigureKind::RevenueFen, revenue),
                    (FigureKind::RdExpenseFen, revenue / 20),
                    (FigureKind::InventionPatents, 10),
                    (FigureKind::HighTechProductRevenueFen, revenue * 8 / 10),
                ],
            ),
            (year - 2, vec![(FigureKind::RevenueFen, 40_000_000_000)]),
        ] {
            let figures = AnnualFigures {
                uscc: code.clone(),
                year: y,
                figures: values
                    .iter()
                    .map(|(k, v)| {
                        (
                            *k,
                            Reported {
                                value: *v,
                                source: 2,
                                reference: "鲁审字〔2024〕1号".into(),
                                update_time_us: 1,
                            },
                        )
                    })
                    .collect::<BTreeMap<_, _>>(),
                create_time_us: 1,
                update_time_us: 1,
                version: 1,
            };
            let kinds: Vec<FigureKind> = values.iter().map(|(k, _)| *k).collect();
            qilu_registry::store::figures::write(self.db(), &figures, &kinds)
                .await
                .unwrap();
        }
        // The seeded LEADING_COHORT_SIZE target (about 200, 2021 onwards) sizes the cohort.
        self.client()
            .create_leading_cohort(self.admin().request(cohort_request(year, "")))
            .await
            .unwrap();
    }

    /// Enterprise 1 selected into cohort `year`.
    async fn member(&self, year: i32) -> pb::LeadingCohortMember {
        self.candidate(year).await;
        self.client()
            .select_leading_enterprise(self.admin().request(select_request(year, "")))
            .await
            .unwrap()
            .into_inner()
    }

    /// Enterprise 1's support policy for cohort `year`.
    async fn policy(&self, year: i32) -> pb::SupportPolicy {
        self.member(year).await;
        self.client()
            .create_support_policy(self.officer().request(policy_request(year, "")))
            .await
            .unwrap()
            .into_inner()
    }
}

fn certificate_request(request_id: &str) -> pb::CreateHighTechCertificateRequest {
    pb::CreateHighTechCertificateRequest {
        parent: ent(&uscc_for(1)),
        high_tech_certificate: Some(pb::HighTechCertificate {
            certificate_number: "GR2001".into(),
            issue_date: format!("{}-01-15", this_year() - 1),
            issuing_authority: "山东省高新技术企业认定管理机构".into(),
            technology_field: cpb::HighTechField::NewEnergyAndEnergySaving as i32,
            ..Default::default()
        }),
        request_id: request_id.to_string(),
    }
}

/// A cohort-size target for 2015-2020, before the seeded one (2021 onwards).
fn target_request(request_id: &str) -> pb::CreatePolicyTargetRequest {
    pb::CreatePolicyTargetRequest {
        policy_target_id: "cohort-2015".into(),
        policy_target: Some(pb::PolicyTarget {
            kind: pb::PolicyTargetKind::LeadingCohortSize as i32,
            value: 5,
            effective_from_year: 2015,
            effective_to_year: 2020,
            target_year: 0,
            source: "山东省科技厅 工作方案 (test)".into(),
            source_date: "2024-03-01".into(),
            note: "test target".into(),
            ..Default::default()
        }),
        request_id: request_id.to_string(),
    }
}

fn cohort_request(year: i32, request_id: &str) -> pb::CreateLeadingCohortRequest {
    pb::CreateLeadingCohortRequest {
        leading_cohort: Some(pb::LeadingCohort {
            year,
            description: format!("{year}年绿色低碳领军企业"),
            ..Default::default()
        }),
        request_id: request_id.to_string(),
    }
}

fn select_request(year: i32, request_id: &str) -> pb::SelectLeadingEnterpriseRequest {
    pb::SelectLeadingEnterpriseRequest {
        cohort: format!("leadingCohorts/{year}"),
        enterprise: ent(&uscc_for(1)),
        reason: "排名靠前，掌握核心技术".into(),
        request_id: request_id.to_string(),
    }
}

fn policy_request(year: i32, request_id: &str) -> pb::CreateSupportPolicyRequest {
    let code = uscc_for(1);
    pb::CreateSupportPolicyRequest {
        parent: ent(&code),
        support_policy: Some(pb::SupportPolicy {
            member: format!("leadingCohorts/{year}/members/{code}"),
            title: "一企一策：氢能装备".into(),
            summary: "支持企业建设研发平台".into(),
            measures: vec![pb::SupportMeasure {
                kind: pb::MeasureKind::Funding as i32,
                description: "省级科技计划项目资金".into(),
                amount_fen: 500_000_000,
                provider: "省科技厅".into(),
            }],
            responsible_officer: "officer-1".into(),
            responsible_officer_name: "李四".into(),
            milestones: vec![pb::Milestone {
                milestone_id: "rd-center".into(),
                title: "建成省级工程技术研究中心".into(),
                due_date: "2099-06-30".into(),
                state: pb::MilestoneState::Planned as i32,
                ..Default::default()
            }],
            ..Default::default()
        }),
        request_id: request_id.to_string(),
    }
}

fn zone_request(request_id: &str) -> pb::CreateZoneRequest {
    pb::CreateZoneRequest {
        zone_id: "jinan".into(),
        zone: Some(pb::Zone {
            display_name: "济南高新技术产业开发区".into(),
            level: pb::ZoneLevel::National as i32,
            division_code: "370100".into(),
            ..Default::default()
        }),
        request_id: request_id.to_string(),
    }
}

fn cluster_request(request_id: &str) -> pb::CreateClusterRequest {
    pb::CreateClusterRequest {
        cluster_id: "hydrogen".into(),
        cluster: Some(pb::Cluster {
            display_name: "山东氢能产业集群".into(),
            green_category: cpb::GreenCategory::CleanEnergy as i32,
            description: "氢能制取、储运与燃料电池".into(),
            members: vec![ent(&uscc_for(1))],
            start_year: 2021,
            ..Default::default()
        }),
        request_id: request_id.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// One case per mutating RPC
// ---------------------------------------------------------------------------------------------

async fn create_enterprise(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let req = pb::CreateEnterpriseRequest {
        enterprise: Some(enterprise(&uscc_for(3))),
        request_id: x.clone(),
    };
    // B's own create finds the enterprise registered.
    assert_isolated(
        env.db(),
        "CreateEnterprise",
        &x,
        &a,
        &b,
        Expect::Refused(Code::AlreadyExists),
        isolation_call!(env.client(), create_enterprise, req),
    )
    .await;
}

async fn update_enterprise(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = env.enterprises();
    let x = request_id();
    let req = pb::UpdateEnterpriseRequest {
        enterprise: Some(pb::Enterprise {
            name: ent(&uscc_for(1)),
            address: "山东省济南市历下区经十路".into(),
            ..Default::default()
        }),
        update_mask: mask(&["address"]),
        request_id: x.clone(),
    };
    // Enterprise 2 reaches only its own enterprise.
    assert_isolated(
        env.db(),
        "UpdateEnterprise",
        &x,
        &a,
        &b,
        Expect::Refused(Code::PermissionDenied),
        isolation_call!(env.client(), update_enterprise, req),
    )
    .await;
    // An officer with the same id does its own update (the same one, so it changes nothing).
    let (officer, _) = Principal::pair(&env.server, Role::Officer);
    let y = request_id();
    let req = pb::UpdateEnterpriseRequest {
        enterprise: Some(pb::Enterprise {
            name: ent(&uscc_for(1)),
            address: "山东省济南市历下区".into(),
            ..Default::default()
        }),
        update_mask: mask(&["address"]),
        request_id: y.clone(),
    };
    assert_isolated(
        env.db(),
        "UpdateEnterprise",
        &y,
        &a,
        &officer,
        // The officer's run finds the address already set: nothing changes, the same answer.
        Expect::FreshUnchanged,
        isolation_call!(env.client(), update_enterprise, req),
    )
    .await;
}

async fn revoke_enterprise(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let req = pb::RevokeEnterpriseRequest {
        name: ent(&uscc_for(1)),
        reason: "弄虚作假".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    // B's own revocation finds it revoked already.
    assert_isolated(
        env.db(),
        "RevokeEnterprise",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), revoke_enterprise, req),
    )
    .await;
}

async fn deregister_enterprise(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let req = pb::DeregisterEnterpriseRequest {
        name: ent(&uscc_for(1)),
        reason: "企业注销".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    assert_isolated(
        env.db(),
        "DeregisterEnterprise",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), deregister_enterprise, req),
    )
    .await;
}

async fn import_enterprises(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let message = pb::ImportEnterprisesRequest {
        rows: vec![pb::ImportEnterpriseRow {
            row_number: 1,
            enterprise: Some(enterprise(&uscc_for(3))),
        }],
        request_id: x.clone(),
        ..Default::default()
    };
    let client = env.client();
    // B's own run finds the row already imported: "unchanged", not A's "created".
    assert_isolated(env.db(), "ImportEnterprises", &x, &a, &b, Expect::Fresh, {
        move |p: Principal| {
            let mut c = client.clone();
            let m = message.clone();
            async move {
                encoded(
                    c.import_enterprises(p.request(tokio_stream::iter([m]).map(|m| m)))
                        .await,
                )
            }
        }
    })
    .await;
}

async fn import_high_tech_certificates(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let message = pb::ImportHighTechCertificatesRequest {
        rows: vec![pb::ImportHighTechCertificateRow {
            row_number: 1,
            enterprise: ent(&uscc_for(1)),
            high_tech_certificate: Some(pb::HighTechCertificate {
                certificate_number: "GR202337000777".into(),
                issue_date: format!("{}-12-01", this_year() - 1),
                technology_field: qilu_proto::common::HighTechField::NewMaterials as i32,
                ..Default::default()
            }),
            annual_reports: Vec::new(),
        }],
        request_id: x.clone(),
        ..Default::default()
    };
    let client = env.client();
    // B's own run finds the certificate already imported: "unchanged", not A's "created".
    assert_isolated(
        env.db(),
        "ImportHighTechCertificates",
        &x,
        &a,
        &b,
        Expect::Fresh,
        {
            move |p: Principal| {
                let mut c = client.clone();
                let m = message.clone();
                async move {
                    encoded(
                        c.import_high_tech_certificates(
                            p.request(tokio_stream::iter([m]).map(|m| m)),
                        )
                        .await,
                    )
                }
            }
        },
    )
    .await;
}

async fn import_annual_figures(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let message = pb::ImportAnnualFiguresRequest {
        rows: vec![pb::ImportAnnualFiguresRow {
            row_number: 1,
            annual_figures: Some(pb::AnnualFigures {
                name: format!("{}/annualFigures/{}", ent(&uscc_for(1)), this_year() - 1),
                employees: Some(pb::ReportedAmount {
                    value: 120,
                    source: pb::FigureSource::AuditedStatement as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }],
        request_id: x.clone(),
        ..Default::default()
    };
    let client = env.client();
    // B's own run finds the figures already imported: "unchanged", not A's "created".
    assert_isolated(
        env.db(),
        "ImportAnnualFigures",
        &x,
        &a,
        &b,
        Expect::Fresh,
        {
            move |p: Principal| {
                let mut c = client.clone();
                let m = message.clone();
                async move {
                    encoded(
                        c.import_annual_figures(p.request(tokio_stream::iter([m]).map(|m| m)))
                            .await,
                    )
                }
            }
        },
    )
    .await;
}

async fn update_annual_figures(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = env.enterprises();
    let x = request_id();
    let year = this_year() - 1;
    let req = pb::UpdateAnnualFiguresRequest {
        annual_figures: Some(pb::AnnualFigures {
            name: format!("{}/annualFigures/{year}", ent(&uscc_for(1))),
            employees: Some(pb::ReportedAmount {
                value: 200,
                source: pb::FigureSource::EnterpriseDeclaration as i32,
                reference: String::new(),
                update_time: None,
            }),
            ..Default::default()
        }),
        update_mask: mask(&["employees"]),
        allow_missing: true,
        request_id: x.clone(),
    };
    assert_isolated(
        env.db(),
        "UpdateAnnualFigures",
        &x,
        &a,
        &b,
        Expect::Refused(Code::PermissionDenied),
        isolation_call!(env.client(), update_annual_figures, req),
    )
    .await;
}

async fn create_high_tech_certificate(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    assert_isolated(
        env.db(),
        "CreateHighTechCertificate",
        &x,
        &a,
        &b,
        Expect::Refused(Code::AlreadyExists),
        isolation_call!(
            env.client(),
            create_high_tech_certificate,
            certificate_request(&x)
        ),
    )
    .await;
}

async fn file_annual_report(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let cert = env.certificate().await;
    let (a, b) = env.enterprises();
    let x = request_id();
    let req = pb::FileAnnualReportRequest {
        name: cert.name.clone(),
        report_year: this_year() - 1,
        request_id: x.clone(),
        ..Default::default()
    };
    assert_isolated(
        env.db(),
        "FileAnnualReport",
        &x,
        &a,
        &b,
        Expect::Refused(Code::PermissionDenied),
        isolation_call!(env.client(), file_annual_report, req),
    )
    .await;
}

async fn revoke_high_tech_certificate(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let cert = env.certificate().await;
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let req = pb::RevokeHighTechCertificateRequest {
        name: cert.name.clone(),
        ground: pb::RevocationGround::Fraud as i32,
        reason: "申报材料弄虚作假".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    assert_isolated(
        env.db(),
        "RevokeHighTechCertificate",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), revoke_high_tech_certificate, req),
    )
    .await;
}

async fn create_leading_cohort(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Admin);
    let x = request_id();
    assert_isolated(
        env.db(),
        "CreateLeadingCohort",
        &x,
        &a,
        &b,
        Expect::Refused(Code::AlreadyExists),
        isolation_call!(
            env.client(),
            create_leading_cohort,
            cohort_request(2030, &x)
        ),
    )
    .await;
}

async fn select_leading_enterprise(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    env.candidate(2030).await;
    let (a, b) = Principal::pair(&env.server, Role::Admin);
    let x = request_id();
    // B's own selection finds the enterprise selected.
    assert_isolated(
        env.db(),
        "SelectLeadingEnterprise",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(
            env.client(),
            select_leading_enterprise,
            select_request(2030, &x)
        ),
    )
    .await;
}

async fn deselect_leading_enterprise(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let member = env.member(2030).await;
    let (a, b) = Principal::pair(&env.server, Role::Admin);
    let x = request_id();
    let req = pb::DeselectLeadingEnterpriseRequest {
        name: member.name.clone(),
        reason: "不再符合条件".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    assert_isolated(
        env.db(),
        "DeselectLeadingEnterprise",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), deselect_leading_enterprise, req),
    )
    .await;
}

async fn create_support_policy(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    env.member(2030).await;
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    // One policy per enterprise: B's own create finds A's.
    assert_isolated(
        env.db(),
        "CreateSupportPolicy",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(
            env.client(),
            create_support_policy,
            policy_request(2030, &x)
        ),
    )
    .await;
}

async fn update_support_policy(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let policy = env.policy(2030).await;
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let req = pb::UpdateSupportPolicyRequest {
        support_policy: Some(pb::SupportPolicy {
            name: policy.name.clone(),
            etag: policy.etag.clone(),
            summary: "支持企业建设研发平台并扩大产能".into(),
            ..Default::default()
        }),
        update_mask: mask(&["summary"]),
        request_id: x.clone(),
    };
    // B's own update carries the etag A's update made stale.
    assert_isolated(
        env.db(),
        "UpdateSupportPolicy",
        &x,
        &a,
        &b,
        Expect::Refused(Code::Aborted),
        isolation_call!(env.client(), update_support_policy, req),
    )
    .await;
}

async fn record_support_policy_review(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let policy = env.policy(2030).await;
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let req = pb::RecordSupportPolicyReviewRequest {
        name: policy.name.clone(),
        conclusion: pb::PolicyReviewConclusion::OnTrack as i32,
        comment: "进展顺利".into(),
        request_id: x.clone(),
        ..Default::default()
    };
    // B records its own review.
    assert_isolated(
        env.db(),
        "RecordSupportPolicyReview",
        &x,
        &a,
        &b,
        Expect::Fresh,
        isolation_call!(env.client(), record_support_policy_review, req),
    )
    .await;
}

async fn create_zone(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    assert_isolated(
        env.db(),
        "CreateZone",
        &x,
        &a,
        &b,
        Expect::Refused(Code::AlreadyExists),
        isolation_call!(env.client(), create_zone, zone_request(&x)),
    )
    .await;
}

async fn update_zone(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let zone = env
        .client()
        .create_zone(env.officer().request(zone_request("")))
        .await
        .unwrap()
        .into_inner();
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let req = pb::UpdateZoneRequest {
        zone: Some(pb::Zone {
            name: zone.name.clone(),
            etag: zone.etag.clone(),
            display_name: "济南国家高新技术产业开发区".into(),
            ..Default::default()
        }),
        update_mask: mask(&["display_name"]),
        request_id: x.clone(),
    };
    assert_isolated(
        env.db(),
        "UpdateZone",
        &x,
        &a,
        &b,
        Expect::Refused(Code::Aborted),
        isolation_call!(env.client(), update_zone, req),
    )
    .await;
}

async fn create_cluster(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    assert_isolated(
        env.db(),
        "CreateCluster",
        &x,
        &a,
        &b,
        Expect::Refused(Code::AlreadyExists),
        isolation_call!(env.client(), create_cluster, cluster_request(&x)),
    )
    .await;
}

async fn update_cluster(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let cluster = env
        .client()
        .create_cluster(env.officer().request(cluster_request("")))
        .await
        .unwrap()
        .into_inner();
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let req = pb::UpdateClusterRequest {
        cluster: Some(pb::Cluster {
            name: cluster.name.clone(),
            etag: cluster.etag.clone(),
            description: "氢能制取、储运、加注与燃料电池".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
        request_id: x.clone(),
    };
    assert_isolated(
        env.db(),
        "UpdateCluster",
        &x,
        &a,
        &b,
        Expect::Refused(Code::Aborted),
        isolation_call!(env.client(), update_cluster, req),
    )
    .await;
}

async fn create_policy_target(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Admin);
    let x = request_id();
    // B's own target overlaps the one A's request created.
    assert_isolated(
        env.db(),
        "CreatePolicyTarget",
        &x,
        &a,
        &b,
        Expect::Refused(Code::FailedPrecondition),
        isolation_call!(env.client(), create_policy_target, target_request(&x)),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// The migration from the unscoped table
// ---------------------------------------------------------------------------------------------

/// The schema before records had owners: only the first common migration.
struct Unscoped;

impl MigratorTrait for Unscoped {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(qilu_common::migration::CreateAuditAndIdempotency)]
    }
}

async fn exec(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) {
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        let mut n = 0;
        sql.chars()
            .map(|c| {
                if c == '?' {
                    n += 1;
                    format!("${n}")
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        sql.to_string()
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

fn staff(subject: &str, roles: &[Role]) -> Caller {
    Caller {
        subject: subject.into(),
        roles: roles.to_vec(),
        enterprise: None,
        expert: None,
    }
}

/// Old rows: an officer's (attributable), an enterprise's (its claim is not in the audit log),
/// an import's (its batches are audited under the call's x-request-id) and one with two actors.
/// After the upgrade: the officer's record replays to that officer alone, the others to no one,
/// every row is kept, and the registry's own migrations and RPCs work on top.
async fn migration_attributes_staff_records_and_retires_the_rest(backend: Backend) {
    let Some(test_db) = TestDb::new(backend).await else {
        return;
    };
    let config = qilu_common::testing::test_config(&[]);
    let db = qilu_common::db::connect(&test_db.url, &config.database)
        .await
        .unwrap();
    Unscoped::up(&db, None).await.unwrap();
    let method = "qilu.registry.v1.EnterpriseRegistryService/UpdateEnterprise";
    let ids: Vec<String> = (0..4).map(|_| request_id()).collect();
    let events = [
        (&ids[0], "officer-1", "admin,officer"),
        (&ids[0], "officer-1", "admin,officer"),
        (&ids[1], "enterprise-1", "enterprise"),
        (&ids[3], "officer-1", "officer"),
        (&ids[3], "officer-2", "officer"),
    ];
    for (seq, (id, actor, roles)) in events.iter().enumerate() {
        exec(
            &db,
            "INSERT INTO audit_event (sequence, commit_time_us, actor, actor_roles, method, \
             resource, request_id, state_json, previous_hash, hash) \
             VALUES (?, 1, ?, ?, ?, 'enterprises/x', ?, '{}', 'p', 'h')",
            vec![
                (seq as i64 + 1).into(),
                actor.to_string().into(),
                roles.to_string().into(),
                method.into(),
                id.to_string().into(),
            ],
        )
        .await;
    }
    for (i, id) in ids.iter().enumerate() {
        exec(
            &db,
            "INSERT INTO idempotency (request_id, method, fingerprint, response, created_at_us) \
             VALUES (?, ?, ?, ?, 1)",
            vec![
                id.to_string().into(),
                method.into(),
                format!("fp{i}").into(),
                vec![i as u8; 3].into(),
            ],
        )
        .await;
    }
    // The upgrade: the registry's full migrator, as `migrate` runs it.
    qilu_common::db::migrate::<qilu_registry::store::migration::Migrator>(&db, "registry")
        .await
        .unwrap();

    let replay = |caller: Caller, i: usize| {
        let db = db.clone();
        let id = RequestId::parse(&ids[i]).unwrap().unwrap();
        async move {
            idempotency::replay(
                &db,
                &CallerScope::of(&caller),
                &id,
                method,
                &format!("fp{i}"),
            )
            .await
            .unwrap()
        }
    };
    let officer = staff("officer-1", &[Role::Officer, Role::Admin]);
    assert_eq!(replay(officer.clone(), 0).await, Some(vec![0u8; 3]));
    // Not to another officer, nor to the same subject with other roles.
    assert_eq!(
        replay(staff("officer-2", &[Role::Officer, Role::Admin]), 0).await,
        None
    );
    assert_eq!(replay(staff("officer-1", &[Role::Officer]), 0).await, None);
    // The enterprise's, the import's and the two-actor record are retired: no one replays them.
    let enterprise = Caller {
        subject: "enterprise-1".into(),
        roles: vec![Role::Enterprise],
        enterprise: Some(uscc_for(1)),
        expert: None,
    };
    assert_eq!(replay(enterprise, 1).await, None);
    assert_eq!(replay(officer.clone(), 2).await, None);
    assert_eq!(replay(staff("officer-1", &[Role::Officer]), 3).await, None);
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT caller_scope, request_id FROM idempotency ORDER BY request_id",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 4, "every record is kept");
    let unattributed = rows
        .iter()
        .filter(|r| r.try_get::<String>("", "caller_scope").unwrap() == UNATTRIBUTED)
        .count();
    assert_eq!(unattributed, 3);
    // The backfill's temporary index is gone.
    assert!(
        !sea_orm_migration::SchemaManager::new(&db)
            .has_index("audit_event", "audit_event_request_id_backfill")
            .await
            .unwrap()
    );
    // The same caller reusing an attributed id for another request: still REQUEST_ID_REUSED.
    let id = RequestId::parse(&ids[0]).unwrap().unwrap();
    let err = idempotency::replay(&db, &CallerScope::of(&officer), &id, method, "other")
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("REQUEST_ID_REUSED"), "{err:?}");
    // A new record under a retired id is the caller's own.
    idempotency::store(
        &db,
        &CallerScope::of(&officer),
        &RequestId::parse(&ids[2]).unwrap().unwrap(),
        method,
        "fp-new".into(),
        vec![9],
        2,
    )
    .await
    .unwrap();
    db.close().await.unwrap();
}

async fn create_import(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let x = request_id();
    let req = pb::CreateImportRequest {
        import: Some(pb::Import {
            kind: pb::ImportKind::Enterprises as i32,
            ..Default::default()
        }),
        request_id: x.clone(),
    };
    // B's own create is B's own import, never A's.
    assert_isolated(
        env.db(),
        "CreateImport",
        &x,
        &a,
        &b,
        Expect::Fresh,
        isolation_call!(env.client(), create_import, req),
    )
    .await;
}

/// `StartImport` keeps its request ids with its operations (`operation.request_key`, scoped to
/// the caller), not in the idempotency table the other cases count: A's retry returns A's
/// operation; B (another officer) with A's id gets its own treatment — refused, the import
/// being run by A's operation — never A's operation.
async fn start_import(backend: Backend) {
    let Some(env) = Env::start(backend).await else {
        return;
    };
    let mut c = env.client();
    let import = c
        .create_import(env.officer().request(pb::CreateImportRequest {
            import: Some(pb::Import {
                kind: pb::ImportKind::Enterprises as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    let (a, b) = Principal::pair(&env.server, Role::Officer);
    let req = pb::StartImportRequest {
        name: import.name.clone(),
        request_id: request_id(),
    };
    let first = c
        .start_import(a.request(req.clone()))
        .await
        .unwrap()
        .into_inner();
    let again = c
        .start_import(a.request(req.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.name, first.name, "A's retry is A's operation");
    let theirs = c.start_import(b.request(req.clone())).await.unwrap_err();
    assert_eq!(theirs.code(), Code::FailedPrecondition, "{theirs:?}");
    let last = c.start_import(a.request(req)).await.unwrap().into_inner();
    assert_eq!(last.name, first.name, "A's record is untouched by B");
}
