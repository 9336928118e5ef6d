/**
 * The shared ground of fuzz.schema.test.ts and role-matrix.security.test.ts:
 * the served /openapi.json read as a list of operations, a fixture every
 * baseline is aimed at, a valid baseline request for every operation, and a
 * way to send one with any headers.
 *
 * The core rows below and the areas' rows from ./baselines make one table,
 * used by unicode.security.test.ts too. The fuzz, matrix and unicode tests
 * fail when an operation of the served document has no row here.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { AccountLedger } from "../../src/account/account-do";
import { AREAS } from "./baselines";
import type { Baseline, Fixture } from "./baselines/types";
import { ADMIN, call, fetchWorker, grant, ledgerStubFor, type Res, uid } from "./helpers";
import { runCron } from "./jobs-helpers";

export type { Baseline, Fixture };

export interface Operation {
  key: string;
  method: string;
  path: string;
  spec: any;
}

export function operationsOf(doc: any): Operation[] {
  const out: Operation[] = [];
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, spec] of Object.entries(ops)) {
      out.push({ key: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, spec });
    }
  }
  return out;
}

export function resolve(doc: any, schema: any): any {
  let s = schema;
  for (let i = 0; s?.$ref && i < 20; i++)
    s = doc.components.schemas[String(s.$ref).replace("#/components/schemas/", "")];
  return s ?? {};
}

export const typesOf = (schema: any): string[] =>
  schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];

/** The served contract, read without a token. */
export async function loadDoc(): Promise<any> {
  const res = await call("GET", "/openapi.json", undefined, { token: null });
  if (res.status !== 200) throw new Error(`/openapi.json: ${res.status}`);
  return res.json;
}

// ── the fixture ───────────────────────────────────────────────────────────

