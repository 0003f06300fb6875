//! The review service's change feed (`ListChanges`, `WatchChanges`, `GetChangeFeedHead`,
//! `ExportSnapshot`) on the common engine ([`qilu_common::feed`]): this module names the
//! service's resource types and turns an audit event into a `Change` for one caller, decoding
//! the published state the write recorded (always the unredacted message) into the `new_state`
//! oneof.
//!
//! Each caller sees what the resource's own Get would have shown it when the change committed:
//!
//! - A change is shown only to callers whose roles the resource's Get admits (the role table:
//!   `GetReview` and `GetExpert` do not admit `service`, for instance).
//! - Within that, [`Scope`] decides as the handlers do. Staff see everything unredacted. An
//!   enterprise sees its own achievements, redacted as `GetAchievement` redacts them for it
//!   ([`redact_achievement`]), and the rule sets; never a review: a review changes only while its
//!   achievement is undecided, when `GetReview` refuses it to the owner. An expert-scoped token
//!   (the feed admits no expert role, but a token holding both the enterprise and expert roles is
//!   scoped as the expert) sees the rule sets, its own expert record and its own reviews; an
//!   assigned achievement or a colleague's review depends on its assignments at the time, which
//!   one change cannot tell, so it is not shown.
//! - A change whose state cannot be decoded (none was recorded by Qilu 0.1) is shown to staff
//!   only, without `new_state`: for anyone else its visibility cannot be decided.
//! - A deletion (`DeleteAchievement`, `DeleteVetoRuleSet`) records the resource's last state; it
//!   decides who sees the deletion, exactly as for the resource's other changes, and the change
//!   itself carries no `new_state`.
//!
//! Nothing a review resource's Get returns depends on the date (the appeal deadline is a date
//! stored with the veto, checked only when an appeal is filed), so the service has no sweep.

use qilu_common::ApiError;
use qilu_common::audit::entity as audit_entity;
use qilu_common::auth::Caller;
use qilu_common::context::CallContext;
use qilu_common::feed::{self, ChangeHead, FeedSpec, decode_state};
use qilu_proto::review as pb;
use qilu_proto::review::change::NewState;
use tonic::codegen::BoxStream;

use super::{ReviewApi, Scope};
use crate::convert::achievement::redact_achievement;
use crate::convert::{ACHIEVEMENT_TYPE, EXPERT_TYPE, REVIEW_TYPE, RULE_SET_TYPE};
use crate::roles::ROLE_TABLE;

/// Resource types by the collection path of their names (AIP-122 patterns of the contract).
const RESOURCE_TYPES: &[(&str, &str)] = &[
    ("achievements", ACHIEVEMENT_TYPE),
    ("achievements/reviews", REVIEW_TYPE),
    ("experts", EXPERT_TYPE),
    ("vetoRuleSets", RULE_SET_TYPE),
];

/// The RPC whose role-table row says who may read a resource type.
fn get_method(resource_type: &str) -> Option<&'static str> {
    match resource_type {
        ACHIEVEMENT_TYPE => Some("GetAchievement"),
        REVIEW_TYPE => Some("GetReview"),
        EXPERT_TYPE => Some("GetExpert"),
        RULE_SET_TYPE => Some("GetVetoRuleSet"),
        _ => None,
    }
}

/// Whether the role table admits `caller` to the Get of `resource_type`.
fn admitted(caller: &Caller, resource_type: &str) -> bool {
    get_method(resource_type)
        .and_then(|m| ROLE_TABLE.iter().find(|row| row.method == m))
        .is_some_and(|row| caller.roles.iter().any(|r| row.roles.contains(r)))
}

/// The review service's feed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReviewFeed;

