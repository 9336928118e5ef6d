/**
 * The customer view against the API, through the real Worker: every number
 * and date on the page of a seeded account equals the API's figure (and the
 * few worked out by hand), the log's filters and pages, the downloads'
 * bytes, the debit detail page and the widget.
 */
import { compactVerify, createLocalJWKSet } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { canonicalJson, sha256Hex } from "../../src/ledger";
import { claimsOf, fields, linksFor, page, sessionFor, tokenOf } from "./dashboard-helpers";
import { call, grant, runAlarm, uid } from "./helpers";

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

let acct: string;
let child: string;
let cookie: string;
let meter: string;
let unit: string;
const ids = { promo: uid("promo"), bought: uid("bought"), later: uid("later"), awaiting: uid("aw"), rec: uid("rec") };
let debitId: string;

async function ok(res: Promise<{ status: number; text: string; json: any }>, what: string) {
  const r = await res;
  if (r.status < 200 || r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`);
  return r.json;
}

beforeAll(async () => {
  acct = uid("cust");
  child = uid("cust-dept");
  unit = `u_${uid("")
    .replace(/[^a-z0-9]/g, "")
    .slice(0, 20)}`;
  meter = uid("mtr");
  await ok(call("PUT", `/v1/units/${unit}`, { name: "Tokens", scale: 0 }), "unit");
  await ok(call("PUT", `/v1/meters/${meter}`, { unit: "credits", price: { amount: 3, per: 1000 } }), "meter");
  const now = Date.now();
  await grant(acct, { grant_id: ids.bought, amount: 1000, type: "purchased" });
  await grant(acct, { grant_id: ids.promo, amount: 200, type: "promotional", expires_at: iso(now + 10 * DAY) });
  await grant(acct, { grant_id: ids.later, amount: 50, type: "purchased", effective_at: iso(now + 5 * DAY) });
  await grant(acct, { grant_id: uid("tok"), amount: 1234567, type: "purchased", unit });
  await ok(
    call("POST", `/v1/accounts/${acct}/grants`, {
      grant_id: ids.awaiting,
      amount: 300,
      type: "purchased",
      awaiting_payment: true,
    }),
    "awaiting",
  );
  await ok(
    call("POST", `/v1/accounts/${acct}/recurring-grants`, {
      recurring_id: ids.rec,
      amount: 10,
      type: "promotional",
      interval: "month",
      expires: "never",
      starts_at: iso(now + 3 * DAY),
    }),
    "recurring",
  );
  debitId = uid("d");
  await ok(call("POST", `/v1/accounts/${acct}/debits`, { debit_id: debitId, amount: 30 }), "debit");
  await ok(call("POST", `/v1/accounts/${acct}/debits`, { debit_id: uid("md"), meter, quantity: 2000 }), "metered");
  await ok(call("PUT", `/v1/accounts/${child}`, { name: "Research", parent_id: acct }), "child");
  await grant(child, { amount: 77 });
  cookie = `cg_session=${await sessionFor(acct)}`;
  // Let the outbox ship the journal (reports) and the directory row (children, scope).
  for (let i = 0; i < 50; i++) {
    await runAlarm(acct);
    await runAlarm(child);
    const r = await call("GET", `/v1/reports/credits?${reportQuery(30)}`);
    const kids = await call("GET", `/v1/accounts/${acct}/children`);
    const used = r.json?.periods?.reduce(
      (s: number, p: any) => s + p.groups.reduce((t: number, g: any) => t + g.consumed, 0),
      0,
    );
    if (used === 36 && kids.json?.children?.length === 1) break;
    await new Promise((res) => setTimeout(res, 100));
  }
});

function reportQuery(days: number): string {
  const to = Math.floor(Date.now() / DAY) * DAY + DAY;
  return new URLSearchParams({
    group_by: "type",
    period: "day",
    unit: "credits",
    account_id: acct,
    from: iso(to - days * DAY),
    to: iso(to),
  }).toString();
}

describe("the customer page shows the API's figures", () => {
  it("balances by unit and type, expiry, pending, awaiting, recurring, departments", async () => {
    const res = await page(`/app/accounts/${acct}`, { cookie });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const f = fields(res.text);
    for (const u of ["credits", unit]) {
      const b = (await call("GET", `/v1/accounts/${acct}/balance?unit=${u}`)).json;
      expect(f.get(`balance.${u}.available`), u).toBe(String(b.available));
      expect(f.get(`balance.${u}.held`)).toBe(String(b.held));
      for (const t of ["promotional", "compensatory", "purchased"]) {
        expect(f.get(`balance.${u}.by_type.${t}`)).toBe(String(b.by_type[t]));
      }
    }
    // By hand: 1000 + 200 live, 30 + 6 (2000 × 3/1000) drawn, promotional first (it expires; default order).
    expect(f.get("balance.credits.available")).toBe("1164");
    expect(f.get("balance.credits.by_type.promotional")).toBe("164");
    expect(f.get(`balance.${unit}.available`)).toBe("1234567");
    expect(res.text).toContain(">1,234,567<");
    const b = (await call("GET", `/v1/accounts/${acct}/balance?unit=credits&rollup=true`)).json;
    expect(f.get(`expiring.${ids.promo}.amount`)).toBe(String(b.expiring[0].amount));
    expect(f.get(`expiring.${ids.promo}.expires_at`)).toBe(b.expiring[0].expires_at);
    expect(res.text).toMatch(new RegExp(`>${b.expiring[0].expires_at.slice(0, 10)} \\d\\d:\\d\\d UTC<`));
    expect(f.get(`pending.${ids.later}.amount`)).toBe("50");
    expect(f.get(`pending.${ids.later}.effective_at`)).toBe(b.pending[0].effective_at);
    expect(f.get(`awaiting.${ids.awaiting}.amount`)).toBe("300");
    expect(f.get(`awaiting.${ids.awaiting}.created_at`)).toBe(b.awaiting_payment[0].created_at);
    const rec = (await call("GET", `/v1/accounts/${acct}/recurring-grants`)).json.recurring_grants[0];
    expect(f.get(`recurring.${ids.rec}.amount`)).toBe("10");
    expect(f.get(`recurring.${ids.rec}.next_period_at`)).toBe(rec.next_period_at);
    expect(f.get(`recurring.${ids.rec}.periods_issued`)).toBe(String(rec.periods_issued));
    expect(f.get("rollup.credits.available")).toBe(String(b.rollup.available));
    expect(f.get("rollup.credits.accounts")).toBe("2");
    expect(f.get(`child.${child}.available`)).toBe("77");
    // The department opens with the parent's session (its tree), and shows its own figure.
    const dept = fields((await page(`/app/accounts/${child}`, { cookie })).text);
    expect(dept.get("balance.credits.available")).toBe("77");
  });

  it("usage per day equals the credits report, and by meter the metered debit", async () => {
    for (const days of [30, 90]) {
      const res = await page(`/app/accounts/${acct}?days=${days}`, { cookie });
      const f = fields(res.text);
      const report = (await call("GET", `/v1/reports/credits?${reportQuery(days)}`)).json;
      let total = 0;
      const perDay = [...f.entries()].filter(([k]) => /^usage\.\d{4}-\d\d-\d\d\.consumed$/.test(k));
      expect(perDay).toHaveLength(days);
      for (const p of report.periods) {
        const used = p.groups.reduce((s: number, g: any) => s + g.consumed, 0);
        total += used;
        expect(f.get(`usage.${p.start.slice(0, 10)}.consumed`)).toBe(String(used));
      }
      expect(total).toBe(36);
      expect(f.get("usage.total.consumed")).toBe("36");
      expect(res.text).toContain("<svg");
      expect(res.text).toMatch(/<rect class="bar"[^>]*height="1[0-9]{2}"/);
    }
    const f = fields((await page(`/app/accounts/${acct}`, { cookie })).text);
    expect(f.get(`meter.${meter}.quantity`)).toBe("2000");
    expect(f.get(`meter.${meter}.amount`)).toBe("6");
    const bad = await page(`/app/accounts/${acct}?days=7`, { cookie });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/role="alert"[^>]*>[^<]*30 or 90/);
  });

  it("the transaction log: every entry's figures, references linked, filters", async () => {
    const entries = (await call("GET", `/v1/accounts/${acct}/ledger?limit=1000`)).json.entries;
    const res = await page(`/app/accounts/${acct}`, { cookie });
    const f = fields(res.text);
    expect(entries.length).toBeGreaterThan(4);
    for (const e of entries) {
      expect(f.get(`entry.${e.seq}.amount`)).toBe(String(e.amount));
      expect(f.get(`entry.${e.seq}.held_delta`)).toBe(String(e.held_delta));
      expect(f.get(`entry.${e.seq}.recorded_at`)).toBe(e.recorded_at);
    }
    expect(res.text).toContain(`href="/app/accounts/${acct}/debits/${debitId}" data-link="debit"`);
    const debits = fields((await page(`/app/accounts/${acct}?kind=debit`, { cookie })).text);
    const shown = [...debits.keys()].filter((k) => /^entry\.\d+\.amount$/.test(k));
    expect(shown.length).toBe(entries.filter((e: any) => e.kind === "debit").length);
    for (const k of shown) expect(Number(debits.get(k))).toBeLessThan(0);
    const tokens = fields((await page(`/app/accounts/${acct}?log_unit=${unit}`, { cookie })).text);
    expect([...tokens.keys()].filter((k) => /^entry\.\d+\.amount$/.test(k))).toHaveLength(1);
    const future = iso(Date.now() + 2 * DAY).slice(0, 10);
    const none = await page(`/app/accounts/${acct}?from=${future}`, { cookie });
    expect(none.text).toContain("No transactions match.");
    const today = iso(Date.now()).slice(0, 10);
    const all = fields((await page(`/app/accounts/${acct}?from=${today}&to=${today}`, { cookie })).text);
    expect([...all.keys()].filter((k) => /^entry\.\d+\.amount$/.test(k))).toHaveLength(entries.length);
  });

  it("the debit detail page shows the API's debit", async () => {
    const api = (await call("GET", `/v1/accounts/${acct}/debits/${debitId}`)).json;
    const res = await page(`/app/accounts/${acct}/debits/${debitId}`, { cookie });
    expect(res.status).toBe(200);
    const f = fields(res.text);
    expect(f.get("debit.amount")).toBe("30");
    expect(f.get("debit.created_at")).toBe(api.created_at);
    expect(f.get(`applied.${ids.promo}.amount`)).toBe("30");
    const missing = await page(`/app/accounts/${acct}/debits/${uid("nope")}`, { cookie });
    expect(missing.status).toBe(404);
    expect(missing.text).toMatch(/role="alert"/);
  });

  it("pages the log by cursor links, 50 a page, matching the API's pages", async () => {
    const big = uid("cust-big");
    for (let i = 0; i < 55; i++) await grant(big, { amount: i + 1 });
    const own = `cg_session=${await sessionFor(big)}`;
    const first = await page(`/app/accounts/${big}`, { cookie: own });
    const f1 = fields(first.text);
    expect([...f1.keys()].filter((k) => /^entry\.\d+\.amount$/.test(k))).toHaveLength(50);
    const next = /href="([^"]*after_seq=50[^"]*)" data-link="next-page"/.exec(first.text)?.[1];
    expect(next).toBeDefined();
    const second = await page(next!.replace(/&amp;/g, "&"), { cookie: own });
    const f2 = fields(second.text);
    const api = (await call("GET", `/v1/accounts/${big}/ledger?after_seq=50&limit=50`)).json.entries;
    expect(api).toHaveLength(5);
    expect([...f2.keys()].filter((k) => /^entry\.\d+\.amount$/.test(k))).toHaveLength(5);
    for (const e of api) expect(f2.get(`entry.${e.seq}.amount`)).toBe(String(e.amount));
    expect(second.text).not.toContain('data-link="next-page"');
  });
});

describe("downloads through the session", () => {
  it("the CSV is the API's bytes and content type", async () => {
    const api = await call("GET", `/v1/accounts/${acct}/ledger?format=csv`);
    const res = await page(`/app/accounts/${acct}/ledger.csv`, { cookie });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(api.headers.get("content-type"));
    expect(res.headers.get("content-disposition")).toMatch(/^attachment/);
    expect(res.text).toBe(api.text);
    expect(res.text.split("\r\n").length).toBeGreaterThan(5);
  });

  it("the statement is the API's statement, and its signature verifies against the JWKS", async () => {
    const from = iso(Date.now() - DAY);
    const to = iso(Math.floor((Date.now() - 3000) / 1000) * 1000);
    const q = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&unit=credits`;
    const api = await call("GET", `/v1/accounts/${acct}/statement?${q}`);
    const res = await page(`/app/accounts/${acct}/statement?${q}`, { cookie });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(api.headers.get("content-type"));
    const mine = JSON.parse(res.text);
    const { signature, ...unsigned } = mine;
    const { signature: _s, ...apiUnsigned } = api.json;
    expect(unsigned).toEqual(apiUnsigned);
    if (signature === api.json.signature) expect(res.text).toBe(api.text);
    const jwks = (await call("GET", "/.well-known/jwks.json", undefined, { token: null })).json;
    const [h, , s] = signature.split(".");
    const payloadB64 = signature.split(".")[1];
    const { payload } = await compactVerify(`${h}.${payloadB64}.${s}`, createLocalJWKSet(jwks));
    const claims = JSON.parse(new TextDecoder().decode(payload));
    expect(claims.sha256).toBe(sha256Hex(canonicalJson(unsigned)));
    expect(claims.sub).toBe(acct);
    expect(unsigned.closing).toBe(
      unsigned.opening + unsigned.granted - unsigned.consumed - unsigned.expired + unsigned.other,
    );
    // The date form: a whole UTC day range, to clamped just before now.
    const day = iso(Date.now()).slice(0, 10);
    const byDay = await page(`/app/accounts/${acct}/statement?from=${day}&to=${day}&unit=credits`, { cookie });
    expect(byDay.status).toBe(200);
    expect(JSON.parse(byDay.text).from).toBe(`${day}T00:00:00.000Z`);
    const wrong = await page(`/app/accounts/${acct}/statement?from=nonsense&to=${day}`, { cookie });
    expect(wrong.status).toBe(400);
    expect(wrong.headers.get("content-type")).toContain("text/html");
    expect(wrong.text).toMatch(/role="alert"[^>]*>The request was not accepted/);
  });
});

