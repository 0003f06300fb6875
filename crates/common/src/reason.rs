//! The reason codes of Qilu's errors, as the contract documents them:
//! `qilu.common.v1.ErrorReason` (proto/qilu/common/v1/error_reason.proto). On the wire a reason
//! is a string, the value's name without `ERROR_REASON_` ([`wire_name`], [`parse`]); it goes in
//! `ErrorInfo.reason`, a field violation's `reason` or a precondition failure's `type`, as the
//! value's comment says.
//!
//! The services write reasons as UPPER_SNAKE string literals where they build errors
//! (`ApiError::invalid`, `FieldViolation::new`, `ApiError::precondition`, the `reason()` of
//! [`crate::ApiError`], a refusal's `kind()`). The tests of this module keep those literals and
//! the enum in step, so the enum cannot drift from what the code sends (the `tests` module says how).

pub use qilu_proto::common::ErrorReason;

/// What every value's name starts with and the wire string leaves out.
const PREFIX: &str = "ERROR_REASON_";

/// The string a reason is sent as: `ErrorReason::InvalidChecksum` → `"INVALID_CHECKSUM"`.
pub fn wire_name(reason: ErrorReason) -> &'static str {
    let name = reason.as_str_name();
    name.strip_prefix(PREFIX).unwrap_or(name)
}

/// The reason a wire string names, or `None` for a code this build does not know (a newer
/// server's; fall back on the gRPC status code) and for `UNSPECIFIED`, which is never sent.
pub fn parse(code: &str) -> Option<ErrorReason> {
    ErrorReason::from_str_name(&format!("{PREFIX}{code}"))
        .filter(|r| *r != ErrorReason::Unspecified)
}

