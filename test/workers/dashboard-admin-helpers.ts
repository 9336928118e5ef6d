/**
 * Helpers for the operator-view suites: pages fetched through the Worker's
 * real fetch handler, cookies carried by hand, forms posted as a browser on
 * this origin would (Origin and Sec-Fetch-Site same-origin).
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../../src/index";
import { call, uid } from "./helpers";

export const ORIGIN = "http://gate.test";

export interface Page {
  status: number;
  headers: Headers;
  text: string;
  location: string | null;
}

export interface PageOptions {
  cookie?: string;
  method?: string;
  /** A urlencoded form (URLSearchParams) or a multipart one (FormData). */
  form?: URLSearchParams | FormData;
  headers?: Record<string, string>;
  /** Replaces env (e.g. a recording BULK_QUEUE). */
  bindings?: Env;
}

/** One request to the Worker, as a same-origin browser sends it unless `headers` say otherwise. */
export async function page(path: string, opts: PageOptions = {}): Promise<Page> {
  const method = opts.method ?? (opts.form ? "POST" : "GET");
  const headers: Record<string, string> = {};
  if (opts.cookie) headers.cookie = opts.cookie;
  if (method === "POST") {
    headers.origin = ORIGIN;
    headers["sec-fetch-site"] = "same-origin";
  }
  Object.assign(headers, opts.headers);
  for (const [k, v] of Object.entries(headers)) if (v === "") delete headers[k];
  const req = new Request(`${ORIGIN}${path}`, { method, headers, body: opts.form, redirect: "manual" });
  const res = await worker.fetch(req, opts.bindings ?? env, createExecutionContext());
  return { status: res.status, headers: res.headers, text: await res.text(), location: res.headers.get("location") };
}

/** `name=value` of the Set-Cookie named `name`, or null. */
export function cookieOf(p: Page, name: string): string | null {
  const all = p.headers.getSetCookie?.() ?? [p.headers.get("set-cookie") ?? ""];
  for (const line of all) {
    const first = line.split(";")[0] ?? "";
    if (first.startsWith(`${name}=`) && first.length > name.length + 1) return first;
  }
  return null;
}

/** The raw Set-Cookie line for `name` (to check its attributes). */
export function setCookieLine(p: Page, name: string): string | null {
  const all = p.headers.getSetCookie?.() ?? [p.headers.get("set-cookie") ?? ""];
  return all.find((l) => l.startsWith(`${name}=`)) ?? null;
}

/** Signs in with `key` and returns the operator cookie; throws unless the sign-in succeeded. */
export async function signIn(key: string): Promise<string> {
  const p = await page("/app/admin/login", { form: new URLSearchParams({ api_key: key }) });
  const cookie = cookieOf(p, "cg_operator");
  if (p.status !== 303 || !cookie) throw new Error(`sign-in: ${p.status} ${p.text.slice(0, 300)}`);
  return cookie;
}

/** An API key of `role`; its token and id. */
export async function apiKey(role: string, maxGrantAmount: number | null = null) {
  const res = await call("POST", "/v1/api-keys", { name: uid(`dash-${role}`), role, max_grant_amount: maxGrantAmount });
  if (res.status !== 201) throw new Error(`key: ${res.status} ${res.text}`);
  return { token: res.json.key as string, id: res.json.id as string };
}

/** The session's csrf token, from any page with a POST form. */
export function csrfOf(html: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(html);
  if (!m?.[1]) throw new Error("no csrf field on the page");
  return m[1];
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The data-value of the element whose data-field is `field`; null when absent. */
export function fieldValue(html: string, field: string): string | null {
  const m = new RegExp(`data-field="${esc(field)}" data-value="([^"]*)"`).exec(html);
  return m ? (m[1] ?? null) : null;
}

/** The text of the element whose data-field is `field` (no data-value); null when absent. */
export function textOf(html: string, field: string): string | null {
  const m = new RegExp(`data-field="${esc(field)}"[^>]*>([^<]*)<`).exec(html);
  return m ? (m[1] ?? null) : null;
}

/** The HTML of the first <form data-form="name">…</form>, or null. */
export function formHtml(html: string, name: string): string | null {
  const m = new RegExp(`<form[^>]*data-form="${esc(name)}"[^>]*>[\\s\\S]*?</form>`).exec(html);
  return m ? m[0] : null;
}

/** The option values of <select name="name"> in `html`. */
export function optionsOf(html: string, name: string): string[] {
  const m = new RegExp(`<select[^>]*name="${esc(name)}"[^>]*>([\\s\\S]*?)</select>`).exec(html);
  if (!m?.[1]) return [];
  return [...m[1].matchAll(/<option value="([^"]*)"/g)].map((o) => o[1] ?? "").filter((v) => v !== "");
}

/** Text as a person reads it: the few entities hono/jsx writes, decoded. */
export const unescapeHtml = (s: string): string =>
  s
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");

/** The text of the role="alert" element, or null. */
export function alertOf(html: string): string | null {
  const m = /role="alert"[^>]*>([^<]*)</.exec(html);
  return m ? unescapeHtml(m[1] ?? "").trim() : null;
}

/** Hidden input `name`'s value in `html`. */
export function hiddenOf(html: string, name: string): string {
  const m = new RegExp(`name="${esc(name)}" value="([^"]*)"`).exec(html);
  if (!m?.[1]) throw new Error(`no hidden ${name}`);
  return m[1];
}

/** Opens the account page and posts its grant form with `fields`. */
export async function postGrant(cookie: string, accountId: string, fields: Record<string, string>): Promise<Page> {
  const acct = await page(`/app/admin/accounts/${accountId}`, { cookie });
  const form = formHtml(acct.text, "grant");
  if (!form) throw new Error(`no grant form: ${acct.status} ${acct.text.slice(0, 300)}`);
  const body = new URLSearchParams({ csrf: csrfOf(form), grant_id: hiddenOf(form, "grant_id"), ...fields });
  return page(`/app/admin/accounts/${accountId}/grants`, { cookie, form: body });
}
