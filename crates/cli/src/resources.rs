//! `qilu achievements …` (review service), `qilu programs …` (awards service) and
//! `qilu audit …` (any service's audit log).

use std::process::ExitCode;

use clap::ValueEnum;
use qilu_proto::awards::award_allocation_service_client::AwardAllocationServiceClient;
use qilu_proto::awards::{
    AllocateProgramRequest, Allocation, ApplicationOutcome, GetProgramRequest, Program,
    ProgramKind, ProgramState,
};
use qilu_proto::common::{
    AuditEvent, IndustryField, ListAuditEventsRequest, ListAuditEventsResponse,
    VerifyAuditChainRequest, VerifyAuditChainResponse,
};
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use qilu_proto::review::{
    Achievement, AchievementState, GetAchievementRequest, ScreenAchievementRequest,
    ScreeningOutcome, ScreeningVerdict, SubmitAchievementRequest,
};
use tonic::Status;
use tonic::transport::Channel;

use crate::client::{Conn, fail, resource_name};
use crate::output::{self, Format, short};

fn review(conn: &Conn) -> AchievementReviewServiceClient<Channel> {
    AchievementReviewServiceClient::new(conn.channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
}

fn awards(conn: &Conn) -> AwardAllocationServiceClient<Channel> {
    AwardAllocationServiceClient::new(conn.channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
}

fn achievement_state(a: &Achievement) -> String {
    short(
        AchievementState::try_from(a.state)
            .ok()
            .map(|s| s.as_str_name()),
        "ACHIEVEMENT_STATE_",
        a.state,
    )
}

fn outcome(v: i32) -> String {
    short(
        ScreeningOutcome::try_from(v).ok().map(|s| s.as_str_name()),
        "SCREENING_OUTCOME_",
        v,
    )
}

fn industry(v: i32) -> String {
    short(
        IndustryField::try_from(v).ok().map(|s| s.as_str_name()),
        "INDUSTRY_FIELD_",
        v,
    )
}

fn print_achievement(format: Format, a: &Achievement) -> Result<(), String> {
    if format == Format::Json {
        return output::print_json(&output::to_json("qilu.review.v1.Achievement", a)?);
    }
    let mut rows = vec![
        ("name", a.name.clone()),
        ("owner", a.owner.clone()),
        ("title", a.title.clone()),
        ("industry_field", industry(a.industry_field)),
        (
            "technology_readiness_level",
            a.technology_readiness_level.to_string(),
        ),
        ("state", achievement_state(a)),
        ("review_round", a.review_round.to_string()),
    ];
    if let Some(s) = &a.screening {
        rows.push(("screening", outcome(s.outcome)));
        rows.push(("screening_rule", s.rule_id.clone()));
        rows.push(("screening_explanation", s.explanation.clone()));
    }
    if let Some(d) = &a.decision {
        rows.push(("decision", d.explanation.clone()));
        rows.push(("decided_by", d.decided_by.clone()));
    }
    if !a.appeal_deadline.is_empty() {
        rows.push(("appeal_deadline", a.appeal_deadline.clone()));
    }
    rows.push(("submit_time", output::time(a.submit_time.as_ref())));
    rows.push(("update_time", output::time(a.update_time.as_ref())));
    println!("{}", output::fields(&rows));
    Ok(())
}

/// `qilu achievements get NAME`.
pub async fn achievement_get(conn: &Conn, format: Format, name: &str) -> Result<ExitCode, String> {
    let a = review(conn)
        .get_achievement(conn.req(GetAchievementRequest {
            name: resource_name("achievements", name),
        }))
        .await
        .map_err(|s| fail(conn, s))?
        .into_inner();
    print_achievement(format, &a)?;
    Ok(ExitCode::SUCCESS)
}

/// `qilu achievements submit NAME`.
pub async fn achievement_submit(
    conn: &Conn,
    format: Format,
    name: &str,
) -> Result<ExitCode, String> {
    let a = review(conn)
        .submit_achievement(conn.req(SubmitAchievementRequest {
            name: resource_name("achievements", name),
            etag: String::new(),
            request_id: uuid::Uuid::new_v4().to_string(),
        }))
        .await
        .map_err(|s| fail(conn, s))?
        .into_inner();
    print_achievement(format, &a)?;
    Ok(ExitCode::SUCCESS)
}

/// `qilu achievements screen NAME [--rule-set RS]`: a dry run; stores nothing.
pub async fn achievement_screen(
    conn: &Conn,
    format: Format,
    name: &str,
    rule_set: Option<&str>,
) -> Result<ExitCode, String> {
    let v: ScreeningVerdict = review(conn)
        .screen_achievement(
            conn.req(ScreenAchievementRequest {
                name: resource_name("achievements", name),
                rule_set: rule_set
                    .map(|r| resource_name("vetoRuleSets", r))
                    .unwrap_or_default(),
            }),
        )
        .await
        .map_err(|s| fail(conn, s))?
        .into_inner();
    if format == Format::Json {
        output::print_json(&output::to_json("qilu.review.v1.ScreeningVerdict", &v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} (rule set {} v{})",
        outcome(v.outcome),
        v.explanation,
        v.rule_set,
        v.rule_set_version
    );
    let mut table = output::table(&["RULE", "OUTCOME", "INPUTS", "THRESHOLD", "EXPLANATION"]);
    for c in &v.checks {
        table.add_row(vec![
            c.rule_id.clone(),
            outcome(c.outcome),
            c.inputs.clone(),
            c.threshold.clone(),
            c.explanation.clone(),
        ]);
    }
    println!("{table}");
    if !v.missing_inputs.is_empty() {
        println!("missing inputs: {}", v.missing_inputs.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn program_rows(p: &Program) -> Vec<(&'static str, String)> {
    vec![
        ("name", p.name.clone()),
        ("display_name", p.display_name.clone()),
        (
            "kind",
            short(
                ProgramKind::try_from(p.kind).ok().map(|k| k.as_str_name()),
                "PROGRAM_KIND_",
                p.kind,
            ),
        ),
        ("year", p.year.to_string()),
        (
            "state",
            short(
                ProgramState::try_from(p.state)
                    .ok()
                    .map(|k| k.as_str_name()),
                "PROGRAM_STATE_",
                p.state,
            ),
        ),
        ("budget_yuan", output::yuan(p.budget_fen)),
        ("allocation", p.allocation.clone()),
        ("publish_time", output::time(p.publish_time.as_ref())),
        (
            "objection_window_end_time",
            output::time(p.objection_window_end_time.as_ref()),
        ),
    ]
}

/// `qilu programs get NAME`.
pub async fn program_get(conn: &Conn, format: Format, name: &str) -> Result<ExitCode, String> {
    let p = awards(conn)
        .get_program(conn.req(GetProgramRequest {
            name: resource_name("programs", name),
        }))
        .await
        .map_err(|s| fail(conn, s))?
        .into_inner();
    match format {
        Format::Json => output::print_json(&output::to_json("qilu.awards.v1.Program", &p)?)?,
        Format::Table => println!("{}", output::fields(&program_rows(&p))),
    }
    Ok(ExitCode::SUCCESS)
}

/// `qilu programs allocate NAME [--dry-run]`.
pub async fn program_allocate(
    conn: &Conn,
    format: Format,
    name: &str,
    dry_run: bool,
) -> Result<ExitCode, String> {
    let a: Allocation = awards(conn)
        .allocate_program(conn.req(AllocateProgramRequest {
            name: resource_name("programs", name),
            validate_only: dry_run,
            etag: String::new(),
            request_id: if dry_run {
                String::new()
            } else {
                uuid::Uuid::new_v4().to_string()
            },
        }))
        .await
        .map_err(|s| fail(conn, s))?
        .into_inner();
    if format == Format::Json {
        output::print_json(&output::to_json("qilu.awards.v1.Allocation", &a)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if dry_run {
        println!("dry run (validate only): nothing stored");
    }
    let mut table = output::table(&[
        "APPLICATION",
        "ENTERPRISE",
        "FIELD",
        "OUTCOME",
        "RANK",
        "AMOUNT (YUAN)",
        "REASON",
    ]);
    for e in &a.entries {
        table.add_row(vec![
            e.application.clone(),
            e.enterprise.clone(),
            industry(e.industry_field),
            short(
                ApplicationOutcome::try_from(e.outcome)
                    .ok()
                    .map(|o| o.as_str_name()),
                "APPLICATION_OUTCOME_",
                e.outcome,
            ),
            e.rank.to_string(),
            output::yuan(e.amount_fen),
            e.reason.clone(),
        ]);
    }
    println!("{table}");
    if let Some(t) = &a.totals {
        println!(
            "{} applications: {} selected, {} not selected, {} excluded; {} of {} yuan allocated",
            t.applications,
            t.selected,
            t.not_selected,
            t.excluded,
            output::yuan(t.amount_fen),
            output::yuan(t.budget_fen)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Which service's audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    /// The enterprise registry.
    Registry,
    /// Achievement review.
    Review,
    /// Award and project allocation.
    Awards,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Registry => "registry",
            Service::Review => "review",
            Service::Awards => "awards",
        }
    }
}

async fn list_audit_page(
    conn: &Conn,
    service: Service,
    request: ListAuditEventsRequest,
) -> Result<ListAuditEventsResponse, Status> {
    let channel = conn.channel.clone();
    let limit = 64 * 1024 * 1024;
    Ok(match service {
        Service::Registry => EnterpriseRegistryServiceClient::new(channel)
            .max_decoding_message_size(limit)
            .list_audit_events(conn.req(request))
            .await?
            .into_inner(),
        Service::Review => AchievementReviewServiceClient::new(channel)
            .max_decoding_message_size(limit)
            .list_audit_events(conn.req(request))
            .await?
            .into_inner(),
        Service::Awards => AwardAllocationServiceClient::new(channel)
            .max_decoding_message_size(limit)
            .list_audit_events(conn.req(request))
            .await?
            .into_inner(),
    })
}

/// `qilu audit list --service S`.
pub async fn audit_list(
    conn: &Conn,
    format: Format,
    service: Service,
    filter: String,
    page_size: Option<i32>,
    all: bool,
) -> Result<ExitCode, String> {
    let mut events: Vec<AuditEvent> = Vec::new();
    let mut token = String::new();
    let next = loop {
        let page = list_audit_page(
            conn,
            service,
            ListAuditEventsRequest {
                page_size: page_size.unwrap_or(if all { 1000 } else { 0 }),
                page_token: token,
                filter: filter.clone(),
            },
        )
        .await
        .map_err(|s| fail(conn, s))?;
        events.extend(page.audit_events);
        if !all || page.next_page_token.is_empty() {
            break page.next_page_token;
        }
        token = page.next_page_token;
    };
    match format {
        Format::Json => output::print_json(&output::to_json_array(
            "qilu.common.v1.AuditEvent",
            &events,
        )?)?,
        Format::Table => {
            let mut table = output::table(&["SEQ", "TIME", "ACTOR", "METHOD", "RESOURCE", "HASH"]);
            for e in &events {
                table.add_row(vec![
                    e.sequence.to_string(),
                    output::time(e.commit_time.as_ref()),
                    e.actor.clone(),
                    e.method.rsplit('/').next().unwrap_or("").to_string(),
                    e.resource.clone(),
                    e.hash.chars().take(12).collect(),
                ]);
            }
            println!("{table}");
            println!("{} {} audit events", events.len(), service.name());
        }
    }
    if !next.is_empty() {
        eprintln!("more events: use --all");
    }
    Ok(ExitCode::SUCCESS)
}

/// `qilu audit verify --service S`: exit 1 when the chain is not intact.
pub async fn audit_verify(
    conn: &Conn,
    format: Format,
    service: Service,
    request: VerifyAuditChainRequest,
) -> Result<ExitCode, String> {
    let channel = conn.channel.clone();
    let result: Result<VerifyAuditChainResponse, Status> = match service {
        Service::Registry => EnterpriseRegistryServiceClient::new(channel)
            .verify_audit_chain(conn.req(request))
            .await
            .map(|r| r.into_inner()),
        Service::Review => AchievementReviewServiceClient::new(channel)
            .verify_audit_chain(conn.req(request))
            .await
            .map(|r| r.into_inner()),
        Service::Awards => AwardAllocationServiceClient::new(channel)
            .verify_audit_chain(conn.req(request))
            .await
            .map(|r| r.into_inner()),
    };
    let r = result.map_err(|s| fail(conn, s))?;
    match format {
        Format::Json => output::print_json(&output::to_json(
            "qilu.common.v1.VerifyAuditChainResponse",
            &r,
        )?)?,
        Format::Table if r.intact => println!(
            "{}: audit chain intact ({} events checked; head #{} {})",
            service.name(),
            r.events_checked,
            r.head_sequence,
            r.head_hash
        ),
        Format::Table => println!(
            "{}: audit chain BROKEN at event #{}: {} ({} events checked)",
            service.name(),
            r.first_bad_sequence,
            r.problem,
            r.events_checked
        ),
    }
    Ok(if r.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
