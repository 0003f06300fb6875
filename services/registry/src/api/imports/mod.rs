//! Imports as resources (`CreateImport`, `GetImport`, `ListImports`, `AppendImportRows`,
//! `StartImport`, `ListImportRowResults`): the three streaming imports for callers that cannot
//! client-stream or must follow an import after a disconnect.
//!
//! An import is created STAGING, filled with chunks of rows stored as sent (nothing is judged
//! yet), then started: a long-running operation (`runner`) judges and writes its rows in
//! batches through the streaming imports' own functions (`api::import` for enterprises,
//! `api::bulk` for the history imports), never through a second implementation. Chunks are
//! placed by offset, so an append is resumable: the same chunk sent again changes nothing, a gap
//! or a differing repeat is refused, naming the offset to send next.
//!
//! Imports are working records, like operations and idempotency records: they are not audited
//! and not in the change feed. What an import writes (enterprises, certificates, figures) is,
//! exactly as the streaming imports write it.

mod runner;

pub(crate) use runner::ImportRunner;

use prost::Message;
use qilu_common::filter::{Filter, FilterField, Kind as FilterKind, Term, Value};
use qilu_common::idempotency::{self, RequestId};
use qilu_common::operations::Start;
use qilu_common::pagination::PageRequest;
use qilu_common::{ApiError, CallContext};
use qilu_proto::longrunning as lro;
use qilu_proto::registry as pb;
use sea_orm::TransactionTrait;

use super::RegistryApi;
use crate::convert::import::{import_not_found, import_to_proto, progress_of};
use crate::domain::import::{ImportId, MAX_ROWS_PER_IMPORT, MAX_ROWS_PER_MESSAGE};
use crate::store::import_job::{self as store, Appended, Job};

/// The operation kind of `StartImport` (the method that starts it).
pub(crate) const START_IMPORT: &str = "qilu.registry.v1.EnterpriseRegistryService/StartImport";

const STAGING: i32 = pb::ImportState::Staging as i32;
const RUNNING: i32 = pb::ImportState::Running as i32;

/// The import named `id`, or NOT_FOUND.
async fn load(api: &RegistryApi, id: &ImportId) -> Result<Job, ApiError> {
    store::get(&api.db, id.as_str())
        .await?
        .ok_or_else(|| import_not_found(&id.name()))
}

fn not_staging(job: &Job) -> ApiError {
    let state = pb::ImportState::try_from(job.state)
        .map(|s| s.as_str_name())
        .unwrap_or("unknown");
    let operation = if job.operation.is_empty() {
        String::new()
    } else {
        format!(" by {}", job.operation)
    };
    ApiError::precondition(
        "IMPORT_NOT_STAGING",
        format!("imports/{}", job.id),
        format!(
            "the import is {state}{operation}: rows are appended and an import started only while it is STAGING"
        ),
    )
}

/// A `CreateImport`'s earlier answer to the same caller under the same request id.
struct Replay<'a> {
    api: &'a RegistryApi,
    scope: &'a idempotency::CallerScope,
    request_id: Option<&'a RequestId>,
    method: &'a str,
    fingerprint: &'a str,
}

impl Replay<'_> {
    async fn previous(&self) -> Result<Option<pb::Import>, ApiError> {
        let Some(id) = self.request_id else {
            return Ok(None);
        };
        match idempotency::replay(&self.api.db, self.scope, id, self.method, self.fingerprint)
            .await?
        {
            Some(bytes) => pb::Import::decode(bytes.as_slice())
                .map(Some)
                .map_err(ApiError::internal),
            None => Ok(None),
        }
    }
}

