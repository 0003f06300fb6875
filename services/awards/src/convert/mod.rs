//! Proto ⇄ domain for the awards service: every request is parsed here (field violations with
//! their full paths, e.g. `program.award_quotas[0].quota`), and every response is built here
//! (with the visibility rules of the contract applied by the caller-aware helpers). One module
//! per resource family; this file keeps only what they share.
//!
//! | module | what it converts |
//! |---|---|
//! | `program` | programs; create, update, list, publish requests |
//! | `application` | applications; create, list, withdraw requests |
//! | `allocation` | allocation results; allocate and get requests |
//! | `objection` | objections; file, list, resolve requests |
//! | `distribution` | field distributions; the statistics request |

pub mod allocation;
pub mod application;
pub mod distribution;
pub mod objection;
pub mod program;
mod refusal;

use chrono::NaiveDate;
use qilu_common::FieldViolation;

use crate::domain::program::State;

/// Resource type of programs.
pub const PROGRAM_TYPE: &str = "awards.qilu.gov.cn/Program";
/// Resource type of applications.
pub const APPLICATION_TYPE: &str = "awards.qilu.gov.cn/Application";
/// Resource type of allocations.
pub const ALLOCATION_TYPE: &str = "awards.qilu.gov.cn/Allocation";
/// Resource type of objections.
pub const OBJECTION_TYPE: &str = "awards.qilu.gov.cn/Objection";

pub(crate) fn parse_date(raw: &str, field: &str, v: &mut Vec<FieldViolation>) -> Option<NaiveDate> {
    if raw.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) if d.format("%Y-%m-%d").to_string() == raw => Some(d),
        _ => {
            v.push(FieldViolation::new(
                field,
                "INVALID_DATE",
                format!(
                    "{} is not an ISO date YYYY-MM-DD",
                    qilu_common::limits::echo(raw)
                ),
            ));
            None
        }
    }
}

pub(crate) fn date_str(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Whether a program in `state` has published results (outcomes visible to applicants).
pub fn published(state: State) -> bool {
    matches!(state, State::Publicized | State::Final)
}
