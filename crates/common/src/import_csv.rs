//! The CSV form of the registry's bulk imports, read one way everywhere: by `qilu enterprises
//! import` / `qilu import certificates|figures` from a file, and by the HTTP/JSON side from a
//! `text/csv` upload to `/v1/enterprises:import`, `/v1/highTechCertificates:import` or
//! `/v1/annualFigures:import` (crates/common/src/http). A file the CLI imports is an upload the
//! server takes, row for row.
//!
//! A header row names the columns, in any order (case-insensitive); columns `line` and
//! `problems` (what a rejected-rows report adds) are ignored, so a fixed report imports as it is;
//! any other unknown column, a duplicate or a missing required one refuses the whole file. Rows
//! are numbered by their line (the header is line 1).
//!
//! - Enterprises: `uscc`, `display_name`, `established_date` required; `legal_representative`,
//!   `address`, `zone` (`jinan` or `zones/jinan`), `technology_fields`
//!   (`NEW_MATERIALS;ELECTRONIC_INFORMATION`), `green_category` (`CLEAN_ENERGY`).
//! - Certificates: `uscc`, `certificate_number`, `issue_date`, `technology_field` required;
//!   `issuing_authority`; `annual_reports`, the history as `YEAR:FILED_DATE` pairs joined by `;`
//!   (`2023:2024-05-10;2024:2025-04-30`).
//! - Figures, one enterprise-year per row: `uscc`, `year` required, then any figure columns
//!   (`revenue_fen`, `rd_expense_fen`, …, `core_ip_owned` and `major_incident` as `true`/`false`),
//!   an empty cell left as stored; `source` (`AUDITED_STATEMENT`) and `reference` apply to every
//!   figure of the row.
//!
//! Enum values are written with or without their prefix (`HIGH_TECH_FIELD_NEW_MATERIALS` or
//! `NEW_MATERIALS`). A row this reader cannot turn into the row message (a malformed line, bad
//! UTF-8, an unknown enum name, a figure that is no number) comes back with its problems and is
//! never sent; every other row is judged by the server.

use std::collections::HashMap;
use std::io::Read;

use qilu_proto::common::{GreenCategory, HighTechField};
use qilu_proto::registry as pb;

/// Which import a CSV file feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// `ImportEnterprises`.
    Enterprises,
    /// `ImportHighTechCertificates`.
    Certificates,
    /// `ImportAnnualFigures`.
    Figures,
}

const ENTERPRISE_COLUMNS: [&str; 8] = [
    "uscc",
    "display_name",
    "legal_representative",
    "established_date",
    "address",
    "zone",
    "technology_fields",
    "green_category",
];
const ENTERPRISE_REQUIRED: [&str; 3] = ["uscc", "display_name", "established_date"];

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

/// Columns a rejected-rows report adds; ignored on import.
pub const REPORT_COLUMNS: [&str; 2] = ["line", "problems"];

/// Most rows one message of an import stream may carry (import.proto).
pub const MAX_BATCH: usize = 1000;

impl ImportKind {
    /// The import whose request message is `full_name` (e.g.
    /// `qilu.registry.v1.ImportEnterprisesRequest`).
    pub fn of_request(full_name: &str) -> Option<ImportKind> {
        match full_name {
            "qilu.registry.v1.ImportEnterprisesRequest" => Some(ImportKind::Enterprises),
            "qilu.registry.v1.ImportHighTechCertificatesRequest" => Some(ImportKind::Certificates),
            "qilu.registry.v1.ImportAnnualFiguresRequest" => Some(ImportKind::Figures),
            _ => None,
        }
    }

