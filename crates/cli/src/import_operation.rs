//! `--operation`: an import run as an import resource and its long-running operation instead of
//! one client stream (`CreateImport`, `AppendImportRows` in chunks of 1000 rows at their offsets,
//! `StartImport`, the operation's progress, then the rejected rows through
//! `ListImportRowResults`). Nothing is held open while the server works, so a disconnect loses
//! nothing: a chunk whose call failed is sent again from the import's `rows_total`, and the
//! import can be followed from anywhere with its name.
//!
//! The rows and the report are those of the streaming commands (`import.rs`,
//! `history_import.rs`); only the transport differs.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prost::Message;
use qilu_proto::longrunning as lro;
use qilu_proto::longrunning::operations_client::OperationsClient;
use qilu_proto::registry as pb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::client::{Conn, fail};

/// Rows per `AppendImportRows` (the contract's limit).
const CHUNK: usize = 1000;
/// How often the operation is polled.
const POLL: Duration = Duration::from_millis(500);
/// Tries of one chunk that the server could not take (UNAVAILABLE, a dropped connection).
const TRIES: usize = 5;

/// The rows of an import, of one kind.
pub enum Rows {
    /// `IMPORT_KIND_ENTERPRISES`.
    Enterprises(Vec<pb::ImportEnterpriseRow>),
    /// `IMPORT_KIND_HIGH_TECH_CERTIFICATES`.
    Certificates(Vec<pb::ImportHighTechCertificateRow>),
    /// `IMPORT_KIND_ANNUAL_FIGURES`.
    Figures(Vec<pb::ImportAnnualFiguresRow>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Enterprises(r) => r.len(),
            Rows::Certificates(r) => r.len(),
            Rows::Figures(r) => r.len(),
        }
    }

    fn kind(&self) -> pb::ImportKind {
        match self {
            Rows::Enterprises(_) => pb::ImportKind::Enterprises,
            Rows::Certificates(_) => pb::ImportKind::HighTechCertificates,
            Rows::Figures(_) => pb::ImportKind::AnnualFigures,
        }
    }

    /// The chunk at `offset`.
    fn chunk(&self, name: &str, offset: usize) -> pb::AppendImportRowsRequest {
        let end = (offset + CHUNK).min(self.len());
        let mut req = pb::AppendImportRowsRequest {
            name: name.to_string(),
            first_row_offset: offset as i64,
            ..Default::default()
        };
        match self {
            Rows::Enterprises(r) => req.enterprise_rows = r[offset..end].to_vec(),
            Rows::Certificates(r) => req.high_tech_certificate_rows = r[offset..end].to_vec(),
            Rows::Figures(r) => req.annual_figures_rows = r[offset..end].to_vec(),
        }
        req
    }
}

/// What the import ended with: its counts and its rejected rows' results.
pub struct Finished {
    /// The import, in its final state.
    pub import: pb::Import,
    /// Every REJECTED row's result, in row order.
    pub rejected: Vec<pb::ImportRowResult>,
}

fn bar(total: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} rows, {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(message);
    bar
}

/// Creates the import, appends `rows`, starts it, shows its progress until it is done, and
/// reads its rejected rows.
pub async fn run(conn: &Conn, rows: Rows, validate_only: bool) -> Result<Finished, String> {
    let mut client = EnterpriseRegistryServiceClient::new(conn.channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    let import = client
        .create_import(conn.req(pb::CreateImportRequest {
            import: Some(pb::Import {
                kind: rows.kind() as i32,
                validate_only,
                ..Default::default()
            }),
            request_id: uuid::Uuid::new_v4().to_string(),
        }))
        .await
        .map_err(|s| fail(conn, s))?
        .into_inner();
    let name = import.name.clone();
    eprintln!("import {name}");
    let total = rows.len();
    let upload = bar(total as u64, "uploading");
    let mut offset = 0;
    let mut failures = 0;
    while offset < total {
        match client
            .append_import_rows(conn.req(rows.chunk(&name, offset)))
            .await
        {
            Ok(stored) => {
                offset = usize::try_from(stored.into_inner().rows_total).unwrap_or(total);
                upload.set_position(offset as u64);
                failures = 0;
            }
            Err(s) if retryable(&s) && failures + 1 < TRIES => {
                failures += 1;
                tokio::time::sleep(POLL * failures as u32).await;
                // Resume where the server says the rows end (the failed chunk may be stored).
                if let Ok(current) = client
                    .get_import(conn.req(pb::GetImportRequest { name: name.clone() }))
                    .await
                {
                    offset = usize::try_from(current.into_inner().rows_total).unwrap_or(offset);
                }
            }
            Err(s) => {
                upload.finish_and_clear();
                return Err(format!(
                    "{} (import {name}, {offset} rows stored)",
                    fail(conn, s)
                ));
            }
        }
    }
    upload.finish_and_clear();
    let operation = client
        .start_import(conn.req(pb::StartImportRequest {
            name: name.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
        }))
        .await
        .map_err(|s| fail(conn, s))?
        .into_inner();
    eprintln!("operation {}", operation.name);
    let done = follow(conn, &operation.name, total as u64).await?;
    let import = match done.result {
        Some(lro::operation::Result::Response(any)) => {
            pb::Import::decode(any.value.as_slice()).map_err(|e| format!("{name}: {e}"))?
        }
        Some(lro::operation::Result::Error(status)) => {
            return Err(format!(
                "{}: the import ended with {:?}: {} (its processed rows keep their verdicts: {name})",
                operation.name,
                Code::from(status.code),
                status.message
            ));
        }
        None => return Err(format!("{}: done without a result", operation.name)),
    };
    let rejected = rejected_rows(conn, &mut client, &name).await?;
    Ok(Finished { import, rejected })
}

fn retryable(s: &tonic::Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown | Code::Aborted)
}

/// Polls the operation, showing its rows processed, until it is done.
async fn follow(conn: &Conn, name: &str, total: u64) -> Result<lro::Operation, String> {
    let mut ops: OperationsClient<Channel> = OperationsClient::new(conn.channel.clone());
    let progress = bar(total, "importing");
    let mut failures = 0;
    loop {
        match ops
            .get_operation(conn.req(lro::GetOperationRequest {
                name: name.to_string(),
            }))
            .await
        {
            Ok(op) => {
                let op = op.into_inner();
                failures = 0;
                if let Some(meta) = op
                    .metadata
                    .as_ref()
                    .and_then(|m| pb::ImportProgress::decode(m.value.as_slice()).ok())
                {
                    progress.set_position(u64::try_from(meta.rows_processed).unwrap_or(0));
                }
                if op.done {
                    progress.finish_and_clear();
                    return Ok(op);
                }
            }
            // The server restarting: the operation goes on there; keep asking.
            Err(s) if retryable(&s) && failures < 60 => failures += 1,
            Err(s) => {
                progress.finish_and_clear();
                return Err(format!("{} (follow {name} later)", fail(conn, s)));
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every rejected row's result, page by page.
async fn rejected_rows(
    conn: &Conn,
    client: &mut EnterpriseRegistryServiceClient<Channel>,
    name: &str,
) -> Result<Vec<pb::ImportRowResult>, String> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_import_row_results(conn.req(pb::ListImportRowResultsRequest {
                parent: name.to_string(),
                page_size: 1000,
                page_token,
                filter: "outcome = IMPORT_ROW_OUTCOME_REJECTED".into(),
            }))
            .await
            .map_err(|s| fail(conn, s))?
            .into_inner();
        all.extend(page.row_results);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}
