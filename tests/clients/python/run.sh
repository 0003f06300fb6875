#!/usr/bin/env bash
# Generates the Python client from proto/ (generate.sh) and runs dev_scenario.py against
# `qilu dev`. Called by .ci/checks-deploy.sh; runnable on its own from anywhere.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${QILU_PY_VENV:-${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}/py-client}"
gen="${QILU_PY_GEN:-$here/gen}"
QILU_PY_VENV="$venv" "$here/generate.sh" "$gen"
QILU_PY_GEN="$gen" "$venv/bin/python" "$here/dev_scenario.py"