pub(in crate::api) async fn create_import(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::CreateImportRequest,
) -> Result<pb::Import, ApiError> {
    let input = req
        .import
        .as_ref()
        .ok_or_else(|| ApiError::invalid("import", "REQUIRED", "import is required"))?;
    match pb::ImportKind::try_from(input.kind) {
        Ok(pb::ImportKind::Unspecified) => {
            return Err(ApiError::invalid(
                "import.kind",
                "REQUIRED",
                "kind is required: IMPORT_KIND_ENTERPRISES, IMPORT_KIND_HIGH_TECH_CERTIFICATES or IMPORT_KIND_ANNUAL_FIGURES",
            ));
        }
        Ok(_) => {}
        Err(_) => {
            return Err(ApiError::invalid(
                "import.kind",
                "UNKNOWN_ENUM_VALUE",
                format!("{} is not an ImportKind", input.kind),
            ));
        }
    }
    let request_id = RequestId::parse(&req.request_id)?;
    let method = idempotency::method_of(ctx);
    let scope = idempotency::CallerScope::of(&ctx.caller);
    let fingerprint = idempotency::fingerprint(&req);
    let replay = Replay {
        api,
        scope: &scope,
        request_id: request_id.as_ref(),
        method: &method,
        fingerprint: &fingerprint,
    };
    if let Some(previous) = replay.previous().await? {
        return Ok(previous);
    }
    let now = qilu_common::time::now_micros();
    let job = Job {
        id: uuid::Uuid::now_v7().simple().to_string(),
        kind: input.kind,
        validate_only: input.validate_only,
        state: STAGING,
        rows_total: 0,
        rows_processed: 0,
        created_count: 0,
        updated_count: 0,
        unchanged_count: 0,
        rejected_count: 0,
        operation: String::new(),
        creator: ctx.caller.subject.clone(),
        last_sequence: None,
        create_time_us: now,
        update_time_us: now,
    };
    let created = import_to_proto(&job);
    // The import and its idempotency record in one transaction: a retry racing this call
    // either finds the record or fails to store its own, and then answers with this one.
    let txn = api.db.begin().await?;
    store::insert(&txn, job).await?;
    if let Some(id) = &request_id
        && let Err(e) = idempotency::store(
            &txn,
            &scope,
            id,
            &method,
            fingerprint.clone(),
            created.encode_to_vec(),
            now,
        )
        .await
    {
        drop(txn);
        return match replay.previous().await? {
            Some(previous) => Ok(previous),
            None => Err(e),
        };
    }
    txn.commit().await?;
    Ok(created)
}

pub(in crate::api) async fn get_import(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::GetImportRequest,
) -> Result<pb::Import, ApiError> {
    let id = ImportId::parse_name(&req.name, "name")?;
    Ok(import_to_proto(&load(api, &id).await?))
}

fn import_state(name: &str) -> Option<i32> {
    pb::ImportState::from_str_name(name).map(|s| s as i32)
}

fn import_kind(name: &str) -> Option<i32> {
    pb::ImportKind::from_str_name(name).map(|k| k as i32)
}

fn row_outcome(name: &str) -> Option<i32> {
    pb::ImportRowOutcome::from_str_name(name).map(|o| o as i32)
}

const IMPORT_FILTER: &[FilterField] = &[
    FilterField::eq(
        "state",
        FilterKind::Enum {
            type_name: "ImportState",
            from_name: import_state,
        },
    ),
    FilterField::eq(
        "kind",
        FilterKind::Enum {
            type_name: "ImportKind",
            from_name: import_kind,
        },
    ),
    FilterField::eq("creator", FilterKind::Text),
];

pub(in crate::api) async fn list_imports(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListImportsRequest,
) -> Result<pb::ListImportsResponse, ApiError> {
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, "")?;
    let mut filter = store::ListFilter::default();
    for Term { field, value, .. } in Filter::typed(&req.filter, IMPORT_FILTER)? {
        match (field, value) {
            ("state", Value::Enum(n)) => filter.state = Some(n),
            ("kind", Value::Enum(n)) => filter.kind = Some(n),
            ("creator", Value::Text(t)) => filter.creator = Some(t),
            _ => {}
        }
    }
    let before: Option<String> = page.after()?;
    let mut jobs = store::list(&api.db, &filter, before.as_deref(), page.size + 1).await?;
    let more = jobs.len() as u64 > page.size;
    jobs.truncate(page.size as usize);
    let next_page_token = match jobs.last() {
        Some(last) if more => page.next_token(&last.id)?,
        _ => String::new(),
    };
    Ok(pb::ListImportsResponse {
        imports: jobs.iter().map(import_to_proto).collect(),
        next_page_token,
    })
}