impl FeedSpec for ReviewFeed {
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
        if !admitted(caller, head.resource_type) {
            return None;
        }
        // A deletion records the resource's last state: who may see the deletion is decided on
        // it, as for any change (an owner sees its draft go), and the change carries no state.
        let shown = visible_state(&Scope::of_caller(caller), new_state(event))?;
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

/// The state `scope` may see of a change whose published state is `state`: `None` when the
/// change is hidden from it, `Some(state)` (redacted as Get redacts it) when it is shown.
fn visible_state(scope: &Scope, state: Option<NewState>) -> Option<Option<NewState>> {
    match (scope, state) {
        (Scope::Staff, state) => Some(state),
        (_, Some(NewState::VetoRuleSet(r))) => Some(Some(NewState::VetoRuleSet(r))),
        (Scope::Enterprise(own), Some(NewState::Achievement(a)))
            if a.owner.strip_prefix("enterprises/") == Some(own.as_str()) =>
        {
            Some(Some(NewState::Achievement(redact_achievement(a))))
        }
        (Scope::Expert(me), Some(NewState::Expert(e)))
            if e.name.strip_prefix("experts/") == Some(me.as_str()) =>
        {
            Some(Some(NewState::Expert(e)))
        }
        (Scope::Expert(me), Some(NewState::Review(r)))
            if r.expert.strip_prefix("experts/") == Some(me.as_str()) =>
        {
            Some(Some(NewState::Review(r)))
        }
        _ => None,
    }
}

/// The published state of `event` as the oneof's arm for its message.
fn new_state(event: &audit_entity::Model) -> Option<NewState> {
    if event.state_type.is_empty() {
        // Written by Qilu 0.1, which recorded no published state.
        return None;
    }
    let state = decode_state(event)
        .map(NewState::Achievement)
        .or_else(|| decode_state(event).map(NewState::Review))
        .or_else(|| decode_state(event).map(NewState::Expert))
        .or_else(|| decode_state(event).map(NewState::VetoRuleSet));
    if state.is_none() {
        tracing::warn!(sequence = event.sequence, state_type = %event.state_type,
            "published state is of no type the review service's Change carries");
    }
    state
}

pub(super) async fn list_changes(
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::ListChangesRequest,
) -> Result<pb::ListChangesResponse, ApiError> {
    let page = feed::list(
        &api.db,
        &ReviewFeed,
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
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::WatchChangesRequest,
) -> Result<BoxStream<pb::WatchChangesResponse>, ApiError> {
    feed::watch(
        &api.db,
        ReviewFeed,
        ctx,
        &req.after_cursor,
        &req.filter,
        |changes, cursor| pb::WatchChangesResponse { changes, cursor },
    )
    .await
}

pub(super) async fn get_change_feed_head(
    api: &ReviewApi,
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
    api: &ReviewApi,
    ctx: &CallContext,
    req: pb::ExportSnapshotRequest,
) -> Result<BoxStream<pb::ExportSnapshotResponse>, ApiError> {
    feed::export(&api.db, ReviewFeed, ctx, &req.filter, |changes, cursor| {
        pb::ExportSnapshotResponse { changes, cursor }
    })
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use qilu_common::auth::Role;
    use qilu_common::write::Published;

    use super::*;

    fn event(resource: &str, state: Published) -> audit_entity::Model {
        audit_entity::Model {
            sequence: 7,
            commit_time_us: 1_000,
            actor: "someone".into(),
            actor_roles: "admin".into(),
            method: "qilu.review.v1.AchievementReviewService/FinalizeDecision".into(),
            resource: resource.into(),
            request_id: String::new(),
            state_json: "{}".into(),
            previous_hash: String::new(),
            hash: String::new(),
            state_type: state.type_name,
            state_proto: Some(state.bytes),
        }
    }

    fn caller(roles: &[Role], enterprise: Option<&str>, expert: Option<&str>) -> Caller {
        Caller {
            subject: "t".into(),
            roles: roles.to_vec(),
            enterprise: enterprise.map(str::to_string),
            expert: expert.map(str::to_string),
        }
    }

    fn change_of(c: &Caller, e: &audit_entity::Model) -> Option<pb::Change> {
        let types = RESOURCE_TYPES;
        let head = ChangeHead {
            cursor: feed::encode_cursor(e.sequence),
            sequence: e.sequence,
            resource: e.resource.clone(),
            resource_type: feed::resource_type_of(types, &e.resource),
            kind: feed::ChangeKind::Updated,
            commit_time: prost_types::Timestamp::default(),
            method: e.method.clone(),
        };
        ReviewFeed.change(c, head, e)
    }

    #[test]
    fn an_enterprise_sees_its_own_achievements_redacted_and_no_review_or_expert() {
        let decision = pb::Decision {
            scores: vec![pb::ScoreUsed {
                expert: "experts/wang".into(),
                ..Default::default()
            }],
            explanation: "Vetoed by experts/wang".into(),
            ..Default::default()
        };
        let achievement = pb::Achievement {
            name: "achievements/a1".into(),
            owner: "enterprises/91350100M000100Y43".into(),
            decision: Some(decision),
            ..Default::default()
        };
        let a = event("achievements/a1", Published::of(&achievement));
        let own = caller(&[Role::Enterprise], Some("91350100M000100Y43"), None);
        let other = caller(&[Role::Enterprise], Some("91370100MA3C5XYZ1Q"), None);
        let Some(NewState::Achievement(seen)) = change_of(&own, &a).unwrap().new_state else {
            panic!("the owner sees its achievement");
        };
        assert_eq!(seen, redact_achievement(achievement.clone()));
        assert_eq!(seen.decision.unwrap().explanation, "Vetoed by an expert");
        assert!(change_of(&other, &a).is_none());
        let officer = caller(&[Role::Officer], None, None);
        let Some(NewState::Achievement(full)) = change_of(&officer, &a).unwrap().new_state else {
            panic!("staff see every achievement");
        };
        assert_eq!(full, achievement);

        let review = pb::Review {
            name: "achievements/a1/reviews/r1".into(),
            expert: "experts/wang".into(),
            ..Default::default()
        };
        let r = event("achievements/a1/reviews/r1", Published::of(&review));
        let x = event(
            "experts/wang",
            Published::of(&pb::Expert {
                name: "experts/wang".into(),
                ..Default::default()
            }),
        );
        let rules = event(
            "vetoRuleSets/v1",
            Published::of(&pb::VetoRuleSet {
                name: "vetoRuleSets/v1".into(),
                ..Default::default()
            }),
        );
        assert!(change_of(&own, &r).is_none());
        assert!(change_of(&own, &x).is_none());
        assert!(change_of(&own, &rules).is_some());
        // The service role reads achievements but neither reviews nor experts.
        let service = caller(&[Role::Service], None, None);
        assert!(change_of(&service, &a).is_some());
        assert!(change_of(&service, &r).is_none());
        assert!(change_of(&service, &x).is_none());
        // An expert-scoped token: its own record and reviews, nothing it cannot be sure of.
        let wang = caller(&[Role::Enterprise, Role::Expert], Some("x"), Some("wang"));
        assert!(change_of(&wang, &r).is_some());
        assert!(change_of(&wang, &x).is_some());
        assert!(change_of(&wang, &a).is_none());
        let li = caller(&[Role::Enterprise, Role::Expert], Some("x"), Some("li"));
        assert!(change_of(&li, &r).is_none());
        assert!(change_of(&li, &x).is_none());
    }

    #[test]
    fn a_change_without_a_decodable_state_is_shown_to_staff_only() {
        let mut a = event(
            "achievements/a1",
            Published {
                type_name: String::new(),
                bytes: Vec::new(),
            },
        );
        a.state_proto = None;
        let officer = caller(&[Role::Auditor], None, None);
        assert!(change_of(&officer, &a).is_some_and(|c| c.new_state.is_none()));
        let own = caller(&[Role::Enterprise], Some("91350100M000100Y43"), None);
        assert!(change_of(&own, &a).is_none());
    }
}
