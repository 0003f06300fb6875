#!/usr/bin/env bash
# Supply chain (called by .ci/run): cargo-deny over the whole dependency tree (licences, banned
# crates, sources: deny.toml), and CycloneDX SBOMs of the binaries (cargo-cyclonedx) and of the
# container image's packages (.ci/image-sbom.sh), written to $CARGO_TARGET_DIR/sbom/. Both tools are built once from crates.io into the tools cache. The
# RustSec advisory check needs the advisory database, which this CI machine cannot fetch:
# deny.toml says how a deployment runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/qilu-target}"
BIN="$TOOLS/cargo/bin"
DENY_VERSION=0.20.2
CYCLONEDX_VERSION=0.5.9

install() { # crate version binary [subcommand]
  if ! "$BIN/$3" ${4:-} --version 2>/dev/null | grep -q "$2"; then
    echo "installing $1 $2 (once; cached in $TOOLS/cargo)"
    # Its own target directory, so the workspace's build cache is not disturbed.
    CARGO_TARGET_DIR="$TOOLS/cargo-build" cargo install --quiet --locked "$1" --version "$2" --root "$TOOLS/cargo"
    rm -rf "$TOOLS/cargo-build"
  fi
  "$BIN/$3" ${4:-} --version
}

install cargo-deny "$DENY_VERSION" cargo-deny
"$BIN/cargo-deny" --log-level error check licenses bans sources

install cargo-cyclonedx "$CYCLONEDX_VERSION" cargo-cyclonedx cyclonedx
out="$CARGO_TARGET_DIR/sbom"
rm -rf "$out" && mkdir -p "$out"
# One SBOM per binary-producing package, describing its binaries and every crate linked into them.
"$BIN/cargo-cyclonedx" cyclonedx --quiet --format json --describe binaries --spec-version 1.5 \
  --no-build-deps --target "$(rustc -vV | sed -n 's/^host: //p')"
# cargo-cyclonedx writes next to each manifest (<binary>_bin.cdx.json); move them out of the tree.
find . -path ./target -prune -o -path ./.git -prune -o -name '*.cdx.json' -print | while read -r f; do
  mv "$f" "$out/"
done
# The container image's packages (the runtime base; deploy/Dockerfile installs none on top).
bash .ci/image-sbom.sh "$out/qilu-image-packages.cdx.json"
python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
files = sorted(out.glob("*.json"))
assert files, "no SBOM was written"
for f in files:
    bom = json.loads(f.read_text())
    assert bom.get("bomFormat") == "CycloneDX", f
    names = {c["name"] for c in bom.get("components", [])}
    print(f"{f.name}: CycloneDX {bom.get('specVersion')}, {len(names)} components")
PY
