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
use qilu_proto::common::{GreenCategory, HighTechField};
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use qilu_proto::registry::{
    Enterprise, ImportEnterpriseRow, ImportEnterprisesRequest, ImportEnterprisesResponse,
    ImportRowOutcome,
};
use serde_json::json;
use tokio_stream::StreamExt;

use crate::client::{Conn, fail, resource_name};
use crate::output::{self, Format};

/// Most rows one stream message may carry (import.proto).
pub const MAX_BATCH: usize = 1000;

/// The columns this command reads.
const COLUMNS: [&str; 8] = [
    "uscc",
    "display_name",
    "legal_representative",
    "established_date",
    "address",
    "zone",
    "technology_fields",
    "green_category",
];
/// Columns every file must have.
const REQUIRED: [&str; 3] = ["uscc", "display_name", "established_date"];
/// Columns a report adds; ignored on import.
const REPORT_COLUMNS: [&str; 2] = ["line", "problems"];

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

/// A problem with a row: the field path and what is wrong.
type Problem = (String, String);

/// One data row of the file.
#[derive(Debug)]
struct Row {
    line: u64,
    /// The fields as read (lossy UTF-8), aligned with the header, for the report.
    raw: Vec<String>,
    parsed: Result<Enterprise, Vec<Problem>>,
}

/// The file's header: each column's name and, for known columns, what it is.
#[derive(Debug)]
struct Header {
    names: Vec<String>,
    index: HashMap<&'static str, usize>,
}

impl Header {
    fn read(names: Vec<String>, file: &Path) -> Result<Header, String> {
        let mut index = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            let key = name.trim().to_ascii_lowercase();
            if let Some(known) = COLUMNS.iter().find(|c| **c == key) {
                if index.insert(*known, i).is_some() {
                    return Err(format!("{}: column {key} appears twice", file.display()));
                }
            } else if !REPORT_COLUMNS.contains(&key.as_str()) {
                return Err(format!(
                    "{}: unknown column {name:?} in the header row (known: {})",
                    file.display(),
                    COLUMNS.join(", ")
                ));
            }
        }
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|c| !index.contains_key(c))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{}: the header row lacks the required column(s) {}",
                file.display(),
                missing.join(", ")
            ));
        }
        Ok(Header { names, index })
    }

    fn get<'a>(&self, fields: &'a [String], column: &str) -> &'a str {
        self.index
            .get(column)
            .and_then(|i| fields.get(*i))
            .map(|s| s.trim())
            .unwrap_or("")
    }
}

fn parse_high_tech_field(text: &str) -> Option<i32> {
    let upper = text.trim().to_ascii_uppercase();
    let full = if upper.starts_with("HIGH_TECH_FIELD_") {
        upper
    } else {
        format!("HIGH_TECH_FIELD_{upper}")
    };
    HighTechField::from_str_name(&full)
        .filter(|f| *f != HighTechField::Unspecified)
        .map(|f| f as i32)
}

fn parse_green_category(text: &str) -> Option<i32> {
    let upper = text.trim().to_ascii_uppercase();
    let full = if upper.starts_with("GREEN_CATEGORY_") {
        upper
    } else {
        format!("GREEN_CATEGORY_{upper}")
    };
    GreenCategory::from_str_name(&full).map(|c| c as i32)
}

/// The enterprise a row describes, or every problem this side can see.
fn parse_row(header: &Header, fields: &[String]) -> Result<Enterprise, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut technology_fields = Vec::new();
    for part in header
        .get(fields, "technology_fields")
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match parse_high_tech_field(part) {
            Some(f) => technology_fields.push(f),
            None => problems.push((
                "enterprise.technology_fields".to_string(),
                format!(
                    "unknown high-tech field {part:?} (e.g. NEW_MATERIALS, ELECTRONIC_INFORMATION)"
                ),
            )),
        }
    }
    let green = header.get(fields, "green_category");
    let green_category = if green.is_empty() {
        0
    } else {
        parse_green_category(green).unwrap_or_else(|| {
            problems.push((
                "enterprise.green_category".to_string(),
                format!("unknown green category {green:?} (e.g. CLEAN_ENERGY)"),
            ));
            0
        })
    };
    let zone = header.get(fields, "zone");
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Enterprise {
        uscc: header.get(fields, "uscc").to_string(),
        display_name: header.get(fields, "display_name").to_string(),
        legal_representative: header.get(fields, "legal_representative").to_string(),
        established_date: header.get(fields, "established_date").to_string(),
        address: header.get(fields, "address").to_string(),
        zone: if zone.is_empty() {
            String::new()
        } else {
            resource_name("zones", zone)
        },
        technology_fields,
        green_category,
        ..Default::default()
    })
}