/// The chunk's rows, encoded as stored: those of the import's kind; rows of another kind are
/// refused on their field.
fn chunk_rows(kind: i32, req: &pb::AppendImportRowsRequest) -> Result<Vec<Vec<u8>>, ApiError> {
    let fields = [
        (
            pb::ImportKind::Enterprises as i32,
            "enterprise_rows",
            req.enterprise_rows.len(),
        ),
        (
            pb::ImportKind::HighTechCertificates as i32,
            "high_tech_certificate_rows",
            req.high_tech_certificate_rows.len(),
        ),
        (
            pb::ImportKind::AnnualFigures as i32,
            "annual_figures_rows",
            req.annual_figures_rows.len(),
        ),
    ];
    let Some((_, field, count)) = fields.iter().find(|(k, _, _)| *k == kind).copied() else {
        return Err(ApiError::internal(format!("stored import of kind {kind}")));
    };
    let mut violations = Vec::new();
    for (k, other, n) in fields {
        if k != kind && n > 0 {
            violations.push(qilu_common::FieldViolation::new(
                other,
                "IMPORT_KIND_MISMATCH",
                format!("this import takes {field}, not {other}"),
            ));
        }
    }
    if count == 0 && violations.is_empty() {
        violations.push(qilu_common::FieldViolation::new(
            field,
            "REQUIRED",
            "a chunk carries at least one row",
        ));
    }
    if count > MAX_ROWS_PER_MESSAGE {
        violations.push(qilu_common::FieldViolation::new(
            field,
            "TOO_MANY_ROWS",
            format!("at most {MAX_ROWS_PER_MESSAGE} rows per chunk; this one has {count}"),
        ));
    }
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations));
    }
    Ok(match field {
        "enterprise_rows" => req
            .enterprise_rows
            .iter()
            .map(|r| r.encode_to_vec())
            .collect(),
        "high_tech_certificate_rows" => req
            .high_tech_certificate_rows
            .iter()
            .map(|r| r.encode_to_vec())
            .collect(),
        _ => req
            .annual_figures_rows
            .iter()
            .map(|r| r.encode_to_vec())
            .collect(),
    })
}

pub(in crate::api) async fn append_import_rows(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::AppendImportRowsRequest,
) -> Result<pb::Import, ApiError> {
    let id = ImportId::parse_name(&req.name, "name")?;
    if req.first_row_offset < 0 {
        return Err(ApiError::invalid(
            "first_row_offset",
            "OUT_OF_RANGE",
            "first_row_offset must not be negative",
        ));
    }
    let job = load(api, &id).await?;
    let rows = chunk_rows(job.kind, &req)?;
    let offset = req.first_row_offset;
    let name = id.name();
    if offset > job.rows_total {
        return Err(ApiError::precondition(
            "IMPORT_ROWS_GAP",
            name,
            format!(
                "the chunk starts at row offset {offset}, but rows 0..{} are stored: send the chunk at offset {} next",
                job.rows_total, job.rows_total
            ),
        ));
    }
    // Rows already stored at these offsets must be sent again exactly as stored.
    let overlap = (job.rows_total - offset).min(rows.len() as i64);
    if overlap > 0 {
        let stored = store::rows(&api.db, id.as_str(), offset, offset + overlap).await?;
        if let Some(i) = (0..overlap as usize).find(|&i| stored.get(i) != rows.get(i)) {
            return Err(ApiError::precondition(
                "IMPORT_ROWS_DIFFER",
                name,
                format!(
                    "row offset {} is stored with a different row: stored rows never change; \
                     {} rows are stored, send the chunk at offset {} next (or create a new import)",
                    offset + i as i64,
                    job.rows_total,
                    job.rows_total
                ),
            ));
        }
    }
    let fresh: Vec<Vec<u8>> = rows.into_iter().skip(overlap as usize).collect();
    if fresh.is_empty() {
        // A repeat of a stored chunk: nothing to do, in any state.
        return Ok(import_to_proto(&job));
    }
    if job.state != STAGING {
        return Err(not_staging(&job));
    }
    let total = job.rows_total + fresh.len() as i64;
    if total as u64 > MAX_ROWS_PER_IMPORT {
        return Err(ApiError::invalid(
            "rows",
            "TOO_MANY_ROWS",
            format!("at most {MAX_ROWS_PER_IMPORT} rows per import; this chunk would make {total}"),
        ));
    }
    let now = qilu_common::time::now_micros();
    match store::append(&api.db, id.as_str(), STAGING, job.rows_total, fresh, now).await? {
        Appended::Stored => Ok(import_to_proto(&load(api, &id).await?)),
        Appended::Lost => {
            let now_job = load(api, &id).await?;
            if now_job.state != STAGING {
                return Err(not_staging(&now_job));
            }
            Err(ApiError::Aborted(format!(
                "another append stored rows first: {} rows are stored now; send the chunk at offset {} (a repeat of stored rows is accepted)",
                now_job.rows_total, now_job.rows_total
            )))
        }
    }
}

