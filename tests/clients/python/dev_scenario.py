"""The generated Python client against `qilu dev` (all three services on one port, SQLite).

Run by run.sh (which generates the client first). Starts
`cargo run -p qilu-cli -- dev --addr 127.0.0.1:<free port> --data-dir <tmp>`, mints an officer
token with `cargo run -p qilu-cli -- token --role officer`, then checks: health SERVING for each
service, reflection lists the services, create + read an enterprise, and one error with its
BadRequest field violation decoded from the rich status. Exits non-zero on the first failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc

import qilu_client as q

ROOT = os.path.abspath(os.path.join(q.HERE, "..", "..", ".."))
VALID_USCC = "91350100M000100Y43"
BAD_CHECK_DIGIT_USCC = "91350100M000100Y4Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cargo(*args: str) -> list[str]:
    return ["cargo", "run", "--quiet", "--locked", "-p", "qilu-cli", "--", *args]


def mint(role: str) -> str:
    out = subprocess.run(cargo("token", "--role", role), cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=300)
    return out.stdout.strip()


def scenario(addr: str) -> None:
    officer = mint("officer")
    auditor = mint("auditor")
    q.step("minted officer and auditor tokens with `qilu token`")
    with q.channel(addr) as chan:
        for service in q.SERVICES:
            status = q.health_status(chan, service)
            q.check(status == "SERVING", f"health of {service}: {status}")
        q.step("health: " + ", ".join(f"{s} SERVING" for s in q.SERVICES))

        listed = q.reflected_services(chan)
        for name in (*q.SERVICES, "grpc.health.v1.Health"):
            q.check(name in listed, f"reflection does not list {name}: {listed}")
        q.step(f"reflection lists {len(listed)} services: {', '.join(listed)}")

        created = q.create_enterprise(chan, officer, VALID_USCC, "福建示例科技有限公司")
        q.check(created.name == f"enterprises/{VALID_USCC}", f"created name {created.name!r}")
        got = q.get_enterprise(chan, officer, VALID_USCC)
        q.check(got.display_name == "福建示例科技有限公司" and got.etag == created.etag,
                f"read back {got}")
        q.step(f"created and read {got.name} ({got.display_name}, city={got.city or '-'}, "
               f"etag={got.etag})")

        try:
            q.create_enterprise(chan, officer, BAD_CHECK_DIGIT_USCC, "校验位错误有限公司")
            raise q.CheckFailed(f"CreateEnterprise accepted USCC {BAD_CHECK_DIGIT_USCC}")
        except grpc.RpcError as e:
            err = q.rich_error(e)
        q.check(err.code == grpc.StatusCode.INVALID_ARGUMENT, f"error code {err.code}")
        fields = [f for f, _ in err.field_violations]
        q.check("enterprise.uscc" in fields,
                f"no BadRequest violation on enterprise.uscc: {err}")
        q.step(f"{err.code.name}: BadRequest {err.field_violations} "
               f"(ErrorInfo {err.reason}@{err.domain}; details {err.detail_types})")

        _, verdict = q.audit(chan, auditor, q.REGISTRY)
        q.check(verdict.intact and verdict.events_checked >= 1, f"registry audit {verdict}")
        q.step(f"registry audit chain intact ({verdict.events_checked} events)")


def main() -> int:
    port = free_port()
    addr = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="qilu-pyclient-") as data:
        log_path = os.path.join(data, "dev.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cargo("dev", "--addr", addr, "--data-dir", data), cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT)
        ok = False
        try:
            print(f"python client vs qilu dev on {addr}")
            q.wait_serving(addr, "", deadline_s=300, proc=proc)
            scenario(addr)
            ok = True
        except (q.CheckFailed, grpc.RpcError, subprocess.SubprocessError) as e:
            print(f"FAILED: {e}", file=sys.stderr)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait()
                if code != 0:
                    print(f"FAILED: qilu dev exited {code} after SIGTERM", file=sys.stderr)
                    ok = False
            if not ok:
                with open(log_path) as f:
                    print("--- qilu dev log (tail) ---\n" + "".join(f.readlines()[-40:]),
                          file=sys.stderr)
    print("python client scenario: " + ("1 passed, 0 failed" if ok else "0 passed, 1 failed"))
    return 0 if ok else 1


if __name__ == "__main__":
    start = time.monotonic()
    rc = main()
    print(f"({time.monotonic() - start:.1f}s)")
    sys.exit(rc)
