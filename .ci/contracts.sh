#!/usr/bin/env bash
# Contract compatibility (called by .ci/run): `buf breaking` of proto/ against the newest released
# contract image in releases/ (docs/releasing.md). A breaking change fails unless CHANGELOG.md's
# Unreleased section has a "### Breaking" entry that announces it (docs/compatibility.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BUF="${BUF:-${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}/venv/bin/buf}"

against="$(ls releases/v*-proto.binpb | sort -V | tail -n 1)"
echo "contracts checked against $against"
if out="$(cd proto && "$BUF" breaking --against "../$against" 2>&1)"; then
  echo "buf breaking: no breaking change since $(basename "$against" -proto.binpb)"
  exit 0
fi
echo "$out"
# The Unreleased section: from its heading to the next release heading.
unreleased="$(awk '/^## \[Unreleased\]/{on=1; next} /^## \[/{on=0} on' CHANGELOG.md)"
if grep -q '^### Breaking' <<<"$unreleased"; then
  echo "buf breaking: the changes above are announced under Breaking in CHANGELOG.md; accepted"
  exit 0
fi
echo "buf breaking: the contract change above breaks clients of $(basename "$against" -proto.binpb);" \
  "undo it, or announce it under '### Breaking' in CHANGELOG.md's Unreleased section" >&2
exit 1
