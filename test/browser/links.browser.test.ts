/**
 * Magic links and the customer session's reach, in Chromium:
 *  - a link lands on /app/accounts/{id} with the token gone from the URL and a
 *    cg_session cookie that is HttpOnly, SameSite=Strict, Path=/app (not Secure
 *    over http), also when it is clicked on another site (a webmail);
 *  - an expired link (re-signed by this run's key with exp in the past; a
 *    control re-signed with exp in the future is accepted, so the forgery is
 *    faithful) and a tampered one (a flipped signature byte, or another
 *    account's id in the payload) are refused with a sentence and set no cookie;
 *  - a session cannot open another account's page (404, a sentence) but a
 *    parent's can open its child's; it cannot open /app/admin nor post to an
 *    operator action; as a bearer it gets the API's own 404/403.
 */
import { decodeJwt, importJWK, SignJWT } from "jose";
import type { BrowserContext } from "playwright-core";
import { describe, expect, it } from "vitest";
import { useBrowser } from "./browser";
import { api, forgeToken, gate, gateHref, loginUrl, mintLink, tamperSignature, uid } from "./harness";
import { expectSentence, openLink, signInCustomer } from "./pages";
import { escapeHtml, startSecondOrigin } from "./second-origin";

const nowS = () => Math.floor(Date.now() / 1000);

async function account(prefix = "cust", parent?: string): Promise<string> {
  const id = uid(prefix);
  if (parent) expect((await api("PUT", `/v1/accounts/${id}`, { parent_id: parent })).status).toBe(201);
  expect(
    (await api("POST", `/v1/accounts/${id}/grants`, { grant_id: "g1", amount: 100, type: "purchased" })).status,
  ).toBe(201);
  return id;
}

const sessionCookie = async (ctx: BrowserContext) =>
  (await ctx.cookies(gateHref("/app/"))).find((c) => c.name === "cg_session");

describe("magic links", () => {
  const b = useBrowser();

  it("a link opens the account, leaves no token in the URL, and sets a strict HttpOnly cookie", async () => {
    const id = await account();
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInCustomer(page, id);
    const cookie = await sessionCookie(ctx);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/app", secure: false });
    // The session lasts longer than the page load but not beyond the bound (8 h) plus slack.
    expect(cookie?.expires ?? 0).toBeGreaterThan(nowS() + 60);
    expect(cookie?.expires ?? 0).toBeLessThanOrEqual(nowS() + 8 * 3600 + 60);
    // Nothing in the page or its history keeps the token.
    expect(await page.content()).not.toContain("token=");
    await ctx.close();
  });

  it("a link clicked on another site (as in a webmail) still opens the account", async () => {
    const id = await account();
    const link = await mintLink(id);
    const mail = await startSecondOrigin();
    try {
      mail.serve(
        `<!doctype html><meta charset="utf-8"><title>Inbox</title><a id="l" href="${escapeHtml(link.url)}">Open your account</a>`,
      );
      const ctx = await b.newContext();
      const page = await ctx.newPage();
      await page.goto(`${mail.crossSite}/inbox`);
      const landed = page.waitForResponse((r) => new URL(r.url()).pathname === `/app/accounts/${id}`);
      await page.locator("#l").click();
      // The SameSite=Strict cookie is set on this cross-site navigation; the page moves on by itself and the cookie goes along.
      expect((await landed).status()).toBe(200);
      await page.waitForURL((u) => u.pathname === `/app/accounts/${id}`);
      expect(await page.locator('[data-field="balance.credits.available"]').first().textContent()).toBe("100");
      await ctx.close();
    } finally {
      await mail.close();
    }
  });

  it("an expired link is refused with a sentence (and the same forgery, unexpired, is accepted)", async () => {
    const id = await account();
    const real = await mintLink(id, 60);
    const expired = await forgeToken(real.token, { iat: nowS() - 3600, exp: nowS() - 60 });
    const fresh = await forgeToken(real.token, { iat: nowS() - 10, exp: nowS() + 600 });

    const ctx = await b.newContext();
    const page = await ctx.newPage();
    const res = await page.goto(loginUrl(real.url, expired));
    expect(res?.status()).toBe(401);
    expect(res?.headers()["content-type"]).toMatch(/^text\/html/);
    expect(await expectSentence(page.locator('[role="alert"]'))).toMatch(/expired/i);
    expect(await sessionCookie(ctx)).toBeUndefined();

    await openLink(page, loginUrl(real.url, fresh), id);
    expect(await sessionCookie(ctx)).toBeDefined();
    await ctx.close();
  });

  it("a tampered link is refused with a sentence and sets no cookie", async () => {
    const id = await account();
    const other = await account();
    const real = await mintLink(id);
    const [h, p, s] = real.token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
    const otherPayload = Buffer.from(JSON.stringify({ ...claims, sub: other })).toString("base64url");
    for (const bad of [tamperSignature(real.token), `${h}.${otherPayload}.${s}`, `${h}.${p}`, `${real.token}x`]) {
      const ctx = await b.newContext();
      const page = await ctx.newPage();
      const res = await page.goto(loginUrl(real.url, bad));
      expect(res?.status(), bad).toBe(401);
      await expectSentence(page.locator('[role="alert"]'));
      expect(await sessionCookie(ctx)).toBeUndefined();
      // And with no session the account page itself is not shown.
      const direct = await page.goto(gateHref(`/app/accounts/${id}`));
      expect(direct?.status()).not.toBe(200);
      await ctx.close();
    }
  });

  it("a statement signature or a receipt-typed token is not a link", async () => {
    const id = await account();
    const real = await mintLink(id);
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date().toISOString();
    const st = await api("GET", `/v1/accounts/${id}/statement?from=${from}&to=${to}`);
    expect(st.status).toBe(200);
    // The link's own claims, signed by the gate's key, but typed as a receipt ("JWT").
    const jwk = JSON.parse(gate().signingJwks).keys[0];
    const receiptTyped = await new SignJWT(decodeJwt(real.token))
      .setProtectedHeader({ alg: "ES256", kid: jwk.kid, typ: "JWT" })
      .sign(await importJWK(jwk, "ES256"));
    for (const bad of [st.json.signature as string, receiptTyped]) {
      const ctx = await b.newContext();
      const page = await ctx.newPage();
      const res = await page.goto(loginUrl(real.url, bad));
      expect(res?.status()).toBe(401);
      await expectSentence(page.locator('[role="alert"]'));
      expect(await sessionCookie(ctx)).toBeUndefined();
      await ctx.close();
    }
  });
});

