//! The tonic implementation of `qilu.review.v1.AchievementReviewService`. Thin on purpose: each
//! RPC delegates to the module of its concept, which parses the request (`convert`), loads,
//! decides (`domain`, refusals from `domain::refusal`), stores, records and commits. One module per concept:
//!
//! | module | RPCs |
//! |---|---|
//! | `achievements` | create, get, list, update, submit (registry check + screening), withdraw, delete (drafts) |
//! | `rule_sets` | veto rule sets (versioned data; delete if never activated) and the dry-run `ScreenAchievement` |
//! | `experts` | experts and declared conflicts |
//! | `assignment` | `AssignReviewers`, automatic and manual, with due dates |
//! | `reassignment` | an admin's `CancelReview` and `ReassignReview` of an open review |
//! | `reviews` | submit, get, list reviews (blind until one's own is in) |
//! | `decisions` | finalize, appeal, resolve, batch status for the awards service |
//! | `changes` | the change feed: list, watch, head, snapshot |
//! | `audit` | audit log |
//!
//! Who may call each RPC is `roles.rs`, enforced before any handler runs; "own only",
//! "assigned" and the blind rule are enforced here, through [`Scope`].

mod achievements;
mod assignment;
mod audit;
mod changes;
mod decisions;
mod experts;
mod reassignment;
mod reviews;
mod rule_sets;

use chrono_tz::Tz;
use qilu_common::auth::{Caller, Role};
use qilu_common::client::Peer;
use qilu_common::{ApiError, CallContext};
use qilu_proto::common as cpb;
use qilu_proto::registry as rpb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review as pb;
use qilu_proto::review::achievement_review_service_server::AchievementReviewService;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tonic::Code;
use tonic::codegen::BoxStream;

use crate::Clock;
use crate::convert::ACHIEVEMENT_TYPE;
use crate::domain::achievement::Achievement;
use crate::domain::ids::AchievementId;
use crate::domain::refusal::OwnerRefused;
use crate::domain::review::ReviewState;
use crate::store::{achievement as achievement_store, review as review_store};

/// The service's gRPC handlers and what they share.
#[derive(Debug, Clone)]
pub struct ReviewApi {
    db: DatabaseConnection,
    registry: Peer,
    time_zone: Tz,
    clock: Clock,
}

impl ReviewApi {
    /// Handlers over `db`, calling the registry through `registry`, with the programme time zone
    /// and the clock deadlines are checked against.
    pub fn new(db: DatabaseConnection, registry: Peer, time_zone: Tz, clock: Clock) -> Self {
        ReviewApi {
            db,
            registry,
            time_zone,
            clock,
        }
    }

    /// Asks the registry whether `uscc` is registered and ACTIVE. Called before any write
    /// transaction opens, so an unreachable registry (UNAVAILABLE) leaves nothing half-written.
    async fn check_registered(
        &self,
        ctx: &CallContext,
        uscc: &str,
        field: &str,
    ) -> Result<(), ApiError> {
        let name = format!("enterprises/{uscc}");
        let request = rpb::GetEnterpriseRequest { name: name.clone() };
        let result = self
            .registry
            .call(ctx, request, |channel, r| async move {
                EnterpriseRegistryServiceClient::new(channel)
                    .get_enterprise(r)
                    .await
            })
            .await;
        match result {
            Ok(e) if e.state == rpb::EnterpriseState::Active as i32 => Ok(()),
            Ok(e) => Err(OwnerRefused::NotActive {
                name,
                state: rpb::EnterpriseState::try_from(e.state)
                    .map(|s| s.as_str_name())
                    .unwrap_or("in an unknown state")
                    .to_string(),
            }
            .into()),
            Err(err) if err.code() == Some(Code::NotFound) => {
                Err(OwnerRefused::NotRegistered { name }.into())
            }
            Err(err) if err.code() == Some(Code::InvalidArgument) => Err(ApiError::invalid(
                field,
                "INVALID_USCC",
                format!("the registry rejects {name} as a Unified Social Credit Code"),
            )),
            Err(err) => Err(err.into()),
        }
    }

