//! proto ⇄ domain for the registry, one module per resource family. Every request field is
//! parsed here into a domain value or a field violation naming its path; handlers never see raw
//! strings. This module keeps only what the families share.

pub mod certification;
pub mod enterprise;
pub mod figures;
pub mod import;
pub mod leading;
pub mod policy;
pub mod statistics;
pub mod zones;

use chrono::NaiveDate;
use qilu_common::error::FieldViolation;

pub use enterprise::{
    ENTERPRISE_TYPE, enterprise_to_proto, parse_enterprise_name, parse_uscc, uscc_violation,
};

/// A date as the contracts write it, `YYYY-MM-DD`.
pub fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The name of the enterprise with USCC `uscc` (stored, so already valid).
pub fn enterprise_name(uscc: &str) -> String {
    format!("enterprises/{uscc}")
}

/// An optional date field: empty is `None`, anything else must be `YYYY-MM-DD`
/// (`INVALID_DATE`).
pub fn optional_date(raw: &str, at: &str) -> Result<Option<NaiveDate>, FieldViolation> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            FieldViolation::new(
                at,
                "INVALID_DATE",
                format!(
                    "{} is not a date YYYY-MM-DD",
                    qilu_common::limits::echo(raw)
                ),
            )
        })
}
