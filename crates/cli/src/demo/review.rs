//! The review service's year: rule sets, experts, achievements screened, reviewed and decided
//! (one vetoed by rule, two approved, one needing review).

use super::*;

/// An approved achievement the awards part may apply with.
#[derive(Debug, Clone)]
pub(super) struct Approved {
    pub(super) name: String,
    pub(super) owner: String,
    pub(super) requested_fen: i64,
}

/// Review: experts; a steel achievement vetoed by rule; a biomedicine and a hydrogen achievement
/// reviewed by three experts each and approved; one without an energy figure left NEEDS_REVIEW.
pub(super) async fn review_year(
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
