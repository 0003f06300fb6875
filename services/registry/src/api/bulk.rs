//! Bulk imports of history — high-tech certificates with their annual reports
//! (`certification::import`) and annual figures (`figures_import`) — as client streams, with
//! what `ImportEnterprises` promises: a verdict per row (created, updated, unchanged, or
//! rejected with its field problems), a bad row never stops the stream, the run is idempotent
//! by `request_id`, and every change goes through `WriteTx` (audited, in the change feed).
//!
//! This driver is what the two imports share; a [`Family`] says how to read one kind of row
//! and what a valid row does to the stored state. Unlike the enterprise import (built for
//! 100,000s of rows a minute, pipelined) it is plain: a batch of [`BATCH_ROWS`] valid rows is one
//! write, its rows decided one after another (each reads what it needs, then writes), and
//! committed before the next batch is read. A row refused by a rule (holder not registered, a
//! report recorded on another date) is refused before it writes anything, so the batch goes
//! on; a database failure rejects every row of its batch as not saved and the run goes on.
//! `validate_only` runs the same batches and rolls each back, so its verdicts are exactly those
//! a real run would give.

use std::future::Future;

use prost::Message;
use qilu_common::feed::encode_cursor;
use qilu_common::idempotency::{self, RequestId};
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;
use tonic::Streaming;

use crate::convert::import::{not_saved, outcome, problem_to_proto, why_not_saved};
use crate::domain::import::{Effect, Ledger, MAX_ROWS_PER_IMPORT, MAX_ROWS_PER_MESSAGE, Problem};

use super::RegistryApi;

/// Valid rows per write: each row is a few statements (and its holder's refresh), so a batch
/// holds the database's one writer for a few milliseconds at most.
pub const BATCH_ROWS: usize = 200;

/// The options of a run, read from its first message.
pub(super) struct Options {
    pub request_id: String,
    pub validate_only: bool,
    pub rejected_rows_only: bool,
}

/// What a run did, for the family's response message.
pub(super) struct Summary {
    pub received_count: i64,
    pub created_count: i64,
    pub updated_count: i64,
    pub unchanged_count: i64,
    pub rejected_count: i64,
    pub row_results: Vec<pb::ImportRowResult>,
    pub validate_only: bool,
    pub last_change_cursor: String,
}

/// One kind of imported row.
pub(super) trait Family: Send {
    /// A message of the client stream.
    type Message: Message + Default + 'static;
    /// One row of it.
    type Row: Send;
    /// A row that passed every check that needs no database.
    type Valid: Send + Sync;
    /// The run's response.
    type Response: Message + Default;

    /// The run's options (first message).
    fn options(message: &Self::Message) -> Options;
    /// The first message as its idempotency fingerprint sees it: the options, no rows.
    fn fingerprint(options: &Options) -> Self::Message;
    /// The rows of a message.
    fn rows(message: Self::Message) -> Vec<Self::Row>;
    /// A row's number.
    fn row_number(row: &Self::Row) -> i64;
    /// Checks a row without the database, filling `result.uscc` (and `result.name` when known);
    /// every problem at once.
    fn parse(
        &mut self,
        row: Self::Row,
        result: &mut pb::ImportRowResult,
    ) -> Result<Self::Valid, Vec<Problem>>;
    /// Decides a valid row against the stored state and writes it in `tx`: its effect and the
    /// resource's name, or the problems that refuse it (then it wrote nothing).
    fn apply(
        &self,
        tx: &mut WriteTx,
        row: &Self::Valid,
    ) -> impl Future<Output = Result<Result<(Effect, String), Vec<Problem>>, ApiError>> + Send;
    /// The field a not-saved row's problem is reported on.
    fn row_field() -> &'static str;
    /// The response.
    fn response(summary: Summary) -> Self::Response;
}

/// One run: its rows' results so far and the valid rows waiting for their batch.
struct Run<'a, F: Family> {
    api: &'a RegistryApi,
    ctx: &'a CallContext,
    family: F,
    validate_only: bool,
    ledger: Ledger,
    results: Vec<pb::ImportRowResult>,
    pending: Vec<(usize, F::Valid)>,
    last_sequence: Option<i64>,
}

