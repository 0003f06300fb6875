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

/// How the value of a filter field is read.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Any text (quoted or not), taken as it is.
    Text,
    /// `true` or `false`.
    Bool,
    /// A decimal integer.
    Int,
    /// A date, `YYYY-MM-DD`.
    Date,
    /// The name of a value of a proto enum (`HIGH_TECH_FIELD_NEW_MATERIALS`); the `UNSPECIFIED`
    /// value (0) is refused.
    Enum {
        /// The enum's proto name, for the error message.
        type_name: &'static str,
        /// The generated `from_str_name`, as the enum's number.
        from_name: fn(&str) -> Option<i32>,
    },
}

/// A field a List method can filter on: its name, the operators it supports, its kind.
#[derive(Debug, Clone, Copy)]
pub struct FilterField {
    /// The field's name in the filter (the resource's field name).
    pub name: &'static str,
    /// The operators accepted on it.
    pub ops: &'static [Op],
    /// How its value is read.
    pub kind: Kind,
}

impl FilterField {
    /// A field compared with `=` only.
    pub const fn eq(name: &'static str, kind: Kind) -> FilterField {
        FilterField {
            name,
            ops: &[Op::Eq],
            kind,
        }
    }

    /// A field with its own operators.
    pub const fn with(name: &'static str, ops: &'static [Op], kind: Kind) -> FilterField {
        FilterField { name, ops, kind }
    }
}

/// A typed filter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// [`Kind::Text`].
    Text(String),
    /// [`Kind::Bool`].
    Bool(bool),
    /// [`Kind::Int`].
    Int(i64),
    /// [`Kind::Date`].
    Date(chrono::NaiveDate),
    /// [`Kind::Enum`]: the enum's number.
    Enum(i32),
}

/// One checked condition: a declared field, one of its operators, a value of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The field's declared name.
    pub field: &'static str,
    /// The operator, one the field supports.
    pub op: Op,
    /// The value, of the field's kind.
    pub value: Value,
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Has => ":",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
    }
}

impl Filter {
    /// Parses `raw` and checks every condition against `fields`: an undeclared field, an
    /// operator the field does not support or a value not of its kind is `INVALID_ARGUMENT` on
    /// `filter` (`UNSUPPORTED_FILTER_FIELD` / `INVALID_FILTER`), never ignored.
    pub fn typed(raw: &str, fields: &[FilterField]) -> Result<Vec<Term>, ApiError> {
        let filter = Filter::parse(raw)?;
        let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
        filter.only(&names)?;
        let mut terms = Vec::with_capacity(filter.0.len());
        for c in filter.0 {
            let Some(field) = fields.iter().find(|f| f.name == c.field) else {
                continue;
            };
            let bad = |why: String| {
                ApiError::invalid("filter", "INVALID_FILTER", format!("{}: {why}", field.name))
            };
            if !field.ops.contains(&c.op) {
                let ops: Vec<&str> = field.ops.iter().map(|o| op_text(*o)).collect();
                return Err(bad(format!("supports only {}", ops.join(" or "))));
            }
            let value = match field.kind {
                Kind::Text => Value::Text(c.value),
                Kind::Bool => match c.value.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return Err(bad("expects true or false".into())),
                },
                Kind::Int => Value::Int(
                    c.value
                        .parse()
                        .map_err(|_| bad(format!("{} is not an integer", echo(&c.value))))?,
                ),
                Kind::Date => Value::Date(
                    chrono::NaiveDate::parse_from_str(&c.value, "%Y-%m-%d")
                        .map_err(|_| bad(format!("{} is not a YYYY-MM-DD date", echo(&c.value))))?,
                ),
                Kind::Enum {
                    type_name,
                    from_name,
                } => Value::Enum(
                    from_name(&c.value)
                        .filter(|n| *n != 0)
                        .ok_or_else(|| bad(format!("{} is not a {type_name}", echo(&c.value))))?,
                ),
            };
            terms.push(Term {
                field: field.name,
                op: c.op,
                value,
            });
        }
        Ok(terms)
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

    const FIELDS: &[FilterField] = &[
        FilterField::with("display_name", &[Op::Has], Kind::Text),
        FilterField::eq("leading", Kind::Bool),
        FilterField::with("year", &[Op::Eq, Op::Ge, Op::Le], Kind::Int),
        FilterField::eq(
            "state",
            Kind::Enum {
                type_name: "State",
                from_name: |s| match s {
                    "STATE_UNSPECIFIED" => Some(0),
                    "ACTIVE" => Some(1),
                    _ => None,
                },
            },
        ),
    ];

    #[test]
    fn typed_filters_check_field_operator_and_kind() {
        let terms = Filter::typed(
            r#"display_name:"氢" AND leading = true AND year >= 2025 AND state = ACTIVE"#,
            FIELDS,
        );
        let values: Vec<Value> = terms
            .map(|t| t.into_iter().map(|t| t.value).collect())
            .unwrap_or_default();
        assert_eq!(
            values,
            [
                Value::Text("氢".into()),
                Value::Bool(true),
                Value::Int(2025),
                Value::Enum(1)
            ]
        );
        for (bad, reason) in [
            ("city = Jinan", "UNSUPPORTED_FILTER_FIELD"),
            ("display_name = x", "INVALID_FILTER"),
            ("leading = maybe", "INVALID_FILTER"),
            ("year = soon", "INVALID_FILTER"),
            ("state = STATE_UNSPECIFIED", "INVALID_FILTER"),
        ] {
            let Err(ApiError::InvalidArgument(v)) = Filter::typed(bad, FIELDS) else {
                panic!("{bad} should be refused");
            };
            assert_eq!(v[0].reason, reason, "{bad}");
        }
    }
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
