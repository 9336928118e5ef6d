/**
 * Dashboard links, tokens and sessions through the real Worker: who may mint
 * a link, what the links route refuses, which tokens open a session, the
 * cookie's flags, what a session may do on /v1, and CSRF on /app/logout.
 */
import { generateKeyPair, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  LINK_TTL_DEFAULT_SECONDS,
  LINK_TYP,
  mintCustomerSession,
  mintOperatorSession,
  verifyLink,
  verifyWidgetToken,
} from "../../src/dashboard/tokens";
import { parseReceiptKeys } from "../../src/receipts/keys";
import {
  claimsOf,
  env,
  headerOf,
  linkFor,
  linksFor,
  ORIGIN,
  page,
  refreshTarget,
  sessionFor,
  tokenOf,
} from "./dashboard-helpers";
import { call, expectProblem, grant, uid } from "./helpers";

async function keyOf(role: string, extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const res = await call("POST", "/v1/api-keys", { name: uid(role), role, ...extra });
  if (res.status !== 201) throw new Error(res.text);
  return { id: res.json.id, key: res.json.key };
}

const HEADERS = {
  "content-security-policy": expect.stringContaining("default-src 'none'"),
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};

function expectSecurityHeaders(h: Headers, referrer = "same-origin"): void {
  for (const [name, value] of Object.entries({ ...HEADERS, "referrer-policy": referrer }))
    expect(h.get(name), name).toEqual(value);
  expect(h.get("content-security-policy")).toContain("frame-ancestors 'none'");
}

let account: string;
let other: string;

beforeAll(async () => {
  account = uid("dash");
  other = uid("dash-other");
  await grant(account, { amount: 100 });
  await grant(other, { amount: 7 });
});

