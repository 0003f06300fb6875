//! Enterprises as the API shows them and as requests describe them: the resource, its
//! descriptive fields (create and update mask), its name `enterprises/{uscc}`, and the
//! `ValidateUscc` report. The USCC itself is checked by `domain::uscc` (GB 32100).

use chrono::NaiveDate;
use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::filter::{Filter, FilterField, Kind, Op, Value};
use qilu_common::input::mask::not_updatable;
use qilu_common::input::name::{self, IdRule};
use qilu_common::input::{OrderBy, Text, Violations};
use qilu_common::time::to_timestamp;
use qilu_proto::common::{GreenCategory, HighTechField};
use qilu_proto::registry as pb;

use crate::domain::enterprise::StateChangeRefused;
use crate::domain::enterprise::{
    EARLIEST_ESTABLISHED, Enterprise, EnterpriseFields, EnterpriseState, MAX_ADDRESS_CHARS,
    MAX_NAME_CHARS, MAX_PERSON_CHARS,
};
use crate::domain::uscc::{self, KnownExceptions, Uscc, UsccError};
use crate::store::enterprise::{ListFilter, Order};

/// Resource type for `ResourceInfo` in errors.
pub const ENTERPRISE_TYPE: &str = "registry.qilu.gov.cn/Enterprise";

/// The domain enterprise as the API shows it.
pub fn enterprise_to_proto(e: &Enterprise) -> pb::Enterprise {
    let parts = e.uscc.parts();
    pb::Enterprise {
        name: e.name(),
        uscc: e.uscc.as_str().to_string(),
        display_name: e.fields.display_name.clone(),
        legal_representative: e.fields.legal_representative.clone(),
        established_date: e.fields.established_date.format("%Y-%m-%d").to_string(),
        address: e.fields.address.clone(),
        city: uscc::city_for_division(&parts.division_code)
            .unwrap_or("")
            .to_string(),
        division_code: parts.division_code,
        zone: e.fields.zone.clone().unwrap_or_default(),
        technology_fields: e.fields.technology_fields.clone(),
        green_category: e.fields.green_category,
        state: match e.state {
            EnterpriseState::Active => pb::EnterpriseState::Active,
            EnterpriseState::Revoked => pb::EnterpriseState::Revoked,
            EnterpriseState::Deregistered => pb::EnterpriseState::Deregistered,
        } as i32,
        high_tech_certified: e.high_tech_certified,
        leading: e.leading,
        uscc_known_exception: e.uscc.is_known_exception(),
        create_time: Some(to_timestamp(e.create_time_us)),
        update_time: Some(to_timestamp(e.update_time_us)),
        etag: e.etag(),
        state_reason: e
            .state_change
            .as_ref()
            .map(|c| c.reason.clone())
            .unwrap_or_default(),
        state_change_time: e
            .state_change
            .as_ref()
            .map(|c| to_timestamp(c.change_time_us)),
        state_effective_date: e
            .state_change
            .as_ref()
            .map(|c| c.effective_date.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    }
}

/// The reason code and description for a rejected USCC.
pub fn uscc_violation(field: &str, err: &UsccError) -> FieldViolation {
    let reason = match err {
        UsccError::InvalidFormat(_) => "INVALID_FORMAT",
        UsccError::InvalidChecksum { .. } => "INVALID_CHECKSUM",
        UsccError::UnknownRegisteringDepartment { .. } => "UNKNOWN_REGISTERING_DEPARTMENT",
        UsccError::UnknownCategory { .. } => "UNKNOWN_CATEGORY",
    };
    FieldViolation::new(field, reason, err.to_string())
}

/// Parses a USCC field.
pub fn parse_uscc(raw: &str, field: &str, known: &KnownExceptions) -> Result<Uscc, FieldViolation> {
    if raw.trim().is_empty() {
        return Err(FieldViolation::new(
            field,
            "REQUIRED",
            "a Unified Social Credit Code is required",
        ));
    }
    Uscc::parse(raw, known).map_err(|e| uscc_violation(field, &e))
}

/// The name of an enterprise.
const ENTERPRISE_PATTERN: &str = "enterprises/{uscc}";

/// Parses `enterprises/{uscc}`.
pub fn parse_enterprise_name(
    name: &str,
    field: &str,
    known: &KnownExceptions,
) -> Result<Uscc, ApiError> {
    // Not `qilu_common::input::name`: the released contract answers `enterprises/` (no code)
    // with the USCC's own REQUIRED and anything after the prefix with the USCC's reasons
    // (GB 32100), where the kit would say INVALID_RESOURCE_NAME.
    let Some(code) = name.strip_prefix("enterprises/") else {
        return Err(ApiError::invalid(
            field,
            "INVALID_RESOURCE_NAME",
            format!(
                "expected {ENTERPRISE_PATTERN}, got {}",
                qilu_common::limits::echo(name)
            ),
        ));
    };
    Ok(parse_uscc(code, field, known)?)
}

/// `BatchGetEnterprisesRequest.names`: at most 1000, every bad name reported (`names[i]`); the
/// codes in request order, repeats kept (AIP-231).
pub fn parse_names(names: &[String], known: &KnownExceptions) -> Result<Vec<String>, ApiError> {
    if names.len() > 1000 {
        return Err(ApiError::invalid(
            "names",
            "TOO_MANY",
            "at most 1000 names per call",
        ));
    }
    let mut violations = Violations::new();
    let mut codes = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if let Some(u) =
            violations.absorb(parse_enterprise_name(name, &format!("names[{i}]"), known))?
        {
            codes.push(u.as_str().to_string());
        }
    }
    violations.finish()?;
    Ok(codes)
}

