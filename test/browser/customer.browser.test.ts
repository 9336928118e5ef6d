/**
 * The customer view /app/accounts/{id} in Chromium against the private gate,
 * for an account seeded through the API (test/browser/seed.ts: grants of all
 * three types in two units, expiring lots, a pending grant, a grant awaiting
 * payment, debits in both units, enough entries for two log pages):
 *  - the magic link lands on the account with the token gone from the URL;
 *  - every `data-field` on the page equals the API's figure (balance per unit,
 *    the expiring / pending / awaiting lists, each log row, usage per day), and
 *    the page shows all of them, expiring soonest first, every date one way;
 *  - the log filtered by kind shows exactly the API's entries of that kind,
 *    page after page, and unfiltered paging walks the whole ledger in order;
 *  - a debit's reference opens its detail with the API's figures;
 *  - the CSV download equals the API's CSV byte for byte; the signed statement
 *    download equals the API's statement for the same window and verifies with
 *    the JWKS and jose alone (RFC 8785 + SHA-256), and a tampered copy fails;
 *  - the balance widget opened with the widget URL minted with the link shows
 *    the API's balance and next expiry and sets no cookie (the link's token
 *    does not open it, nor does the widget's token sign in);
 *  - the sign-out form ends the session.
 */
import { readFile } from "node:fs/promises";
import type { Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { useBrowser } from "./browser";
import { type AccountFacts, compareFields } from "./fields";
import { api, apiBytes, gateHref, jwks, mintLink, statementProblem, uid } from "./harness";
import { dataFields, expectedAmount, expectedDate, expectLabelled, nextPost, signInCustomer } from "./pages";
import { seedCustomer } from "./seed";

const DAY_MS = 86_400_000;
/** The log shows this many entries a page (LOG_PAGE_SIZE in src/dashboard/customer-data.ts). */
const LOG_PAGE = 50;
/** Kinds whose −amount a report counts as consumed. */
const CONSUMED = new Set(["debit", "hold.captured", "receipt.settled", "invoice", "invoice.reversal"]);

async function allEntries(id: string): Promise<Record<string, any>[]> {
  const res = await api("GET", `/v1/accounts/${id}/ledger?limit=1000`);
  expect(res.status).toBe(200);
  expect(res.json.next_after_seq).toBeNull();
  return res.json.entries;
}

/** The API's figures for the account, usage per day worked out from the ledger (last 30 UTC days). */
async function factsOf(id: string, units: string[], usageUnit = "credits"): Promise<AccountFacts> {
  const balances: AccountFacts["balances"] = {};
  for (const u of units) {
    const res = await api("GET", `/v1/accounts/${id}/balance?unit=${u}`);
    expect(res.status).toBe(200);
    balances[u] = res.json;
  }
  const entries = await allEntries(id);
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const usage: Record<string, number> = { total: 0 };
  for (let t = today - 29 * DAY_MS; t <= today; t += DAY_MS) usage[new Date(t).toISOString().slice(0, 10)] = 0;
  for (const e of entries) {
    if (e.unit !== usageUnit || !CONSUMED.has(e.kind)) continue;
    const day = String(e.recorded_at).slice(0, 10);
    if (day in usage) {
      usage[day] = (usage[day] ?? 0) - e.amount;
      usage.total = (usage.total ?? 0) - e.amount;
    }
  }
  return { balances, entries, usage };
}

/** The report the usage chart reads lags the ledger by the outbox; wait until it has caught up. */
async function reportCaughtUp(id: string, consumed: number): Promise<void> {
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const q = new URLSearchParams({
    group_by: "type",
    period: "day",
    unit: "credits",
    account_id: id,
    from: new Date(today).toISOString(),
    to: new Date(today + DAY_MS).toISOString(),
  });
  let seen = Number.NaN;
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
    const res = await api("GET", `/v1/reports/credits?${q}`);
    seen = (res.json?.periods ?? []).flatMap((p: any) => p.groups).reduce((s: number, g: any) => s + g.consumed, 0);
    if (seen === consumed) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the credits report shows ${seen} consumed, the ledger ${consumed}`);
}

/** The seqs of the log rows on the page, in page order. */
const rowSeqs = async (page: Page): Promise<number[]> =>
  (await dataFields(page))
    .map((f) => /^entry\.(\d+)\.kind$/.exec(f.field)?.[1])
    .filter((s): s is string => s !== undefined)
    .map(Number);

/** Follows "Next page" until there is none; the seqs of every page, in order (bounded). */
async function walkPages(page: Page): Promise<number[][]> {
  const pages: number[][] = [await rowSeqs(page)];
  for (let i = 0; i < 20; i++) {
    const next = page.locator('a[data-link="next-page"]');
    if ((await next.count()) === 0) return pages;
    await Promise.all([page.waitForURL((u) => u.searchParams.has("after_seq")), next.click()]);
    pages.push(await rowSeqs(page));
  }
  throw new Error("more than 20 log pages");
}

describe("customer view", () => {
  const b = useBrowser();
  let id: string;
  let units: string[];

  beforeAll(async () => {
    ({ id, units } = await seedCustomer(uid("cust"), { extraDebits: 45 }));
    const facts = await factsOf(id, units);
    await reportCaughtUp(id, facts.usage.total ?? 0);
  });

  it("every number and date on the page equals the API's, and all of them are there", async () => {
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInCustomer(page, id);
    const facts = await factsOf(id, units);
    const onPage = await dataFields(page);
    const { unknown, wrong } = compareFields(onPage, facts);
    expect(unknown, "data-fields this suite cannot check").toEqual([]);
    expect(wrong).toEqual([]);
    expect(onPage.length).toBeGreaterThan(80);
    // The comparison can fail: one figure nudged in the page is caught.
    const nudged = onPage.map((f) => (f.field === "balance.credits.available" ? { ...f, text: "10,736" } : f));
    expect(compareFields(nudged, facts).wrong.map((w) => w.field)).toEqual(["balance.credits.available"]);

    const names = new Set(onPage.map((f) => f.field));
    const must = [
      "balance.credits.available",
      "balance.credits.held",
      "balance.credits.by_type.promotional",
      "balance.credits.by_type.compensatory",
      "balance.credits.by_type.purchased",
      "balance.gpu_seconds.available",
      "balance.gpu_seconds.by_type.purchased",
      "expiring.welcome.amount",
      "expiring.welcome.expires_at",
      "expiring.gpu-trial.amount",
      "expiring.gpu-trial.expires_at",
      "pending.later-bonus.amount",
      "pending.later-bonus.effective_at",
      "awaiting.invoice-77.amount",
      "awaiting.invoice-77.created_at",
      "usage.total.consumed",
      `usage.${new Date().toISOString().slice(0, 10)}.consumed`,
    ];
    expect(must.filter((m) => !names.has(m))).toEqual([]);
    // The figures the seed makes, worked out by hand (so a wrong API would show here too).
    const text = (f: string) => onPage.find((x) => x.field === f)?.text;
    // credits: 12 000 + 300 + 50 granted and effective, minus 120 + 1 450 + 45 × 1 used.
    expect(text("balance.credits.available")).toBe("10,735");
    expect(text("balance.gpu_seconds.available")).toBe("4,900");
    expect(text("usage.total.consumed")).toBe("1,615");
    expect(text("awaiting.invoice-77.amount")).toBe("400");
    expect(text("expiring.welcome.amount")).toBe("300");
    expect(text("expiring.gpu-trial.amount")).toBe("600");
    expect(text("pending.later-bonus.amount")).toBe("200");
    // What expires when: soonest first (gpu-trial in 3 days, welcome in 10), over both units.
    const expiringOrder = onPage.filter((f) => /^expiring\..*\.amount$/.test(f.field)).map((f) => f.field);
    expect(expiringOrder).toEqual(["expiring.gpu-trial.amount", "expiring.welcome.amount"]);
    // One date format everywhere.
    const dates = await page.locator("time").allTextContents();
    expect(dates.length).toBeGreaterThan(5);
    for (const d of dates) expect(d).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/);
    // Usage is an inline SVG chart, one bar per day of the last 30.
    expect(await page.locator("svg.chart rect.bar").count()).toBe(30);
    // Every control (unit, period, log filters, statement window) has a label getByLabel finds.
    expect(await expectLabelled(page, page.locator("main"))).toBeGreaterThanOrEqual(8);
    // …and the check can fail: an input without a label is caught.
    await page.evaluate(() => {
      const doc = (globalThis as any).document;
      const input = doc.createElement("input");
      input.name = "unlabelled";
      doc.querySelector("main").appendChild(input);
    });
    await expect(expectLabelled(page, page.locator("main"))).rejects.toThrow(/unlabelled has no label/);
    await ctx.close();
  });

  it("pages through the whole log in order, and a kind filter shows exactly the API's entries of that kind", async () => {
    const entries = await allEntries(id);
    expect(entries.length).toBeGreaterThan(LOG_PAGE);
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInCustomer(page, id);

    const pages = await walkPages(page);
    expect(pages.map((p) => p.length)).toEqual([LOG_PAGE, entries.length - LOG_PAGE]);
    expect(pages.flat()).toEqual(entries.map((e) => e.seq));

    for (const kind of ["debit", "grant"]) {
      await page.goto(gateHref(`/app/accounts/${id}`));
      const form = page.locator('form[data-form="log-filter"]');
      await form.getByLabel("Kind").selectOption(kind);
      await Promise.all([
        page.waitForURL((u) => u.searchParams.get("kind") === kind),
        form.locator('button[type="submit"]').click(),
      ]);
      const want = entries.filter((e) => e.kind === kind).map((e) => e.seq);
      const shown = await walkPages(page);
      expect(shown.flat(), kind).toEqual(want);
      expect(shown.every((p) => p.length <= LOG_PAGE)).toBe(true);
      // Every row on the last page still agrees with the API, field by field.
      const { unknown, wrong } = compareFields(await dataFields(page), await factsOf(id, units));
      expect(unknown).toEqual([]);
      expect(wrong).toEqual([]);
    }
    // A filter by unit too.
    await page.goto(gateHref(`/app/accounts/${id}?log_unit=gpu_seconds`));
    expect((await walkPages(page)).flat()).toEqual(entries.filter((e) => e.unit === "gpu_seconds").map((e) => e.seq));
    await ctx.close();
  });

  it("a debit's reference opens it with the API's figures", async () => {
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInCustomer(page, id);
    const link = page.locator('a[data-link="debit"]', { hasText: /^req-gpu-1$/ }).first();
    await Promise.all([page.waitForURL((u) => u.pathname.endsWith("/debits/req-gpu-1")), link.click()]);
    const debit = (await api("GET", `/v1/accounts/${id}/debits/req-gpu-1`)).json;
    const fields = Object.fromEntries((await dataFields(page)).map((f) => [f.field, f]));
    expect(fields["debit.amount"]?.value).toBe(String(debit.amount));
    expect(fields["debit.first_seq"]?.value).toBe(String(debit.first_seq));
    expect(fields["debit.last_seq"]?.value).toBe(String(debit.last_seq));
    for (const a of debit.applied) expect(fields[`applied.${a.grant_id}.amount`]?.value).toBe(String(a.amount));
    expect(debit.applied).toEqual([{ grant_id: "gpu-pack", type: "purchased", amount: 700 }]);
    await ctx.close();
  });

  it("downloads the CSV (the API's bytes) and a signed statement that verifies with the JWKS alone", async () => {
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInCustomer(page, id);

    const [csv] = await Promise.all([page.waitForEvent("download"), page.locator('a[data-link="csv"]').click()]);
    const csvBytes = await readFile(await csv.path());
    const apiCsv = await apiBytes(`/v1/accounts/${id}/ledger?format=csv`);
    expect(csvBytes.equals(apiCsv)).toBe(true);
    expect(csvBytes.toString("utf8").split("\r\n").filter(Boolean)).toHaveLength((await allEntries(id)).length + 1);

    const form = page.locator('form[data-form="statement"]');
    const [st] = await Promise.all([page.waitForEvent("download"), form.locator('button[type="submit"]').click()]);
    const statement = JSON.parse(await readFile(await st.path(), "utf8"));
    expect(statement.account_id).toBe(id);
    expect(statement.unit).toBe("credits");
    // The same window asked of the API answers the same statement (but for its signature).
    const again = await api(
      "GET",
      `/v1/accounts/${id}/statement?${new URLSearchParams({ from: statement.from, to: statement.to, unit: "credits" })}`,
    );
    expect(again.status).toBe(200);
    const { signature: _a, ...mine } = statement;
    const { signature: _b, ...theirs } = again.json;
    expect(mine).toEqual(theirs);
    // Seeded today (the form's default window is this month so far): every credits entry is in it.
    const credits = (await allEntries(id)).filter((e) => e.unit === "credits");
    expect(statement.entries.map((e: any) => e.seq)).toEqual(credits.map((e) => e.seq));
    expect(statement.closing).toBe(
      statement.opening + statement.granted - statement.consumed - statement.expired + statement.other,
    );

    const keys = await jwks();
    expect(await statementProblem(statement, keys)).toBeNull();
    // Tampered copies fail: a figure changed, an entry dropped, the signature bent.
    expect(await statementProblem({ ...statement, closing: statement.closing + 1 }, keys)).toMatch(/sha256/);
    expect(await statementProblem({ ...statement, entries: statement.entries.slice(1) }, keys)).toMatch(/sha256/);
    const sig: string = statement.signature;
    const bent = `${sig.slice(0, -3)}${sig.at(-3) === "A" ? "B" : "A"}${sig.slice(-2)}`;
    expect(await statementProblem({ ...statement, signature: bent }, keys)).toMatch(/signature/);
    await ctx.close();
  });

  it("the widget opened with its own token shows the API's balance and next expiry, and sets no cookie", async () => {
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    const link = await mintLink(id);
    expect(new URL(link.widgetUrl).pathname).toBe(`/app/accounts/${id}/widget`);
    // Each token opens its own door only: the link's is no widget token, the widget's no link.
    expect((await page.goto(gateHref(`/app/accounts/${id}/widget?token=${link.token}`)))?.status()).toBe(401);
    const widgetToken = new URL(link.widgetUrl).searchParams.get("token") ?? "";
    expect((await page.goto(gateHref(`/app/login?token=${widgetToken}`)))?.status()).toBe(401);
    const res = await page.goto(link.widgetUrl);
    expect(res?.status()).toBe(200);
    expect(res?.headers()["content-security-policy"]).toContain("frame-ancestors *");
    const fields = Object.fromEntries((await dataFields(page)).map((f) => [f.field, f]));
    const facts = await factsOf(id, units);
    for (const u of units) {
      expect(fields[`widget.${u}.available`]?.value).toBe(String(facts.balances[u]?.available));
      expect(fields[`widget.${u}.available`]?.text).toBe(expectedAmount(facts.balances[u]?.available));
    }
    const gpuTrial = facts.balances.gpu_seconds?.expiring.find((x: any) => x.grant_id === "gpu-trial");
    expect(fields["widget.next_expiry.amount"]?.text).toBe("600");
    expect(fields["widget.next_expiry.expires_at"]?.text).toBe(expectedDate(gpuTrial.expires_at));
    expect(await ctx.cookies(gateHref("/app/"))).toEqual([]);
    await ctx.close();
  });

  it("the sign-out form ends the session", async () => {
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInCustomer(page, id);
    const out = nextPost(page, "/app/logout");
    await page.locator('form[data-form="logout"] button[type="submit"]').click();
    expect((await out).status()).toBe(200);
    await expect.poll(() => page.locator('[role="status"]').count()).toBe(1);
    expect((await ctx.cookies(gateHref("/app/"))).map((c) => c.name)).not.toContain("cg_session");
    const after = await page.goto(gateHref(`/app/accounts/${id}`));
    expect(after?.status()).toBe(401);
    await ctx.close();
  });
});
