//! Long-running operations (AIP-151): work too large for one call — an allocation of 100,000
//! applications, a bulk import — runs in the background and is followed through
//! `google.longrunning.Operations` (get, list, wait, cancel, delete).
//!
//! An operation is a row of the service's own database (`operation`), so it survives a restart
//! and any replica answers for any other's. The replica that starts an operation runs it under a
//! lease it renews; a replica that stops (or dies) leaves the lease to lapse, and whichever
//! replica polls next takes the operation over and runs it again from its stored request. A
//! runner must therefore be safe to run twice: the runners here write through `WriteTx` with the
//! operation's own idempotency key, so a second run after a commit replays the first's result.
//! A dependency that is down (`UNAVAILABLE`) does not fail the operation: it waits, with backoff,
//! and says so in its metadata (`Operation.metadata` is whatever the runner last reported).
//!
//! Cancellation is cooperative: `CancelOperation` marks the row, and the runner stops at its next
//! safe point ([`Progress::check`]); a transaction already committing completes. Leases use the
//! machine's wall clock, never the service clock that tests move.
//!
//! This module must never decide anything about a resource: the runners do, through the same
//! code paths as the synchronous RPCs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::{Message, Name};
use qilu_proto::google::rpc;
use qilu_proto::longrunning as lro;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseConnection, QueryOrder, QuerySelect};
use tonic::{Request, Response, Status};

use crate::auth::{Caller, MethodRoles, Role, RoleTable};
use crate::context::{CallContext, RequestMeta, Shutdown};
use crate::error::{ApiError, FieldViolation};
use crate::idempotency::RequestId;

/// Full name of the gRPC service every Qilu server also serves.
pub const SERVICE_NAME: &str = "google.longrunning.Operations";

/// How long a running operation's lease lasts; renewed every third of it.
const LEASE: Duration = Duration::from_secs(30);
/// How often a server looks for operations whose lease has lapsed (none running them).
const POLL: Duration = Duration::from_secs(2);
/// Longest wait between attempts while a dependency is down.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// `WaitOperation` waits at most this long when the caller gives no timeout (or a longer one).
const MAX_WAIT: Duration = Duration::from_secs(60);
/// `ListOperations` page size: default and maximum.
const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 500;

/// Who may call the `Operations` RPCs. Every signed-in role but `public` may follow its own
/// operations; admins and auditors see everyone's (checked in the handlers).
pub const ROLE_TABLE: RoleTable = &[
    MethodRoles {
        method: "GetOperation",
        roles: FOLLOWERS,
    },
    MethodRoles {
        method: "ListOperations",
        roles: FOLLOWERS,
    },
    MethodRoles {
        method: "WaitOperation",
        roles: FOLLOWERS,
    },
    MethodRoles {
        method: "CancelOperation",
        roles: FOLLOWERS,
    },
    MethodRoles {
        method: "DeleteOperation",
        roles: FOLLOWERS,
    },
];

const FOLLOWERS: &[Role] = &[
    Role::Admin,
    Role::Officer,
    Role::Expert,
    Role::Enterprise,
    Role::Auditor,
    Role::Service,
];

/// The `operation` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One operation.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "operation")]
    pub struct Model {
        /// `operations/{service}-{uuid}`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// The runner: the full method that started it, e.g.
        /// `qilu.awards.v1.AwardAllocationService/StartAllocation`.
        pub kind: String,
        /// The resource it acts on, e.g. `programs/p1`.
        pub target: String,
        /// Who started it (`sub`); the runner acts as this caller.
        pub caller_subject: String,
        /// The caller's roles, comma-separated claim values.
        pub caller_roles: String,
        /// The caller's enterprise claim.
        pub caller_enterprise: Option<String>,
        /// The caller's expert claim.
        pub caller_expert: Option<String>,
        /// `{kind}|{subject}|{request_id}` when the caller gave a request id: a retry of the
        /// start returns the same operation.
        pub request_key: Option<String>,
        /// The start request, encoded.
        pub request: Vec<u8>,
        /// Full name of the metadata message.
        pub metadata_type: String,
        /// The latest metadata, encoded.
        pub metadata: Vec<u8>,
        /// True once finished (response or error).
        pub done: bool,
        /// Full name of the response message.
        pub response_type: String,
        /// The response, encoded, when done without error.
        pub response: Option<Vec<u8>>,
        /// A `google.rpc.Status`, encoded, when done with an error.
        pub error: Option<Vec<u8>>,
        /// Set by `CancelOperation`.
        pub cancel_requested: bool,
        /// Runs started so far.
        pub attempts: i32,
        /// Replica running it, empty when none.
        pub lease_owner: String,
        /// Wall-clock µs until which the owner holds it; free (or due for a retry) after.
        pub lease_until_us: i64,
        /// Created, wall-clock µs.
        pub create_time_us: i64,
        /// Last changed, wall-clock µs.
        pub update_time_us: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity, Model};

