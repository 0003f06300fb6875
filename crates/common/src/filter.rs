//! A small AIP-160 filter parser: a conjunction of comparisons, e.g.
//! `display_name:"氢能" AND city = "Jinan" AND high_tech_certified = true`.
//! Each List method says which fields it accepts; this module only parses. An unparsable filter
//! is INVALID_ARGUMENT on `filter`, never ignored.

use crate::error::ApiError;

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
                        "cannot filter on {:?}; supported fields: {}",
                        c.field,
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

    #[test]
    fn only_names_the_supported_fields() {
        let f = Filter::parse("colour = red").unwrap();
        let err = f.only(&["city", "zone"]).unwrap_err();
        assert!(err.to_string().contains("city, zone"));
    }
}
