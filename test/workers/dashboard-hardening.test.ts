/**
 * The dashboard after review, through the real Worker: same-origin posts from
 * a page with a strict referrer policy (`Origin: null`), cross-site posts to
 * every operator action, ADMIN_TOKEN rotation and the keyed `ath`, the
 * widget's own token, what a customer page never shows (key ids), impossible
 * dates, the layout's CSS, dot-only ids, one signature check per bearer, and
 * ledger positions shown as plain integers.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { exportJWK, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { mintCustomerSession, mintOperatorSession, sessionCaller, type TokenEnv } from "../../src/dashboard/tokens";
import worker from "../../src/index";
import { sha256Hex } from "../../src/ledger";
import { page as adminPage, alertOf, apiKey, cookieOf, csrfOf, signIn, unescapeHtml } from "./dashboard-admin-helpers";
import { claimsOf, fields, linksFor, page, sessionFor, tokenOf } from "./dashboard-helpers";
import { ADMIN, call, expectProblem, grant, ledgerEntries, uid } from "./helpers";

const CROSS_SITE = /another site/;

let account: string;
let cookie: string;
let csrf: string;

beforeAll(async () => {
  account = uid("hard");
  await grant(account, { amount: 500 });
  const session = await sessionFor(account);
  cookie = `cg_session=${session}`;
  csrf = String(claimsOf(session).csrf);
});

describe("the origin check (Sec-Fetch-Site first, then Origin)", () => {
  it("accepts a same-origin post whose Origin is null (a no-referrer page), refuses Origin null alone and cross-site", async () => {
    // Origin: null with Sec-Fetch-Site: same-origin is what Chromium sends for a
    // form posted from a page with Referrer-Policy: no-referrer.
    const refused: Record<string, string>[] = [
      { origin: "null" },
      { origin: "null", "sec-fetch-site": "cross-site" },
      { origin: "null", "sec-fetch-site": "same-site" },
      { origin: "https://evil.example" },
      { "sec-fetch-site": "cross-site", origin: "http://gate.test" },
      { "sec-fetch-site": "none" },
      {},
    ];
    for (const headers of refused) {
      const res = await page("/app/logout", { method: "POST", cookie, headers, body: `csrf=${csrf}` });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(res.text).toMatch(/role="alert"[^>]*>[^<]*another site/);
      expect(res.headers.get("set-cookie")).toBeNull();
    }
    const ok = await page("/app/logout", {
      method: "POST",
      cookie,
      headers: { origin: "null", "sec-fetch-site": "same-origin" },
      body: `csrf=${csrf}`,
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("set-cookie")).toMatch(/^cg_session=;.*Max-Age=0/);
    // The csrf token is still required with Sec-Fetch-Site: same-origin.
    const again = await sessionFor(account);
    const noToken = await page("/app/logout", {
      method: "POST",
      cookie: `cg_session=${again}`,
      headers: { origin: "null", "sec-fetch-site": "same-origin" },
      body: "csrf=not-the-token-of-this-session",
    });
    expect(noToken.status).toBe(403);
    expect(noToken.headers.get("set-cookie")).toBeNull();
  });

  it("an operator signs in and grants from pages that send Origin: null with Sec-Fetch-Site: same-origin", async () => {
    const browser = { origin: "null", "sec-fetch-site": "same-origin" };
    const login = await adminPage("/app/admin/login", {
      form: new URLSearchParams({ api_key: ADMIN }),
      headers: browser,
    });
    expect(login.status).toBe(303);
    const op = cookieOf(login, "cg_operator") ?? "";
    expect(op).not.toBe("");
    const acct = uid("hard-null");
    expect((await call("PUT", `/v1/accounts/${acct}`, {})).status).toBe(201);
    const form = await adminPage(`/app/admin/accounts/${acct}`, { cookie: op });
    const res = await adminPage(`/app/admin/accounts/${acct}/grants`, {
      cookie: op,
      headers: browser,
      form: new URLSearchParams({
        csrf: csrfOf(form.text),
        grant_id: uid("g"),
        type: "purchased",
        amount: "9",
        unit: "credits",
        reason_code: "goodwill",
      }),
    });
    expect(res.status).toBe(303);
    expect((await ledgerEntries(acct)).map((e) => e.amount)).toEqual([9]);
  });

  it("pages say Referrer-Policy: same-origin; the sign-in page (its URL holds the link) and the widget say no-referrer", async () => {
    const own = await page(`/app/accounts/${account}`, { cookie: `cg_session=${await sessionFor(account)}` });
    expect(own.status).toBe(200);
    expect(own.headers.get("referrer-policy")).toBe("same-origin");
    expect(own.text).toContain('<meta name="referrer" content="same-origin"/>');
    const links = await linksFor(account);
    const login = await page(`/app/login?token=${tokenOf(links.url)}`);
    expect(login.headers.get("referrer-policy")).toBe("no-referrer");
    const widget = await page(`/app/accounts/${account}/widget?token=${tokenOf(links.widget_url)}`);
    expect(widget.status).toBe(200);
    expect(widget.headers.get("referrer-policy")).toBe("no-referrer");
  });
});

describe("cross-site posts to operator actions", () => {
  it("every /app/admin action answers 403 with a sentence, with or without the cookie, and nothing changes", async () => {
    const acct = uid("hard-x");
    const grantId = uid("g");
    await grant(acct, { grant_id: grantId, amount: 40, type: "purchased" });
    const before = await ledgerEntries(acct);
    const op = await signIn(ADMIN);
    const actions: [string, Record<string, string>][] = [
      [`/app/admin/accounts/${acct}/grants`, { type: "purchased", amount: "5", reason_code: "goodwill" }],
      [`/app/admin/accounts/${acct}/grants/${grantId}/void`, { reason_code: "goodwill" }],
      [`/app/admin/accounts/${acct}/grants/${grantId}/refund`, { reason_code: "goodwill", amount: "1" }],
      ["/app/admin/bulk", { account_ids: acct, type: "purchased", amount: "5", reason_code: "goodwill" }],
      [`/app/admin/approvals/${uid("ap")}/approve`, {}],
      [`/app/admin/approvals/${uid("ap")}/reject`, { reason: "no" }],
      ["/app/admin/logout", {}],
    ];
    const foreign: Record<string, string>[] = [
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
      { origin: "", "sec-fetch-site": "same-site" },
      { origin: "null", "sec-fetch-site": "" },
      { origin: "", "sec-fetch-site": "" },
    ];
    const wrong: string[] = [];
    for (const [path, body] of actions) {
      for (const headers of foreign) {
        for (const withCookie of [false, true]) {
          const res = await adminPage(path, {
            ...(withCookie ? { cookie: op } : {}),
            headers,
            form: new URLSearchParams({ csrf: "x".repeat(22), ...body }),
          });
          const alert = alertOf(res.text) ?? "";
          if (res.status !== 403 || !CROSS_SITE.test(alert) || res.headers.get("set-cookie") !== null)
            wrong.push(`${path} ${JSON.stringify(headers)} cookie=${withCookie}: ${res.status} ${res.location}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(await ledgerEntries(acct)).toEqual(before);
    // The session survived the forged sign-out.
    expect((await adminPage("/app/admin", { cookie: op })).status).toBe(200);
  });
});

async function fetchWith(bindings: Env, path: string, headers: Record<string, string> = {}) {
  const req = new Request(`http://gate.test${path}`, { headers, redirect: "manual" });
  const res = await worker.fetch(req, bindings, createExecutionContext());
  return { status: res.status, location: res.headers.get("location"), text: await res.text() };
}

describe("ADMIN_TOKEN sign-in sessions", () => {
  it("end when ADMIN_TOKEN is rotated or unset: 401 on /v1, and the operator view sends to the sign-in", async () => {
    const op = await signIn(ADMIN);
    const token = decodeURIComponent(op.slice("cg_operator=".length));
    const bearer = { authorization: `Bearer ${token}` };
    // Control: with the token it signed in with, it works both ways.
    expect((await fetchWith(env, "/v1/api-keys", bearer)).status).toBe(200);
    expect((await fetchWith(env, "/app/admin", { cookie: op })).status).toBe(200);
    for (const adminToken of ["rotated-admin-token", ""]) {
      const rotated = { ...env, ADMIN_TOKEN: adminToken } as Env;
      const api = await fetchWith(rotated, "/v1/api-keys", bearer);
      expect(api.status, `ADMIN_TOKEN=${adminToken}`).toBe(401);
      expect(JSON.parse(api.text).code).toBe("unauthorized");
      const view = await fetchWith(rotated, "/app/admin", { cookie: op });
      expect(view.status).toBe(303);
      expect(view.location).toBe("/app/admin/login?ended=1");
    }
  });

  it("bind to the ADMIN_TOKEN by an HMAC keyed from the signing key, not a bare hash of the secret", async () => {
    const a = await mintOperatorSession(env, "admin-token", "admin");
    const ath = String(claimsOf(a.token).ath);
    expect(ath).toMatch(/^[0-9a-f]{64}$/);
    for (const guess of [sha256Hex(env.ADMIN_TOKEN), sha256Hex(`credit-gate operator-session ${env.ADMIN_TOKEN}`)]) {
      expect(ath).not.toBe(guess);
      expect(ath).not.toBe(guess.slice(0, 32));
    }
    // Same ADMIN_TOKEN, another signing key: another binding (it is keyed).
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: "other-key" };
    const other = { ...env, RECEIPT_SIGNING_KEYS: JSON.stringify({ keys: [jwk] }) } as Env;
    const b = await mintOperatorSession(other, "admin-token", "admin");
    expect(String(claimsOf(b.token).ath)).toMatch(/^[0-9a-f]{64}$/);
    expect(claimsOf(b.token).ath).not.toBe(ath);
    // And stable for one key and one ADMIN_TOKEN (a second session binds alike).
    expect(claimsOf((await mintOperatorSession(env, "admin-token", "admin")).token).ath).toBe(ath);
  });
});

describe("the widget token", () => {
  it("opens the widget only: /app/login and the API refuse it", async () => {
    const links = await linksFor(account);
    const widget = tokenOf(links.widget_url);
    const login = await page(`/app/login?token=${widget}`);
    expect(login.status).toBe(401);
    expect(login.headers.get("set-cookie")).toBeNull();
    expect(login.text).toMatch(/role="alert"[^>]*>This link is not valid/);
    expectProblem(
      await call("GET", `/v1/accounts/${account}/balance`, undefined, { token: widget }),
      401,
      "unauthorized",
    );
    const res = await page(new URL(links.widget_url).pathname + new URL(links.widget_url).search);
    expect(res.status).toBe(200);
    expect(fields(res.text).get("widget.credits.available")).toBe("500");
  });
});

describe("what a customer page never shows", () => {
  it("no API key id on the account page or a debit's page; the operator's reason is shown, and the form says so", async () => {
    const acct = uid("hard-actor");
    const support = await apiKey("support", 1000);
    const gateway = await apiKey("gateway");
    const given = await call(
      "POST",
      `/v1/accounts/${acct}/grants`,
      { grant_id: uid("g"), amount: 100, type: "compensatory", reason: "service_outage: sorry for Tuesday" },
      { token: support.token },
    );
    expect(given.status).toBe(201);
    const debitId = uid("d");
    const debit = await call(
      "POST",
      `/v1/accounts/${acct}/debits`,
      { debit_id: debitId, amount: 7 },
      { token: gateway.token },
    );
    expect(debit.status).toBe(200);
    const entries = await ledgerEntries(acct);
    expect(entries.map((e) => e.actor)).toEqual([`${support.id}:support`, `${gateway.id}:gateway`]);
    const own = `cg_session=${await sessionFor(acct)}`;
    const pages = [`/app/accounts/${acct}`, `/app/accounts/${acct}/debits/${debitId}`];
    for (const path of pages) {
      const res = await page(path, { cookie: own });
      expect(res.status, path).toBe(200);
      for (const id of [support.id, gateway.id]) expect(res.text, `${path} shows ${id}`).not.toContain(id);
      expect(res.text).not.toContain('data-field="debit.actor"');
    }
    const log = await page(`/app/accounts/${acct}`, { cookie: own });
    expect(unescapeHtml(log.text)).toContain("service_outage: sorry for Tuesday");
    // The operator's note field says where it ends up.
    const op = await signIn(ADMIN);
    const form = await adminPage(`/app/admin/accounts/${acct}`, { cookie: op });
    expect(form.text).toMatch(/<label for="grant-note">Note \(optional; shown to the customer\)<\/label>/);
  });
});

describe("impossible dates", () => {
  it("answer 400 with a sentence on the reports, the log filter and the statement (never 500)", async () => {
    const op = await signIn(ADMIN);
    for (const q of ["to=2024-13-45", "from=2024-02-30", "to=2023-02-29", "from=2024-00-10"]) {
      const res = await adminPage(`/app/admin/reports?${q}`, { cookie: op });
      expect(res.status, q).toBe(400);
      expect(res.headers.get("content-type")).toContain("text/html");
      expect(alertOf(res.text), q).toMatch(/is not a day of the calendar/);
    }
    // A real leap day is a day.
    expect((await adminPage("/app/admin/reports?from=2024-02-29&to=2024-03-01", { cookie: op })).status).toBe(200);
    const own = `cg_session=${await sessionFor(account)}`;
    for (const path of [
      `/app/accounts/${account}?from=2024-02-30`,
      `/app/accounts/${account}?to=2024-13-45`,
      `/app/accounts/${account}/statement?from=2024-01-01&to=2024-13-45`,
      `/app/accounts/${account}/statement?from=2024-13-45&to=2024-12-01`,
      `/app/accounts/${account}/statement?from=2024-02-30&to=2024-03-01`,
    ]) {
      const res = await page(path, { cookie: own });
      expect(res.status, path).toBe(400);
      expect(res.headers.get("content-type"), path).toContain("text/html");
      expect(res.text, path).toMatch(/role="alert"[^>]*>The [a-z ]*date/);
    }
    const fine = await page(`/app/accounts/${account}/statement?from=2024-02-01&to=2024-02-29`, { cookie: own });
    expect(fine.status).toBe(200);
  });
});

describe("the layout's stylesheet", () => {
  it("is served as written: quotes are not HTML-escaped", async () => {
    const res = await page("/app");
    expect(res.status).toBe(200);
    const style = /<style>([\s\S]*?)<\/style>/.exec(res.text)?.[1] ?? "";
    expect(style).toContain('font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif');
    expect(style).not.toContain("&quot;");
    expect(style).not.toContain("&amp;");
  });
});

/** A request whose URL keeps a dot segment, as a raw request line may (a built Request would normalize it). */
async function rawPath(path: string, headers: Record<string, string>) {
  const req = new Request(`http://gate.test/app/`, { headers, redirect: "manual" });
  Object.defineProperty(req, "url", { value: `http://gate.test${path}` });
  const res = await worker.fetch(req, env, createExecutionContext());
  return { status: res.status, text: await res.text(), location: res.headers.get("location") };
}

