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
use qilu_proto::common::HighTechField;
use qilu_proto::registry as pb;
use qilu_proto::registry::enterprise_registry_service_client::EnterpriseRegistryServiceClient;
use serde_json::json;
use tokio_stream::StreamExt;

use crate::client::{Conn, fail};
use crate::import::default_report;
use crate::output::{self, Format};

/// Most rows one stream message may carry (import.proto).
const MAX_BATCH: usize = 1000;
/// Rows per stream message.
const BATCH: usize = 500;
/// Columns a report adds; ignored on import.
const REPORT_COLUMNS: [&str; 2] = ["line", "problems"];

/// Which import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ImportHighTechCertificates`.
    Certificates,
    /// `ImportAnnualFigures`.
    Figures,
}

const CERTIFICATE_COLUMNS: [&str; 6] = [
    "uscc",
    "certificate_number",
    "issue_date",
    "technology_field",
    "issuing_authority",
    "annual_reports",
];
const CERTIFICATE_REQUIRED: [&str; 4] = [
    "uscc",
    "certificate_number",
    "issue_date",
    "technology_field",
];

/// Amount figures (`ReportedAmount`) and flag figures (`ReportedFlag`) of `AnnualFigures`.
const AMOUNTS: [&str; 11] = [
    "revenue_fen",
    "rd_expense_fen",
    "rd_domestic_expense_fen",
    "high_tech_product_revenue_fen",
    "employees",
    "st_staff",
    "invention_patents",
    "innovation_ip_points",
    "innovation_conversion_points",
    "innovation_rd_management_points",
    "innovation_growth_points",
];
const FLAGS: [&str; 2] = ["core_ip_owned", "major_incident"];
const FIGURES_REQUIRED: [&str; 2] = ["uscc", "year"];

impl Kind {
    fn columns(self) -> Vec<&'static str> {
        match self {
            Kind::Certificates => CERTIFICATE_COLUMNS.to_vec(),
            Kind::Figures => {
                let mut c = vec!["uscc", "year", "source", "reference"];
                c.extend(AMOUNTS);
                c.extend(FLAGS);
                c
            }
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Kind::Certificates => &CERTIFICATE_REQUIRED,
            Kind::Figures => &FIGURES_REQUIRED,
        }
    }
}

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

type Problem = (String, String);

/// A parsed row, ready to send (boxed: the two row messages differ much in size).
enum Parsed {
    Certificate(Box<pb::ImportHighTechCertificateRow>),
    Figures(Box<pb::ImportAnnualFiguresRow>),
}

struct Row {
    line: u64,
    raw: Vec<String>,
    parsed: Result<Parsed, Vec<Problem>>,
}

struct Header {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Header {
    fn get<'a>(&self, fields: &'a [String], column: &str) -> &'a str {
        self.index
            .get(column)
            .and_then(|i| fields.get(*i))
            .map(|s| s.trim())
            .unwrap_or("")
    }
}

fn read_header(kind: Kind, names: Vec<String>, file: &Path) -> Result<Header, String> {
    let columns = kind.columns();
    let mut index = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let key = name.trim().to_ascii_lowercase();
        if columns.contains(&key.as_str()) {
            if index.insert(key.clone(), i).is_some() {
                return Err(format!("{}: column {key} appears twice", file.display()));
            }
        } else if !REPORT_COLUMNS.contains(&key.as_str()) {
            return Err(format!(
                "{}: unknown column {name:?} in the header row (known: {})",
                file.display(),
                columns.join(", ")
            ));
        }
    }
    let missing: Vec<&str> = kind
        .required()
        .iter()
        .copied()
        .filter(|c| !index.contains_key(*c))
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

fn enum_value(text: &str, prefix: &str, from: impl Fn(&str) -> Option<i32>) -> Option<i32> {
    let upper = text.trim().to_ascii_uppercase();
    let full = if upper.starts_with(prefix) {
        upper
    } else {
        format!("{prefix}{upper}")
    };
    from(&full).filter(|v| *v != 0)
}

