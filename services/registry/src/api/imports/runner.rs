//! Runs `StartImport` operations: the staged rows of an import, judged and written in batches
//! by the streaming imports' own functions, each batch committed together with its rows'
//! verdicts and the progress pointer.
//!
//! Why a takeover continues exactly where the last run stopped: a batch is one `WriteTx` holding
//! its writes (and their audit events), its verdicts (`import_job_result`) and the pointer's move
//! (`import_job.rows_processed`, guarded on the value this run read), under an idempotency key
//! derived from the operation and the batch's first position. A run dropped mid-batch (restart,
//! lost lease) rolls the whole batch back; a committed batch is never processed again, because
//! the next run starts at the pointer. What a run remembers of earlier rows (row numbers taken,
//! USCCs, certificate numbers, enterprise-years) is rebuilt by parsing the rows before the
//! pointer again — pure, no I/O — so a row's verdict does not depend on where a run began.
//!
//! Cancellation is checked between batches only. A batch whose write fails for a reason other
//! than an unavailable database rejects its rows as not saved, as in the streaming imports; an
//! unavailable database makes the operation wait and retry from the pointer.

use std::future::Future;

use prost::Message;
use qilu_common::operations::{
    self, Job as OperationJob, Progress, RunError, Runner, operation_request_id,
};
use qilu_common::write::{Begun, WriteTx};
use qilu_common::{ApiError, CallContext};
use qilu_proto::registry as pb;

use super::super::RegistryApi;
use super::super::bulk::{self, Family, Verdict};
use super::super::certification::import::Certificates;
use super::super::figures_import::Figures;
use super::super::import::{self as enterprise_import, Pending};
use crate::convert::import::{
    import_not_found, import_to_proto, not_saved, progress_of, why_not_saved,
};
use crate::domain::import::{BATCH_ROWS, ImportId, Ledger};
use crate::store::import_job::{self as store, Batch, Job};

const RUNNING: i32 = pb::ImportState::Running as i32;
const SUCCEEDED: i32 = pb::ImportState::Succeeded as i32;
const FAILED: i32 = pb::ImportState::Failed as i32;
const CANCELLED: i32 = pb::ImportState::Cancelled as i32;

/// Staged rows read per query while rebuilding a run's memory of earlier rows.
const REPLAY_CHUNK: i64 = 1000;

/// One kind of staged row, as its streaming import judges and writes it.
trait Stage: Send {
    /// The row message.
    type Row: Message + Default;
    /// A row that passed every check needing no database.
    type Valid: Send + Sync;
    /// Rows per batch (the streaming import's batch size).
    const BATCH: usize;

    /// Numbers and parses a row (at `index` of its batch), remembering what it takes.
    fn parse(&mut self, index: usize, row: Self::Row)
    -> (pb::ImportRowResult, Option<Self::Valid>);
    /// Refuses valid rows on checks that read the database but write nothing (rejecting them in
    /// `results`); returns the rest.
    fn screen(
        &self,
        results: &mut [pb::ImportRowResult],
        valid: Vec<(usize, Self::Valid)>,
    ) -> impl Future<Output = Vec<(usize, Self::Valid)>> + Send;
    /// Each valid row's verdict, writing nothing (`validate_only`).
    fn judge(
        &self,
        ctx: &CallContext,
        valid: Vec<(usize, Self::Valid)>,
    ) -> impl Future<Output = Result<Vec<(usize, Verdict)>, ApiError>> + Send;
    /// Writes the valid rows in `tx`; each one's verdict.
    fn write(
        &self,
        tx: &mut WriteTx,
        valid: Vec<(usize, Self::Valid)>,
    ) -> impl Future<Output = Result<Vec<(usize, Verdict)>, ApiError>> + Send;
    /// Marks a row of a batch that failed to write as not saved.
    fn not_saved(result: &mut pb::ImportRowResult, e: &ApiError);
}

/// Enterprise rows: `api::import`'s parse, zone check and batch write.
struct Enterprises {
    api: RegistryApi,
    today: chrono::NaiveDate,
    ledger: Ledger,
}

impl Stage for Enterprises {
    type Row = pb::ImportEnterpriseRow;
    type Valid = Pending;
    const BATCH: usize = BATCH_ROWS;

    fn parse(&mut self, index: usize, row: Self::Row) -> (pb::ImportRowResult, Option<Pending>) {
        let (result, valid) =
            enterprise_import::parse_row(&self.api, self.today, &mut self.ledger, row);
        let valid = valid.map(|(uscc, fields)| Pending {
            index,
            uscc,
            fields,
        });
        (result, valid)
    }