    /// Every column this import reads.
    pub fn columns(self) -> Vec<&'static str> {
        match self {
            ImportKind::Enterprises => ENTERPRISE_COLUMNS.to_vec(),
            ImportKind::Certificates => CERTIFICATE_COLUMNS.to_vec(),
            ImportKind::Figures => {
                let mut c = vec!["uscc", "year", "source", "reference"];
                c.extend(AMOUNTS);
                c.extend(FLAGS);
                c
            }
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            ImportKind::Enterprises => &ENTERPRISE_REQUIRED,
            ImportKind::Certificates => &CERTIFICATE_REQUIRED,
            ImportKind::Figures => &FIGURES_REQUIRED,
        }
    }

    /// The field path a column's problem is reported on (`enterprise.uscc`).
    pub fn field_of(self, column: &str) -> String {
        let key = column.trim().to_ascii_lowercase();
        if !self.columns().contains(&key.as_str()) {
            return column.to_string();
        }
        match self {
            ImportKind::Enterprises => format!("enterprise.{key}"),
            ImportKind::Certificates => match key.as_str() {
                "uscc" => "enterprise".into(),
                "annual_reports" => key,
                _ => format!("high_tech_certificate.{key}"),
            },
            ImportKind::Figures => format!("annual_figures.{key}"),
        }
    }
}

/// A problem with a row: the field path and what is wrong.
pub type Problem = (String, String);

/// The header row: each column's name and where the known ones are.
#[derive(Debug, Clone)]
pub struct Header {
    /// The columns as written.
    pub names: Vec<String>,
    index: HashMap<String, usize>,
    kind: ImportKind,
}

impl Header {
    /// Checks the header row of a `kind` file: known columns once each, the required ones present.
    pub fn read(kind: ImportKind, names: Vec<String>) -> Result<Header, String> {
        let columns = kind.columns();
        let mut index = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            let key = name.trim().to_ascii_lowercase();
            if columns.contains(&key.as_str()) {
                if index.insert(key.clone(), i).is_some() {
                    return Err(format!("column {key} appears twice"));
                }
            } else if !REPORT_COLUMNS.contains(&key.as_str()) {
                return Err(format!(
                    "unknown column {name:?} in the header row (known: {})",
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
                "the header row lacks the required column(s) {}",
                missing.join(", ")
            ));
        }
        Ok(Header { names, index, kind })
    }

    /// The import this header is of.
    pub fn kind(&self) -> ImportKind {
        self.kind
    }

    fn get<'a>(&self, fields: &'a [String], column: &str) -> &'a str {
        self.index
            .get(column)
            .and_then(|i| fields.get(*i))
            .map(|s| s.trim())
            .unwrap_or("")
    }
}

/// One row turned into its import's row message.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportRow {
    /// A row of `ImportEnterprises`.
    Enterprise(Box<pb::ImportEnterpriseRow>),
    /// A row of `ImportHighTechCertificates`.
    Certificate(Box<pb::ImportHighTechCertificateRow>),
    /// A row of `ImportAnnualFigures`.
    Figures(Box<pb::ImportAnnualFiguresRow>),
}

/// One data line of a file.
#[derive(Debug, Clone)]
pub struct CsvRow {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    /// The fields as read (lossy UTF-8), aligned with the header, for a report.
    pub raw: Vec<String>,
    /// The row message, or what is wrong with the line.
    pub parsed: Result<ImportRow, Vec<Problem>>,
}

/// The rows of a CSV file, read as they come (a 100,000-row upload is never held whole).
pub struct CsvRows<R: Read> {
    reader: csv::Reader<R>,
    header: Header,
    record: csv::ByteRecord,
    last_line: u64,
}

impl<R: Read> std::fmt::Debug for CsvRows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRows")
            .field("header", &self.header)
            .field("last_line", &self.last_line)
            .finish()
    }
}