fn parse_certificate(
    header: &Header,
    fields: &[String],
    line: u64,
) -> Result<Parsed, Vec<Problem>> {
    let mut problems = Vec::new();
    let field = header.get(fields, "technology_field");
    let technology_field = enum_value(field, "HIGH_TECH_FIELD_", |s| {
        HighTechField::from_str_name(s).map(|f| f as i32)
    })
    .unwrap_or_else(|| {
        problems.push((
            "high_tech_certificate.technology_field".to_string(),
            format!("unknown high-tech field {field:?} (e.g. NEW_MATERIALS)"),
        ));
        0
    });
    let mut annual_reports = Vec::new();
    for (i, part) in header
        .get(fields, "annual_reports")
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        match part
            .split_once(':')
            .map(|(y, d)| (y.trim().parse::<i32>(), d.trim()))
        {
            Some((Ok(report_year), filed_date)) => annual_reports.push(pb::ImportedAnnualReport {
                report_year,
                filed_date: filed_date.to_string(),
            }),
            _ => problems.push((
                format!("annual_reports[{i}]"),
                format!("{part:?} is not YEAR:FILED_DATE (e.g. 2023:2024-05-10)"),
            )),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let uscc = header.get(fields, "uscc");
    Ok(Parsed::Certificate(Box::new(
        pb::ImportHighTechCertificateRow {
            row_number: line as i64,
            enterprise: crate::client::resource_name("enterprises", uscc),
            high_tech_certificate: Some(pb::HighTechCertificate {
                certificate_number: header.get(fields, "certificate_number").to_string(),
                issue_date: header.get(fields, "issue_date").to_string(),
                issuing_authority: header.get(fields, "issuing_authority").to_string(),
                technology_field,
                ..Default::default()
            }),
            annual_reports,
        },
    )))
}

fn parse_figures(header: &Header, fields: &[String], line: u64) -> Result<Parsed, Vec<Problem>> {
    let mut problems = Vec::new();
    let source_text = header.get(fields, "source");
    let source = if source_text.is_empty() {
        0
    } else {
        enum_value(source_text, "FIGURE_SOURCE_", |s| {
            pb::FigureSource::from_str_name(s).map(|f| f as i32)
        })
        .unwrap_or_else(|| {
            problems.push((
                "annual_figures.source".to_string(),
                format!("unknown figure source {source_text:?} (e.g. AUDITED_STATEMENT)"),
            ));
            0
        })
    };
    let reference = header.get(fields, "reference").to_string();
    let year = header.get(fields, "year");
    let uscc = header.get(fields, "uscc");
    let mut figures = pb::AnnualFigures {
        name: format!(
            "{}/annualFigures/{year}",
            crate::client::resource_name("enterprises", uscc)
        ),
        ..Default::default()
    };
    for column in AMOUNTS {
        let text = header.get(fields, column);
        if text.is_empty() {
            continue;
        }
        let Ok(value) = text.replace('_', "").parse::<i64>() else {
            problems.push((
                format!("annual_figures.{column}.value"),
                format!("{text:?} is not a whole number"),
            ));
            continue;
        };
        let amount = Some(pb::ReportedAmount {
            value,
            source,
            reference: reference.clone(),
            update_time: None,
        });
        match column {
            "revenue_fen" => figures.revenue_fen = amount,
            "rd_expense_fen" => figures.rd_expense_fen = amount,
            "rd_domestic_expense_fen" => figures.rd_domestic_expense_fen = amount,
            "high_tech_product_revenue_fen" => figures.high_tech_product_revenue_fen = amount,
            "employees" => figures.employees = amount,
            "st_staff" => figures.st_staff = amount,
            "invention_patents" => figures.invention_patents = amount,
            "innovation_ip_points" => figures.innovation_ip_points = amount,
            "innovation_conversion_points" => figures.innovation_conversion_points = amount,
            "innovation_rd_management_points" => figures.innovation_rd_management_points = amount,
            _ => figures.innovation_growth_points = amount,
        }
    }
    for column in FLAGS {
        let text = header.get(fields, column).to_ascii_lowercase();
        let value = match text.as_str() {
            "" => continue,
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            _ => {
                problems.push((
                    format!("annual_figures.{column}.value"),
                    format!("{text:?} is not true or false"),
                ));
                continue;
            }
        };
        let flag = Some(pb::ReportedFlag {
            value,
            source,
            reference: reference.clone(),
            update_time: None,
        });
        if column == "core_ip_owned" {
            figures.core_ip_owned = flag;
        } else {
            figures.major_incident = flag;
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Parsed::Figures(Box::new(pb::ImportAnnualFiguresRow {
        row_number: line as i64,
        annual_figures: Some(figures),
    })))
}

fn read_rows(kind: Kind, file: &Path) -> Result<(Header, Vec<Row>), String> {
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
        .map(|f| {
            String::from_utf8_lossy(f)
                .trim_start_matches('\u{feff}')
                .to_string()
        })
        .collect();
    let header = read_header(kind, names, file)?;
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
                let parsed = if record.len() != width {
                    Err(vec![(
                        "row".to_string(),
                        format!(
                            "malformed line: {} fields where the header has {width}",
                            record.len()
                        ),
                    )])
                } else if record.iter().any(|f| std::str::from_utf8(f).is_err()) {
                    Err(vec![("row".to_string(), "not valid UTF-8".to_string())])
                } else {
                    match kind {
                        Kind::Certificates => parse_certificate(&header, &raw, line),
                        Kind::Figures => parse_figures(&header, &raw, line),
                    }
                };
                rows.push(Row { line, raw, parsed });
            }
            Err(e) => {
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(format!("cannot read {}: {e}", file.display()));
                }
                let line = e.position().map(|p| p.line()).unwrap_or(last_line + 1);
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
    let sendable: Vec<&Parsed> = rows.iter().filter_map(|r| r.parsed.as_ref().ok()).collect();
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
            Kind::Certificates => crate::import_operation::Rows::Certificates(
                sendable
                    .iter()
                    .filter_map(|p| match p {
                        Parsed::Certificate(r) => Some(pb::ImportHighTechCertificateRow::clone(r)),
                        Parsed::Figures(_) => None,
                    })
                    .collect(),
            ),
            Kind::Figures => crate::import_operation::Rows::Figures(
                sendable
                    .iter()
                    .filter_map(|p| match p {
                        Parsed::Figures(r) => Some(pb::ImportAnnualFiguresRow::clone(r)),
                        Parsed::Certificate(_) => None,
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
            Kind::Certificates => {
                let rows: Vec<pb::ImportHighTechCertificateRow> = sendable
                    .iter()
                    .filter_map(|p| match p {
                        Parsed::Certificate(r) => Some(pb::ImportHighTechCertificateRow::clone(r)),
                        Parsed::Figures(_) => None,
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
                        Parsed::Figures(r) => Some(pb::ImportAnnualFiguresRow::clone(r)),
                        Parsed::Certificate(_) => None,
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
