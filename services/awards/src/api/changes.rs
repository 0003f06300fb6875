//! The awards service's change feed (`ListChanges`, `WatchChanges`, `GetChangeFeedHead`,
//! `ExportSnapshot`) on the common engine ([`qilu_common::feed`]): this module names the awards
//! resource types and turns an audit event into a `Change` for one caller, decoding the
//! published state the write recorded (the unredacted proto its Get returns) into the
//! `new_state` oneof, then hiding or redacting it exactly as that resource's Get would:
//!
//! | resource | who sees its changes | redacted |
//! |---|---|---|
//! | program | `GetProgram`'s roles; a DRAFT only staff | — |
//! | application | `GetApplication`'s roles; enterprise tokens their own only | the outcome, for a non-staff caller, in changes made before publication |
//! | allocation | `GetAllocation`'s roles | staff: every change; others: changes made while published (`PublishResults`, `ResolveObjection`), redacted |
//! | objection | `GetObjection`'s roles; admin, auditor and officer all, others their own | the objector's identity, except for admin, auditor and the objector |
//!
//! "Their own" and the roles are read from the caller and the role table, the rest from the
//! published state itself (a program's stage, an application's enterprise, an objection's
//! objector), so a change is decided without reading the database.
//!
//! Get shows an applicant the outcome once its program is PUBLICIZED (or FINAL), which the
//! application's own state does not say. The stage machine does: applications are written by
//! `CreateApplication` (OPEN), `WithdrawApplication` (OPEN or CLOSED), `AllocateProgram`
//! (→ ALLOCATED), and, once published, by `PublishResults` (which records every application
//! whose outcome it reveals, see `programs::record_published_outcomes`) and an upheld
//! `ResolveObjection` (PUBLICIZED). So a change's outcome is shown to an applicant exactly when
//! the method that made it is one of the last two ([`outcome_published`]), and an applicant's
//! newest change always equals what its Get shows.
//!
//! Nothing an awards Get returns depends on the date (the application and objection windows only
//! refuse writes; every stage change is an explicit call), so the service has no sweep.

use qilu_common::ApiError;
use qilu_common::audit::entity as audit_entity;
use qilu_common::auth::{Caller, Role, authorize};
use qilu_common::context::CallContext;
use qilu_common::feed::{self, ChangeHead, FeedSpec, decode_state};
use qilu_proto::awards as pb;
use tonic::codegen::BoxStream;

use super::AwardsApi;
use crate::convert::application::hide_outcome;
use crate::convert::objection::hide_identity;
use crate::convert::{ALLOCATION_TYPE, APPLICATION_TYPE, OBJECTION_TYPE, PROGRAM_TYPE};
use crate::domain::program::State;
use crate::roles::ROLE_TABLE;

/// Resource types by the collection path of their names (AIP-122 patterns of the contract).
const RESOURCE_TYPES: &[(&str, &str)] = &[
    ("programs", PROGRAM_TYPE),
    ("programs/applications", APPLICATION_TYPE),
    ("programs/allocation", ALLOCATION_TYPE),
    ("programs/objections", OBJECTION_TYPE),
];

/// The methods that write applications only while a program's results are published.
const WRITTEN_WHILE_PUBLISHED: &[&str] = &["PublishResults", "ResolveObjection"];

/// Whether the change made by `method` (`package.Service/Method`) is one an applicant may see
/// the outcome of: it was made while the program's results were published.
pub(crate) fn outcome_published(method: &str) -> bool {
    let name = method.rsplit('/').next().unwrap_or("");
    WRITTEN_WHILE_PUBLISHED.contains(&name)
}

/// The awards feed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AwardsFeed;

impl FeedSpec for AwardsFeed {
    type Change = pb::Change;