describe("POST /v1/accounts/{id}/dashboard-links", () => {
  it("admin, finance and support mint a link on the request's origin; gateway, marketing, viewer are 403", async () => {
    const allowed = ["finance", "support"];
    for (const role of allowed) {
      const { key } = await keyOf(role, role === "support" ? { max_grant_amount: 10 } : {});
      const before = Date.now();
      const res = await call("POST", `/v1/accounts/${account}/dashboard-links`, {}, { token: key });
      expect(res.status, role).toBe(201);
      expect(Object.keys(res.json).sort()).toEqual(["expires_at", "url", "widget_url"]);
      const url = new URL(res.json.url);
      expect(url.origin).toBe(ORIGIN);
      expect(url.pathname).toBe("/app/login");
      const link = await verifyLink(env, tokenOf(res.json.url));
      expect(link.accountId).toBe(account);
      const widgetUrl = new URL(res.json.widget_url);
      expect(widgetUrl.origin).toBe(ORIGIN);
      expect(widgetUrl.pathname).toBe(`/app/accounts/${account}/widget`);
      const widget = await verifyWidgetToken(env, tokenOf(res.json.widget_url));
      expect(widget.accountId).toBe(account);
      expect(headerOf(tokenOf(res.json.widget_url)).typ).toBe("dashboard-widget+jwt");
      const exp = Date.parse(res.json.expires_at);
      expect(exp).toBe(link.expiresAtS * 1000);
      expect(widget.expiresAtS).toBe(link.expiresAtS);
      expect(exp).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + LINK_TTL_DEFAULT_SECONDS * 1000);
      expect(exp).toBeLessThanOrEqual(Date.now() + LINK_TTL_DEFAULT_SECONDS * 1000);
    }
    const admin = await call("POST", `/v1/accounts/${account}/dashboard-links`, { ttl_seconds: 60 });
    expect(admin.status).toBe(201);
    expect(Date.parse(admin.json.expires_at) - Date.now()).toBeLessThanOrEqual(60_000);
    for (const role of ["gateway", "marketing", "viewer"]) {
      const { key } = await keyOf(role, role === "marketing" ? { max_grant_amount: 10 } : {});
      expectProblem(
        await call("POST", `/v1/accounts/${account}/dashboard-links`, {}, { token: key }),
        403,
        "forbidden",
      );
    }
  });

  it("is audited once as dashboard_link.created, naming the link id but never the token", async () => {
    const acct = uid("dash-audit");
    await grant(acct, { amount: 1 });
    const url = await linkFor(acct, undefined, 120);
    const audit = await call("GET", `/v1/audit?action=dashboard_link.created&target=${acct}`);
    expect(audit.status).toBe(200);
    expect(audit.json.events).toHaveLength(1);
    const event = audit.json.events[0];
    expect(event).toMatchObject({ actor: "admin-token:admin", action: "dashboard_link.created", target: acct });
    expect(event.after.link_id).toBe(claimsOf(tokenOf(url)).jti);
    expect(JSON.stringify(event)).not.toContain(tokenOf(url));
    const both = await linksFor(acct, undefined, 120);
    const second = (await call("GET", `/v1/audit?action=dashboard_link.created&target=${acct}`)).json.events;
    expect(second).toHaveLength(2);
    const row = second.find((e: any) => e.after.link_id === claimsOf(tokenOf(both.url)).jti);
    expect(row.after.widget_id).toBe(claimsOf(tokenOf(both.widget_url)).jti);
    expect(JSON.stringify(second)).not.toContain(tokenOf(both.widget_url));
  });

  it("refuses bad input with problem+json and audits nothing", async () => {
    const acct = uid("dash-bad");
    await grant(acct, { amount: 1 });
    const path = `/v1/accounts/${acct}/dashboard-links`;
    const bad: [unknown, string][] = [
      [{ ttl_seconds: 59 }, "invalid_request"],
      [{ ttl_seconds: 86_401 }, "invalid_request"],
      [{ ttl_seconds: "900" }, "invalid_request"],
      [{ ttl_seconds: 90.5 }, "invalid_request"],
      [{ ttl_seconds: null }, "invalid_request"],
      [{ ttl_seconds: 900, scope: "all" }, "invalid_request"],
      [[900], "invalid_request"],
    ];
    for (const [body, code] of bad) expectProblem(await call("POST", path, body), 400, code);
    expectProblem(await call("POST", path, undefined, { raw: "{ttl" }), 400, "invalid_json");
    expectProblem(
      await call("POST", path, undefined, { raw: '{"ttl_seconds": 900}', headers: { "content-type": "text/plain" } }),
      415,
      "unsupported_media_type",
    );
    expectProblem(await call("POST", `/v1/accounts/${uid("nobody")}/dashboard-links`, {}), 404, "account_not_found");
    expectProblem(await call("POST", "/v1/accounts/bad%20id/dashboard-links", {}), 400, "invalid_request");
    expectProblem(await call("POST", path, {}, { token: null }), 401, "unauthorized");
    const audit = await call("GET", `/v1/audit?action=dashboard_link.created&target=${acct}`);
    expect(audit.json.events).toEqual([]);
  });

  it("a scoped key mints links in its tree only", async () => {
    const { key } = await keyOf("admin", { account_scope: account });
    expect((await call("POST", `/v1/accounts/${account}/dashboard-links`, {}, { token: key })).status).toBe(201);
    expectProblem(
      await call("POST", `/v1/accounts/${other}/dashboard-links`, {}, { token: key }),
      404,
      "account_not_found",
    );
  });
});

async function forged(typ: string, claims: { sub: string; exp: number; iat?: number }, own = true): Promise<string> {
  const keys = await parseReceiptKeys(env.RECEIPT_SIGNING_KEYS);
  const key = own ? keys.signer.key : (await generateKeyPair("ES256")).privateKey;
  return new SignJWT({})
    .setProtectedHeader({ alg: "ES256", kid: keys.signer.kid, typ })
    .setIssuer(env.RECEIPT_ISSUER || "credit-gate")
    .setSubject(claims.sub)
    .setJti(uid("jti"))
    .setIssuedAt(claims.iat ?? Math.floor(Date.now() / 1000) - 10)
    .setExpirationTime(claims.exp)
    .sign(key);
}

async function expectRefusedLink(token: string, sentence: RegExp): Promise<void> {
  const res = await page(`/app/login?token=${encodeURIComponent(token)}`);
  expect(res.status).toBe(401);
  expect(res.headers.get("content-type")).toContain("text/html");
  expect(res.headers.get("set-cookie")).toBeNull();
  expect(res.text).toMatch(/role="alert"/);
  expect(res.text).toMatch(sentence);
  expect(res.text).not.toContain('"code"');
  expectSecurityHeaders(res.headers);
}

