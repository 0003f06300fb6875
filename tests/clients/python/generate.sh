#!/usr/bin/env bash
# Generates the Python client for every service from proto/ with grpcio-tools.
#   tests/clients/python/generate.sh [OUT_DIR]     (default: tests/clients/python/gen)
# Uses (and creates when missing) the virtualenv $QILU_PY_VENV, default
# ${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}/py-client, with requirements.txt installed.
# Only proto/qilu/** is generated: google/protobuf comes with grpcio-tools, and google/api +
# google/rpc come as ready-made modules with googleapis-common-protos (proto/third_party has
# the same field_behavior/resource files, used here only to resolve imports).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${1:-$here/gen}"
venv="${QILU_PY_VENV:-${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}/py-client}"
stamp="$venv/.requirements"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi
rm -rf "$out" && mkdir -p "$out"
mapfile -t protos < <(cd "$root/proto" && find qilu -name '*.proto' | sort)
(cd "$root/proto" && "$venv/bin/python" -m grpc_tools.protoc \
  -I . -I third_party \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  "${protos[@]}")
echo "generated ${#protos[@]} proto files into $out"
