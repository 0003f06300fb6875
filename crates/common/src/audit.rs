//! The append-only, hash-chained audit log every service keeps in its own database.
//!
//! Each mutation appends one event per changed resource, in the same transaction as the change
//! (see [`crate::write::WriteTx`]). Event `n` carries `hash_n = SHA-256(hash_{n-1} ‖ "\n" ‖
//! canonical_n)`, where `canonical_n` is the JSON array
//! `[sequence, commit_time_us, actor, actor_roles, method, resource, request_id, state_json]`.
//! The `audit_head` row holds the last sequence and hash, updated in the same transaction, so
//! removing the newest event is detected as well as editing, removing or reordering any other.
//! An outside witness can record `(head_sequence, head_hash)` and later prove nothing before it
//! was rewritten — the guarantee certificate-transparency logs give.
//!
//! This module never updates or deletes an event: there is no code path for it.

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect, Statement};
use sha2::{Digest, Sha256};

use qilu_proto::common::{
    AuditEvent, ListAuditEventsRequest, ListAuditEventsResponse, VerifyAuditChainRequest,
    VerifyAuditChainResponse,
};

use crate::error::ApiError;
use crate::filter::{Filter, Op};
use crate::pagination::PageRequest;
use crate::time::to_timestamp;

/// `previous_hash` of the first event: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The stored event row.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One audit event as stored.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_event")]
    pub struct Model {
        /// Position in the chain, from 1, no gaps.
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        /// Commit time, µs since the epoch.
        pub commit_time_us: i64,
        /// `sub` of the caller.
        pub actor: String,
        /// Caller's roles, comma-separated.
        pub actor_roles: String,
        /// Full gRPC method path.
        pub method: String,
        /// Resource name changed.
        pub resource: String,
        /// Caller's request id.
        pub request_id: String,
        /// New state of the resource as JSON.
        pub state_json: String,
        /// Full protobuf name of the published state's message (e.g.
        /// `qilu.registry.v1.Enterprise`), or empty for an event written before the published
        /// state was recorded (Qilu 0.1).
        pub state_type: String,
        /// The published state: the resource as its Get returns it to a reader who may see all
        /// of it, protobuf-encoded (the change feeds serve it). `None` with an empty
        /// `state_type`.
        pub state_proto: Option<Vec<u8>>,
        /// Hash of the previous event.
        pub previous_hash: String,
        /// This event's hash.
        pub hash: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The fields of an event that are hashed, in the order they are hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBody<'a> {
    /// Sequence.
    pub sequence: i64,
    /// Commit time µs.
    pub commit_time_us: i64,
    /// Actor.
    pub actor: &'a str,
    /// Roles, comma-separated.
    pub actor_roles: &'a str,
    /// Method path.
    pub method: &'a str,
    /// Resource name.
    pub resource: &'a str,
    /// Request id.
    pub request_id: &'a str,
    /// State JSON.
    pub state_json: &'a str,
    /// Published state's message name; empty for a Qilu 0.1 event.
    pub state_type: &'a str,
    /// Published state's protobuf bytes.
    pub state_proto: &'a [u8],
}

impl EventBody<'_> {
    /// `SHA-256(previous_hash ‖ "\n" ‖ canonical JSON array)`, lower-case hex.
    ///
    /// The canonical array is `[sequence, commit_time_us, actor, actor_roles, method, resource,
    /// request_id, state_json]`, and for an event with a published state two more elements:
    /// `state_type` and the standard base64 (with padding) of `state_proto`. A Qilu 0.1 event
    /// (no published state) hashes exactly as it did, so old chains still verify.
    ///
    /// The array is serialised straight into the hasher (a tuple serialises as the same compact
    /// JSON array a `serde_json::Value` would, without building one and copying `state_json`
    /// into it).
    pub fn hash(&self, previous_hash: &str) -> String {
        let mut hasher = HashWriter(Sha256::new());
        hasher.0.update(previous_hash.as_bytes());
        hasher.0.update(b"\n");
        let head = (
            self.sequence,
            self.commit_time_us,
            self.actor,
            self.actor_roles,
            self.method,
            self.resource,
            self.request_id,
            self.state_json,
        );
        // Writing to a hasher cannot fail, and these values always serialise.
        if self.state_type.is_empty() {
            let _ = serde_json::to_writer(&mut hasher, &head);
        } else {
            use base64::Engine as _;
            let proto = base64::engine::general_purpose::STANDARD.encode(self.state_proto);
            let (a, b, c, d, e, f, g, h) = head;
            let _ = serde_json::to_writer(
                &mut hasher,
                &(a, b, c, d, e, f, g, h, self.state_type, proto),
            );
        }
        hex::encode(hasher.0.finalize())
    }
}

