//! AIP-155 request ids: a mutation retried with the same `request_id` returns the first result
//! and changes nothing twice. The record (method, request fingerprint, encoded response) is
//! stored in the same transaction as the change, so a crash can never leave one without the
//! other.
//!
//! Records belong to a caller: the key is ([`CallerScope`], request id). A request id is the
//! caller's own retry token, not a capability: another principal sending the same id gets no
//! record at all, so its request runs through the handler (and its authorization) as a fresh
//! one and can never read someone else's stored response. The same caller reusing an id for a
//! different request is still `INVALID_ARGUMENT` `REQUEST_ID_REUSED`.

use crate::db::KeyLookup;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::context::CallContext;
use crate::error::ApiError;

/// The stored record.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One completed mutation, by caller and request id.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency")]
    pub struct Model {
        /// Whose record this is: [`super::CallerScope`], or
        /// [`super::UNATTRIBUTED`] for a record migrated from before records had owners whose
        /// owner could not be recovered (no caller ever matches it).
        #[sea_orm(primary_key, auto_increment = false)]
        pub caller_scope: String,
        /// The caller's request id (a UUID, as sent).
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        /// Full gRPC method path.
        pub method: String,
        /// SHA-256 of the encoded request, to spot a reused id with a different request.
        pub fingerprint: String,
        /// The encoded response returned the first time.
        pub response: Vec<u8>,
        /// When it was stored, µs since the epoch.
        pub created_at_us: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A validated request id (a UUID, kept as the caller sent it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// Parses the `request_id` field: empty means "no idempotency", anything else must be a UUID.
    /// The id is kept as sent (only trimmed): a retry resends the same request, byte for byte.
    pub fn parse(raw: &str) -> Result<Option<RequestId>, ApiError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        uuid::Uuid::parse_str(raw)
            .map(|_| Some(RequestId(raw.to_string())))
            .map_err(|_| {
                ApiError::invalid(
                    "request_id",
                    "INVALID_REQUEST_ID",
                    format!("request_id must be a UUID, got {raw:?}"),
                )
            })
    }

    /// The normalised id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The caller scope of records migrated from the unscoped table whose owner could not be
/// recovered from the audit log. It is not a hash, so no caller's scope ever equals it: such a
/// record is kept for the record but never replayed.
pub const UNATTRIBUTED: &str = "unattributed";

/// Who an idempotency record belongs to: everything in the authenticated caller that decides
/// what it may do and see — the subject, its roles, and its `enterprise` and `expert` claims.
///
/// A refreshed token (same subject, roles and claims; new `iat`/`exp`) has the same scope, so
/// a retry after a refresh still replays. A different subject, or the same subject acting for
/// another enterprise, as another expert or with other roles, is another principal as far as
/// authorization goes and never shares a record: its request is treated as new.
///
/// Stored as `v1:` + SHA-256 (hex) of the canonical JSON `[subject, [roles sorted, unique],
/// enterprise, expert]`: fixed length for the key, unambiguous whatever the claims contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerScope(String);

impl CallerScope {
    /// The scope of an authenticated caller.
    pub fn of(caller: &Caller) -> CallerScope {
        CallerScope::from_parts(
            &caller.subject,
            caller.roles.iter().map(|r| r.as_str()),
            caller.enterprise.as_deref(),
            caller.expert.as_deref(),
        )
    }

    /// The scope from its parts (roles by claim value, in any order); also used to attribute
    /// migrated records from the audit log's `actor` and `actor_roles`.
    pub fn from_parts<'a>(
        subject: &str,
        roles: impl IntoIterator<Item = &'a str>,
        enterprise: Option<&str>,
        expert: Option<&str>,
    ) -> CallerScope {
        let mut roles: Vec<&str> = roles.into_iter().filter(|r| !r.is_empty()).collect();
        roles.sort_unstable();
        roles.dedup();
        let canonical = serde_json::json!([subject, roles, enterprise, expert]).to_string();
        CallerScope(format!("v1:{}", hex::encode(Sha256::digest(canonical))))
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The method as records store it: `package.Service/Method`, without the path's leading slash.
pub fn method_of(ctx: &CallContext) -> String {
    ctx.meta.method.trim_start_matches('/').to_string()
}

/// SHA-256 of an encoded request message, hex.
pub fn fingerprint(request: &impl prost::Message) -> String {
    hex::encode(Sha256::digest(request.encode_to_vec()))
}

/// Looks up this caller's earlier completion of `request_id`. Same method and fingerprint → its
/// response; a different request under the same id → INVALID_ARGUMENT (AIP-155). Another
/// caller's record under the same id is not looked at: `None`, a fresh request.
pub async fn replay(
    conn: &impl ConnectionTrait,
    scope: &CallerScope,
    request_id: &RequestId,
    method: &str,
    fingerprint: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(found) =
        entity::Entity::find_by_id((scope.as_str().to_string(), request_id.as_str().to_string()))
            .by_key(conn)
            .await?
    else {
        return Ok(None);
    };
    if found.method != method || found.fingerprint != fingerprint {
        return Err(ApiError::invalid(
            "request_id",
            "REQUEST_ID_REUSED",
            format!(
                "request_id {} was already used for a different request",
                request_id.as_str()
            ),
        ));
    }
    Ok(Some(found.response))
}

/// For a handler that must call a peer service before it opens its write transaction (the
/// peer may be down): this caller's earlier result for the same request, read outside any
/// transaction, so a retry of a completed request replays without needing the peer. `None`
/// (no id, or not seen) → go on; `WriteTx::begin` checks again under the lock, which settles a
/// concurrent first attempt.
pub async fn previous<R: prost::Message + Default>(
    conn: &impl ConnectionTrait,
    ctx: &CallContext,
    request_id: &str,
    request: &impl prost::Message,
) -> Result<Option<R>, ApiError> {
    let Some(id) = RequestId::parse(request_id)? else {
        return Ok(None);
    };
    let found = replay(
        conn,
        &CallerScope::of(&ctx.caller),
        &id,
        &method_of(ctx),
        &fingerprint(request),
    )
    .await?;
    found
        .map(|bytes| R::decode(bytes.as_slice()).map_err(ApiError::internal))
        .transpose()
}

/// Stores the completion record for `scope` (caller's transaction).
pub async fn store(
    conn: &impl ConnectionTrait,
    scope: &CallerScope,
    request_id: &RequestId,
    method: &str,
    fingerprint: String,
    response: Vec<u8>,
    now_us: i64,
) -> Result<(), ApiError> {
    entity::ActiveModel {
        caller_scope: Set(scope.as_str().to_string()),
        request_id: Set(request_id.as_str().to_string()),
        method: Set(method.to_string()),
        fingerprint: Set(fingerprint),
        response: Set(response),
        created_at_us: Set(now_us),
    }
    .insert(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn request_ids_must_be_uuids_and_are_kept_as_sent() {
        assert_eq!(RequestId::parse("").ok(), Some(None));
        let id = RequestId::parse(" 6F9619FF-8B86-D011-B42D-00C04FC964FF ");
        assert_eq!(
            id.ok().flatten().map(|r| r.0),
            Some("6F9619FF-8B86-D011-B42D-00C04FC964FF".to_string())
        );
        assert!(RequestId::parse("retry-1").is_err());
    }

    fn caller(subject: &str, roles: &[Role], enterprise: Option<&str>) -> Caller {
        Caller {
            subject: subject.into(),
            roles: roles.to_vec(),
            enterprise: enterprise.map(str::to_string),
            expert: None,
        }
    }

    #[test]
    fn the_scope_separates_principals_and_survives_a_token_refresh() {
        let a = caller("u1", &[Role::Officer, Role::Admin], None);
        // A refreshed token carries the same claims; role order does not matter.
        let refreshed = caller("u1", &[Role::Admin, Role::Officer], None);
        assert_eq!(CallerScope::of(&a), CallerScope::of(&refreshed));
        for other in [
            caller("u2", &[Role::Officer, Role::Admin], None),
            caller("u1", &[Role::Officer], None),
            caller(
                "u1",
                &[Role::Officer, Role::Admin],
                Some("91350100M000100Y43"),
            ),
            Caller {
                expert: Some("e1".into()),
                ..a.clone()
            },
        ] {
            assert_ne!(CallerScope::of(&a), CallerScope::of(&other), "{other:?}");
        }
        // Claims cannot be shifted between fields to collide.
        assert_ne!(
            CallerScope::from_parts("a", ["admin"], Some("b"), None),
            CallerScope::from_parts("a", ["admin"], None, Some("b"))
        );
        assert_ne!(CallerScope::of(&a).as_str(), UNATTRIBUTED);
        // The audit log's `actor_roles` (sorted, comma-joined) gives the same scope.
        assert_eq!(
            CallerScope::from_parts("u1", "admin,officer".split(','), None, None),
            CallerScope::of(&a)
        );
    }
}
