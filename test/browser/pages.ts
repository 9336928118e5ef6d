/**
 * Page-level helpers the browser suites share: signing in as a customer (a
 * magic link) or an operator (an API key), reading every `data-field` on a
 * page, the two display formats the dashboard promises (re-implemented here,
 * not imported from src/), and the checks every page gets (labels, sentences,
 * phone width).
 */
import type { BrowserContext, Locator, Page, Response } from "playwright-core";
import { expect } from "vitest";
import { gateHref, mintLink } from "./harness";

/** `YYYY-MM-DD HH:MM UTC`, the one date format of the dashboard; null → "—". */
export function expectedDate(value: string | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const iso = new Date(value).toISOString(); // 2026-12-01T16:53:29.603Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** An integer amount with comma thousands separators: 1234567 → "1,234,567", -3 → "-3". */
export function expectedAmount(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  return value.toLocaleString("en-US", { maximumFractionDigits: 0 });
}

/** One `data-field` element: its name, its visible text (trimmed) and its `data-value` (null when absent). */
export interface FieldOnPage {
  field: string;
  text: string;
  value: string | null;
}

/** Every `data-field` on the page (or under `root`). */
export async function dataFields(page: Page, root = "body"): Promise<FieldOnPage[]> {
  return page
    .locator(root)
    .first()
    .evaluate((el: any) =>
      Array.from(el.querySelectorAll("[data-field]") as ArrayLike<any>).map((n) => ({
        field: n.getAttribute("data-field") ?? "",
        text: (n.textContent ?? "").replace(/\s+/g, " ").trim(),
        value: n.getAttribute("data-value") as string | null,
      })),
    );
}

/**
 * Opens a magic link URL in `page` and follows it to the account's page: the
 * link answers a small "Opening your account" page that sets the session
 * cookie and moves on to /app/accounts/{id} by itself (a meta refresh, so the
 * SameSite=Strict cookie goes along even when the link was opened from
 * another site). Checks the account page answered 200 and that the token is
 * gone from the URL.
 */
export async function openLink(page: Page, linkUrl: string, accountId: string): Promise<void> {
  const target = `/app/accounts/${encodeURIComponent(accountId)}`;
  const account = page.waitForResponse((r) => new URL(r.url()).pathname === target && r.request().method() === "GET");
  const res = await page.goto(linkUrl);
  const alert = await page
    .locator('[role="alert"]')
    .allTextContents()
    .catch(() => []);
  expect(res?.status(), `the link answered ${res?.status()} ${alert.join(" ")}`).toBe(200);
  expect((await account).status()).toBe(200);
  await page.waitForURL((u) => u.pathname === target);
  await page.waitForLoadState();
  const token = new URL(linkUrl).searchParams.get("token") ?? "";
  expect(page.url()).not.toContain(token);
  expect(new URL(page.url()).searchParams.has("token")).toBe(false);
}

/** Mints a fresh magic link for `accountId` and opens it (openLink). */
export async function signInCustomer(page: Page, accountId: string): Promise<void> {
  await openLink(page, (await mintLink(accountId)).url, accountId);
}

/** Signs in to /app/admin with an API key through the sign-in form (keyboard: Enter submits). */
export async function signInOperator(page: Page, apiKey: string): Promise<void> {
  await page.goto(gateHref("/app/admin/login"));
  const form = page.locator('form[data-form="admin-login"]');
  await form.getByLabel("API key").fill(apiKey);
  await Promise.all([page.waitForURL((u) => u.pathname === "/app/admin"), form.getByLabel("API key").press("Enter")]);
}

/**
 * Signs a browser context in as an operator without the page: the sign-in
 * form posted by the context's own request client (it shares the context's
 * cookies), with the headers a same-origin form post carries. For tests whose
 * subject is what comes after sign-in (the sign-in form itself is driven by
 * signInOperator).
 */
export async function signInOperatorDirect(ctx: BrowserContext, apiKey: string): Promise<void> {
  const url = gateHref("/app/admin/login");
  const res = await ctx.request.post(url, {
    form: { api_key: apiKey },
    headers: { origin: new URL(url).origin, "sec-fetch-site": "same-origin" },
    maxRedirects: 0,
  });
  expect(res.status(), await res.text()).toBe(303);
  expect((await ctx.cookies(url)).map((c) => c.name)).toContain("cg_operator");
}

/** The response of the next POST whose path ends with `pathSuffix`. */
export const nextPost = (page: Page, pathSuffix: string): Promise<Response> =>
  page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname.endsWith(pathSuffix));

/**
 * A refusal shown as a sentence a person reads: in role="alert", words ending
 * with a full stop, no JSON, no problem+json members, no stack trace.
 */
export async function expectSentence(alert: Locator): Promise<string> {
  await expect.poll(() => alert.count()).toBeGreaterThan(0);
  const text = ((await alert.first().textContent()) ?? "").replace(/\s+/g, " ").trim();
  expect(text.length).toBeGreaterThan(10);
  expect(text).toMatch(/^[A-Z"“'‘(]/);
  expect(text).toMatch(/[.!?]$/);
  expect(text).not.toMatch(/[{}]|"type"\s*:|"status"\s*:|about:blank|\bat \S+ \(|Error:|undefined|\[object/);
  return text;
}

/**
 * Every visible input, select and textarea under `root` has an accessible
 * label: getByLabel(<its label text>) finds exactly that control.
 */
export async function expectLabelled(page: Page, root: Locator): Promise<number> {
  const controls = root.locator("input:not([type=hidden]):not([type=submit]), select, textarea");
  const n = await controls.count();
  for (let i = 0; i < n; i++) {
    const control = controls.nth(i);
    const info = await control.evaluate((e: any) => {
      const doc = (globalThis as any).document;
      const own = e.labels?.[0];
      let labelText: string | null = null;
      if (own) {
        const copy = own.cloneNode(true);
        for (const c of Array.from(copy.querySelectorAll("input, select, textarea") as ArrayLike<any>)) c.remove();
        labelText = copy.textContent;
      }
      const label =
        labelText ??
        e.getAttribute("aria-label") ??
        (e.getAttribute("aria-labelledby")
          ? doc.getElementById(e.getAttribute("aria-labelledby") ?? "")?.textContent
          : null);
      e.setAttribute("data-label-probe", "1");
      return { name: e.name, label: (label ?? "").replace(/\s+/g, " ").trim() };
    });
    expect(info.label, `control ${info.name} has no label`).not.toBe("");
    const found = page.getByLabel(info.label);
    const probes = await found.evaluateAll((els) => els.map((el) => el.getAttribute("data-label-probe")));
    expect(probes, `getByLabel(${JSON.stringify(info.label)}) does not find ${info.name}`).toContain("1");
    await control.evaluate((el) => el.removeAttribute("data-label-probe"));
  }
  return n;
}

/** At 375 px the page itself does not scroll sideways (wide tables scroll inside their own box). */
export async function expectFitsWidth(page: Page): Promise<void> {
  const { scroll, client } = await page.evaluate(() => {
    const root = (globalThis as any).document.documentElement;
    return { scroll: root.scrollWidth as number, client: root.clientWidth as number };
  });
  expect(scroll, `the page is ${scroll}px wide in a ${client}px viewport`).toBeLessThanOrEqual(client + 1);
}
