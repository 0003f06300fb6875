//! One resource-name parser (AIP-122) for every service, and typed ids built on it.
//!
//! A pattern is the name's template, e.g. `programs/{program}/applications/{application}`:
//! literal collection segments must match, each `{variable}` takes one non-empty segment. Ids
//! are then checked by an [`IdRule`]. Errors name the field, say what was expected, and echo the
//! input only as a bounded preview.

use crate::error::FieldViolation;
use crate::limits::echo;

/// How an id segment is formed.
#[derive(Debug, Clone, Copy)]
pub enum IdRule {
    /// Chosen by the caller (AIP-122): 1-63 characters of lower-case letters, digits and `-`,
    /// starting with a letter, not ending with `-`.
    UserChosen,
    /// Assigned by the server: a time-ordered UUIDv7 in its 32-hex-digit simple form — or any
    /// id a caller could have chosen, for resources that accept both.
    ServerAssigned,
    /// Any non-empty segment; the service checks it further (a USCC, a year, a number).
    Any,
    /// A service's own rule (kept where a released contract already fixed the id's form).
    Custom(fn(&str) -> bool),
}

impl IdRule {
    /// Whether `id` is formed by this rule.
    pub fn admits(self, id: &str) -> bool {
        match self {
            IdRule::UserChosen => user_chosen(id),
            IdRule::ServerAssigned => {
                (id.len() == 32
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
                    || user_chosen(id)
            }
            IdRule::Any => !id.is_empty(),
            IdRule::Custom(admits) => admits(id),
        }
    }
}

fn user_chosen(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && id.len() <= 63
        && !id.ends_with('-')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The violation of `field` for a name that does not fit `pattern`: `REQUIRED` when empty,
/// `INVALID_RESOURCE_NAME` otherwise.
pub fn bad_name(raw: &str, pattern: &str, field: &str) -> FieldViolation {
    FieldViolation::new(
        field,
        if raw.is_empty() {
            "REQUIRED"
        } else {
            "INVALID_RESOURCE_NAME"
        },
        format!("expected {pattern}, got {}", echo(raw)),
    )
}

/// The variable segments of `raw` under `pattern`, in order, each admitted by `rule`.
pub fn segments<'a>(
    raw: &'a str,
    pattern: &str,
    field: &str,
    rule: IdRule,
) -> Result<Vec<&'a str>, FieldViolation> {
    let expected: Vec<&str> = pattern.split('/').collect();
    let got: Vec<&str> = raw.split('/').collect();
    if expected.len() != got.len() {
        return Err(bad_name(raw, pattern, field));
    }
    let mut out = Vec::with_capacity(expected.len() / 2);
    for (want, have) in expected.iter().zip(&got) {
        if want.starts_with('{') && want.ends_with('}') {
            if !rule.admits(have) {
                return Err(bad_name(raw, pattern, field));
            }
            out.push(*have);
        } else if want != have {
            return Err(bad_name(raw, pattern, field));
        }
    }
    Ok(out)
}

/// The one variable of a single-variable `pattern` (`achievements/{achievement}`).
pub fn single<'a>(
    raw: &'a str,
    pattern: &str,
    field: &str,
    rule: IdRule,
) -> Result<&'a str, FieldViolation> {
    match segments(raw, pattern, field, rule)?.as_slice() {
        [one] => Ok(one),
        _ => Err(bad_name(raw, pattern, field)),
    }
}

/// Declares a typed id of a top-level resource: a newtype with a private field that only
/// [`parse_name`](#) (from a resource name) or `parse_id` (from a bare id) can build, so a
/// handler holding one knows it is well formed.
///
/// ```ignore
/// qilu_common::resource_id! {
///     /// An achievement's id, from `achievements/{achievement}`.
///     pub struct AchievementId = "achievements/{achievement}", IdRule::ServerAssigned;
/// }
/// ```
#[macro_export]
macro_rules! resource_id {
    ($(#[$meta:meta])* $vis:vis struct $id:ident = $pattern:literal, $rule:expr;) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis struct $id(String);

        impl $id {
            /// The name template this id is read from.
            pub const PATTERN: &'static str = $pattern;

            /// The id in a resource name, or the violation of `field`.
            pub fn parse_name(raw: &str, field: &str) -> ::std::result::Result<Self, $crate::FieldViolation> {
                $crate::input::name::single(raw, $pattern, field, $rule)
                    .map(|id| $id(id.to_string()))
            }

            /// A bare id (e.g. a `*_id` field of a Create request), or the violation of `field`.
            pub fn parse_id(raw: &str, field: &str) -> ::std::result::Result<Self, $crate::FieldViolation> {
                if $rule.admits(raw) {
                    Ok($id(raw.to_string()))
                } else {
                    Err($crate::FieldViolation::new(
                        field,
                        if raw.is_empty() { "REQUIRED" } else { "INVALID_ID" },
                        format!(
                            "expected 1-63 lower-case letters, digits or '-', got {}",
                            $crate::limits::echo(raw)
                        ),
                    ))
                }
            }

            /// An id read back from this service's own storage (trusted, not re-checked).
            pub fn from_stored(id: impl Into<String>) -> Self {
                $id(id.into())
            }

            /// The bare id.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The resource name.
            pub fn name(&self) -> String {
                let (head, _) = $pattern.split_once('{').unwrap_or(($pattern, ""));
                format!("{head}{}", self.0)
            }
        }

        impl ::std::fmt::Display for $id {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::resource_id! {
        /// A test id.
        pub struct ProgramId = "programs/{program}", IdRule::UserChosen;
    }

    #[test]
    fn names_fit_their_pattern_or_say_what_was_expected() {
        let p = "programs/{program}/applications/{application}";
        assert_eq!(
            segments(
                "programs/p-1/applications/a2",
                p,
                "name",
                IdRule::UserChosen
            )
            .ok(),
            Some(vec!["p-1", "a2"])
        );
        for bad in [
            "",
            "programs/p-1",
            "programs//applications/a",
            "programs/P/applications/a",
            "programs/p/apps/a",
            "programs/p/applications/a/x",
        ] {
            let v = segments(bad, p, "name", IdRule::UserChosen).err();
            let reason = if bad.is_empty() {
                "REQUIRED"
            } else {
                "INVALID_RESOURCE_NAME"
            };
            assert_eq!(v.map(|v| v.reason), Some(reason.to_string()), "{bad}");
        }
    }

    #[test]
    fn typed_ids_parse_from_names_and_print_them_back() {
        let id = ProgramId::parse_name("programs/green-2026", "parent").ok();
        assert_eq!(id.as_ref().map(ProgramId::as_str), Some("green-2026"));
        assert_eq!(id.map(|i| i.name()).as_deref(), Some("programs/green-2026"));
        assert!(ProgramId::parse_name("programs/Green", "parent").is_err());
        assert!(ProgramId::parse_id("-x", "program_id").is_err());
        assert_eq!(ProgramId::from_stored("p").name(), "programs/p");
        assert_eq!(ProgramId::PATTERN, "programs/{program}");
    }

    #[test]
    fn server_ids_are_uuid_hex_or_chosen_ids() {
        assert!(IdRule::ServerAssigned.admits("0192f0c2a3b47c2e9a1b2c3d4e5f6a7b"));
        assert!(IdRule::ServerAssigned.admits("my-achievement"));
        assert!(!IdRule::ServerAssigned.admits("0192F0C2A3B47C2E9A1B2C3D4E5F6A7B"));
    }
}
