#!/usr/bin/env bash
# OpenAPI lint (called by .ci/run): Redocly CLI from npm, pinned, installed once under the tools
# directory as buf is; lints openapi/qilu.openapi.json with the rules of redocly.yaml
# (recommended-strict: a warning fails too). The drift check (the committed document is what
# the protos give) is a Rust test, `cargo test -p qilu-common --test http openapi`; docs/http.md
# says how to regenerate.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}"
REDOCLY_VERSION="2.77.0"
dir="$TOOLS/redocly-$REDOCLY_VERSION"

if [ ! -x "$dir/node_modules/.bin/redocly" ]; then
  command -v npm >/dev/null || { echo "npm (Node.js >= 20.19) is needed for the OpenAPI lint" >&2; exit 1; }
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --silent "@redocly/cli@$REDOCLY_VERSION"
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
"$dir/node_modules/.bin/redocly" --version
"$dir/node_modules/.bin/redocly" lint --config redocly.yaml --max-problems 50
