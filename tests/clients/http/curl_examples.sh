#!/usr/bin/env bash
# Runs README.md's `curl` examples ("HTTP/JSON and grpc-web") exactly as written against a fresh
# `qilu dev`, and checks what each returns. The examples are the ```sh block after the comment
# that names this script; each group of lines (separated by a blank line) is one example, run in
# this shell in order (so ETAG and OP carry over), with `curl` wrapped to report every call's
# HTTP status on stderr. Every status of a group must be the one after the last "→" in its
# comment, and its output must pass the check below of the same number. No jq: python3 reads JSON.
# Called by .ci/checks-deploy.sh; runnable on its own from anywhere.
#   QILU_BIN  a built `qilu` (default: `cargo build -p qilu-cli` here, then that binary)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
readme="$root/README.md"

# What each example must print, as a Python expression over `body` (its stdout), `j` (stdout as
# JSON, or None) and `lines` (stdout as NDJSON, or None). One per example, in README order.
checks=(
  'j["name"] == "enterprises/91350100M000100Y43" and j["displayName"] == "福建示例科技有限公司"'
  'j["name"] == "enterprises/91350100M000100Y43" and j["establishedDate"] == "2012-03-01"'
  '[e["name"] for e in j["enterprises"]] == ["enterprises/91350100M000100Y43"]'
  'j["displayName"] == "福建示例新材料科技有限公司"'
  'j["code"] == 3 and any(d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" and d["domain"] == "qilu.gov.cn" for d in j["details"]) and {(v["field"], v["reason"]) for d in j["details"] if d["@type"] == "type.googleapis.com/google.rpc.BadRequest" for v in d["fieldViolations"]} == {("enterprise.uscc", "INVALID_CHECKSUM")}'
  'j["receivedCount"] == "2" and j["createdCount"] == "2" and j.get("rejectedCount", "0") == "0"'
  '[(c["resource"], c["kind"]) for l in lines for c in l.get("changes", [])] == [("enterprises/91350100M000100Y43", "CHANGE_KIND_CREATED"), ("enterprises/91350100M000100Y43", "CHANGE_KIND_UPDATED"), ("enterprises/91370102MA9400015C", "CHANGE_KIND_CREATED"), ("enterprises/91370112MA9400023N", "CHANGE_KIND_CREATED")]'
  'body.strip().startswith("operations/awards-") and len(body.split()) == 1'
  'j["name"].startswith("operations/awards-") and j["metadata"]["@type"] == "type.googleapis.com/qilu.awards.v1.AllocationProgress" and j["metadata"]["program"] == "programs/progress-2026"'
)

fail() { echo "FAILED: $*" >&2; exit 1; }

# shellcheck source=../dev_server.sh
source "$root/tests/clients/dev_server.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/qilu-curl-XXXXXX")"
cleanup() {
  local rc=$?
  dev_stop || rc=1
  [ "$rc" -eq 0 ] || dev_log_tail
  rm -rf "$work"
  echo "curl examples: $([ "$rc" -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed")"
  exit "$rc"
}
trap cleanup EXIT

# The examples, one file per group: group-N.sh, and group-N.status with the expected status.
python3 - "$readme" "$work" "${#checks[@]}" <<'PY'
import re, sys
readme, work, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(readme, encoding="utf-8").read()
marker = text.find("tests/clients/http/curl_examples.sh")
start = text.find("```sh\n", marker)
if marker < 0 or start < 0:
    sys.exit(f"{readme}: no ```sh block after a comment naming tests/clients/http/curl_examples.sh")
block = text[start + 6:text.index("\n```", start)]
groups = [g for g in re.split(r"\n\s*\n", block) if g.strip()]
if len(groups) != want:
    sys.exit(f"README has {len(groups)} curl examples, the script checks {want}: edit both together")
for n, g in enumerate(groups, 1):
    comment = " ".join(l for l in g.splitlines() if l.startswith("#"))
    status = re.findall(r"→ (\d{3})", comment)
    if not status:
        sys.exit(f"README curl example {n} has no '→ STATUS' in its comment:\n{g}")
    open(f"{work}/group-{n}.sh", "w", encoding="utf-8").write(g + "\n")
    open(f"{work}/group-{n}.status", "w").write(status[-1])
