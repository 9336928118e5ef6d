/**
 * Issue 13, "Security matrix": every operation of /openapi.json × every
 * caller (the ADMIN_TOKEN; admin, finance, support, marketing, gateway and
 * viewer keys; an account-scoped key; a customer dashboard session), each
 * cell's answer written by hand in ./role-matrix-table.ts from docs/api.md.
 *
 * Each call is the operation's baseline request (./fuzz-fixture.ts) aimed at
 * one fixture account. A cell "ok" must not be 401 or 403 (nor a 5xx), and
 * the first caller of each operation (the ADMIN_TOKEN) must get a 2xx, so the
 * baseline is shown to work; later allowed callers may meet what the first
 * consumed (a closed hold replays, a deleted budget is 404). A 403 cell must
 * be 403 `forbidden` and leave the account's balance, its Durable Object's
 * tables and the D1 tables' counts as they were; a 404 cell exactly 404.
 *
 * Also: API keys are stored hashed (no plaintext in D1) and a key one
 * character off is refused; a dashboard session cannot cross accounts.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { sessionFor } from "./dashboard-helpers";
import {
  BASELINES,
  type Fixture,
  loadDoc,
  makeFixture,
  type Operation,
  operationsOf,
  reconciliationRunId,
  sendWire,
  stateOf,
  urlOf,
  type Wire,
} from "./fuzz-fixture";
import { call, uid } from "./helpers";
import { CALLERS, type CallerName, DISCREPANCIES, expected, TABLE } from "./role-matrix-table";

let ops: Operation[] = [];
let f: Fixture;
const tokens = {} as Record<CallerName, string>;
let sink = "";

async function key(role: string, extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const res = await call("POST", "/v1/api-keys", { name: uid(`rm-${role}`), role, ...extra });
  if (res.status !== 201) throw new Error(`key ${role}: ${res.status} ${res.text}`);
  return res.json;
}

beforeAll(async () => {
  ops = operationsOf(await loadDoc());
  f = await makeFixture(await reconciliationRunId(), "rm");
  sink = uid("rm-sink");
  await call("PUT", `/v1/accounts/${sink}`, { name: "bulk sink" });
  const limit = { max_grant_amount: 1_000_000 };
  tokens["admin-token"] = "test-admin-token";
  tokens["admin key"] = (await key("admin")).key;
  tokens.finance = (await key("finance")).key;
  tokens.support = (await key("support", limit)).key;
  tokens.marketing = (await key("marketing", limit)).key;
  tokens.gateway = (await key("gateway")).key;
  tokens.viewer = (await key("viewer")).key;
  tokens["scoped key"] = (await key("admin", { account_scope: f.account })).key;
  tokens["dashboard session"] = await sessionFor(f.account);
  // The bulk grant GET /v1/grants/bulk/{bulk_id}'s baseline reads (made by the admin token, aimed at the sink).
  const bulk = BASELINES["POST /v1/grants/bulk"]?.(f).body ?? {};
  const made = await call("POST", "/v1/grants/bulk", { ...bulk, account_ids: [sink] });
  if (made.status !== 202) throw new Error(`bulk: ${made.status} ${made.text}`);
}, 120_000);

/** The baseline of `op` for one call: fresh ids; a bulk grant aimed at a sink (its queue writes later). */
function wireOf(op: Operation, token: string): Wire {
  const make = BASELINES[op.key];
  if (!make) throw new Error(`no baseline for ${op.key}`);
  const base = make(f);
  if (op.key === "POST /v1/grants/bulk" && base.body) {
    base.body = { ...base.body, bulk_id: uid("rm-bulk"), account_ids: [sink] };
  }
  return {
    method: op.method,
    url: urlOf(op, f, base),
    body: base.body === undefined ? undefined : JSON.stringify(base.body),
    token,
  };
}

