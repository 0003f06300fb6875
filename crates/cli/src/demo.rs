//! `qilu dev --demo`: loads a realistic programme year (docs/design.md §9) through the public RPCs,
//! exactly as operators, enterprises and experts would, so a newcomer sees a populated suite.
//!
//! Everything is generated deterministically (a fixed seed, fixed dates) and every mutation
//! carries a `request_id` derived from what it does, so a second run on the same data directory
//! replays the first run's answers instead of writing anything twice.

use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::config::Config;
use qilu_proto::awards as apb;
use qilu_proto::awards::award_allocation_service_client::AwardAllocationServiceClient;
use qilu_proto::common::{GreenCategory, HighTechField, IndustryField};
use qilu_proto::registry as rpb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review as vpb;
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use qilu_uscc::{check_character, organization_code_check_character};
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::client::describe;

/// The cohort year the demo selects leading enterprises for; figures are of the two years before.
const COHORT_YEAR: i32 = 2025;
/// Enterprises per prefecture-level city.
const PER_CITY: usize = 20;

/// Shandong's 16 prefecture-level cities: GB/T 2260 prefix, Chinese name.
const CITIES: [(&str, &str); 16] = [
    ("3701", "济南"),
    ("3702", "青岛"),
    ("3703", "淄博"),
    ("3704", "枣庄"),
    ("3705", "东营"),
    ("3706", "烟台"),
    ("3707", "潍坊"),
    ("3708", "济宁"),
    ("3709", "泰安"),
    ("3710", "威海"),
    ("3711", "日照"),
    ("3713", "临沂"),
    ("3714", "德州"),
    ("3715", "聊城"),
    ("3716", "滨州"),
    ("3717", "菏泽"),
];

/// What an enterprise does: name suffix, state high-tech field, green category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sector {
    Hydrogen,
    Solar,
    Storage,
    Materials,
    Environment,
    Biomedicine,
    Electronics,
    Equipment,
    EnergyServices,
}

impl Sector {
    const ALL: [Sector; 9] = [
        Sector::Hydrogen,
        Sector::Solar,
        Sector::Storage,
        Sector::Materials,
        Sector::Environment,
        Sector::Biomedicine,
        Sector::Electronics,
        Sector::Equipment,
        Sector::EnergyServices,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Sector::Hydrogen => "氢能科技有限公司",
            Sector::Solar => "光伏能源有限公司",
            Sector::Storage => "储能技术有限公司",
            Sector::Materials => "新材料股份有限公司",
            Sector::Environment => "环保科技有限公司",
            Sector::Biomedicine => "生物医药有限公司",
            Sector::Electronics => "电子信息技术有限公司",
            Sector::Equipment => "智能装备有限公司",
            Sector::EnergyServices => "节能服务有限公司",
        }
    }

    fn fields(self) -> Vec<i32> {
        use HighTechField as F;
        let f: &[F] = match self {
            Sector::Hydrogen => &[F::NewEnergyAndEnergySaving, F::NewMaterials],
            Sector::Solar | Sector::Storage => &[F::NewEnergyAndEnergySaving],
            Sector::Materials => &[F::NewMaterials],
            Sector::Environment => &[F::ResourcesAndEnvironment],
            Sector::Biomedicine => &[F::BiologyAndNewMedicine],
            Sector::Electronics => &[F::ElectronicInformation],
            Sector::Equipment => &[F::AdvancedManufacturingAndAutomation],
            Sector::EnergyServices => &[F::HighTechServices, F::NewEnergyAndEnergySaving],
        };
        f.iter().map(|x| *x as i32).collect()
    }

    fn green(self) -> GreenCategory {
        match self {
            Sector::Hydrogen | Sector::Solar | Sector::Storage => GreenCategory::CleanEnergy,
            Sector::Materials | Sector::Equipment => GreenCategory::CleanProduction,
            Sector::Environment => GreenCategory::EnergySavingAndEnvironmentalProtection,
            Sector::EnergyServices => GreenCategory::GreenServices,
            Sector::Electronics => GreenCategory::GreenInfrastructureUpgrade,
            Sector::Biomedicine => GreenCategory::Unspecified,
        }
    }
}

/// splitmix64: a tiny deterministic generator, so the demo data are the same on every run.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1).max(1) as u64;
        lo + (self.next() % span) as i64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// One generated enterprise.
#[derive(Debug, Clone)]
struct Firm {
    uscc: String,
    name: String,
    sector: Sector,
}

/// A GB 32100 code: `91` (market regulation, enterprise), the division, a GB 11714 organisation
/// code with its own check character, and the GB 32100 check character.
fn make_uscc(division: &str, serial: usize) -> String {
    let org8 = format!("MA3D{serial:04}");
    let org_check = organization_code_check_character(&org8).unwrap_or('0');
    let body = format!("91{division}{org8}{org_check}");
    let check = check_character(&body).unwrap_or('0');
    format!("{body}{check}")
}

