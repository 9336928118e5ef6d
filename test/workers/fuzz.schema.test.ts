/**
 * Issue 13, "Fuzzing from the schema": for every operation of the served
 * /openapi.json, requests generated from its JSON schemas (fast-check
 * arbitraries: types, enums, bounds, lengths, required and optional fields)
 * and mutations of its baseline request (./fuzz-cases.ts: wrong types,
 * numbers out of range, ill-formed Unicode as escapes and as raw bytes,
 * control characters, SQL metacharacters in every string, unknown and
 * missing fields, broken, duplicated-key, 10 000-deep and 1 MiB bodies,
 * header abuse, path tricks in ids, query mutations).
 *
 * Every answer must be:
 * - a status in ALLOWED(op): the statuses the operation documents under
 *   `responses`, plus GLOBAL (400, 401, 403, 404, 413, 415: the conventions of
 *   docs/api.md apply to every route: token, role, unknown route, body guards,
 *   schema), plus 429 on the routes docs/errors.md names for `velocity_limit`;
 *   never 405 or 422 (the gate answers neither) and never a 5xx;
 * - for an error, `application/problem+json` whose `code` is one of
 *   ERROR_CODES with the status statusOf gives it; for a case the contract
 *   pins (a lone surrogate, a missing token, a wrong content type, …) exactly
 *   that status;
 * - when refused (≥ 400), a request that changed nothing: after every
 *   refused write the watched accounts' balances and Durable Object tables
 *   and the D1 tables' counts (audit log included) are as before it.
 *
 * FUZZ_RUNS (default 1) scales the values tried per field and kind and the
 * generated bodies; FUZZ_SEED (default 1337) fixes them (vitest.fuzz.config.ts
 * passes both from the environment).
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES, type ErrorCode, statusOf } from "../../src/errors";
import { type Case, casesFor } from "./fuzz-cases";
import {
  BASELINES,
  baselineWire,
  type Fixture,
  loadDoc,
  makeFixture,
  type Operation,
  operationsOf,
  reconciliationRunId,
  sendWire,
  stateOf,
} from "./fuzz-fixture";
import { call, runAlarm, uid } from "./helpers";

const fuzzEnv = env as unknown as { FUZZ_RUNS?: string; FUZZ_SEED?: string };
const RUNS = Math.max(1, Number(fuzzEnv.FUZZ_RUNS ?? 1) || 1);
const SEED = Number(fuzzEnv.FUZZ_SEED ?? 1337) || 1337;

/** Statuses every operation may answer, whatever its `responses` say (see the file's comment). */
const GLOBAL = [400, 401, 403, 404, 413, 415];
/** docs/errors.md, velocity_limit: debits, holds, receipts and usage events. */
const VELOCITY_OPS = new Set([
  "POST /v1/accounts/{account_id}/debits",
  "POST /v1/accounts/{account_id}/holds",
  "POST /v1/accounts/{account_id}/receipts",
  "POST /v1/usage",
]);

/**
 * Statuses docs/api.md documents for an operation that its `responses` in
 * /openapi.json leave out (a gap in the served document, reported to the lead;
 * listed here by operation so nothing else is loosened).
 */
const DOCUMENTED_ELSEWHERE: Record<string, number[]> = {};

function allowed(op: Operation): Set<number> {
  const documented = Object.keys(op.spec.responses ?? {}).map(Number);
  return new Set([
    ...documented,
    ...GLOBAL,
    ...(VELOCITY_OPS.has(op.key) ? [429] : []),
    ...(DOCUMENTED_ELSEWHERE[op.key] ?? []),
  ]);
}

let doc: any;
let ops: Operation[] = [];
let f: Fixture;
let sink = "";

beforeAll(async () => {
  doc = await loadDoc();
  ops = operationsOf(doc);
  f = await makeFixture(await reconciliationRunId(), "fz");
  sink = uid("fz-sink");
}, 120_000);

/** What is wrong with one answer, or null. */
function judge(op: Operation, c: Case, res: { status: number; headers: Headers; json: any }): string | null {
  if (res.status >= 500) return `a ${res.status}`;
  if (c.exactly !== undefined && res.status !== c.exactly) return `${res.status}, the contract says ${c.exactly}`;
  if (!allowed(op).has(res.status)) return `${res.status} is not documented for this operation`;
  if (res.status >= 400) {
    if (res.headers.get("content-type") !== "application/problem+json") {
      return `error without problem+json (${res.headers.get("content-type")})`;
    }
    const code = res.json?.code as ErrorCode;
    if (!ERROR_CODES.includes(code)) return `unknown code ${JSON.stringify(code)}`;
    if (statusOf(code) !== res.status) return `code ${code} with status ${res.status}`;
    if (res.json?.status !== res.status) return `problem status ${res.json?.status} ≠ ${res.status}`;
  }
  return null;
}