/// Drift tests, derived from the sources and the descriptor set (`qilu_proto::FILE_DESCRIPTOR_SET`).
///
/// Why a scan of string literals and not the enum in code: reasons are written in ~400 places
/// across three services, often passed on through a refusal's `kind()` or a `match` that picks
/// one, and other branches add handlers with literals in parallel. A scan of every UPPER_SNAKE
/// string literal in the non-test code of `crates/common/src` and `services/*/src` catches all of
/// them, however a reason travels to the error it ends up in, without touching the emission
/// sites. It fails safe: a literal that is neither a reason, nor the full name of a value of a
/// `qilu.*` enum (`PROGRAM_STATE_DRAFT`), nor listed in `NOT_REASONS` with what it is,
/// fails the test until it is added to one of them.
///
/// - `every_reason_the_code_sends_is_an_error_reason`: no reason without its documented value;
/// - `every_error_reason_is_sent_somewhere`: no stale value (a reason no code sends any more is
///   marked `deprecated` in the proto, never removed or reused);
/// - `every_error_reason_says_its_code_and_services`: each value's comment starts with its gRPC
///   code and the services that send it;
/// - `rpc_comments_name_their_errors_with_documented_reasons`: every service's comment lists the
///   errors all its methods may answer and every RPC's comment has an `Errors:` line; each reason
///   named is a value, under the code its comment documents, sent by that service;
/// - `reasons_the_docs_name_are_error_reasons`: a reason-like word in README, ARCHITECTURE or
///   docs/ is a value (or a code, an enum value, a constant of the code).
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use prost::Message;
    use prost_types::{FileDescriptorProto, FileDescriptorSet};

    use super::*;

    /// UPPER_SNAKE string literals in the scanned code that are not reasons, and what they are.
    pub(crate) const NOT_REASONS: &[(&str, &str)] = &[
        ("SCREAMING_SNAKE_CASE", "serde's rename_all"),
        ("CARGO_PKG_VERSION", "environment variable"),
        ("QILU_COMMIT", "environment variable"),
        ("QILU_ENV", "environment variable"),
        ("QILU", "configuration environment prefix"),
        ("AND", "filter grammar keyword"),
        ("OR", "filter grammar keyword"),
        // Short state names in messages, filters and feeds (EnterpriseState, AchievementState).
        ("ACTIVE", "enterprise state name"),
        ("REVOKED", "enterprise state name"),
        ("DEREGISTERED", "enterprise state name"),
        ("DRAFT", "achievement state name"),
        ("ASSIGNED", "review state name"),
        ("CANCELLED", "review state name"),
        ("SUBMITTED", "achievement state name"),
        ("UNDER_REVIEW", "achievement state name"),
        ("APPROVED", "achievement state name"),
        ("REJECTED", "achievement state name"),
        ("VETOED", "achievement state name"),
        ("WITHDRAWN", "achievement state name"),
        // Short FigureSource names, in eligibility explanations.
        ("ENTERPRISE_DECLARATION", "figure source name"),
        ("AUDITED_STATEMENT", "figure source name"),
        ("TAX_RECORD", "figure source name"),
        ("STATISTICS_BUREAU", "figure source name"),
        ("HIGH_TECH_ANNUAL_REPORT", "figure source name"),
        ("RECOGNITION_REVIEW", "figure source name"),
        ("BULK_IMPORT", "figure source name"),
        ("OFFICER_ENTRY", "figure source name"),
        (
            "UNKNOWN_SOURCE",
            "figure source of an unknown number, in explanations",
        ),
        // Short VetoCategory names, in screening explanations.
        ("ENERGY_INTENSIVE", "veto category name"),
        ("HIGHLY_POLLUTING", "veto category name"),
        ("OTHER", "veto category name"),
        (
            "REQUEST_STREAM_FAILED",
            "ApiError::Inbound's reason(): never sent, the caller gets tonic's status unchanged",
        ),
        // The OpenAPI document (openapi.rs): a security scheme's token format, and the gRPC codes
        // of an RPC comment's "Errors:" line that give its operation a 404 or 409 response.
        ("JWT", "bearer token format"),
        ("ALREADY_EXISTS", "gRPC code name, read from RPC comments"),
        ("NOT_FOUND", "gRPC code name, read from RPC comments"),
    ];

    /// The descriptor set every test reads.
    fn descriptors() -> FileDescriptorSet {
        FileDescriptorSet::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap()
    }

    fn qilu_files(set: &FileDescriptorSet) -> impl Iterator<Item = &FileDescriptorProto> {
        set.file.iter().filter(|f| f.package().starts_with("qilu."))
    }

    /// The leading comment at `path` in `file`, if the descriptor keeps source info.
    fn comment(file: &FileDescriptorProto, path: &[i32]) -> Option<String> {
        let info = file.source_code_info.as_ref()?;
        info.location
            .iter()
            .find(|l| l.path == path)
            .and_then(|l| l.leading_comments.clone())
    }

    /// `qilu.common.v1.ErrorReason` in the descriptor set, with each value's comment.
    fn error_reasons(set: &FileDescriptorSet) -> BTreeMap<String, String> {
        let file = set
            .file
            .iter()
            .find(|f| f.name() == "qilu/common/v1/error_reason.proto")
            .expect("error_reason.proto is compiled");
        let (e, enum_index) = file
            .enum_type
            .iter()
            .zip(0..)
            .find(|(e, _)| e.name() == "ErrorReason")
            .expect("ErrorReason is declared");
        e.value
            .iter()
            .zip(0..)
            .filter(|(v, _)| v.number() != 0)
            .map(|(v, i)| {
                let wire = v.name().strip_prefix(PREFIX).expect("prefixed").to_string();
                let text = comment(file, &[5, enum_index, 2, i]).unwrap_or_default();
                (wire, text)
            })
            .collect()
    }

    /// The values marked `deprecated = true`: reasons no longer sent, kept so that no one reuses
    /// their names.
    fn deprecated_reasons(set: &FileDescriptorSet) -> BTreeSet<String> {
        set.file
            .iter()
            .flat_map(|f| &f.enum_type)
            .filter(|e| e.name() == "ErrorReason")
            .flat_map(|e| &e.value)
            .filter(|v| v.options.as_ref().is_some_and(|o| o.deprecated()))
            .filter_map(|v| v.name().strip_prefix(PREFIX).map(str::to_string))
            .collect()
    }

    /// Full names of every value of every `qilu.*` enum (`PROGRAM_STATE_DRAFT`), which code
    /// writes as strings when it names a state in a message or parses one from a filter.
    fn enum_value_names(set: &FileDescriptorSet) -> BTreeSet<String> {
        fn collect(
            enums: &[prost_types::EnumDescriptorProto],
            messages: &[prost_types::DescriptorProto],
            out: &mut BTreeSet<String>,
        ) {
            for e in enums {
                out.extend(e.value.iter().map(|v| v.name().to_string()));
            }
            for m in messages {
                collect(&m.enum_type, &m.nested_type, out);
            }
        }
        let mut out = BTreeSet::new();
        for f in qilu_files(set) {
            collect(&f.enum_type, &f.message_type, &mut out);
        }
        out
    }

    /// Every value of every `qilu.*` enum without its enum's prefix (`SCREENING_OUTCOME_VETO` →
    /// `VETO`), as the docs and messages name them.
    fn short_enum_value_names(set: &FileDescriptorSet) -> BTreeSet<String> {
        fn upper_snake_of(camel: &str) -> String {
            let mut out = String::new();
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_uppercase());
            }
            out
        }
        fn collect(
            enums: &[prost_types::EnumDescriptorProto],
            messages: &[prost_types::DescriptorProto],
            out: &mut BTreeSet<String>,
        ) {
            for e in enums {
                let prefix = format!("{}_", upper_snake_of(e.name()));
                out.extend(
                    e.value
                        .iter()
                        .filter_map(|v| v.name().strip_prefix(&prefix).map(str::to_string)),
                );
            }
            for m in messages {
                collect(&m.enum_type, &m.nested_type, out);
            }
        }
        let mut out = BTreeSet::new();
        for f in qilu_files(set) {
            if f.name() != "qilu/common/v1/error_reason.proto" {
                collect(&f.enum_type, &f.message_type, &mut out);
            }
        }
        out
    }

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The code that sends errors: this crate and every service, without test code.
    fn scanned_sources() -> Vec<PathBuf> {
        let root = workspace();
        let mut dirs = vec![root.join("crates/common/src")];
        let mut services: Vec<_> = std::fs::read_dir(root.join("services"))
            .unwrap()
            .map(|e| e.unwrap().path().join("src"))
            .filter(|p| p.is_dir())
            .collect();
        services.sort();
        dirs.extend(services);
        let mut files = Vec::new();
        for dir in dirs {
            rust_files(&dir, &mut files);
        }
        files
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            // Test code and test support: `tests.rs`, `tests/`, `testing.rs`, `testing/`.
            if name == "tests" || name == "testing" || name == "tests.rs" || name == "testing.rs" {
                continue;
            }
            if path.is_dir() {
                rust_files(&path, out);
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }

    /// Every string literal outside comments and `#[cfg(test)]` items, with its line.
    pub(crate) fn string_literals(source: &str) -> Vec<(usize, String)> {
        let c: Vec<char> = source.chars().collect();
        let at = |i: usize| c.get(i).copied().unwrap_or('\0');
        let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
        let mut out = Vec::new();
        let (mut i, mut line, mut depth) = (0, 1, 0usize);
        // Inside a `#[cfg(test)]` item: the depth its closing brace returns to.
        let mut skip_to: Option<usize> = None;
        let mut test_attr = false;
        while i < c.len() {
            match c[i] {
                '\n' => line += 1,
                '/' if at(i + 1) == '/' => {
                    while i < c.len() && c[i] != '\n' {
                        i += 1;
                    }
                    continue;
                }
                '/' if at(i + 1) == '*' => {
                    i += 2;
                    while i < c.len() && !(c[i] == '*' && at(i + 1) == '/') {
                        line += usize::from(c[i] == '\n');
                        i += 1;
                    }
                    i += 1;
                }
                '#' if source_at(&c, i, "#[cfg(test)]") => {
                    test_attr = true;
                    i += "#[cfg(test)]".len();
                    continue;
                }
                '\'' => {
                    // A char literal ('"', '\'', '\u{7b}') or a lifetime ('a).
                    if at(i + 1) == '\\' {
                        i += 3;
                        while i < c.len() && c[i] != '\'' {
                            i += 1;
                        }
                    } else if at(i + 2) == '\'' {
                        i += 2;
                    }
                }
                'r' if (at(i + 1) == '"'
                    || (at(i + 1) == '#' && matches!(at(i + 2), '"' | '#')))
                    && (i == 0
                        || !ident(c[i - 1])
                        || (c[i - 1] == 'b' && (i < 2 || !ident(c[i - 2])))) =>
                {
                    let start_line = line;
                    let mut hashes = 0;
                    i += 1;
                    while at(i) == '#' {
                        hashes += 1;
                        i += 1;
                    }
                    i += 1; // the opening quote
                    let close: String = std::iter::once('"')
                        .chain("#".repeat(hashes).chars())
                        .collect();
                    let mut text = String::new();
                    while i < c.len() && !source_at(&c, i, &close) {
                        line += usize::from(c[i] == '\n');
                        text.push(c[i]);
                        i += 1;
                    }
                    i += close.len();
                    if skip_to.is_none() {
                        out.push((start_line, text));
                    }
                    continue;
                }
                '"' => {
                    let start_line = line;
                    let mut text = String::new();
                    i += 1;
                    while i < c.len() && c[i] != '"' {
                        if c[i] == '\\' {
                            text.push(c[i]);
                            i += 1;
                        }
                        line += usize::from(at(i) == '\n');
                        text.push(at(i));
                        i += 1;
                    }
                    if skip_to.is_none() {
                        out.push((start_line, text));
                    }
                }
                '{' => {
                    if test_attr && skip_to.is_none() {
                        skip_to = Some(depth);
                    }
                    test_attr = false;
                    depth += 1;
                }
                '}' => {
                    depth = depth.saturating_sub(1);
                    if skip_to == Some(depth) {
                        skip_to = None;
                    }
                }
                ';' => test_attr = false,
                _ => {}
            }
            i += 1;
        }
        out
    }

    fn source_at(c: &[char], i: usize, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(k, ch)| c.get(i + k) == Some(&ch))
    }

    /// `INVALID_CHECKSUM`-shaped: upper-case words joined by single underscores.
    pub(crate) fn upper_snake(s: &str) -> bool {
        s.len() >= 2
            && s.starts_with(|ch: char| ch.is_ascii_uppercase())
            && s.split('_').all(|w| {
                !w.is_empty()
                    && w.chars()
                        .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit())
            })
    }

    /// The names of the `const` and `static` items of the scanned code.
    fn code_constants() -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for file in scanned_sources() {
            let source = std::fs::read_to_string(&file).unwrap();
            for word in ["const ", "static "] {
                for (at, _) in source.match_indices(word) {
                    let name: String = source[at + word.len()..]
                        .chars()
                        .take_while(|ch| {
                            ch.is_ascii_uppercase() || ch.is_ascii_digit() || *ch == '_'
                        })
                        .collect();
                    if upper_snake(&name) {
                        out.insert(name);
                    }
                }
            }
        }
        out
    }

    /// Every UPPER_SNAKE literal of the scanned code, with where it occurs.
    fn code_literals() -> BTreeMap<String, Vec<String>> {
        let root = workspace();
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for file in scanned_sources() {
            let source = std::fs::read_to_string(&file).unwrap();
            let shown = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .display()
                .to_string();
            for (line, text) in string_literals(&source) {
                if upper_snake(&text) {
                    out.entry(text).or_default().push(format!("{shown}:{line}"));
                }
            }
        }
        out
    }

    #[test]
    fn wire_names_drop_the_prefix_and_parse_back() {
        assert_eq!(wire_name(ErrorReason::InvalidChecksum), "INVALID_CHECKSUM");
        assert_eq!(
            parse("INVALID_CHECKSUM"),
            Some(ErrorReason::InvalidChecksum)
        );
        assert_eq!(parse("ERROR_REASON_INVALID_CHECKSUM"), None);
        assert_eq!(parse("UNSPECIFIED"), None);
        assert_eq!(parse("SOMETHING_NEWER"), None);
    }

    #[test]
    fn the_scanner_sees_code_and_skips_comments_and_tests() {
        let source = r##"
// "IN_A_COMMENT"
/* "IN_A_BLOCK" */
fn f() -> (&'static str, char, &'static str) { ("SENT", '"', r#"RAW "x""#) }
const Q: char = '\'';
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests { fn g() { let _ = "IN_TESTS"; { "NESTED_IN_TESTS"; } } }
fn h() { let _ = "AFTER_TESTS"; }
"##;
        let found: Vec<_> = string_literals(source)
            .into_iter()
            .filter(|(_, s)| upper_snake(s))
            .collect();
        assert_eq!(
            found,
            [(4, "SENT".to_string()), (9, "AFTER_TESTS".to_string())]
        );
    }

    #[test]
    fn every_reason_the_code_sends_is_an_error_reason() {
        let set = descriptors();
        let reasons = error_reasons(&set);
        let enum_names = enum_value_names(&set);
        let not_reasons: BTreeSet<_> = NOT_REASONS.iter().map(|(s, _)| *s).collect();
        let unknown: Vec<String> = code_literals()
            .into_iter()
            .filter(|(lit, _)| {
                !reasons.contains_key(lit)
                    && !enum_names.contains(lit)
                    && !not_reasons.contains(lit.as_str())
            })
            .map(|(lit, at)| format!("{lit} at {}", at.join(", ")))
            .collect();
        assert!(
            unknown.is_empty(),
            "string literals that look like reason codes but are not values of \
             qilu.common.v1.ErrorReason (proto/qilu/common/v1/error_reason.proto): add each \
             reason to the enum with its comment, or, if it is not a reason, to NOT_REASONS in \
             crates/common/src/reason.rs:\n  {}",
            unknown.join("\n  ")
        );
    }

    #[test]
    fn every_error_reason_is_sent_somewhere() {
        let literals = code_literals();
        let set = descriptors();
        let deprecated = deprecated_reasons(&set);
        let stale: Vec<_> = error_reasons(&set)
            .into_keys()
            .filter(|r| !literals.contains_key(r) && !deprecated.contains(r))
            .collect();
        assert!(
            stale.is_empty(),
            "ErrorReason values no code sends: {stale:?} (a reason that is no longer sent is \
             marked deprecated in the proto, never removed or reused)"
        );
        let not_reasons: Vec<_> = NOT_REASONS
            .iter()
            .filter(|(s, _)| !literals.contains_key(*s))
            .collect();
        assert!(
            not_reasons.is_empty(),
            "NOT_REASONS lists literals the code no longer has: {not_reasons:?}"
        );
    }

    /// Backticked UPPER_SNAKE words in the docs that are neither reasons, gRPC codes, enum values
    /// nor constants of the code, and what they are.
    const DOC_NOT_REASONS: &[(&str, &str)] = &[
        ("ERROR_REASON_", "the enum's prefix"),
        ("QILU_TOKEN", "environment variable"),
        ("QILU_TEST_POSTGRES_URL", "environment variable"),
        ("PATH", "environment variable"),
        ("COMMIT", "SQL"),
        ("SAVEPOINT", "SQL"),
        ("FILE", "buf breaking rule category"),
        ("GR", "certificate number prefix"),
    ];

    /// The reasons the docs name (README, ARCHITECTURE, docs/*.md), each a backticked
    /// UPPER_SNAKE word: every one that is not a gRPC code, an enum value of the contracts (with or
    /// without its prefix: `NEEDS_REVIEW`), a constant of the code (`TRIM_FROM_REVIEWS`), a buf
    /// rule (`FILE_SAME_GO_PACKAGE`) or in
    /// `DOC_NOT_REASONS` must be an `ErrorReason`, so a renamed or misspelt reason in the docs
    /// fails here.
    #[test]
    fn reasons_the_docs_name_are_error_reasons() {
        let set = descriptors();
        let reasons = error_reasons(&set);
        let full = enum_value_names(&set);
        let short = short_enum_value_names(&set);
        let constants = code_constants();
        let root = workspace();
        let mut docs = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
        let mut more: Vec<_> = std::fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        more.sort();
        docs.extend(more);
        let mut unknown = Vec::new();
        for doc in docs {
            let text = std::fs::read_to_string(&doc).unwrap();
            for word in text.split('`').skip(1).step_by(2) {
                let known = !upper_snake(word.trim_end_matches('_'))
                    || reasons.contains_key(word)
                    || CODES.contains(&word)
                    || full.contains(word)
                    || short.contains(word)
                    || constants.contains(word)
                    || word.starts_with("FILE_SAME_")
                    || DOC_NOT_REASONS.iter().any(|(w, _)| *w == word);
                if !known {
                    let shown = doc.strip_prefix(&root).unwrap_or(&doc);
                    unknown.push(format!("{word} in {}", shown.display()));
                }
            }
        }
        assert!(
            unknown.is_empty(),
            "the docs name reason-like codes that are not ErrorReason values (fix the doc, add \
             the reason to error_reason.proto, or list the word in DOC_NOT_REASONS):\n  {}",
            unknown.join("\n  ")
        );
    }

    /// gRPC status code names, as the comments write them.
    const CODES: &[&str] = &[
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];

    /// A value's comment begins "CODE[, with …]; who." — the code and the services' clause.
    fn code_and_services(comment: &str) -> Option<(&str, &str)> {
        let (head, _) = comment.trim_start().split_once('.')?;
        let (code, services) = head.split_once(';')?;
        let code = code.split([',', ' ']).next()?;
        Some((code, services.trim()))
    }

    #[test]
    fn every_error_reason_says_its_code_and_services() {
        for (reason, comment) in error_reasons(&descriptors()) {
            let Some((code, services)) = code_and_services(&comment) else {
                panic!("{reason}: the comment must start with \"CODE; services.\": {comment:?}");
            };
            assert!(CODES.contains(&code), "{reason}: {code} is not a gRPC code");
            assert!(
                services.starts_with("all services")
                    || ["registry", "review", "awards"]
                        .iter()
                        .any(|s| services.contains(s)),
                "{reason}: {services:?} names no service"
            );
        }
    }

    /// The list after `marker` in a comment (an RPC's `Errors: `, a service's
    /// `not repeated below: `): `CODE` or `CODE (REASON, …)`, comma-separated, up to a full stop.
    fn errors_clause(comment: &str, marker: &str) -> Option<Vec<(String, Vec<String>)>> {
        let text = comment.split_whitespace().collect::<Vec<_>>().join(" ");
        let (_, rest) = text.split_once(marker)?;
        let rest = rest.split_once('.').map_or(rest, |(clause, _)| clause);
        if rest == ONLY_COMMON {
            return Some(Vec::new());
        }
        let mut items = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            let code: String = chars
                .by_ref()
                .skip_while(|ch| *ch == ' ' || *ch == ',')
                .take_while(|ch| *ch != ' ' && *ch != ',')
                .collect();
            if code.is_empty() {
                break;
            }
            let mut reasons = Vec::new();
            if chars.peek() == Some(&'(') {
                chars.next();
                let inner: String = chars.by_ref().take_while(|ch| *ch != ')').collect();
                reasons = inner.split(',').map(|r| r.trim().to_string()).collect();
            }
            items.push((code, reasons));
        }
        Some(items)
    }

    /// An RPC's `Errors:` when it adds nothing to its service's list.
    const ONLY_COMMON: &str = "only those of every method";

    /// What introduces, in a service's comment, the errors every method may answer.
    const SERVICE_MARKER: &str = "not repeated below: ";

    #[test]
    fn rpc_comments_name_their_errors_with_documented_reasons() {
        let set = descriptors();
        let reasons = error_reasons(&set);
        let mut problems = Vec::new();
        let mut methods = 0;
        for file in qilu_files(&set) {
            let service_of_package = file.package().split('.').nth(1).unwrap_or_default();
            for (service, s) in file.service.iter().zip(0..) {
                // The service's comment lists what every method may answer; each method's
                // comment what it adds.
                let mut lists = vec![(
                    service.name().to_string(),
                    comment(file, &[6, s]).unwrap_or_default(),
                    SERVICE_MARKER,
                )];
                for (method, m) in service.method.iter().zip(0..) {
                    methods += 1;
                    lists.push((
                        format!("{}.{}", service.name(), method.name()),
                        comment(file, &[6, s, 2, m]).unwrap_or_default(),
                        "Errors: ",
                    ));
                }
                for (rpc, text, marker) in lists {
                    let Some(items) = errors_clause(&text, marker) else {
                        problems.push(format!("{rpc}: no {marker:?} list in its comment"));
                        continue;
                    };
                    for (code, named) in items {
                        if !CODES.contains(&code.as_str()) {
                            problems.push(format!("{rpc}: {code:?} is not a gRPC code"));
                        }
                        for reason in named {
                            let Some(doc) = reasons.get(&reason) else {
                                problems.push(format!("{rpc}: {reason} is not an ErrorReason"));
                                continue;
                            };
                            let (documented, services) = code_and_services(doc).unwrap_or_default();
                            if documented != code {
                                problems.push(format!(
                                    "{rpc}: {reason} is listed under {code}, but it is sent with {documented}"
                                ));
                            }
                            if !services.starts_with("all services")
                                && !services.contains(service_of_package)
                            {
                                problems.push(format!(
                                    "{rpc}: ErrorReason {reason} says it is sent by {services}, not {service_of_package}"
                                ));
                            }
                        }
                    }
                }
            }
        }
        assert!(methods > 0, "the descriptor set has no methods");
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