describe("GET /app/login", () => {
  it("exchanges a link for a session cookie and moves on to the account (meta refresh, not a redirect) without the token", async () => {
    const url = await linkFor(account);
    const res = await page(`${new URL(url).pathname}${new URL(url).search}`);
    // 200, not 303: a SameSite=Strict cookie is not sent on the redirect hop of
    // a navigation started on another site (a link in an email), so the page
    // moves on itself, a navigation of its own from this origin.
    expect(res.status).toBe(200);
    expect(res.headers.get("location")).toBeNull();
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(refreshTarget(res.text)).toBe(`/app/accounts/${account}`);
    expect(res.text).toMatch(new RegExp(`<a href="/app/accounts/${account}" data-link="continue">Continue`));
    expect(res.text).not.toContain(tokenOf(url));
    // Its URL holds the link: no Referer from it, not even to this origin.
    expect(res.text).toContain('<meta name="referrer" content="no-referrer"/>');
    expectSecurityHeaders(res.headers, "no-referrer");
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^cg_session=[A-Za-z0-9_.-]+;/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\/app(;|$)/);
    expect(cookie).not.toMatch(/Secure/);
    expect(cookie).toMatch(/Max-Age=28800/);
    const session = /cg_session=([^;]+)/.exec(cookie)?.[1] ?? "";
    expect(session).not.toBe(tokenOf(url));
    expect(headerOf(session).typ).toBe("dashboard-session+jwt");
    expect(claimsOf(session).sub).toBe(account);
    // The page it moves on to opens with that cookie.
    expect((await page(refreshTarget(res.text) ?? "", { cookie: `cg_session=${session}` })).status).toBe(200);
  });

  it("marks the cookie Secure when served over https", async () => {
    const url = await linkFor(account);
    const res = await page(`/app/login?token=${tokenOf(url)}`, { origin: "https://gate.test" });
    expect(res.status).toBe(200);
    expect(res.headers.get("set-cookie")).toMatch(/; Secure/);
  });

  it("refuses an expired, tampered, foreign-key, wrong-typ or missing token with a sentence", async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectRefusedLink(await forged(LINK_TYP, { sub: account, exp: now - 1, iat: now - 100 }), /expired/);
    // The same forgery in date is accepted: the test above fails for its expiry, not its making.
    const fresh = await forged(LINK_TYP, { sub: account, exp: now + 60 });
    expect((await page(`/app/login?token=${fresh}`)).status).toBe(200);

    const good = tokenOf(await linkFor(account));
    const [h, p, s] = good.split(".") as [string, string, string];
    const swapped = btoa(JSON.stringify({ ...claimsOf(good), sub: other }))
      .replace(/=+$/, "")
      .replace(/\+/g, "-")
      .replace(/\//g, "_");
    await expectRefusedLink(`${h}.${swapped}.${s}`, /not valid/);
    await expectRefusedLink(`${h}.${p}.${s.slice(0, -2)}${s.endsWith("AA") ? "BB" : "AA"}`, /not valid/);
    await expectRefusedLink(await forged(LINK_TYP, { sub: account, exp: now + 60 }, false), /not valid/);
    // A session is not a link, nor a receipt, nor a statement signature.
    await expectRefusedLink(await forged("dashboard-session+jwt", { sub: account, exp: now + 60 }), /not valid/);
    const receipt = await call("POST", `/v1/accounts/${account}/receipts`, { receipt_id: uid("r"), amount: 1 });
    expect(receipt.status).toBe(201);
    await expectRefusedLink(receipt.json.receipt, /not valid/);
    const from = new Date(Date.now() - 86_400_000).toISOString();
    const to = new Date(Date.now() - 1000).toISOString();
    const statement = await call("GET", `/v1/accounts/${account}/statement?from=${from}&to=${to}`);
    expect(statement.status).toBe(200);
    await expectRefusedLink(statement.json.signature, /not valid/);
    await expectRefusedLink("cg_notajwt", /not valid/);
    const missing = await page("/app/login");
    expect(missing.status).toBe(401);
    expect(missing.text).toMatch(/role="alert"/);
  });
});