/// `ValidateUsccRequest.uscc`: any text to check, up to 256 characters (the check itself
/// reports what is wrong with it).
pub fn parse_uscc_to_check(raw: &str) -> Result<&str, ApiError> {
    if raw.trim().is_empty() {
        return Err(ApiError::invalid("uscc", "REQUIRED", "uscc is required"));
    }
    if raw.chars().count() > 256 {
        return Err(ApiError::invalid(
            "uscc",
            "TOO_LONG",
            "at most 256 characters",
        ));
    }
    Ok(raw)
}

/// The descriptive fields of a create request, with every violation collected.
pub fn parse_fields(
    p: &pb::Enterprise,
    prefix: &str,
    today: NaiveDate,
) -> Result<EnterpriseFields, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let mut ok = |r: Result<(), FieldViolation>| {
        if let Err(v) = r {
            violations.push(v);
        }
    };
    let mut fields = EnterpriseFields {
        display_name: String::new(),
        legal_representative: String::new(),
        established_date: NaiveDate::MIN,
        address: String::new(),
        zone: None,
        technology_fields: Vec::new(),
        green_category: 0,
    };
    for path in MUTABLE_FIELDS {
        ok(apply_field(&mut fields, p, path, prefix, today));
    }
    if violations.is_empty() {
        Ok(fields)
    } else {
        Err(violations)
    }
}

/// Fields an update mask may name.
pub const MUTABLE_FIELDS: &[&str] = &[
    "display_name",
    "legal_representative",
    "established_date",
    "address",
    "zone",
    "technology_fields",
    "green_category",
];

/// Validates field `path` of `p` and writes it into `fields`.
pub fn apply_field(
    fields: &mut EnterpriseFields,
    p: &pb::Enterprise,
    path: &str,
    prefix: &str,
    today: NaiveDate,
) -> Result<(), FieldViolation> {
    let at = format!("{prefix}.{path}");
    match path {
        "display_name" => {
            fields.display_name = Text::required(MAX_NAME_CHARS).parse(&p.display_name, &at)?;
        }
        "legal_representative" => {
            fields.legal_representative =
                Text::optional(MAX_PERSON_CHARS).parse(&p.legal_representative, &at)?;
        }
        "address" => {
            fields.address = Text::optional(MAX_ADDRESS_CHARS).parse(&p.address, &at)?;
        }
        "established_date" => {
            fields.established_date = date(&p.established_date, &at, today)?;
        }
        "zone" => {
            fields.zone = zone(&p.zone, &at)?;
        }
        "technology_fields" => {
            let mut out = Vec::new();
            for (i, f) in p.technology_fields.iter().enumerate() {
                match HighTechField::try_from(*f) {
                    Ok(HighTechField::Unspecified) | Err(_) => {
                        return Err(FieldViolation::new(
                            format!("{at}[{i}]"),
                            "UNKNOWN_ENUM_VALUE",
                            format!("{f} is not one of the eight state high-tech fields"),
                        ));
                    }
                    Ok(_) => out.push(*f),
                }
            }
            out.sort_unstable();
            out.dedup();
            fields.technology_fields = out;
        }
        "green_category" => {
            if GreenCategory::try_from(p.green_category).is_err() {
                return Err(FieldViolation::new(
                    at,
                    "UNKNOWN_ENUM_VALUE",
                    format!("{} is not a green category", p.green_category),
                ));
            }
            fields.green_category = p.green_category;
        }
        other => return Err(not_updatable(other, MUTABLE_FIELDS)),
    }
    Ok(())
}

