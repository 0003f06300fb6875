//! Bulk import (`ImportEnterprises`, client streaming).
//!
//! Each row is parsed exactly as `CreateEnterprise` parses its enterprise
//! (`convert::parse_uscc`, `convert::enterprise::parse_fields`), so a row is rejected for the
//! same reasons with the same field paths (prefixed `enterprise.`). Valid rows are written in
//! batches of `domain::import::BATCH_ROWS`, one write (one lease of the group-commit writer,
//! `qilu_common::write`) each: one query loads the batch's existing enterprises (primary-key
//! probes, `store::enterprise::get_many`), new ones go in with multi-row inserts (on PostgreSQL
//! one statement of column arrays, `store::changes::insert_enterprises`), changed ones are
//! updated one by one (version + 1), and every created or updated enterprise gets its audit
//! event; the change feed cursor is the head the batch's lease chained to, no extra read.
//! Identical rows write nothing. A malformed row is reported and the stream goes on.
//!
//! Pipelined, so that the database's one writer connection is kept busy rather than waiting on
//! this process between statements:
//! - the handler reads and validates the stream, checks the batch's zones (rows naming an
//!   unregistered zone are rejected, as CreateEnterprise rejects them) and hands each full batch
//!   to a committer task, while the committer writes the previous one (one batch queued at most,
//!   so a slow database slows the reader rather than piling rows up in memory);
//! - the committer writes batches one after another, in stream order. It *submits* each
//!   (`WriteTx::submit`: the lease ends, the write is in the writer's open transaction) and goes
//!   on with the next without waiting for the `COMMIT`, so consecutive batches share one
//!   database transaction and one `COMMIT` as concurrent unary writes do; a batch's rows get
//!   their outcome only once its commit is durable (at most `MAX_IN_FLIGHT` batches wait);
//! - within a batch, the audit events (state JSON and chained hash per change) are built on a
//!   blocking thread while PostgreSQL inserts the rows (`WriteTx::chain`/`extend`).
//!
//! The committer reports what became of each row (its outcome, or its rejection with field
//! paths) and the handler writes that into the row's result, so results are exactly as without
//! the pipeline: one per row, in stream order.
//!
//! Failure semantics:
//! - a batch whose statements fail rejects its rows (and only its rows: its savepoint is rolled
//!   back) with that reason, and a `COMMIT` that fails rejects the rows of every batch it held
//!   (each reported not saved); the run goes on;
//! - a stream that breaks (client gone, bad message) ends the call: the batches already handed
//!   to the committer are finished (committed, or failed) before the call answers, rows received
//!   since the last full batch are dropped (importing the file again reports the committed rows
//!   UNCHANGED). A call dropped by the server (the client cancelled it) stops its committer
//!   too, as a dropped handler stopped the batch it was committing before the pipeline: a batch
//!   whose write had not yet been submitted to the database writer is rolled back, one already
//!   submitted commits (or fails) with the writer's transaction;
//! - the server shutting down ends the call the same way (the drain does not wait for the
//!   client to finish streaming): the batches already handed over are finished, then
//!   UNAVAILABLE, reason `SERVER_SHUTTING_DOWN`, with `rows_received` and `rows_written`;
//! - `request_id` (first message): once a run completes its response is stored under the id, and
//!   a retried run with the same id and options gets that response without its rows being read.
//!   The record is written after the last batch (a run spans several transactions); a crash in
//!   between leaves no record, and the retry then re-imports, finding committed rows UNCHANGED.
//!   With `validate_only` nothing is stored.

use crate::convert::enterprise_to_proto;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use prost::Message;
use qilu_common::context::Shutdown;
use qilu_common::idempotency::{self, RequestId};
use qilu_common::write::{Begun, Submitted, WriteTx};
use qilu_common::{ApiError, CallContext, db::is_unique_violation};
use qilu_proto::registry as pb;
use sea_orm::ConnectionTrait;
use tokio::sync::mpsc;
use tonic::Streaming;
use tracing::Instrument;

use crate::convert;
use crate::convert::import::{not_saved, outcome, problem_to_proto, why_not_saved};
use crate::domain::enterprise::{Enterprise, EnterpriseFields, EnterpriseState};
use crate::domain::import::{
    BATCH_ROWS, Effect, Ledger, MAX_ROWS_PER_IMPORT, MAX_ROWS_PER_MESSAGE, Problem, effect,
};
use crate::domain::uscc::Uscc;
use crate::store::changes as changes_store;
use crate::store::enterprise as store;

