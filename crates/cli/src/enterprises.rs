//! `qilu enterprises get | list | validate` (the registry's enterprises).

use std::process::ExitCode;

use qilu_proto::common::{GreenCategory, HighTechField};
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::registry::{
    Enterprise, EnterpriseState, GetEnterpriseRequest, ListEnterprisesRequest, UsccVerdict,
    ValidateUsccRequest,
};

use crate::client::{Conn, fail, resource_name};
use crate::output::{self, Format, short};

/// Most enterprises one ListEnterprises page may return.
const MAX_PAGE_SIZE: i32 = 1000;

fn client(conn: &Conn) -> EnterpriseRegistryServiceClient<tonic::transport::Channel> {
    EnterpriseRegistryServiceClient::new(conn.channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
}

/// `qilu enterprises get USCC|NAME`.
pub async fn get(conn: &Conn, format: Format, uscc_or_name: &str) -> Result<ExitCode, String> {
    let name = resource_name("enterprises", uscc_or_name);
    let e = client(conn)
        .get_enterprise(conn.req(GetEnterpriseRequest { name }))
        .await
        .map_err(|s| fail(conn, s))?
        .into_inner();
    match format {
        Format::Json => output::print_json(&output::to_json("qilu.registry.v1.Enterprise", &e)?)?,
        Format::Table => println!("{}", detail(&e)),
    }
    Ok(ExitCode::SUCCESS)
}

fn state(e: &Enterprise) -> String {
    short(
        EnterpriseState::try_from(e.state)
            .ok()
            .map(|s| s.as_str_name()),
        "ENTERPRISE_STATE_",
        e.state,
    )
}

/// Technology fields as typed in a CSV: `NEW_MATERIALS;ELECTRONIC_INFORMATION`.
pub fn fields_text(fields: &[i32]) -> String {
    fields
        .iter()
        .map(|f| {
            short(
                HighTechField::try_from(*f).ok().map(|x| x.as_str_name()),
                "HIGH_TECH_FIELD_",
                *f,
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A green category as typed in a CSV (`CLEAN_ENERGY`), empty when unset.
pub fn green_text(category: i32) -> String {
    if category == 0 {
        return String::new();
    }
    short(
        GreenCategory::try_from(category)
            .ok()
            .map(|x| x.as_str_name()),
        "GREEN_CATEGORY_",
        category,
    )
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn detail(e: &Enterprise) -> comfy_table::Table {
    output::fields(&[
        ("name", e.name.clone()),
        ("uscc", e.uscc.clone()),
        ("display_name", e.display_name.clone()),
        ("legal_representative", e.legal_representative.clone()),
        ("established_date", e.established_date.clone()),
        ("address", e.address.clone()),
        ("city", e.city.clone()),
        ("division_code", e.division_code.clone()),
        ("zone", e.zone.clone()),
        ("technology_fields", fields_text(&e.technology_fields)),
        ("green_category", green_text(e.green_category)),
        ("state", state(e)),
        ("state_reason", e.state_reason.clone()),
        ("high_tech_certified", yes(e.high_tech_certified)),
        ("leading", yes(e.leading)),
        ("uscc_known_exception", yes(e.uscc_known_exception)),
        ("create_time", output::time(e.create_time.as_ref())),
        ("update_time", output::time(e.update_time.as_ref())),
        ("etag", e.etag.clone()),
    ])
}

/// Options of `qilu enterprises list`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// AIP-160 filter.
    pub filter: String,
    /// Ordering.
    pub order_by: String,
    /// Page size (default: the server's).
    pub page_size: Option<i32>,
    /// Where to start.
    pub page_token: String,
    /// Follow every page.
    pub all: bool,
}

/// `qilu enterprises list`.
pub async fn list(conn: &Conn, format: Format, options: ListOptions) -> Result<ExitCode, String> {
    if let Some(size) = options.page_size
        && !(1..=MAX_PAGE_SIZE).contains(&size)
    {
        return Err(format!("--page-size must be 1-{MAX_PAGE_SIZE}, not {size}"));
    }
    let mut client = client(conn);
    let mut enterprises = Vec::new();
    let mut token = options.page_token.clone();
    let next = loop {
        let page =
            client
                .list_enterprises(conn.req(ListEnterprisesRequest {
                    page_size: options.page_size.unwrap_or(if options.all {
                        MAX_PAGE_SIZE
                    } else {
                        0
                    }),
                    page_token: token,
                    filter: options.filter.clone(),
                    order_by: options.order_by.clone(),
                }))
                .await
                .map_err(|s| fail(conn, s))?
                .into_inner();
        enterprises.extend(page.enterprises);
        if !options.all || page.next_page_token.is_empty() {
            break page.next_page_token;
        }
        token = page.next_page_token;
    };
    match format {
        Format::Json => output::print_json(&output::to_json_array(
            "qilu.registry.v1.Enterprise",
            &enterprises,
        )?)?,
        Format::Table => {
            let mut table = output::table(&[
                "USCC",
                "NAME",
                "CITY",
                "ZONE",
                "GREEN CATEGORY",
                "STATE",
                "CERTIFIED",
                "LEADING",
            ]);
            for e in &enterprises {
                table.add_row(vec![
                    e.uscc.clone(),
                    e.display_name.clone(),
                    e.city.clone(),
                    e.zone.trim_start_matches("zones/").to_string(),
                    green_text(e.green_category),
                    state(e),
                    yes(e.high_tech_certified),
                    yes(e.leading),
                ]);
            }
            println!("{table}");
            println!("{} enterprises", enterprises.len());
        }
    }
    if !next.is_empty() {
        eprintln!("more: --page-token {next} (or --all)");
    }
    Ok(ExitCode::SUCCESS)
}

/// `qilu enterprises validate USCC`: the verdict and the code's parts; exit 1 when the code is
/// not accepted (neither valid nor a known exception).
pub async fn validate(conn: &Conn, format: Format, uscc: &str) -> Result<ExitCode, String> {
    let r = client(conn)
        .validate_uscc(conn.req(ValidateUsccRequest {
            uscc: uscc.to_string(),
        }))
        .await
        .map_err(|s| fail(conn, s))?
        .into_inner();
    let verdict = UsccVerdict::try_from(r.verdict).unwrap_or(UsccVerdict::Unspecified);
    match format {
        Format::Json => output::print_json(&output::to_json(
            "qilu.registry.v1.ValidateUsccResponse",
            &r,
        )?)?,
        Format::Table => {
            let mut rows = vec![
                (
                    "verdict",
                    short(Some(verdict.as_str_name()), "USCC_VERDICT_", r.verdict),
                ),
                ("uscc", r.uscc.clone()),
                ("registering_department", r.registering_department.clone()),
                (
                    "registering_department_name",
                    r.registering_department_name.clone(),
                ),
                ("category", r.category.clone()),
                ("category_name", r.category_name.clone()),
                ("division_code", r.division_code.clone()),
                ("city", r.city.clone()),
                ("organization_code", r.organization_code.clone()),
                (
                    "organization_code_check",
                    if r.organization_code_check_passed {
                        "passed".to_string()
                    } else {
                        "failed (warning only)".to_string()
                    },
                ),
                (
                    "expected_check_character",
                    r.expected_check_character.clone(),
                ),
            ];
            for p in &r.problems {
                rows.push(("problem", p.clone()));
            }
            println!("{}", output::fields(&rows));
        }
    }
    Ok(match verdict {
        UsccVerdict::Valid | UsccVerdict::KnownException => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}
