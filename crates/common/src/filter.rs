//! A small AIP-160 filter parser: a conjunction of comparisons, e.g.
//! `display_name:"氢能" AND city = "Jinan" AND high_tech_certified = true`.
//! Each List method says which fields it accepts; this module only parses. An unparsable filter
//! is INVALID_ARGUMENT on `filter`, never ignored.
//!
//! A filter is bounded before and while it is parsed (`limits::MAX_FILTER_BYTES`,
//! `MAX_FILTER_CONDITIONS`, `MAX_FILTER_VALUE_CHARS`): conditions become SQL that is rendered and
//! parsed recursively, so an unbounded conjunction would overflow the stack.

use crate::error::ApiError;
use crate::limits::{MAX_FILTER_BYTES, MAX_FILTER_CONDITIONS, MAX_FILTER_VALUE_CHARS, echo};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `:` (has / substring for strings)
    Has,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// One `field op value` comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Field name (may contain dots).
    pub field: String,
    /// Operator.
    pub op: Op,
    /// Value, unquoted.
    pub value: String,
}

/// A parsed filter: all conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter(Vec<Condition>);

impl Filter {
    /// Parses `filter`; the empty string matches everything.
    pub fn parse(filter: &str) -> Result<Filter, ApiError> {
        if filter.len() > MAX_FILTER_BYTES {
            return Err(ApiError::invalid(
                "filter",
                "FILTER_TOO_LONG",
                format!(
                    "filter is {} bytes; at most {MAX_FILTER_BYTES} are accepted",
                    filter.len()
                ),
            ));
        }
        let mut lexer = Lexer {
            chars: filter.chars().collect(),
            pos: 0,
        };
        let mut conditions = Vec::new();
        if lexer.at_end() {
            return Ok(Filter(conditions));
        }
        loop {
            let field = lexer.word().ok_or_else(|| lexer.error("a field name"))?;
            let op = lexer
                .op()
                .ok_or_else(|| lexer.error("an operator (=, !=, :, <, <=, >, >=)"))?;
            let value = lexer.value().ok_or_else(|| lexer.error("a value"))?;
            if value.chars().count() > MAX_FILTER_VALUE_CHARS {
                return Err(ApiError::invalid(
                    "filter",
                    "FILTER_VALUE_TOO_LONG",
                    format!(
                        "the value for {} is longer than {MAX_FILTER_VALUE_CHARS} characters",
                        echo(&field)
                    ),
                ));
            }
            if conditions.len() == MAX_FILTER_CONDITIONS {
                return Err(ApiError::invalid(
                    "filter",
                    "TOO_MANY_FILTER_CONDITIONS",
                    format!("a filter may combine at most {MAX_FILTER_CONDITIONS} conditions"),
                ));
            }
            conditions.push(Condition { field, op, value });
            if lexer.at_end() {
                break;
            }
            match lexer.word().as_deref() {
                Some("AND") => continue,
                Some("OR") => {
                    return Err(ApiError::invalid(
                        "filter",
                        "UNSUPPORTED_FILTER",
                        "OR is not supported; combine conditions with AND",
                    ));
                }
                _ => return Err(lexer.error("AND")),
            }
        }
        Ok(Filter(conditions))
    }

    /// The conditions, in order.
    pub fn conditions(&self) -> &[Condition] {
        &self.0
    }