/// Why a run ended without a response.
#[derive(Debug)]
pub enum RunError {
    /// It failed; the operation ends with this error (or, for `UNAVAILABLE`, waits and retries).
    Failed(ApiError),
    /// `CancelOperation` asked it to stop and it did.
    Cancelled,
}

impl From<ApiError> for RunError {
    fn from(e: ApiError) -> Self {
        RunError::Failed(e)
    }
}

impl From<sea_orm::DbErr> for RunError {
    fn from(e: sea_orm::DbErr) -> Self {
        RunError::Failed(e.into())
    }
}

/// What a runner gets: the operation's name, the caller it acts for, and the stored request.
pub struct Job {
    /// `operations/...`.
    pub name: String,
    /// The caller who started it, as a call context (method = the starting RPC).
    pub ctx: CallContext,
    /// The start request, encoded.
    pub request: Vec<u8>,
    /// 1 for the first run; more after a takeover or a retry.
    pub attempt: i32,
    /// Idempotency key for the operation's writes: the same on every run of this operation.
    pub request_id: String,
}

impl Job {
    /// The start request, decoded.
    pub fn request<R: Message + Default>(&self) -> Result<R, RunError> {
        R::decode(self.request.as_slice())
            .map_err(|e| RunError::Failed(ApiError::internal(format!("stored request: {e}"))))
    }
}

/// Implement [`Runner`] with this attribute (re-exported so services need no dependency of
/// their own).
pub use async_trait::async_trait;

/// Does one kind of operation.
#[async_trait::async_trait]
pub trait Runner: Send + Sync + 'static {
    /// Runs the job to its response; reports progress through `progress`.
    async fn run(&self, job: Job, progress: Progress) -> Result<prost_types::Any, RunError>;
}

/// A runner's handle on its operation: report metadata, notice cancellation.
#[derive(Clone)]
pub struct Progress {
    ops: Operations,
    name: String,
    cancelled: Arc<std::sync::atomic::AtomicBool>,
}

impl Progress {
    /// Publishes `metadata`: at once to callers of this replica, and to the database (so other
    /// replicas see it) when `durable` — pass false while the runner holds a write transaction,
    /// where a second writer would wait for it.
    pub async fn report<M: Message + Name>(&self, metadata: &M, durable: bool) {
        let any = pack(metadata);
        if let Ok(mut local) = self.ops.inner.local.lock() {
            local.insert(self.name.clone(), any.clone());
        }
        if durable {
            let update = Entity::update_many()
                .col_expr(Column::Metadata, Expr::value(any.value))
                .col_expr(Column::UpdateTimeUs, Expr::value(wall_us()))
                .filter(Column::Name.eq(&self.name))
                .exec(&self.ops.inner.db)
                .await;
            if let Err(e) = update {
                tracing::warn!(operation = %self.name, error = %e, "progress not stored");
            }
        }
    }

    /// Publishes `metadata` to callers of this replica only (no database write): for progress
    /// inside a write transaction, which a second writer would wait for.
    pub fn report_local<M: Message + Name>(&self, metadata: &M) {
        if let Ok(mut local) = self.ops.inner.local.lock() {
            local.insert(self.name.clone(), pack(metadata));
        }
    }

