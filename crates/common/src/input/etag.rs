//! Etags (AIP-154): opaque, different for every version of a resource, checked in one place.

use crate::error::ApiError;

/// The etag of `version` of the resource named `name`. Not a security token: it only has to
/// differ between versions and look opaque (FNV-1a over the name and the version).
pub fn etag_of(name: &str, version: i64) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(version.to_le_bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// A stale etag (when the caller sent one) is `ABORTED`: the resource changed since it was read.
pub fn check_etag(given: &str, name: &str, version: i64) -> Result<(), ApiError> {
    check_current(given, &etag_of(name, version), name)
}

/// [`check_etag`] against the resource's `current` etag, for a resource whose released etags
/// are not `etag_of(name, version)` (changing them would make every etag a client holds stale).
pub fn check_current(given: &str, current: &str, name: &str) -> Result<(), ApiError> {
    if !given.is_empty() && given != current {
        return Err(ApiError::Aborted(format!(
            "{name} changed since etag {} was read; read it again and retry",
            crate::limits::preview(given)
        )));
    }
    Ok(())
}

/// A lost optimistic-concurrency race (`UPDATE … WHERE version = ?` touched no row): `ABORTED`.
pub fn concurrent(name: &str) -> ApiError {
    ApiError::Aborted(format!("{name} changed concurrently; retry"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_differ_by_version_and_name_and_stale_ones_abort() {
        assert_ne!(etag_of("zones/jinan", 1), etag_of("zones/jinan", 2));
        assert_ne!(etag_of("zones/jinan", 1), etag_of("zones/qingdao", 1));
        assert_eq!(etag_of("zones/jinan", 1).len(), 16);
        assert!(check_etag("", "zones/jinan", 3).is_ok());
        assert!(check_etag(&etag_of("zones/jinan", 3), "zones/jinan", 3).is_ok());
        assert!(matches!(
            check_etag(&etag_of("zones/jinan", 2), "zones/jinan", 3),
            Err(ApiError::Aborted(_))
        ));
        assert!(check_current("abc", "abc", "enterprises/x").is_ok());
        assert!(check_current("", "abc", "enterprises/x").is_ok());
        assert!(check_current("abd", "abc", "enterprises/x").is_err());
    }
}