    async fn screen(
        &self,
        results: &mut [pb::ImportRowResult],
        valid: Vec<(usize, Pending)>,
    ) -> Vec<(usize, Pending)> {
        let pending: Vec<Pending> = valid.into_iter().map(|(_, p)| p).collect();
        let reject = |results: &mut [pb::ImportRowResult], index: usize, problem| {
            if let Some(result) = results.get_mut(index) {
                result.outcome = pb::ImportRowOutcome::Rejected as i32;
                result.problems = vec![problem];
            }
        };
        let unknown = match enterprise_import::unknown_zones(&self.api.db, &pending).await {
            Ok(unknown) => unknown,
            Err(e) => {
                tracing::warn!(error = %e, "import zone check failed");
                for p in &pending {
                    reject(results, p.index, not_saved("the zone check failed"));
                }
                return Vec::new();
            }
        };
        let mut kept = Vec::with_capacity(pending.len());
        for p in pending {
            match &p.fields.zone {
                Some(zone) if unknown.contains(zone) => {
                    reject(results, p.index, enterprise_import::unknown_zone(zone));
                }
                _ => kept.push((p.index, p)),
            }
        }
        kept
    }

    async fn judge(
        &self,
        _ctx: &CallContext,
        valid: Vec<(usize, Pending)>,
    ) -> Result<Vec<(usize, Verdict)>, ApiError> {
        let pending: Vec<Pending> = valid.into_iter().map(|(_, p)| p).collect();
        let effects = enterprise_import::judge_batch(&self.api.db, &pending).await?;
        Ok(pending
            .iter()
            .zip(effects)
            .map(|(p, e)| (p.index, Ok((e, String::new()))))
            .collect())
    }

    async fn write(
        &self,
        tx: &mut WriteTx,
        valid: Vec<(usize, Pending)>,
    ) -> Result<Vec<(usize, Verdict)>, ApiError> {
        let pending: Vec<Pending> = valid.into_iter().map(|(_, p)| p).collect();
        let effects = enterprise_import::write_batch(&self.api, tx, &pending).await?;
        Ok(pending
            .iter()
            .zip(effects)
            .map(|(p, e)| (p.index, Ok((e, String::new()))))
            .collect())
    }

    fn not_saved(result: &mut pb::ImportRowResult, e: &ApiError) {
        result.outcome = pb::ImportRowOutcome::Rejected as i32;
        result.problems = vec![not_saved(why_not_saved(e))];
    }
}

/// History rows (certificates, figures): `api::bulk`'s numbering, parse and batch apply.
struct History<F> {
    api: RegistryApi,
    family: F,
    ledger: Ledger,
}

impl<F> Stage for History<F>
where
    F: Family + Sync,
    F::Row: Message + Default,
{
    type Row = F::Row;
    type Valid = F::Valid;
    const BATCH: usize = bulk::BATCH_ROWS;

    fn parse(&mut self, _index: usize, row: F::Row) -> (pb::ImportRowResult, Option<F::Valid>) {
        bulk::take_row(&mut self.family, &mut self.ledger, row)
    }

    async fn screen(
        &self,
        _results: &mut [pb::ImportRowResult],
        valid: Vec<(usize, F::Valid)>,
    ) -> Vec<(usize, F::Valid)> {
        valid
    }

    async fn judge(
        &self,
        ctx: &CallContext,
        valid: Vec<(usize, F::Valid)>,
    ) -> Result<Vec<(usize, Verdict)>, ApiError> {
        // As the streaming import validates: the same writes, rolled back (the write dropped).
        let mut tx = begin_plain(&self.api, ctx).await?;
        let verdicts = bulk::apply_batch(&self.family, &mut tx, &valid).await?;
        drop(tx);
        Ok(verdicts)
    }

    async fn write(
        &self,
        tx: &mut WriteTx,
        valid: Vec<(usize, F::Valid)>,
    ) -> Result<Vec<(usize, Verdict)>, ApiError> {
        bulk::apply_batch(&self.family, tx, &valid).await
    }

    fn not_saved(result: &mut pb::ImportRowResult, e: &ApiError) {
        bulk::not_saved_row::<F>(result, e);
    }
}

/// A write with no idempotency key (one that is always dropped).
async fn begin_plain(api: &RegistryApi, ctx: &CallContext) -> Result<Box<WriteTx>, ApiError> {
    match WriteTx::begin::<pb::ImportProgress>(&api.db, ctx, "", &pb::ImportProgress::default())
        .await?
    {
        Begun::Fresh(tx) => Ok(tx),
        Begun::Replay(_) => Err(ApiError::internal("a write without request id replayed")),
    }
}

/// Runs `StartImport` operations.
pub(crate) struct ImportRunner {
    api: RegistryApi,
}

impl ImportRunner {
    pub(crate) fn new(api: RegistryApi) -> Self {
        ImportRunner { api }
    }
}

