//! `qilu enterprises import FILE.csv`: streams a CSV of enterprises through the client-streaming
//! `ImportEnterprises`, with a progress bar, a final summary and a report of rejected rows.
//!
//! The CSV has a header row naming its columns, in any order: `uscc`, `display_name`,
//! `established_date` (required), `legal_representative`, `address`, `zone` (`jinan` or
//! `zones/jinan`), `technology_fields` (`NEW_MATERIALS;ELECTRONIC_INFORMATION`), `green_category`
//! (`CLEAN_ENERGY`). Columns `line` and `problems` (those a report adds) are ignored, so a fixed
//! report can be imported again as it is; any other column is refused before anything is sent.
//!
//! A row is numbered by its line in the file (the header is line 1). A row this command cannot
//! read (wrong number of fields, bad UTF-8, an unknown field or category name) is rejected here
//! with its reason and never sent; every other row is judged by the server. Both kinds end up in
//! the summary and the report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use qilu_common::import_csv::{
    CsvRow, CsvRows, Header, ImportKind, ImportRow, Problem, REPORT_COLUMNS,
};
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::registry::{
    ImportEnterpriseRow, ImportEnterprisesRequest, ImportEnterprisesResponse, ImportRowOutcome,
};
use serde_json::json;
use tokio_stream::StreamExt;

use crate::client::{Conn, fail};
use crate::output::{self, Format};

/// Most rows one stream message may carry (import.proto).
pub const MAX_BATCH: usize = 1000;

/// Options of `qilu enterprises import`.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The CSV file.
    pub file: PathBuf,
    /// Where to write rejected rows (default: FILE with extension `.rejected.csv`).
    pub report: Option<PathBuf>,
    /// Check every row, write nothing.
    pub validate_only: bool,
    /// Rows per stream message.
    pub batch: usize,
    /// Import as an import resource and its operation (`--operation`) instead of one stream.
    pub operation: bool,
}

/// Reads every row of `file`; a line that cannot be read becomes a rejected row.
fn read_rows(file: &Path) -> Result<(Header, Vec<CsvRow>), String> {
    let source =
        std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let reader = CsvRows::new(ImportKind::Enterprises, std::io::BufReader::new(source))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let header = reader.header().clone();
    let rows = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    Ok((header, rows))
}

/// Where the report goes by default: `x.csv` → `x.rejected.csv`.
pub fn default_report(file: &Path) -> PathBuf {
    file.with_extension("rejected.csv")
}

/// `qilu enterprises import`.
pub async fn import(
    conn: &Conn,
    format: Format,
    options: ImportOptions,
) -> Result<ExitCode, String> {
    if !(1..=MAX_BATCH).contains(&options.batch) {
        return Err(format!(
            "--batch must be 1-{MAX_BATCH}, not {}",
            options.batch
        ));
    }
    let (header, rows) = read_rows(&options.file)?;
    let sendable: Vec<ImportEnterpriseRow> = rows
        .iter()
        .filter_map(|r| match &r.parsed {
            Ok(ImportRow::Enterprise(row)) => Some(ImportEnterpriseRow::clone(row)),
            _ => None,
        })
        .collect();
    let total = sendable.len() as u64;
    if options.operation {
        let finished = crate::import_operation::run(
            conn,
            crate::import_operation::Rows::Enterprises(sendable),
            options.validate_only,
        )
        .await?;
        let i = &finished.import;
        let response = ImportEnterprisesResponse {
            received_count: i.rows_total,
            accepted_count: i.created_count + i.updated_count,
            created_count: i.created_count,
            updated_count: i.updated_count,
            unchanged_count: i.unchanged_count,
            rejected_count: i.rejected_count,
            row_results: finished.rejected,
            validate_only: i.validate_only,
            last_change_cursor: i.last_change_cursor.clone(),
        };
        return answer(format, &header, &rows, &response, &options);
    }

    let mut messages: Vec<ImportEnterprisesRequest> = Vec::new();
    let mut chunks = sendable.chunks(options.batch).peekable();
    if chunks.peek().is_none() {
        messages.push(ImportEnterprisesRequest::default());
    }
    for chunk in chunks {
        messages.push(ImportEnterprisesRequest {
            rows: chunk.to_vec(),
            ..Default::default()
        });
    }
    if let Some(first) = messages.first_mut() {
        first.request_id = uuid::Uuid::new_v4().to_string();
        first.validate_only = options.validate_only;
        first.rejected_rows_only = true;
    }

    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} rows, {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar.set_message("importing");
    let ticker = bar.clone();
    let stream = tokio_stream::iter(messages).map(move |m| {
        ticker.inc(m.rows.len() as u64);
        if ticker.position() >= total {
            ticker.set_message("committing");
        }
        m
    });
    let mut client = EnterpriseRegistryServiceClient::new(conn.channel.clone())
        .max_decoding_message_size(256 * 1024 * 1024)
        .max_encoding_message_size(256 * 1024 * 1024);
    let result = client.import_enterprises(conn.req(stream)).await;
    bar.finish_and_clear();
    let response = result.map_err(|s| fail(conn, s))?.into_inner();
    answer(format, &header, &rows, &response, &options)
}