    /// `Err(Cancelled)` once `CancelOperation` asked this operation to stop: call it at points
    /// where stopping leaves nothing half-done.
    pub fn check(&self) -> Result<(), RunError> {
        if self.cancelled.load(std::sync::atomic::Ordering::SeqCst) {
            Err(RunError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// One service's operations: its database, its runners, and what this replica runs now.
#[derive(Clone)]
pub struct Operations {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    /// Short service name in operation names, e.g. `awards`.
    service: &'static str,
    /// This replica, for leases.
    replica: String,
    /// Runners by kind, registered once while the service is built.
    runners: std::sync::RwLock<HashMap<&'static str, Arc<dyn Runner>>>,
    /// Metadata reported but maybe not yet stored, by operation.
    local: Mutex<HashMap<String, prost_types::Any>>,
    /// Operations this replica runs now, with their cancel flags.
    running: Mutex<HashMap<String, Arc<std::sync::atomic::AtomicBool>>>,
}

impl std::fmt::Debug for Operations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operations")
            .field("service", &self.inner.service)
            .finish()
    }
}

/// How an operation starts: what it is, what it acts on, and its first metadata.
pub struct Start<'a, Req: Message, Meta: Message + Name> {
    /// The runner's kind (the starting method), as registered.
    pub kind: &'static str,
    /// The resource acted on.
    pub target: String,
    /// The caller's idempotency key (may be empty).
    pub request_id: &'a str,
    /// The request, stored for the runner.
    pub request: &'a Req,
    /// Metadata before the runner reports any.
    pub metadata: &'a Meta,
    /// Full name of the response message (`Operation.response`'s type).
    pub response_type: &'static str,
}

impl Operations {
    /// The operations of `service` (`registry`, `review`, `awards`) in `db`.
    pub fn new(db: DatabaseConnection, service: &'static str) -> Self {
        Operations {
            inner: Arc::new(Inner {
                db,
                service,
                replica: uuid::Uuid::new_v4().to_string(),
                runners: std::sync::RwLock::new(HashMap::new()),
                local: Mutex::new(HashMap::new()),
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Registers the runner of `kind` (the full method that starts it). Call while the service
    /// is built, before it serves: the runner usually holds the handlers, which hold these
    /// operations.
    pub fn register(&self, kind: &'static str, runner: impl Runner) {
        if let Ok(mut runners) = self.inner.runners.write() {
            runners.insert(kind, Arc::new(runner));
        }
    }

    fn owns(&self, name: &str) -> bool {
        name.strip_prefix("operations/")
            .and_then(|rest| rest.split_once('-'))
            .is_some_and(|(service, _)| service == self.inner.service)
    }

    /// The operation a call with this request id already started, if any (INVALID_ARGUMENT if
    /// that call's request differs). A start handler asks this before its own checks, so that a
    /// retry gets the operation even when what it started has changed the resource since.
    pub async fn replay(
        &self,
        ctx: &CallContext,
        kind: &'static str,
        request_id: &str,
        request: &impl Message,
    ) -> Result<Option<lro::Operation>, ApiError> {
        let Some(id) = RequestId::parse(request_id)? else {
            return Ok(None);
        };
        let key = format!("{kind}|{}|{}", ctx.caller.subject, id.as_str());
        match Entity::find()
            .filter(Column::RequestKey.eq(key))
            .one(&self.inner.db)
            .await?
        {
            Some(existing) => self.replay_of(existing, &request.encode_to_vec()).map(Some),
            None => Ok(None),
        }
    }

    /// The unfinished operation of `kind` on `target`, if one runs (or waits to run).
    pub async fn unfinished(
        &self,
        kind: &'static str,
        target: &str,
    ) -> Result<Option<String>, ApiError> {
        Ok(Entity::find()
            .filter(Column::Kind.eq(kind))
            .filter(Column::Target.eq(target))
            .filter(Column::Done.eq(false))
            .one(&self.inner.db)
            .await?
            .map(|m| m.name))
    }

    /// Starts an operation and returns it (not done). With a request id, a retry returns the
    /// operation the first call started (INVALID_ARGUMENT if the request differs).
    pub async fn start<Req: Message, Meta: Message + Name>(
        &self,
        ctx: &CallContext,
        start: Start<'_, Req, Meta>,
    ) -> Result<lro::Operation, ApiError> {
        let request_id = RequestId::parse(start.request_id)?;
        let request = start.request.encode_to_vec();
        let request_key = request_id
            .as_ref()
            .map(|id| format!("{}|{}|{}", start.kind, ctx.caller.subject, id.as_str()));
        if let Some(key) = &request_key
            && let Some(existing) = Entity::find()
                .filter(Column::RequestKey.eq(key))
                .one(&self.inner.db)
                .await?
        {
            return self.replay_of(existing, &request);
        }
        let now = wall_us();
        let name = format!(
            "operations/{}-{}",
            self.inner.service,
            uuid::Uuid::now_v7().simple()
        );
        let model = ActiveModel {
            name: Set(name.clone()),
            kind: Set(start.kind.to_string()),
            target: Set(start.target),
            caller_subject: Set(ctx.caller.subject.clone()),
            caller_roles: Set(ctx
                .caller
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(",")),
            caller_enterprise: Set(ctx.caller.enterprise.clone()),
            caller_expert: Set(ctx.caller.expert.clone()),
            request_key: Set(request_key.clone()),
            request: Set(request.clone()),
            metadata_type: Set(Meta::full_name()),
            metadata: Set(start.metadata.encode_to_vec()),
            done: Set(false),
            response_type: Set(start.response_type.to_string()),
            response: Set(None),
            error: Set(None),
            cancel_requested: Set(false),
            attempts: Set(1),
            lease_owner: Set(self.inner.replica.clone()),
            lease_until_us: Set(now + micros(LEASE)),
            create_time_us: Set(now),
            update_time_us: Set(now),
        };
        if let Err(e) = Entity::insert(model).exec(&self.inner.db).await {
            // Two retries of one start raced: the other inserted first.
            if crate::db::is_unique_violation(&e)
                && let Some(key) = &request_key
                && let Some(existing) = Entity::find()
                    .filter(Column::RequestKey.eq(key))
                    .one(&self.inner.db)
                    .await?
            {
                return self.replay_of(existing, &request);
            }
            return Err(e.into());
        }
        let model = self.load(&name).await?;
        let operation = self.to_proto(&model);
        self.launch(model, ctx.shutdown.clone());
        Ok(operation)
    }

    fn replay_of(&self, existing: Model, request: &[u8]) -> Result<lro::Operation, ApiError> {
        if existing.request != request {
            return Err(ApiError::invalid(
                "request_id",
                "REQUEST_ID_REUSED",
                "this request_id started an operation with a different request; use a new request_id",
            ));
        }
        Ok(self.to_proto(&existing))
    }

    async fn load(&self, name: &str) -> Result<Model, ApiError> {
        Entity::find_by_id(name.to_string())
            .one(&self.inner.db)
            .await?
            .ok_or_else(|| not_found(name))
    }

    /// The operation as `google.longrunning` shows it.
    fn to_proto(&self, m: &Model) -> lro::Operation {
        let local = self
            .inner
            .local
            .lock()
            .ok()
            .and_then(|l| l.get(&m.name).cloned());
        let metadata = if m.done { None } else { local }.unwrap_or_else(|| prost_types::Any {
            type_url: type_url(&m.metadata_type),
            value: m.metadata.clone(),
        });
        let result = if !m.done {
            None
        } else if let Some(error) = &m.error {
            Some(lro::operation::Result::Error(
                rpc::Status::decode(error.as_slice()).unwrap_or_else(|e| rpc::Status {
                    code: tonic::Code::Internal as i32,
                    message: format!("stored error unreadable: {e}"),
                    details: Vec::new(),
                }),
            ))
        } else {
            Some(lro::operation::Result::Response(prost_types::Any {
                type_url: type_url(&m.response_type),
                value: m.response.clone().unwrap_or_default(),
            }))
        };
        lro::Operation {
            name: m.name.clone(),
            metadata: Some(metadata),
            done: m.done,
            result,
        }
    }

    /// Runs `model` in a task on this replica (which holds its lease).
    fn launch(&self, model: Model, shutdown: Shutdown) {
        let runner = self
            .inner
            .runners
            .read()
            .ok()
            .and_then(|r| r.get(model.kind.as_str()).cloned());
        let Some(runner) = runner else {
            tracing::error!(operation = %model.name, kind = %model.kind, "no runner for this kind of operation");
            return;
        };
        let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(model.cancel_requested));
        match self.inner.running.lock() {
            Ok(mut running) => {
                if running.contains_key(&model.name) {
                    return;
                }
                running.insert(model.name.clone(), cancelled.clone());
            }
            Err(_) => return,
        }
        let ops = self.clone();
        tokio::spawn(async move {
            let name = model.name.clone();
            let job = Job {
                name: name.clone(),
                ctx: context_of(&model, shutdown.clone()),
                request: model.request.clone(),
                attempt: model.attempts,
                request_id: operation_request_id(&name),
            };
            let progress = Progress {
                ops: ops.clone(),
                name: name.clone(),
                cancelled: cancelled.clone(),
            };
            tracing::info!(operation = %name, kind = %model.kind, attempt = model.attempts, "operation running");
            let run = runner.run(job, progress);
            let renew = ops.renew(&name, cancelled.clone());
            let outcome = tokio::select! {
                result = run => Some(result),
                () = renew => None,
                () = shutdown.started() => None,
            };
            match outcome {
                Some(result) => ops.finish(&model, result).await,
                // Shutdown (or the lease lost): the run was dropped mid-way, which rolls back
                // any open transaction. Hand the operation to whoever polls next.
                None => ops.release(&name, 0).await,
            }
            if let Ok(mut running) = ops.inner.running.lock() {
                running.remove(&name);
            }
            if let Ok(mut local) = ops.inner.local.lock() {
                local.remove(&name);
            }
        });
    }

    /// Renews the lease every third of it; notices cancellation asked on another replica.
    /// Returns only when the lease is lost (another replica took the operation over).
    async fn renew(&self, name: &str, cancelled: Arc<std::sync::atomic::AtomicBool>) {
        let mut ticks = tokio::time::interval(LEASE / 3);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let renewed = Entity::update_many()
                .col_expr(Column::LeaseUntilUs, Expr::value(wall_us() + micros(LEASE)))
                .filter(Column::Name.eq(name))
                .filter(Column::LeaseOwner.eq(&self.inner.replica))
                .exec(&self.inner.db)
                .await;
            match renewed {
                Ok(r) if r.rows_affected == 0 => {
                    tracing::warn!(operation = %name, "lease lost to another replica; stopping here");
                    return;
                }
                Ok(_) => {}
                // A busy database (a long write holds SQLite) is not a lost lease; try again.
                Err(e) => tracing::debug!(operation = %name, error = %e, "lease not renewed"),
            }
            if let Ok(Some(m)) = Entity::find_by_id(name.to_string())
                .one(&self.inner.db)
                .await
                && m.cancel_requested
            {
                cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    /// Stores the run's end: the response, the error, or (dependency down) a retry later.
    async fn finish(&self, model: &Model, result: Result<prost_types::Any, RunError>) {
        let name = &model.name;
        let (response, error) = match result {
            Ok(any) => (Some(any.value), None),
            Err(RunError::Cancelled) => (
                None,
                Some(rpc::Status {
                    code: tonic::Code::Cancelled as i32,
                    message: "cancelled by CancelOperation".into(),
                    details: Vec::new(),
                }),
            ),
            Err(RunError::Failed(e)) if is_transient(&e) => {
                let backoff = backoff(model.attempts);
                tracing::warn!(operation = %name, error = %e, retry_in_s = backoff.as_secs(), "operation waits for a dependency");
                self.release(name, wall_us() + micros(backoff)).await;
                return;
            }
            Err(RunError::Failed(e)) => (None, Some(status_of(e))),
        };
        let mut update = Entity::update_many()
            .col_expr(Column::Done, Expr::value(true))
            .col_expr(Column::LeaseOwner, Expr::value(""))
            .col_expr(Column::LeaseUntilUs, Expr::value(0i64))
            .col_expr(Column::UpdateTimeUs, Expr::value(wall_us()));
        if let Some(response) = response {
            update = update.col_expr(Column::Response, Expr::value(response));
        }
        if let Some(error) = &error {
            update = update.col_expr(Column::Error, Expr::value(error.encode_to_vec()));
        }
        // The final metadata (e.g. the last counts) stays readable after the end.
        let local = self
            .inner
            .local
            .lock()
            .ok()
            .and_then(|l| l.get(name).cloned());
        if let Some(any) = local {
            update = update.col_expr(Column::Metadata, Expr::value(any.value));
        }
        for attempt in 0..10u32 {
            match update
                .clone()
                .filter(Column::Name.eq(name))
                .filter(Column::Done.eq(false))
                .exec(&self.inner.db)
                .await
            {
                Ok(_) => {
                    tracing::info!(operation = %name, failed = error.is_some(), "operation done");
                    return;
                }
                Err(e) => {
                    tracing::warn!(operation = %name, error = %e, attempt, "operation end not stored; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
                }
            }
        }
        // The lease will lapse and another run will replay the committed result.
        tracing::error!(operation = %name, "operation end not stored; it will run again");
    }

    /// Gives the lease up: free at `until_us` (0: at once).
    async fn release(&self, name: &str, until_us: i64) {
        let released = Entity::update_many()
            .col_expr(Column::LeaseOwner, Expr::value(""))
            .col_expr(Column::LeaseUntilUs, Expr::value(until_us))
            .col_expr(Column::UpdateTimeUs, Expr::value(wall_us()))
            .filter(Column::Name.eq(name))
            .filter(Column::LeaseOwner.eq(&self.inner.replica))
            .exec(&self.inner.db)
            .await;
        if let Err(e) = released {
            tracing::warn!(operation = %name, error = %e, "lease not released; it lapses");
        }
    }

    /// Takes over every unfinished operation whose lease has lapsed, now and every `POLL`,
    /// until `shutdown`.
    pub fn spawn_executor(&self, shutdown: Shutdown) {
        let ops = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POLL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = shutdown.started() => return,
                }
                if let Err(e) = ops.take_over(&shutdown).await {
                    tracing::debug!(service = ops.inner.service, error = %e, "operations poll failed");
                }
            }
        });
    }

    async fn take_over(&self, shutdown: &Shutdown) -> Result<(), sea_orm::DbErr> {
        let now = wall_us();
        let due = Entity::find()
            .filter(Column::Done.eq(false))
            .filter(Column::LeaseUntilUs.lt(now))
            .order_by_asc(Column::LeaseUntilUs)
            .limit(16)
            .all(&self.inner.db)
            .await?;
        for m in due {
            if self.is_running(&m.name) {
                continue;
            }
            let claimed = Entity::update_many()
                .col_expr(Column::LeaseOwner, Expr::value(&self.inner.replica))
                .col_expr(Column::LeaseUntilUs, Expr::value(now + micros(LEASE)))
                .col_expr(Column::Attempts, Expr::value(m.attempts + 1))
                .filter(Column::Name.eq(&m.name))
                .filter(Column::Done.eq(false))
                .filter(Column::LeaseUntilUs.eq(m.lease_until_us))
                .exec(&self.inner.db)
                .await?;
            if claimed.rows_affected != 1 {
                continue;
            }
            let Some(fresh) = Entity::find_by_id(m.name.clone())
                .one(&self.inner.db)
                .await?
            else {
                continue;
            };
            if fresh.cancel_requested {
                // Asked to stop while no one ran it: it ends here.
                self.finish(&fresh, Err(RunError::Cancelled)).await;
                continue;
            }
            self.launch(fresh, shutdown.clone());
        }
        Ok(())
    }

    fn is_running(&self, name: &str) -> bool {
        self.inner
            .running
            .lock()
            .map(|r| r.contains_key(name))
            .unwrap_or(false)
    }

    async fn visible(&self, caller: &Caller, name: &str) -> Result<Model, ApiError> {
        let m = self.load(name).await?;
        if may_see(caller, &m) {
            Ok(m)
        } else {
            // As if it did not exist: operation names reveal nothing to others.
            Err(not_found(name))
        }
    }

    async fn cancel(&self, caller: &Caller, name: &str) -> Result<(), ApiError> {
        let m = self.visible(caller, name).await?;
        if m.done {
            return Ok(());
        }
        Entity::update_many()
            .col_expr(Column::CancelRequested, Expr::value(true))
            .col_expr(Column::UpdateTimeUs, Expr::value(wall_us()))
            .filter(Column::Name.eq(name))
            .exec(&self.inner.db)
            .await?;
        if let Ok(running) = self.inner.running.lock()
            && let Some(flag) = running.get(name)
        {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    async fn delete(&self, caller: &Caller, name: &str) -> Result<(), ApiError> {
        let m = self.visible(caller, name).await?;
        if !m.done {
            return Err(ApiError::FailedPrecondition {
                message: format!("{name} is still running; cancel it first"),
                violations: vec![crate::error::Precondition {
                    kind: "OPERATION_NOT_DONE".into(),
                    subject: name.to_string(),
                    description: "only a finished operation can be deleted".into(),
                }],
            });
        }
        Entity::delete_by_id(name.to_string())
            .exec(&self.inner.db)
            .await?;
        Ok(())
    }

    /// Lists what `caller` may see, by name (= start time) after `after`.
    async fn list(
        &self,
        caller: &Caller,
        filter: &ListFilter,
        after: &str,
        limit: u64,
    ) -> Result<Vec<lro::Operation>, ApiError> {
        let mut q = Entity::find()
            .filter(Column::Name.gt(after))
            .order_by_asc(Column::Name)
            .limit(limit);
        if !sees_all(caller) {
            q = q.filter(Column::CallerSubject.eq(&caller.subject));
        }
        if let Some(done) = filter.done {
            q = q.filter(Column::Done.eq(done));
        }
        if let Some(target) = &filter.target {
            q = q.filter(Column::Target.eq(target));
        }
        Ok(q.all(&self.inner.db)
            .await?
            .iter()
            .map(|m| self.to_proto(m))
            .collect())
    }
}

fn may_see(caller: &Caller, m: &Model) -> bool {
    sees_all(caller) || caller.subject == m.caller_subject
}

fn sees_all(caller: &Caller) -> bool {
    caller
        .roles
        .iter()
        .any(|r| matches!(r, Role::Admin | Role::Auditor))
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound {
        resource_type: "longrunning.googleapis.com/Operation",
        name: name.to_string(),
    }
}

/// The idempotency key of an operation's writes: a UUID derived from its name, the same on
/// every run, so a run after a commit replays instead of writing twice.
pub fn operation_request_id(name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn context_of(m: &Model, shutdown: Shutdown) -> CallContext {
    CallContext {
        caller: Caller {
            subject: m.caller_subject.clone(),
            roles: m
                .caller_roles
                .split(',')
                .filter_map(|r| r.parse().ok())
                .collect(),
            enterprise: m.caller_enterprise.clone(),
            expert: m.caller_expert.clone(),
        },
        meta: RequestMeta {
            method: format!("/{}", m.kind),
            request_id: m.name.clone(),
            // A trace of its own per run: the starting call's trace has ended.
            traceparent: format!(
                "00-{}-{}-01",
                uuid::Uuid::new_v4().simple(),
                &uuid::Uuid::new_v4().simple().to_string()[..16]
            ),
        },
        shutdown,
    }
}

/// A dependency down, the database busy or a lost race: worth another run later.
fn is_transient(e: &ApiError) -> bool {
    matches!(e, ApiError::Unavailable { .. })
}

fn backoff(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 7) - 1).unwrap_or(0);
    (Duration::from_secs(1) * 2u32.pow(exp)).min(MAX_BACKOFF)
}

/// An error as `google.rpc.Status`, with the details the call would have carried.
fn status_of(e: ApiError) -> rpc::Status {
    let status: Status = e.into();
    if !status.details().is_empty()
        && let Ok(s) = rpc::Status::decode(status.details())
    {
        return s;
    }
    rpc::Status {
        code: status.code() as i32,
        message: status.message().to_string(),
        details: Vec::new(),
    }
}

/// Packs `m` as `Any`.
pub fn pack<M: Message + Name>(m: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: type_url(&M::full_name()),
        value: m.encode_to_vec(),
    }
}

fn type_url(full_name: &str) -> String {
    format!("type.googleapis.com/{full_name}")
}

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// `ListOperations.filter`: `done = true|false`, `target = "programs/p1"`, joined by `AND`.
#[derive(Debug, Default, PartialEq, Eq)]
struct ListFilter {
    done: Option<bool>,
    target: Option<String>,
}

impl ListFilter {
    fn parse(text: &str) -> Result<Self, ApiError> {
        let mut f = ListFilter::default();
        let bad = |why: &str| {
            ApiError::invalid(
                "filter",
                "INVALID_FILTER",
                format!(
                    "{why}; supported: done = true|false, target = \"<resource name>\", joined by AND"
                ),
            )
        };
        if text.trim().is_empty() {
            return Ok(f);
        }
        for term in text.split(" AND ") {
            let (field, value) = term
                .split_once('=')
                .ok_or_else(|| bad(&format!("`{}` is not `field = value`", term.trim())))?;
            let value = value.trim();
            match field.trim() {
                "done" => {
                    f.done = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("done takes true or false")),
                    });
                }
                "target" => {
                    let unquoted = value
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .ok_or_else(|| bad("target takes a quoted resource name"))?;
                    f.target = Some(unquoted.to_string());
                }
                other => return Err(bad(&format!("unknown field `{other}`"))),
            }
        }
        Ok(f)
    }
}

