//! Revoke and deregister an enterprise (custom methods `:revoke`, `:deregister`, AIP-136).
//!
//! Legal transitions only (`EnterpriseState::may_become`); anything else is FAILED_PRECONDITION
//! naming the current state (`domain::enterprise::StateChangeRefused`). Each
//! change records its reason, the commit time and the date it took legal effect (default: today
//! in the programme time zone), bumps the version (new etag) and is audited.

use crate::convert::leading::policies::policy_to_proto;
use qilu_common::input::{check_current, etag};
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;

use crate::convert::enterprise::{StateChangeInput, parse_state_change};
use crate::convert::parse_enterprise_name;
use crate::domain::enterprise::EnterpriseState;
use crate::store::enterprise as store;

use super::RegistryApi;
use super::enterprises::not_found;

async fn change_state<R: prost::Message>(
    api: &RegistryApi,
    ctx: &CallContext,
    name: &str,
    request_id: &str,
    request: &R,
    change: StateChangeInput,
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
    let response = super::enterprises::as_read(tx.conn(), &updated, api.today()).await?;
    tx.record(&updated.name(), &updated, &response)?;
    // A revoked or deregistered enterprise's support policies end with it (leading.proto,
    // SUPPORT_POLICY_STATE_ENDED), in the same transaction and audited.
    for ended in
        crate::store::leading::end_active_policies(tx.conn(), updated.uscc.as_str(), now).await?
    {
        let published = policy_to_proto(&ended, api.today());
        tx.record(&ended.name(), &ended, &published)?;
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
    let change = parse_state_change(
        EnterpriseState::Revoked,
        &req.reason,
        &req.effective_date,
        &req.etag,
        api.today(),
    )?;
    let response = change_state(api, ctx, &req.name, &req.request_id, &req, change).await?;
    Ok(response)
}

pub(super) async fn deregister_enterprise(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::DeregisterEnterpriseRequest,
) -> Result<pb::Enterprise, ApiError> {
    let change = parse_state_change(
        EnterpriseState::Deregistered,
        &req.reason,
        &req.effective_date,
        &req.etag,
        api.today(),
    )?;
    let response = change_state(api, ctx, &req.name, &req.request_id, &req, change).await?;
    Ok(response)
}
