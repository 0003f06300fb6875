//! The tonic implementation of `qilu.awards.v1.AwardAllocationService`. Thin on purpose: each
//! RPC delegates to the module of its concept, which parses the request (`convert`), loads,
//! decides (`domain`, refusals from `domain::refusal`), stores, records and commits. One module per concept:
//!
//! | module | RPCs |
//! |---|---|
//! | `programs` | create, get, list, update, open, close, publish, finalize |
//! | `applications` | create (registry and review checked first), get, list, withdraw |
//! | `allocation` | `AllocateProgram` (preview or run), `StartAllocation` (the run as an operation), `GetAllocation`, `ListAllocationEntries`, `ListAllocationRevisions` |
//! | `objections` | file, get, list, resolve (upheld → a new allocation revision) |
//! | `statistics` | `GetFieldDistribution` |
//! | `ceilings` | (no RPC) the statutory ceilings, checked on create/update/open and allocation |
//! | `audit` | audit log |
//! | `changes` | the change feed: list, watch, head, snapshot (each change as the caller may read it) |
//!
//! Who may call each RPC is `roles.rs`, enforced before any handler runs; "own only", DRAFT
//! visibility and objector confidentiality are enforced here. Peer services are called before
//! any write transaction opens, so a peer that is down (UNAVAILABLE) leaves nothing written.

mod allocation;
mod applications;
mod audit;
mod ceilings;
mod changes;
mod objections;
mod programs;
mod statistics;

pub(crate) use allocation::{AllocationRunner, START_ALLOCATION};

use std::collections::HashMap;

use chrono_tz::Tz;
use qilu_common::client::Peer;
use qilu_common::operations::Operations;
use qilu_common::{ApiError, CallContext};
use qilu_proto::awards as pb;
use qilu_proto::awards::award_allocation_service_server::AwardAllocationService;
use qilu_proto::common as cpb;
use qilu_proto::registry as rpb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review as vpb;
use qilu_proto::review::achievement_review_service_client::AchievementReviewServiceClient;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tonic::Code;
use tonic::codegen::BoxStream;

use crate::Clock;
use crate::convert::PROGRAM_TYPE;
use crate::domain::ids::ProgramId;
use crate::domain::program::{self, Program};
use crate::domain::refusal::Ineligible;
use crate::store::program as program_store;

/// Most names one batch call to a peer carries (the peers' contract).
const PEER_BATCH: usize = 1000;

/// The service's gRPC handlers and what they share.
#[derive(Debug, Clone)]
pub struct AwardsApi {
    db: DatabaseConnection,
    registry: Peer,
    review: Peer,
    time_zone: Tz,
    clock: Clock,
    /// Long-running operations (`StartAllocation`).
    operations: Operations,
}

impl AwardsApi {
    /// Handlers over `db`, calling the registry and the review service, with the programme time
    /// zone and the clock windows are checked against.
    pub fn new(
        db: DatabaseConnection,
        registry: Peer,
        review: Peer,
        time_zone: Tz,
        clock: Clock,
        operations: Operations,
    ) -> Self {
        AwardsApi {
            db,
            registry,
            review,
            time_zone,
            clock,
            operations,
        }
    }

    /// Today in the programme time zone, by the service clock.
    fn today(&self) -> chrono::NaiveDate {
        program::today(self.clock.now_us(), self.time_zone)
    }

    /// A program by id, or NOT_FOUND.
    async fn load_program(
        &self,
        conn: &impl ConnectionTrait,
        id: &ProgramId,
    ) -> Result<Program, ApiError> {
        program_store::get(conn, id.as_str())
            .await?
            .ok_or_else(|| program_not_found(id))
    }

    /// One enterprise from the registry. NOT_FOUND there is a failed precondition here.
    async fn enterprise(&self, ctx: &CallContext, uscc: &str) -> Result<rpb::Enterprise, ApiError> {
        self.registered(ctx, uscc).await?.ok_or_else(|| {
            Ineligible::EnterpriseNotRegistered {
                enterprise: format!("enterprises/{uscc}"),
            }
            .into()
        })
    }