use super::RegistryApi;
use qilu_common::feed::encode_cursor;

/// A valid row waiting for its batch.
pub(super) struct Pending {
    /// Index of the row's result.
    pub(super) index: usize,
    pub(super) uscc: Uscc,
    pub(super) fields: EnterpriseFields,
}

/// One import run as the handler sees it: what it has received and validated so far.
struct Run<'a> {
    api: &'a RegistryApi,
    today: chrono::NaiveDate,
    ledger: Ledger,
    results: Vec<pb::ImportRowResult>,
    pending: Vec<Pending>,
    received: u64,
    /// Full batches go to the committer through this (capacity 1); `None` once closed.
    batches: Option<mpsc::Sender<Vec<Pending>>>,
}

/// What the committer decided for one row: its result's outcome and problems.
struct Fate {
    index: usize,
    outcome: pb::ImportRowOutcome,
    problems: Vec<pb::RowProblem>,
}

impl Fate {
    /// A row whose batch was decided (and, when it wrote, is durable).
    fn decided(index: usize, effect: Effect) -> Fate {
        Fate {
            index,
            outcome: outcome(effect),
            problems: Vec::new(),
        }
    }
}

/// The committer: decides and commits the batches of one run, in the order received.
struct Committer {
    api: RegistryApi,
    ctx: CallContext,
    validate_only: bool,
    /// What became of every row of every batch so far.
    fates: Vec<Fate>,
    /// Sequence of the last change committed by this run.
    last_sequence: Option<i64>,
    /// Batches handed to the database writer and not yet known to be durable, oldest first.
    in_flight: VecDeque<InFlight>,
}

/// Most batches submitted and not yet known to be durable: a writer that stopped answering
/// stops the import after these, rather than it reading the whole stream ahead.
const MAX_IN_FLIGHT: usize = 4;

/// A submitted batch: its rows' effects become their outcomes once its commit is durable.
struct InFlight {
    rows: Vec<(usize, Effect)>,
    submitted: Submitted,
    last_sequence: i64,
}

/// How a batch's write ended in the committer.
enum Decided {
    /// Nothing to write (every row unchanged, or validating only): final now.
    Final(Vec<Effect>),
    /// Written into the writer's batch; durable once `submitted` says so.
    Submitted {
        effects: Vec<Effect>,
        submitted: Submitted,
        last_sequence: i64,
    },
}

/// What the committer hands back when the batches stop.
struct Committed {
    fates: Vec<Fate>,
    last_sequence: Option<i64>,
}

impl<'a> Run<'a> {
    /// Takes the rows of one message: rejects the bad ones at once, queues the good ones, and
    /// commits a batch whenever enough are queued.
    async fn take(&mut self, rows: Vec<pb::ImportEnterpriseRow>) -> Result<(), ApiError> {
        if rows.len() > MAX_ROWS_PER_MESSAGE {
            return Err(ApiError::invalid(
                "rows",
                "TOO_MANY_ROWS",
                format!(
                    "at most {MAX_ROWS_PER_MESSAGE} rows per message; this one has {}",
                    rows.len()
                ),
            ));
        }
        self.received += rows.len() as u64;
        if self.received > MAX_ROWS_PER_IMPORT {
            return Err(ApiError::invalid(
                "rows",
                "TOO_MANY_ROWS",
                format!(
                    "at most {MAX_ROWS_PER_IMPORT} rows per import; split the file (rows so far were committed)"
                ),
            ));
        }
        for row in rows {
            self.take_row(row);
            if self.pending.len() >= BATCH_ROWS {
                self.hand_over().await?;
            }
        }
        Ok(())
    }