describe("a customer session on /v1 and /app", () => {
  it("reads its own account as a scoped viewer and nothing else", async () => {
    const session = await sessionFor(account);
    const bearer = { token: session };
    const before = (await call("GET", `/v1/accounts/${account}/balance`)).json;
    expect((await call("GET", `/v1/accounts/${account}/balance`, undefined, bearer)).json.available).toBe(
      (await call("GET", `/v1/accounts/${account}/balance`)).json.available,
    );
    expectProblem(await call("GET", `/v1/accounts/${other}/balance`, undefined, bearer), 404, "account_not_found");
    expectProblem(await call("GET", "/v1/api-keys", undefined, bearer), 403, "forbidden");
    const writes: [string, string, unknown][] = [
      ["POST", `/v1/accounts/${account}/grants`, { grant_id: uid("g"), amount: 5, type: "purchased" }],
      ["POST", `/v1/accounts/${account}/debits`, { debit_id: uid("d"), amount: 1 }],
      ["POST", `/v1/accounts/${account}/dashboard-links`, {}],
      ["PUT", `/v1/accounts/${account}`, { name: "x" }],
    ];
    for (const [method, path, body] of writes) {
      expectProblem(await call(method, path, body, bearer), 403, "forbidden");
    }
    const after = (await call("GET", `/v1/accounts/${account}/balance`)).json;
    expect({ ...after, as_of: null }).toEqual({ ...before, as_of: null });
    expect(
      (await call("GET", `/v1/accounts/${account}/ledger`)).json.entries.every(
        (e: any) => !e.actor.startsWith("dashboard:"),
      ),
    ).toBe(true);
  });

  it("every write operation in /openapi.json refuses the session (viewer), and nothing changes", async () => {
    const session = await sessionFor(account);
    const before = (await call("GET", `/v1/accounts/${account}/ledger?limit=1000`)).text;
    const doc = (await call("GET", "/openapi.json", undefined, { token: null })).json;
    const refused: string[] = [];
    let writes = 0;
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(ops)) {
        if (method === "get") continue;
        writes++;
        const url = path.replace("{account_id}", account).replace(/\{[a-z_]+\}/g, "x1");
        const res = await call(method.toUpperCase(), url, {}, { token: session });
        if (res.status !== 403 || res.json?.code !== "forbidden")
          refused.push(`${method} ${path}: ${res.status} ${res.text.slice(0, 120)}`);
      }
    }
    expect(writes).toBeGreaterThan(30);
    expect(refused).toEqual([]);
    expect((await call("GET", `/v1/accounts/${account}/ledger?limit=1000`)).text).toBe(before);
  });

  it("a link is not a bearer, nor is a tampered session", async () => {
    const link = tokenOf(await linkFor(account));
    expectProblem(
      await call("GET", `/v1/accounts/${account}/balance`, undefined, { token: link }),
      401,
      "unauthorized",
    );
    const session = await sessionFor(account);
    const broken = `${session.slice(0, -3)}${session.endsWith("AAA") ? "BBB" : "AAA"}`;
    expectProblem(
      await call("GET", `/v1/accounts/${account}/balance`, undefined, { token: broken }),
      401,
      "unauthorized",
    );
  });

  it("another account's session opens neither this account's page nor its downloads (404 HTML)", async () => {
    const session = await sessionFor(other);
    for (const path of [
      `/app/accounts/${account}`,
      `/app/accounts/${account}/ledger.csv`,
      `/app/accounts/${account}/widget`,
    ]) {
      const res = await page(path, { cookie: `cg_session=${session}` });
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type")).toContain("text/html");
      expect(res.text).toMatch(/role="alert"/);
      expect(res.text).not.toContain('data-field="balance.');
    }
    const own = await page(`/app/accounts/${other}`, { cookie: `cg_session=${session}` });
    expect(own.status).toBe(200);
  });

  it("a customer session does not open the operator view", async () => {
    const session = await sessionFor(account);
    const res = await page("/app/admin", { cookie: `cg_session=${session}` });
    expect([303, 401, 403, 404]).toContain(res.status);
    if (res.status === 303) expect(res.headers.get("location")).toMatch(/^\/app\/admin\/login/);
    expect(res.text).not.toContain('data-field="key.');
    // Nor does its token pass as an operator cookie.
    const asOperator = await page("/app/admin", { cookie: `cg_operator=${session}` });
    expect(asOperator.text).not.toContain('data-field="key.');
    expect(asOperator.status).not.toBe(200);
  });

  it("no session, or an unknown /app path, answers an HTML page with a sentence and the security headers", async () => {
    const none = await page(`/app/accounts/${account}`);
    expect(none.status).toBe(401);
    expect(none.text).toMatch(/role="alert"/);
    const missing = await page("/app/no/such/page");
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toContain("text/html");
    expect(missing.headers.get("x-request-id")).toBeTruthy();
    expectSecurityHeaders(missing.headers);
  });
});