    /// One enterprise from the registry, `None` when the registry does not know it (or refuses
    /// the code as malformed).
    async fn registered(
        &self,
        ctx: &CallContext,
        uscc: &str,
    ) -> Result<Option<rpb::Enterprise>, ApiError> {
        let name = format!("enterprises/{uscc}");
        let result = self
            .registry
            .call(
                ctx,
                rpb::GetEnterpriseRequest { name: name.clone() },
                |channel, r| async move {
                    EnterpriseRegistryServiceClient::new(channel)
                        .get_enterprise(r)
                        .await
                },
            )
            .await;
        match result {
            Ok(e) => Ok(Some(e)),
            Err(err) if matches!(err.code(), Some(Code::NotFound | Code::InvalidArgument)) => {
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Enterprises by USCC from the registry in batches; an unknown one is absent from the map.
    async fn enterprises(
        &self,
        ctx: &CallContext,
        usccs: &[String],
    ) -> Result<HashMap<String, rpb::Enterprise>, ApiError> {
        let mut out = HashMap::new();
        for chunk in usccs.chunks(PEER_BATCH) {
            let names: Vec<String> = chunk.iter().map(|u| format!("enterprises/{u}")).collect();
            let result = self
                .registry
                .call(
                    ctx,
                    rpb::BatchGetEnterprisesRequest { names },
                    |channel, r| async move {
                        EnterpriseRegistryServiceClient::new(channel)
                            .batch_get_enterprises(r)
                            .await
                    },
                )
                .await;
            match result {
                Ok(resp) => {
                    for e in resp.enterprises {
                        out.insert(e.uscc.clone(), e);
                    }
                }
                // One unknown name fails the whole batch (AIP-231): ask one by one.
                Err(err) if err.code() == Some(Code::NotFound) => {
                    for u in chunk {
                        if let Some(e) = self.registered(ctx, u).await? {
                            out.insert(u.clone(), e);
                        }
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(out)
    }

    /// Achievement facts from the review service, by achievement id, in batches.
    async fn achievement_statuses(
        &self,
        ctx: &CallContext,
        ids: &[String],
    ) -> Result<HashMap<String, vpb::AchievementStatus>, ApiError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(PEER_BATCH) {
            let names: Vec<String> = chunk.iter().map(|i| format!("achievements/{i}")).collect();
            let resp = self
                .review
                .call(
                    ctx,
                    vpb::BatchGetAchievementStatusRequest { names },
                    |channel, r| async move {
                        AchievementReviewServiceClient::new(channel)
                            .batch_get_achievement_status(r)
                            .await
                    },
                )
                .await?;
            for s in resp.statuses {
                if let Some(id) = s.name.strip_prefix("achievements/") {
                    out.insert(id.to_string(), s.clone());
                }
            }
        }
        Ok(out)
    }
}

/// NOT_FOUND for a program.
pub(crate) fn program_not_found(id: &ProgramId) -> ApiError {
    ApiError::NotFound {
        resource_type: PROGRAM_TYPE,
        name: id.name(),
    }
}

/// A new server-assigned id: time-ordered (UUIDv7), so names sort by creation.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Whether the caller sees programs in DRAFT (staff do; enterprise and expert tokens do not).
pub(crate) fn sees_drafts(ctx: &CallContext) -> bool {
    ctx.caller.is_staff()
}

qilu_common::service_impl! {
    impl AwardAllocationService for AwardsApi {
        type WatchChangesStream = BoxStream<pb::WatchChangesResponse>;
        type ExportSnapshotStream = BoxStream<pb::ExportSnapshotResponse>;
        rpc create_program(pb::CreateProgramRequest) -> pb::Program = programs::create_program;
        rpc get_program(pb::GetProgramRequest) -> pb::Program = programs::get_program;
        rpc list_programs(pb::ListProgramsRequest) -> pb::ListProgramsResponse = programs::list_programs;
        rpc update_program(pb::UpdateProgramRequest) -> pb::Program = programs::update_program;
        rpc delete_program(pb::DeleteProgramRequest) -> () = programs::delete_program;
        rpc open_program(pb::OpenProgramRequest) -> pb::Program = programs::open_program;
        rpc close_program(pb::CloseProgramRequest) -> pb::Program = programs::close_program;
        rpc allocate_program(pb::AllocateProgramRequest) -> pb::Allocation = allocation::allocate_program;
        rpc start_allocation(pb::StartAllocationRequest) -> qilu_proto::longrunning::Operation = allocation::start_allocation;
        rpc get_allocation(pb::GetAllocationRequest) -> pb::Allocation = allocation::get_allocation;
        rpc list_allocation_entries(pb::ListAllocationEntriesRequest) -> pb::ListAllocationEntriesResponse = allocation::list_allocation_entries;
        rpc list_allocation_revisions(pb::ListAllocationRevisionsRequest) -> pb::ListAllocationRevisionsResponse = allocation::list_allocation_revisions;
        rpc publish_results(pb::PublishResultsRequest) -> pb::Program = programs::publish_results;
        rpc finalize_program(pb::FinalizeProgramRequest) -> pb::Program = programs::finalize_program;
        rpc create_application(pb::CreateApplicationRequest) -> pb::Application = applications::create_application;
        rpc get_application(pb::GetApplicationRequest) -> pb::Application = applications::get_application;
        rpc list_applications(pb::ListApplicationsRequest) -> pb::ListApplicationsResponse = applications::list_applications;
        rpc withdraw_application(pb::WithdrawApplicationRequest) -> pb::Application = applications::withdraw_application;
        rpc file_objection(pb::FileObjectionRequest) -> pb::Objection = objections::file_objection;
        rpc get_objection(pb::GetObjectionRequest) -> pb::Objection = objections::get_objection;
        rpc resolve_objection(pb::ResolveObjectionRequest) -> pb::Objection = objections::resolve_objection;
        rpc list_objections(pb::ListObjectionsRequest) -> pb::ListObjectionsResponse = objections::list_objections;
        rpc get_field_distribution(pb::GetFieldDistributionRequest) -> pb::FieldDistribution = statistics::get_field_distribution;
        rpc list_audit_events(cpb::ListAuditEventsRequest) -> cpb::ListAuditEventsResponse = audit::list_audit_events;
        rpc verify_audit_chain(cpb::VerifyAuditChainRequest) -> cpb::VerifyAuditChainResponse = audit::verify_audit_chain;
        rpc list_changes(pb::ListChangesRequest) -> pb::ListChangesResponse = changes::list_changes;
        rpc watch_changes(pb::WatchChangesRequest) -> BoxStream<pb::WatchChangesResponse> = changes::watch_changes;
        rpc get_change_feed_head(pb::GetChangeFeedHeadRequest) -> pb::ChangeFeedHead = changes::get_change_feed_head;
        rpc export_snapshot(pb::ExportSnapshotRequest) -> BoxStream<pb::ExportSnapshotResponse> = changes::export_snapshot;
    }
}
