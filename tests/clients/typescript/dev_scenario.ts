/**
 * The generated TypeScript client (protobuf-es v2 messages and service descriptors, Connect-ES
 * over grpc-web on HTTP/1.1) against `qilu dev` (all three services on one port, SQLite).
 *
 * Run by run.sh, which installs the pinned npm packages, generates gen/ts with buf and builds
 * `qilu`. Starts `qilu dev --addr 127.0.0.1:<free port> --data-dir <tmp>`, mints an officer token
 * with `qilu token --role officer`, then checks through grpc-web: create + read an enterprise,
 * list with a filter, one error with its BadRequest field violation decoded from the rich status;
 * and through HTTP/JSON (fetch): the same enterprise from `GET /v1/enterprises/{uscc}` equals
 * the grpc-web result as proto3 JSON. Exits non-zero on the first failure.
 *
 * `qilu` is $QILU_BIN when set, else `cargo run -p qilu-cli --`.
 */

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";

import { equals, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";

import { BadRequestSchema, ErrorInfoSchema } from "./gen/ts/google/rpc/error_details_pb.js";
import { EnterpriseSchema } from "./gen/ts/qilu/registry/v1/enterprise_pb.js";
import { EnterpriseRegistryService } from "./gen/ts/qilu/registry/v1/registry_service_pb.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..", "..", "..");
/** Valid USCCs (GB 32100-2015 check character right), and one with a wrong check character. */
const VALID_USCC = "91350100M000100Y43";
const SECOND_USCC = "91370102MA9400015C";
const BAD_CHECK_DIGIT_USCC = "91350100M000100Y4Z";

/** A scenario step did not behave as the contract says. */
class CheckFailed extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message);
}

function step(message: string): void {
  console.log(`  - ${message}`);
}

function qilu(...args: string[]): [string, string[]] {
  const bin = process.env.QILU_BIN;
  return bin
    ? [bin, args]
    : ["cargo", ["run", "--quiet", "--locked", "-p", "qilu-cli", "--", ...args]];
}