impl<R: Read> CsvRows<R> {
    /// Reads and checks the header row of a `kind` file.
    pub fn new(kind: ImportKind, source: R) -> Result<CsvRows<R>, String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(source);
        let mut record = csv::ByteRecord::new();
        let has_header = reader
            .read_byte_record(&mut record)
            .map_err(|e| format!("header row: {e}"))?;
        if !has_header {
            return Err("empty file (no header row)".into());
        }
        let names: Vec<String> = record
            .iter()
            .map(|f| {
                String::from_utf8_lossy(f)
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect();
        let header = Header::read(kind, names)?;
        Ok(CsvRows {
            reader,
            header,
            record,
            last_line: 1,
        })
    }

    /// The header row.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    /// A row, or the input failing to be read (`Err`, the end).
    type Item = Result<CsvRow, String>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let line = self
                    .record
                    .position()
                    .map(|p| p.line())
                    .unwrap_or(self.last_line + 1);
                self.last_line = line;
                let raw: Vec<String> = self
                    .record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                let width = self.header.names.len();
                let mut problems = Vec::new();
                if self.record.len() != width {
                    problems.push((
                        "row".to_string(),
                        format!(
                            "malformed line: {} fields where the header has {width}",
                            self.record.len()
                        ),
                    ));
                }
                for (i, f) in self.record.iter().enumerate() {
                    if std::str::from_utf8(f).is_err() {
                        let column = self.header.names.get(i).map_or("?", String::as_str);
                        problems.push((
                            self.header.kind.field_of(column),
                            "not valid UTF-8".to_string(),
                        ));
                    }
                }
                let parsed = if problems.is_empty() {
                    parse(&self.header, &raw, line)
                } else {
                    Err(problems)
                };
                Some(Ok(CsvRow { line, raw, parsed }))
            }
            Err(e) => {
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Some(Err(e.to_string()));
                }
                let line = e.position().map(|p| p.line()).unwrap_or(self.last_line + 1);
                self.last_line = line;
                Some(Ok(CsvRow {
                    line,
                    raw: Vec::new(),
                    parsed: Err(vec![("row".to_string(), format!("malformed line: {e}"))]),
                }))
            }
        }
    }
}

/// `collection/id` from an id or a full name (`jinan` or `zones/jinan`).
fn resource_name(collection: &str, id: &str) -> String {
    let id = id.trim();
    let prefix = format!("{collection}/");
    if id.starts_with(&prefix) {
        id.to_string()
    } else {
        format!("{prefix}{id}")
    }
}

/// An enum value by its name with or without `prefix`; never the zero value.
fn enum_value(text: &str, prefix: &str, from: impl Fn(&str) -> Option<i32>) -> Option<i32> {
    let upper = text.trim().to_ascii_uppercase();
    let full = if upper.starts_with(prefix) {
        upper
    } else {
        format!("{prefix}{upper}")
    };
    from(&full).filter(|v| *v != 0)
}

fn high_tech_field(text: &str) -> Option<i32> {
    enum_value(text, "HIGH_TECH_FIELD_", |s| {
        HighTechField::from_str_name(s).map(|f| f as i32)
    })
}

/// The row message of a line, or every problem this side can see.
pub fn parse(header: &Header, fields: &[String], line: u64) -> Result<ImportRow, Vec<Problem>> {
    match header.kind {
        ImportKind::Enterprises => parse_enterprise(header, fields, line),
        ImportKind::Certificates => parse_certificate(header, fields, line),
        ImportKind::Figures => parse_figures(header, fields, line),
    }
}

fn parse_enterprise(
    header: &Header,
    fields: &[String],
    line: u64,
) -> Result<ImportRow, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut technology_fields = Vec::new();
    for part in header
        .get(fields, "technology_fields")
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match high_tech_field(part) {
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
        enum_value(green, "GREEN_CATEGORY_", |s| {
            GreenCategory::from_str_name(s).map(|c| c as i32)
        })
        .unwrap_or_else(|| {
            problems.push((
                "enterprise.green_category".to_string(),
                format!("unknown green category {green:?} (e.g. CLEAN_ENERGY)"),
            ));
            0
        })
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let zone = header.get(fields, "zone");
    Ok(ImportRow::Enterprise(Box::new(pb::ImportEnterpriseRow {
        row_number: line as i64,
        enterprise: Some(pb::Enterprise {
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
        }),
    })))
}