#[operations::async_trait]
impl Runner for ImportRunner {
    async fn run(
        &self,
        job: OperationJob,
        progress: Progress,
    ) -> Result<prost_types::Any, RunError> {
        let api = &self.api;
        let req: pb::StartImportRequest = job.request()?;
        let id = ImportId::parse_name(&req.name, "name").map_err(ApiError::from)?;
        let stored = store::get(&api.db, id.as_str())
            .await?
            .ok_or_else(|| import_not_found(&id.name()))?;
        match stored.state {
            // A run after the end was stored (the operation's own end was not): the same end.
            SUCCEEDED => return Ok(operations::pack(&import_to_proto(&stored))),
            CANCELLED => return Err(RunError::Cancelled),
            FAILED => {
                return Err(RunError::Failed(ApiError::internal(
                    "the import failed in an earlier run",
                )));
            }
            _ => {}
        }
        let mut run = Run {
            api,
            ctx: &job.ctx,
            operation: &job.name,
            progress: &progress,
            job: stored,
            attempt: job.attempt,
        };
        let ended = match pb::ImportKind::try_from(run.job.kind) {
            Ok(pb::ImportKind::Enterprises) => {
                let stage = Enterprises {
                    api: api.clone(),
                    today: api.today(),
                    ledger: Ledger::default(),
                };
                run.process(stage).await
            }
            Ok(pb::ImportKind::HighTechCertificates) => {
                let family = Certificates::for_run(api, &job.ctx);
                run.process(History {
                    api: api.clone(),
                    family,
                    ledger: Ledger::default(),
                })
                .await
            }
            Ok(pb::ImportKind::AnnualFigures) => {
                let family = Figures::for_run(api);
                run.process(History {
                    api: api.clone(),
                    family,
                    ledger: Ledger::default(),
                })
                .await
            }
            _ => Err(RunError::Failed(ApiError::internal(format!(
                "stored import of kind {}",
                run.job.kind
            )))),
        };
        let now = qilu_common::time::now_micros();
        let ended = match ended {
            // The database is down: the operation waits and runs again from the pointer.
            Err(e @ RunError::Failed(ApiError::Unavailable { .. })) => return Err(e),
            other => other,
        };
        let end = match &ended {
            Ok(()) => SUCCEEDED,
            Err(RunError::Cancelled) => CANCELLED,
            Err(RunError::Failed(_)) => FAILED,
        };
        store::finish(&api.db, id.as_str(), RUNNING, end, now).await?;
        let finished = store::get(&api.db, id.as_str())
            .await?
            .ok_or_else(|| import_not_found(&id.name()))?;
        progress
            .report(&progress_of(&finished, job.attempt), false)
            .await;
        tracing::info!(
            import = %id,
            processed = finished.rows_processed,
            created = finished.created_count,
            updated = finished.updated_count,
            unchanged = finished.unchanged_count,
            rejected = finished.rejected_count,
            "import operation ended"
        );
        ended.map(|()| operations::pack(&import_to_proto(&finished)))
    }
}

/// One run of an import's operation.
struct Run<'a> {
    api: &'a RegistryApi,
    ctx: &'a CallContext,
    operation: &'a str,
    progress: &'a Progress,
    /// The import as of the last committed batch.
    job: Job,
    attempt: i32,
}