/// Feeds what is written into a SHA-256.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> From<&'a entity::Model> for EventBody<'a> {
    fn from(m: &'a entity::Model) -> Self {
        EventBody {
            sequence: m.sequence,
            commit_time_us: m.commit_time_us,
            actor: &m.actor,
            actor_roles: &m.actor_roles,
            method: &m.method,
            resource: &m.resource,
            request_id: &m.request_id,
            state_json: &m.state_json,
            state_type: &m.state_type,
            state_proto: m.state_proto.as_deref().unwrap_or_default(),
        }
    }
}

/// The chain's head as stored in `audit_head`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Last sequence (0 when empty).
    pub sequence: i64,
    /// Last hash (genesis when empty).
    pub hash: String,
}

/// Reads the head; with `lock` on PostgreSQL the row stays locked until the transaction ends,
/// which serialises writers (on SQLite `BEGIN IMMEDIATE` already has).
pub async fn read_head(conn: &impl ConnectionTrait, lock: bool) -> Result<Head, DbErr> {
    let backend = conn.get_database_backend();
    let sql = if lock && backend == sea_orm::DbBackend::Postgres {
        "SELECT sequence, hash FROM audit_head WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT sequence, hash FROM audit_head WHERE id = 1"
    };
    let row = conn
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("audit_head row missing".into()))?;
    Ok(Head {
        sequence: row.try_get("", "sequence")?,
        hash: row.try_get("", "hash")?,
    })
}

/// Appends the events of one write (one commit time, actor, method and request id, as
/// [`crate::write::WriteTx`] records them) and stores the new head, in the caller's write
/// transaction (which holds the chain lock). On PostgreSQL this is ONE statement: the columns
/// that differ per event travel as one binary array parameter each (`unnest`) into a
/// data-modifying CTE, the five the write shares as single parameters, and the head update is
/// the outer statement — binding ten parameters per event costs more than the insert itself
/// when a bulk import audits thousands of changes, and under group commit every round trip a
/// lease saves is throughput. (A JSON parameter through `json_to_recordset`, used before, spent
/// three quarters of the statement in PostgreSQL's JSON lexer: `state_json` is itself JSON,
/// escaped inside it; 500 import events took 12.4 ms that way, 4.2 ms with arrays.) Elsewhere,
/// multi-row inserts in chunks and an `UPDATE`. Text parameters arrive byte for byte, so every
/// stored field still hashes to the event's hash.
pub async fn append(
    conn: &impl ConnectionTrait,
    events: Vec<entity::Model>,
    head: &Head,
) -> Result<(), DbErr> {
    let Some(first) = events.first() else {
        return Ok(());
    };
    fn shared(e: &entity::Model) -> (i64, &str, &str, &str, &str) {
        (
            e.commit_time_us,
            &e.actor,
            &e.actor_roles,
            &e.method,
            &e.request_id,
        )
    }
    if events.iter().any(|e| shared(e) != shared(first)) {
        return Err(DbErr::Custom(
            "audit::append takes the events of one write (one commit time, actor, method and request id)".into(),
        ));
    }
    let backend = conn.get_database_backend();
    if backend == sea_orm::DbBackend::Postgres {
        let n = events.len();
        let mut values: Vec<sea_orm::Value> = vec![
            first.commit_time_us.into(),
            first.actor.clone().into(),
            first.actor_roles.clone().into(),
            first.method.clone().into(),
            first.request_id.clone().into(),
        ];
        let mut sequence = Vec::with_capacity(n);
        let mut resource = Vec::with_capacity(n);
        let mut state_json = Vec::with_capacity(n);
        let mut previous_hash = Vec::with_capacity(n);
        let mut hash = Vec::with_capacity(n);
        let mut state_type = Vec::with_capacity(n);
        let mut state_proto: Vec<Vec<u8>> = Vec::with_capacity(n);
        for e in events {
            sequence.push(e.sequence);
            resource.push(e.resource);
            state_json.push(e.state_json);
            previous_hash.push(e.previous_hash);
            hash.push(e.hash);
            state_type.push(e.state_type);
            // Travels as an empty array element; stored as NULL (below) like a 0.1 event.
            state_proto.push(e.state_proto.unwrap_or_default());
        }
        values.extend([
            sequence.into(),
            resource.into(),
            state_json.into(),
            previous_hash.into(),
            hash.into(),
            head.sequence.into(),
            head.hash.clone().into(),
            state_type.into(),
            state_proto.into(),
        ]);
        let sql = "WITH appended AS (\
             INSERT INTO audit_event (sequence, commit_time_us, actor, actor_roles, method, resource, request_id, state_json, previous_hash, hash, state_type, state_proto) \
             SELECT t.sequence, $1, $2, $3, $4, t.resource, $5, t.state_json, t.previous_hash, t.hash, t.state_type, \
             CASE WHEN t.state_type = '' THEN NULL ELSE t.state_proto END \
             FROM unnest($6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $13::text[], $14::bytea[]) AS t(sequence, resource, state_json, previous_hash, hash, state_type, state_proto)) \
             UPDATE audit_head SET sequence = $11, hash = $12 WHERE id = 1";
        conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        return Ok(());
    }
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let models: Vec<entity::ActiveModel> = events
            .by_ref()
            .take(500)
            .map(sea_orm::IntoActiveModel::into_active_model)
            .collect();
        entity::Entity::insert_many(models).exec(conn).await?;
    }
    write_head(conn, head).await
}