fn parse_certificate(
    header: &Header,
    fields: &[String],
    line: u64,
) -> Result<ImportRow, Vec<Problem>> {
    let mut problems = Vec::new();
    let field = header.get(fields, "technology_field");
    let technology_field = high_tech_field(field).unwrap_or_else(|| {
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
    Ok(ImportRow::Certificate(Box::new(
        pb::ImportHighTechCertificateRow {
            row_number: line as i64,
            enterprise: resource_name("enterprises", uscc),
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

fn parse_figures(header: &Header, fields: &[String], line: u64) -> Result<ImportRow, Vec<Problem>> {
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
            resource_name("enterprises", uscc)
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
    Ok(ImportRow::Figures(Box::new(pb::ImportAnnualFiguresRow {
        row_number: line as i64,
        annual_figures: Some(figures),
    })))
}

/// One request message of `kind`'s import stream carrying `rows` (at most [`MAX_BATCH`]),
/// encoded; the other fields of the request are left unset.
pub fn encode_batch(kind: ImportKind, rows: Vec<ImportRow>) -> Vec<u8> {
    use prost::Message;
    match kind {
        ImportKind::Enterprises => pb::ImportEnterprisesRequest {
            rows: rows
                .into_iter()
                .filter_map(|r| match r {
                    ImportRow::Enterprise(r) => Some(*r),
                    _ => None,
                })
                .collect(),
            ..Default::default()
        }
        .encode_to_vec(),
        ImportKind::Certificates => pb::ImportHighTechCertificatesRequest {
            rows: rows
                .into_iter()
                .filter_map(|r| match r {
                    ImportRow::Certificate(r) => Some(*r),
                    _ => None,
                })
                .collect(),
            ..Default::default()
        }
        .encode_to_vec(),
        ImportKind::Figures => pb::ImportAnnualFiguresRequest {
            rows: rows
                .into_iter()
                .filter_map(|r| match r {
                    ImportRow::Figures(r) => Some(*r),
                    _ => None,
                })
                .collect(),
            ..Default::default()
        }
        .encode_to_vec(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rows(kind: ImportKind, text: &str) -> Vec<CsvRow> {
        CsvRows::new(kind, text.as_bytes())
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn field_and_category_names_take_short_or_full_forms() {
        assert_eq!(
            high_tech_field("new_materials"),
            Some(HighTechField::NewMaterials as i32)
        );
        assert_eq!(
            high_tech_field("HIGH_TECH_FIELD_AEROSPACE"),
            Some(HighTechField::Aerospace as i32)
        );
        assert_eq!(high_tech_field("UNSPECIFIED"), None);
        assert_eq!(high_tech_field("steel"), None);
        assert_eq!(
            enum_value("CLEAN_ENERGY", "GREEN_CATEGORY_", |s| {
                GreenCategory::from_str_name(s).map(|c| c as i32)
            }),
            Some(GreenCategory::CleanEnergy as i32)
        );
    }

    #[test]
    fn the_example_files_read_as_the_cli_reads_them() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        for (kind, file, good, bad) in [
            (
                ImportKind::Enterprises,
                "crates/cli/samples/enterprises.csv",
                13,
                0,
            ),
            (
                ImportKind::Certificates,
                "examples/migration/certificates.csv",
                6,
                0,
            ),
            (ImportKind::Figures, "examples/migration/figures.csv", 4, 0),
        ] {
            let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
            let read = rows(kind, &text);
            let ok = read.iter().filter(|r| r.parsed.is_ok()).count();
            assert_eq!((ok, read.len() - ok), (good, bad), "{file}");
            assert_eq!(read[0].line, 2);
        }
    }

    #[test]
    fn bad_cells_are_problems_and_bad_headers_refuse_the_file() {
        let read = rows(
            ImportKind::Enterprises,
            "uscc,display_name,established_date,green_category\nX,Y,2020-01-01,PURPLE\nX,Y\n",
        );
        assert_eq!(
            read[0].parsed.as_ref().unwrap_err()[0].0,
            "enterprise.green_category"
        );
        assert_eq!(read[1].parsed.as_ref().unwrap_err()[0].0, "row");
        let err = CsvRows::new(ImportKind::Figures, "uscc,colour\n".as_bytes()).unwrap_err();
        assert!(err.contains("unknown column \"colour\""), "{err}");
        let err = CsvRows::new(ImportKind::Figures, "uscc\n".as_bytes()).unwrap_err();
        assert!(err.contains("year"), "{err}");
    }
}
