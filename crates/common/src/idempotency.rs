//! AIP-155 request ids: a mutation retried with the same `request_id` returns the first result
//! and changes nothing twice. The record (method, request fingerprint, encoded response) is
//! stored in the same transaction as the change, so a crash can never leave one without the
//! other.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The stored record.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One completed mutation, by request id.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency")]
    pub struct Model {
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

/// SHA-256 of an encoded request message, hex.
pub fn fingerprint(request: &impl prost::Message) -> String {
    hex::encode(Sha256::digest(request.encode_to_vec()))
}

/// Looks up an earlier completion of `request_id`. Same method and fingerprint → its response;
/// a different request under the same id → INVALID_ARGUMENT (AIP-155).
pub async fn replay(
    conn: &impl ConnectionTrait,
    request_id: &RequestId,
    method: &str,
    fingerprint: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(found) = entity::Entity::find_by_id(request_id.as_str().to_string())
        .one(conn)
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

/// Stores the completion record (caller's transaction).
pub async fn store(
    conn: &impl ConnectionTrait,
    request_id: &RequestId,
    method: &str,
    fingerprint: String,
    response: Vec<u8>,
    now_us: i64,
) -> Result<(), ApiError> {
    entity::ActiveModel {
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
}
