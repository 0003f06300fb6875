#!/usr/bin/env bash
# Monitoring checks, called by .ci/checks-deploy.sh; runnable on its own from the repository:
#   1. promtool (Debian's `prometheus` package; installed with apt-get when missing, as root):
#      `check rules` on deploy/prometheus/alerts.yml, `check config` on
#      deploy/prometheus/prometheus.yml and on deploy/k8s/prometheus-scrape.yml, and
#      `test rules` on deploy/prometheus/alerts_test.yml
#   2. deploy/k8s/monitoring.yaml is up to date with the files it carries (monitoring.py --check)
#   3. a `qilu dev` with metrics on, after calls over gRPC and HTTP/JSON (reads, a write, a
#      refusal): its /metrics passes `promtool check metrics` with no problem at all, exports
#      every metric README lists, and the dashboard (deploy/grafana/qilu.json: valid JSON, fixed
#      uid, `datasource` variable of type prometheus) and the alert rules query only metric names
#      that scrape has (plus Prometheus's own `up`)
#   QILU_BIN  a built `qilu` (default: `cargo build -p qilu-cli`, then that binary)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "FAILED: $*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }

step "promtool (Debian package prometheus)"
if ! command -v promtool >/dev/null; then
  [ "$(id -u)" = 0 ] || fail "promtool missing: apt-get install prometheus (as root)"
  # The package's service is not started in a container without an init system.
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }
fi
promtool --version 2>&1 | head -1