/// Stores a new head (same transaction as the events).
pub async fn write_head(conn: &impl ConnectionTrait, head: &Head) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "UPDATE audit_head SET sequence = $1, hash = $2 WHERE id = 1"
        }
        _ => "UPDATE audit_head SET sequence = ?, hash = ? WHERE id = 1",
    };
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [head.sequence.into(), head.hash.clone().into()],
    ))
    .await?;
    Ok(())
}

fn to_proto(m: entity::Model) -> AuditEvent {
    AuditEvent {
        sequence: m.sequence,
        commit_time: Some(to_timestamp(m.commit_time_us)),
        actor: m.actor,
        actor_roles: m
            .actor_roles
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        method: m.method,
        resource: m.resource,
        request_id: m.request_id,
        published_state: (!m.state_type.is_empty()).then(|| prost_types::Any {
            type_url: format!("type.googleapis.com/{}", m.state_type),
            value: m.state_proto.unwrap_or_default(),
        }),
        state_json: m.state_json,
        previous_hash: m.previous_hash,
        hash: m.hash,
    }
}

/// `ListAuditEvents`: events in sequence order, filterable by `resource` and `actor`.
pub async fn list(
    db: &DatabaseConnection,
    request: &ListAuditEventsRequest,
) -> Result<ListAuditEventsResponse, ApiError> {
    let filter = Filter::parse(&request.filter)?;
    let page = PageRequest::parse(request.page_size, &request.page_token, &request.filter, "")?;
    let mut query = entity::Entity::find().order_by_asc(entity::Column::Sequence);
    for condition in filter.conditions() {
        let column = match condition.field.as_str() {
            "resource" => entity::Column::Resource,
            "actor" => entity::Column::Actor,
            other => {
                return Err(ApiError::invalid(
                    "filter",
                    "UNSUPPORTED_FILTER_FIELD",
                    format!("cannot filter audit events on {other:?}; use resource or actor"),
                ));
            }
        };
        if condition.op != Op::Eq {
            return Err(ApiError::invalid(
                "filter",
                "UNSUPPORTED_FILTER_OPERATOR",
                format!("{} supports only `=`", condition.field),
            ));
        }
        query = query.filter(column.eq(condition.value.clone()));
    }
    if let Some(after) = page.after::<i64>()? {
        query = query.filter(entity::Column::Sequence.gt(after));
    }
    let mut rows = query.limit(page.size + 1).all(db).await?;
    let next_page_token = if rows.len() as u64 > page.size {
        rows.truncate(page.size as usize);
        match rows.last() {
            Some(last) => page.next_token(&last.sequence)?,
            None => String::new(),
        }
    } else {
        String::new()
    };
    Ok(ListAuditEventsResponse {
        audit_events: rows.into_iter().map(to_proto).collect(),
        next_page_token,
    })
}

/// How many events `verify` reads per round trip.
const VERIFY_BATCH: u64 = 1000;

