//! Every bound Qilu puts on what a caller sends and on what an error sends back, in one place.
//! They are part of the API contract (README, "Calling it"): the same on every deployment, so a
//! client can rely on them. Configurable transport limits (message and header sizes) are in
//! `config.rs` (`server.*`).
//!
//! Why bounds at the edge: a list filter becomes an SQL expression that sea-query renders
//! recursively and SQLite and PostgreSQL parse recursively; 40,000 conjoined conditions overflow
//! the stack and abort the whole process. A 1 MB value echoed into an error makes trailers no
//! client accepts (the caller then sees RESOURCE_EXHAUSTED, not its real mistake). Each input is
//! checked against its bound before any work, and each echoed value is cut to a short preview.
//! This module never allocates in proportion to the input it refuses.

use crate::error::ApiError;

/// Longest `filter`, in bytes (UTF-8). Real filters are a few conditions long.
pub const MAX_FILTER_BYTES: usize = 2048;
/// Most conditions (`a = b`) one `filter` may conjoin with `AND`.
pub const MAX_FILTER_CONDITIONS: usize = 32;
/// Longest value in one filter condition, in characters: bounds a substring match
/// (`display_name:"…"`, a LIKE pattern) far below SQLite's LIKE pattern limit.
pub const MAX_FILTER_VALUE_CHARS: usize = 256;
/// Longest `order_by`, in bytes.
pub const MAX_ORDER_BY_BYTES: usize = 256;
/// Longest `page_token`, in bytes. Tokens this service issues are well under it.
pub const MAX_PAGE_TOKEN_BYTES: usize = 2048;

/// Longest preview of a caller's value echoed in an error message, in characters.
pub const MAX_ECHO_CHARS: usize = 64;
/// Longest resource name an error carries whole. Names of this API are far shorter.
pub const MAX_RESOURCE_NAME_CHARS: usize = 256;
/// Longest description of one field violation or precondition, in bytes (UTF-8).
pub const MAX_DESCRIPTION_BYTES: usize = 512;
/// Longest field path, reason or precondition subject in an error detail, in bytes.
pub const MAX_DETAIL_NAME_BYTES: usize = 128;
/// Most field violations (or precondition failures) one error lists; the rest are counted
/// ("and N more").
pub const MAX_VIOLATIONS: usize = 20;
/// Longest status message (`grpc-message`), in bytes (UTF-8, before percent-encoding).
pub const MAX_STATUS_MESSAGE_BYTES: usize = 512;
/// Largest encoded `google.rpc.Status` details (`grpc-status-details-bin`, before base64),
/// message included. With the message bound this keeps every error's trailers under 4 KiB, well
/// below the 8 KiB header-list limit of common clients.
pub const MAX_STATUS_DETAILS_BYTES: usize = 2048;

/// A caller's value as an error message shows it: quoted, and when longer than
/// [`MAX_ECHO_CHARS`], cut with an ellipsis and its full length, e.g. `"abc…" (5000 chars)`.
pub fn echo(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => {
            let preview = format!("{}…", &value[..cut]);
            format!("{preview:?} ({} chars)", value.chars().count())
        }
    }
}

/// A resource name in an error (`ResourceInfo`, "X not found", a precondition's subject): whole
/// up to [`MAX_RESOURCE_NAME_CHARS`], so every real name survives exactly; longer ones (only a
/// caller's invention) as their first characters, an ellipsis and the full length, e.g.
/// `enterprises/XXX… (5012 chars)`.
pub fn preview(value: &str) -> String {
    match value.char_indices().nth(MAX_RESOURCE_NAME_CHARS) {
        None => value.to_string(),
        Some(_) => {
            let cut = value
                .char_indices()
                .nth(MAX_ECHO_CHARS)
                .map_or(value.len(), |(i, _)| i);
            format!("{}… ({} chars)", &value[..cut], value.chars().count())
        }
    }
}

/// `text` cut to at most `max` characters, ending with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.char_indices().nth(max).is_none() {
        return text.to_string();
    }
    let cut = text
        .char_indices()
        .nth(max.saturating_sub(1))
        .map_or(0, |(i, _)| i);
    format!("{}…", &text[..cut])
}

/// `text` cut to at most `max` bytes on a character boundary, ending with `…` when cut.
pub fn shorten_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// Refuses `value` of `field` when it is longer than `max` bytes, naming the bound.
pub fn check_bytes(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.len() > max {
        return Err(ApiError::invalid(
            field,
            "TOO_LONG",
            format!(
                "{field} is {} bytes; at most {max} are accepted",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Checks an `order_by` against [`MAX_ORDER_BY_BYTES`]; every List calls it before parsing.
pub fn order_by(raw: &str) -> Result<&str, ApiError> {
    check_bytes("order_by", raw, MAX_ORDER_BY_BYTES)?;
    Ok(raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn short_values_echo_whole_and_long_ones_as_a_preview_with_their_length() {
        assert_eq!(echo("Jinan"), "\"Jinan\"");
        let long = "氢".repeat(5000);
        let shown = echo(&long);
        assert!(shown.ends_with("…\" (5000 chars)"), "{shown}");
        assert_eq!(shown.chars().filter(|c| *c == '氢').count(), MAX_ECHO_CHARS);
        let exact = "a".repeat(MAX_ECHO_CHARS);
        assert_eq!(echo(&exact), format!("{exact:?}"));
        assert_eq!(
            echo(&"a".repeat(MAX_ECHO_CHARS + 1)),
            format!("\"{}…\" (65 chars)", "a".repeat(64))
        );
    }

    #[test]
    fn real_resource_names_survive_whole_and_invented_ones_are_cut() {
        let real = "programs/awards-2024/applications/01a23707d980725494ee2947bdfe3041";
        assert_eq!(preview(real), real);
        let invented = format!("enterprises/{}", "X".repeat(5000));
        assert_eq!(
            preview(&invented),
            format!(
                "enterprises/{}… (5012 chars)",
                "X".repeat(MAX_ECHO_CHARS - 12)
            )
        );
    }

    #[test]
    fn shortening_respects_character_boundaries() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abcd", 4), "abcd");
        assert_eq!(shorten("abc", 4), "abc");
        let s = shorten_bytes(&"氢".repeat(100), 10);
        assert!(s.len() <= 10, "{s}");
        assert!(s.ends_with('…'));
        assert_eq!(shorten_bytes("short", 10), "short");
    }

    #[test]
    fn an_order_by_over_the_bound_is_refused_on_its_field() {
        assert!(order_by("issue_date desc").is_ok());
        let err = order_by(&"x".repeat(MAX_ORDER_BY_BYTES + 1)).unwrap_err();
        assert!(err.to_string().contains("order_by"));
    }
}
