#!/usr/bin/env bash
# Schemathesis (PyPI, pinned) against `qilu dev --demo` over HTTP/JSON, with an officer token
# (issue 19, item 5). Called by .ci/checks-deploy.sh; runs alone too:
#
#   bash tests/clients/http/schemathesis.sh            # ~3 minutes on 2 cores
#   QILU_ST_SEED=123 bash tests/clients/http/schemathesis.sh   # replay a run's seed
#
# What it does: builds `qilu` (dev profile), starts `qilu dev --demo` on a free port over a fresh
# SQLite data directory (the demo programme year gives the stateful phase real resources to
# walk), mints `qilu token --role officer`, then runs schemathesis on GET /openapi.json — the
# document the address serves — in four phases: examples, coverage (the schema's edge and
# negative cases), fuzzing (QILU_ST_EXAMPLES generated cases per operation, positive and
# negative) and stateful (links derived in schemathesis_hooks.py: Create/List -> Get, Update,
# Delete, custom methods, child collections), with the checks
#   not_a_server_error, status_code_conformance, content_type_conformance,
#   response_schema_conformance, and ndjson_schema_conformance (schemathesis_hooks.py: every
#   line of an NDJSON 200 against the operation's schema, which schemathesis itself skips).
# A 5xx, a status or content type the document does not list, or a body its schema refuses fails
# the step. Last line: `schemathesis: N passed, N failed` (operations), after a summary line with
# the figures (operations, test cases, stateful scenarios, failures, seed).
#
# Excluded, because a request/response test cannot test them:
#   - the three `…/changes:watch` feeds: a server stream that never ends while the server runs;
#     a call only ends at the client's timeout, so every case would be an error, not a check.
set -euo pipefail
cd "$(dirname "$0")/../../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/qilu-target}"
TOOLS="${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}"
ST_VERSION=4.32.5
VENV="$TOOLS/schemathesis-$ST_VERSION"
EXAMPLES="${QILU_ST_EXAMPLES:-20}"
SEED="${QILU_ST_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
t0=$SECONDS

if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "schemathesis==$ST_VERSION" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
  echo "schemathesis==$ST_VERSION" >"$VENV/.requirements"
fi
"$VENV/bin/st" --version

# shellcheck source=../dev_server.sh
source tests/clients/dev_server.sh
dev_bin "$PWD"
QILU="$QILU_BIN"
echo "schemathesis $ST_VERSION and qilu ready in $((SECONDS - t0)) s"

work="$(mktemp -d)"
t_dev=$SECONDS
dev_start "$work" --demo
addr="$DEV_ADDR"
trap 'dev_stop || true; rm -rf "$work"' EXIT

# The demo year is loaded through the public RPCs after the server starts: wait for it, so that
# the stateful phase has enterprises, programmes, achievements… to walk.
while [ $((SECONDS - t_dev)) -lt 600 ]; do
  grep -q '^Demo programme year loaded' "$work/dev.log" && break
  if ! kill -0 "$dev_pid" 2>/dev/null; then
    echo "qilu dev exited before the demo year was loaded" >&2; dev_log_tail; exit 1
  fi
  sleep 1
done
grep -q '^Demo programme year loaded' "$work/dev.log" || { echo "demo year not loaded in 600 s" >&2; dev_log_tail; exit 1; }
echo "qilu dev --demo on $addr: demo programme year loaded in $((SECONDS - t_dev)) s"

TOKEN="$("$QILU" token --role officer)"
report="$work/report"
t_st=$SECONDS
rc=0
here="$PWD/tests/clients/http"
# One worker: schemathesis's workers are threads, and Python 3.11.7's `ast` is not thread-safe
# ("AST constructor recursion depth mismatch" from Hypothesis describing a filter, seen once
# in an ad hoc run with two); a tool error would fail the step for nothing the API did.
(cd "$work" && SCHEMATHESIS_HOOKS="$here/schemathesis_hooks.py" \
"$VENV/bin/st" --config-file "$here/schemathesis.toml" run "http://$addr/openapi.json" \
  --url "http://$addr" \
  -H "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ndjson_schema_conformance \
  --exclude-path-regex ':watch$' \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --workers 1 \
  --request-timeout 20 \
  --generation-database none \
  --no-color \
  --report json --report-json-path "$report.json") \
  2>&1 | tee "$work/st.out" || rc=$?

if ! kill -0 "$dev_pid" 2>/dev/null; then
  echo "qilu dev died during the run" >&2; dev_log_tail; rc=1
elif grep -q 'panicked' "$work/dev.log"; then
  echo "qilu dev logged a panic during the run" >&2; grep -m5 -A3 'panicked' "$work/dev.log" >&2; rc=1
fi
[ "$rc" = 0 ] || dev_log_tail

python3 - "$report.json" "$rc" "$SEED" "$((SECONDS - t_st))" "$work/st.out" <<'PY'
import json, sys
import re
path, rc, seed, secs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
text = open(out, errors="replace").read()
scenarios = re.search(r"Scenarios:\s+(\d+)", text)
links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", text)
try:
    r = json.load(open(path))
except (OSError, ValueError) as e:
    print(f"schemathesis: no report ({e})")
    print("schemathesis: 0 passed, 1 failed")
    sys.exit(1)
ops, cases = r["operations"] or {"total": 0, "selected": 0, "tested": 0}, r["test_cases"]
failures = sum(f["count"] for f in r["failures"])
errors = sum(e["count"] for e in r["errors"])
failed_ops = sorted({op for f in r["failures"] for op in f["operations"]})
print(f"schemathesis {r['schemathesis_version']}: {ops['tested']} of {ops['total']} operations tested "
      f"({ops['total'] - ops['selected']} excluded: the :watch feeds), {cases['generated']} test cases, "
      f"{failures} failures in {len(failed_ops)} operations, {errors} errors; "
      f"stateful: {scenarios.group(1) if scenarios else 0} scenarios, "
      f"{links.group(1) if links else 0} of {links.group(2) if links else 0} links covered; "
      f"seed {seed}; {secs} s of testing")
for f in r["failures"]:
    print(f"  failure: {f['title']} ({f['count']}x): {', '.join(f['operations'])}")
for e in r["errors"]:
    print(f"  error: {e['title']} ({e['count']}x)")
failed = len(failed_ops) + (1 if errors or (rc != 0 and not failed_ops) else 0)
print(f"schemathesis: {max(0, ops['tested'] - len(failed_ops))} passed, {failed} failed")
sys.exit(0 if rc == 0 and failed == 0 else 1)
PY
