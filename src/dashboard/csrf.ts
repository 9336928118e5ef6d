/**
 * Session cookies and cross-site request forgery defences for every POST
 * under /app. Three layers: the session cookie is SameSite=Strict; the form
 * must carry the session's own `csrf` token (a random claim in the session
 * JWT, src/dashboard/tokens.ts) in a hidden field; and the request must come
 * from this origin (Sec-Fetch-Site `same-origin` when the browser sends it;
 * otherwise Origin equal to the request's; a POST with neither, or with
 * `Origin: null`, is refused).
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { PageError } from "./layout";

/** The customer session cookie. */
export const SESSION_COOKIE = "cg_session";
/** The operator session cookie. */
export const OPERATOR_COOKIE = "cg_operator";
/** Every dashboard cookie is scoped to this path. */
export const COOKIE_PATH = "/app";
/** The hidden form field that carries the session's csrf token. */
export const CSRF_FIELD = "csrf";
/** A dashboard form body (other than an upload that names its own bound) is at most this many bytes. */
export const FORM_MAX_BYTES = 65_536;

const secure = (c: Context): boolean => new URL(c.req.url).protocol === "https:";

/** Sets a session cookie: HttpOnly, SameSite=Strict, Path=/app, Secure on https, expiring with the session. */
export function setSessionCookie(c: Context, name: string, token: string, maxAgeSeconds: number): void {
  setCookie(c, name, token, {
    httpOnly: true,
    sameSite: "Strict",
    path: COOKIE_PATH,
    secure: secure(c),
    maxAge: Math.max(0, Math.floor(maxAgeSeconds)),
  });
}

export function clearSessionCookie(c: Context, name: string): void {
  deleteCookie(c, name, { path: COOKIE_PATH, secure: secure(c), httpOnly: true, sameSite: "Strict" });
}

/** A cookie's value, or undefined. */
export const readCookie = (c: Context, name: string): string | undefined => getCookie(c, name) || undefined;

const CROSS_SITE = "This form was sent from another site, so it was refused. Open the page here and try again.";

/**
 * Refuses (403, a sentence) a POST that does not come from this origin's own
 * pages. A browser that sends `Sec-Fetch-Site` (every current one) is decided
 * by it alone: `same-origin` passes, anything else is refused. Origin is not
 * enough there: a same-origin post from a page whose referrer policy is
 * `no-referrer` carries `Origin: null`. Without Sec-Fetch-Site, Origin must
 * equal the request's origin; a missing Origin or `null` is refused.
 */
export function requireSameOrigin(c: Context): void {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined) {
    if (site !== "same-origin") throw new PageError(403, CROSS_SITE);
    return;
  }
  const origin = c.req.header("origin");
  if (origin === undefined || origin === "null" || origin !== new URL(c.req.url).origin) {
    throw new PageError(403, CROSS_SITE);
  }
}

async function equalStrings(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [ha, hb] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(a)),
    crypto.subtle.digest("SHA-256", enc.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(ha, hb);
}

/** Reads a body up to `cap` bytes; past it, 413 with a sentence. */
async function readCapped(c: Context, cap: number): Promise<Uint8Array> {
  const tooLarge = new PageError(413, `This form is too large: it may hold at most ${cap} bytes.`);
  if (Number(c.req.header("content-length") ?? "0") > cap) throw tooLarge;
  const body = c.req.raw.body;
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const step = await reader.read();
    if (step.done) break;
    size += step.value.byteLength;
    if (size > cap) {
      await reader.cancel();
      throw tooLarge;
    }
    chunks.push(step.value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Checks a dashboard POST and returns its form: same origin, a body of at
 * most `cap` bytes (urlencoded or multipart), and the session's csrf token
 * in CSRF_FIELD. Any failure is a PageError with a sentence (403, 413, 400).
 */
export async function verifiedForm(c: Context, expectedCsrf: string, cap = FORM_MAX_BYTES): Promise<FormData> {
  requireSameOrigin(c);
  const raw = await readCapped(c, cap);
  const type = c.req.header("content-type") ?? "application/x-www-form-urlencoded";
  let form: FormData;
  try {
    form = await new Response(raw, { headers: { "content-type": type } }).formData();
  } catch {
    throw new PageError(400, "The form could not be read. Reload the page and try again.");
  }
  const sent = form.get(CSRF_FIELD);
  if (typeof sent !== "string" || !(await equalStrings(sent, expectedCsrf))) {
    throw new PageError(403, "This form has expired or did not come from your session. Reload the page and try again.");
  }
  return form;
}
