//! AIP-158 pagination: `page_size` (default 50, at most 1000) and opaque page tokens that carry
//! the last key seen (keyset pagination, so a page never skips or repeats a row that existed
//! when the listing began) and a fingerprint of the query, so a token cannot be replayed with a
//! different filter or order.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::limits::{self, MAX_PAGE_TOKEN_BYTES};

/// Page size when the caller asks for none.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Largest page; larger requests are coerced down (AIP-158).
pub const MAX_PAGE_SIZE: u64 = 1000;

/// A parsed List request's paging part.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Rows to return.
    pub size: u64,
    after: Option<serde_json::Value>,
    fingerprint: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Token {
    /// Last key of the previous page.
    a: serde_json::Value,
    /// Query fingerprint.
    q: String,
}

impl PageRequest {
    /// Validates `page_size` and decodes `page_token` against the query (`filter`, `order_by`).
    pub fn parse(
        page_size: i32,
        page_token: &str,
        filter: &str,
        order_by: &str,
    ) -> Result<PageRequest, ApiError> {
        let size = match page_size {
            n if n < 0 => {
                return Err(ApiError::invalid(
                    "page_size",
                    "OUT_OF_RANGE",
                    "page_size must not be negative",
                ));
            }
            0 => DEFAULT_PAGE_SIZE,
            n => (n as u64).min(MAX_PAGE_SIZE),
        };
        limits::order_by(order_by)?;
        limits::check_bytes("page_token", page_token, MAX_PAGE_TOKEN_BYTES)?;
        let fingerprint = fingerprint(filter, order_by);
        let after = if page_token.is_empty() {
            None
        } else {
            let invalid = || {
                ApiError::invalid(
                    "page_token",
                    "INVALID_PAGE_TOKEN",
                    "page_token is not one this service issued",
                )
            };
            let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| invalid())?;
            let token: Token = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
            if token.q != fingerprint {
                return Err(ApiError::invalid(
                    "page_token",
                    "PAGE_TOKEN_QUERY_MISMATCH",
                    "page_token was issued for a different filter or order_by",
                ));
            }
            Some(token.a)
        };
        Ok(PageRequest {
            size,
            after,
            fingerprint,
        })
    }

    /// The last key of the previous page, if this is not the first page.
    pub fn after<K: DeserializeOwned>(&self) -> Result<Option<K>, ApiError> {
        match &self.after {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|_| {
                ApiError::invalid(
                    "page_token",
                    "INVALID_PAGE_TOKEN",
                    "page_token does not fit this listing",
                )
            }),
        }
    }

    /// The token for the page after the one ending at `last_key`.
    pub fn next_token<K: Serialize>(&self, last_key: &K) -> Result<String, ApiError> {
        let token = Token {
            a: serde_json::to_value(last_key).map_err(ApiError::internal)?,
            q: self.fingerprint.clone(),
        };
        let json = serde_json::to_vec(&token).map_err(ApiError::internal)?;
        Ok(URL_SAFE_NO_PAD.encode(json))
    }
}

fn fingerprint(filter: &str, order_by: &str) -> String {
    let mut h = Sha256::new();
    h.update(filter.trim().as_bytes());
    h.update([0]);
    h.update(order_by.trim().as_bytes());
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_cap_and_refuse_negative() {
        assert_eq!(PageRequest::parse(0, "", "", "").unwrap().size, 50);
        assert_eq!(PageRequest::parse(5000, "", "", "").unwrap().size, 1000);
        assert!(PageRequest::parse(-1, "", "", "").is_err());
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_the_query() {
        let p = PageRequest::parse(10, "", "city = \"Jinan\"", "").unwrap();
        let token = p.next_token(&"91350100M000100Y43").unwrap();
        let q = PageRequest::parse(10, &token, "city = \"Jinan\"", "").unwrap();
        assert_eq!(
            q.after::<String>().unwrap().as_deref(),
            Some("91350100M000100Y43")
        );
        assert!(PageRequest::parse(10, &token, "city = \"Qingdao\"", "").is_err());
        assert!(PageRequest::parse(10, "garbage!!", "", "").is_err());
    }

    #[test]
    fn oversized_tokens_and_orders_are_refused_before_decoding() {
        let long = "A".repeat(MAX_PAGE_TOKEN_BYTES + 1);
        let err = PageRequest::parse(10, &long, "", "").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid argument: page_token"),
            "{err}"
        );
        let err = PageRequest::parse(10, "", "", &long).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid argument: order_by"),
            "{err}"
        );
    }
}
