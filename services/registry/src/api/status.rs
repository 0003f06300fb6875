//! Revoke and deregister an enterprise (custom methods `:revoke`, `:deregister`, AIP-136).
//!
//! Legal transitions only (`EnterpriseState::may_become`); anything else is FAILED_PRECONDITION
//! naming the current state (`domain::enterprise::StateChangeRefused`). Each
//! change records its reason, the commit time and the date it took legal effect (default: today
//! in the programme time zone), bumps the version (new etag) and is audited.

use chrono::NaiveDate;
use qilu_common::input::{Text, check_current, etag};
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;

use crate::convert::{enterprise_to_proto, parse_enterprise_name};
use crate::domain::enterprise::EnterpriseState;
use crate::store::enterprise as store;

use super::RegistryApi;
use super::enterprises::not_found;

/// Longest reason accepted (the contract: at most 2000 characters).
const MAX_REASON_CHARS: usize = 2000;

/// A status-change request, parsed.
struct Change {
    target: EnterpriseState,
    reason: String,
    effective_date: NaiveDate,
    etag: String,
}

fn parse_reason(raw: &str) -> Result<String, ApiError> {
    // Line breaks are fine in a reason a person reads; other control characters are not.
    Text::required(MAX_REASON_CHARS)
        .multiline()
        .parse(raw, "reason")
        .map_err(|v| ApiError::InvalidArgument(vec![v]))
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

async fn change_state<R: prost::Message>(
    api: &RegistryApi,
    ctx: &CallContext,
    name: &str,
    request_id: &str,
    request: &R,
    change: Change,
) -> Result<pb::Enterprise, ApiError> {
    let uscc = parse_enterprise_name(name, "name", &api.known_exceptions)?;
    let mut tx = match WriteTx::begin::<pb::Enterprise>(&api.db, ctx, request_id, request).await? {
        Begun::Replay(previous) => return Ok(previous),
        Begun::Fresh(tx) => tx,
    };
    let current = store::get(tx.conn(), uscc.as_str())
        .await?
        .ok_or_else(|| not_found(uscc.as_str()))?
        .into_domain()
        .map_err(ApiError::internal)?;
    // Enterprise etags are keyed by USCC since their first release.
    check_current(&change.etag, &current.etag(), &current.name())?;
    let now = tx.now_us();
    let updated = current.change_state(change.target, change.reason, change.effective_date, now)?;
    if !store::update_if_version(tx.conn(), &updated, current.version).await? {
        return Err(etag::concurrent(&current.name()));
    }
    let response = enterprise_to_proto(&updated);
    tx.record(&updated.name(), &updated)?;
    // A revoked or deregistered enterprise's support policies end with it (leading.proto,
    // SUPPORT_POLICY_STATE_ENDED), in the same transaction and audited.
    for ended in
        crate::store::leading::end_active_policies(tx.conn(), updated.uscc.as_str(), now).await?
    {
        tx.record(&ended.name(), &ended)?;
    }
    tx.commit(&response).await?;
    tracing::info!(
        enterprise = %updated.name(),
        state = updated.state.as_str(),
        "enterprise state changed"
    );
    Ok(response)
}

pub(super) async fn revoke_enterprise(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::RevokeEnterpriseRequest,
) -> Result<pb::Enterprise, ApiError> {
    let change = Change {
        target: EnterpriseState::Revoked,
        reason: parse_reason(&req.reason)?,
        effective_date: parse_effective_date(&req.effective_date, api.today())?,
        etag: req.etag.clone(),
    };
    let response = change_state(api, ctx, &req.name, &req.request_id, &req, change).await?;
    Ok(response)
}

pub(super) async fn deregister_enterprise(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::DeregisterEnterpriseRequest,
) -> Result<pb::Enterprise, ApiError> {
    let change = Change {
        target: EnterpriseState::Deregistered,
        reason: parse_reason(&req.reason)?,
        effective_date: parse_effective_date(&req.effective_date, api.today())?,
        etag: req.etag.clone(),
    };
    let response = change_state(api, ctx, &req.name, &req.request_id, &req, change).await?;
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
