/**
 * Account-scoped API keys. A key scoped to `org` (role admin, so no role
 * check ever answers first) walks EVERY operation of /openapi.json:
 *
 * - against an account outside its tree: 404 account_not_found (or, for a
 *   route that names no account, 403 forbidden / the 404 of the thing it
 *   names), with nothing changed anywhere;
 * - inside its tree: the route's normal answer.
 *
 * Operations on /v1/accounts/{account_id}/… are covered by the one scope
 * middleware; every other operation must be listed in GLOBAL below, so a
 * route added later without a decision fails this test.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_DEPTH } from "../../src/ledger/hierarchy";
import { call, expectProblem, grant, type Res, runAlarm, uid } from "./helpers";

interface Req {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: Record<string, unknown>;
}

interface World {
  org: string;
  dept: string;
  team: string;
  other: string;
  other2: string;
  token: string;
  teamReceipt: string;
  otherReceipt: string;
  bulkOther: string;
  bulkOwn: string;
  transferOther: string;
  transferOwn: string;
}

/** A route that names no account: forbidden to every scoped key, public, or checked on the accounts it names. */
type Global =
  | { kind: "forbidden" }
  | { kind: "public" }
  | {
      kind: "named";
      out: (w: World) => Req;
      /** What the outside request answers: status and code. */
      outAnswer: [number, string];
      in: (w: World) => Req;
      inStatus: number;
      /** usage: the call is 200, the event inside it carries the refusal. */
      perEvent?: true;
    };