/// Prints the summary and writes the report of rejected rows.
fn answer(
    format: Format,
    header: &Header,
    rows: &[CsvRow],
    response: &ImportEnterprisesResponse,
    options: &ImportOptions,
) -> Result<ExitCode, String> {
    let summary = summarize(header, rows, response, options)?;
    match format {
        Format::Json => output::print_json(&summary.json)?,
        Format::Table => {
            println!("{}", summary.line);
            if let Some(path) = &summary.report {
                println!("rejected rows and their reasons: {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

struct Summary {
    line: String,
    report: Option<PathBuf>,
    json: serde_json::Value,
}

fn summarize(
    header: &Header,
    rows: &[CsvRow],
    response: &ImportEnterprisesResponse,
    options: &ImportOptions,
) -> Result<Summary, String> {
    // Rejections: this side's, then the server's, by line.
    let mut rejected: Vec<(u64, Vec<Problem>)> = rows
        .iter()
        .filter_map(|r| r.parsed.as_ref().err().map(|p| (r.line, p.clone())))
        .collect();
    for result in &response.row_results {
        if result.outcome == ImportRowOutcome::Rejected as i32 {
            let line = u64::try_from(result.row_number).unwrap_or(0);
            rejected.push((
                line,
                result
                    .problems
                    .iter()
                    .map(|p| (p.field.clone(), p.description.clone()))
                    .collect(),
            ));
        }
    }
    rejected.sort_by_key(|(line, _)| *line);
    let local_rejects = rows.iter().filter(|r| r.parsed.is_err()).count() as i64;
    let rejected_count = local_rejects + response.rejected_count;
    let accepted = response.created_count + response.updated_count + response.unchanged_count;
    let mut line = format!(
        "{accepted} accepted (created {}, updated {}, unchanged {}), {rejected_count} rejected",
        response.created_count, response.updated_count, response.unchanged_count
    );
    if response.validate_only || options.validate_only {
        line = format!("validate only, nothing written: {line}");
    }

    let report = if rejected.is_empty() {
        None
    } else {
        let path = options
            .report
            .clone()
            .unwrap_or_else(|| default_report(&options.file));
        write_report(&path, header, rows, &rejected)?;
        Some(path)
    };
    let json = json!({
        "received": response.received_count + local_rejects,
        "accepted": accepted,
        "created": response.created_count,
        "updated": response.updated_count,
        "unchanged": response.unchanged_count,
        "rejected": rejected_count,
        "validate_only": response.validate_only || options.validate_only,
        "report": report.as_ref().map(|p| p.display().to_string()),
        "last_change_cursor": response.last_change_cursor,
    });
    Ok(Summary { line, report, json })
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
    let mut writer = csv::WriterBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut head = vec!["line".to_string()];
    head.extend(keep.iter().map(|i| header.names[*i].clone()));
    head.push("problems".to_string());
    let io = |e: csv::Error| format!("cannot write {}: {e}", path.display());
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
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_sits_beside_the_file() {
        assert_eq!(
            default_report(Path::new("dir/ents.csv")),
            PathBuf::from("dir/ents.rejected.csv")
        );
    }
}