print(f"README: {len(groups)} curl examples")
PY

dev_bin "$root"
dev_start "$work"
export QILU="$DEV_URL"
QILU_TOKEN="$("$QILU_BIN" token --role officer)"
QILU_ADMIN_TOKEN="$("$QILU_BIN" token --role admin)"
export QILU_TOKEN QILU_ADMIN_TOKEN
echo "curl $(command curl --version | awk 'NR == 1 {print $2}') vs qilu dev on $DEV_ADDR"
dev_wait_http "$QILU_TOKEN"

# Every call's HTTP status goes to stderr; the examples' own output is untouched.
curl() { command curl --write-out '%{stderr}curl-http-status %{http_code}\n' "$@"; }

for n in $(seq 1 "${#checks[@]}"); do
  want="$(cat "$work/group-$n.status")"
  title="$(sed -n '1{s/^# //;s/ → [0-9]\{3\}$//;p}' "$work/group-$n.sh")"
  set +e
  # shellcheck disable=SC1090  # the README's example, as written
  source "$work/group-$n.sh" >"$work/out-$n" 2>"$work/err-$n"
  rc=$?
  set -e
  # --max-time ends the change stream on purpose (curl exit 28, "operation timed out").
  if [ "$rc" -ne 0 ] && ! { [ "$rc" -eq 28 ] && grep -q -- '--max-time' "$work/group-$n.sh"; }; then
    fail "example $n ($title) exited $rc: $(cat "$work/err-$n")"
  fi
  got="$(sed -n 's/^curl-http-status //p' "$work/err-$n" | sort -u | paste -sd' ')"
  [ "$got" = "$want" ] || fail "example $n ($title): HTTP status $got, README says $want; output: $(head -c 2000 "$work/out-$n")"
  python3 - "$work/out-$n" "${checks[$((n - 1))]}" <<'PY' || fail "example $n ($title): output does not pass: ${checks[$((n - 1))]}"
import json, sys
body = open(sys.argv[1], encoding="utf-8").read()
try:
    j = json.loads(body)
except ValueError:
    j = None
try:
    lines = [json.loads(l) for l in body.splitlines() if l.strip()]
except ValueError:
    lines = None
try:
    ok = eval(sys.argv[2])
except Exception as e:  # a missing key is a failed check, said plainly
    ok, why = False, f"{type(e).__name__}: {e}"
else:
    why = "false"
if not ok:
    print(f"check {why}; output:\n{body[:2000]}", file=sys.stderr)
    sys.exit(1)
PY
  echo "  - $n. $title: HTTP $got, output checked"
done

# The error JSON that README shows after the examples is what example 5 printed.
python3 - "$readme" "$work/out-5" <<'PY' || fail "README's error JSON (after 'The error above reads') differs from example 5's output: $(cat "$work/out-5")"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
start = text.index("```json\n", text.index("The error above reads")) + 8
shown = json.loads(text[start:text.index("\n```", start)])
sys.exit(0 if shown == json.load(open(sys.argv[2], encoding="utf-8")) else 1)
PY
echo "  - README's error JSON equals example 5's output"

# Beyond the README: the operation finishes, with the Allocation as its response.
for _ in $(seq 1 60); do
  command curl -s -H "authorization: Bearer $QILU_ADMIN_TOKEN" "$QILU/v1/$OP" >"$work/op.json"
  grep -q '"done":true' "$work/op.json" && break
  sleep 0.5
done
python3 - "$work/op.json" <<'PY' || fail "operation $OP did not finish with an Allocation: $(cat "$work/op.json")"
import json, sys
op = json.load(open(sys.argv[1]))
assert op.get("done") and op["response"]["@type"] == "type.googleapis.com/qilu.awards.v1.Allocation", op
PY
echo "  - $OP done: response is the Allocation of programs/progress-2026"