    /// An achievement by id, as stored.
    async fn load_achievement(
        &self,
        conn: &impl ConnectionTrait,
        id: &AchievementId,
    ) -> Result<Achievement, ApiError> {
        achievement_store::get(conn, id.as_str())
            .await?
            .ok_or_else(|| achievement_not_found(id))?
            .into_domain()
            .map_err(ApiError::internal)
    }

    /// An achievement the caller may see: staff any; an enterprise its own; an expert those it
    /// holds a (not cancelled) review of. Anything else is NOT_FOUND, so a caller learns nothing
    /// about achievements that are not its business.
    async fn visible_achievement(
        &self,
        conn: &impl ConnectionTrait,
        ctx: &CallContext,
        id: &AchievementId,
    ) -> Result<Achievement, ApiError> {
        let a = self.load_achievement(conn, id).await?;
        if can_see(conn, ctx, &a).await? {
            Ok(a)
        } else {
            Err(achievement_not_found(id))
        }
    }
}

/// Whether the caller may see achievement `a`.
async fn can_see(
    conn: &impl ConnectionTrait,
    ctx: &CallContext,
    a: &Achievement,
) -> Result<bool, ApiError> {
    Ok(match Scope::of(ctx) {
        Scope::Staff => true,
        Scope::Enterprise(uscc) => uscc == a.owner,
        Scope::Expert(expert) => review_store::of_expert(conn, &expert)
            .await?
            .iter()
            .any(|r| r.achievement_id == a.id && r.state != ReviewState::Cancelled.code()),
    })
}

/// Whom a caller acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// admin, officer, auditor, service: every record.
    Staff,
    /// An enterprise token: its own achievements only (the USCC of its claim).
    Enterprise(String),
    /// An expert token: achievements it is assigned to (the expert id of its claim).
    Expert(String),
}

impl Scope {
    pub(crate) fn of(ctx: &CallContext) -> Scope {
        Scope::of_caller(&ctx.caller)
    }

    /// [`Scope::of`] from the caller alone (the change feed decides per change, apart from the
    /// call's context).
    pub(crate) fn of_caller(caller: &Caller) -> Scope {
        if caller.is_staff() {
            Scope::Staff
        } else if caller.roles.contains(&Role::Expert) && caller.expert.is_some() {
            Scope::Expert(caller.expert.clone().unwrap_or_default())
        } else if caller.roles.contains(&Role::Enterprise) {
            // Not staff, so scoped; a token without its `enterprise` claim to nothing at all.
            Scope::Enterprise(caller.enterprise.clone().unwrap_or_default())
        } else {
            // An expert token without its claim is scoped to nothing at all.
            Scope::Expert(String::new())
        }
    }
}

pub(crate) fn achievement_not_found(id: &AchievementId) -> ApiError {
    ApiError::NotFound {
        resource_type: ACHIEVEMENT_TYPE,
        name: id.name(),
    }
}

/// A new server-assigned id: time-ordered (UUIDv7), so names sort by creation.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