describe("operator sessions as bearers", () => {
  it("act as the key they name, and end when it is revoked", async () => {
    const { id } = await keyOf("support", { max_grant_amount: 50 });
    const { token } = await mintOperatorSession(env, id, "support");
    const acct = uid("dash-op");
    const ok = await call(
      "POST",
      `/v1/accounts/${acct}/grants`,
      { grant_id: uid("g"), amount: 50, type: "compensatory", reason: "outage" },
      { token },
    );
    expect(ok.status).toBe(201);
    const entries = (await call("GET", `/v1/accounts/${acct}/ledger`)).json.entries;
    expect(entries[0].actor).toBe(`${id}:support`);
    expectProblem(
      await call(
        "POST",
        `/v1/accounts/${acct}/grants`,
        { grant_id: uid("g"), amount: 51, type: "compensatory", reason: "x" },
        { token },
      ),
      403,
      "grant_limit_exceeded",
    );
    // A session claiming another role than its key has is refused.
    const lying = await mintOperatorSession(env, id, "admin");
    expectProblem(await call("GET", "/v1/api-keys", undefined, { token: lying.token }), 401, "unauthorized");
    expect((await call("DELETE", `/v1/api-keys/${id}`)).status).toBe(200);
    expectProblem(await call("GET", `/v1/accounts/${acct}/balance`, undefined, { token }), 401, "unauthorized");
  });

  it("the ADMIN_TOKEN sign-in acts as the admin token", async () => {
    const { token } = await mintOperatorSession(env, "admin-token", "admin");
    const acct = uid("dash-adm");
    const res = await call(
      "POST",
      `/v1/accounts/${acct}/grants`,
      { grant_id: uid("g"), amount: 3, type: "purchased" },
      { token },
    );
    expect(res.status).toBe(201);
    expect((await call("GET", `/v1/accounts/${acct}/ledger`)).json.entries[0].actor).toBe("admin-token:admin");
    // A customer session minted for an account is a viewer there, never an operator.
    const customer = await mintCustomerSession(env, { accountId: acct, jti: "j", expiresAtS: 0 });
    expectProblem(await call("GET", "/v1/api-keys", undefined, { token: customer.token }), 403, "forbidden");
  });
});

describe("POST /app/logout", () => {
  it("refuses a cross-site post, a post without the session's token, and signs out a same-origin one", async () => {
    const session = await sessionFor(account);
    const csrf = String(claimsOf(session).csrf);
    const cookie = `cg_session=${session}`;
    const attempts: Record<string, string>[] = [
      { origin: "https://evil.example" },
      { "sec-fetch-site": "cross-site", origin: ORIGIN },
      { "sec-fetch-site": "same-site" },
      {},
    ];
    for (const headers of attempts) {
      const res = await page("/app/logout", { method: "POST", cookie, headers, body: `csrf=${csrf}` });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(res.text).toMatch(/role="alert"[^>]*>[^<]*another site/);
      expect(res.headers.get("set-cookie")).toBeNull();
    }
    const noToken = await page("/app/logout", {
      method: "POST",
      cookie,
      headers: { origin: ORIGIN },
      body: "csrf=wrong",
    });
    expect(noToken.status).toBe(403);
    expect(noToken.headers.get("set-cookie")).toBeNull();
    const ok = await page("/app/logout", { method: "POST", cookie, headers: { origin: ORIGIN }, body: `csrf=${csrf}` });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("set-cookie")).toMatch(/^cg_session=;.*Max-Age=0/);
  });
});
