/**
 * Cross-site form posts are refused. An operator is signed in (a support key);
 * a page served from ANOTHER origin — a tiny node:http server on its own port —
 * auto-submits a form POST to a /app action in the same browser, so the
 * victim's cookies go along wherever the browser sends them:
 *  - from http://localhost:<port> (another site: the SameSite=Strict cookie
 *    stays home, and the Origin / Sec-Fetch-Site check refuses);
 *  - from http://127.0.0.1:<other port> (same site, other origin: the cookie
 *    IS sent, so only the Origin / Sec-Fetch-Site check stands between);
 * both carrying the victim's real CSRF field (copied from the page: the worst
 * case). Each is refused with 403 and a sentence, and the ledger is unchanged.
 * A cross-site post to the sign-in form (login CSRF) is refused too and sets no
 * session cookie; one to a customer's sign-out form leaves the session alive.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useBrowser } from "./browser";
import { api, gate, gateHref, uid } from "./harness";
import { expectSentence, nextPost, signInCustomer, signInOperatorDirect } from "./pages";
import { autoSubmit, type SecondOrigin, startSecondOrigin } from "./second-origin";

describe("cross-site form posts", () => {
  const b = useBrowser();
  let supportKey: string;
  let attacker: SecondOrigin;

  beforeAll(async () => {
    attacker = await startSecondOrigin();
    const key = await api("POST", "/v1/api-keys", { name: "browser-csrf", role: "support", max_grant_amount: 1000 });
    expect(key.status, key.text).toBe(201);
    supportKey = key.json.key;
  });
  afterAll(async () => {
    await attacker.close();
  });

  const entries = async (id: string) => (await api("GET", `/v1/accounts/${id}/ledger?limit=1000`)).json.entries;

  for (const [label, which] of [
    ["another site (localhost)", "crossSite"],
    ["the same site on another port (127.0.0.1)", "sameSite"],
  ] as const) {
    it(`a grant form posted from ${label} is refused with 403 and changes nothing`, async () => {
      const id = uid("csrf");
      expect(
        (await api("POST", `/v1/accounts/${id}/grants`, { grant_id: "base", amount: 100, type: "purchased" })).status,
      ).toBe(201);
      const ctx = await b.newContext();
      const page = await ctx.newPage();
      await signInOperatorDirect(ctx, supportKey);
      await page.goto(gateHref(`/app/admin/accounts/${id}`));
      const form = page.locator('form[data-form="grant"]');
      const csrf = await form.locator('input[name="csrf"]').inputValue();
      expect(csrf.length).toBeGreaterThanOrEqual(16);
      const action = new URL((await form.getAttribute("action")) ?? "", page.url()).toString();
      expect(new URL(action).pathname).toBe(`/app/admin/accounts/${id}/grants`);
      const before = await entries(id);

      attacker.serve(
        autoSubmit(action, {
          type: "compensatory",
          amount: "999",
          unit: "credits",
          reason_code: "goodwill",
          note: "csrf",
          grant_id: `csrf-${Date.now()}`,
          csrf,
        }),
      );
      const origin = attacker[which];
      expect(origin).not.toBe(gate().url);
      const posted = nextPost(page, `/app/admin/accounts/${id}/grants`);
      await page.goto(`${origin}/prize`);
      const res = await posted;
      expect(res.request().headers().origin).toBe(origin);
      expect(await entries(id)).toEqual(before);
      // Refused as cross-site (not merely bounced to sign-in for want of the cookie).
      expect(res.status()).toBe(403);
      await page.waitForLoadState();
      await expectSentence(page.locator('[role="alert"]'));
      await ctx.close();
    });
  }

  it("a cross-site post to the sign-in form is refused and sets no session", async () => {
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    attacker.serve(autoSubmit(gateHref("/app/admin/login"), { api_key: supportKey }));
    const posted = nextPost(page, "/app/admin/login");
    await page.goto(`${attacker.crossSite}/login`);
    const res = await posted;
    expect(res.status()).toBe(403);
    await page.waitForLoadState();
    await expectSentence(page.locator('[role="alert"]'));
    expect((await ctx.cookies(gate().url)).map((c) => c.name)).not.toContain("cg_operator");
    await ctx.close();
  });

  it("a cross-site post to a customer's sign-out form is refused and the session lives on", async () => {
    const id = uid("csrf-cust");
    expect(
      (await api("POST", `/v1/accounts/${id}/grants`, { grant_id: "g1", amount: 10, type: "purchased" })).status,
    ).toBe(201);
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInCustomer(page, id);
    const csrf = await page.locator('form[data-form="logout"] input[name="csrf"]').inputValue();
    attacker.serve(autoSubmit(gateHref("/app/logout"), { csrf }));
    const posted = nextPost(page, "/app/logout");
    await page.goto(`${attacker.sameSite}/bye`);
    expect((await posted).status()).toBe(403);
    await page.waitForLoadState();
    await expectSentence(page.locator('[role="alert"]'));
    expect((await page.goto(gateHref(`/app/accounts/${id}`)))?.status()).toBe(200);
    await ctx.close();
  });
});