impl<F: Family> Run<'_, F> {
    async fn take(&mut self, rows: Vec<F::Row>) -> Result<(), ApiError> {
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
        if (self.results.len() + rows.len()) as u64 > MAX_ROWS_PER_IMPORT {
            return Err(ApiError::invalid(
                "rows",
                "TOO_MANY_ROWS",
                format!(
                    "at most {MAX_ROWS_PER_IMPORT} rows per import; split the file (rows so far were committed)"
                ),
            ));
        }
        for row in rows {
            let index = self.results.len();
            let (result, valid) = take_row(&mut self.family, &mut self.ledger, row);
            if let Some(valid) = valid {
                self.pending.push((index, valid));
            }
            self.results.push(result);
            if self.pending.len() >= BATCH_ROWS {
                self.flush().await;
            }
        }
        Ok(())
    }

    /// Decides and (unless validating only) commits the waiting rows as one write.
    async fn flush(&mut self) {
        let batch = std::mem::take(&mut self.pending);
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.commit(&batch).await {
            tracing::warn!(error = %e, rows = batch.len(), "history import batch failed");
            for (index, _) in &batch {
                not_saved_row::<F>(&mut self.results[*index], &e);
            }
        }
    }

    async fn commit(&mut self, batch: &[(usize, F::Valid)]) -> Result<(), ApiError> {
        let mut tx = match WriteTx::begin::<pb::ImportRowResult>(
            &self.api.db,
            self.ctx,
            "",
            &F::Message::default(),
        )
        .await?
        {
            Begun::Fresh(tx) => tx,
            Begun::Replay(_) => {
                return Err(ApiError::internal("a batch without request id replayed"));
            }
        };
        let decided = apply_batch(&self.family, &mut tx, batch).await?;
        if self.validate_only || !tx.has_events() {
            // Nothing to keep: dropping the write rolls it back.
            drop(tx);
        } else {
            let sequence = tx.head_sequence();
            tx.commit(&pb::ImportRowResult::default()).await?;
            self.last_sequence = Some(sequence);
        }
        for (index, verdict) in decided {
            settle(&mut self.results[index], verdict);
        }
        Ok(())
    }

    fn summary(self, rejected_rows_only: bool) -> Summary {
        let mut s = Summary {
            received_count: self.results.len() as i64,
            created_count: 0,
            updated_count: 0,
            unchanged_count: 0,
            rejected_count: 0,
            row_results: Vec::new(),
            validate_only: self.validate_only,
            last_change_cursor: self.last_sequence.map(encode_cursor).unwrap_or_default(),
        };
        for r in &self.results {
            match pb::ImportRowOutcome::try_from(r.outcome) {
                Ok(pb::ImportRowOutcome::Created) => s.created_count += 1,
                Ok(pb::ImportRowOutcome::Updated) => s.updated_count += 1,
                Ok(pb::ImportRowOutcome::Unchanged) => s.unchanged_count += 1,
                _ => s.rejected_count += 1,
            }
        }
        s.row_results = if rejected_rows_only {
            self.results
                .into_iter()
                .filter(|r| r.outcome == pb::ImportRowOutcome::Rejected as i32)
                .collect()
        } else {
            self.results
        };
        s
    }
}

// What the streaming history imports and an import operation (`api::imports`) share: a row is
// numbered and parsed, a batch applied and each row's verdict settled by these functions only,
// so both give a row the same verdict.

/// What a valid row did: its effect and the resource's name, or the problems that refused it.
pub(super) type Verdict = Result<(Effect, String), Vec<Problem>>;

/// Numbers (in the run's `ledger`) and parses one row: its result (REJECTED with every problem,
/// or still UNSPECIFIED) and, when valid, the row for its batch.
pub(super) fn take_row<F: Family>(
    family: &mut F,
    ledger: &mut Ledger,
    row: F::Row,
) -> (pb::ImportRowResult, Option<F::Valid>) {
    let mut result = pb::ImportRowResult {
        row_number: F::row_number(&row),
        ..Default::default()
    };
    let numbered = ledger.take_row_number(result.row_number);
    let parsed = family.parse(row, &mut result);
    match (numbered, parsed) {
        (Ok(()), Ok(valid)) => (result, Some(valid)),
        (numbered, parsed) => {
            let mut problems: Vec<Problem> = numbered.err().into_iter().collect();
            problems.extend(parsed.err().unwrap_or_default());
            reject(&mut result, problems);
            (result, None)
        }
    }
}

