//! The registry's programme year: policy targets, zones, enterprises (streamed import), a
//! cluster, annual figures, certificates with their reports, the leading cohort with policies.

use super::*;

/// Registry: policy targets, zones, enterprises (streamed import), a cluster, annual figures,
/// certificates with their annual reports, the leading cohort with support policies.
pub(super) async fn registry_year(demo: &Demo, loaded: &mut Loaded) -> Result<Vec<Firm>, String> {
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

pub(super) fn support_policy(cohort: &str, uscc: &str, name: &str) -> rpb::SupportPolicy {
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