    /// Queues the pending rows for the committer (waiting while it still holds a batch), after
    /// rejecting those naming an unregistered zone.
    async fn hand_over(&mut self) -> Result<(), ApiError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let stopped = || ApiError::internal("the import's committer stopped early");
        let batch = std::mem::take(&mut self.pending);
        let batch = self.reject_unknown_zones(batch).await;
        if batch.is_empty() {
            return Ok(());
        }
        let batches = self.batches.as_ref().ok_or_else(stopped)?;
        batches.send(batch).await.map_err(|_| stopped())
    }

    /// Rejects rows naming a high-tech zone that is not registered (as CreateEnterprise does)
    /// and returns the rest. Checked here, while the committer writes the previous batch, so
    /// the lookups stay off the write path (a handful of distinct zones per batch: one lookup
    /// each). If the check itself fails, every row of the batch is reported not saved.
    async fn reject_unknown_zones(&mut self, batch: Vec<Pending>) -> Vec<Pending> {
        let unknown = match unknown_zones(&self.api.db, &batch).await {
            Ok(unknown) => unknown,
            Err(e) => {
                tracing::warn!(error = %e, "import zone check failed");
                for row in &batch {
                    self.reject(row.index, vec![not_saved("the zone check failed")]);
                }
                return Vec::new();
            }
        };
        if unknown.is_empty() {
            return batch;
        }
        let mut kept = Vec::with_capacity(batch.len());
        for row in batch {
            match &row.fields.zone {
                Some(zone) if unknown.contains(zone) => {
                    self.reject(row.index, vec![unknown_zone(zone)]);
                }
                _ => kept.push(row),
            }
        }
        kept
    }

    /// Marks a row rejected with these problems.
    fn reject(&mut self, index: usize, problems: Vec<pb::RowProblem>) {
        let result = &mut self.results[index];
        result.outcome = pb::ImportRowOutcome::Rejected as i32;
        result.problems = problems;
    }

    fn take_row(&mut self, row: pb::ImportEnterpriseRow) {
        let index = self.results.len();
        let (result, valid) = parse_row(self.api, self.today, &mut self.ledger, row);
        if let Some((uscc, fields)) = valid {
            self.pending.push(Pending {
                index,
                uscc,
                fields,
            });
        }
        self.results.push(result);
    }

    /// Writes what the committer decided into the rows' results.
    fn apply(&mut self, fates: Vec<Fate>) {
        for fate in fates {
            let result = &mut self.results[fate.index];
            result.outcome = fate.outcome as i32;
            result.problems = fate.problems;
        }
    }
}

impl Committer {
    /// Decides and commits batches until the handler stops sending them.
    async fn run(mut self, mut batches: mpsc::Receiver<Vec<Pending>>) -> Committed {
        while let Some(batch) = batches.recv().await {
            self.flush(batch).await;
        }
        while !self.in_flight.is_empty() {
            self.settle_oldest().await;
        }
        Committed {
            fates: self.fates,
            last_sequence: self.last_sequence,
        }
    }

    /// Decides (and, unless validating only, commits) one batch. Earlier batches may still be
    /// waiting for their commit (consecutive batches share the writer's transaction while they
    /// keep coming): those already durable are settled after this one's write has ended, and
    /// at most `MAX_IN_FLIGHT` wait at a time.
    async fn flush(&mut self, batch: Vec<Pending>) {
        if batch.is_empty() {
            return;
        }
        let decided = if self.validate_only {
            self.decide_only(&batch).await.map(Decided::Final)
        } else {
            self.commit(&batch).await
        };
        let rows = batch.iter().map(|row| row.index);
        match decided {
            Ok(Decided::Final(effects)) => self
                .fates
                .extend(rows.zip(effects).map(|(index, e)| Fate::decided(index, e))),
            Ok(Decided::Submitted {
                effects,
                submitted,
                last_sequence,
            }) => {
                self.in_flight.push_back(InFlight {
                    rows: rows.zip(effects).collect(),
                    submitted,
                    last_sequence,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = batch.len(), "import batch failed");
                let why = why_not_saved(&e);
                rows.for_each(|index| self.not_saved(index, why));
            }
        }
        self.settle_ready().await;
    }

    /// Settles the batches in flight whose commit has ended, then waits for the oldest while
    /// too many are in flight.
    async fn settle_ready(&mut self) {
        while let Some(oldest) = self.in_flight.front_mut() {
            let Some(result) = oldest.submitted.try_durable() else {
                break;
            };
            if let Some(batch) = self.in_flight.pop_front() {
                self.settled(batch.rows, batch.last_sequence, result);
            }
        }
        while self.in_flight.len() > MAX_IN_FLIGHT {
            self.settle_oldest().await;
        }
    }

    /// Waits for the oldest batch in flight to be durable (or to fail) and settles it.
    async fn settle_oldest(&mut self) {
        if let Some(InFlight {
            rows,
            submitted,
            last_sequence,
        }) = self.in_flight.pop_front()
        {
            let result = submitted.durable().await;
            self.settled(rows, last_sequence, result);
        }
    }

    /// Records what became of the rows of a batch whose commit has ended.
    fn settled(
        &mut self,
        rows: Vec<(usize, Effect)>,
        last_sequence: i64,
        result: Result<(), ApiError>,
    ) {
        match result {
            Ok(()) => {
                self.last_sequence = Some(last_sequence);
                self.fates
                    .extend(rows.into_iter().map(|(index, e)| Fate::decided(index, e)));
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = rows.len(), "import batch failed to commit");
                let why = why_not_saved(&e);
                for (index, _) in rows {
                    self.not_saved(index, why);
                }
            }
        }
    }

