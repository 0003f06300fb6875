//! The tonic implementation of `qilu.review.v1.AchievementReviewService`. Thin on purpose: each
//! RPC delegates to the module of its concept, which parses the request (`convert`), calls the
//! domain and the store, and converts the answer. One module per concept:
//!
//! | module | RPCs |
//! |---|---|
//! | `achievements` | create, get, list, update, submit (registry check + screening), withdraw |
//! | `rule_sets` | veto rule sets (versioned data) and the dry-run `ScreenAchievement` |
//! | `experts` | experts and declared conflicts |
//! | `assignment` | `AssignReviewers`, automatic and manual |
//! | `reviews` | submit, get, list reviews (blind until one's own is in) |
//! | `decisions` | finalize, appeal, resolve, batch status for the awards service |
//! | `audit` | audit log |
//!
//! Who may call each RPC is `roles.rs`, enforced before any handler runs; "own only",
//! "assigned" and the blind rule are enforced here, through [`Scope`].

mod achievements;
mod assignment;
mod audit;
mod decisions;
mod experts;
mod reviews;
mod rule_sets;

use chrono_tz::Tz;
use qilu_common::auth::Role;
use qilu_common::client::Peer;
use qilu_common::{ApiError, CallContext};
use qilu_proto::common as cpb;
use qilu_proto::registry as rpb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::review as pb;
use qilu_proto::review::achievement_review_service_server::AchievementReviewService;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tonic::{Code, Request, Response, Status};

use crate::Clock;
use crate::convert::ACHIEVEMENT_TYPE;
use crate::domain::achievement::Achievement;
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
            Ok(e) => Err(ApiError::precondition(
                "OWNER_NOT_ACTIVE",
                name.clone(),
                format!(
                    "{name} is {} in the registry; only an ACTIVE enterprise may hold achievements under review",
                    rpb::EnterpriseState::try_from(e.state)
                        .map(|s| s.as_str_name())
                        .unwrap_or("in an unknown state")
                ),
            )),
            Err(err) if err.code() == Some(Code::NotFound) => Err(ApiError::precondition(
                "OWNER_NOT_REGISTERED",
                name.clone(),
                format!("{name} is not registered in the enterprise registry"),
            )),
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
        id: &str,
    ) -> Result<Achievement, ApiError> {
        achievement_store::get(conn, id)
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
        id: &str,
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
        if ctx.caller.is_staff() {
            Scope::Staff
        } else if ctx.has_role(Role::Expert) && ctx.caller.expert.is_some() {
            Scope::Expert(ctx.caller.expert.clone().unwrap_or_default())
        } else if ctx.has_role(Role::Enterprise) {
            Scope::Enterprise(ctx.enterprise_scope().unwrap_or("").to_string())
        } else {
            // An expert token without its claim is scoped to nothing at all.
            Scope::Expert(String::new())
        }
    }
}

pub(crate) fn achievement_not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: ACHIEVEMENT_TYPE,
        name: format!("achievements/{id}"),
    }
}

/// A stale etag (when one is given) → ABORTED.
pub(crate) fn check_etag(given: &str, current: &str, name: &str) -> Result<(), ApiError> {
    if !given.is_empty() && given != current {
        return Err(ApiError::Aborted(format!(
            "{name} changed since etag {given} was read; read it again and retry"
        )));
    }
    Ok(())
}

/// A lost optimistic-concurrency race → ABORTED.
pub(crate) fn concurrent(name: &str) -> ApiError {
    ApiError::Aborted(format!("{name} changed concurrently; retry"))
}

/// A new server-assigned id: time-ordered (UUIDv7), so names sort by creation.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

#[tonic::async_trait]
impl AchievementReviewService for ReviewApi {
    async fn create_achievement(
        &self,
        request: Request<pb::CreateAchievementRequest>,
    ) -> Result<Response<pb::Achievement>, Status> {
        achievements::create_achievement(self, request).await
    }

    async fn get_achievement(
        &self,
        request: Request<pb::GetAchievementRequest>,
    ) -> Result<Response<pb::Achievement>, Status> {
        achievements::get_achievement(self, request).await
    }

    async fn list_achievements(
        &self,
        request: Request<pb::ListAchievementsRequest>,
    ) -> Result<Response<pb::ListAchievementsResponse>, Status> {
        achievements::list_achievements(self, request).await
    }

    async fn update_achievement(
        &self,
        request: Request<pb::UpdateAchievementRequest>,
    ) -> Result<Response<pb::Achievement>, Status> {
        achievements::update_achievement(self, request).await
    }

    async fn submit_achievement(
        &self,
        request: Request<pb::SubmitAchievementRequest>,
    ) -> Result<Response<pb::Achievement>, Status> {
        achievements::submit_achievement(self, request).await
    }