describe("dot-only ids", () => {
  it("are no account, debit or operator page (404), and the finder refuses them", async () => {
    const own = `cg_session=${await sessionFor(account)}`;
    for (const path of [`/app/accounts/..`, `/app/accounts/../widget`, `/app/accounts/./ledger.csv`]) {
      const res = await rawPath(path, { cookie: own });
      expect(res.status, path).toBe(404);
      expect(res.text, path).toMatch(/role="alert"[^>]*>There is no such account, or it is not one you can see\./);
    }
    for (const path of [`/app/accounts/${account}/debits/..`, `/app/accounts/${account}/invoices/.`]) {
      const res = await rawPath(path, { cookie: own });
      expect(res.status, path).toBe(404);
      expect(res.text, path).toMatch(/role="alert"[^>]*>There is no such (debit|invoice) on this account\./);
      expect(res.text).not.toContain(`data-field="debit.account_id"`);
    }
    const op = await signIn(ADMIN);
    for (const path of ["/app/admin/accounts/..", "/app/admin/bulk/.."]) {
      const res = await rawPath(path, { cookie: op });
      expect(res.status, path).toBe(404);
      expect(res.text, path).toMatch(/There is no page at this address/);
    }
    const find = await adminPage("/app/admin/find?account_id=..", { cookie: op });
    expect(find.status).toBe(400);
    expect(alertOf(find.text)).toMatch(/not only dots/);
  });
});