describe("a customer session's reach", () => {
  const b = useBrowser();

  it("cannot open another account's page (404, a sentence); a parent opens its child's", async () => {
    const parent = await account("parent");
    const child = await account("child", parent);
    const stranger = await account("stranger");

    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInCustomer(page, child);
    for (const other of [stranger, parent]) {
      const res = await page.goto(gateHref(`/app/accounts/${other}`));
      expect(res?.status(), other).toBe(404);
      expect(res?.headers()["content-type"]).toMatch(/^text\/html/);
      await expectSentence(page.locator('[role="alert"]'));
      expect(await page.locator('[data-field^="balance."]').count()).toBe(0);
    }
    await ctx.close();

    const ctx2 = await b.newContext();
    const page2 = await ctx2.newPage();
    await signInCustomer(page2, parent);
    const res = await page2.goto(gateHref(`/app/accounts/${child}`));
    expect(res?.status()).toBe(200);
    await ctx2.close();
  });

  it("cannot open the operator view nor post to an operator action", async () => {
    const id = await account();
    const ctx = await b.newContext();
    const page = await ctx.newPage();
    await signInCustomer(page, id);

    for (const path of ["/app/admin", `/app/admin/accounts/${id}`, "/app/admin/audit"]) {
      await page.goto(gateHref(path));
      expect(new URL(page.url()).pathname, path).toBe("/app/admin/login");
      expect(await page.locator('form[data-form="grant"]').count()).toBe(0);
      expect(await page.locator('form[data-form="admin-login"]').count()).toBe(1);
    }

    // A post to the grant action carrying the customer's cookie (the context's
    // request client sends the browser's cookies; the page's CSP forbids fetch)
    // with same-origin headers changes nothing.
    const before = (await api("GET", `/v1/accounts/${id}/ledger`)).json.entries;
    const res = await ctx.request.post(gateHref(`/app/admin/accounts/${id}/grants`), {
      form: { type: "purchased", amount: "5", reason_code: "goodwill", grant_id: "sneaky" },
      headers: { origin: new URL(gateHref("/")).origin, "sec-fetch-site": "same-origin" },
      maxRedirects: 0,
    });
    const posted = res.status();
    if (posted === 303) expect(res.headers().location).toMatch(/\/app\/admin\/login$/);
    expect([303, 401, 403]).toContain(posted);
    expect((await api("GET", `/v1/accounts/${id}/ledger`)).json.entries).toEqual(before);

    // The session as a bearer is the API's scoped viewer: other accounts 404, global routes 403.
    const token = (await sessionCookie(ctx))?.value as string;
    expect((await api("GET", `/v1/accounts/${id}/balance`, undefined, token)).status).toBe(200);
    expect((await api("GET", `/v1/accounts/${uid()}/balance`, undefined, token)).status).toBe(404);
    expect((await api("GET", "/v1/api-keys", undefined, token)).status).toBe(403);
    expect(
      (await api("POST", `/v1/accounts/${id}/grants`, { grant_id: "x", amount: 1, type: "purchased" }, token)).status,
    ).toBe(403);
    await ctx.close();
  });
});