    /// Marks a row as not saved because its batch could not be committed.
    fn not_saved(&mut self, index: usize, why: &str) {
        self.fates.push(Fate {
            index,
            outcome: pb::ImportRowOutcome::Rejected,
            problems: vec![not_saved(why)],
        });
    }

    async fn decide_only(&self, batch: &[Pending]) -> Result<Vec<Effect>, ApiError> {
        judge_batch(&self.api.db, batch).await
    }

    /// Writes one batch in one write (a lease of the writer's batch transaction) and submits
    /// it; the caller learns later whether it is durable.
    async fn commit(&mut self, batch: &[Pending]) -> Result<Decided, ApiError> {
        let mut tx = match WriteTx::begin::<pb::ImportEnterprisesResponse>(
            &self.api.db,
            &self.ctx,
            "",
            &pb::ImportEnterprisesRequest::default(),
        )
        .await?
        {
            Begun::Fresh(tx) => tx,
            Begun::Replay(_) => {
                return Err(ApiError::internal("a batch without request id replayed"));
            }
        };
        let effects = write_batch(&self.api, &mut tx, batch).await?;
        if !tx.has_events() {
            // Nothing to write: the transaction rolls back when dropped.
            return Ok(Decided::Final(effects));
        }
        // The head this lease chained from is the database's (read under the chain lock when
        // the batch transaction opened), so no extra read is needed for the feed cursor.
        let last_sequence = tx.head_sequence();
        let submitted = tx.submit(&pb::ImportEnterprisesResponse::default()).await?;
        Ok(Decided::Submitted {
            effects,
            submitted,
            last_sequence,
        })
    }
}

// What the streaming import and an import operation (`api::imports`) share: a row is parsed,
// its zone checked and its batch written by these functions only, so both give a row the same
// verdict.

/// Parses one row as `CreateEnterprise` parses its enterprise, and takes its row number and
/// USCC in the run's `ledger`: the row's result (REJECTED with every problem, or still
/// UNSPECIFIED) and, when valid, its code and fields.
pub(super) fn parse_row(
    api: &RegistryApi,
    today: chrono::NaiveDate,
    ledger: &mut Ledger,
    row: pb::ImportEnterpriseRow,
) -> (pb::ImportRowResult, Option<(Uscc, EnterpriseFields)>) {
    let mut problems = Vec::new();
    if let Err(p) = ledger.take_row_number(row.row_number) {
        problems.push(p);
    }
    let mut shown_uscc = String::new();
    let parsed = match &row.enterprise {
        None => {
            problems.push(Problem::new("enterprise", "enterprise is required"));
            None
        }
        Some(input) => {
            shown_uscc = input.uscc.clone();
            let uscc = convert::parse_uscc(&input.uscc, "enterprise.uscc", &api.known_exceptions)
                .map_err(|v| problems.push(Problem::new(v.field, v.description)))
                .ok();
            let fields = convert::enterprise::parse_fields(input, "enterprise", today)
                .map_err(|vs| {
                    problems.extend(vs.into_iter().map(|v| Problem::new(v.field, v.description)));
                })
                .ok();
            if let Some(u) = &uscc {
                shown_uscc = u.as_str().to_string();
            }
            uscc.zip(fields)
        }
    };
    let accepted = match parsed {
        Some((uscc, fields)) if problems.is_empty() => {
            match ledger.take_uscc(uscc.as_str(), row.row_number) {
                Ok(()) => Some((uscc, fields)),
                Err(p) => {
                    problems.push(p);
                    None
                }
            }
        }
        _ => None,
    };
    let mut result = pb::ImportRowResult {
        row_number: row.row_number,
        uscc: shown_uscc,
        outcome: pb::ImportRowOutcome::Unspecified as i32,
        problems: Vec::new(),
        name: String::new(),
    };
    if accepted.is_none() {
        result.outcome = pb::ImportRowOutcome::Rejected as i32;
        result.problems = problems.into_iter().map(problem_to_proto).collect();
    }
    (result, accepted)
}