qilu_common::service_impl! {
    impl AchievementReviewService for ReviewApi {
        type WatchChangesStream = BoxStream<pb::WatchChangesResponse>;
        type ExportSnapshotStream = BoxStream<pb::ExportSnapshotResponse>;
        rpc create_achievement(pb::CreateAchievementRequest) -> pb::Achievement = achievements::create_achievement;
        rpc get_achievement(pb::GetAchievementRequest) -> pb::Achievement = achievements::get_achievement;
        rpc list_achievements(pb::ListAchievementsRequest) -> pb::ListAchievementsResponse = achievements::list_achievements;
        rpc update_achievement(pb::UpdateAchievementRequest) -> pb::Achievement = achievements::update_achievement;
        rpc submit_achievement(pb::SubmitAchievementRequest) -> pb::Achievement = achievements::submit_achievement;
        rpc withdraw_achievement(pb::WithdrawAchievementRequest) -> pb::Achievement = achievements::withdraw_achievement;
        rpc delete_achievement(pb::DeleteAchievementRequest) -> () = achievements::delete_achievement;
        rpc create_veto_rule_set(pb::CreateVetoRuleSetRequest) -> pb::VetoRuleSet = rule_sets::create_veto_rule_set;
        rpc get_veto_rule_set(pb::GetVetoRuleSetRequest) -> pb::VetoRuleSet = rule_sets::get_veto_rule_set;
        rpc list_veto_rule_sets(pb::ListVetoRuleSetsRequest) -> pb::ListVetoRuleSetsResponse = rule_sets::list_veto_rule_sets;
        rpc activate_veto_rule_set(pb::ActivateVetoRuleSetRequest) -> pb::VetoRuleSet = rule_sets::activate_veto_rule_set;
        rpc delete_veto_rule_set(pb::DeleteVetoRuleSetRequest) -> () = rule_sets::delete_veto_rule_set;
        rpc screen_achievement(pb::ScreenAchievementRequest) -> pb::ScreeningVerdict = rule_sets::screen_achievement;
        rpc create_expert(pb::CreateExpertRequest) -> pb::Expert = experts::create_expert;
        rpc get_expert(pb::GetExpertRequest) -> pb::Expert = experts::get_expert;
        rpc list_experts(pb::ListExpertsRequest) -> pb::ListExpertsResponse = experts::list_experts;
        rpc update_expert(pb::UpdateExpertRequest) -> pb::Expert = experts::update_expert;
        rpc declare_conflict(pb::DeclareConflictRequest) -> pb::Expert = experts::declare_conflict;
        rpc assign_reviewers(pb::AssignReviewersRequest) -> pb::AssignReviewersResponse = assignment::assign_reviewers;
        rpc cancel_review(pb::CancelReviewRequest) -> pb::Review = reassignment::cancel_review;
        rpc reassign_review(pb::ReassignReviewRequest) -> pb::ReassignReviewResponse = reassignment::reassign_review;
        rpc submit_review(pb::SubmitReviewRequest) -> pb::Review = reviews::submit_review;
        rpc get_review(pb::GetReviewRequest) -> pb::Review = reviews::get_review;
        rpc list_reviews(pb::ListReviewsRequest) -> pb::ListReviewsResponse = reviews::list_reviews;
        rpc finalize_decision(pb::FinalizeDecisionRequest) -> pb::Achievement = decisions::finalize_decision;
        rpc appeal_veto(pb::AppealVetoRequest) -> pb::Achievement = decisions::appeal_veto;
        rpc resolve_appeal(pb::ResolveAppealRequest) -> pb::Achievement = decisions::resolve_appeal;
        rpc batch_get_achievement_status(pb::BatchGetAchievementStatusRequest) -> pb::BatchGetAchievementStatusResponse = decisions::batch_get_achievement_status;
        rpc list_changes(pb::ListChangesRequest) -> pb::ListChangesResponse = changes::list_changes;
        rpc watch_changes(pb::WatchChangesRequest) -> BoxStream<pb::WatchChangesResponse> = changes::watch_changes;
        rpc get_change_feed_head(pb::GetChangeFeedHeadRequest) -> pb::ChangeFeedHead = changes::get_change_feed_head;
        rpc export_snapshot(pb::ExportSnapshotRequest) -> BoxStream<pb::ExportSnapshotResponse> = changes::export_snapshot;
        rpc list_audit_events(cpb::ListAuditEventsRequest) -> cpb::ListAuditEventsResponse = audit::list_audit_events;
        rpc verify_audit_chain(cpb::VerifyAuditChainRequest) -> cpb::VerifyAuditChainResponse = audit::verify_audit_chain;
    }
}
