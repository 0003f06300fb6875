//! `qilu import certificates FILE.csv` and `qilu import figures FILE.csv`: stream a CSV through
//! the client-streaming `ImportHighTechCertificates` / `ImportAnnualFigures`, with the progress
//! bar, summary and rejected-rows report of `qilu enterprises import` (`import.rs`).
//!
//! Certificates, one per row: `uscc`, `certificate_number`, `issue_date`, `technology_field`
//! (`NEW_MATERIALS`, with or without the `HIGH_TECH_FIELD_` prefix) required;
//! `issuing_authority` optional; `annual_reports` the history as `YEAR:FILED_DATE` pairs joined
//! by `;` (`2023:2024-05-10;2024:2025-04-30`).
//!
//! Figures, one enterprise-year per row: `uscc` and `year` required, then any figure columns
//! (`revenue_fen`, `rd_expense_fen`, …, `core_ip_owned` and `major_incident` as `true`/`false`),
//! each empty cell left as stored; `source` (`AUDITED_STATEMENT`, with or without the
//! `FIGURE_SOURCE_` prefix) applies to every figure of the row, `reference` likewise.
//!
//! Rows are numbered by their line (the header is line 1); a line this side cannot read is
//! rejected here and never sent. Columns `line` and `problems` (what the report adds) are
//! ignored, so a fixed report can be imported as it is; any other unknown column stops the
//! command before anything is sent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use qilu_common::import_csv::{
    CsvRow, CsvRows, Header, ImportRow, MAX_BATCH, Problem, REPORT_COLUMNS,
};
use qilu_proto::registry as pb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use serde_json::json;
use tokio_stream::StreamExt;

use crate::client::{Conn, fail};
use crate::import::default_report;
use crate::output::{self, Format};

/// Rows per stream message.
const BATCH: usize = 500;

/// Which import (the CSV columns of each: `qilu_common::import_csv`).
pub use qilu_common::import_csv::ImportKind as Kind;

/// Options of `qilu import certificates|figures`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The CSV file.
    pub file: PathBuf,
    /// Where to write rejected rows (default: FILE with extension `.rejected.csv`).
    pub report: Option<PathBuf>,
    /// Check every row, write nothing.
    pub validate_only: bool,
    /// Import as an import resource and its operation (`--operation`) instead of one stream.
    pub operation: bool,
}

/// Reads every row of `file`; a line that cannot be read becomes a rejected row.
fn read_rows(kind: Kind, file: &Path) -> Result<(Header, Vec<CsvRow>), String> {
    let source =
        std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let reader = CsvRows::new(kind, std::io::BufReader::new(source))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let header = reader.header().clone();
    let rows = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    Ok((header, rows))
}

/// What the server answered, whichever import it was.
struct Answer {
    created: i64,
    updated: i64,
    unchanged: i64,
    rejected: i64,
    received: i64,
    validate_only: bool,
    last_change_cursor: String,
    results: Vec<pb::ImportRowResult>,
}

fn bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} rows, {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar.set_message("importing");
    bar
}