fn date(raw: &str, at: &str, today: NaiveDate) -> Result<NaiveDate, FieldViolation> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(FieldViolation::new(
            at,
            "REQUIRED",
            "a date YYYY-MM-DD is required",
        ));
    }
    let d = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        FieldViolation::new(
            at,
            "INVALID_DATE",
            format!(
                "{} is not a date YYYY-MM-DD",
                qilu_common::limits::echo(raw)
            ),
        )
    })?;
    let (y, m, dd) = EARLIEST_ESTABLISHED;
    let earliest = NaiveDate::from_ymd_opt(y, m, dd).unwrap_or(NaiveDate::MIN);
    if d > today {
        return Err(FieldViolation::new(
            at,
            "IN_FUTURE",
            format!("{d} is in the future"),
        ));
    }
    if d < earliest {
        return Err(FieldViolation::new(
            at,
            "TOO_EARLY",
            format!("{d} is before {earliest}"),
        ));
    }
    Ok(d)
}

fn zone(raw: &str, at: &str) -> Result<Option<String>, FieldViolation> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    // The enterprise's zone reference keeps its released rule, looser than a zone's own id
    // (`zone::parse_id`): a leading digit passes.
    let lower_case_id = IdRule::Custom(|id| {
        !id.is_empty()
            && id.len() <= 63
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    name::single(raw, "zones/{zone}", at, lower_case_id)?;
    Ok(Some(raw.to_string()))
}

/// `ValidateUscc` response from a check report.
pub fn report_to_proto(report: uscc::UsccReport) -> pb::ValidateUsccResponse {
    let verdict = match report.verdict {
        uscc::Verdict::Valid => pb::UsccVerdict::Valid,
        uscc::Verdict::InvalidFormat => pb::UsccVerdict::InvalidFormat,
        uscc::Verdict::InvalidChecksum => pb::UsccVerdict::InvalidChecksum,
        uscc::Verdict::KnownException => pb::UsccVerdict::KnownException,
        uscc::Verdict::UnknownDepartmentOrCategory => pb::UsccVerdict::UnknownDepartmentOrCategory,
    } as i32;
    let parts = report.parts;
    pb::ValidateUsccResponse {
        verdict,
        uscc: report.normalized,
        registering_department: parts
            .as_ref()
            .map(|p| p.registering_department.to_string())
            .unwrap_or_default(),
        category: parts
            .as_ref()
            .map(|p| p.category.to_string())
            .unwrap_or_default(),
        division_code: parts
            .as_ref()
            .map(|p| p.division_code.clone())
            .unwrap_or_default(),
        city: parts
            .as_ref()
            .and_then(|p| p.city)
            .unwrap_or("")
            .to_string(),
        organization_code: parts
            .as_ref()
            .map(|p| p.organization_code.clone())
            .unwrap_or_default(),
        organization_code_check_passed: report.organization_code_check_passed,
        problems: report.problems,
        expected_check_character: report
            .expected_check_character
            .map(String::from)
            .unwrap_or_default(),
        registering_department_name: parts
            .as_ref()
            .and_then(|p| p.registering_department_name)
            .unwrap_or("")
            .to_string(),
        category_name: parts
            .as_ref()
            .and_then(|p| p.category_name)
            .unwrap_or("")
            .to_string(),
    }
}

/// What `ListEnterprises` filters on (enterprise.proto documents each).
const LIST_FILTER: &[FilterField] = &[
    FilterField::with("display_name", &[Op::Has], Kind::Text),
    FilterField::eq("city", Kind::Text),
    FilterField::eq("zone", Kind::Text),
    FilterField::with(
        "technology_fields",
        &[Op::Eq, Op::Has],
        Kind::Enum {
            type_name: "HighTechField",
            from_name: |s| HighTechField::from_str_name(s).map(|f| f as i32),
        },
    ),
    // Text, read below: GREEN_CATEGORY_UNSPECIFIED is a real filter here (the enterprises not
    // yet classified), which `Kind::Enum` would refuse.
    FilterField::eq("green_category", Kind::Text),
    FilterField::eq(
        "state",
        Kind::Enum {
            type_name: "EnterpriseState",
            from_name: |s| pb::EnterpriseState::from_str_name(s).map(|e| e as i32),
        },
    ),
    FilterField::eq("high_tech_certified", Kind::Bool),
    FilterField::eq("leading", Kind::Bool),
];

/// `ListEnterprisesRequest.filter`.
pub fn parse_list_filter(raw: &str) -> Result<ListFilter, ApiError> {
    let mut out = ListFilter::default();
    for term in Filter::typed(raw, LIST_FILTER)? {
        match (term.field, term.value) {
            ("display_name", Value::Text(v)) => out.name_contains = Some(v),
            ("city", Value::Text(v)) => out.city = Some(v),
            ("zone", Value::Text(v)) => out.zone = Some(v),
            ("technology_fields", Value::Enum(v)) => out.technology_field = Some(v),
            ("green_category", Value::Text(v)) => {
                let category = GreenCategory::from_str_name(&v).ok_or_else(|| {
                    ApiError::invalid(
                        "filter",
                        "INVALID_FILTER",
                        format!(
                            "green_category: {} is not a GreenCategory",
                            qilu_common::limits::echo(&v)
                        ),
                    )
                })?;
                out.green_category = Some(category as i32);
            }
            ("state", Value::Enum(v)) => out.state = Some(v),
            ("high_tech_certified", Value::Bool(v)) => out.high_tech_certified = Some(v),
            ("leading", Value::Bool(v)) => out.leading = Some(v),
            _ => {}
        }
    }
    Ok(out)
}

/// `ListEnterprisesRequest.order_by`: `uscc` (default) or `display_name`, optionally `desc`.
pub fn parse_order(raw: &str) -> Result<Order, ApiError> {
    #[derive(Clone, Copy)]
    enum Key {
        Uscc,
        DisplayName,
    }
    let keys = [("uscc", Key::Uscc), ("display_name", Key::DisplayName)];
    let order = OrderBy::parse(raw, &keys, Key::Uscc)?;
    Ok(match order.key {
        Key::Uscc => Order::Uscc { desc: order.desc },
        Key::DisplayName => Order::DisplayName { desc: order.desc },
    })
}

/// Longest reason accepted (the contract: at most 2000 characters).
const MAX_REASON_CHARS: usize = 2000;

/// A revoke or deregister request, parsed.
#[derive(Debug)]
pub struct StateChangeInput {
    /// The state asked for.
    pub target: EnterpriseState,
    /// Why (trimmed; line breaks kept).
    pub reason: String,
    /// When it took legal effect (not after today).
    pub effective_date: NaiveDate,
    /// The etag the caller read, if any.
    pub etag: String,
}

/// `RevokeEnterpriseRequest` / `DeregisterEnterpriseRequest`: reason, then effective date
/// (default `today`).
pub fn parse_state_change(
    target: EnterpriseState,
    reason: &str,
    effective_date: &str,
    etag: &str,
    today: NaiveDate,
) -> Result<StateChangeInput, ApiError> {
    Ok(StateChangeInput {
        target,
        reason: parse_reason(reason)?,
        effective_date: parse_effective_date(effective_date, today)?,
        etag: etag.to_string(),
    })
}

fn parse_reason(raw: &str) -> Result<String, ApiError> {
    // Line breaks are fine in a reason a person reads; other control characters are not.
    Ok(Text::required(MAX_REASON_CHARS)
        .multiline()
        .parse(raw, "reason")?)
}

fn parse_effective_date(raw: &str, today: NaiveDate) -> Result<NaiveDate, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(today);
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid(
            "effective_date",
            "INVALID_DATE",
            format!(
                "{} is not a date YYYY-MM-DD",
                qilu_common::limits::echo(raw)
            ),
        )
    })?;
    if date > today {
        return Err(ApiError::invalid(
            "effective_date",
            "IN_FUTURE",
            format!("{date} is after today ({today}); record a change once it has taken effect"),
        ));
    }
    Ok(date)
}