const REPORT = { from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z", period: "month", format: "json" };
const DRAWDOWN = { from: REPORT.from, to: REPORT.to, period: "month", unit: "credits" };
const FORBIDDEN: Global = { kind: "forbidden" };
const usageOf = (accountId: string) => ({ events: [{ event_id: uid("ev"), account_id: accountId, amount: 1 }] });

const GLOBAL: Record<string, Global> = {
  "GET /.well-known/jwks.json": { kind: "public" },
  "GET /v1/accounts": {
    kind: "named",
    out: (w) => ({ query: { parent_id: w.other } }),
    outAnswer: [404, "account_not_found"],
    in: (w) => ({ query: { parent_id: w.org } }),
    inStatus: 200,
  },
  "POST /v1/api-keys": FORBIDDEN,
  "GET /v1/api-keys": FORBIDDEN,
  "DELETE /v1/api-keys/{id}": FORBIDDEN,
  "GET /v1/audit": FORBIDDEN,
  "GET /v1/policy": FORBIDDEN,
  "PUT /v1/policy": FORBIDDEN,
  "GET /v1/reconciliation/runs": FORBIDDEN,
  "GET /v1/reconciliation/runs/{id}": FORBIDDEN,
  "GET /v1/metrics": FORBIDDEN,
  "POST /v1/webhooks": FORBIDDEN,
  "GET /v1/webhooks": FORBIDDEN,
  "DELETE /v1/webhooks/{id}": FORBIDDEN,
  "GET /v1/webhooks/{id}/deliveries": FORBIDDEN,
  "GET /v1/alert-settings": FORBIDDEN,
  "PUT /v1/alert-settings": FORBIDDEN,
  "PUT /v1/units/{unit}": FORBIDDEN,
  "GET /v1/units": FORBIDDEN,
  "PUT /v1/rates/{from}/{to}": FORBIDDEN,
  "GET /v1/rates": FORBIDDEN,
  "DELETE /v1/rates/{from}/{to}": FORBIDDEN,
  "PUT /v1/meters/{meter}": FORBIDDEN,
  "GET /v1/meters/{meter}": FORBIDDEN,
  "GET /v1/meters": FORBIDDEN,
  "GET /v1/approvals": FORBIDDEN,
  "POST /v1/imports": FORBIDDEN, // legacy import: names many accounts, an admin's migration tool
  // Campaigns and redemptions (helper C): a campaign spans every account, and a scoped key may not redeem
  // for accounts even in its scope (docs: one rule, no per-account lookup on the redemption path).
  "PUT /v1/campaigns/{campaign_id}": FORBIDDEN,
  "GET /v1/campaigns": FORBIDDEN,
  "GET /v1/campaigns/{campaign_id}": FORBIDDEN,
  "POST /v1/campaigns/{campaign_id}/codes": FORBIDDEN,
  "POST /v1/redemptions": FORBIDDEN,
  "POST /v1/approvals/{approval_id}/approve": FORBIDDEN,
  "POST /v1/approvals/{approval_id}/reject": FORBIDDEN,
  "GET /v1/approvals/{approval_id}": {
    // Only approvals the key asked for itself; none here, so the outside one is 404 and so is "inside".
    kind: "named",
    out: () => ({ params: { approval_id: "appr-x" } }),
    outAnswer: [404, "not_found"],
    in: () => ({ params: { approval_id: "appr-x" } }),
    inStatus: 404,
  },
  "GET /v1/alerts": {
    kind: "named",
    out: (w) => ({ query: { account_id: w.other } }),
    outAnswer: [404, "account_not_found"],
    in: (w) => ({ query: { account_id: w.team } }),
    inStatus: 200,
  },
  "POST /v1/grants/bulk": {
    kind: "named",
    out: (w) => ({
      body: { bulk_id: uid("bulk"), account_ids: [w.team, w.other], grant: { amount: 1, type: "purchased" } },
    }),
    outAnswer: [404, "account_not_found"],
    in: (w) => ({ body: { bulk_id: uid("bulk"), account_ids: [w.team], grant: { amount: 1, type: "purchased" } } }),
    inStatus: 202,
  },
  "GET /v1/grants/bulk/{bulk_id}": {
    kind: "named",
    out: (w) => ({ params: { bulk_id: w.bulkOther } }),
    outAnswer: [404, "not_found"],
    in: (w) => ({ params: { bulk_id: w.bulkOwn } }),
    inStatus: 200,
  },
  "POST /v1/receipts/settle": {
    kind: "named",
    out: (w) => ({ body: { receipt: w.otherReceipt, used: 1 } }),
    outAnswer: [404, "account_not_found"],
    in: (w) => ({ body: { receipt: w.teamReceipt, used: 1 } }),
    inStatus: 200,
  },
  "POST /v1/transfers": {
    kind: "named",
    out: (w) => ({ body: { transfer_id: uid("t"), from_account: w.team, to_account: w.other, amount: 1 } }),
    outAnswer: [404, "account_not_found"],
    in: (w) => ({ body: { transfer_id: uid("t"), from_account: w.team, to_account: w.dept, amount: 1 } }),
    inStatus: 201,
  },
  "GET /v1/transfers/{transfer_id}": {
    kind: "named",
    out: (w) => ({ params: { transfer_id: w.transferOther } }),
    outAnswer: [404, "transfer_not_found"],
    in: (w) => ({ params: { transfer_id: w.transferOwn } }),
    inStatus: 200,
  },
  "POST /v1/usage": {
    kind: "named",
    out: (w) => ({ body: usageOf(w.other) }),
    outAnswer: [404, "account_not_found"],
    in: (w) => ({ body: usageOf(w.team) }),
    inStatus: 200,
    perEvent: true,
  },
  ...Object.fromEntries(
    ["revenue", "credits", "liability"].map((r) => {
      const extra: Record<string, string> =
        r === "revenue" ? { currency: "USD" } : r === "credits" ? { group_by: "type" } : {};
      const base: Record<string, string> = r === "liability" ? { format: "json" } : REPORT;
      const g: Global = {
        kind: "named",
        out: (w) => ({ query: { ...base, ...extra, account_id: w.other } }),
        outAnswer: [404, "account_not_found"],
        in: (w) => ({ query: { ...base, ...extra, parent_id: w.org } }),
        inStatus: 200,
      };
      return [`GET /v1/reports/${r}`, g];
    }),
  ),
  "GET /v1/reports/drawdown": {
    kind: "named",
    out: (w) => ({ query: { ...DRAWDOWN, parent_id: w.other } }),
    outAnswer: [404, "account_not_found"],
    in: (w) => ({ query: { ...DRAWDOWN, parent_id: w.org } }),
    inStatus: 200,
  },
  // A campaign's redeemers are any accounts: a report across accounts (helper K).
  "GET /v1/reports/campaigns/{campaign_id}": FORBIDDEN,
};

/** Valid bodies for the account routes that move credits or change the account, so "nothing changed" means something. */
const ACCOUNT_BODIES: Record<string, () => Record<string, unknown>> = {
  "PUT /v1/accounts/{account_id}": () => ({ name: "taken over", verified: true }),
  "POST /v1/accounts/{account_id}/grants": () => ({ grant_id: uid("g"), amount: 5, type: "purchased" }),
  "POST /v1/accounts/{account_id}/debits": () => ({ debit_id: uid("d"), amount: 1 }),
  "POST /v1/accounts/{account_id}/holds": () => ({ hold_id: uid("h"), amount: 1 }),
  "POST /v1/accounts/{account_id}/receipts": () => ({ receipt_id: uid("r"), amount: 1 }),
  "POST /v1/accounts/{account_id}/invoices": () => ({ invoice_id: uid("inv"), lines: [{ amount: 1 }] }),
  "PUT /v1/accounts/{account_id}/policy": () => ({ hold_on_expiry: "capture" }),
  "POST /v1/accounts/{account_id}/grants/{grant_id}/void": () => ({ reason: "x" }),
};

async function send(op: { method: string; path: string }, req: Req, token: string, accountId?: string): Promise<Res> {
  const params: Record<string, string> = { ...(accountId ? { account_id: accountId } : {}), ...req.params };
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? "x1"));
  const qs = new URLSearchParams(req.query ?? {}).toString();
  const body = req.body ?? (op.method === "GET" || op.method === "DELETE" ? undefined : {});
  return call(op.method, qs ? `${path}?${qs}` : path, body, { token });
}