    /// Refuses any field not in `allowed`, naming the ones that are.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for c in &self.0 {
            if !allowed.contains(&c.field.as_str()) {
                return Err(ApiError::invalid(
                    "filter",
                    "UNSUPPORTED_FILTER_FIELD",
                    format!(
                        "cannot filter on {}; supported fields: {}",
                        echo(&c.field),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.chars.len()
    }

    fn word(&mut self) -> Option<String> {
        self.skip_ws();
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.' || *c == '-')
        {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.chars[start..self.pos].iter().collect())
    }

    fn op(&mut self) -> Option<Op> {
        self.skip_ws();
        let c0 = *self.chars.get(self.pos)?;
        let c1 = self.chars.get(self.pos + 1).copied();
        let (op, len) = match (c0, c1) {
            ('!', Some('=')) => (Op::Ne, 2),
            ('<', Some('=')) => (Op::Le, 2),
            ('>', Some('=')) => (Op::Ge, 2),
            ('=', _) => (Op::Eq, 1),
            (':', _) => (Op::Has, 1),
            ('<', _) => (Op::Lt, 1),
            ('>', _) => (Op::Gt, 1),
            _ => return None,
        };
        self.pos += len;
        Some(op)
    }

    fn value(&mut self) -> Option<String> {
        self.skip_ws();
        if self.chars.get(self.pos) == Some(&'"') {
            self.pos += 1;
            let mut out = String::new();
            while let Some(&c) = self.chars.get(self.pos) {
                self.pos += 1;
                match c {
                    '"' => return Some(out),
                    '\\' => {
                        let escaped = *self.chars.get(self.pos)?;
                        self.pos += 1;
                        out.push(escaped);
                    }
                    c => out.push(c),
                }
            }
            None // unterminated string
        } else {
            self.word()
        }
    }

    fn error(&self, expected: &str) -> ApiError {
        ApiError::invalid(
            "filter",
            "INVALID_FILTER",
            format!("expected {expected} at character {}", self.pos + 1),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_conjunctions_with_quoted_chinese_values() {
        let f =
            Filter::parse(r#"display_name:"氢能" AND city = "Jinan" AND leading = true"#).unwrap();
        assert_eq!(
            f.conditions(),
            &[
                Condition {
                    field: "display_name".into(),
                    op: Op::Has,
                    value: "氢能".into()
                },
                Condition {
                    field: "city".into(),
                    op: Op::Eq,
                    value: "Jinan".into()
                },
                Condition {
                    field: "leading".into(),
                    op: Op::Eq,
                    value: "true".into()
                },
            ]
        );
    }

    #[test]
    fn empty_matches_everything() {
        assert!(Filter::parse("  ").unwrap().conditions().is_empty());
    }

    #[test]
    fn malformed_filters_are_invalid_argument() {
        for bad in [
            "city",
            "city =",
            "city = \"Jinan",
            "city = a OR zone = b",
            "= x",
            "a = b c = d",
        ] {
            assert!(
                matches!(Filter::parse(bad), Err(ApiError::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    fn reason(err: ApiError) -> String {
        match err {
            ApiError::InvalidArgument(v) => format!("{}:{}", v[0].field, v[0].reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters_are_bounded_in_bytes_conditions_and_value_length() {
        let at_most = vec!["a = b"; MAX_FILTER_CONDITIONS].join(" AND ");
        assert_eq!(
            Filter::parse(&at_most).unwrap().conditions().len(),
            MAX_FILTER_CONDITIONS
        );
        let one_more = vec!["a = b"; MAX_FILTER_CONDITIONS + 1].join(" AND ");
        assert_eq!(
            reason(Filter::parse(&one_more).unwrap_err()),
            "filter:TOO_MANY_FILTER_CONDITIONS"
        );
        let huge = vec!["issue_date > \"2020-01-01\""; 40_000].join(" AND ");
        assert_eq!(
            reason(Filter::parse(&huge).unwrap_err()),
            "filter:FILTER_TOO_LONG"
        );
        let value = "氢".repeat(MAX_FILTER_VALUE_CHARS);
        assert!(Filter::parse(&format!("display_name:\"{value}\"")).is_ok());
        let longer = "a".repeat(MAX_FILTER_VALUE_CHARS + 1);
        assert_eq!(
            reason(Filter::parse(&format!("display_name:\"{longer}\"")).unwrap_err()),
            "filter:FILTER_VALUE_TOO_LONG"
        );
    }

    #[test]
    fn only_names_the_supported_fields() {
        let f = Filter::parse("colour = red").unwrap();
        let err = f.only(&["city", "zone"]).unwrap_err();
        assert!(err.to_string().contains("city, zone"));
    }
}