async function ok(res: Promise<Res>, what: string): Promise<any> {
  const r = await res;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`);
  return r.json;
}

/** One reconciliation run, so GET /v1/reconciliation/runs/{id} has something to name. */
export async function reconciliationRunId(): Promise<string> {
  await runCron(Date.now());
  const runs = await call("GET", "/v1/reconciliation/runs?limit=1");
  const id = runs.json?.runs?.[0]?.id;
  if (typeof id !== "string") throw new Error(`no reconciliation run: ${runs.text}`);
  return id;
}

/** An account with lots, an open hold to capture, one to release, a receipt, a debit; a webhook and a key. */
export async function makeFixture(runId: string, prefix = "fz"): Promise<Fixture> {
  const account = uid(prefix);
  await ok(call("PUT", `/v1/accounts/${account}`, { name: "fuzz fixture", verified: true }), "account");
  await grant(account, { grant_id: "g-1", amount: 1000 });
  await grant(account, { grant_id: "g-void", amount: 50, priority: 1_000_000 });
  await ok(call("POST", `/v1/accounts/${account}/holds`, { hold_id: "h-1", amount: 5, ttl_seconds: 86_400 }), "h-1");
  await ok(call("POST", `/v1/accounts/${account}/holds`, { hold_id: "h-2", amount: 5, ttl_seconds: 86_400 }), "h-2");
  const receipt = await ok(
    call("POST", `/v1/accounts/${account}/receipts`, { receipt_id: "r-1", amount: 5, ttl_seconds: 3600 }),
    "receipt",
  );
  await ok(call("POST", `/v1/accounts/${account}/debits`, { debit_id: "d-1", amount: 3 }), "debit");
  for (const invoiceId of ["inv-1", "inv-void"]) {
    await ok(
      call("POST", `/v1/accounts/${account}/invoices`, { invoice_id: invoiceId, lines: [{ amount: 1 }] }),
      invoiceId,
    );
  }
  const hook = await ok(
    call("POST", "/v1/webhooks", { url: "https://hooks.example/cg", event_types: ["reconciliation.drift"] }),
    "webhook",
  );
  const key = await ok(call("POST", "/v1/api-keys", { name: uid("fz-key"), role: "viewer" }), "key");
  const base = {
    account,
    receipt: receipt.receipt,
    webhookId: hook.id,
    apiKeyId: key.id,
    runId,
    policy: await ok(call("GET", "/v1/policy"), "policy"),
    alertSettings: await ok(call("GET", "/v1/alert-settings"), "alert settings"),
  };
  const extra: Record<string, string> = {};
  for (const area of AREAS) Object.assign(extra, await area.setup?.(base));
  return { ...base, extra };
}

// ── a valid request for every operation (the core rows; areas add theirs in ./baselines) ──

const past = () => new Date(Date.now() - 1000).toISOString();
const future = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();

const REPORT_WINDOW = { from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z", period: "month", format: "json" };
const reportScope = (f: Fixture) => ({
  account_id: f.account,
  parent_id: f.account,
  type: "purchased",
  source: "stripe",
  campaign: "spring",
});

/** Keyed by "METHOD path" as /openapi.json spells them. Ids a request creates are fresh on each call. */
const CORE_BASELINES: Record<string, (f: Fixture) => Baseline> = {
  "GET /v1/accounts": (f) => ({ query: { parent_id: f.account, after: "a", limit: "10" } }),
  "PUT /v1/accounts/{account_id}": () => ({
    body: {
      name: "unicode fixture",
      parent_id: null,
      verified: true,
      metadata: { tier: "gold" },
      low_balance: { credits: 1 },
      velocity: { credits: { per_day: 9_000_000_000_000_000 } },
    },
  }),
  "GET /v1/accounts/{account_id}": () => ({}),
  "GET /v1/accounts/{account_id}/balance": () => ({ query: { unit: "credits", as_of: past() } }),
  "POST /v1/accounts/{account_id}/grants": () => ({
    body: {
      grant_id: uid("g"),
      amount: 10,
      unit: "credits",
      type: "purchased",
      priority: 100,
      effective_at: past(),
      expires_at: future(30),
      source: "stripe",
      reason: "top-up",
      campaign: "spring",
      incident_id: "inc-1",
      cost_basis: { amount: 500, currency: "USD", tax: { amount: 95, jurisdiction: "DE" } },
      metadata: { invoice: "inv-1" },
    },
  }),
  "GET /v1/accounts/{account_id}/grants": () => ({ query: { status: "active", cursor: "g-1", limit: "10" } }),
  "GET /v1/accounts/{account_id}/grants/{grant_id}": () => ({ params: { grant_id: "g-1" } }),
  "POST /v1/accounts/{account_id}/grants/{grant_id}/void": () => ({
    params: { grant_id: "g-void" },
    body: { reason: "test" },
  }),
  // The single grant's baseline without its grant_id, for every account of the job.
  "POST /v1/grants/bulk": (f) => {
    const { grant_id: _, ...grant } = BASELINES["POST /v1/accounts/{account_id}/grants"]?.(f).body ?? {};
    return { body: { bulk_id: `bulk-${f.account}`, account_ids: [f.account], grant } };
  },
  "GET /v1/grants/bulk/{bulk_id}": (f) => ({ params: { bulk_id: `bulk-${f.account}` } }),
  "POST /v1/accounts/{account_id}/debits": () => ({
    body: { debit_id: uid("d"), amount: 1, unit: "credits", metadata: { request: "r-1" } },
  }),
  "GET /v1/accounts/{account_id}/debits/{debit_id}": () => ({ params: { debit_id: "d-1" } }),
  "POST /v1/accounts/{account_id}/grants/{grant_id}/refund": () => ({
    params: { grant_id: "g-1" },
    body: { refund_id: uid("rf"), amount: 1, reason: "test" },
  }),
  "POST /v1/accounts/{account_id}/invoices": () => ({
    body: { invoice_id: uid("inv"), lines: [{ description: "tokens", unit: "credits", amount: 1 }] },
  }),
  "GET /v1/accounts/{account_id}/invoices/{invoice_id}": () => ({ params: { invoice_id: "inv-1" } }),
  "POST /v1/accounts/{account_id}/invoices/{invoice_id}/void": () => ({
    params: { invoice_id: "inv-void" },
    body: { reason: "test" },
  }),
  "POST /v1/accounts/{account_id}/holds": () => ({
    body: { hold_id: uid("h"), amount: 1, unit: "credits", ttl_seconds: 300 },
  }),
  "GET /v1/accounts/{account_id}/holds": () => ({ query: { cursor: "1:h-0", limit: "10" } }),
  "POST /v1/accounts/{account_id}/holds/{hold_id}/capture": () => ({ params: { hold_id: "h-1" }, body: {} }),
  "POST /v1/accounts/{account_id}/holds/{hold_id}/release": () => ({ params: { hold_id: "h-2" }, body: {} }),
  "GET /v1/accounts/{account_id}/holds/{hold_id}": () => ({ params: { hold_id: "h-1" } }),
  "POST /v1/accounts/{account_id}/receipts": () => ({
    body: { receipt_id: uid("r"), amount: 1, unit: "credits", ttl_seconds: 60, audience: "usage" },
  }),
  "POST /v1/receipts/settle": (f) => ({ body: { receipt: f.receipt, used: 1 } }),
  "GET /.well-known/jwks.json": () => ({}),
  "GET /v1/accounts/{account_id}/ledger": () => ({ query: { after_seq: "0", limit: "10", format: "json" } }),
  "GET /v1/accounts/{account_id}/statement": () => ({
    query: { from: new Date(Date.now() - 86_400_000).toISOString(), to: past(), unit: "credits" },
  }),
  "GET /v1/policy": () => ({}),
  "PUT /v1/policy": (f) => ({ body: { ...f.policy } }),
  "GET /v1/accounts/{account_id}/policy": () => ({}),
  "PUT /v1/accounts/{account_id}/policy": (f) => ({ body: { ...f.policy } }),
  "POST /v1/api-keys": () => ({ body: { name: uid("k"), role: "viewer", max_grant_amount: null } }),
  "GET /v1/api-keys": () => ({}),
  "DELETE /v1/api-keys/{id}": (f) => ({ params: { id: f.apiKeyId } }),
  "GET /v1/alerts": (f) => ({
    query: { type: "balance.low", account_id: f.account, cursor: `${Date.now()}:alert_x`, limit: "10" },
  }),
  "GET /v1/alert-settings": () => ({}),
  "PUT /v1/alert-settings": (f) => ({ body: { ...f.alertSettings } }),
  "POST /v1/webhooks": () => ({
    body: {
      url: "https://hooks.example/other",
      event_types: ["balance.low", "usage.spike"],
      secret: `whsec_${btoa("0123456789abcdef0123456789abcdef")}`,
      description: "ops channel",
    },
  }),
  "GET /v1/webhooks": () => ({}),
  "DELETE /v1/webhooks/{id}": (f) => ({ params: { id: f.webhookId } }),
  "GET /v1/webhooks/{id}/deliveries": (f) => ({ params: { id: f.webhookId }, query: { limit: "10" } }),
  "GET /v1/reconciliation/runs": () => ({ query: { cursor: `${Date.now() + 86_400_000}:run_x`, limit: "10" } }),
  "GET /v1/reconciliation/runs/{id}": (f) => ({ params: { id: f.runId } }),
  "GET /v1/reports/revenue": (f) => ({
    query: { ...REPORT_WINDOW, currency: "USD", ...reportScope(f), unit: "credits" },
  }),
  "GET /v1/reports/credits": (f) => ({
    query: { ...REPORT_WINDOW, group_by: "campaign", ...reportScope(f), unit: "credits" },
  }),
  "GET /v1/reports/liability": (f) => ({
    query: { as_of: past(), format: "json", ...reportScope(f), unit: "credits" },
  }),
  "GET /v1/audit": (f) => ({
    query: { after: "0", limit: "10", actor: "admin-token:admin", action: "account.updated", target: f.account },
  }),
};

/** The core rows and every area's (./baselines). */
export const BASELINES: Record<string, (f: Fixture) => Baseline> = Object.assign(
  {},
  CORE_BASELINES,
  ...AREAS.map((a) => a.rows),
);

// ── sending ───────────────────────────────────────────────────────────────

export interface Wire {
  method: string;
  /** Path and query, already encoded. */
  url: string;
  body?: string | Uint8Array | ReadableStream<Uint8Array>;
  /** Header pairs, in order (a name may repeat); `authorization` defaults to the admin token. */
  headers?: [string, string][];
  /** null: no authorization header at all. */
  token?: string | null;
}

const enc = (v: string) => encodeURIComponent(v);

/** The baseline's URL; `rawParams` / `rawQuery` replace values with text already as it goes on the wire. */
export function urlOf(
  op: Operation,
  f: Fixture,
  base: Baseline,
  raw: { params?: Record<string, string>; query?: [string, string][] } = {},
): string {
  const params: Record<string, string> = { account_id: enc(f.account) };
  for (const [k, v] of Object.entries(base.params ?? {})) params[k] = enc(v);
  Object.assign(params, raw.params);
  const query: [string, string][] = raw.query ?? Object.entries(base.query ?? {}).map(([k, v]) => [k, enc(v)]);
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`${op.key}: no baseline value for path parameter ${name}`);
    return v;
  });
  return query.length === 0 ? path : `${path}?${query.map(([k, v]) => `${k}=${v}`).join("&")}`;
}

export async function sendWire(w: Wire): Promise<Res> {
  const headers = new Headers();
  const token = w.token === undefined ? ADMIN : w.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  if (w.headers) for (const [k, v] of w.headers) headers.append(k, v);
  else if (w.body !== undefined) headers.set("content-type", "application/json");
  const body = typeof w.body === "string" ? new TextEncoder().encode(w.body) : w.body;
  const init: RequestInit & { duplex?: string } = { method: w.method, headers, body };
  if (body instanceof ReadableStream) init.duplex = "half";
  return fetchWorker(new Request(`http://gate.test${w.url}`, init));
}

