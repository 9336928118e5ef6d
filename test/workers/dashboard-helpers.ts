/** Helpers for the dashboard suites: magic links, sessions, and pages fetched through the real Worker. */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { call, fetchWorker, type Res } from "./helpers";

export const ORIGIN = "http://gate.test";

/** The whole answer of POST …/dashboard-links: `url`, `widget_url`, `expires_at`. */
export async function linksFor(
  accountId: string,
  token?: string,
  ttl?: number,
): Promise<{ url: string; widget_url: string; expires_at: string }> {
  const res = await call(
    "POST",
    `/v1/accounts/${accountId}/dashboard-links`,
    ttl === undefined ? {} : { ttl_seconds: ttl },
    token === undefined ? {} : { token },
  );
  if (res.status !== 201) throw new Error(`link: ${res.status} ${res.text}`);
  return res.json;
}

/** A magic link for `accountId` from the API (admin token unless told otherwise). */
export async function linkFor(accountId: string, token?: string, ttl?: number): Promise<string> {
  return (await linksFor(accountId, token, ttl)).url;
}

/** The target of the sign-in page's `<meta http-equiv="refresh" content="0;url=…">`, or null. */
export function refreshTarget(html: string): string | null {
  const m = /<meta http-equiv="refresh" content="0;url=([^"]+)"/.exec(html);
  return m?.[1] ?? null;
}

export const tokenOf = (url: string): string => new URL(url).searchParams.get("token") ?? "";

/** GET/POST a dashboard page (redirects are not followed). */
export async function page(
  path: string,
  opts: { cookie?: string; method?: string; body?: string; headers?: Record<string, string>; origin?: string } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.body !== undefined && !headers["content-type"])
    headers["content-type"] = "application/x-www-form-urlencoded";
  const req = new Request(`${opts.origin ?? ORIGIN}${path}`, {
    method: opts.method ?? "GET",
    headers,
    body: opts.body,
    redirect: "manual",
  });
  return fetchWorker(req);
}

/** Opens a link and returns the session cookie's value. */
export async function sessionFor(accountId: string): Promise<string> {
  const url = await linkFor(accountId);
  const res = await page(`${new URL(url).pathname}${new URL(url).search}`);
  expect(res.status).toBe(200);
  expect(refreshTarget(res.text)).toBe(`/app/accounts/${encodeURIComponent(accountId)}`);
  const cookie = /cg_session=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];
  if (!cookie) throw new Error(`no session cookie: ${res.headers.get("set-cookie")}`);
  return cookie;
}

/** The claims of a compact JWS, unverified (for reading a session's csrf in tests). */
export function claimsOf(token: string): Record<string, unknown> {
  const part = token.split(".")[1] ?? "";
  return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
}

/** The header of a compact JWS. */
export function headerOf(token: string): Record<string, unknown> {
  const part = token.split(".")[0] ?? "";
  return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
}

/** Every `data-field` on a page with its `data-value`. */
export function fields(html: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of html.matchAll(/data-field="([^"]*)" data-value="([^"]*)"/g))
    out.set(unescapeHtml(m[1]!), unescapeHtml(m[2]!));
  return out;
}

const unescapeHtml = (s: string): string =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");

export { env };
