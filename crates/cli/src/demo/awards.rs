//! The awards service's year: a program opened, applied to, closed, allocated and published.

use super::*;

/// Awards: a project call, applications with the approved achievements, allocation (preview,
/// then run) and publication — only when the awards service answers.
pub(super) async fn awards_year(
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
                ..Default::default()
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