const TRADE: [&str; 24] = [
    "华", "鲁", "泰", "齐", "瑞", "恒", "信", "海", "明", "正", "新", "通", "润", "宏", "盛", "达",
    "源", "嘉", "丰", "岱", "沂", "蓝", "峰", "诚",
];
const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "孙", "周", "吴", "徐", "马",
];
const GIVEN: [&str; 12] = [
    "建国", "海涛", "丽娜", "志强", "晓东", "春华", "文静", "国栋", "雪梅", "立新", "宏伟", "秀英",
];
const ROADS: [&str; 8] = [
    "科技路",
    "创新大道",
    "高新路",
    "工业南路",
    "经十路",
    "海尔路",
    "新材料大道",
    "环保路",
];

/// The enterprises of the demo: 16 cities × 20, plus a Laiwu-coded steelworks (3712, now Jinan)
/// whose achievement rule screening vetoes.
fn firms() -> (Vec<Firm>, Vec<rpb::ImportEnterpriseRow>) {
    let mut rng = Rng(0x51_4C55_2021);
    let mut firms = Vec::new();
    let mut rows = Vec::new();
    let mut serial = 1;
    let steel = Firm {
        uscc: make_uscc("371202", serial),
        name: "济南钢城特钢有限公司".into(),
        sector: Sector::Equipment,
    };
    rows.push(rpb::ImportEnterpriseRow {
        row_number: serial as i64,
        enterprise: Some(rpb::Enterprise {
            uscc: steel.uscc.clone(),
            display_name: steel.name.clone(),
            legal_representative: "钢建国".into(),
            established_date: "1998-06-18".into(),
            address: "济南市钢城区钢都大街1号".into(),
            technology_fields: vec![HighTechField::AdvancedManufacturingAndAutomation as i32],
            ..Default::default()
        }),
    });
    firms.push(steel);
    for (prefix, city) in CITIES {
        for k in 0..PER_CITY {
            serial += 1;
            let sector = Sector::ALL[(k + serial) % Sector::ALL.len()];
            let division = format!("{prefix}{:02}", 2 + k % 4);
            let uscc = make_uscc(&division, serial);
            let name = format!(
                "{city}{}{}{}",
                rng.pick(&TRADE),
                rng.pick(&TRADE),
                sector.suffix()
            );
            let zone = match (prefix, k % 3) {
                ("3701", 0 | 1) => "zones/jinan",
                ("3702", 0 | 1) => "zones/qingdao",
                _ => "",
            };
            let established = format!(
                "{}-{:02}-{:02}",
                rng.range(1998, 2021),
                rng.range(1, 12),
                rng.range(1, 28)
            );
            rows.push(rpb::ImportEnterpriseRow {
                row_number: serial as i64,
                enterprise: Some(rpb::Enterprise {
                    uscc: uscc.clone(),
                    display_name: name.clone(),
                    legal_representative: format!("{}{}", rng.pick(&SURNAMES), rng.pick(&GIVEN)),
                    established_date: established,
                    address: format!("{city}市{}{}号", rng.pick(&ROADS), rng.range(1, 2999)),
                    zone: zone.to_string(),
                    technology_fields: sector.fields(),
                    green_category: sector.green() as i32,
                    ..Default::default()
                }),
            });
            firms.push(Firm { uscc, name, sector });
        }
    }
    (firms, rows)
}