/** The baseline request of `op` on the fixture, as JSON. */
export function baselineWire(op: Operation, f: Fixture, token?: string | null): Wire {
  const make = BASELINES[op.key];
  if (!make) throw new Error(`no baseline for ${op.key}`);
  const base = make(f);
  return {
    method: op.method,
    url: urlOf(op, f, base),
    body: base.body === undefined ? undefined : JSON.stringify(base.body),
    token,
  };
}

// ── "nothing changed" ─────────────────────────────────────────────────────

/** Tables of the account's Durable Object a request could write (the outbox and velocity buckets move on their own). */
const DO_TABLES = [
  "lots",
  "holds",
  "entries",
  "debits",
  "invoices",
  "idempotency",
  "transfers_out",
  "transfers_in",
  "budget_draws",
  "awaiting_grants",
  "topup_rules",
  "referrals",
  "recurring_grants",
];
/**
 * D1 tables a request could write; every refused request must leave their counts alone.
 * Not `accounts`: its rows are shipped by the accounts' outboxes after the
 * write (the Durable Objects' tables above are the truth of it).
 */
const D1_TABLES = [
  "audit_events",
  "api_keys",
  "webhooks",
  "settings",
  "campaigns",
  "campaign_codes",
  "campaign_redemptions",
  "units",
  "rates",
  "meter_versions",
  "approvals",
  "bulk_grants",
  "transfers",
  "budgets",
];