/// Reads every row of `file`; a line that cannot be read becomes a rejected row.
fn read_rows(file: &Path) -> Result<(Header, Vec<Row>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut record = csv::ByteRecord::new();
    let has_header = reader
        .read_byte_record(&mut record)
        .map_err(|e| format!("{}: header row: {e}", file.display()))?;
    if !has_header {
        return Err(format!("{}: empty file (no header row)", file.display()));
    }
    let names: Vec<String> = record
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let s = String::from_utf8_lossy(f).into_owned();
            if i == 0 {
                s.trim_start_matches('\u{feff}').to_string()
            } else {
                s
            }
        })
        .collect();
    let header = Header::read(names, file)?;
    let width = header.names.len();
    let mut rows = Vec::new();
    let mut last_line = 1;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(last_line + 1);
                last_line = line;
                let raw: Vec<String> = record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                let mut problems = Vec::new();
                if record.len() != width {
                    problems.push((
                        "row".to_string(),
                        format!(
                            "malformed line: {} fields where the header has {width}",
                            record.len()
                        ),
                    ));
                }
                for (i, f) in record.iter().enumerate() {
                    if std::str::from_utf8(f).is_err() {
                        let column = header.names.get(i).map_or("?", String::as_str);
                        let key = column.trim().to_ascii_lowercase();
                        let field = if COLUMNS.contains(&key.as_str()) {
                            format!("enterprise.{key}")
                        } else {
                            column.to_string()
                        };
                        problems.push((field, "not valid UTF-8".to_string()));
                    }
                }
                let parsed = if problems.is_empty() {
                    parse_row(&header, &raw)
                } else {
                    Err(problems)
                };
                rows.push(Row { line, raw, parsed });
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(last_line + 1);
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(format!("cannot read {}: {e}", file.display()));
                }
                last_line = line;
                rows.push(Row {
                    line,
                    raw: Vec::new(),
                    parsed: Err(vec![("row".to_string(), format!("malformed line: {e}"))]),
                });
            }
        }
    }
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
        .filter_map(|r| {
            r.parsed.as_ref().ok().map(|e| ImportEnterpriseRow {
                row_number: r.line as i64,
                enterprise: Some(e.clone()),
            })
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
    rows: &[Row],
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
    rows: &[Row],
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
    rows: &[Row],
    rejected: &[(u64, Vec<Problem>)],
) -> Result<(), String> {
    let keep: Vec<usize> = header
        .names
        .iter()
        .enumerate()
        .filter(|(_, n)| !REPORT_COLUMNS.contains(&n.trim().to_ascii_lowercase().as_str()))
        .map(|(i, _)| i)
        .collect();
    let by_line: HashMap<u64, &Row> = rows.iter().map(|r| (r.line, r)).collect();
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
    fn field_and_category_names_take_short_or_full_forms() {
        assert_eq!(
            parse_high_tech_field("new_materials"),
            Some(HighTechField::NewMaterials as i32)
        );
        assert_eq!(
            parse_high_tech_field("HIGH_TECH_FIELD_AEROSPACE"),
            Some(HighTechField::Aerospace as i32)
        );
        assert_eq!(parse_high_tech_field("UNSPECIFIED"), None);
        assert_eq!(parse_high_tech_field("steel"), None);
        assert_eq!(
            parse_green_category("CLEAN_ENERGY"),
            Some(GreenCategory::CleanEnergy as i32)
        );
        assert_eq!(
            default_report(Path::new("dir/ents.csv")),
            PathBuf::from("dir/ents.rejected.csv")
        );
    }
}