/// The one mapping of a StateChangeRefused to the API's answer.
impl From<StateChangeRefused> for ApiError {
    fn from(refused: StateChangeRefused) -> Self {
        match refused {
            StateChangeRefused::Transition { name, from, to } => {
                let allowed_from = match to {
                    EnterpriseState::Revoked => "only an ACTIVE enterprise can be revoked",
                    _ => "only an ACTIVE or REVOKED enterprise can be deregistered",
                };
                let description = format!("{name} is {}; {allowed_from}", from.as_str());
                ApiError::precondition("ENTERPRISE_STATE", name, description)
            }
            StateChangeRefused::BeforeEstablishment {
                effective,
                established,
            } => ApiError::invalid(
                "effective_date",
                "BEFORE_ESTABLISHMENT",
                format!("{effective} is before the enterprise was established ({established})"),
            ),
            StateChangeRefused::BeforePreviousChange {
                effective,
                previous,
            } => ApiError::invalid(
                "effective_date",
                "BEFORE_PREVIOUS_CHANGE",
                format!("{effective} is before the previous state change took effect ({previous})"),
            ),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()
    }

    #[test]
    fn every_bad_field_is_reported_at_once_with_its_path() {
        let p = pb::Enterprise {
            display_name: "  ".into(),
            established_date: "2030-01-01".into(),
            zone: "Zones/Jinan".into(),
            technology_fields: vec![99],
            ..Default::default()
        };
        let violations = parse_fields(&p, "enterprise", today()).unwrap_err();
        let paths: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            paths,
            [
                "enterprise.display_name",
                "enterprise.established_date",
                "enterprise.zone",
                "enterprise.technology_fields[0]"
            ]
        );
    }

