//! Which Qilu this is: the release version (the workspace's, one for every crate and binary) and
//! the commit it was built from (`build.rs`). Every binary's `--version` prints [`LONG`]; the
//! server logs it at start.

/// The release version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binary was built from (12 hex digits), or `unknown`.
pub const COMMIT: &str = env!("QILU_COMMIT");

/// `0.1.0 (commit 3de42e4a1b2c)`: what `--version` prints.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("QILU_COMMIT"),
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_version_names_the_release_and_the_commit() {
        assert!(LONG.starts_with(VERSION));
        assert!(LONG.contains(COMMIT));
        assert!(!COMMIT.is_empty());
    }
}
