#!/usr/bin/env bash
# Checks the Go template (buf.gen.yaml here) with Debian's Go toolchain and libraries, the only
# Go there is on Qilu's machines (no Go module proxy): `buf generate` with Debian's protoc-gen-go
# and protoc-gen-go-grpc, `go vet` of every generated package, then smoke/main.go built against
# them and run on `qilu dev` (create + read an enterprise, one BadRequest decoded).
# Debian bookworm has Go 1.19, protoc-gen-go 1.28.1, protoc-gen-go-grpc 1.0 (grpc-go 1.33) and a
# 2020 genproto, older than what `go install …@latest` gives, so this shows the template and
# the generated code are right, not that they work with today's module versions. Modules come
# from /usr/share/gocode in GOPATH mode. Debian's genproto predates
# cloud.google.com/go/longrunning/autogen/longrunningpb, the go_package of
# google/longrunning/operations.proto, so that package is generated here from the same proto.
# Installs the Debian packages when missing (needs root: CI runs as root). Called by
# .ci/checks-deploy.sh; runnable on its own.
#   BUF       buf 1.75.0 (default the one .ci/run installs: $QILU_TOOLS_DIR/venv/bin/buf)
#   QILU_BIN  a built `qilu` (default: `cargo build -p qilu-cli` here, then that binary)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tools="${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}"
buf="${BUF:-$tools/venv/bin/buf}"
packages=(golang-go protoc-gen-go protoc-gen-go-grpc golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  golang-google-grpc-dev golang-google-genproto-dev)

if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "check.sh: apt-get install ${packages[*]} needs root" >&2; exit 1; }
  apt-get update -qq
  # First the APIv2-backed github.com/golang/protobuf (1.5): Debian's grpc and genproto accept it
  # or 1.3, whose table unmarshaller panics on messages from protoc-gen-go 1.28.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-github-golang-protobuf-1-5-dev >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
echo "$(go version); protoc-gen-go $(protoc-gen-go --version | awk '{print $NF}'); protoc-gen-go-grpc $(protoc-gen-go-grpc --version | awk '{print $NF}')"
if [ ! -x "$buf" ]; then
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check 'buf-bin==1.75.0'
  buf="$tools/venv/bin/buf"
fi

# shellcheck source=../dev_server.sh
source "$root/tests/clients/dev_server.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/qilu-go-XXXXXX")"
cleanup() {
  local rc=$?
  dev_stop || rc=1
  [ "$rc" -eq 0 ] || dev_log_tail
  rm -rf "$work"
  echo "go client check: $([ "$rc" -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed")"
  exit "$rc"
}
trap cleanup EXIT

# The template's module path (its go_package_prefix less /gen/go) becomes a GOPATH folder.
prefix="$(sed -n 's/^ *value: \(.*\)\/gen\/go$/\1/p' "$here/buf.gen.yaml")"
[ -n "$prefix" ] || { echo "no go_package_prefix …/gen/go in $here/buf.gen.yaml" >&2; exit 1; }
module="$work/gopath/src/$prefix"
mkdir -p "$module"
(cd "$root" && "$buf" generate --template tests/clients/go/buf.gen.yaml -o "$module")
(cd "$root" && "$buf" generate proto --path proto/third_party/google/longrunning/operations.proto \
  --template '{"version":"v2","plugins":[{"local":"protoc-gen-go","out":"'"$work/gopath/src"'","opt":"paths=import"},{"local":"protoc-gen-go-grpc","out":"'"$work/gopath/src"'","opt":"paths=import"}]}')
echo "buf generate: $(find "$module/gen" -name '*.go' | wc -l) Go files under $prefix/gen/go"
mkdir -p "$module/cmd/smoke" && cp "$here/smoke/main.go" "$module/cmd/smoke/"

export GOPATH="$work/gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOCACHE="$tools/go-build-cache"
(cd "$module" && go vet ./... && go build -o "$work/smoke" ./cmd/smoke)
echo "go vet ./... and go build: clean ($(cd "$module" && go list ./... | wc -l) packages)"

dev_bin "$root"
dev_start "$work"
QILU_TOKEN="$("$QILU_BIN" token --role officer)" "$work/smoke" -addr "$DEV_ADDR"