    #[test]
    fn good_fields_are_trimmed_sorted_and_deduplicated() {
        let p = pb::Enterprise {
            display_name: " 山东氢能科技有限公司 ".into(),
            established_date: "2010-05-04".into(),
            zone: "zones/jinan".into(),
            technology_fields: vec![6, 4, 6],
            green_category: 3,
            ..Default::default()
        };
        let f = parse_fields(&p, "enterprise", today()).unwrap();
        assert_eq!(f.display_name, "山东氢能科技有限公司");
        assert_eq!(f.technology_fields, vec![4, 6]);
        assert_eq!(f.zone.as_deref(), Some("zones/jinan"));
    }

    #[test]
    fn zone_references_are_zones_slash_a_lower_case_id() {
        assert_eq!(zone(" ", "z"), Ok(None));
        assert_eq!(zone("zones/9-jinan", "z"), Ok(Some("zones/9-jinan".into())));
        for bad in ["zones/", "zones/Jinan", "jinan", "zones/a/b"] {
            let v = zone(bad, "z").err().map(|v| v.reason);
            assert_eq!(v.as_deref(), Some("INVALID_RESOURCE_NAME"), "{bad}");
        }
    }

    #[test]
    fn names_must_be_enterprises_slash_a_valid_code() {
        let known = KnownExceptions::default();
        assert!(parse_enterprise_name("enterprises/91350100M000100Y43", "name", &known).is_ok());
        assert!(parse_enterprise_name("91350100M000100Y43", "name", &known).is_err());
        assert!(parse_enterprise_name("enterprises/91350100M000100Y4Z", "name", &known).is_err());
    }
    #[test]
    fn orders_parse_or_name_the_problem() {
        assert_eq!(parse_order("").ok(), Some(Order::Uscc { desc: false }));
        assert_eq!(
            parse_order("display_name desc").ok(),
            Some(Order::DisplayName { desc: true })
        );
        assert!(parse_order("revenue").is_err());
        assert!(parse_order("uscc sideways").is_err());
    }

    #[test]
    fn list_filters_parse_enum_names() {
        let f = parse_list_filter(
            r#"display_name:"氢" AND technology_fields = HIGH_TECH_FIELD_NEW_MATERIALS AND leading = true"#,
        );
        let f = f.ok();
        assert_eq!(f.as_ref().and_then(|f| f.technology_field), Some(4));
        assert_eq!(f.as_ref().and_then(|f| f.leading), Some(true));
        let unclassified = parse_list_filter("green_category = GREEN_CATEGORY_UNSPECIFIED").ok();
        assert_eq!(unclassified.and_then(|f| f.green_category), Some(0));
        assert!(parse_list_filter("state = OPEN").is_err());
        assert!(parse_list_filter("leading = maybe").is_err());
        assert!(parse_list_filter("city:Jinan").is_err());
    }

    #[test]
    fn reasons_are_required_bounded_and_printable() {
        assert_eq!(
            parse_reason("  鲁市监处〔2026〕12号 ").unwrap(),
            "鲁市监处〔2026〕12号"
        );
        assert!(parse_reason("第一行\n第二行").is_ok());
        assert!(parse_reason("   ").is_err());
        assert!(parse_reason(&"因".repeat(2000)).is_ok());
        assert!(parse_reason(&"因".repeat(2001)).is_err());
        assert!(parse_reason("bad\u{0}").is_err());
    }

    #[test]
    fn effective_dates_default_to_today_and_are_not_in_the_future() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        assert_eq!(parse_effective_date("", today).unwrap(), today);
        assert_eq!(parse_effective_date("2026-06-01", today).unwrap(), today);
        assert!(parse_effective_date("2026-06-02", today).is_err());
        assert!(parse_effective_date("2026-13-01", today).is_err());
        assert!(parse_effective_date("01/06/2026", today).is_err());
    }
}
