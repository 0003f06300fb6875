//! The registry's change feed (`ListChanges`, `WatchChanges`, `GetChangeFeedHead`,
//! `ExportSnapshot`) on the common engine ([`qilu_common::feed`]): this module names the
//! registry's resource types and turns an audit event into a `Change`, decoding the published
//! state the write recorded into the `new_state` oneof.
//!
//! Every caller the role table admits (admin, officer, auditor, service) may read every registry
//! resource, so no change is hidden or redacted. Events written by Qilu 0.1 carry no published
//! state: for them an enterprise's state is decoded from its audit JSON as 0.1 did, and other
//! types go without `new_state` (the sweep records a fresh state for every resource whose state
//! as read today differs from what the feed last said).

use chrono::NaiveDate;
use qilu_common::ApiError;
use qilu_common::audit::entity as audit_entity;
use qilu_common::auth::Caller;
use qilu_common::context::CallContext;
use qilu_common::feed::{self, ChangeHead, FeedSpec, decode_state};
use qilu_proto::registry as pb;
use serde::Deserialize;
use tonic::codegen::BoxStream;

use crate::convert::ENTERPRISE_TYPE;
use crate::convert::certification::CERTIFICATE_TYPE;
use crate::convert::enterprise_to_proto;
use crate::convert::figures::ANNUAL_FIGURES_TYPE;
use crate::convert::zones::{CLUSTER_TYPE, ZONE_TYPE};
use crate::domain::enterprise::{Enterprise, EnterpriseFields, EnterpriseState, StateChange};
use crate::domain::uscc::{KnownExceptions, Uscc};

use super::RegistryApi;

/// Resource types by the collection path of their names (AIP-122 patterns of the contract).
const RESOURCE_TYPES: &[(&str, &str)] = &[
    ("enterprises", ENTERPRISE_TYPE),
    ("enterprises/annualFigures", ANNUAL_FIGURES_TYPE),
    ("enterprises/highTechCertificates", CERTIFICATE_TYPE),
    (
        "enterprises/supportPolicies",
        "registry.qilu.gov.cn/SupportPolicy",
    ),
    ("leadingCohorts", "registry.qilu.gov.cn/LeadingCohort"),
    (
        "leadingCohorts/members",
        "registry.qilu.gov.cn/LeadingCohortMember",
    ),
    ("zones", ZONE_TYPE),
    ("clusters", CLUSTER_TYPE),
    ("policyTargets", "registry.qilu.gov.cn/PolicyTarget"),
];

/// The registry's feed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RegistryFeed;

impl FeedSpec for RegistryFeed {
    type Change = pb::Change;

    fn resource_types(&self) -> &'static [(&'static str, &'static str)] {
        RESOURCE_TYPES
    }

    fn change(
        &self,
        _caller: &Caller,
        head: ChangeHead,
        event: &audit_entity::Model,
    ) -> Option<pb::Change> {
        let new_state = match head.kind {
            feed::ChangeKind::Deleted => None,
            _ => new_state(event),
        };
        Some(pb::Change {
            cursor: head.cursor,
            sequence: head.sequence,
            resource: head.resource,
            resource_type: head.resource_type.to_string(),
            kind: head.kind as i32,
            commit_time: Some(head.commit_time),
            method: head.method,
            new_state,
        })
    }
}

/// The published state of `event` as the oneof's arm for its message.
fn new_state(event: &audit_entity::Model) -> Option<pb::change::NewState> {
    use pb::change::NewState;
    if event.state_type.is_empty() {
        return (feed::resource_type_of(RESOURCE_TYPES, &event.resource) == ENTERPRISE_TYPE)
            .then(|| decode_enterprise(&event.state_json))
            .flatten()
            .map(NewState::Enterprise);
    }
    let state = decode_state(event)
        .map(NewState::Enterprise)
        .or_else(|| decode_state(event).map(NewState::AnnualFigures))
        .or_else(|| decode_state(event).map(NewState::HighTechCertificate))
        .or_else(|| decode_state(event).map(NewState::LeadingCohort))
        .or_else(|| decode_state(event).map(NewState::LeadingCohortMember))
        .or_else(|| decode_state(event).map(NewState::SupportPolicy))
        .or_else(|| decode_state(event).map(NewState::Zone))
        .or_else(|| decode_state(event).map(NewState::Cluster))
        .or_else(|| decode_state(event).map(NewState::PolicyTarget));
    if state.is_none() {
        tracing::warn!(sequence = event.sequence, state_type = %event.state_type,
            "published state is of no type the registry's Change carries");
    }
    state
}