/// `qilu import certificates|figures FILE`.
pub async fn import(
    conn: &Conn,
    format: Format,
    kind: Kind,
    options: Options,
) -> Result<ExitCode, String> {
    let (header, rows) = read_rows(kind, &options.file)?;
    let sendable: Vec<&ImportRow> = rows.iter().filter_map(|r| r.parsed.as_ref().ok()).collect();
    let total = sendable.len() as u64;
    let bar = bar(total);
    let mut client = EnterpriseRegistryServiceClient::new(conn.channel.clone())
        .max_decoding_message_size(256 * 1024 * 1024)
        .max_encoding_message_size(256 * 1024 * 1024);
    let request_id = uuid::Uuid::new_v4().to_string();
    let batch = BATCH.min(MAX_BATCH);
    let ticker = bar.clone();
    let tick = move |n: usize| {
        ticker.inc(n as u64);
        if ticker.position() >= total {
            ticker.set_message("committing");
        }
    };
    let answer = if options.operation {
        bar.finish_and_clear();
        let rows = match kind {
            Kind::Enterprises => {
                return Err("enterprises are imported with `qilu enterprises import`".into());
            }
            Kind::Certificates => crate::import_operation::Rows::Certificates(
                sendable
                    .iter()
                    .filter_map(|p| match p {
                        ImportRow::Certificate(r) => {
                            Some(pb::ImportHighTechCertificateRow::clone(r))
                        }
                        _ => None,
                    })
                    .collect(),
            ),
            Kind::Figures => crate::import_operation::Rows::Figures(
                sendable
                    .iter()
                    .filter_map(|p| match p {
                        ImportRow::Figures(r) => Some(pb::ImportAnnualFiguresRow::clone(r)),
                        _ => None,
                    })
                    .collect(),
            ),
        };
        let finished = crate::import_operation::run(conn, rows, options.validate_only).await?;
        let i = finished.import;
        Answer {
            created: i.created_count,
            updated: i.updated_count,
            unchanged: i.unchanged_count,
            rejected: i.rejected_count,
            received: i.rows_total,
            validate_only: i.validate_only,
            last_change_cursor: i.last_change_cursor,
            results: finished.rejected,
        }
    } else {
        match kind {
            Kind::Enterprises => {
                return Err("enterprises are imported with `qilu enterprises import`".into());
            }
            Kind::Certificates => {
                let rows: Vec<pb::ImportHighTechCertificateRow> = sendable
                    .iter()
                    .filter_map(|p| match p {
                        ImportRow::Certificate(r) => {
                            Some(pb::ImportHighTechCertificateRow::clone(r))
                        }
                        _ => None,
                    })
                    .collect();
                let mut messages: Vec<pb::ImportHighTechCertificatesRequest> = rows
                    .chunks(batch)
                    .map(|c| pb::ImportHighTechCertificatesRequest {
                        rows: c.to_vec(),
                        ..Default::default()
                    })
                    .collect();
                if messages.is_empty() {
                    messages.push(Default::default());
                }
                if let Some(first) = messages.first_mut() {
                    first.request_id = request_id;
                    first.validate_only = options.validate_only;
                    first.rejected_rows_only = true;
                }
                let stream = tokio_stream::iter(messages).map(move |m| {
                    tick(m.rows.len());
                    m
                });
                let result = client.import_high_tech_certificates(conn.req(stream)).await;
                bar.finish_and_clear();
                let r = result.map_err(|s| fail(conn, s))?.into_inner();
                Answer {
                    created: r.created_count,
                    updated: r.updated_count,
                    unchanged: r.unchanged_count,
                    rejected: r.rejected_count,
                    received: r.received_count,
                    validate_only: r.validate_only,
                    last_change_cursor: r.last_change_cursor,
                    results: r.row_results,
                }
            }
            Kind::Figures => {
                let rows: Vec<pb::ImportAnnualFiguresRow> = sendable
                    .iter()
                    .filter_map(|p| match p {
                        ImportRow::Figures(r) => Some(pb::ImportAnnualFiguresRow::clone(r)),
                        _ => None,
                    })
                    .collect();
                let mut messages: Vec<pb::ImportAnnualFiguresRequest> = rows
                    .chunks(batch)
                    .map(|c| pb::ImportAnnualFiguresRequest {
                        rows: c.to_vec(),
                        ..Default::default()
                    })
                    .collect();
                if messages.is_empty() {
                    messages.push(Default::default());
                }
                if let Some(first) = messages.first_mut() {
                    first.request_id = request_id;
                    first.validate_only = options.validate_only;
                    first.rejected_rows_only = true;
                }
                let stream = tokio_stream::iter(messages).map(move |m| {
                    tick(m.rows.len());
                    m
                });
                let result = client.import_annual_figures(conn.req(stream)).await;
                bar.finish_and_clear();
                let r = result.map_err(|s| fail(conn, s))?.into_inner();
                Answer {
                    created: r.created_count,
                    updated: r.updated_count,
                    unchanged: r.unchanged_count,
                    rejected: r.rejected_count,
                    received: r.received_count,
                    validate_only: r.validate_only,
                    last_change_cursor: r.last_change_cursor,
                    results: r.row_results,
                }
            }
        }
    };

    let mut rejected: Vec<(u64, Vec<Problem>)> = rows
        .iter()
        .filter_map(|r| r.parsed.as_ref().err().map(|p| (r.line, p.clone())))
        .collect();
    for result in &answer.results {
        if result.outcome == pb::ImportRowOutcome::Rejected as i32 {
            rejected.push((
                u64::try_from(result.row_number).unwrap_or(0),
                result
                    .problems
                    .iter()
                    .map(|p| (p.field.clone(), p.description.clone()))
                    .collect(),
            ));
        }
    }
    rejected.sort_by_key(|(line, _)| *line);
    let local = rows.iter().filter(|r| r.parsed.is_err()).count() as i64;
    let rejected_count = local + answer.rejected;
    let accepted = answer.created + answer.updated + answer.unchanged;
    let mut line = format!(
        "{accepted} accepted (created {}, updated {}, unchanged {}), {rejected_count} rejected",
        answer.created, answer.updated, answer.unchanged
    );
    let validate_only = answer.validate_only || options.validate_only;
    if validate_only {
        line = format!("validate only, nothing written: {line}");
    }
    let report = if rejected.is_empty() {
        None
    } else {
        let path = options
            .report
            .clone()
            .unwrap_or_else(|| default_report(&options.file));
        write_report(&path, &header, &rows, &rejected)?;
        Some(path)
    };
    match format {
        Format::Json => output::print_json(&json!({
            "received": answer.received + local,
            "accepted": accepted,
            "created": answer.created,
            "updated": answer.updated,
            "unchanged": answer.unchanged,
            "rejected": rejected_count,
            "validate_only": validate_only,
            "report": report.as_ref().map(|p| p.display().to_string()),
            "last_change_cursor": answer.last_change_cursor,
        }))?,
        Format::Table => {
            println!("{line}");
            if let Some(path) = &report {
                println!("rejected rows and their reasons: {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The report: `line`, the file's own columns, then `problems` (`field: description; …`).
fn write_report(
    path: &Path,
    header: &Header,
    rows: &[CsvRow],
    rejected: &[(u64, Vec<Problem>)],
) -> Result<(), String> {
    let keep: Vec<usize> = header
        .names
        .iter()
        .enumerate()
        .filter(|(_, n)| !REPORT_COLUMNS.contains(&n.trim().to_ascii_lowercase().as_str()))
        .map(|(i, _)| i)
        .collect();
    let by_line: HashMap<u64, &CsvRow> = rows.iter().map(|r| (r.line, r)).collect();
    let io = |e: csv::Error| format!("cannot write {}: {e}", path.display());
    let mut writer = csv::WriterBuilder::new().from_path(path).map_err(io)?;
    let mut head = vec!["line".to_string()];
    head.extend(keep.iter().map(|i| header.names[*i].clone()));
    head.push("problems".to_string());
    writer.write_record(&head).map_err(io)?;
    for (line, problems) in rejected {
        let mut record = vec![line.to_string()];
        let raw = by_line.get(line).map(|r| r.raw.as_slice()).unwrap_or(&[]);
        record.extend(
            keep.iter()
                .map(|i| raw.get(*i).cloned().unwrap_or_default()),
        );
        record.push(
            problems
                .iter()
                .map(|(f, d)| format!("{f}: {d}"))
                .collect::<Vec<_>>()
                .join("; "),
        );
        writer.write_record(&record).map_err(io)?;
    }
    writer
        .flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
