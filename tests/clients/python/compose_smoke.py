"""Compose-equivalent smoke test: deploy/docker-compose.yml without a Docker engine.

Input: the output of `docker-compose -f deploy/docker-compose.yml config` (all variables
interpolated). For every Qilu service in it (services with a `profiles:` entry are skipped, as
`docker compose up` skips them), this script runs the binary the service's Dockerfile target
starts, as a local process, with exactly the environment the container would get — the runtime
stage's `ENV` from deploy/Dockerfile overlaid by the service's compose `environment` — and
nothing else (no PATH, no HOME), in an empty working directory like the image's /app. Only
network locations are swapped for local ones, and every swap is printed:
  - a listen address `0.0.0.0:<port>` becomes `127.0.0.1:<free port>` for that service;
  - `<compose service>:<port>` in a URL becomes the local address of that service (`postgres`
    becomes the local PostgreSQL server);
  - database names get a unique prefix (databases are created from deploy/postgres-init.sql
    under that prefix, and dropped at the end).
Services start in the compose order: `depends_on` with service_completed_successfully waits for
a one-shot step (the `migrate` commands) to exit 0, service_healthy waits for the dependency's
own compose healthcheck command (`qilu-<svc> healthcheck`) to pass. Then one scenario runs
across the three services, then every service gets SIGTERM and must exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import grpc
import yaml

import qilu_client as q

VALID_USCC = "91350100M000100Y43"
SECRET_KEYS = ("SECRET", "PASSWORD", "TOKEN")
# scheme://[userinfo@]host:port[/path]
URL = re.compile(r"(\w+)://(?:([^@/]*)@)?([\w.-]+):(\d+)(/.*)?")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dockerfile_runtime_env(path: str) -> dict[str, str]:
    """`ENV` of the `runtime` stage (the one every service target builds on)."""
    text = open(path).read().replace("\\\n", " ")
    env: dict[str, str] = {}
    stage = None
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I)
        if m:
            stage = m.group(1)
            continue
        if stage == "runtime" and line.upper().startswith("ENV "):
            for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line[4:]):
                env[k] = v.strip('"')
    return env


def seconds(duration: str) -> float:
    """A compose duration (`30s`, `1m30s`, `500ms`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(duration))
    return sum(float(n) * units[u] for n, u in parts) or 10.0


def masked(key: str, value: str) -> str:
    if any(s in key for s in SECRET_KEYS):
        return "<secret>"
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", value)