    fn resource_types(&self) -> &'static [(&'static str, &'static str)] {
        RESOURCE_TYPES
    }

    fn change(
        &self,
        caller: &Caller,
        head: ChangeHead,
        event: &audit_entity::Model,
    ) -> Option<pb::Change> {
        if !may_read_type(caller, head.resource_type) {
            return None;
        }
        let shown = match new_state(event) {
            Some(state) => Some(visible_state(caller, state, &event.method)?),
            // Without its state nothing says whose it is or what it shows: only staff, who
            // read every resource of the types they are admitted to, see such a change.
            None if caller.is_staff() => None,
            None => return None,
        };
        // A deletion (`DeleteProgram`) records the program's last state, a DRAFT: who sees the
        // deletion is decided on it as for its other changes (staff only), without state.
        let new_state = match head.kind {
            feed::ChangeKind::Deleted => None,
            _ => shown,
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

/// Whether `caller` has a role the role table admits to the Get of `resource_type`.
fn may_read_type(caller: &Caller, resource_type: &str) -> bool {
    let get = match resource_type {
        PROGRAM_TYPE => "GetProgram",
        APPLICATION_TYPE => "GetApplication",
        ALLOCATION_TYPE => "GetAllocation",
        OBJECTION_TYPE => "GetObjection",
        _ => return false,
    };
    authorize(ROLE_TABLE, get, caller).is_ok()
}

/// `state` as the resource's Get shows it to `caller`, or `None` when Get would not show it
/// (NOT_FOUND or PERMISSION_DENIED). `method` made the change.
fn visible_state(
    caller: &Caller,
    state: pb::change::NewState,
    method: &str,
) -> Option<pb::change::NewState> {
    use pb::change::NewState;
    Some(match state {
        // `programs::visible_program`: a DRAFT is NOT_FOUND for enterprise and expert tokens.
        NewState::Program(p) => {
            if p.state == State::Draft.code() && !caller.is_staff() {
                return None;
            }
            NewState::Program(p)
        }
        // `applications::check_own` and `shows_outcome`.
        NewState::Application(mut a) => {
            if !caller.is_staff() {
                let own = caller.enterprise.as_deref().unwrap_or("");
                if own.is_empty() || a.enterprise.strip_prefix("enterprises/") != Some(own) {
                    return None;
                }
                if !outcome_published(method) {
                    hide_outcome(&mut a);
                }
            }
            NewState::Application(a)
        }
        // `allocation::reader`: staff read every allocation; everyone else the published ones,
        // redacted as `GetAllocation` redacts them.
        NewState::Allocation(mut a) => {
            let has = |r: Role| caller.roles.contains(&r);
            if !(has(Role::Admin) || has(Role::Officer) || has(Role::Auditor)) {
                if !outcome_published(method) {
                    return None;
                }
                crate::convert::allocation::redact_published(&mut a);
            }
            NewState::Allocation(a)
        }
        // `objections::get_objection`: `sees_all` or the objector; `shows_identity`.
        NewState::Objection(mut o) => {
            let has = |r: Role| caller.roles.contains(&r);
            let own = !o.objector.is_empty() && o.objector == caller.subject;
            if !(has(Role::Admin) || has(Role::Auditor) || has(Role::Officer) || own) {
                return None;
            }
            if !(has(Role::Admin) || has(Role::Auditor) || own) {
                hide_identity(&mut o);
            }
            NewState::Objection(o)
        }
    })
}

/// The published state of `event` as the oneof's arm for its message. Events written before
/// states were published carry none: the change then goes without `new_state`.
fn new_state(event: &audit_entity::Model) -> Option<pb::change::NewState> {
    use pb::change::NewState;
    if event.state_type.is_empty() {
        return None;
    }
    let state = decode_state(event)
        .map(NewState::Program)
        .or_else(|| decode_state(event).map(NewState::Application))
        .or_else(|| decode_state(event).map(NewState::Allocation))
        .or_else(|| decode_state(event).map(NewState::Objection));
    if state.is_none() {
        tracing::warn!(sequence = event.sequence, state_type = %event.state_type,
            "published state is of no type the awards Change carries");
    }
    state
}

pub(super) async fn list_changes(
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::ListChangesRequest,
) -> Result<pb::ListChangesResponse, ApiError> {
    let page = feed::list(
        &api.db,
        &AwardsFeed,
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
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::WatchChangesRequest,
) -> Result<BoxStream<pb::WatchChangesResponse>, ApiError> {
    feed::watch(
        &api.db,
        AwardsFeed,
        ctx,
        &req.after_cursor,
        &req.filter,
        |changes, cursor| pb::WatchChangesResponse { changes, cursor },
    )
    .await
}

pub(super) async fn get_change_feed_head(
    api: &AwardsApi,
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
    api: &AwardsApi,
    ctx: &CallContext,
    req: pb::ExportSnapshotRequest,
) -> Result<BoxStream<pb::ExportSnapshotResponse>, ApiError> {
    feed::export(&api.db, AwardsFeed, ctx, &req.filter, |changes, cursor| {
        pb::ExportSnapshotResponse { changes, cursor }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::change::NewState;

    fn caller(subject: &str, roles: &[Role], enterprise: Option<&str>) -> Caller {
        Caller {
            subject: subject.into(),
            roles: roles.to_vec(),
            enterprise: enterprise.map(str::to_string),
            expert: None,
        }
    }

    fn application(outcome: i32) -> NewState {
        NewState::Application(pb::Application {
            name: "programs/green/applications/a1".into(),
            enterprise: "enterprises/91350100M000100Y43".into(),
            outcome,
            rank: 1,
            amount_fen: 5,
            outcome_reason: "rank 1".into(),
            ..Default::default()
        })
    }

    const ALLOCATE: &str = "qilu.awards.v1.AwardAllocationService/AllocateProgram";
    const PUBLISH: &str = "qilu.awards.v1.AwardAllocationService/PublishResults";

    #[test]
    fn an_applicant_sees_its_own_applications_and_their_outcome_only_once_published() {
        let own = caller("e", &[Role::Enterprise], Some("91350100M000100Y43"));
        let other = caller("f", &[Role::Enterprise], Some("91370100MA3C00000X"));
        let officer = caller("o", &[Role::Officer], None);
        let Some(NewState::Application(before)) = visible_state(&own, application(1), ALLOCATE)
        else {
            panic!("its own application");
        };
        assert_eq!((before.outcome, before.rank, before.amount_fen), (0, 0, 0));
        let Some(NewState::Application(after)) = visible_state(&own, application(1), PUBLISH)
        else {
            panic!("its own application");
        };
        assert_eq!(after.outcome, 1);
        assert!(visible_state(&other, application(1), PUBLISH).is_none());
        assert_eq!(
            visible_state(&officer, application(1), ALLOCATE),
            Some(application(1))
        );
    }

    #[test]
    fn drafts_are_staff_only_and_objector_identity_follows_get_objection() {
        let draft = || {
            NewState::Program(pb::Program {
                state: State::Draft.code(),
                ..Default::default()
            })
        };
        let expert = caller("x", &[Role::Expert], None);
        assert!(visible_state(&expert, draft(), "").is_none());
        assert!(visible_state(&caller("s", &[Role::Service], None), draft(), "").is_some());
        let objection = || {
            NewState::Objection(pb::Objection {
                objector: "x".into(),
                objector_name: "李四".into(),
                objector_contact: "0531".into(),
                ..Default::default()
            })
        };
        assert_eq!(visible_state(&expert, objection(), ""), Some(objection()));
        assert!(visible_state(&caller("y", &[Role::Expert], None), objection(), "").is_none());
        let Some(NewState::Objection(o)) =
            visible_state(&caller("o", &[Role::Officer], None), objection(), "")
        else {
            panic!("officers see every objection");
        };
        assert!(o.objector.is_empty() && o.objector_name.is_empty());
        // A service reads allocations once published: changes made before are not shown.
        let allocation = || {
            NewState::Allocation(pb::Allocation {
                run_by: "admin".into(),
                ..Default::default()
            })
        };
        let service = caller("s", &[Role::Service], None);
        assert!(may_read_type(&service, ALLOCATION_TYPE));
        assert!(visible_state(&service, allocation(), "x/AllocateProgram").is_none());
        let Some(NewState::Allocation(published)) =
            visible_state(&service, allocation(), "x/PublishResults")
        else {
            panic!("published allocations are public");
        };
        assert!(published.run_by.is_empty());
        assert!(!may_read_type(&expert, APPLICATION_TYPE));
    }
}
