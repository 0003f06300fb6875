//! proto ⇄ domain for the review service. Every request field is parsed here into a domain value
//! or a field violation naming its path (e.g. `achievement.green_data.products[0].product_code`);
//! handlers never see raw strings or unchecked numbers. One module per resource family; this
//! file keeps only what they share (resource types, enterprise names, industry codes).
//!
//! | module | what it converts |
//! |---|---|
//! | `achievement` | achievements and their green data; create, update, list requests |
//! | `rule_set` | veto rule sets (screening rules) and screening verdicts |
//! | `expert` | experts; create, update, conflict, list requests |
//! | `review` | reviews; submit and list requests |
//! | `decision` | decisions and appeals; appeal and resolve requests |

pub mod achievement;
pub mod decision;
pub mod expert;
mod refusal;
pub mod review;
pub mod rule_set;

use qilu_common::error::FieldViolation;
use qilu_proto::common::IndustryField;

use crate::domain::green::MAX_INDUSTRY_CODE_DIGITS;

/// Resource types for `ResourceInfo` in errors.
pub const ACHIEVEMENT_TYPE: &str = "review.qilu.gov.cn/Achievement";
/// See [`ACHIEVEMENT_TYPE`].
pub const RULE_SET_TYPE: &str = "review.qilu.gov.cn/VetoRuleSet";
/// See [`ACHIEVEMENT_TYPE`].
pub const EXPERT_TYPE: &str = "review.qilu.gov.cn/Expert";
/// See [`ACHIEVEMENT_TYPE`].
pub const REVIEW_TYPE: &str = "review.qilu.gov.cn/Review";

const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// `enterprises/{uscc}` → the USCC, upper-cased. Only the form is checked here (18 characters of
/// the GB 32100 alphabet); whether it is registered and ACTIVE is the registry's answer.
pub fn parse_enterprise(raw: &str, field: &str) -> Result<String, FieldViolation> {
    let code = raw
        .strip_prefix("enterprises/")
        .map(|c| c.trim().to_uppercase())
        .unwrap_or_default();
    if code.chars().count() == 18 && code.chars().all(|c| USCC_ALPHABET.contains(c)) {
        Ok(code)
    } else {
        Err(FieldViolation::new(
            field,
            if raw.is_empty() {
                "REQUIRED"
            } else {
                "INVALID_RESOURCE_NAME"
            },
            format!(
                "expected enterprises/{{uscc}} with an 18-character USCC, got {}",
                qilu_common::limits::echo(raw)
            ),
        ))
    }
}

pub(crate) fn industry_field(value: i32, at: &str) -> Result<i32, FieldViolation> {
    match IndustryField::try_from(value) {
        Ok(IndustryField::Unspecified) => Err(FieldViolation::new(
            at,
            "REQUIRED",
            "an industry field is required",
        )),
        Ok(_) => Ok(value),
        Err(_) => Err(FieldViolation::new(
            at,
            "UNKNOWN_ENUM_VALUE",
            format!("{value} is not an IndustryField"),
        )),
    }
}

/// GB/T 4754 code: 2-4 digits.
pub(crate) fn industry_code(
    raw: &str,
    at: &str,
    required: bool,
) -> Result<Option<String>, FieldViolation> {
    let code = raw.trim();
    if code.is_empty() {
        return if required {
            Err(FieldViolation::new(
                at,
                "REQUIRED",
                "a GB/T 4754 code is required",
            ))
        } else {
            Ok(None)
        };
    }
    if (2..=MAX_INDUSTRY_CODE_DIGITS).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(Some(code.to_string()))
    } else {
        Err(FieldViolation::new(
            at,
            "INVALID_INDUSTRY_CODE",
            format!("a GB/T 4754 code is 2-4 digits, got {code:?}"),
        ))
    }
}

pub(crate) fn non_negative(v: Option<i64>, at: &str) -> Result<Option<i64>, FieldViolation> {
    match v {
        Some(n) if n < 0 => Err(FieldViolation::new(at, "NEGATIVE", "must not be negative")),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enterprise_names_are_upper_cased_uscc_of_the_gb_32100_alphabet() {
        assert_eq!(
            parse_enterprise("enterprises/91350100m000100y43", "x")
                .ok()
                .as_deref(),
            Some("91350100M000100Y43")
        );
        assert!(parse_enterprise("enterprises/91350100M000100Y4", "x").is_err());
        assert!(parse_enterprise("enterprises/91350100M000100YIO", "x").is_err());
    }
}