    async fn withdraw_achievement(
        &self,
        request: Request<pb::WithdrawAchievementRequest>,
    ) -> Result<Response<pb::Achievement>, Status> {
        achievements::withdraw_achievement(self, request).await
    }

    async fn create_veto_rule_set(
        &self,
        request: Request<pb::CreateVetoRuleSetRequest>,
    ) -> Result<Response<pb::VetoRuleSet>, Status> {
        rule_sets::create_veto_rule_set(self, request).await
    }

    async fn get_veto_rule_set(
        &self,
        request: Request<pb::GetVetoRuleSetRequest>,
    ) -> Result<Response<pb::VetoRuleSet>, Status> {
        rule_sets::get_veto_rule_set(self, request).await
    }

    async fn list_veto_rule_sets(
        &self,
        request: Request<pb::ListVetoRuleSetsRequest>,
    ) -> Result<Response<pb::ListVetoRuleSetsResponse>, Status> {
        rule_sets::list_veto_rule_sets(self, request).await
    }

    async fn activate_veto_rule_set(
        &self,
        request: Request<pb::ActivateVetoRuleSetRequest>,
    ) -> Result<Response<pb::VetoRuleSet>, Status> {
        rule_sets::activate_veto_rule_set(self, request).await
    }

    async fn screen_achievement(
        &self,
        request: Request<pb::ScreenAchievementRequest>,
    ) -> Result<Response<pb::ScreeningVerdict>, Status> {
        rule_sets::screen_achievement(self, request).await
    }

    async fn create_expert(
        &self,
        request: Request<pb::CreateExpertRequest>,
    ) -> Result<Response<pb::Expert>, Status> {
        experts::create_expert(self, request).await
    }

    async fn get_expert(
        &self,
        request: Request<pb::GetExpertRequest>,
    ) -> Result<Response<pb::Expert>, Status> {
        experts::get_expert(self, request).await
    }

    async fn list_experts(
        &self,
        request: Request<pb::ListExpertsRequest>,
    ) -> Result<Response<pb::ListExpertsResponse>, Status> {
        experts::list_experts(self, request).await
    }

    async fn update_expert(
        &self,
        request: Request<pb::UpdateExpertRequest>,
    ) -> Result<Response<pb::Expert>, Status> {
        experts::update_expert(self, request).await
    }

    async fn declare_conflict(
        &self,
        request: Request<pb::DeclareConflictRequest>,
    ) -> Result<Response<pb::Expert>, Status> {
        experts::declare_conflict(self, request).await
    }

    async fn assign_reviewers(
        &self,
        request: Request<pb::AssignReviewersRequest>,
    ) -> Result<Response<pb::AssignReviewersResponse>, Status> {
        assignment::assign_reviewers(self, request).await
    }

    async fn submit_review(
        &self,
        request: Request<pb::SubmitReviewRequest>,
    ) -> Result<Response<pb::Review>, Status> {
        reviews::submit_review(self, request).await
    }

    async fn get_review(
        &self,
        request: Request<pb::GetReviewRequest>,
    ) -> Result<Response<pb::Review>, Status> {
        reviews::get_review(self, request).await
    }

    async fn list_reviews(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Result<Response<pb::ListReviewsResponse>, Status> {
        reviews::list_reviews(self, request).await
    }

    async fn finalize_decision(
        &self,
        request: Request<pb::FinalizeDecisionRequest>,
    ) -> Result<Response<pb::Achievement>, Status> {
        decisions::finalize_decision(self, request).await
    }

    async fn appeal_veto(
        &self,
        request: Request<pb::AppealVetoRequest>,
    ) -> Result<Response<pb::Achievement>, Status> {
        decisions::appeal_veto(self, request).await
    }

    async fn resolve_appeal(
        &self,
        request: Request<pb::ResolveAppealRequest>,
    ) -> Result<Response<pb::Achievement>, Status> {
        decisions::resolve_appeal(self, request).await
    }

    async fn batch_get_achievement_status(
        &self,
        request: Request<pb::BatchGetAchievementStatusRequest>,
    ) -> Result<Response<pb::BatchGetAchievementStatusResponse>, Status> {
        decisions::batch_get_achievement_status(self, request).await
    }

    async fn list_audit_events(
        &self,
        request: Request<cpb::ListAuditEventsRequest>,
    ) -> Result<Response<cpb::ListAuditEventsResponse>, Status> {
        audit::list_audit_events(self, request).await
    }

    async fn verify_audit_chain(
        &self,
        request: Request<cpb::VerifyAuditChainRequest>,
    ) -> Result<Response<cpb::VerifyAuditChainResponse>, Status> {
        audit::verify_audit_chain(self, request).await
    }
}