describe("the security matrix: every operation × every caller", () => {
  it("has a row for every operation of /openapi.json, and none for an operation that is gone", () => {
    expect(Object.keys(TABLE).sort()).toEqual(ops.map((o) => o.key).sort());
  });

  it("answers every cell as the table says; a refused cell changes nothing", async () => {
    const failures: string[] = [];
    let cells = 0;
    let allowedOk = 0;
    const ordered = [...ops.filter((o) => o.method !== "DELETE"), ...ops.filter((o) => o.method === "DELETE")];
    for (const op of ordered) {
      const row = TABLE[op.key];
      if (!row) throw new Error(`no row for ${op.key}`);
      let first = true;
      for (const caller of CALLERS) {
        const want = expected(row, caller, op.key);
        const before = want === 403 && op.method !== "GET" ? await stateOf([f.account]) : null;
        const res = await sendWire(wireOf(op, tokens[caller.name]));
        cells++;
        const cell = `${op.key} as ${caller.name}: want ${want}, got ${res.status} ${res.text.slice(0, 160)}`;
        if (res.status >= 500) failures.push(cell);
        else if (want === "ok") {
          if (res.status === 401 || res.status === 403) failures.push(cell);
          else if (first && (res.status < 200 || res.status >= 300))
            failures.push(`${cell} (the first call must pass)`);
          if (res.status < 300) allowedOk++;
          first = false;
        } else if (res.status !== want || (want === 403 && res.json?.code !== "forbidden")) {
          failures.push(cell);
        }
        if (before !== null && (await stateOf([f.account])) !== before) failures.push(`${cell}: refused but wrote`);
      }
    }
    const operations = new Set(ops.map((o) => o.key)).size;
    console.log(
      `RELIABILITY ${JSON.stringify({ suite: "roles", cells, operations, roles: CALLERS.length, allowed_2xx: allowedOk, docs_discrepancies: Object.keys(DISCREPANCIES).length })}`,
    );
    expect(failures).toEqual([]);
    expect(cells).toBe(operations * CALLERS.length);
  }, 300_000);
});

describe("a dashboard session stays on its account", () => {
  it("another account's reads are 404 account_not_found, as for an unknown account", async () => {
    const other = uid("rm-other");
    await call("PUT", `/v1/accounts/${other}`, { name: "someone else" });
    const token = tokens["dashboard session"];
    for (const path of [
      "",
      "/balance",
      "/ledger",
      "/grants",
      "/holds",
      "/statement?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
    ]) {
      const res = await call("GET", `/v1/accounts/${other}${path}`, undefined, { token });
      expect({ path, status: res.status, code: res.json?.code }).toEqual({
        path,
        status: 404,
        code: "account_not_found",
      });
    }
    expect((await call("GET", `/v1/accounts/${f.account}/balance`, undefined, { token })).status).toBe(200);
  });
});

describe("API keys are stored hashed and compared exactly", () => {
  const hex = async (s: string) =>
    [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");

  it("D1's api_keys row holds the SHA-256 of the key and no part of the key itself", async () => {
    const created = await key("viewer");
    expect(created.key).toMatch(/^cg_[A-Za-z0-9_-]{43}$/);
    const row = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?")
      .bind(created.id)
      .first<Record<string, unknown>>();
    expect(row).not.toBeNull();
    const text = JSON.stringify(row);
    const secret = created.key.slice(3);
    // No column holds the key, its secret part, or any 16-character piece of it.
    for (let i = 0; i + 16 <= secret.length; i++) expect(text).not.toContain(secret.slice(i, i + 16));
    expect(Object.values(row ?? {})).toContain(await hex(created.key));
    // …and the audit row of its creation neither.
    const audit = await env.DB.prepare("SELECT * FROM audit_events WHERE target = ?").bind(created.id).all();
    expect(audit.results.length).toBeGreaterThan(0);
    expect(JSON.stringify(audit.results)).not.toContain(secret.slice(0, 16));
  });

  it("a key differing in its last character, or one shorter or longer, is 401; the key itself works", async () => {
    const created = await key("viewer");
    const path = `/v1/accounts/${f.account}`;
    expect((await call("GET", path, undefined, { token: created.key })).status).toBe(200);
    const last = created.key.slice(-1);
    const flipped = created.key.slice(0, -1) + (last === "A" ? "B" : "A");
    for (const bad of [flipped, created.key.slice(0, -1), `${created.key}A`, created.key.toUpperCase()]) {
      if (bad === created.key) continue;
      const res = await call("GET", path, undefined, { token: bad });
      expect({ status: res.status, code: res.json?.code }).toEqual({ status: 401, code: "unauthorized" });
    }
    // The ADMIN_TOKEN compared whole as well: one character off, or a prefix, is refused.
    for (const bad of ["test-admin-tokeN", "test-admin-toke", "test-admin-token.", "Test-admin-token"]) {
      expect((await call("GET", path, undefined, { token: bad })).status).toBe(401);
    }
  });
});