step "promtool check rules / check config / test rules"
promtool check rules deploy/prometheus/alerts.yml
promtool check config deploy/prometheus/prometheus.yml
promtool test rules deploy/prometheus/alerts_test.yml
# shellcheck source=../tests/clients/dev_server.sh
source tests/clients/dev_server.sh
work="$(mktemp -d "${TMPDIR:-/tmp}/qilu-monitoring-XXXXXX")"
cleanup() {
  local rc=$?
  dev_stop || rc=1
  [ "$rc" -eq 0 ] || dev_log_tail
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
# Debian builds promtool without Kubernetes service discovery: check the Kubernetes scrape
# configuration with a static target in place of its discovery (relabelling and the rule file
# are checked as written).
mkdir "$work/k8s"
cp deploy/prometheus/alerts.yml "$work/k8s/alerts.yml"
python3 - deploy/k8s/prometheus-scrape.yml "$work/k8s/prometheus.yml" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
for job in config["scrape_configs"]:
    if not job.pop("kubernetes_sd_configs", None):
        sys.exit(f"{sys.argv[1]}: job {job['job_name']} has no kubernetes_sd_configs")
    job["static_configs"] = [{"targets": ["pod.invalid:9464"]}]
yaml.safe_dump(config, open(sys.argv[2], "w"))
PY
promtool check config "$work/k8s/prometheus.yml"

step "deploy/k8s/monitoring.yaml carries the current files"
python3 deploy/k8s/monitoring.py --check

step "qilu dev /metrics: promtool check metrics, dashboard and rule queries"
dev_bin "$PWD"
mport="$(dev_free_port)"
QILU__METRICS__ADDR="127.0.0.1:$mport" dev_start "$work"
token="$("$QILU_BIN" token --role officer)"
base="$DEV_URL"
auth="authorization: Bearer $token"
dev_wait_http "$token"
# HTTP/JSON: a write (group commit), a read, a refusal (NOT_FOUND).
status() { curl -s -o /dev/null -w '%{http_code}' -H "$auth" "$@"; }
[ "$(status -H 'content-type: application/json' \
  -d '{"uscc": "91350100M000100Y43", "displayName": "福建示例科技有限公司", "establishedDate": "2012-03-01"}' \
  "$base/v1/enterprises")" = 200 ] || fail "HTTP/JSON CreateEnterprise"
[ "$(status "$base/v1/enterprises/91350100M000100Y43")" = 200 ] || fail "HTTP/JSON GetEnterprise"
[ "$(status "$base/v1/enterprises/91370102MA9400015C")" = 404 ] || fail "HTTP/JSON GetEnterprise of a missing enterprise"
# gRPC, through the CLI.
"$QILU_BIN" --addr "$base" --token "$token" enterprises get 91350100M000100Y43 >/dev/null \
  || fail "gRPC GetEnterprise"
"$QILU_BIN" --addr "$base" --token "$token" enterprises list >/dev/null || fail "gRPC ListEnterprises"
# The pool sampler reads every second.
sleep 2
curl -sf "http://127.0.0.1:$mport/metrics" >"$work/metrics.txt" || fail "no /metrics on 127.0.0.1:$mport"
echo "scraped $(grep -c '^[a-z]' "$work/metrics.txt") samples from qilu dev"
problems="$(promtool check metrics <"$work/metrics.txt" 2>&1)" || true
[ -z "$problems" ] || fail "promtool check metrics:
$problems"
echo "promtool check metrics: no problems"
python3 - "$work/metrics.txt" README.md deploy/grafana/qilu.json deploy/prometheus/alerts.yml <<'PY'
import json, re, sys, yaml
metrics_path, readme_path, dashboard_path, rules_path = sys.argv[1:]
problems = []
scraped = set()
families = set()
for line in open(metrics_path, encoding="utf-8"):
    if line.startswith("# TYPE "):
        families.add(line.split()[2])
    elif line.strip() and not line.startswith("#"):
        scraped.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
# Every metric README's table lists is exported (after these calls).
readme = open(readme_path, encoding="utf-8").read()
table = readme[readme.index("| metric | kind | labels |"):]
listed = re.findall(r"^\| `(qilu_[a-z0-9_]+)` \|", table[:table.index("\n\n")], re.M)
for name in listed:
    if name not in families:
        problems.append(f"README lists {name}, /metrics has no such family")
for name in sorted(f for f in families if f.startswith("qilu_")):
    if name not in listed:
        problems.append(f"/metrics exports {name}, README's metrics table does not list it")
known = scraped | {"up"}
# A selector is a name followed by `{` or `[`; every qilu_ name must be known as well.
def check_expr(where, expr):
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and regexes are not names
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", expr))
    names |= set(re.findall(r"\b(qilu_[a-zA-Z0-9_]+)", expr))
    names -= {"by", "without", "on", "ignoring"}
    for n in sorted(names - known):
        problems.append(f"{where}: queries {n}, which qilu dev does not export")
    if not names:
        problems.append(f"{where}: no metric in {expr!r}")
dash = json.load(open(dashboard_path, encoding="utf-8"))
if dash.get("uid") != "qilu-overview":
    problems.append(f"dashboard uid must stay qilu-overview, is {dash.get('uid')!r}")
ds = [v for v in dash.get("templating", {}).get("list", []) if v.get("name") == "datasource"]
if not (ds and ds[0].get("type") == "datasource" and ds[0].get("query") == "prometheus"):
    problems.append("dashboard needs a `datasource` template variable of type prometheus")
panels = [p for p in dash["panels"] if p["type"] != "row"]
ids = [p["id"] for p in dash["panels"]]
if len(ids) != len(set(ids)):
    problems.append("dashboard panel ids repeat")
for v in dash["templating"]["list"]:
    if v.get("type") == "query":
        check_expr(f"variable {v['name']}", v["definition"])
queries = 0
for p in panels:
    if p.get("datasource", {}).get("uid") != "${datasource}":
        problems.append(f"panel {p['title']!r}: datasource must be ${{datasource}}")
    for t in p.get("targets", []):
        queries += 1
        check_expr(f"panel {p['title']!r} {t['refId']}", t["expr"])
rules = 0
for g in yaml.safe_load(open(rules_path))["groups"]:
    for r in g["rules"]:
        rules += 1
        check_expr(f"rule {r.get('alert') or r.get('record')}", r["expr"])
for p in problems:
    print("monitoring:", p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"/metrics: {len(families)} families, README's {len(listed)} qilu metrics all exported; "
      f"dashboard {dash['uid']}: {len(panels)} panels, {queries} queries; {rules} alert rules: "
      "every metric they query is exported")
PY
echo
echo "monitoring checks: all green"
