#!/usr/bin/env bash
# The generated TypeScript client against `qilu dev`: installs the pinned npm packages
# (package-lock.json, `npm ci`) into a cached folder, generates gen/ts from proto/ with buf
# (buf.gen.yaml; protoc-gen-es from those packages), type-checks it with tsc and runs
# dev_scenario.ts with tsx (grpc-web through Connect-ES, and HTTP/JSON through fetch).
# Called by .ci/checks-deploy.sh; runnable on its own from anywhere. Needs Node 20+ with npm,
# python3 (venv: buf from PyPI when it is not there yet) and the Rust toolchain.
#   QILU_TS_DEPS  the npm folder (default ${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}/ts-client);
#                 node_modules here is a symbolic link to its node_modules
#   BUF           buf 1.75.0 (default the one .ci/run installs: $QILU_TOOLS_DIR/venv/bin/buf)
#   QILU_BIN      a built `qilu` (default: `cargo build -p qilu-cli` here, then that binary)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tools="${QILU_TOOLS_DIR:-$HOME/.cache/qilu-tools}"
deps="${QILU_TS_DEPS:-$tools/ts-client}"
buf="${BUF:-$tools/venv/bin/buf}"

node --version | sed 's/^/node /'
# npm packages: exactly package-lock.json, reinstalled when it changes.
if ! cmp -s "$here/package-lock.json" "$deps/.installed-lock" 2>/dev/null; then
  rm -rf "$deps" && mkdir -p "$deps"
  cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$deps/"
  (cd "$deps" && npm ci --no-audit --no-fund)
  cp "$here/package-lock.json" "$deps/.installed-lock"
fi
if [ -e "$here/node_modules" ] && [ ! -L "$here/node_modules" ]; then
  echo "replacing $here/node_modules with a link to $deps/node_modules"
  rm -rf "$here/node_modules"
fi
ln -sfn "$deps/node_modules" "$here/node_modules"
bin="$deps/node_modules/.bin"

if [ ! -x "$buf" ]; then
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check 'buf-bin==1.75.0'
  buf="$tools/venv/bin/buf"
fi
rm -rf "$here/gen"
(cd "$root" && PATH="$bin:$PATH" "$buf" generate --template tests/clients/typescript/buf.gen.yaml -o "$here")
echo "generated $(find "$here/gen" -name '*_pb.ts' | wc -l) files into $here/gen/ts (protoc-gen-es $("$bin/protoc-gen-es" --version | awk '{print $NF}'))"
# README's TypeScript example (the ```ts block) is type-checked too, next to the generated code.
sed -n '/^```ts$/,/^```$/p' "$root/README.md" | sed '1d;$d' | sed 's|"\./gen/ts/|"./ts/|' >"$here/gen/readme_example.ts"
[ -s "$here/gen/readme_example.ts" ] || { echo "README.md has no \`\`\`ts block" >&2; exit 1; }
"$bin/tsc" -p "$here"
echo "tsc --noEmit: the scenario, README's example and the generated code type-check"

if [ -z "${QILU_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet --locked -p qilu-cli)
  target="$(cd "$root" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  export QILU_BIN="$target/debug/qilu"
fi
"$bin/tsx" "$here/dev_scenario.ts"