pub(in crate::api) async fn start_import(
    api: &RegistryApi,
    ctx: &CallContext,
    req: pb::StartImportRequest,
) -> Result<lro::Operation, ApiError> {
    let id = ImportId::parse_name(&req.name, "name")?;
    if let Some(started) = api
        .operations
        .replay(ctx, START_IMPORT, &req.request_id, &req)
        .await?
    {
        return Ok(started);
    }
    let job = load(api, &id).await?;
    if job.state != STAGING {
        return Err(not_staging(&job));
    }
    let now = qilu_common::time::now_micros();
    // Claimed first, so that two starts never both run it.
    if !store::set_state_from(&api.db, id.as_str(), STAGING, RUNNING, now).await? {
        return Err(not_staging(&load(api, &id).await?));
    }
    let started = api
        .operations
        .start(
            ctx,
            Start {
                kind: START_IMPORT,
                target: id.name(),
                request_id: &req.request_id,
                request: &req,
                metadata: &progress_of(&job, 1),
                response_type: "qilu.registry.v1.Import",
            },
        )
        .await;
    match started {
        Ok(operation) => {
            store::set_operation(&api.db, id.as_str(), &operation.name).await?;
            Ok(operation)
        }
        Err(e) => {
            // Not started: STAGING again, so the caller can retry.
            if let Err(undo) =
                store::set_state_from(&api.db, id.as_str(), RUNNING, STAGING, now).await
            {
                tracing::warn!(import = %id, error = %undo, "import left RUNNING without an operation");
            }
            Err(e)
        }
    }
}

const RESULT_FILTER: &[FilterField] = &[FilterField::eq(
    "outcome",
    FilterKind::Enum {
        type_name: "ImportRowOutcome",
        from_name: row_outcome,
    },
)];

pub(in crate::api) async fn list_import_row_results(
    api: &RegistryApi,
    _ctx: &CallContext,
    req: pb::ListImportRowResultsRequest,
) -> Result<pb::ListImportRowResultsResponse, ApiError> {
    let id = ImportId::parse_name(&req.parent, "parent")?;
    let page = PageRequest::parse(req.page_size, &req.page_token, &req.filter, "")?;
    let outcome = Filter::typed(&req.filter, RESULT_FILTER)?
        .into_iter()
        .find_map(|t| match t.value {
            Value::Enum(n) => Some(n),
            _ => None,
        });
    load(api, &id).await?;
    let after: Option<i64> = page.after()?;
    let mut rows = store::results(&api.db, id.as_str(), outcome, after, page.size + 1).await?;
    let more = rows.len() as u64 > page.size;
    rows.truncate(page.size as usize);
    let next_page_token = match rows.last() {
        Some((position, _)) if more => page.next_token(position)?,
        _ => String::new(),
    };
    let row_results = rows
        .iter()
        .map(|(_, bytes)| pb::ImportRowResult::decode(bytes.as_slice()).map_err(ApiError::internal))
        .collect::<Result<_, _>>()?;
    Ok(pb::ListImportRowResultsResponse {
        row_results,
        next_page_token,
    })
}