/// The zones named by rows of `batch` that are not registered (such rows are rejected, as
/// CreateEnterprise rejects them). A handful of distinct zones per batch: one lookup each.
pub(super) async fn unknown_zones(
    db: &sea_orm::DatabaseConnection,
    batch: &[Pending],
) -> Result<std::collections::BTreeSet<String>, ApiError> {
    let zones: std::collections::BTreeSet<&str> = batch
        .iter()
        .filter_map(|p| p.fields.zone.as_deref())
        .collect();
    let mut unknown = std::collections::BTreeSet::new();
    for zone in zones {
        if !crate::store::zones::zone_exists(db, zone).await? {
            unknown.insert(zone.to_string());
        }
    }
    Ok(unknown)
}

/// The problem of a row naming an unregistered zone.
pub(super) fn unknown_zone(zone: &str) -> pb::RowProblem {
    pb::RowProblem {
        field: "enterprise.zone".into(),
        description: format!("{zone} is not a registered high-tech zone"),
    }
}

/// The stored enterprises of a batch, by USCC.
async fn existing(
    conn: &impl ConnectionTrait,
    batch: &[Pending],
) -> Result<HashMap<String, Enterprise>, ApiError> {
    let codes: Vec<String> = batch.iter().map(|p| p.uscc.as_str().to_string()).collect();
    store::get_many(conn, &codes)
        .await?
        .into_iter()
        .map(|m| {
            m.into_domain()
                .map(|e| (e.uscc.as_str().to_string(), e))
                .map_err(ApiError::internal)
        })
        .collect()
}

/// What each row of `batch` would do, writing nothing (`validate_only`).
pub(super) async fn judge_batch(
    conn: &impl ConnectionTrait,
    batch: &[Pending],
) -> Result<Vec<Effect>, ApiError> {
    let existing = existing(conn, batch).await?;
    Ok(batch
        .iter()
        .map(|p| effect(existing.get(p.uscc.as_str()), &p.fields))
        .collect())
}

