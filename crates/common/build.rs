//! Stamps the build with the commit it was built from, so `--version` of every binary says
//! exactly which source it runs: `QILU_COMMIT` when the builder sets it (container builds,
//! where `.git` is not in the context), else `git rev-parse` of the checkout, else `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=QILU_COMMIT");
    let commit = std::env::var("QILU_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=QILU_COMMIT={}", commit.trim());
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Rebuild when this file changes — only for files that exist: cargo reruns a build script
/// whose watched file is missing on every build, which would recompile everything after it.
fn watch(path: &str) {
    let path = PathBuf::from(path);
    let path = if path.is_absolute() {
        path
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    };
    if path.is_file() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // HEAD moves on a checkout; the branch's ref on a commit (loose or packed). `--git-path`
    // finds them in worktrees too.
    for name in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", name]) {
            watch(&p);
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &branch])
    {
        watch(&p);
    }
    Some(commit)
}