function mint(role: string): string {
  const [cmd, args] = qilu("token", "--role", role);
  const out = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
  check(out.status === 0, `qilu token --role ${role} failed: ${out.error ?? `exit ${out.status}`}: ${out.stderr}`);
  return out.stdout.trim();
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => ok(port));
    });
  });
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** Waits until the registry answers an HTTP/JSON call (the suite has migrated and is serving). */
async function waitServing(
  base: string,
  token: string,
  proc: ChildProcess,
  deadlineS: number,
  spawnError: () => Error | undefined,
) {
  const until = Date.now() + deadlineS * 1000;
  let last = "";
  while (Date.now() < until) {
    const e = spawnError();
    check(e === undefined, `could not start qilu dev: ${e}`);
    check(proc.exitCode === null, `qilu dev exited early (${proc.exitCode})`);
    try {
      const r = await fetch(`${base}/v1/enterprises:validateUscc?uscc=${VALID_USCC}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (r.status === 200) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = String(e);
    }
    await sleep(250);
  }
  throw new CheckFailed(`qilu dev not serving after ${deadlineS}s (${last})`);
}

async function scenario(base: string, officer: string): Promise<void> {
  const transport = createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1" });
  const registry = createClient(EnterpriseRegistryService, transport);
  const auth = { headers: { authorization: `Bearer ${officer}` } };

  const created = await registry.createEnterprise(
    {
      enterprise: { uscc: VALID_USCC, displayName: "福建示例科技有限公司", establishedDate: "2012-03-01" },
      requestId: crypto.randomUUID(),
    },
    auth,
  );
  check(created.name === `enterprises/${VALID_USCC}`, `created name ${created.name}`);
  const got = await registry.getEnterprise({ name: created.name }, auth);
  check(
    got.displayName === "福建示例科技有限公司" && got.etag === created.etag,
    `read back ${JSON.stringify(toJson(EnterpriseSchema, got))}`,
  );
  step(`grpc-web: created and read ${got.name} (${got.displayName}, city=${got.city || "-"}, etag=${got.etag})`);

  await registry.createEnterprise(
    { enterprise: { uscc: SECOND_USCC, displayName: "济南示例科技有限公司", establishedDate: "2016-04-12" } },
    auth,
  );
  const filter = `display_name:"福建"`;
  const listed = await registry.listEnterprises({ filter, pageSize: 10 }, auth);
  check(
    listed.enterprises.length === 1 && equals(EnterpriseSchema, listed.enterprises[0], got),
    `ListEnterprises(filter ${filter}) gave ${listed.enterprises.map((e) => e.name).join(", ") || "nothing"}`,
  );
  const all = await registry.listEnterprises({ pageSize: 10 }, auth);
  check(all.enterprises.length === 2, `ListEnterprises without a filter gave ${all.enterprises.length}, want 2`);
  step(`grpc-web: ListEnterprises(filter '${filter}') gave exactly ${listed.enterprises[0].name} (of ${all.enterprises.length})`);

  let err: ConnectError | undefined;
  try {
    await registry.createEnterprise(
      { enterprise: { uscc: BAD_CHECK_DIGIT_USCC, displayName: "校验位错误有限公司", establishedDate: "2012-03-01" } },
      auth,
    );
  } catch (e) {
    err = ConnectError.from(e);
  }
  check(err !== undefined, `CreateEnterprise accepted USCC ${BAD_CHECK_DIGIT_USCC}`);
  check(err.code === Code.InvalidArgument, `error code ${Code[err.code]}: ${err.message}`);
  const violations = err.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations);
  const uscc = violations.find((v) => v.field === "enterprise.uscc");
  check(uscc !== undefined, `no BadRequest violation on enterprise.uscc: ${JSON.stringify(err.details)}`);
  const [info] = err.findDetails(ErrorInfoSchema);
  check(info !== undefined && info.domain === "qilu.gov.cn", `no ErrorInfo in qilu.gov.cn: ${JSON.stringify(err.details)}`);
  step(`grpc-web: ${Code[err.code]}: BadRequest ${uscc.field} (${uscc.reason}): ${uscc.description} (ErrorInfo ${info.reason}@${info.domain})`);

  const response = await fetch(`${base}/v1/enterprises/${VALID_USCC}`, {
    headers: { authorization: `Bearer ${officer}`, accept: "application/json" },
  });
  const text = await response.text();
  check(response.status === 200, `GET /v1/enterprises/${VALID_USCC}: HTTP ${response.status}: ${text}`);
  check(
    (response.headers.get("content-type") ?? "").startsWith("application/json"),
    `GET /v1/enterprises/${VALID_USCC}: content-type ${response.headers.get("content-type")}`,
  );
  const body = JSON.parse(text) as JsonValue;
  const byWeb = toJson(EnterpriseSchema, got);
  check(
    isDeepStrictEqual(body, byWeb),
    `HTTP/JSON and grpc-web differ:\n  HTTP/JSON ${JSON.stringify(body)}\n  grpc-web  ${JSON.stringify(byWeb)}`,
  );
  check(equals(EnterpriseSchema, fromJson(EnterpriseSchema, body), got), "HTTP/JSON body parsed differs from grpc-web");
  step(`HTTP/JSON: GET /v1/enterprises/${VALID_USCC} equals the grpc-web result (${Object.keys(byWeb as object).length} fields)`);
}

async function stop(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.pid === undefined) return proc.exitCode;
  const exited = new Promise<number | null>((ok) => proc.once("exit", (code) => ok(code)));
  proc.kill("SIGTERM");
  const code = await Promise.race([exited, sleep(30_000).then(() => "timeout" as const)]);
  if (code !== "timeout") return code;
  proc.kill("SIGKILL");
  return Promise.race([exited, sleep(5_000).then(() => null)]);
}

async function main(): Promise<number> {
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const base = `http://${addr}`;
  const data = mkdtempSync(join(tmpdir(), "qilu-tsclient-"));
  const logPath = join(data, "dev.log");
  const log = openSync(logPath, "w");
  const [cmd, args] = qilu("dev", "--addr", addr, "--data-dir", data);
  const proc = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", log, log] });
  let spawnError: Error | undefined;
  proc.on("error", (e) => (spawnError = e));
  closeSync(log);
  let ok = false;
  try {
    console.log(`typescript client (grpc-web + HTTP/JSON) vs qilu dev on ${addr}`);
    const officer = mint("officer");
    step("minted an officer token with `qilu token`");
    await waitServing(base, officer, proc, 300, () => spawnError);
    await scenario(base, officer);
    ok = true;
  } catch (e) {
    console.error(`FAILED: ${e instanceof CheckFailed ? e.message : e instanceof Error ? e.stack : e}`);
  } finally {
    const code = await stop(proc);
    if (proc.pid === undefined) {
      console.error(`FAILED: qilu dev did not start (${cmd}: ${spawnError ?? "no process"})`);
      ok = false;
    } else if (code !== 0) {
      console.error(`FAILED: qilu dev exited ${code} after SIGTERM`);
      ok = false;
    }
    if (!ok) {
      const tail = readFileSync(logPath, "utf8").split("\n").slice(-40).join("\n");
      console.error(`--- qilu dev log (tail) ---\n${tail}`);
    }
    rmSync(data, { recursive: true, force: true });
  }
  console.log(`typescript client scenario: ${ok ? "1 passed, 0 failed" : "0 passed, 1 failed"}`);
  return ok ? 0 : 1;
}

const start = performance.now();
const rc = await main();
console.log(`(${((performance.now() - start) / 1000).toFixed(1)}s)`);
process.exit(rc);