/// A UUID derived from what a request does, so a repeated demo run replays it.
fn rid(key: &str) -> String {
    let digest = Sha256::digest(format!("qilu-demo-v1:{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn amount(value: i64, reference: &str) -> Option<rpb::ReportedAmount> {
    Some(rpb::ReportedAmount {
        value,
        source: rpb::FigureSource::AuditedStatement as i32,
        reference: reference.to_string(),
        update_time: None,
    })
}

fn flag(value: bool, reference: &str) -> Option<rpb::ReportedFlag> {
    Some(rpb::ReportedFlag {
        value,
        source: rpb::FigureSource::AuditedStatement as i32,
        reference: reference.to_string(),
        update_time: None,
    })
}

/// What the demo loaded, for the closing printout.
#[derive(Debug, Default)]
struct Loaded {
    lines: Vec<String>,
}

struct Demo {
    channel: Channel,
    config: Config,
    admin: String,
}

impl Demo {
    fn token(&self, subject: &str, role: Role, claim: Option<&str>) -> Result<String, String> {
        mint_hs256(
            &self.config.auth,
            &TokenRequest {
                subject: subject.to_string(),
                roles: vec![role],
                enterprise: (role == Role::Enterprise).then(|| claim.unwrap_or("").to_string()),
                expert: (role == Role::Expert).then(|| claim.unwrap_or("").to_string()),
                ttl_seconds: 3600,
            },
        )
    }

    fn req<T>(token: &str, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Ok(value) = format!("Bearer {token}").parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    fn admin<T>(&self, message: T) -> Request<T> {
        Self::req(&self.admin, message)
    }

    fn registry(&self) -> EnterpriseRegistryServiceClient<Channel> {
        EnterpriseRegistryServiceClient::new(self.channel.clone())
    }

    fn review(&self) -> AchievementReviewServiceClient<Channel> {
        AchievementReviewServiceClient::new(self.channel.clone())
    }

    fn awards(&self) -> AwardAllocationServiceClient<Channel> {
        AwardAllocationServiceClient::new(self.channel.clone())
    }
}

/// `step: CODE: message` (with field violations) for a failed demo call.
fn at(step: &str) -> impl Fn(Status) -> String + '_ {
    move |s| format!("demo step {step:?} failed: {}", describe(&s))
}

/// Loads the programme year into the suite at `addr`; returns what was loaded, line by line.
pub async fn load(config: &Config, addr: &str) -> Result<Vec<String>, String> {
    let channel = tonic::transport::Endpoint::from_shared(addr.to_string())
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("demo: cannot connect to {addr}: {e}"))?;
    let admin = mint_hs256(
        &config.auth,
        &TokenRequest {
            subject: "demo-admin".into(),
            roles: vec![Role::Admin],
            enterprise: None,
            expert: None,
            ttl_seconds: 3600,
        },
    )?;
    let demo = Demo {
        channel,
        config: config.clone(),
        admin,
    };
    let mut loaded = Loaded::default();
    let firms = registry_year(&demo, &mut loaded).await?;
    let approved = review_year(&demo, &firms, &mut loaded).await?;
    awards_year(&demo, &approved, &mut loaded).await?;
    Ok(loaded.lines)
}

/// Registry: policy targets, zones, enterprises (streamed import), a cluster, annual figures,
/// certificates with their annual reports, the leading cohort with support policies.
async fn registry_year(demo: &Demo, loaded: &mut Loaded) -> Result<Vec<Firm>, String> {
    let mut registry = demo.registry();
    // The programme's policy targets are seeded by the registry's migrations; show them.
    let targets = registry
        .list_policy_targets(demo.admin(rpb::ListPolicyTargetsRequest {
            filter: "state = POLICY_TARGET_STATE_IN_FORCE".into(),
            ..Default::default()
        }))
        .await
        .map_err(at("policy targets"))?
        .into_inner()
        .policy_targets;
    loaded.lines.push(format!(
        "policy targets in force (seeded): {}",
        targets
            .iter()
            .map(|t| t.name.trim_start_matches("policyTargets/"))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    for (id, display_name, division, approved) in [
        ("jinan", "济南高新技术产业开发区", "370100", "1991-03-06"),
        ("qingdao", "青岛高新技术产业开发区", "370200", "1992-11-09"),
    ] {
        registry
            .create_zone(demo.admin(rpb::CreateZoneRequest {
                zone_id: id.into(),
                zone: Some(rpb::Zone {
                    display_name: display_name.into(),
                    level: rpb::ZoneLevel::National as i32,
                    division_code: division.into(),
                    approval_date: approved.into(),
                    ..Default::default()
                }),
                request_id: rid(&format!("zone/{id}")),
            }))
            .await
            .map_err(at("zones"))?;
    }
    loaded
        .lines
        .push("zones: zones/jinan, zones/qingdao (national high-tech zones)".into());

    // Enterprises arrive by streaming import, as an operator's CSV would.
    let (firms, rows) = firms();
    let mut messages: Vec<rpb::ImportEnterprisesRequest> = rows
        .chunks(100)
        .map(|chunk| rpb::ImportEnterprisesRequest {
            rows: chunk.to_vec(),
            ..Default::default()
        })
        .collect();
    if let Some(first) = messages.first_mut() {
        first.request_id = rid("import/enterprises");
        first.rejected_rows_only = true;
    }
    let imported = registry
        .import_enterprises(demo.admin(tokio_stream::iter(messages)))
        .await
        .map_err(at("enterprise import"))?
        .into_inner();
    if imported.rejected_count > 0 {
        let first = imported
            .row_results
            .first()
            .map(|r| format!("{r:?}"))
            .unwrap_or_default();
        return Err(format!(
            "demo: {} generated enterprises were rejected, e.g. {first}",
            imported.rejected_count
        ));
    }
    loaded.lines.push(format!(
        "enterprises: {} across Shandong's 16 prefecture-level cities (streamed import: {} created, {} updated, {} unchanged)",
        firms.len(),
        imported.created_count,
        imported.updated_count,
        imported.unchanged_count
    ));

    // Annual figures for two fiscal years: every hydrogen firm (the cluster), and every third
    // firm with a green category.
    let mut rng = Rng(0xF16_2024);
    let with_figures: Vec<&Firm> = firms
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            f.sector == Sector::Hydrogen
                || (i % 3 == 0 && f.sector.green() != GreenCategory::Unspecified)
        })
        .map(|(_, f)| f)
        .collect();
    let mut revenue_of = std::collections::HashMap::new();
    for f in &with_figures {
        // 30 M – 3 bn yuan (cluster members 30 M – 450 M), in fen.
        let top = if f.sector == Sector::Hydrogen {
            45_000
        } else {
            300_000
        };
        let revenue_2024 = rng.range(3_000, top) * 1_000_000;
        let growth_pct = rng.range(-5, 40);
        let revenue_2023 = revenue_2024 * 100 / (100 + growth_pct);
        let rd_pct_x10 = rng.range(30, 120); // 3.0% – 12.0%
        let employees = rng.range(80, 3000);
        let st_share = rng.range(12, 40);
        let patents = rng.range(2, 80);
        let (ip, conversion, management, growth) = (
            rng.range(18, 30),
            rng.range(18, 30),
            rng.range(12, 20),
            rng.range(8, 20),
        );
        for (year, revenue) in [(2023, revenue_2023), (2024, revenue_2024)] {
            let reference = format!("鲁审字〔{}〕第{}号", year + 1, &f.uscc[10..16]);
            let rd = revenue * rd_pct_x10 / 1000;
            let figures = rpb::AnnualFigures {
                name: format!("enterprises/{}/annualFigures/{year}", f.uscc),
                revenue_fen: amount(revenue, &reference),
                rd_expense_fen: amount(rd, &reference),
                rd_domestic_expense_fen: amount(rd * 9 / 10, &reference),
                high_tech_product_revenue_fen: amount(revenue * 3 / 4, &reference),
                employees: amount(employees, &reference),
                st_staff: amount(employees * st_share / 100, &reference),
                invention_patents: amount(patents, &reference),
                core_ip_owned: flag(true, &reference),
                innovation_ip_points: amount(ip, &reference),
                innovation_conversion_points: amount(conversion, &reference),
                innovation_rd_management_points: amount(management, &reference),
                innovation_growth_points: amount(growth, &reference),
                major_incident: flag(false, &reference),
                ..Default::default()
            };
            let paths = [
                "revenue_fen",
                "rd_expense_fen",
                "rd_domestic_expense_fen",
                "high_tech_product_revenue_fen",
                "employees",
                "st_staff",
                "invention_patents",
                "core_ip_owned",
                "innovation_ip_points",
                "innovation_conversion_points",
                "innovation_rd_management_points",
                "innovation_growth_points",
                "major_incident",
            ];
            registry
                .update_annual_figures(demo.admin(rpb::UpdateAnnualFiguresRequest {
                    annual_figures: Some(figures),
                    update_mask: Some(prost_types::FieldMask {
                        paths: paths.iter().map(|p| p.to_string()).collect(),
                    }),
                    allow_missing: true,
                    request_id: rid(&format!("figures/{}/{year}", f.uscc)),
                }))
                .await
                .map_err(at("annual figures"))?;
        }
        revenue_of.insert(f.uscc.clone(), revenue_2024);
    }
    loaded.lines.push(format!(
        "annual figures: fiscal 2023 and 2024 for {} enterprises (audited statements)",
        with_figures.len()
    ));

    // The hydrogen-energy cluster; its target comes from the CLUSTER_SCALE policy target.
    let members: Vec<String> = firms
        .iter()
        .filter(|f| f.sector == Sector::Hydrogen)
        .map(|f| format!("enterprises/{}", f.uscc))
        .collect();
    registry
        .create_cluster(
            demo.admin(rpb::CreateClusterRequest {
                cluster_id: "hydrogen-energy".into(),
                cluster: Some(rpb::Cluster {
                    display_name: "山东氢能产业集群".into(),
                    green_category: GreenCategory::CleanEnergy as i32,
                    description:
                        "“鲁氢经济带”: 济南、青岛、淄博、潍坊等地的制氢、储运、燃料电池与整车产业链"
                            .into(),
                    members: members.clone(),
                    start_year: 2021,
                    ..Default::default()
                }),
                request_id: rid("cluster/hydrogen-energy"),
            }),
        )
        .await
        .map_err(at("cluster"))?;
    let progress = registry
        .get_cluster_progress(demo.admin(rpb::GetClusterProgressRequest {
            name: "clusters/hydrogen-energy".into(),
            as_of_year: 0,
        }))
        .await
        .map_err(at("cluster progress"))?
        .into_inner();
    loaded.lines.push(format!(
        "cluster: clusters/hydrogen-energy, {} members; {}",
        members.len(),
        progress.explanation
    ));

    // High-tech certificates for the green firms with figures, each with its annual reports.
    let certified: Vec<&Firm> = with_figures
        .iter()
        .copied()
        .filter(|f| f.sector.green() != GreenCategory::Unspecified)
        .enumerate()
        .filter(|(i, _)| i % 3 != 2)
        .map(|(_, f)| f)
        .collect();
    for (i, f) in certified.iter().enumerate() {
        let number = format!("GR2024370{:05}", i + 1);
        let cert = registry
            .create_high_tech_certificate(demo.admin(rpb::CreateHighTechCertificateRequest {
                parent: format!("enterprises/{}", f.uscc),
                high_tech_certificate: Some(rpb::HighTechCertificate {
                    certificate_number: number.clone(),
                    issue_date: format!("2024-12-{:02}", 2 + i % 20),
                    issuing_authority: "山东省高新技术企业认定管理机构".into(),
                    technology_field: f.sector.fields()[0],
                    ..Default::default()
                }),
                request_id: rid(&format!("certificate/{number}")),
            }))
            .await
            .map_err(at("certificates"))?
            .into_inner();
        for (year, filed) in [(2024, "2025-05-20"), (2025, "2026-05-15")] {
            registry
                .file_annual_report(demo.admin(rpb::FileAnnualReportRequest {
                    name: cert.name.clone(),
                    report_year: year,
                    filed_date: filed.into(),
                    etag: String::new(),
                    request_id: rid(&format!("annual-report/{number}/{year}")),
                }))
                .await
                .map_err(at("certificate annual reports"))?;
        }
    }
    loaded.lines.push(format!(
        "high-tech certificates: {} issued in December 2024, annual reports for 2024 and 2025 filed",
        certified.len()
    ));

    // The leading cohort: rank, select the top ten, one support policy each.
    registry
        .create_leading_cohort(demo.admin(rpb::CreateLeadingCohortRequest {
            leading_cohort: Some(rpb::LeadingCohort {
                year: COHORT_YEAR,
                description: format!(
                    "{COHORT_YEAR}年度绿色低碳领军企业 (demo cohort, scored on fiscal {})",
                    COHORT_YEAR - 1
                ),
                ..Default::default()
            }),
            request_id: rid(&format!("cohort/{COHORT_YEAR}")),
        }))
        .await
        .map_err(at("leading cohort"))?;
    let cohort = format!("leadingCohorts/{COHORT_YEAR}");
    let ranked = registry
        .rank_leading_candidates(demo.admin(rpb::RankLeadingCandidatesRequest {
            cohort: cohort.clone(),
            figures_year: COHORT_YEAR - 1,
            page_size: 10,
            page_token: String::new(),
            filter: "eligible = true".into(),
        }))
        .await
        .map_err(at("ranking leading candidates"))?
        .into_inner();
    for c in &ranked.candidates {
        let uscc = c.enterprise.trim_start_matches("enterprises/").to_string();
        registry
            .select_leading_enterprise(demo.admin(rpb::SelectLeadingEnterpriseRequest {
                cohort: cohort.clone(),
                enterprise: c.enterprise.clone(),
                reason: format!(
                    "排名第{}位 (rank {} of {}, score {}.{:03})",
                    c.rank,
                    c.rank,
                    ranked.total_size,
                    c.score_millipoints / 1000,
                    c.score_millipoints % 1000
                ),
                request_id: rid(&format!("select/{COHORT_YEAR}/{uscc}")),
            }))
            .await
            .map_err(at("selecting leading enterprises"))?;
        registry
            .create_support_policy(demo.admin(rpb::CreateSupportPolicyRequest {
                parent: c.enterprise.clone(),
                support_policy: Some(support_policy(&cohort, &uscc, &c.display_name)),
                request_id: rid(&format!("support-policy/{COHORT_YEAR}/{uscc}")),
            }))
            .await
            .map_err(at("support policies"))?;
    }
    loaded.lines.push(format!(
        "leading cohort {cohort}: {} of {} eligible candidates selected, each with its support policy (一企一策)",
        ranked.candidates.len(),
        ranked.total_size
    ));
    Ok(firms)
}

fn support_policy(cohort: &str, uscc: &str, name: &str) -> rpb::SupportPolicy {
    rpb::SupportPolicy {
        member: format!("{cohort}/members/{uscc}"),
        title: format!("{name}一企一策支持方案"),
        summary: "支持企业建设高水平研发平台、突破绿色低碳关键核心技术".into(),
        measures: vec![
            rpb::SupportMeasure {
                kind: rpb::MeasureKind::Funding as i32,
                description: "省科技创新发展资金支持关键核心技术攻关".into(),
                amount_fen: 500_000_000,
                provider: "省科技厅".into(),
            },
            rpb::SupportMeasure {
                kind: rpb::MeasureKind::Talent as i32,
                description: "泰山产业领军人才工程优先推荐".into(),
                amount_fen: 0,
                provider: "省委组织部".into(),
            },
        ],
        responsible_officer: "officer-demo".into(),
        responsible_officer_name: "王主任".into(),
        milestones: vec![
            rpb::Milestone {
                milestone_id: "rd-centre".into(),
                title: "建成省级工程技术研究中心".into(),
                due_date: "2026-06-30".into(),
                state: rpb::MilestoneState::InProgress as i32,
                ..Default::default()
            },
            rpb::Milestone {
                milestone_id: "patents".into(),
                title: "新增发明专利授权20件".into(),
                due_date: "2027-12-31".into(),
                state: rpb::MilestoneState::Planned as i32,
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// An approved achievement the awards part may apply with.
#[derive(Debug, Clone)]
struct Approved {
    name: String,
    owner: String,
    requested_fen: i64,
}

/// Review: experts; a steel achievement vetoed by rule; a biomedicine and a hydrogen achievement
/// reviewed by three experts each and approved; one without an energy figure left NEEDS_REVIEW.
async fn review_year(
    demo: &Demo,
    firms: &[Firm],
    loaded: &mut Loaded,
) -> Result<Vec<Approved>, String> {
    use IndustryField as I;
    let mut review = demo.review();
    let experts: [(&str, &str, &[I], &str); 6] = [
        ("zhang-wei", "张伟", &[I::Biomedicine], "山东大学"),
        ("li-na", "李娜", &[I::Biomedicine], "山东第一医科大学"),
        (
            "wang-fang",
            "王芳",
            &[I::Biomedicine, I::NewEnergy],
            "中国科学院青岛生物能源与过程研究所",
        ),
        ("liu-yang", "刘洋", &[I::NewEnergy], "中国石油大学(华东)"),
        (
            "chen-jing",
            "陈静",
            &[I::NewEnergy, I::HighEndEquipment],
            "山东科技大学",
        ),
        (
            "zhao-lei",
            "赵磊",
            &[I::HighEndEquipment, I::NewMaterials],
            "哈尔滨工业大学(威海)",
        ),
    ];
    for (id, name, fields, org) in experts {
        review
            .create_expert(demo.admin(vpb::CreateExpertRequest {
                expert_id: id.into(),
                expert: Some(vpb::Expert {
                    display_name: name.into(),
                    industry_fields: fields.iter().map(|f| *f as i32).collect(),
                    organization: org.into(),
                    load_limit: 10,
                    ..Default::default()
                }),
                request_id: rid(&format!("expert/{id}")),
            }))
            .await
            .map_err(at("experts"))?;
    }
    loaded.lines.push(format!(
        "experts: {} (biomedicine, new energy, high-end equipment, new materials)",
        experts.len()
    ));

    let first = |sector: Sector| firms.iter().find(|f| f.sector == sector);
    let steelworks = firms.first();
    let (Some(steelworks), Some(pharma), Some(hydrogen), Some(materials)) = (
        steelworks,
        first(Sector::Biomedicine),
        first(Sector::Hydrogen),
        first(Sector::Materials),
    ) else {
        return Err("demo: generated enterprises lack a sector".into());
    };

    struct Plan<'a> {
        key: &'a str,
        owner: &'a Firm,
        title: &'a str,
        field: I,
        industry_code: &'a str,
        annual_energy_kgce: Option<i64>,
        /// Three reviews' scores, when it goes to experts.
        scores: Option<[[i32; 4]; 3]>,
        requested_fen: i64,
    }
    let plans = [
        Plan {
            key: "steel",
            owner: steelworks,
            title: "高炉扩容与烧结工序产能提升",
            field: I::HighEndEquipment,
            industry_code: "31",
            annual_energy_kgce: Some(12_000_000),
            scores: None,
            requested_fen: 0,
        },
        Plan {
            key: "biomedicine",
            owner: pharma,
            title: "新型抗肿瘤单克隆抗体药物绿色生物制造工艺",
            field: I::Biomedicine,
            industry_code: "2761",
            annual_energy_kgce: Some(10_000),
            scores: Some([[25, 25, 15, 15], [28, 27, 18, 17], [24, 26, 16, 16]]),
            requested_fen: 600_000_000,
        },
        Plan {
            key: "hydrogen",
            owner: hydrogen,
            title: "兆瓦级质子交换膜电解水制氢装备",
            field: I::NewEnergy,
            industry_code: "3825",
            annual_energy_kgce: Some(800_000),
            scores: Some([[27, 26, 17, 18], [26, 27, 16, 19], [28, 25, 18, 18]]),
            requested_fen: 800_000_000,
        },
        Plan {
            key: "carbon-fibre",
            owner: materials,
            title: "高性能碳纤维复合材料连续化制备",
            field: I::NewMaterials,
            industry_code: "2653",
            annual_energy_kgce: None,
            scores: None,
            requested_fen: 0,
        },
    ];
    let mut approved = Vec::new();
    let mut lines = Vec::new();
    for plan in &plans {
        let owner_token = demo.token(
            &format!("enterprise-{}", plan.owner.uscc),
            Role::Enterprise,
            Some(&plan.owner.uscc),
        )?;
        let draft = review
            .create_achievement(Demo::req(
                &owner_token,
                vpb::CreateAchievementRequest {
                    achievement: Some(vpb::Achievement {
                        owner: format!("enterprises/{}", plan.owner.uscc),
                        title: plan.title.into(),
                        industry_field: plan.field as i32,
                        technology_readiness_level: 7,
                        summary: format!("{}的科技成果 (demo)", plan.owner.name),
                        green_data: Some(vpb::GreenData {
                            industry_code: plan.industry_code.into(),
                            annual_energy_kgce: plan.annual_energy_kgce,
                            annual_electricity_kwh: Some(1_200_000),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    request_id: rid(&format!("achievement/{}", plan.key)),
                },
            ))
            .await
            .map_err(at("achievements"))?
            .into_inner();
        let submitted = review
            .submit_achievement(Demo::req(
                &owner_token,
                vpb::SubmitAchievementRequest {
                    name: draft.name.clone(),
                    etag: String::new(),
                    request_id: rid(&format!("submit/{}", plan.key)),
                },
            ))
            .await
            .map_err(at("submitting achievements"))?
            .into_inner();
        let verdict = submitted
            .screening
            .as_ref()
            .map(|s| s.explanation.clone())
            .unwrap_or_default();
        let Some(scores) = plan.scores else {
            lines.push(format!(
                "  {} {} ({}): {verdict}",
                submitted.name, plan.title, plan.owner.name
            ));
            continue;
        };
        let assigned = review
            .assign_reviewers(demo.admin(vpb::AssignReviewersRequest {
                name: submitted.name.clone(),
                reviewer_count: 3,
                request_id: rid(&format!("assign/{}", plan.key)),
                ..Default::default()
            }))
            .await
            .map_err(at("assigning reviewers"))?
            .into_inner();
        for (r, s) in assigned.reviews.iter().zip(scores) {
            let expert_id = r.expert.trim_start_matches("experts/");
            let token = demo.token(
                &format!("expert-{expert_id}"),
                Role::Expert,
                Some(expert_id),
            )?;
            review
                .submit_review(Demo::req(
                    &token,
                    vpb::SubmitReviewRequest {
                        name: r.name.clone(),
                        scores: Some(vpb::CriterionScores {
                            innovation: s[0],
                            technical_level: s[1],
                            economic_benefit: s[2],
                            green_benefit: s[3],
                        }),
                        comment: "技术路线先进，绿色低碳效益显著".into(),
                        veto: None,
                        etag: String::new(),
                        request_id: rid(&format!("review/{}/{}", plan.key, expert_id)),
                    },
                ))
                .await
                .map_err(at("expert reviews"))?;
        }
        let decided = review
            .finalize_decision(demo.admin(vpb::FinalizeDecisionRequest {
                name: submitted.name.clone(),
                etag: String::new(),
                request_id: rid(&format!("decide/{}", plan.key)),
            }))
            .await
            .map_err(at("decisions"))?
            .into_inner();
        let explanation = decided
            .decision
            .as_ref()
            .map(|d| d.explanation.clone())
            .unwrap_or_default();
        lines.push(format!(
            "  {} {} ({}): {explanation}",
            decided.name, plan.title, plan.owner.name
        ));
        if decided.state == vpb::AchievementState::Approved as i32 {
            approved.push(Approved {
                name: decided.name.clone(),
                owner: format!("enterprises/{}", plan.owner.uscc),
                requested_fen: plan.requested_fen,
            });
        }
    }
    loaded.lines.push(format!("achievements: {}", plans.len()));
    loaded.lines.extend(lines);
    Ok(approved)
}

/// Awards: a project call, applications with the approved achievements, allocation (preview,
/// then run) and publication — only when the awards service answers.
async fn awards_year(
    demo: &Demo,
    approved: &[Approved],
    loaded: &mut Loaded,
) -> Result<(), String> {
    let mut awards = demo.awards();
    match awards
        .list_programs(demo.admin(apb::ListProgramsRequest::default()))
        .await
    {
        Err(s) if s.code() == Code::Unimplemented => {
            loaded.lines.push(
                "awards: skipped (the awards service answers UNIMPLEMENTED on this build)".into(),
            );
            return Ok(());
        }
        Err(s) => return Err(at("awards")(s)),
        Ok(_) => {}
    }
    let id = format!("green-projects-{COHORT_YEAR}");
    let program = awards
        .create_program(demo.admin(apb::CreateProgramRequest {
            program_id: id.clone(),
            program: Some(apb::Program {
                display_name: format!("{COHORT_YEAR}年度绿色低碳科技项目"),
                kind: apb::ProgramKind::Project as i32,
                year: COHORT_YEAR,
                description: "科技支撑引领绿色低碳高质量发展重点项目 (demo)".into(),
                budget_fen: 2_000_000_000,
                per_project_cap_fen: 800_000_000,
                priority_fields: vec![
                    apb::PriorityFieldShare {
                        field: IndustryField::NewGenerationInformationTechnology as i32,
                        target_share_basis_points: 1500,
                    },
                    apb::PriorityFieldShare {
                        field: IndustryField::Biomedicine as i32,
                        target_share_basis_points: 1000,
                    },
                    apb::PriorityFieldShare {
                        field: IndustryField::HighEndEquipment as i32,
                        target_share_basis_points: 1500,
                    },
                ],
                score_threshold_millipoints: 70_000,
                objection_window_days: 10,
                ..Default::default()
            }),
            request_id: rid(&format!("program/{id}")),
        }))
        .await
        .map_err(at("creating the program"))?
        .into_inner();
    let name = program.name.clone();
    // A second run finds the program already allocated and published: report it as it is.
    let current = awards
        .get_program(demo.admin(apb::GetProgramRequest { name: name.clone() }))
        .await
        .map_err(at("reading the program"))?
        .into_inner();
    if current.state >= apb::ProgramState::Publicized as i32 {
        let allocation = awards
            .get_allocation(demo.admin(apb::GetAllocationRequest {
                name: format!("{name}/allocation"),
            }))
            .await
            .map_err(at("reading the allocation"))?
            .into_inner();
        let totals = allocation.totals.unwrap_or_default();
        loaded.lines.push(format!(
            "awards: {name} already allocated and published: {} applications, {} funded, {} of {} yuan",
            totals.applications,
            totals.selected,
            crate::output::yuan(totals.amount_fen),
            crate::output::yuan(totals.budget_fen)
        ));
        return Ok(());
    }
    awards
        .open_program(demo.admin(apb::OpenProgramRequest {
            name: name.clone(),
            etag: String::new(),
            request_id: rid(&format!("open/{id}")),
        }))
        .await
        .map_err(at("opening the program"))?;
    for a in approved {
        awards
            .create_application(demo.admin(apb::CreateApplicationRequest {
                parent: name.clone(),
                application: Some(apb::Application {
                    enterprise: a.owner.clone(),
                    achievement: a.name.clone(),
                    requested_amount_fen: a.requested_fen,
                    ..Default::default()
                }),
                request_id: rid(&format!("application/{id}/{}", a.name)),
            }))
            .await
            .map_err(at("applications"))?;
    }
    awards
        .close_program(demo.admin(apb::CloseProgramRequest {
            name: name.clone(),
            etag: String::new(),
            request_id: rid(&format!("close/{id}")),
        }))
        .await
        .map_err(at("closing the program"))?;
    awards
        .allocate_program(demo.admin(apb::AllocateProgramRequest {
            name: name.clone(),
            validate_only: true,
            etag: String::new(),
            request_id: String::new(),
        }))
        .await
        .map_err(at("allocation preview"))
        .or_else(|e| {
            // A preview of an already allocated program (second run) is refused; the run below
            // replays.
            if e.contains("FAILED_PRECONDITION") {
                Ok(tonic::Response::new(apb::Allocation::default()))
            } else {
                Err(e)
            }
        })?;
    let allocation = awards
        .allocate_program(demo.admin(apb::AllocateProgramRequest {
            name: name.clone(),
            validate_only: false,
            etag: String::new(),
            request_id: rid(&format!("allocate/{id}")),
        }))
        .await
        .map_err(at("allocation"))?
        .into_inner();
    awards
        .publish_results(demo.admin(apb::PublishResultsRequest {
            name: name.clone(),
            objection_window_days: 10,
            etag: String::new(),
            request_id: rid(&format!("publish/{id}")),
        }))
        .await
        .map_err(at("publishing results"))?;
    let totals = allocation.totals.unwrap_or_default();
    loaded.lines.push(format!(
        "awards: {name} allocated and published: {} applications, {} funded, {} of {} yuan",
        totals.applications,
        totals.selected,
        crate::output::yuan(totals.amount_fen),
        crate::output::yuan(totals.budget_fen)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qilu_uscc::{KnownExceptions, Verdict, check};

    #[test]
    fn generated_codes_are_valid_shandong_codes_and_unique() {
        let (firms, rows) = firms();
        assert_eq!(firms.len(), 16 * PER_CITY + 1);
        assert_eq!(rows.len(), firms.len());
        let mut seen = std::collections::HashSet::new();
        for f in &firms {
            let report = check(&f.uscc, &KnownExceptions::new(Vec::<String>::new()));
            assert_eq!(report.verdict, Verdict::Valid, "{}", f.uscc);
            assert!(report.organization_code_check_passed, "{}", f.uscc);
            assert!(f.uscc[2..].starts_with("37"), "{}", f.uscc);
            assert!(seen.insert(f.uscc.clone()));
        }
        // Deterministic: the same data on every run.
        assert_eq!(super::firms().0[5].uscc, firms[5].uscc);
        assert_eq!(rid("x"), rid("x"));
        assert_ne!(rid("x"), rid("y"));
    }
}