pub(super) async fn list_changes(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::ListChangesRequest,
) -> Result<pb::ListChangesResponse, ApiError> {
    let page = feed::list(
        &api.db,
        &RegistryFeed,
        ctx,
        &req.after_cursor,
        req.page_size,
        &req.filter,
    )
    .await?;
    Ok(pb::ListChangesResponse {
        changes: page.changes,
        next_cursor: page.next_cursor,
        caught_up: page.caught_up,
    })
}

pub(super) async fn watch_changes(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::WatchChangesRequest,
) -> Result<BoxStream<pb::WatchChangesResponse>, ApiError> {
    feed::watch(
        &api.db,
        RegistryFeed,
        ctx,
        &req.after_cursor,
        &req.filter,
        |changes, cursor| pb::WatchChangesResponse { changes, cursor },
    )
    .await
}

pub(super) async fn get_change_feed_head(
    api: &RegistryApi,
    _ctx: &CallContext,
    _req: pb::GetChangeFeedHeadRequest,
) -> Result<pb::ChangeFeedHead, ApiError> {
    let (cursor, sequence, commit_time) = feed::head(&api.db).await?;
    Ok(pb::ChangeFeedHead {
        cursor,
        sequence,
        commit_time,
    })
}

pub(super) async fn export_snapshot(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::ExportSnapshotRequest,
) -> Result<BoxStream<pb::ExportSnapshotResponse>, ApiError> {
    feed::export(
        &api.db,
        RegistryFeed,
        ctx,
        &req.filter,
        |changes, cursor| pb::ExportSnapshotResponse { changes, cursor },
    )
    .await
}

/// An enterprise's audit state as Qilu 0.1 wrote it (`Enterprise`'s `Serialize`), for the events
/// 0.1 wrote without a published state. Lenient on purpose: a state that no longer decodes only
/// loses `new_state`, never the change itself.
#[derive(Debug, Deserialize)]
struct EnterpriseJson {
    uscc: String,
    display_name: String,
    #[serde(default)]
    legal_representative: String,
    established_date: NaiveDate,
    #[serde(default)]
    address: String,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    technology_fields: Vec<i32>,
    #[serde(default)]
    green_category: i32,
    state: String,
    #[serde(default)]
    high_tech_certified: bool,
    #[serde(default)]
    leading: bool,
    create_time_us: i64,
    update_time_us: i64,
    version: i64,
    #[serde(default)]
    state_change: Option<StateChangeJson>,
}

#[derive(Debug, Deserialize)]
struct StateChangeJson {
    reason: String,
    change_time_us: i64,
    effective_date: NaiveDate,
}

fn decode_enterprise(state_json: &str) -> Option<pb::Enterprise> {
    let j: EnterpriseJson = serde_json::from_str(state_json).ok()?;
    // An allow-listed pilot code was accepted when written; admit it again as such.
    let uscc = Uscc::parse(&j.uscc, &KnownExceptions::default())
        .or_else(|_| Uscc::parse(&j.uscc, &KnownExceptions::new([j.uscc.as_str()])))
        .ok()?;
    let state = match j.state.as_str() {
        "ACTIVE" => EnterpriseState::Active,
        "REVOKED" => EnterpriseState::Revoked,
        "DEREGISTERED" => EnterpriseState::Deregistered,
        _ => return None,
    };
    let enterprise = Enterprise {
        uscc,
        fields: EnterpriseFields {
            display_name: j.display_name,
            legal_representative: j.legal_representative,
            established_date: j.established_date,
            address: j.address,
            zone: j.zone,
            technology_fields: j.technology_fields,
            green_category: j.green_category,
        },
        state,
        high_tech_certified: j.high_tech_certified,
        leading: j.leading,
        create_time_us: j.create_time_us,
        update_time_us: j.update_time_us,
        version: j.version,
        state_change: j.state_change.map(|c| StateChange {
            reason: c.reason,
            change_time_us: c.change_time_us,
            effective_date: c.effective_date,
        }),
    };
    Some(enterprise_to_proto(&enterprise))
}
