# Sourced (not run) by the client and deploy checks that need a running suite
# (tests/clients/http/curl_examples.sh, tests/clients/http/schemathesis.sh,
# tests/clients/go/check.sh, .ci/monitoring.sh): one way to find `qilu`, start `qilu dev` on a
# free port over a fresh data directory, wait until it serves, and stop it.
#
#   source "$root/tests/clients/dev_server.sh"
#   dev_bin "$root"                    # QILU_BIN: as given, or `cargo build -p qilu-cli` here
#   dev_start "$work" [ARGS…]          # qilu dev --addr … --data-dir "$work/data" ARGS…, log in
#                                      # "$work/dev.log"; sets DEV_PORT, DEV_ADDR, DEV_URL, dev_pid
#   dev_wait_http "$token"             # until HTTP/JSON answers (ValidateUscc), at most 300 s
#   dev_stop                           # SIGTERM; non-zero if qilu dev exited with an error
#   dev_log_tail                       # the log's last 40 lines, on stderr
#
# Environment for `qilu dev` itself (e.g. QILU__METRICS__ADDR) is passed by the caller as usual.

dev_pid=""

# QILU_BIN, or the dev-profile `qilu` built here.
dev_bin() {
  local root=$1 target
  if [ -z "${QILU_BIN:-}" ]; then
    (cd "$root" && cargo build --quiet --locked -p qilu-cli)
    target="$(cd "$root" && cargo metadata --format-version 1 --no-deps \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    QILU_BIN="$target/debug/qilu"
  fi
  export QILU_BIN
}

dev_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dev_start() {
  local work=$1
  shift
  DEV_PORT="$(dev_free_port)"
  DEV_ADDR="127.0.0.1:$DEV_PORT"
  DEV_URL="http://$DEV_ADDR"
  "$QILU_BIN" dev --addr "$DEV_ADDR" --data-dir "$work/data" "$@" >"$work/dev.log" 2>&1 &
  dev_pid=$!
  DEV_LOG="$work/dev.log"
}

dev_wait_http() {
  local token=$1 code=""
  for _ in $(seq 1 600); do
    if ! kill -0 "$dev_pid" 2>/dev/null; then
      echo "FAILED: qilu dev exited before serving" >&2
      dev_log_tail
      return 1
    fi
    code="$(command curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $token" \
      "$DEV_URL/v1/enterprises:validateUscc?uscc=91350100M000100Y43" || true)"
    [ "$code" = 200 ] && return 0
    sleep 0.5
  done
  echo "FAILED: qilu dev not serving HTTP/JSON after 300 s (last status $code)" >&2
  return 1
}

dev_stop() {
  local rc=0
  if [ -n "$dev_pid" ] && kill -0 "$dev_pid" 2>/dev/null; then
    kill -TERM "$dev_pid"
    wait "$dev_pid" || { rc=$?; echo "FAILED: qilu dev exited $rc after SIGTERM" >&2; }
  fi
  dev_pid=""
  return "$rc"
}

dev_log_tail() {
  if [ -n "${DEV_LOG:-}" ] && [ -f "$DEV_LOG" ]; then
    echo "--- qilu dev log (tail) ---" >&2
    tail -n 40 "$DEV_LOG" >&2
  fi
}