/// The `google.longrunning.Operations` service of one server: routes each call to the service
/// whose operation it names (`operations/{service}-...`).
#[derive(Clone, Debug)]
pub struct OperationsService {
    services: Vec<Operations>,
}

impl OperationsService {
    /// Serves the operations of `services`.
    pub fn new(services: Vec<Operations>) -> Self {
        OperationsService { services }
    }

    fn route(&self, name: &str) -> Result<&Operations, ApiError> {
        if !name.starts_with("operations/") {
            return Err(ApiError::from(FieldViolation::new(
                "name",
                "INVALID_RESOURCE_NAME",
                "an operation name is `operations/{operation}`",
            )));
        }
        self.services
            .iter()
            .find(|s| s.owns(name))
            .ok_or_else(|| not_found(name))
    }
}

/// Page token of `ListOperations`: the service index and the last name returned.
fn encode_token(service: usize, last: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{service}|{last}"))
}

fn decode_token(token: &str) -> Result<(usize, String), ApiError> {
    use base64::Engine;
    let bad = || {
        ApiError::invalid(
            "page_token",
            "INVALID_PAGE_TOKEN",
            "not a page token this list returned",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (service, last) = text.split_once('|').ok_or_else(bad)?;
    Ok((service.parse().map_err(|_| bad())?, last.to_string()))
}

fn caller_of<T>(request: &Request<T>) -> Result<Caller, Status> {
    Ok(CallContext::of(request)?.caller)
}

#[tonic::async_trait]
impl lro::operations_server::Operations for OperationsService {
    async fn list_operations(
        &self,
        request: Request<lro::ListOperationsRequest>,
    ) -> Result<Response<lro::ListOperationsResponse>, Status> {
        let caller = caller_of(&request)?;
        let req = request.into_inner();
        if !req.name.is_empty() && req.name != "operations" {
            return Err(ApiError::invalid(
                "name",
                "INVALID_RESOURCE_NAME",
                "the collection is `operations` (or empty)",
            )
            .into());
        }
        let filter = ListFilter::parse(&req.filter)?;
        let size = match u64::try_from(req.page_size) {
            Ok(0) => DEFAULT_PAGE,
            Ok(n) => n.min(MAX_PAGE),
            Err(_) => {
                return Err(ApiError::invalid(
                    "page_size",
                    "OUT_OF_RANGE",
                    "page_size must not be negative",
                )
                .into());
            }
        };
        let (mut index, mut after) = if req.page_token.is_empty() {
            (0, String::new())
        } else {
            decode_token(&req.page_token)?
        };
        let mut operations = Vec::new();
        let mut next_page_token = String::new();
        while index < self.services.len() {
            let want = size - operations.len() as u64;
            let page = self.services[index]
                .list(&caller, &filter, &after, want + 1)
                .await?;
            let more = page.len() as u64 > want;
            operations.extend(page.into_iter().take(usize::try_from(want).unwrap_or(0)));
            if more {
                let last = operations
                    .last()
                    .map(|o| o.name.clone())
                    .unwrap_or_default();
                next_page_token = encode_token(index, &last);
                break;
            }
            index += 1;
            after = String::new();
            if operations.len() as u64 == size {
                if index < self.services.len() {
                    next_page_token = encode_token(index, "");
                }
                break;
            }
        }
        Ok(Response::new(lro::ListOperationsResponse {
            operations,
            next_page_token,
            unreachable: Vec::new(),
        }))
    }

    async fn get_operation(
        &self,
        request: Request<lro::GetOperationRequest>,
    ) -> Result<Response<lro::Operation>, Status> {
        let caller = caller_of(&request)?;
        let name = request.into_inner().name;
        let ops = self.route(&name)?;
        let m = ops.visible(&caller, &name).await?;
        Ok(Response::new(ops.to_proto(&m)))
    }

    async fn delete_operation(
        &self,
        request: Request<lro::DeleteOperationRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = caller_of(&request)?;
        let name = request.into_inner().name;
        self.route(&name)?.delete(&caller, &name).await?;
        Ok(Response::new(()))
    }

    async fn cancel_operation(
        &self,
        request: Request<lro::CancelOperationRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = caller_of(&request)?;
        let name = request.into_inner().name;
        self.route(&name)?.cancel(&caller, &name).await?;
        Ok(Response::new(()))
    }

    async fn wait_operation(
        &self,
        request: Request<lro::WaitOperationRequest>,
    ) -> Result<Response<lro::Operation>, Status> {
        let ctx = CallContext::of(&request)?;
        let req = request.into_inner();
        let ops = self.route(&req.name)?;
        let timeout = match req.timeout {
            Some(t) if t.seconds < 0 || t.nanos < 0 => {
                return Err(ApiError::invalid(
                    "timeout",
                    "OUT_OF_RANGE",
                    "timeout must not be negative",
                )
                .into());
            }
            Some(t) => Duration::new(
                u64::try_from(t.seconds).unwrap_or(0),
                u32::try_from(t.nanos).unwrap_or(0),
            )
            .min(MAX_WAIT),
            None => MAX_WAIT,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let m = ops.visible(&ctx.caller, &req.name).await?;
            if m.done || tokio::time::Instant::now() >= deadline {
                return Ok(Response::new(ops.to_proto(&m)));
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100).min(deadline - tokio::time::Instant::now())) => {}
                // A draining server answers with what it has.
                () = ctx.shutdown.started() => return Ok(Response::new(ops.to_proto(&m))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_parse() {
        assert_eq!(ListFilter::parse("").ok(), Some(ListFilter::default()));
        assert_eq!(
            ListFilter::parse(r#"done = false AND target = "programs/p1""#).ok(),
            Some(ListFilter {
                done: Some(false),
                target: Some("programs/p1".into())
            })
        );
        assert!(ListFilter::parse("done = maybe").is_err());
        assert!(ListFilter::parse("owner = x").is_err());
        assert!(ListFilter::parse("target = programs/p1").is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let t = encode_token(2, "operations/awards-0190");
        assert_eq!(
            decode_token(&t).ok(),
            Some((2, "operations/awards-0190".to_string()))
        );
        assert!(decode_token("%%%").is_err());
    }

    #[test]
    fn backoff_grows_to_a_minute() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn a_runs_idempotency_key_is_stable_per_operation() {
        let a = operation_request_id("operations/awards-1");
        assert_eq!(a, operation_request_id("operations/awards-1"));
        assert_ne!(a, operation_request_id("operations/awards-2"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}