/** An env whose RECEIPT_SIGNING_KEYS counts how often it is read (each signature check reads it once). */
function countingEnv(): { env: TokenEnv; reads: () => number } {
  let reads = 0;
  const counted: TokenEnv = {
    get RECEIPT_SIGNING_KEYS() {
      reads++;
      return env.RECEIPT_SIGNING_KEYS;
    },
    RECEIPT_ISSUER: env.RECEIPT_ISSUER,
    ADMIN_TOKEN: env.ADMIN_TOKEN,
    DB: env.DB,
  };
  return { env: counted, reads: () => reads };
}

describe("sessionCaller", () => {
  it("checks one signature per bearer, picked by the header's typ", async () => {
    const key = await apiKey("support", 10);
    const operator = (await mintOperatorSession(env, key.id, "support")).token;
    const customer = (await mintCustomerSession(env, { accountId: account, jti: "j", expiresAtS: 0 })).token;
    const link = tokenOf((await linksFor(account)).url);
    const cases: [string, string, number, string | null][] = [
      ["operator", operator, 1, `${key.id}:support`],
      ["customer", customer, 1, `dashboard:${claimsOf(customer).jti}:viewer`],
      ["link", link, 0, null],
      ["not a JWS header", `${btoa("{").replace(/=+$/, "")}.e30.AAAA`, 0, null],
    ];
    for (const [what, token, checks, actor] of cases) {
      const counted = countingEnv();
      const caller = await sessionCaller(counted.env, token);
      expect(caller?.actor ?? null, what).toBe(actor);
      expect(counted.reads(), what).toBe(checks);
    }
  });
});

