//! The input kit: what every handler uses to turn a request into domain values ("parse, don't
//! validate"), written once so the three services parse alike.
//!
//! - [`Violations`]: collects every bad field of a request, so a caller learns all of them in
//!   one `INVALID_ARGUMENT` instead of one per round trip;
//! - [`text`] / [`Text`]: trimmed, bounded, control-free strings;
//! - [`name`]: one resource-name parser (`programs/{program}/applications/{application}`) and
//!   the [`resource_id!`](crate::resource_id) macro for typed ids with private fields;
//! - [`order`]: `OrderBy::parse` over a method's sortable keys;
//! - [`mask`]: `UpdateMask::parse` over a resource's updatable paths;
//! - [`etag`]: one etag function and one stale-etag check;
//! - typed filter fields live with the filter parser (`crate::filter::FilterField`).
//!
//! Nothing here knows a service's domain. Reason codes are the ones the contracts document
//! (`REQUIRED`, `TOO_LONG`, `CONTROL_CHARACTER`, `INVALID_RESOURCE_NAME`, `INVALID_ORDER_BY`,
//! `FIELD_NOT_UPDATABLE`).

pub mod etag;
pub mod mask;
pub mod name;
pub mod order;

use crate::error::{ApiError, FieldViolation};

pub use etag::{check_current, check_etag, etag_of};
pub use mask::UpdateMask;
pub use name::{IdRule, segments};
pub use order::OrderBy;

/// Every field violation of one request, collected while parsing continues.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Violations(Vec::new())
    }

    /// Records one violation.
    pub fn push(&mut self, violation: FieldViolation) {
        self.0.push(violation);
    }

    /// The value of `result`, or `None` with its violation recorded.
    pub fn take<T>(&mut self, result: Result<T, FieldViolation>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(v) => {
                self.0.push(v);
                None
            }
        }
    }

    /// The value of `result`, or `None` with all its violations recorded.
    pub fn take_all<T>(&mut self, result: Result<T, Vec<FieldViolation>>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(vs) => {
                self.0.extend(vs);
                None
            }
        }
    }

    /// Like [`take`](Self::take) for a parser that answers `ApiError`: its field violations are
    /// recorded; any other error (not a caller's mistake) is returned as it is.
    pub fn absorb<T>(&mut self, result: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(ApiError::InvalidArgument(vs)) => {
                self.0.extend(vs);
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `INVALID_ARGUMENT` with every recorded violation, or `Ok` when there are none.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }

    /// `value` when nothing was recorded (and it is present), else `INVALID_ARGUMENT` with every
    /// violation. Ends a parse that collected its parts as `Option`s.
    pub fn into_result<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ if !self.0.is_empty() => Err(ApiError::InvalidArgument(self.0)),
            _ => Err(ApiError::internal(
                "a parse produced no value and no violation",
            )),
        }
    }
}

/// A required sub-message: `REQUIRED` on `field` when it is missing.
pub fn required<'a, T>(message: Option<&'a T>, field: &str) -> Result<&'a T, ApiError> {
    message.ok_or_else(|| ApiError::invalid(field, "REQUIRED", format!("{field} is required")))
}

/// How a text field is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    /// At most this many characters after trimming.
    pub max: usize,
    /// Empty (after trimming) is `REQUIRED`.
    pub required: bool,
    /// Line breaks and tabs are admitted (other control characters never are).
    pub multiline: bool,
}

impl Text {
    /// A required single-line text of at most `max` characters.
    pub const fn required(max: usize) -> Text {
        Text {
            max,
            required: true,
            multiline: false,
        }
    }

    /// An optional single-line text of at most `max` characters.
    pub const fn optional(max: usize) -> Text {
        Text {
            max,
            required: false,
            multiline: false,
        }
    }

    /// The same bound, admitting line breaks and tabs.
    pub const fn multiline(self) -> Text {
        Text {
            multiline: true,
            ..self
        }
    }

    /// `raw` trimmed, or the violation of `field`.
    pub fn parse(self, raw: &str, field: &str) -> Result<String, FieldViolation> {
        let value = raw.trim();
        if self.required && value.is_empty() {
            return Err(FieldViolation::new(field, "REQUIRED", "must not be empty"));
        }
        if value.chars().count() > self.max {
            return Err(FieldViolation::new(
                field,
                "TOO_LONG",
                format!("at most {} characters", self.max),
            ));
        }
        let admitted = |c: char| self.multiline && matches!(c, '\n' | '\r' | '\t');
        if value.chars().any(|c| c.is_control() && !admitted(c)) {
            return Err(FieldViolation::new(
                field,
                "CONTROL_CHARACTER",
                "must not contain control characters",
            ));
        }
        Ok(value.to_string())
    }
}

/// Trimmed text of at most `max` characters without control characters other than line breaks
/// and tabs; `required` refuses empty. The common case of [`Text`].
pub fn text(raw: &str, field: &str, max: usize, required: bool) -> Result<String, FieldViolation> {
    Text {
        max,
        required,
        multiline: true,
    }
    .parse(raw, field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_collect_every_bad_field_then_fail_once() {
        let mut v = Violations::new();
        let a = v.take(Text::required(3).parse("  ", "a"));
        let b = v.take(Text::required(3).parse("abcd", "b"));
        let c = v.take(Text::required(3).parse(" ok ", "c"));
        assert_eq!((a, b, c.as_deref()), (None, None, Some("ok")));
        let Err(ApiError::InvalidArgument(list)) = v.finish() else {
            panic!("expected INVALID_ARGUMENT");
        };
        let fields: Vec<_> = list
            .iter()
            .map(|v| (v.field.as_str(), v.reason.as_str()))
            .collect();
        assert_eq!(fields, [("a", "REQUIRED"), ("b", "TOO_LONG")]);
    }

    #[test]
    fn absorb_keeps_field_violations_and_passes_other_errors() {
        let mut v = Violations::new();
        let r: Result<(), ApiError> = Err(ApiError::invalid("x", "REQUIRED", "x"));
        assert!(matches!(v.absorb(r), Ok(None)));
        let r: Result<(), ApiError> = Err(ApiError::Aborted("race".into()));
        assert!(matches!(v.absorb(r), Err(ApiError::Aborted(_))));
        assert!(!v.is_empty());
    }

    #[test]
    fn text_refuses_control_characters_unless_multiline_admits_them() {
        assert!(Text::optional(10).parse("a\nb", "f").is_err());
        assert_eq!(
            Text::optional(10)
                .multiline()
                .parse("a\nb", "f")
                .ok()
                .as_deref(),
            Some("a\nb")
        );
        let bell = Text::optional(10).multiline().parse("a\u{7}", "f");
        assert_eq!(
            bell.err().map(|v| v.reason),
            Some("CONTROL_CHARACTER".into())
        );
        // Length counts characters, not bytes.
        assert!(Text::required(2).parse("氢能", "f").is_ok());
    }
}