describe("the widget", () => {
  it("shows available per unit and the next expiry, with the cookie or its widget token, framable, setting no cookie", async () => {
    const b = (await call("GET", `/v1/accounts/${acct}/balance?unit=credits`)).json;
    const links = await linksFor(acct);
    const link = tokenOf(links.url);
    const widgetToken = tokenOf(links.widget_url);
    for (const opts of [{ cookie }, {}]) {
      const path = `/app/accounts/${acct}/widget${"cookie" in opts ? "" : `?token=${widgetToken}`}`;
      if (!("cookie" in opts)) expect(new URL(links.widget_url).pathname + new URL(links.widget_url).search).toBe(path);
      const res = await page(path, opts);
      expect(res.status, path).toBe(200);
      const f = fields(res.text);
      expect(f.get("widget.credits.available")).toBe(String(b.available));
      expect(f.get(`widget.${unit}.available`)).toBe("1234567");
      expect(f.get("widget.next_expiry.amount")).toBe(String(b.expiring[0].amount));
      expect(f.get("widget.next_expiry.expires_at")).toBe(b.expiring[0].expires_at);
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors *");
      expect(res.headers.get("set-cookie")).toBeNull();
      expect(res.text).not.toContain("<form");
    }
    // A widget token for one account opens no other account's widget; a session's
    // own token is not a widget token, nor is the magic link (it would be a full session).
    const otherWidget = tokenOf((await linksFor(child)).widget_url);
    expect((await page(`/app/accounts/${acct}/widget?token=${otherWidget}`)).status).toBe(404);
    const asSession = await page(`/app/accounts/${acct}/widget?token=${cookie.slice("cg_session=".length)}`);
    expect(asSession.status).toBe(401);
    const asLink = await page(`/app/accounts/${acct}/widget?token=${link}`);
    expect(asLink.status).toBe(401);
    expect(asLink.text).toMatch(/role="alert"/);
    expect(asLink.text).not.toContain('data-field="widget.');
    expect(claimsOf(link).sub).toBe(acct);
  });
});