/// Decides and writes the valid rows of one batch in `tx`, one after another (each sees the
/// writes of the rows before it). The caller commits `tx`, or drops it to write nothing.
pub(super) async fn apply_batch<F: Family, K: Copy>(
    family: &F,
    tx: &mut WriteTx,
    batch: &[(K, F::Valid)],
) -> Result<Vec<(K, Verdict)>, ApiError> {
    let mut decided = Vec::with_capacity(batch.len());
    for (key, row) in batch {
        decided.push((*key, family.apply(tx, row).await?));
    }
    Ok(decided)
}

/// Writes a row's verdict into its result.
pub(super) fn settle(result: &mut pb::ImportRowResult, verdict: Verdict) {
    match verdict {
        Ok((effect, name)) => {
            result.outcome = outcome(effect) as i32;
            result.name = name;
        }
        Err(problems) => reject(result, problems),
    }
}

/// Marks a row of a batch that could not be committed as not saved, with why.
pub(super) fn not_saved_row<F: Family>(result: &mut pb::ImportRowResult, e: &ApiError) {
    result.name.clear();
    result.outcome = pb::ImportRowOutcome::Rejected as i32;
    let mut problem = not_saved(why_not_saved(e));
    problem.field = F::row_field().to_string();
    result.problems = vec![problem];
}

fn reject(result: &mut pb::ImportRowResult, problems: Vec<Problem>) {
    result.name.clear();
    result.outcome = pb::ImportRowOutcome::Rejected as i32;
    result.problems = problems.into_iter().map(problem_to_proto).collect();
}

/// The accepted count of a summary (created plus updated).
pub(super) fn accepted(s: &Summary) -> i64 {
    s.created_count + s.updated_count
}

/// Runs one import of `family`'s rows from `stream`.
pub(super) async fn run<F: Family>(
    api: &RegistryApi,
    ctx: &CallContext,
    mut stream: Streaming<F::Message>,
    family: F,
) -> Result<F::Response, ApiError> {
    let Some(first) = stream.message().await.map_err(ApiError::Inbound)? else {
        // An empty stream imports nothing.
        return Ok(F::Response::default());
    };
    let options = F::options(&first);
    let request_id = RequestId::parse(&options.request_id)?;
    let method = idempotency::method_of(ctx);
    let scope = idempotency::CallerScope::of(&ctx.caller);
    // The run's identity for idempotency: its options (rows are not read on a retry).
    let fingerprint = idempotency::fingerprint(&F::fingerprint(&options));
    if let Some(id) = &request_id
        && !options.validate_only
        && let Some(bytes) = idempotency::replay(&api.db, &scope, id, &method, &fingerprint).await?
    {
        return F::Response::decode(bytes.as_slice()).map_err(ApiError::internal);
    }
    let mut run = Run {
        api,
        ctx,
        family,
        validate_only: options.validate_only,
        ledger: Ledger::default(),
        results: Vec::new(),
        pending: Vec::new(),
        last_sequence: None,
    };
    run.take(F::rows(first)).await?;
    loop {
        let message = tokio::select! {
            biased;
            () = ctx.shutdown.started() => {
                return Err(ApiError::ShuttingDown {
                    message: format!(
                        "server shutting down after {} rows: the batches already committed are \
                         stored; import the file again (stored rows come back UNCHANGED)",
                        run.results.len()
                    ),
                    metadata: vec![("rows_received", run.results.len().to_string())],
                });
            }
            message = stream.message() => message.map_err(ApiError::Inbound)?,
        };
        let Some(message) = message else { break };
        run.take(F::rows(message)).await?;
    }
    run.flush().await;
    let summary = run.summary(options.rejected_rows_only);
    tracing::info!(
        received = summary.received_count,
        accepted = accepted(&summary),
        unchanged = summary.unchanged_count,
        rejected = summary.rejected_count,
        "history import finished"
    );
    let response = F::response(summary);
    if let Some(id) = &request_id
        && !options.validate_only
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
    Ok(response)
}

/// A parse error of a row as its problems: each field violation, or the error's text on `field`.
pub(super) fn problems_of(e: ApiError, field: &str) -> Vec<Problem> {
    match e {
        ApiError::InvalidArgument(violations) => violations
            .into_iter()
            .map(|v| Problem::new(v.field, v.description))
            .collect(),
        other => vec![Problem::new(field, other.to_string())],
    }
}