impl Run<'_> {
    async fn process<S: Stage>(&mut self, mut stage: S) -> Result<(), RunError> {
        let id = self.job.id.clone();
        // What earlier rows took, rebuilt as the run that processed them built it.
        let mut position = 0;
        while position < self.job.rows_processed {
            let to = (position + REPLAY_CHUNK).min(self.job.rows_processed);
            for (i, bytes) in store::rows(&self.api.db, &id, position, to)
                .await?
                .into_iter()
                .enumerate()
            {
                stage.parse(i, decode::<S::Row>(&bytes)?);
            }
            position = to;
        }
        self.progress
            .report(&progress_of(&self.job, self.attempt), true)
            .await;
        while self.job.rows_processed < self.job.rows_total {
            // Between batches only: a batch is all or nothing.
            self.progress.check()?;
            let from = self.job.rows_processed;
            let to = (from + S::BATCH as i64).min(self.job.rows_total);
            let staged = store::rows(&self.api.db, &id, from, to).await?;
            if staged.len() as i64 != to - from {
                return Err(ApiError::internal(format!(
                    "import {id}: rows {from}..{to} are not all stored"
                ))
                .into());
            }
            let mut results = Vec::with_capacity(staged.len());
            let mut valid = Vec::new();
            for (i, bytes) in staged.iter().enumerate() {
                let (result, v) = stage.parse(i, decode::<S::Row>(bytes)?);
                results.push(result);
                if let Some(v) = v {
                    valid.push((i, v));
                }
            }
            let valid = stage.screen(&mut results, valid).await;
            self.batch::<S>(&stage, from, results, valid).await?;
            self.progress
                .report(&progress_of(&self.job, self.attempt), true)
                .await;
        }
        Ok(())
    }

    /// Judges and (unless validating only) writes one batch, then commits its verdicts and the
    /// pointer with its writes.
    async fn batch<S: Stage>(
        &mut self,
        stage: &S,
        from: i64,
        mut results: Vec<pb::ImportRowResult>,
        valid: Vec<(usize, S::Valid)>,
    ) -> Result<(), RunError> {
        let indices: Vec<usize> = valid.iter().map(|(i, _)| *i).collect();
        // Validating only, the rows are judged before the batch's write begins (judging history
        // rows is itself a write, rolled back; two at once would wait on each other).
        let (judged, to_write) = if self.job.validate_only {
            (Some(stage.judge(self.ctx, valid).await), Vec::new())
        } else {
            (None, valid)
        };
        let Some(mut tx) = self.begin(from).await? else {
            return self.reload().await;
        };
        let decided = match judged {
            Some(judged) => judged,
            None => stage.write(&mut tx, to_write).await,
        };
        match decided {
            Ok(decided) => {
                for (i, verdict) in decided {
                    if let Some(result) = results.get_mut(i) {
                        bulk::settle(result, verdict);
                    }
                }
            }
            Err(e @ ApiError::Unavailable { .. }) => return Err(e.into()),
            Err(e) => {
                // As the streaming imports do: the batch's rows are not saved, the run goes on.
                // Its statements roll back with the dropped write; the verdicts go in a new one.
                tracing::warn!(import = %self.job.id, error = %e, rows = indices.len(), "import batch failed");
                drop(tx);
                for i in &indices {
                    if let Some(result) = results.get_mut(*i) {
                        S::not_saved(result, &e);
                    }
                }
                let Some(fresh) = self.begin(from).await? else {
                    return self.reload().await;
                };
                tx = fresh;
            }
        }
        let mut after = self.job.clone();
        for r in &results {
            match pb::ImportRowOutcome::try_from(r.outcome) {
                Ok(pb::ImportRowOutcome::Created) => after.created_count += 1,
                Ok(pb::ImportRowOutcome::Updated) => after.updated_count += 1,
                Ok(pb::ImportRowOutcome::Unchanged) => after.unchanged_count += 1,
                _ => after.rejected_count += 1,
            }
        }
        after.rows_processed = from + results.len() as i64;
        if tx.has_events() {
            // Its own last event, once it commits.
            after.last_sequence = Some(tx.head_sequence());
        }
        after.update_time_us = qilu_common::time::now_micros();
        let batch = Batch {
            from,
            results: results
                .iter()
                .enumerate()
                .map(|(i, r)| (from + i as i64, r.outcome, r.encode_to_vec()))
                .collect(),
            counts: [
                after.created_count,
                after.updated_count,
                after.unchanged_count,
                after.rejected_count,
            ],
            last_sequence: after.last_sequence,
        };
        if !store::record_batch(tx.conn(), &self.job.id, batch, after.update_time_us).await? {
            drop(tx);
            // Another run of this operation (a replica that took it over) moved the pointer:
            // this run stops, and the operation runs again from the stored pointer.
            return Err(RunError::Failed(ApiError::Unavailable {
                dependency: "import".into(),
                reason: "DATABASE_BUSY",
                source: "another run of this import processed the batch first".into(),
            }));
        }
        let response = progress_of(&after, self.attempt);
        if tx.has_events() {
            tx.commit(&response).await?;
        } else {
            // Verdicts only (every row unchanged or rejected, or validating only): kept by the
            // batch's idempotency record, no audit event.
            tx.commit_unchanged(&response).await?;
        }
        self.job = after;
        Ok(())
    }

    /// The write of the batch starting at `from`, under its idempotency key (the operation and
    /// the position): `None` when an earlier run already committed it.
    async fn begin(&self, from: i64) -> Result<Option<Box<WriteTx>>, ApiError> {
        let key = operation_request_id(&format!("{}#{from}", self.operation));
        let fingerprint = pb::GetImportRequest {
            name: format!("imports/{}#{from}", self.job.id),
        };
        match WriteTx::begin::<pb::ImportProgress>(&self.api.db, self.ctx, &key, &fingerprint)
            .await?
        {
            Begun::Fresh(tx) => Ok(Some(tx)),
            Begun::Replay(_) => Ok(None),
        }
    }

    /// Reloads the import (after another run moved it).
    async fn reload(&mut self) -> Result<(), RunError> {
        self.job = store::get(&self.api.db, &self.job.id)
            .await?
            .ok_or_else(|| import_not_found(&format!("imports/{}", self.job.id)))?;
        Ok(())
    }
}

fn decode<R: Message + Default>(bytes: &[u8]) -> Result<R, RunError> {
    R::decode(bytes)
        .map_err(|e| RunError::Failed(ApiError::internal(format!("staged row unreadable: {e}"))))
}