/**
 * The one write a refused request is documented to make: a transfer's id is
 * claimed in D1 on its first send and keeps that body, even when the source
 * then refuses it (docs/api.md, Transfers: "a refused id sent again with a
 * different body is 409"). Only that row, only on that operation.
 */
function tolerated(op: Operation, before: string, after: string): boolean {
  if (op.key !== "POST /v1/transfers") return false;
  const a = JSON.parse(before);
  const b = JSON.parse(after);
  const claimed = b.d1.transfers - a.d1.transfers;
  b.d1.transfers = a.d1.transfers;
  return claimed === 1 && JSON.stringify(a) === JSON.stringify(b);
}

/** What moved between two stateOf() texts. */
function diff(before: string, after: string): string {
  const a = JSON.parse(before);
  const b = JSON.parse(after);
  return Object.keys(b)
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => `${k}: ${JSON.stringify(a[k])} → ${JSON.stringify(b[k])}`)
    .join("; ");
}

describe("schema fuzzing: every operation of /openapi.json", () => {
  it("covers every operation (a row in the baselines) and each operation's baseline is accepted", async () => {
    expect(Object.keys(BASELINES).sort()).toEqual(ops.map((o) => o.key).sort());
    const probe = await makeFixture(f.runId, "fz-probe");
    for (const op of [...ops.filter((o) => o.method !== "DELETE"), ...ops.filter((o) => o.method === "DELETE")]) {
      const res = await sendWire(baselineWire(op, probe));
      expect(res.status, `${op.key}: ${res.text}`).toBeLessThan(300);
    }
  });

  it("answers every generated and mutated request with a documented status, problem+json, no 5xx, and no change when refused", async () => {
    const failures: string[] = [];
    const byKind: Record<string, number> = {};
    const byOp: Record<string, number> = {};
    let requests = 0;
    let serverErrors = 0;
    let refusedWritesChecked = 0;
    // Deletions last, so what they delete is there for the others' baselines.
    const ordered = [...ops.filter((o) => o.method !== "DELETE"), ...ops.filter((o) => o.method === "DELETE")];
    for (const op of ordered) {
      const cases = casesFor(doc, op, f, RUNS, SEED, sink);
      const writes = op.method !== "GET";
      // The transfer's destination is watched only where a transfer could write to it.
      const watched = op.key === "POST /v1/transfers" ? [f.account, f.extra.transferTo ?? f.account] : [f.account];
      for (const a of watched) await runAlarm(a);
      let before = writes ? await stateOf(watched) : "";
      for (const c of cases) {
        const res = await sendWire(c.wire);
        requests++;
        byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
        byOp[op.key] = (byOp[op.key] ?? 0) + 1;
        if (res.status >= 500) serverErrors++;
        const wrong = judge(op, c, res);
        if (wrong) failures.push(`${op.key} [${c.kind}] ${c.label}: ${wrong}: ${res.text.slice(0, 200)}`);
        if (!writes) continue;
        const after = await stateOf(watched);
        if (res.status >= 400) {
          refusedWritesChecked++;
          if (after !== before && !tolerated(op, before, after)) {
            failures.push(
              `${op.key} [${c.kind}] ${c.label}: refused (${res.status} ${res.json?.code}) but wrote: ${diff(before, after)}`,
            );
          }
        }
        before = after;
      }
    }
    console.log(
      `RELIABILITY ${JSON.stringify({
        suite: "fuzz",
        requests,
        operations: Object.keys(byOp).length,
        mutations: byKind,
        refused_writes_checked: refusedWritesChecked,
        server_errors: serverErrors,
        runs: RUNS,
        seed: SEED,
      })}`,
    );
    expect(failures.slice(0, 50)).toEqual([]);
    // Not vacuous: every operation was tried, with every kind of mutation that applies to it.
    expect(Object.keys(byOp).sort()).toEqual(ops.map((o) => o.key).sort());
    for (const kind of ["schema", "wrong_type", "number_range", "lone_surrogate", "sql_meta", "path_trick"]) {
      expect(byKind[kind] ?? 0, kind).toBeGreaterThan(20);
    }
    expect(refusedWritesChecked).toBeGreaterThan(500);
  }, 600_000);

  it("SQL metacharacters in a filter match literally: an actor of `%` or `_` finds nothing", async () => {
    for (const actor of ["%", "_", "%25", "admin%", "' OR 1=1 --"]) {
      const res = await call("GET", `/v1/audit?actor=${encodeURIComponent(actor)}&limit=10`);
      expect(res.status, res.text).toBeLessThan(500);
      if (res.status === 200) expect(res.json.events ?? res.json.items ?? [], actor).toEqual([]);
    }
    // The same filter with a real actor does find rows, so the empty answers above mean something.
    const real = await call("GET", "/v1/audit?actor=admin-token:admin&limit=10");
    expect(real.status, real.text).toBe(200);
    expect(JSON.stringify(real.json).length).toBeGreaterThan(50);
  });
});
