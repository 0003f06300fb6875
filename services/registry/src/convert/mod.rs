//! proto ⇄ domain for the registry. Every request field is parsed here into a domain value or a
//! field violation naming its path; handlers never see raw strings.

pub mod leading;
pub mod policy;

use chrono::NaiveDate;
use qilu_common::error::{ApiError, FieldViolation};
use qilu_common::time::to_timestamp;
use qilu_proto::common::{GreenCategory, HighTechField};
use qilu_proto::registry as pb;

use crate::domain::enterprise::{
    EARLIEST_ESTABLISHED, Enterprise, EnterpriseFields, EnterpriseState, MAX_ADDRESS_CHARS,
    MAX_NAME_CHARS, MAX_PERSON_CHARS,
};
use crate::domain::uscc::{self, KnownExceptions, Uscc, UsccError};

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

/// Parses `enterprises/{uscc}`.
pub fn parse_enterprise_name(
    name: &str,
    field: &str,
    known: &KnownExceptions,
) -> Result<Uscc, ApiError> {
    let Some(code) = name.strip_prefix("enterprises/") else {
        return Err(ApiError::invalid(
            field,
            "INVALID_RESOURCE_NAME",
            format!(
                "expected enterprises/{{uscc}}, got {}",
                qilu_common::limits::echo(name)
            ),
        ));
    };
    parse_uscc(code, field, known).map_err(|v| ApiError::InvalidArgument(vec![v]))
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
            fields.display_name = text(&p.display_name, &at, MAX_NAME_CHARS, true)?;
        }
        "legal_representative" => {
            fields.legal_representative =
                text(&p.legal_representative, &at, MAX_PERSON_CHARS, false)?;
        }
        "address" => {
            fields.address = text(&p.address, &at, MAX_ADDRESS_CHARS, false)?;
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
        other => {
            return Err(FieldViolation::new(
                "update_mask",
                "FIELD_NOT_UPDATABLE",
                format!(
                    "{other:?} cannot be updated; updatable fields: {}",
                    MUTABLE_FIELDS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn text(raw: &str, at: &str, max: usize, required: bool) -> Result<String, FieldViolation> {
    let value = raw.trim();
    if required && value.is_empty() {
        return Err(FieldViolation::new(at, "REQUIRED", "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FieldViolation::new(
            at,
            "TOO_LONG",
            format!("at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            at,
            "CONTROL_CHARACTER",
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
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
    let id = raw.strip_prefix("zones/").unwrap_or("");
    let valid = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(Some(raw.to_string()))
    } else {
        Err(FieldViolation::new(
            at,
            "INVALID_RESOURCE_NAME",
            format!(
                "expected zones/{{zone}} with a lower-case id, got {}",
                qilu_common::limits::echo(raw)
            ),
        ))
    }
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
    fn names_must_be_enterprises_slash_a_valid_code() {
        let known = KnownExceptions::default();
        assert!(parse_enterprise_name("enterprises/91350100M000100Y43", "name", &known).is_ok());
        assert!(parse_enterprise_name("91350100M000100Y43", "name", &known).is_err());
        assert!(parse_enterprise_name("enterprises/91350100M000100Y4Z", "name", &known).is_err());
    }
}