/// Writes `batch` in `tx`: new enterprises inserted (multi-row), changed ones updated, an audit
/// event for each; each row's effect, in order. When nothing changed, `tx` has no event and the
/// caller drops it. The caller commits (or submits) it.
pub(super) async fn write_batch(
    api: &RegistryApi,
    tx: &mut WriteTx,
    batch: &[Pending],
) -> Result<Vec<Effect>, ApiError> {
    let existing = existing(tx.conn(), batch).await?;
    let now = tx.now_us();
    let mut effects = Vec::with_capacity(batch.len());
    let mut inserts = Vec::new();
    let mut changed = Vec::new();
    for p in batch {
        let current = existing.get(p.uscc.as_str());
        let e = effect(current, &p.fields);
        match (e, current) {
            (Effect::Create, _) => {
                let created = Enterprise {
                    uscc: p.uscc.clone(),
                    fields: p.fields.clone(),
                    state: EnterpriseState::Active,
                    high_tech_certified: false,
                    leading: false,
                    create_time_us: now,
                    update_time_us: now,
                    version: 1,
                    state_change: None,
                };
                inserts.push(created.clone());
                changed.push(created);
            }
            (Effect::Update, Some(current)) => {
                let mut updated = current.clone();
                updated.fields = p.fields.clone();
                updated.version = current.version + 1;
                updated.update_time_us = now;
                // Writers are serialised by the write transaction, so the version cannot
                // have moved since the read above; checked anyway.
                if !store::update_if_version(tx.conn(), &updated, current.version).await? {
                    return Err(qilu_common::input::etag::concurrent(&updated.name()));
                }
                changed.push(updated);
            }
            _ => {}
        }
        effects.push(e);
    }
    if changed.is_empty() {
        return Ok(effects);
    }
    // The audit events (state JSON and hash of each of up to 500 changes) are built on a
    // blocking thread while PostgreSQL inserts the rows: on the import's critical path the
    // two would otherwise take turns, each idling the other.
    // Updated enterprises are published as read today (`high_tech_certified` derived from
    // their certificates; the stored column can be stale). New ones hold no certificate.
    let updated: Vec<String> = changed
        .iter()
        .filter(|e| e.version > 1)
        .map(|e| e.uscc.as_str().to_string())
        .collect();
    let holders =
        crate::store::certificate::valid_holders(tx.conn(), &updated, api.today()).await?;
    let mut chain = tx.chain();
    let events = tokio::task::spawn_blocking(move || {
        for e in &mut changed {
            e.high_tech_certified = holders.contains(e.uscc.as_str());
            chain.record(&e.name(), e, &enterprise_to_proto(e))?;
        }
        Ok::<_, ApiError>(chain)
    });
    let inserted = changes_store::insert_enterprises(tx.conn(), &inserts).await;
    let chain = events
        .await
        .map_err(|e| ApiError::internal(format!("building the audit events failed: {e}")))??;
    if let Err(e) = inserted {
        return Err(if is_unique_violation(&e) {
            ApiError::Aborted("an enterprise of the batch was created concurrently".into())
        } else {
            e.into()
        });
    }
    tx.extend(chain)?;
    Ok(effects)
}

impl Run<'_> {
    /// The response once every batch is decided.
    fn response(
        self,
        validate_only: bool,
        last_sequence: Option<i64>,
        rejected_rows_only: bool,
    ) -> pb::ImportEnterprisesResponse {
        let mut response = pb::ImportEnterprisesResponse {
            received_count: self.results.len() as i64,
            validate_only,
            last_change_cursor: last_sequence.map(encode_cursor).unwrap_or_default(),
            ..Default::default()
        };
        for r in &self.results {
            match pb::ImportRowOutcome::try_from(r.outcome) {
                Ok(pb::ImportRowOutcome::Created) => response.created_count += 1,
                Ok(pb::ImportRowOutcome::Updated) => response.updated_count += 1,
                Ok(pb::ImportRowOutcome::Unchanged) => response.unchanged_count += 1,
                _ => response.rejected_count += 1,
            }
        }
        response.accepted_count = response.created_count + response.updated_count;
        response.row_results = if rejected_rows_only {
            self.results
                .into_iter()
                .filter(|r| r.outcome == pb::ImportRowOutcome::Rejected as i32)
                .collect()
        } else {
            self.results
        };
        response
    }
}