class Smoke:
    def __init__(self, config: dict, dockerfile: str, init_sql: str, bin_dir: str,
                 pg_url: str) -> None:
        self.services = {n: s for n, s in config["services"].items() if not s.get("profiles")}
        self.all_services = config["services"]
        self.image_env = dockerfile_runtime_env(dockerfile)
        self.bin_dir = bin_dir
        pg = urllib.parse.urlsplit(pg_url)
        self.pg_host, self.pg_port = pg.hostname or "127.0.0.1", pg.port or 5432
        self.pg_url = pg_url
        self.prefix = f"qilu_smoke_{os.getpid()}_{secrets.token_hex(3)}_"
        self.databases = re.findall(r"CREATE\s+DATABASE\s+(\w+)", open(init_sql).read(), re.I)
        # Local address of each compose service's container port.
        self.local: dict[tuple[str, int], tuple[str, int]] = {}
        for name in self.services:
            if name == "postgres":
                self.local[(name, 5432)] = (self.pg_host, self.pg_port)
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, str] = {}
        self.workdir = tempfile.mkdtemp(prefix="qilu-compose-smoke-")
        self.healthy: set[str] = set()
        self.envs: dict[str, dict[str, str]] = {}
        self.completed: set[str] = set()

    # ---- environment ---------------------------------------------------------------------

    def target(self, name: str) -> str:
        return self.all_services[name]["build"]["target"]

    def binary(self, name: str) -> str:
        target = self.target(name)
        return os.path.join(self.bin_dir, "qilu" if target == "cli" else f"qilu-{target}")

    def port_for(self, owner: str, container_port: int) -> tuple[str, int]:
        """The local address standing in for `owner:container_port` (a migrate step shares its
        service's addresses; it never listens)."""
        owner = {n: self.target(n) for n in self.services if n != "postgres"}.get(owner, owner)
        key = (owner, container_port)
        if key not in self.local:
            self.local[key] = ("127.0.0.1", free_port())
        return self.local[key]

    def local_value(self, name: str, key: str, value: str) -> str:
        # A bind address: 0.0.0.0:<port> -> 127.0.0.1:<free port of this service>.
        m = re.fullmatch(r"0\.0\.0\.0:(\d+)", value)
        if m:
            host, port = self.port_for(name, int(m.group(1)))
            return f"{host}:{port}"
        # A URL whose host is a compose service.
        m = URL.fullmatch(value)
        if m and m.group(3) in self.all_services:
            scheme, userinfo, host, port, path = m.groups()
            lhost, lport = self.port_for(host, int(port))
            if host == "postgres" and path:
                path = "/" + self.prefix + path[1:]
            return f"{scheme}://{userinfo + '@' if userinfo else ''}{lhost}:{lport}{path or ''}"
        return value

    def environment(self, name: str) -> dict[str, str]:
        compose_env = {k: "" if v is None else str(v)
                       for k, v in (self.all_services[name].get("environment") or {}).items()}
        env = {**self.image_env, **compose_env}
        local = {k: self.local_value(name, k, v) for k, v in env.items()}
        for k, v in local.items():
            m = URL.fullmatch(v)
            q.check(not (m and m.group(3) in self.all_services),
                    f"{name}: {k} still points at a compose host: {masked(k, v)}")
        return local

    def show_environment(self, name: str, env: dict[str, str]) -> None:
        compose_env = {**self.image_env, **{k: str(v) for k, v in
                       (self.all_services[name].get("environment") or {}).items()}}
        print(f"    {name}: {len(env)} variables "
              f"({len(self.image_env)} from the Dockerfile ENV, the rest from compose)")
        for k in sorted(env):
            if env[k] != compose_env[k]:
                print(f"      {k}: {masked(k, compose_env[k])} -> {masked(k, env[k])}")

    # ---- processes -----------------------------------------------------------------------

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = os.path.join(self.workdir, f"{name}.log")
        self.logs[name] = log
        with open(log, "ab") as f:
            return subprocess.Popen([self.binary(name), *args], env=env, cwd=self.workdir,
                                    stdout=f, stderr=subprocess.STDOUT)

    def healthcheck(self, name: str, env: dict[str, str], deadline_s: float = 60.0) -> None:
        hc = self.all_services[name]["healthcheck"]
        test = hc["test"]
        q.check(test[0] == "CMD" and os.path.basename(test[1]) == os.path.basename(
            self.binary(name)), f"{name}: healthcheck {test} is not the service binary")
        end = time.monotonic() + deadline_s
        out = ""
        while time.monotonic() < end:
            proc = self.procs[name]
            q.check(proc.poll() is None, f"{name} exited with {proc.returncode} while starting")
            r = subprocess.run([self.binary(name), *test[2:]], env=env, cwd=self.workdir,
                               capture_output=True, text=True, timeout=10)
            out = (r.stdout + r.stderr).strip()
            if r.returncode == 0:
                q.step(f"{name}: `{' '.join(test[1:])}` -> {out}")
                return
            time.sleep(0.5)
        raise q.CheckFailed(f"{name}: healthcheck never passed: {out}")

    def ready(self, name: str) -> bool:
        for dep, cond in (self.all_services[name].get("depends_on") or {}).items():
            condition = cond.get("condition", "service_started")
            if dep == "postgres":
                continue  # the local server; checked by the caller
            if condition == "service_completed_successfully" and dep not in self.completed:
                return False
            if condition == "service_healthy" and dep not in self.healthy:
                return False
            if condition == "service_started" and dep not in self.procs:
                return False
        return True

    def start_all(self) -> None:
        pending = [n for n in self.services if n != "postgres"]
        while pending:
            runnable = [n for n in pending if self.ready(n)]
            q.check(bool(runnable), f"depends_on cannot be satisfied for {pending}")
            for name in runnable:
                pending.remove(name)
                env = self.environment(name)
                self.show_environment(name, env)
                command = self.all_services[name].get("command") or []
                if command:
                    # A one-shot step (restart: "no"): must finish with 0.
                    t = time.monotonic()
                    p = self.spawn(name, command, env)
                    code = p.wait(timeout=120)
                    q.check(code == 0, f"{name}: `{' '.join(command)}` exited {code}\n"
                            + self.tail(name))
                    self.completed.add(name)
                    q.step(f"{name}: `{os.path.basename(self.binary(name))} "
                           f"{' '.join(command)}` exited 0 ({time.monotonic() - t:.1f}s)")
                else:
                    self.procs[name] = self.spawn(name, [], env)
                    self.envs[name] = env
                    self.healthcheck(name, env)
                    self.healthy.add(name)

    def stop_all(self) -> list[str]:
        problems = []
        for name, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in self.procs.items():
            t = time.monotonic()
            try:
                code = p.wait(timeout=seconds(
                    self.all_services[name].get("stop_grace_period", "10s")))
            except subprocess.TimeoutExpired:
                p.kill()
                code = p.wait()
                problems.append(f"{name} did not stop within its stop_grace_period")
            if code != 0:
                problems.append(f"{name} exited {code} after SIGTERM\n" + self.tail(name))
            else:
                q.step(f"{name}: SIGTERM -> exit 0 ({time.monotonic() - t:.1f}s)")
        return problems

    def tail(self, name: str, n: int = 30) -> str:
        try:
            with open(self.logs[name], errors="replace") as f:
                return f"--- {name} log (tail) ---\n" + "".join(f.readlines()[-n:])
        except (KeyError, OSError):
            return ""

    def check_json_logs(self) -> None:
        """QILU__TELEMETRY__FORMAT=json: every log line a container writes is one JSON object."""
        for name, path in self.logs.items():
            with open(path, errors="replace") as f:
                lines = [line for line in f.read().splitlines() if line.strip()]
            bad = []
            for line in lines:
                try:
                    json.loads(line)
                except ValueError:
                    bad.append(line)
            if bad:
                raise q.CheckFailed(f"{name}: {len(bad)} log lines are not JSON, e.g. {bad[0]!r}")
        q.step(f"logs: every line of {len(self.logs)} processes is JSON")

    # ---- databases -----------------------------------------------------------------------

    def psql(self, sql: str) -> None:
        subprocess.run(["psql", self.pg_url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
                       check=True, capture_output=True, text=True, timeout=60)

    def create_databases(self) -> None:
        q.check(bool(self.databases), "no CREATE DATABASE in postgres-init.sql")
        for db in self.databases:
            self.psql(f'CREATE DATABASE "{self.prefix}{db}"')
        q.step(f"postgres-init.sql: created {', '.join(self.prefix + d for d in self.databases)}")

    def drop_databases(self) -> None:
        for db in self.databases:
            try:
                self.psql(f'DROP DATABASE IF EXISTS "{self.prefix}{db}" WITH (FORCE)')
            except subprocess.CalledProcessError as e:
                print(f"warning: could not drop {self.prefix}{db}: {e.stderr}", file=sys.stderr)

    # ---- the scenario --------------------------------------------------------------------

    def token(self, role: str) -> str:
        # `qilu token` as the compose `cli` service (profile tools) would run it.
        env = self.environment("cli")
        r = subprocess.run([self.binary("cli"), "token", "--role", role], env=env,
                           cwd=self.workdir, capture_output=True, text=True, timeout=30)
        q.check(r.returncode == 0, f"qilu token --role {role}: {r.stderr.strip()}")
        return r.stdout.strip()

    def addr(self, service: str) -> str:
        host, port = self.local[(service, 50051)]
        return f"{host}:{port}"

    def scenario(self) -> None:
        officer, auditor = self.token("officer"), self.token("auditor")
        q.step("minted officer and auditor tokens with `qilu token` (compose `cli` environment)")
        grpc_names = {"registry": q.REGISTRY, "review": q.REVIEW, "awards": q.AWARDS}
        with q.channel(self.addr("registry")) as chan:
            created = q.create_enterprise(chan, officer, VALID_USCC, "山东氢能科技有限公司")
            got = q.get_enterprise(chan, officer, VALID_USCC)
            q.check(got.name == created.name and got.etag == created.etag, f"read back {got}")
            q.step(f"registry: created and read {got.name} ({got.display_name})")
        for short, full in grpc_names.items():
            with q.channel(self.addr(short)) as chan:
                q.check(q.health_status(chan, full) == "SERVING", f"{short} not SERVING")
                events, verdict = q.audit(chan, auditor, full)
                q.check(verdict.intact, f"{short}: audit chain broken: {verdict}")
                q.check(verdict.events_checked == len(events.audit_events),
                        f"{short}: verified {verdict.events_checked} events, listed "
                        f"{len(events.audit_events)}")
                if short == "registry":
                    q.check(any(e.resource == created.name and
                                e.method.endswith("/CreateEnterprise")
                                for e in events.audit_events),
                            f"registry audit has no CreateEnterprise event: {events}")
                q.step(f"{short}: ListAuditEvents {len(events.audit_events)} events, "
                       f"VerifyAuditChain intact (head {verdict.head_sequence})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compose-config", required=True, help="output of `docker-compose config`")
    ap.add_argument("--dockerfile", required=True)
    ap.add_argument("--init-sql", required=True)
    ap.add_argument("--bin-dir", required=True, help="directory with qilu-registry etc.")
    ap.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    a = ap.parse_args()

    with open(a.compose_config) as f:
        config = yaml.safe_load(f)
    smoke = Smoke(config, a.dockerfile, a.init_sql, a.bin_dir, a.postgres_url)
    started = time.monotonic()
    ok = False
    problems: list[str] = []
    try:
        print("compose-equivalent smoke test")
        smoke.create_databases()
        smoke.start_all()
        smoke.scenario()
        ok = True
    except (q.CheckFailed, grpc.RpcError, subprocess.SubprocessError, OSError) as e:
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        try:
            problems += smoke.stop_all()
            if ok and not problems:
                smoke.check_json_logs()
        except q.CheckFailed as e:
            problems.append(str(e))
        finally:
            smoke.drop_databases()
    for p in problems:
        print(f"FAILED: {p}", file=sys.stderr)
    if problems:
        for name in smoke.logs:
            print(smoke.tail(name, 15), file=sys.stderr)
    passed = not problems
    print(f"compose smoke: {'1 passed, 0 failed' if passed else '0 passed, 1 failed'} "
          f"({time.monotonic() - started:.1f}s)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