async function ok(res: Promise<Res>, what: string): Promise<any> {
  const r = await res;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`);
  return r.json;
}

/** Everything an outside request could have changed, read by the admin token. */
async function snapshot(w: World): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const a of [w.other, w.other2]) {
    const p = `/v1/accounts/${a}`;
    for (const path of [p, `${p}/balance`, `${p}/ledger?limit=1000`, `${p}/grants?limit=1000`, `${p}/policy`]) {
      const res = await call("GET", path);
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text}`);
      out[path] = res.text.replace(/"as_of":"[^"]*"/, "");
    }
  }
  for (const path of ["/v1/api-keys", "/v1/webhooks", "/v1/policy", "/v1/alert-settings", "/v1/units", "/v1/rates"]) {
    const res = await call("GET", path);
    out[path] = `${res.status} ${res.text}`;
  }
  return out;
}

let w: World;
let ops: { key: string; method: string; path: string }[] = [];

beforeAll(async () => {
  const org = uid("org");
  const dept = uid("dept");
  const team = uid("team");
  const other = uid("other");
  const other2 = uid("other2");
  await ok(call("PUT", `/v1/accounts/${org}`, { name: "Org" }), "org");
  await ok(call("PUT", `/v1/accounts/${dept}`, { parent_id: org }), "dept");
  await ok(call("PUT", `/v1/accounts/${team}`, { parent_id: dept }), "team");
  await ok(call("PUT", `/v1/accounts/${other}`, { name: "Outside" }), "other");
  await ok(call("PUT", `/v1/accounts/${other2}`, { name: "Outside 2" }), "other2");
  for (const a of [org, dept, team, other, other2]) await grant(a, { grant_id: "g-1", amount: 1000 });
  for (const a of [org, dept, team, other, other2]) await runAlarm(a);
  const key = await ok(call("POST", "/v1/api-keys", { name: uid("scoped"), role: "admin", account_scope: org }), "key");
  const receiptOf = async (a: string) =>
    (await ok(call("POST", `/v1/accounts/${a}/receipts`, { receipt_id: uid("r"), amount: 5 }), "receipt")).receipt;
  const bulkOther = uid("bulk-other");
  await ok(
    call("POST", "/v1/grants/bulk", {
      bulk_id: bulkOther,
      account_ids: [other],
      grant: { amount: 1, type: "purchased" },
    }),
    "bulk other",
  );
  const bulkOwn = uid("bulk-own");
  await ok(
    call(
      "POST",
      "/v1/grants/bulk",
      { bulk_id: bulkOwn, account_ids: [team], grant: { amount: 1, type: "purchased" } },
      { token: key.key },
    ),
    "bulk own",
  );
  // The bulk grants run on the queue: wait until both have landed, so no grant of theirs arrives during a test.
  for (const id of [bulkOther, bulkOwn]) {
    for (let i = 0; ; i++) {
      const job = await call("GET", `/v1/grants/bulk/${id}`);
      if (job.json.status === "completed") break;
      if (i >= 200) throw new Error(`bulk grant ${id} still running`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const transferOther = uid("t-other");
  await ok(
    call("POST", "/v1/transfers", { transfer_id: transferOther, from_account: other, to_account: other2, amount: 1 }),
    "transfer other",
  );
  const transferOwn = uid("t-own");
  await ok(
    call(
      "POST",
      "/v1/transfers",
      { transfer_id: transferOwn, from_account: team, to_account: dept, amount: 1 },
      { token: key.key },
    ),
    "transfer own",
  );
  w = {
    org,
    dept,
    team,
    other,
    other2,
    token: key.key,
    teamReceipt: await receiptOf(team),
    otherReceipt: await receiptOf(other),
    bulkOther,
    bulkOwn,
    transferOther,
    transferOwn,
  };
  const doc = (await call("GET", "/openapi.json", undefined, { token: null })).json;
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(methods)) {
      ops.push({ key: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path });
    }
  }
  ops = ops.sort((a, b) => a.key.localeCompare(b.key));
}, 120_000);

const isAccountOp = (path: string) =>
  path === "/v1/accounts/{account_id}" || path.startsWith("/v1/accounts/{account_id}/");

describe("account-scoped keys walk every operation in /openapi.json", () => {
  it("every operation is an account route or classified in GLOBAL", () => {
    const unclassified = ops.filter((o) => !isAccountOp(o.path) && !(o.key in GLOBAL)).map((o) => o.key);
    expect(unclassified, "classify these operations in GLOBAL (403, or the accounts they name)").toEqual([]);
    // No stale rows: each GLOBAL row names a served operation.
    const served = new Set(ops.map((o) => o.key));
    expect(Object.keys(GLOBAL).filter((k) => !served.has(k))).toEqual([]);
  });

  it("outside its tree: 404 account_not_found or 403 forbidden, and nothing changes", async () => {
    const before = await snapshot(w);
    const wrong: string[] = [];
    for (const op of ops) {
      let res: Res;
      let want: [number, string];
      if (isAccountOp(op.path)) {
        res = await send(op, { body: ACCOUNT_BODIES[op.key]?.() }, w.token, w.other);
        want = [404, "account_not_found"];
      } else {
        const g = GLOBAL[op.key];
        if (!g || g.kind === "public") continue;
        if (g.kind === "forbidden") {
          res = await send(op, {}, w.token);
          want = [403, "forbidden"];
        } else {
          res = await send(op, g.out(w), w.token);
          want = g.outAnswer;
          if (g.perEvent) {
            const event = res.json?.results?.[0];
            if (res.status !== 200 || event?.status !== want[0] || event?.code !== want[1]) {
              wrong.push(`${op.key}: ${res.status} ${res.text.slice(0, 200)}`);
            }
            continue;
          }
        }
      }
      if (res.status !== want[0] || res.json?.code !== want[1]) {
        wrong.push(`${op.key}: want ${want.join(" ")}, got ${res.status} ${res.text.slice(0, 200)}`);
      } else {
        expectProblem(res, want[0], want[1]);
      }
    }
    expect(wrong).toEqual([]);
    expect(await snapshot(w)).toEqual(before);
  }, 120_000);

  it("inside its tree: the route's own answer, never the scope's refusal", async () => {
    const wrong: string[] = [];
    for (const op of ops) {
      if (isAccountOp(op.path)) {
        // The same request as the admin token's: neither may be refused for scope.
        const res = await send(op, { body: ACCOUNT_BODIES[op.key]?.() }, w.token, w.dept);
        const code = res.json?.code;
        if ((res.status === 404 && code === "account_not_found") || (res.status === 403 && code === "forbidden")) {
          wrong.push(`${op.key}: ${res.status} ${res.text.slice(0, 200)}`);
        }
        continue;
      }
      const g = GLOBAL[op.key];
      if (g?.kind !== "named") continue;
      const res = await send(op, g.in(w), w.token);
      const status = g.perEvent ? res.json?.results?.[0]?.status : res.status;
      if (status !== g.inStatus)
        wrong.push(`${op.key}: want ${g.inStatus}, got ${res.status} ${res.text.slice(0, 200)}`);
    }
    expect(wrong).toEqual([]);
  }, 120_000);

  it("global routes without an account filter are 403 for a scoped key", async () => {
    for (const path of [
      "/v1/accounts",
      "/v1/alerts",
      "/v1/reports/credits?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&period=month&group_by=type",
    ]) {
      expectProblem(await call("GET", path, undefined, { token: w.token }), 403, "forbidden");
    }
  });
});

describe("account-scoped keys: creating, reading, reach", () => {
  it("POST /v1/api-keys takes account_scope, shows it, and refuses an unknown or malformed one", async () => {
    const res = await call("POST", "/v1/api-keys", { name: uid("k"), role: "viewer", account_scope: w.dept });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ role: "viewer", account_scope: w.dept });
    const list = await call("GET", "/v1/api-keys");
    expect(list.json.api_keys.find((k: { id: string }) => k.id === res.json.id)).toMatchObject({
      account_scope: w.dept,
    });
    const unscoped = await call("POST", "/v1/api-keys", { name: uid("k"), role: "viewer" });
    expect(unscoped.json.account_scope).toBeNull();
    const before = (await call("GET", "/v1/api-keys")).text;
    expectProblem(
      await call("POST", "/v1/api-keys", { name: uid("k"), role: "viewer", account_scope: uid("nobody") }),
      404,
      "account_not_found",
    );
    for (const bad of ["bad id", "", 7, ["a"], { a: 1 }, "x".repeat(129)]) {
      expectProblem(
        await call("POST", "/v1/api-keys", { name: uid("k"), role: "viewer", account_scope: bad }),
        400,
        "invalid_request",
      );
    }
    expect((await call("GET", "/v1/api-keys")).text).toBe(before);
  });

  it("a key scoped to a department reaches its team but not its parent or sibling", async () => {
    const sibling = uid("sibling");
    await ok(call("PUT", `/v1/accounts/${sibling}`, { parent_id: w.org }), "sibling");
    await runAlarm(sibling);
    const key = await ok(call("POST", "/v1/api-keys", { name: uid("k"), role: "viewer", account_scope: w.dept }), "k");
    expect((await call("GET", `/v1/accounts/${w.team}/balance`, undefined, { token: key.key })).status).toBe(200);
    expect((await call("GET", `/v1/accounts/${w.dept}`, undefined, { token: key.key })).status).toBe(200);
    for (const a of [w.org, sibling, w.other, uid("nobody")]) {
      expectProblem(await call("GET", `/v1/accounts/${a}`, undefined, { token: key.key }), 404, "account_not_found");
    }
  });

  it(`reaches descendants MAX_DEPTH (${MAX_DEPTH}) levels down`, async () => {
    const ids = [uid("r")];
    await ok(call("PUT", `/v1/accounts/${ids[0]}`, {}), "root");
    await runAlarm(ids[0] as string);
    for (let i = 1; i <= MAX_DEPTH; i++) {
      const id = uid(`l${i}`);
      await ok(call("PUT", `/v1/accounts/${id}`, { parent_id: ids[i - 1] }), id);
      await runAlarm(id);
      ids.push(id);
    }
    const key = await ok(call("POST", "/v1/api-keys", { name: uid("k"), role: "viewer", account_scope: ids[0] }), "k");
    for (const id of ids) {
      expect((await call("GET", `/v1/accounts/${id}`, undefined, { token: key.key })).status).toBe(200);
    }
  });

  it("may create an account under its tree, never take over or detach one", async () => {
    const key = await ok(call("POST", "/v1/api-keys", { name: uid("k"), role: "finance", account_scope: w.org }), "k");
    const fresh = uid("fresh");
    const made = await call("PUT", `/v1/accounts/${fresh}`, { parent_id: w.dept }, { token: key.key });
    expect(made.status).toBe(201);
    // Not under its tree: as if the parent did not exist.
    expectProblem(
      await call("PUT", `/v1/accounts/${uid("x")}`, { parent_id: w.other }, { token: key.key }),
      404,
      "account_not_found",
    );
    // An existing outside account cannot be pulled in, even before the directory knows it.
    const unshipped = uid("unshipped");
    await ok(call("PUT", `/v1/accounts/${unshipped}`, { name: "not shipped yet" }), "unshipped");
    expectProblem(
      await call("PUT", `/v1/accounts/${unshipped}`, { parent_id: w.dept }, { token: key.key }),
      404,
      "account_not_found",
    );
    expect((await call("GET", `/v1/accounts/${unshipped}`)).json.parent_id).toBeNull();
    // Inside, it may not detach an account from the tree, nor move it under an outside parent.
    expectProblem(
      await call("PUT", `/v1/accounts/${w.team}`, { parent_id: null }, { token: key.key }),
      403,
      "forbidden",
    );
    expectProblem(
      await call("PUT", `/v1/accounts/${w.team}`, { parent_id: w.other }, { token: key.key }),
      404,
      "account_not_found",
    );
    expect((await call("GET", `/v1/accounts/${w.team}`)).json.parent_id).toBe(w.dept);
  });

  it("the admin token and unscoped keys are not limited", async () => {
    const key = await ok(call("POST", "/v1/api-keys", { name: uid("k"), role: "viewer" }), "k");
    for (const token of [key.key, undefined]) {
      expect((await call("GET", `/v1/accounts/${w.other}`, undefined, { token })).status).toBe(200);
      expect((await call("GET", "/v1/accounts", undefined, { token })).status).toBe(200);
    }
  });
});
