/**
 * The operator view /app/admin in Chromium against the private gate:
 *  - a support key (max_grant_amount 1 000) signs in with the form, is offered
 *    compensatory grants only with its limit shown, issues one within the limit
 *    (the ledger, read through the API, names the key as actor) and is refused
 *    above it with a sentence in role="alert" while nothing changes;
 *  - the grant form works with the keyboard alone, and every control on the
 *    operator pages has a label getByLabel finds;
 */
import { beforeAll, describe, expect, it } from "vitest";
import { useBrowser } from "./browser";
import { compareFields } from "./fields";
import { api, gateHref, uid } from "./harness";
import { dataFields, expectedAmount, expectLabelled, expectSentence, nextPost, signInOperator } from "./pages";

const LIMIT = 1000;

describe("operator view", () => {
  const b = useBrowser();
  let supportKey: string;
  let supportKeyId: string;
  let supportKeyRecord: Record<string, unknown>;

  beforeAll(async () => {
    const res = await api("POST", "/v1/api-keys", {
      name: "browser-support",
      role: "support",
      max_grant_amount: LIMIT,
    });
    expect(res.status, res.text).toBe(201);
    supportKey = res.json.key;
    supportKeyId = res.json.id;
    supportKeyRecord = res.json;
  });

  /** A fresh account holding one purchased lot, so the operator has something to look at. */
  async function seededAccount(): Promise<string> {
    const id = uid("op");
    const res = await api("POST", `/v1/accounts/${id}/grants`, { grant_id: "base", amount: 500, type: "purchased" });
    expect(res.status, res.text).toBe(201);
    return id;
  }

  const ledger = async (id: string) => {
    const res = await api("GET", `/v1/accounts/${id}/ledger?limit=1000`);
    expect(res.status).toBe(200);
    return res.json.entries as Record<string, any>[];
  };
  const grants = async (id: string) => {
    const res = await api("GET", `/v1/accounts/${id}/grants?limit=1000`);
    expect(res.status).toBe(200);
    return res.json.grants as Record<string, any>[];
  };

  it("a support key grants within its limit through the form and is refused above it with a sentence", async () => {
    const id = await seededAccount();
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInOperator(page, supportKey);
    await expect.poll(() => page.locator('[data-field="key.role"]').first().textContent()).toContain("support");
    await expect
      .poll(() => page.locator('[data-field="key.max_grant_amount"]').first().textContent())
      .toContain(expectedAmount(LIMIT));

    // Find the account with the find form.
    const find = page.locator('form[data-form="find-account"]');
    await find.locator('[name="account_id"]').fill(id);
    await Promise.all([
      page.waitForURL((u) => u.pathname === `/app/admin/accounts/${id}`),
      find.locator('[name="account_id"]').press("Enter"),
    ]);

    const form = page.locator('form[data-form="grant"]');
    // Only the types a support key may issue are offered, and its limit is shown.
    const types = await form
      .locator('select[name="type"] option')
      .evaluateAll((os: any[]) => os.map((o) => o.value as string).filter((v) => v !== ""));
    expect(types).toEqual(["compensatory"]);
    expect(await page.locator('[data-field="key.max_grant_amount"]').first().textContent()).toContain(
      expectedAmount(LIMIT),
    );
    expect(await form.locator('select[name="reason_code"]').getAttribute("required")).not.toBeNull();

    // Within the limit: lands in the ledger with the key as actor.
    await form.locator('[name="amount"]').fill("250");
    await form.locator('select[name="reason_code"]').selectOption("service_outage");
    await form.locator('[name="note"]').fill("outage on the 1st");
    const ok = nextPost(page, `/app/admin/accounts/${id}/grants`);
    await form.locator('button[type="submit"], input[type="submit"]').first().click();
    expect((await ok).status()).toBe(303);
    await page.waitForURL((u) => u.pathname === `/app/admin/accounts/${id}`);
    await expect.poll(() => page.locator('[role="status"]').count()).toBeGreaterThan(0);

    const issued = (await ledger(id)).filter((e) => e.kind === "grant" && e.grant_id !== "base");
    expect(issued).toHaveLength(1);
    expect(issued[0]).toMatchObject({
      amount: 250,
      credit_type: "compensatory",
      actor: `${supportKeyId}:support`,
      reason: "service_outage: outage on the 1st",
      unit: "credits",
    });
    const lot = (await grants(id)).find((g) => g.grant_id === issued[0]?.grant_id);
    expect(lot).toMatchObject({
      amount: 250,
      remaining: 250,
      type: "compensatory",
      metadata: { reason_code: "service_outage" },
    });
    // The new lot shows on the page with the API's figure.
    expect(await page.locator(`[data-field="lot.${lot?.grant_id}.remaining"]`).first().textContent()).toBe(
      expectedAmount(250),
    );

    // Every figure on the operator's account page is the API's.
    const balances: Record<string, any> = {};
    for (const u of ["credits"]) balances[u] = (await api("GET", `/v1/accounts/${id}/balance?unit=${u}`)).json;
    const facts = { balances, entries: await ledger(id), usage: {}, lots: await grants(id), key: supportKeyRecord };
    const onPage = await dataFields(page);
    const { unknown, wrong } = compareFields(onPage, facts);
    expect(unknown).toEqual([]);
    expect(wrong).toEqual([]);
    // Two entries (the base grant and this one), each with kind, amount, actor, reason and time.
    expect(onPage.filter((f) => f.field.startsWith("entry.")).length).toBe(2 * 5);

    // Above the limit: refused as a sentence, nothing written.
    const entriesBefore = await ledger(id);
    const grantsBefore = await grants(id);
    const form2 = page.locator('form[data-form="grant"]');
    await form2.locator('[name="amount"]').fill(String(LIMIT + 1));
    await form2.locator('select[name="reason_code"]').selectOption("goodwill");
    const refused = nextPost(page, `/app/admin/accounts/${id}/grants`);
    await form2.locator('button[type="submit"], input[type="submit"]').first().click();
    const res = await refused;
    expect(res.status()).toBe(403);
    expect(res.headers()["content-type"]).toMatch(/^text\/html/);
    const sentence = await expectSentence(page.locator('[role="alert"]'));
    expect(sentence).toMatch(/limit|1,000|1000/i);
    expect(await ledger(id)).toEqual(entriesBefore);
    expect(await grants(id)).toEqual(grantsBefore);
    await ctx.close();
  });

  it("the grant form is filled and submitted with the keyboard alone; every control is labelled", async () => {
    const id = await seededAccount();
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInOperator(page, supportKey);
    await page.goto(gateHref(`/app/admin/accounts/${id}`));

    const form = page.locator('form[data-form="grant"]');
    expect(await expectLabelled(page, form)).toBeGreaterThanOrEqual(3);
    expect(await expectLabelled(page, page.locator("main"))).toBeGreaterThanOrEqual(3);

    // Tab from the top of the page into the grant form (bounded), then fill it by keys only.
    await page.locator("body").focus();
    const focusedName = () =>
      page.evaluate(() => {
        const a = (globalThis as any).document.activeElement;
        return a?.closest('form[data-form="grant"]') ? ((a.name || a.tagName.toLowerCase()) as string) : null;
      });
    let name: string | null = null;
    for (let i = 0; i < 300 && name === null; i++) {
      await page.keyboard.press("Tab");
      name = await focusedName();
    }
    expect(name, "Tab never reached the grant form").not.toBeNull();
    const filled = new Set<string>();
    for (let i = 0; i < 30 && name !== null; i++) {
      if (name === "amount" && !filled.has(name)) await page.keyboard.type("7");
      if (name === "reason_code" && !filled.has(name)) {
        // Type-ahead on a focused select picks the first option starting with the letters.
        await page.keyboard.type("goodwill");
      }
      if (name === "note" && !filled.has(name)) await page.keyboard.type("keyboard");
      filled.add(name);
      if (name === "button") break;
      await page.keyboard.press("Tab");
      name = await focusedName();
    }
    expect([...filled]).toEqual(expect.arrayContaining(["amount", "reason_code", "button"]));
    expect(await form.locator('select[name="reason_code"]').inputValue()).toBe("goodwill");
    const posted = nextPost(page, `/app/admin/accounts/${id}/grants`);
    await page.keyboard.press("Enter");
    expect((await posted).status()).toBe(303);
    const entry = (await ledger(id)).find((e) => e.kind === "grant" && e.grant_id !== "base");
    expect(entry).toMatchObject({
      amount: 7,
      credit_type: "compensatory",
      reason: "goodwill: keyboard",
      actor: `${supportKeyId}:support`,
    });
    await ctx.close();
  });
});