/// The committer task, stopped if the call is dropped before it finished (a cancelled call).
struct StopOnDrop(tokio::task::JoinHandle<Committed>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why reading the stream stopped before its end.
enum Stopped {
    /// A bad message, or the stream broke.
    Failed(ApiError),
    /// The server began shutting down.
    ShuttingDown,
}

impl From<ApiError> for Stopped {
    fn from(e: ApiError) -> Self {
        Stopped::Failed(e)
    }
}

/// Takes the first message's rows, then every further message's, until the stream ends or the
/// server begins shutting down (an import may stream for minutes; the drain must not wait on
/// it).
async fn read_all(
    run: &mut Run<'_>,
    first: Vec<pb::ImportEnterpriseRow>,
    stream: &mut Streaming<pb::ImportEnterprisesRequest>,
    shutdown: &Shutdown,
) -> Result<(), Stopped> {
    run.take(first).await?;
    loop {
        let message = tokio::select! {
            biased;
            () = shutdown.started() => return Err(Stopped::ShuttingDown),
            message = stream.message() => message.map_err(|s| Stopped::Failed(ApiError::Inbound(s)))?,
        };
        let Some(message) = message else {
            return Ok(());
        };
        run.take(message.rows).await?;
    }
}

/// How an import cut short by shutdown ends: UNAVAILABLE (retry later or elsewhere), saying how
/// far it got. Importing the file again is safe: rows already written come back UNCHANGED.
fn shutting_down(received: usize, fates: &[Fate]) -> ApiError {
    let written = fates
        .iter()
        .filter(|f| {
            matches!(
                f.outcome,
                pb::ImportRowOutcome::Created | pb::ImportRowOutcome::Updated
            )
        })
        .count();
    ApiError::ShuttingDown {
        message: format!(
            "server shutting down after {received} rows: the {written} rows created or updated by \
             the batches already committed are stored, later rows are not; import the file again \
             (stored rows come back UNCHANGED)"
        ),
        metadata: vec![
            ("rows_received", received.to_string()),
            ("rows_written", written.to_string()),
        ],
    }
}

pub(super) async fn import_enterprises(
    api: &RegistryApi,
    ctx: &CallContext,
    req: Streaming<pb::ImportEnterprisesRequest>,
) -> Result<pb::ImportEnterprisesResponse, ApiError> {
    let mut stream = req;
    let started = Instant::now();
    let Some(first) = stream.message().await.map_err(ApiError::Inbound)? else {
        // An empty stream imports nothing.
        return Ok(pb::ImportEnterprisesResponse::default());
    };
    let request_id = RequestId::parse(&first.request_id)?;
    let method = idempotency::method_of(ctx);
    let scope = idempotency::CallerScope::of(&ctx.caller);
    // The run's identity for idempotency: its options (rows are not read on a retry).
    let fingerprint = idempotency::fingerprint(&pb::ImportEnterprisesRequest {
        rows: Vec::new(),
        request_id: first.request_id.clone(),
        validate_only: first.validate_only,
        rejected_rows_only: first.rejected_rows_only,
    });
    if let Some(id) = &request_id
        && !first.validate_only
        && let Some(bytes) = idempotency::replay(&api.db, &scope, id, &method, &fingerprint).await?
    {
        let previous =
            pb::ImportEnterprisesResponse::decode(bytes.as_slice()).map_err(ApiError::internal)?;
        return Ok(previous);
    }
    let rejected_rows_only = first.rejected_rows_only;
    let validate_only = first.validate_only;
    let (batches, queued) = mpsc::channel(1);
    let mut committer = StopOnDrop(tokio::spawn(
        Committer {
            api: api.clone(),
            ctx: ctx.clone(),
            validate_only,
            fates: Vec::new(),
            last_sequence: None,
            in_flight: VecDeque::new(),
        }
        .run(queued)
        .in_current_span(),
    ));
    let mut run = Run {
        api,
        today: api.today(),
        ledger: Ledger::default(),
        results: Vec::new(),
        pending: Vec::new(),
        received: 0,
        batches: Some(batches),
    };
    let read = read_all(&mut run, first.rows, &mut stream, &ctx.shutdown).await;
    // The last, partial batch goes only when the stream ended well; either way the committer
    // finishes what it was handed before the call answers.
    let read = match read {
        Ok(()) => run.hand_over().await.map_err(Stopped::from),
        Err(e) => Err(e),
    };
    run.batches = None;
    let committed = (&mut committer.0)
        .await
        .map_err(|e| ApiError::internal(format!("the import's committer failed: {e}")))?;
    match read {
        Ok(()) => {}
        Err(Stopped::Failed(e)) => return Err(e),
        Err(Stopped::ShuttingDown) => {
            return Err(shutting_down(run.results.len(), &committed.fates));
        }
    }
    run.apply(committed.fates);
    let response = run.response(validate_only, committed.last_sequence, rejected_rows_only);
    if let Some(id) = &request_id
        && !validate_only
        && let Err(e) = idempotency::store(
            &api.db,
            &scope,
            id,
            &method,
            fingerprint,
            response.encode_to_vec(),
            qilu_common::time::now_micros(),
        )
        .await
    {
        // A concurrent run under the same id stored its response first; this run's rows are
        // committed all the same, so answer with what this run did.
        tracing::warn!(error = %e, request_id = id.as_str(), "import response not stored for replay");
    }
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        received = response.received_count,
        created = response.created_count,
        updated = response.updated_count,
        unchanged = response.unchanged_count,
        rejected = response.rejected_count,
        rows_per_second = (response.received_count as f64 / seconds.max(1e-9)) as i64,
        "import finished"
    );
    Ok(response)
}
