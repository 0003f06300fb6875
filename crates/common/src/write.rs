//! The one way a Qilu handler changes data: a short write transaction that takes the audit
//! chain's lock first, replays an earlier result for a repeated `request_id`, and at commit
//! writes the audit events, the new chain head and the idempotency record together with the
//! change. A mutation that records no audit event is refused at commit: every change is audited.
//!
//! ```text
//! match WriteTx::begin::<Enterprise>(&db, &ctx, &req.request_id, &req).await? {
//!     Begun::Replay(previous) => return Ok(previous),
//!     Begun::Fresh(mut tx) => {
//!         store::insert(tx.conn(), &enterprise).await?;
//!         tx.record(&name, &enterprise)?;
//!         tx.commit(&response).await?;
//!     }
//! }
//! ```
//!
//! A replay happens in `begin`, before the handler's own resource-level checks (ownership,
//! assignment), and that is safe because records are scoped to the caller
//! ([`idempotency::CallerScope`]: subject, roles and enterprise/expert claims): a replay only
//! ever returns a response this same principal already got — or was about to get — from a run
//! that passed every check, and it changes nothing. Another principal reusing the id finds no
//! record and runs the handler, checks included, as a fresh request. Authority that lapses in
//! between (say, an expert unassigned after submitting) is not re-checked: the replay reveals
//! only what that caller was shown at the time, and the middleware still re-checks the role
//! table on every call.

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use serde::Serialize;

use crate::audit::{self, EventBody, Head};
use crate::context::CallContext;
use crate::error::ApiError;
use crate::idempotency::{self, CallerScope, RequestId};
use crate::time::now_micros;

/// Either the first result of a repeated request, or an open write transaction.
#[derive(Debug)]
pub enum Begun<R> {
    /// The request id was seen before with the same request: return this, do nothing.
    Replay(R),
    /// A fresh mutation.
    Fresh(Box<WriteTx>),
}

/// An open write transaction holding the audit lock.
#[derive(Debug)]
pub struct WriteTx {
    txn: DatabaseTransaction,
    actor: String,
    actor_roles: String,
    method: String,
    caller_scope: CallerScope,
    request_id: Option<RequestId>,
    audit_request_id: String,
    fingerprint: String,
    head: Head,
    commit_time_us: i64,
    events: Vec<audit::entity::Model>,
}

impl WriteTx {
    /// Opens the transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: locks the audit head row),
    /// validates `request_id`, and replays an earlier result if there is one.
    pub async fn begin<R: prost::Message + Default>(
        db: &DatabaseConnection,
        ctx: &CallContext,
        request_id: &str,
        request: &impl prost::Message,
    ) -> Result<Begun<R>, ApiError> {
        let request_id = RequestId::parse(request_id)?;
        let fingerprint = idempotency::fingerprint(request);
        let txn = db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        let head = audit::read_head(&txn, true).await?;
        // Stored as `package.Service/Method`, without the path's leading slash.
        let method = idempotency::method_of(ctx);
        let caller_scope = CallerScope::of(&ctx.caller);
        if let Some(id) = &request_id
            && let Some(bytes) =
                idempotency::replay(&txn, &caller_scope, id, &method, &fingerprint).await?
        {
            txn.rollback().await?;
            let previous = R::decode(bytes.as_slice()).map_err(ApiError::internal)?;
            return Ok(Begun::Replay(previous));
        }
        let mut roles: Vec<&str> = ctx.caller.roles.iter().map(|r| r.as_str()).collect();
        roles.sort_unstable();
        Ok(Begun::Fresh(Box::new(WriteTx {
            txn,
            actor: ctx.caller.subject.clone(),
            actor_roles: roles.join(","),
            method,
            caller_scope,
            audit_request_id: request_id
                .as_ref()
                .map(|r| r.as_str().to_string())
                .unwrap_or_else(|| ctx.meta.request_id.clone()),
            request_id,
            fingerprint,
            head,
            commit_time_us: now_micros(),
            events: Vec::new(),
        })))
    }

    /// The transaction, for the handler's own reads and writes.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// The commit time every row written in this transaction should carry (µs).
    pub fn now_us(&self) -> i64 {
        self.commit_time_us
    }

    /// Appends an audit event for `resource` with its new state.
    pub fn record(&mut self, resource: &str, state: &impl Serialize) -> Result<(), ApiError> {
        let state_json = serde_json::to_string(state).map_err(ApiError::internal)?;
        let sequence = self.head.sequence + 1;
        let body = EventBody {
            sequence,
            commit_time_us: self.commit_time_us,
            actor: &self.actor,
            actor_roles: &self.actor_roles,
            method: &self.method,
            resource,
            request_id: &self.audit_request_id,
            state_json: &state_json,
        };
        let hash = body.hash(&self.head.hash);
        self.events.push(audit::entity::Model {
            sequence,
            commit_time_us: self.commit_time_us,
            actor: self.actor.clone(),
            actor_roles: self.actor_roles.clone(),
            method: self.method.clone(),
            resource: resource.to_string(),
            request_id: self.audit_request_id.clone(),
            state_json,
            previous_hash: self.head.hash.clone(),
            hash: hash.clone(),
        });
        self.head = Head { sequence, hash };
        Ok(())
    }

    /// Writes the audit events, the head and the idempotency record, then commits.
    pub async fn commit<R: prost::Message>(self, response: &R) -> Result<(), ApiError> {
        if self.events.is_empty() {
            return Err(ApiError::internal(format!(
                "{} tried to commit a change without an audit event",
                self.method
            )));
        }
        audit::insert_events(&self.txn, &self.events).await?;
        audit::write_head(&self.txn, &self.head).await?;
        if let Some(id) = &self.request_id {
            idempotency::store(
                &self.txn,
                &self.caller_scope,
                id,
                &self.method,
                self.fingerprint,
                response.encode_to_vec(),
                self.commit_time_us,
            )
            .await?;
        }
        self.txn.commit().await?;
        Ok(())
    }
}