describe("ledger positions", () => {
  it("first_seq and last_seq are shown as plain integers, without thousands separators", async () => {
    const acct = uid("hard-seq");
    await grant(acct, { amount: 5000 });
    const events = Array.from({ length: 1000 }, (_, i) => ({ event_id: uid(`e${i}`), account_id: acct, amount: 1 }));
    const batch = await call("POST", "/v1/usage", { events });
    expect(batch.status).toBe(200);
    const debitId = uid("d");
    expect((await call("POST", `/v1/accounts/${acct}/debits`, { debit_id: debitId, amount: 2 })).status).toBe(200);
    const api = (await call("GET", `/v1/accounts/${acct}/debits/${debitId}`)).json;
    expect(api.first_seq).toBeGreaterThanOrEqual(1000);
    const res = await page(`/app/accounts/${acct}/debits/${debitId}`, {
      cookie: `cg_session=${await sessionFor(acct)}`,
    });
    expect(res.status).toBe(200);
    for (const k of ["first_seq", "last_seq"]) {
      const m = new RegExp(`data-field="debit.${k}" data-value="(\\d+)">([^<]*)<`).exec(res.text);
      expect(m?.[1], k).toBe(String(api[k]));
      expect(m?.[2], k).toBe(String(api[k]));
    }
    // Amounts keep their separators.
    expect(fields(res.text).get("debit.amount")).toBe("2");
  });
});
