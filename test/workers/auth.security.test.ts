/**
 * Who may do what: bearer tokens, the Roles table of API.md enforced per
 * endpoint, API keys (shown once, stored hashed, revocable), the actor on
 * entries, the verified-account rule for promotional grants, and the
 * x-request-id every response carries.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { DEFAULT_POLICY } from "../../src/ledger";
import { ADMIN, call, expectProblem, type Res, read, uid } from "./helpers";

/** Balance (minus its own `as_of`), full ledger, grants and record, as served to the admin. */
async function snapshot(accountId: string): Promise<string[]> {
  const base = `/v1/accounts/${accountId}`;
  const reads = await Promise.all([
    call("GET", `${base}/balance`),
    call("GET", `${base}/ledger?limit=1000`),
    call("GET", `${base}/grants`),
    call("GET", base),
  ]);
  return reads.map((r) => `${r.status} ${r.text.replace(/"as_of":"[^"]*"/, "")}`);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

type Role = "admin" | "finance" | "support" | "marketing" | "gateway" | "viewer";
interface Key {
  id: string;
  role: Role;
  token: string;
}

async function createKey(role: Role, maxGrantAmount?: number): Promise<Key> {
  const body: Record<string, unknown> = { name: uid(`k-${role}`), role };
  if (maxGrantAmount !== undefined) body.max_grant_amount = maxGrantAmount;
  const res = await call("POST", "/v1/api-keys", body);
  expect(res.status).toBe(201);
  expect(res.json).toMatchObject({ role, name: body.name, max_grant_amount: maxGrantAmount ?? null });
  return { id: res.json.id, role, token: res.json.key };
}

const SUPPORT_MAX = 100;
const MARKETING_MAX = 200;
const R = uid("roles");
const keys = {} as Record<Role | "adminKey", Key>;

beforeAll(async () => {
  keys.finance = await createKey("finance");
  keys.support = await createKey("support", SUPPORT_MAX);
  keys.marketing = await createKey("marketing", MARKETING_MAX);
  keys.gateway = await createKey("gateway");
  keys.viewer = await createKey("viewer");
  keys.adminKey = await createKey("admin");
  keys.admin = { id: "admin-token", role: "admin", token: ADMIN };
  expect((await call("PUT", `/v1/accounts/${R}`, { name: "roles", verified: true })).status).toBe(201);
  const g = await call("POST", `/v1/accounts/${R}/grants`, {
    grant_id: "g-seed",
    amount: 1_000_000,
    type: "purchased",
  });
  expect(g.status).toBe(201);
});

describe("authentication", () => {
  const paths: [string, string, unknown?][] = [
    ["GET", `/v1/accounts/${R}/balance`],
    ["GET", "/v1/api-keys"],
    ["POST", `/v1/accounts/${R}/debits`, { debit_id: "d-unauth", amount: 1 }],
    ["POST", `/v1/accounts/${R}/grants`, { grant_id: "g-unauth", amount: 1, type: "purchased" }],
    ["GET", "/v1/policy"],
    ["GET", "/v1/no-such-route"],
  ];
  const badHeaders: [string, Record<string, string>][] = [
    ["no Authorization", {}],
    ["empty Authorization", { authorization: "" }],
    ["Bearer without a token", { authorization: "Bearer" }],
    ["Bearer and a blank", { authorization: "Bearer   " }],
    ["Basic scheme", { authorization: `Basic ${btoa(`admin:${ADMIN}`)}` }],
    ["Token scheme", { authorization: `Token ${ADMIN}` }],
    ["token without a scheme", { authorization: ADMIN }],
    ["two tokens", { authorization: `Bearer ${ADMIN} ${ADMIN}` }],
    ["unknown token", { authorization: "Bearer not-a-token" }],
    ["admin token with a suffix", { authorization: `Bearer ${ADMIN}x` }],
    ["admin token, other case", { authorization: `Bearer ${ADMIN.toUpperCase()}` }],
    ["admin token prefix", { authorization: `Bearer ${ADMIN.slice(0, -1)}` }],
    ["made-up API key", { authorization: "Bearer cg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }],
  ];

  for (const [method, path, body] of paths) {
    it.each(badHeaders)(`${method} ${path.replace(R, "{R}")}: %s → 401 unauthorized`, async (_name, headers) => {
      const before = await snapshot(R);
      const res = await call(method, path, body, { token: null, headers });
      expectProblem(res, 401, "unauthorized");
      expect(res.text).not.toContain(ADMIN);
      expect(await snapshot(R)).toEqual(before);
    });
  }

  it("accepts the scheme in any case and extra spaces (RFC 9110)", async () => {
    for (const authorization of [`bearer ${ADMIN}`, `BEARER ${ADMIN}`, `Bearer   ${ADMIN}`]) {
      const res = await call("GET", `/v1/accounts/${R}/balance`, undefined, {
        token: null,
        headers: { authorization },
      });
      expect(res.status).toBe(200);
    }
  });

  it("checks the token before anything else looks at the request", async () => {
    const big = JSON.stringify({ amount: 1, pad: "x".repeat(70_000) });
    const cases: [string, RequestInit][] = [
      ["too large", { method: "POST", body: big, headers: { "content-type": "application/json" } }],
      ["text/plain", { method: "POST", body: "{}", headers: { "content-type": "text/plain" } }],
      ["bad JSON", { method: "POST", body: "{", headers: { "content-type": "application/json" } }],
    ];
    for (const [, init] of cases) {
      const res = await read(
        await worker.fetch(
          new Request(`http://gate.test/v1/accounts/${R}/debits`, init),
          env,
          createExecutionContext(),
        ),
      );
      expectProblem(res, 401, "unauthorized");
    }
    // Unknown routes under /v1 are not enumerable without a token either.
    expectProblem(await call("GET", "/v1/secret-admin-thing", undefined, { token: null }), 401, "unauthorized");
  });

  it("health, the served contract and the docs need no token", async () => {
    for (const path of ["/v1/health", "/openapi.json", "/docs"]) {
      expect((await call("GET", path, undefined, { token: null })).status).toBe(200);
    }
  });
});

// ── the Roles table ───────────────────────────────────────────────────────

interface Op {
  name: string;
  allowed: readonly Role[];
  okStatus: number;
  /** Makes the fixture the operation needs, with the admin token; returns its id. */
  prepare?: () => Promise<string>;
  run: (token: string, fixture: string) => Promise<Res>;
  /** After a refusal: proves the refused call changed nothing outside the account. */
  unchanged?: (fixture: string) => Promise<void>;
}

const ALL: readonly Role[] = ["admin", "finance", "support", "marketing", "gateway", "viewer"];
const READERS: readonly Role[] = ["admin", "finance", "support", "marketing", "viewer"];
const base = `/v1/accounts/${R}`;

const freshGrant = async (): Promise<string> => {
  const id = uid("g-fixture");
  const res = await call("POST", `${base}/grants`, { grant_id: id, amount: 10, type: "purchased" });
  expect(res.status).toBe(201);
  return id;
};
const freshHold = async (): Promise<string> => {
  const id = uid("h-fixture");
  const res = await call("POST", `${base}/holds`, { hold_id: id, amount: 2 });
  expect(res.status).toBe(201);
  return id;
};
const keyNamed = async (name: string) =>
  (await call("GET", "/v1/api-keys")).json.api_keys.filter((k: any) => k.name === name);

const OPS: Op[] = [
  {
    name: "PUT /v1/accounts/{id}",
    allowed: ["admin", "finance"],
    okStatus: 200,
    run: (t) => call("PUT", base, { name: uid("renamed") }, { token: t }),
  },
  {
    name: "PUT /v1/accounts/{new id}",
    allowed: ["admin", "finance"],
    okStatus: 201,
    prepare: async () => uid("new-acct"),
    run: (t, id) => call("PUT", `/v1/accounts/${id}`, { name: "new" }, { token: t }),
    unchanged: async (id) => expectProblem(await call("GET", `/v1/accounts/${id}`), 404, "account_not_found"),
  },
  {
    name: "GET /v1/accounts/{id}",
    allowed: READERS,
    okStatus: 200,
    run: (t) => call("GET", base, undefined, { token: t }),
  },
  {
    name: "GET balance",
    allowed: ALL,
    okStatus: 200,
    run: (t) => call("GET", `${base}/balance`, undefined, { token: t }),
  },
  {
    name: "GET balance as_of",
    allowed: ALL,
    okStatus: 200,
    run: (t) => call("GET", `${base}/balance?as_of=2020-01-01T00:00:00Z`, undefined, { token: t }),
  },
  {
    name: "GET grants",
    allowed: READERS,
    okStatus: 200,
    run: (t) => call("GET", `${base}/grants`, undefined, { token: t }),
  },
  {
    name: "GET ledger",
    allowed: READERS,
    okStatus: 200,
    run: (t) => call("GET", `${base}/ledger`, undefined, { token: t }),
  },
  {
    name: "GET ledger as CSV",
    allowed: READERS,
    okStatus: 200,
    run: (t) => call("GET", `${base}/ledger?format=csv`, undefined, { token: t }),
  },
  {
    name: "POST purchased grant",
    allowed: ["admin", "finance"],
    okStatus: 201,
    run: (t) => call("POST", `${base}/grants`, { grant_id: uid("g"), amount: 5, type: "purchased" }, { token: t }),
  },
  {
    name: "POST compensatory grant ≤ support max",
    allowed: ["admin", "finance", "support"],
    okStatus: 201,
    run: (t) =>
      call(
        "POST",
        `${base}/grants`,
        { grant_id: uid("g"), amount: 50, type: "compensatory", reason: "outage" },
        { token: t },
      ),
  },
  {
    name: "POST promotional grant ≤ marketing max",
    allowed: ["admin", "finance", "marketing"],
    okStatus: 201,
    run: (t) => call("POST", `${base}/grants`, { grant_id: uid("g"), amount: 50, type: "promotional" }, { token: t }),
  },
  {
    name: "POST grant to a new account",
    allowed: ["admin", "finance"],
    okStatus: 201,
    prepare: async () => uid("new-acct"),
    run: (t, id) =>
      call("POST", `/v1/accounts/${id}/grants`, { grant_id: "g1", amount: 5, type: "purchased" }, { token: t }),
    unchanged: async (id) => expectProblem(await call("GET", `/v1/accounts/${id}`), 404, "account_not_found"),
  },
  {
    name: "POST void",
    allowed: ["admin", "finance"],
    okStatus: 200,
    prepare: freshGrant,
    run: (t, g) => call("POST", `${base}/grants/${g}/void`, { reason: "test" }, { token: t }),
  },
  {
    name: "POST debit",
    allowed: ["admin", "gateway"],
    okStatus: 200,
    run: (t) => call("POST", `${base}/debits`, { debit_id: uid("d"), amount: 1 }, { token: t }),
  },
  {
    name: "POST hold",
    allowed: ["admin", "gateway"],
    okStatus: 201,
    run: (t) => call("POST", `${base}/holds`, { hold_id: uid("h"), amount: 1 }, { token: t }),
  },
  {
    name: "POST capture",
    allowed: ["admin", "gateway"],
    okStatus: 200,
    prepare: freshHold,
    run: (t, h) => call("POST", `${base}/holds/${h}/capture`, { amount: 1 }, { token: t }),
  },
  {
    name: "POST release",
    allowed: ["admin", "gateway"],
    okStatus: 200,
    prepare: freshHold,
    run: (t, h) => call("POST", `${base}/holds/${h}/release`, undefined, { token: t }),
  },
  {
    name: "GET hold",
    allowed: ALL,
    okStatus: 200,
    prepare: freshHold,
    run: (t, h) => call("GET", `${base}/holds/${h}`, undefined, { token: t }),
  },
  {
    name: "GET /v1/policy",
    allowed: ["admin"],
    okStatus: 200,
    run: (t) => call("GET", "/v1/policy", undefined, { token: t }),
  },
  {
    name: "PUT /v1/policy",
    allowed: ["admin"],
    okStatus: 200,
    run: (t) => call("PUT", "/v1/policy", {}, { token: t }),
  },
  {
    name: "GET account policy",
    allowed: ["admin", "finance"],
    okStatus: 200,
    run: (t) => call("GET", `${base}/policy`, undefined, { token: t }),
  },
  {
    name: "PUT account policy",
    allowed: ["admin", "finance"],
    okStatus: 200,
    prepare: async () => (await call("GET", `${base}/policy`)).text,
    run: (t) => call("PUT", `${base}/policy`, { hold_on_expiry: null }, { token: t }),
    unchanged: async (before) => expect((await call("GET", `${base}/policy`)).text).toBe(before),
  },
  {
    name: "POST /v1/api-keys",
    allowed: ["admin"],
    okStatus: 201,
    prepare: async () => uid("k-matrix"),
    run: (t, name) => call("POST", "/v1/api-keys", { name, role: "viewer" }, { token: t }),
    unchanged: async (name) => expect(await keyNamed(name)).toEqual([]),
  },
  {
    name: "POST /v1/api-keys (an admin key)",
    allowed: ["admin"],
    okStatus: 201,
    prepare: async () => uid("k-escalate"),
    run: (t, name) => call("POST", "/v1/api-keys", { name, role: "admin" }, { token: t }),
    unchanged: async (name) => expect(await keyNamed(name)).toEqual([]),
  },
  {
    name: "GET /v1/api-keys",
    allowed: ["admin"],
    okStatus: 200,
    run: (t) => call("GET", "/v1/api-keys", undefined, { token: t }),
  },
  {
    name: "DELETE /v1/api-keys/{id}",
    allowed: ["admin"],
    okStatus: 200,
    prepare: async () => (await createKey("viewer")).id,
    run: (t, id) => call("DELETE", `/v1/api-keys/${id}`, undefined, { token: t }),
    unchanged: async (id) => {
      const list = (await call("GET", "/v1/api-keys")).json.api_keys;
      expect(list.find((k: any) => k.id === id)).toMatchObject({ revoked_at: null });
    },
  },
];

const CALLERS = ["admin", "adminKey", "finance", "support", "marketing", "gateway", "viewer"] as const;
const MATRIX = OPS.flatMap((op) =>
  CALLERS.map((caller) => {
    const role: Role = caller === "adminKey" ? "admin" : caller;
    const allowed = op.allowed.includes(role);
    return { op, caller, allowed, label: `${caller} ${allowed ? "may" : "may not"}: ${op.name}` };
  }),
);

describe("the Roles table (API.md) per endpoint", () => {
  it.each(MATRIX)("$label", async ({ op, caller, allowed }) => {
    const key = keys[caller];
    const fixture = op.prepare ? await op.prepare() : "";
    const before = allowed ? [] : await snapshot(R);
    const res = await op.run(key.token, fixture);
    if (allowed) {
      expect({ status: res.status, body: res.json }).toMatchObject({ status: op.okStatus });
      expect(res.headers.get("x-request-id")).toBeTruthy();
      return;
    }
    expectProblem(res, 403, "forbidden");
    expect(res.json.detail).toContain(key.role);
    expect(await snapshot(R)).toEqual(before);
    await op.unchanged?.(fixture);
  });
});

describe("grant limits per key", () => {
  const grantAs = (key: Key, body: Record<string, unknown>) =>
    call("POST", `${base}/grants`, { grant_id: uid("g-limit"), ...body }, { token: key.token });

  it("support: compensatory up to max_grant_amount, nothing else", async () => {
    const ok = await grantAs(keys.support, { amount: SUPPORT_MAX, type: "compensatory", reason: "sorry" });
    expect(ok.status).toBe(201);
    const refusals: [Record<string, unknown>, string][] = [
      [{ amount: SUPPORT_MAX + 1, type: "compensatory", reason: "sorry" }, "grant_limit_exceeded"],
      [{ amount: 10 ** 15, type: "compensatory", reason: "sorry" }, "grant_limit_exceeded"],
      [{ amount: 1, type: "promotional" }, "forbidden"],
      [{ amount: 1, type: "purchased" }, "forbidden"],
      [{ amount: SUPPORT_MAX + 1, type: "promotional" }, "forbidden"],
    ];
    for (const [body, code] of refusals) {
      const before = await snapshot(R);
      const res = await grantAs(keys.support, body);
      expectProblem(res, 403, code);
      if (code === "grant_limit_exceeded") expect(res.json.max_grant_amount).toBe(SUPPORT_MAX);
      expect(await snapshot(R)).toEqual(before);
    }
  });

  it("marketing: promotional up to max_grant_amount, nothing else", async () => {
    const ok = await grantAs(keys.marketing, { amount: MARKETING_MAX, type: "promotional", campaign: "spring" });
    expect(ok.status).toBe(201);
    const refusals: [Record<string, unknown>, string][] = [
      [{ amount: MARKETING_MAX + 1, type: "promotional" }, "grant_limit_exceeded"],
      [{ amount: 1, type: "compensatory", reason: "x" }, "forbidden"],
      [{ amount: 1, type: "purchased" }, "forbidden"],
    ];
    for (const [body, code] of refusals) {
      const before = await snapshot(R);
      expectProblem(await grantAs(keys.marketing, body), 403, code);
      expect(await snapshot(R)).toEqual(before);
    }
  });

  it("a refused grant is not remembered: the same grant_id works for an allowed caller", async () => {
    const grantId = uid("g-retry");
    const body = { grant_id: grantId, amount: SUPPORT_MAX + 1, type: "compensatory", reason: "x" };
    expectProblem(
      await call("POST", `${base}/grants`, body, { token: keys.support.token }),
      403,
      "grant_limit_exceeded",
    );
    const ok = await call("POST", `${base}/grants`, body, { token: keys.finance.token });
    expect(ok.status).toBe(201);
    expect(ok.headers.get("idempotent-replayed")).toBeNull();
  });

  it("roles that never grant are refused before the body is even read", async () => {
    for (const role of ["gateway", "viewer"] as const) {
      expectProblem(
        await call("POST", `${base}/grants`, { amount: "not even valid" }, { token: keys[role].token }),
        403,
        "forbidden",
      );
    }
  });
});

describe("the actor on entries", () => {
  it("is <key_id>:<role> for API keys and admin-token:admin for the bootstrap token", async () => {
    const a = uid("actor");
    const writes: [Key, string, string, Record<string, unknown>][] = [
      [keys.admin, "POST", "/grants", { grant_id: "g-admin", amount: 500, type: "purchased" }],
      [keys.finance, "POST", "/grants", { grant_id: "g-fin", amount: 50, type: "purchased" }],
      [keys.support, "POST", "/grants", { grant_id: "g-sup", amount: 5, type: "compensatory", reason: "x" }],
      [keys.marketing, "POST", "/grants", { grant_id: "g-mkt", amount: 5, type: "promotional" }],
      [keys.gateway, "POST", "/debits", { debit_id: "d-gw", amount: 3 }],
      [keys.gateway, "POST", "/holds", { hold_id: "h-gw", amount: 2 }],
      [keys.gateway, "POST", "/holds/h-gw/capture", { amount: 1 }],
      [keys.finance, "POST", "/grants/g-fin/void", { reason: "mistake" }],
      [keys.adminKey, "POST", "/debits", { debit_id: "d-adminkey", amount: 1 }],
    ];
    const expected: string[] = [];
    for (const [key, method, rest, body] of writes) {
      const res = await call(method, `/v1/accounts/${a}${rest}`, body, { token: key.token });
      expect(res.status).toBeLessThan(300);
      expected.push(key.id === "admin-token" ? "admin-token:admin" : `${key.id}:${key.role}`);
    }
    const entries = (await call("GET", `/v1/accounts/${a}/ledger?limit=1000`)).json.entries as any[];
    // One transaction per write; every entry of a transaction carries its actor.
    const byTxn = new Map<string, Set<string>>();
    for (const e of entries) byTxn.set(e.txn_id, (byTxn.get(e.txn_id) ?? new Set()).add(e.actor));
    expect([...byTxn.values()].map((s) => [...s])).toEqual(expected.map((actor) => [actor]));
    expect(keys.finance.id).toMatch(/^[A-Za-z0-9._:-]+$/);
  });
});

describe("API keys", () => {
  it("the key is shown once; the list never serves it nor its hash", async () => {
    const created = await call("POST", "/v1/api-keys", { name: uid("k-once"), role: "viewer" });
    expect(created.status).toBe(201);
    expect(Object.keys(created.json).sort()).toEqual(
      [
        "account_scope",
        "created_at",
        "id",
        "key",
        "max_grant_amount",
        "max_transfer_amount",
        "name",
        "revoked_at",
        "role",
      ].sort(),
    );
    const token: string = created.json.key;
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(token).not.toBe(created.json.id);
    const hash = await sha256Hex(token);
    const list = await call("GET", "/v1/api-keys");
    expect(list.status).toBe(200);
    const mine = list.json.api_keys.find((k: any) => k.id === created.json.id);
    expect(mine).toEqual({
      id: created.json.id,
      name: created.json.name,
      role: "viewer",
      max_grant_amount: null,
      max_transfer_amount: null,
      account_scope: null,
      created_at: created.json.created_at,
      revoked_at: null,
    });
    for (const k of list.json.api_keys) {
      expect(Object.keys(k).sort()).toEqual([
        "account_scope",
        "created_at",
        "id",
        "max_grant_amount",
        "max_transfer_amount",
        "name",
        "revoked_at",
        "role",
      ]);
    }
    expect(list.text).not.toContain(token);
    expect(list.text).not.toContain(hash);
    expect(list.text).not.toContain(token.slice(3, 20));
    // The hash is not a credential.
    expectProblem(await call("GET", `${base}/balance`, undefined, { token: hash }), 401, "unauthorized");
    // Two keys never share a token.
    const other = await call("POST", "/v1/api-keys", { name: uid("k-once"), role: "viewer" });
    expect(other.json.key).not.toBe(token);
  });

  for (const via of ["the Worker entry (exports.default)", "the fetch handler"] as const) {
    it(`a revoked key is refused at once in the same isolate, via ${via}`, async () => {
      const viaExports = via.startsWith("the Worker");
      const key = await createKey("gateway");
      const use = () =>
        call("POST", `${base}/debits`, { debit_id: uid("d-rev"), amount: 1 }, { token: key.token, viaExports });
      expect((await use()).status).toBe(200); // now cached in this isolate
      const revoked = await call("DELETE", `/v1/api-keys/${key.id}`, undefined, { viaExports });
      expect(revoked.status).toBe(200);
      expect(revoked.json.revoked_at).toEqual(expect.any(String));
      expect(revoked.json.key).toBeUndefined();
      const before = await snapshot(R);
      expectProblem(await use(), 401, "unauthorized");
      expectProblem(
        await call("GET", `${base}/balance`, undefined, { token: key.token, viaExports }),
        401,
        "unauthorized",
      );
      expect(await snapshot(R)).toEqual(before);
      // Revoking again is harmless and keeps the first revocation time.
      const again = await call("DELETE", `/v1/api-keys/${key.id}`, undefined, { viaExports });
      expect(again.status).toBe(200);
      expect(again.json.revoked_at).toBe(revoked.json.revoked_at);
      const listed = (await call("GET", "/v1/api-keys")).json.api_keys.find((k: any) => k.id === key.id);
      expect(listed.revoked_at).toBe(revoked.json.revoked_at);
    });
  }

  it("a key cannot revoke itself unless it is an admin key", async () => {
    const key = await createKey("finance");
    expectProblem(await call("DELETE", `/v1/api-keys/${key.id}`, undefined, { token: key.token }), 403, "forbidden");
    expect((await call("GET", `${base}/balance`, undefined, { token: key.token })).status).toBe(200);
  });
});

describe("require_verified_for_promotional", () => {
  afterAll(async () => {
    // Other suites share this D1: always put the defaults back.
    const res = await call("PUT", "/v1/policy", DEFAULT_POLICY);
    expect(res.status).toBe(200);
    expect(res.json).toEqual(DEFAULT_POLICY);
  });

  it("refuses promotional grants to unverified accounts until they are verified", async () => {
    const v = uid("unverified");
    const ghost = uid("ghost");
    expect((await call("PUT", `/v1/accounts/${v}`, { name: "not yet verified" })).status).toBe(201);
    expect((await call("GET", `/v1/accounts/${v}`)).json.verified).toBe(false);
    const promo = (id: string) => ({ grant_id: id, amount: 50, type: "promotional" });
    try {
      const on = await call("PUT", "/v1/policy", { require_verified_for_promotional: true });
      expect(on.status).toBe(200);
      expect(on.json).toEqual({ ...DEFAULT_POLICY, require_verified_for_promotional: true });
      expect((await call("GET", "/v1/policy")).json.require_verified_for_promotional).toBe(true);

      for (const token of [ADMIN, keys.marketing.token, keys.finance.token]) {
        const before = await snapshot(v);
        expectProblem(
          await call("POST", `/v1/accounts/${v}/grants`, promo("g-promo"), { token }),
          403,
          "account_not_verified",
        );
        expect(await snapshot(v)).toEqual(before);
      }
      // A promotional grant to an unknown account would create it unverified: refused, nothing created.
      expectProblem(await call("POST", `/v1/accounts/${ghost}/grants`, promo("g1")), 403, "account_not_verified");
      expectProblem(await call("GET", `/v1/accounts/${ghost}`), 404, "account_not_found");
      // Other types are not affected.
      expect(
        (await call("POST", `/v1/accounts/${v}/grants`, { grant_id: "g-buy", amount: 5, type: "purchased" })).status,
      ).toBe(201);

      const verified = await call("PUT", `/v1/accounts/${v}`, { verified: true });
      expect(verified.status).toBe(200);
      expect(verified.json).toMatchObject({ verified: true, name: "not yet verified" });
      const ok = await call("POST", `/v1/accounts/${v}/grants`, promo("g-promo"), { token: keys.marketing.token });
      expect(ok.status).toBe(201);
      expect(ok.json.grant).toMatchObject({ grant_id: "g-promo", type: "promotional", remaining: 50 });
      expect(ok.headers.get("idempotent-replayed")).toBeNull();
    } finally {
      await call("PUT", "/v1/policy", {
        require_verified_for_promotional: DEFAULT_POLICY.require_verified_for_promotional,
      });
    }
    // Back off: an unverified account may receive promotional credits again.
    const w = uid("unverified");
    expect((await call("POST", `/v1/accounts/${w}/grants`, promo("g1"))).status).toBe(201);
  });
});

describe("x-request-id", () => {
  const ID = /^[A-Za-z0-9._-]{1,128}$/;
  const requests: [string, string, string, unknown, string | null][] = [
    ["health", "GET", "/v1/health", undefined, null],
    ["openapi", "GET", "/openapi.json", undefined, null],
    ["balance 200", "GET", `${base}/balance`, undefined, ADMIN],
    ["grant 201", "POST", `${base}/grants`, { amount: 1, type: "purchased" }, ADMIN],
    ["401", "GET", `${base}/balance`, undefined, null],
    ["403", "GET", "/v1/policy", undefined, "viewer"],
    ["400", "POST", `${base}/debits`, { amount: 0 }, ADMIN],
    ["402", "POST", `${base}/debits`, { amount: 10 ** 15 }, ADMIN],
    ["404 /v1", "GET", "/v1/nope", undefined, ADMIN],
    ["404 outside /v1", "GET", "/nope", undefined, null],
    ["404 account", "GET", `/v1/accounts/${uid("nobody")}/balance`, undefined, ADMIN],
  ];

  it.each(requests)(
    "%s: generated when absent, echoed when valid, replaced when not",
    async (_n, method, path, body, who) => {
      const token = who === "viewer" ? keys.viewer.token : who;
      const send = (headers: Record<string, string>) => {
        // Fresh ids per send so POSTs never replay.
        const b =
          body && typeof body === "object"
            ? { ...body, ...(path.endsWith("/grants") ? { grant_id: uid("g") } : { debit_id: uid("d") }) }
            : body;
        return call(method, path, b, { token, headers });
      };
      const none = await send({});
      const generated = none.headers.get("x-request-id");
      expect(generated).toMatch(ID);
      const none2 = await send({});
      expect(none2.headers.get("x-request-id")).not.toBe(generated);

      for (const valid of ["req-123", "A.b_c-9", "r".repeat(128)]) {
        const res = await send({ "x-request-id": valid });
        expect(res.status).toBe(none.status);
        expect(res.headers.get("x-request-id")).toBe(valid);
      }
      for (const invalid of [
        "r".repeat(129),
        "x".repeat(200),
        "has space",
        "colon:id",
        "semi;colon",
        "slash/id",
        'quote"d',
      ]) {
        const res = await send({ "x-request-id": invalid });
        expect(res.status).toBe(none.status);
        const id = res.headers.get("x-request-id");
        expect(id).toMatch(ID);
        expect(id).not.toBe(invalid);
      }
    },
  );
});

describe("grant-limited roles", () => {
  it("a support or marketing key created without max_grant_amount may grant nothing", async () => {
    for (const [role, type] of [
      ["support", "compensatory"],
      ["marketing", "promotional"],
    ] as const) {
      const created = await call("POST", "/v1/api-keys", { name: `unlimited ${role}`, role });
      expect(created.status).toBe(201);
      expect(created.json.max_grant_amount).toBeNull();
      const a = uid();
      const refused = await call(
        "POST",
        `/v1/accounts/${a}/grants`,
        { grant_id: "g", amount: 1, type, reason: "outage" },
        { token: created.json.key },
      );
      expect(refused.status).toBe(403);
      expect(refused.json).toMatchObject({ code: "grant_limit_exceeded", max_grant_amount: null });
      expect((await call("GET", `/v1/accounts/${a}`)).json.code).toBe("account_not_found");
    }
  });
});