/**
 * What a request could have changed, as one text, read inside each account's
 * Durable Object (one call per account: no HTTP on the way) and from D1: the
 * tables' counts, the lots' remaining and held sums, the holds' statuses, the
 * last entry, and the account's meta rows but the cached global policy
 * (which a refused request may legitimately refresh).
 */
export async function stateOf(accounts: string[]): Promise<string> {
  const parts: Record<string, unknown> = {};
  for (const a of accounts) {
    parts[a] = await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
      const sql = (inst as unknown as { ctx: DurableObjectState }).ctx.storage.sql;
      const one = (q: string) => JSON.stringify(sql.exec(q).toArray());
      return [
        ...DO_TABLES.map((t) => `${t}=${sql.exec(`SELECT count(*) AS n FROM ${t}`).one().n}`),
        one("SELECT sum(remaining) AS r, sum(held) AS h, count(voided_at_ms) AS v FROM lots"),
        one("SELECT group_concat(status) AS s, sum(captured) AS c, sum(released) AS r FROM holds"),
        one("SELECT max(seq) AS seq FROM entries"),
        one("SELECT key, value FROM meta WHERE key NOT LIKE '%policy%' ORDER BY key"),
      ].join(" ");
    });
  }
  const counts = D1_TABLES.map((t) => `(SELECT count(*) FROM ${t}) AS ${t}`).join(", ");
  parts.d1 = await env.DB.prepare(`SELECT ${counts}`).first();
  return JSON.stringify(parts);
}