/// `VerifyAuditChain`: recomputes every hash, checks every link and the head.
pub async fn verify(
    db: &DatabaseConnection,
    request: &VerifyAuditChainRequest,
) -> Result<VerifyAuditChainResponse, ApiError> {
    if request.witnessed_sequence < 0 {
        return Err(ApiError::invalid(
            "witnessed_sequence",
            "OUT_OF_RANGE",
            "must not be negative",
        ));
    }
    let head = read_head(db, false).await?;
    let mut previous_hash = GENESIS_HASH.to_string();
    let mut expected_sequence = 1i64;
    let mut checked = 0i64;
    let mut witnessed_found = request.witnessed_sequence == 0;
    let fail = |sequence: i64, problem: String, checked: i64, head: &Head| {
        Ok(VerifyAuditChainResponse {
            intact: false,
            events_checked: checked,
            head_sequence: head.sequence,
            head_hash: head.hash.clone(),
            first_bad_sequence: sequence,
            problem,
        })
    };
    loop {
        let batch = entity::Entity::find()
            .filter(entity::Column::Sequence.gte(expected_sequence))
            .order_by_asc(entity::Column::Sequence)
            .limit(VERIFY_BATCH)
            .all(db)
            .await?;
        if batch.is_empty() {
            break;
        }
        for event in &batch {
            if event.sequence != expected_sequence {
                return fail(
                    expected_sequence,
                    format!(
                        "event {expected_sequence} is missing (next stored event is {})",
                        event.sequence
                    ),
                    checked,
                    &head,
                );
            }
            if event.previous_hash != previous_hash {
                return fail(
                    event.sequence,
                    format!(
                        "event {} does not link to the event before it (previous_hash differs)",
                        event.sequence
                    ),
                    checked,
                    &head,
                );
            }
            let recomputed = EventBody::from(event).hash(&previous_hash);
            if recomputed != event.hash {
                return fail(
                    event.sequence,
                    format!(
                        "event {} was altered: its content no longer matches its hash",
                        event.sequence
                    ),
                    checked,
                    &head,
                );
            }
            if event.sequence == request.witnessed_sequence {
                if event.hash != request.witnessed_hash.to_lowercase() {
                    return fail(
                        event.sequence,
                        format!(
                            "event {} differs from the witnessed hash: the log was rewritten",
                            event.sequence
                        ),
                        checked,
                        &head,
                    );
                }
                witnessed_found = true;
            }
            previous_hash = event.hash.clone();
            expected_sequence += 1;
            checked += 1;
        }
    }
    let last_sequence = expected_sequence - 1;
    if head.sequence != last_sequence || head.hash != previous_hash {
        return fail(
            last_sequence + 1,
            format!(
                "the head records event {} but the log ends at event {last_sequence}: events were removed or added outside the log",
                head.sequence
            ),
            checked,
            &head,
        );
    }
    if !witnessed_found {
        return fail(
            request.witnessed_sequence,
            format!(
                "witnessed event {} is not in the log",
                request.witnessed_sequence
            ),
            checked,
            &head,
        );
    }
    Ok(VerifyAuditChainResponse {
        intact: true,
        events_checked: checked,
        head_sequence: head.sequence,
        head_hash: head.hash,
        first_bad_sequence: 0,
        problem: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let body = EventBody {
            sequence: 1,
            commit_time_us: 10,
            actor: "a",
            actor_roles: "admin",
            method: "/m",
            resource: "enterprises/X",
            request_id: "r",
            state_json: "{}",
            state_type: "",
            state_proto: &[],
        };
        let h = body.hash(GENESIS_HASH);
        assert_eq!(h.len(), 64);
        assert_ne!(h, body.hash(&"1".repeat(64)));
        let mut changed = body.clone();
        changed.state_json = "{\"a\":1}";
        assert_ne!(h, changed.hash(GENESIS_HASH));
        let mut changed = body.clone();
        changed.sequence = 2;
        assert_ne!(h, changed.hash(GENESIS_HASH));
        // Field boundaries cannot be shifted: JSON quoting separates them.
        let mut shifted = body.clone();
        shifted.actor = "a\",\"admin";
        shifted.actor_roles = "";
        assert_ne!(h, shifted.hash(GENESIS_HASH));
        // A published state is hashed too: its type and every byte.
        let mut published = body.clone();
        published.state_type = "qilu.registry.v1.Zone";
        published.state_proto = &[1, 2];
        let p = published.hash(GENESIS_HASH);
        assert_ne!(h, p);
        published.state_proto = &[1, 3];
        assert_ne!(p, published.hash(GENESIS_HASH));
        published.state_type = "qilu.registry.v1.Cluster";
        published.state_proto = &[1, 2];
        assert_ne!(p, published.hash(GENESIS_HASH));
    }

    /// Chains written before the hash was streamed must still verify: the bytes hashed are
    /// exactly `serde_json::json!([...]).to_string()`, escapes and non-ASCII text included.
    #[test]
    fn the_streamed_hash_equals_the_hash_of_the_json_value() {
        let body = EventBody {
            sequence: 9_007_199_254_740_993,
            commit_time_us: -5,
            actor: "officer \"甲\"\n\t\u{1}",
            actor_roles: "admin,officer",
            method: "qilu.registry.v1.EnterpriseRegistryService/ImportEnterprises",
            resource: "enterprises/91370102MA3C4XQ71R",
            request_id: "5f1c\\/",
            state_json: r#"{"display_name":"山东绿色低碳科技有限公司","zone":null,"x":"\u2028"}"#,
            state_type: "",
            state_proto: &[],
        };
        let canonical = serde_json::json!([
            body.sequence,
            body.commit_time_us,
            body.actor,
            body.actor_roles,
            body.method,
            body.resource,
            body.request_id,
            body.state_json,
        ]);
        let mut hasher = Sha256::new();
        hasher.update(GENESIS_HASH.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical.to_string().as_bytes());
        assert_eq!(body.hash(GENESIS_HASH), hex::encode(hasher.finalize()));
    }
}
