/**
 * The dashboard reads and acts through the same /v1 API, in process: each
 * call is a Request to the gateway app with the session's bearer, so auth,
 * scope rules, body guards, roles and the ledger's actor are exactly the
 * API's. A refusal (problem+json) becomes a sentence a person understands.
 */
import type { Context, Hono } from "hono";
import { buildApp } from "../api/app";
import type { AppEnv } from "../api/context";
import { ID_PATTERN } from "../ledger/ids";

let gateway: Hono<AppEnv> | undefined;
/** One gateway app per isolate, built on first use (api/app.ts mounts the dashboard, so not at import). */
const gatewayApp = (): Hono<AppEnv> => {
  gateway ??= buildApp();
  return gateway;
};

/**
 * Whether a path id may go into a /v1 path the dashboard builds: a well-formed
 * id (ID_PATTERN) that is not only dots ("." and ".." pass ID_PATTERN, but
 * `/v1/accounts/../balance` is `/v1/balance`).
 */
export const usableId = (id: string): boolean => ID_PATTERN.test(id) && !/^\.+$/.test(id);

export interface ApiOk<T> {
  ok: true;
  status: number;
  body: T;
  headers: Headers;
}

export interface ApiProblem {
  ok: false;
  status: number;
  code: string;
  detail: string;
  /** What the page shows (in role="alert"). */
  sentence: string;
  /** Members beyond the standard ones (available, requested, approval_id, …). */
  extra: Record<string, unknown>;
}

export type ApiResult<T> = ApiOk<T> | ApiProblem;

function executionCtxOf(c: Context): ExecutionContext | undefined {
  try {
    return c.executionCtx as ExecutionContext;
  } catch {
    return undefined;
  }
}

/** The raw Response of one gateway call (for downloads proxied as they are). */
export async function apiFetch(
  c: Context<AppEnv>,
  bearer: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  const headers = new Headers({ authorization: `Bearer ${bearer}` });
  const requestId = c.get("requestId");
  if (requestId) headers.set("x-request-id", requestId);
  let payload: string | undefined;
  if (body !== undefined) {
    headers.set("content-type", "application/json");
    payload = JSON.stringify(body);
  }
  const url = new URL(path, c.req.url);
  const req = new Request(url, { method, headers, body: payload });
  return gatewayApp().fetch(req, c.env, executionCtxOf(c));
}

/** One gateway call, read whole: the JSON body, or the refusal as a sentence. */
export async function apiCall<T>(
  c: Context<AppEnv>,
  bearer: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiResult<T>> {
  const res = await apiFetch(c, bearer, method, path, body);
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (res.ok) return { ok: true, status: res.status, body: parsed as T, headers: res.headers };
  return problemOf(res.status, parsed, c.get("requestId"));
}

function problemOf(status: number, parsed: unknown, requestId: string | undefined): ApiProblem {
  const p = (parsed !== null && typeof parsed === "object" ? parsed : {}) as Record<string, unknown>;
  const code = typeof p.code === "string" ? p.code : "internal_error";
  const detail = typeof p.detail === "string" ? p.detail : "";
  const { type: _t, title: _ti, status: _s, code: _c, detail: _d, ...extra } = p;
  return { ok: false, status, code, detail, extra, sentence: sentenceFor(code, detail, requestId) };
}

const withDetail = (lead: string, detail: string): string => (detail ? `${lead} (${detail}).` : `${lead}.`);

/** A refusal's code and detail as a sentence a person understands: never JSON, never a stack. */
export function sentenceFor(code: string, detail: string, requestId?: string): string {
  switch (code) {
    case "unauthorized":
      return "Your session has ended or is not valid. Open a new link, or sign in again.";
    case "forbidden":
      return withDetail("Your access does not allow this", detail);
    case "grant_limit_exceeded":
      return withDetail("This amount is above the limit your key may grant", detail);
    case "not_found":
    case "account_not_found":
      return "There is no such account, or it is not one you can see.";
    case "grant_not_found":
      return "There is no such grant on this account.";
    case "invoice_not_found":
      return "There is no such invoice on this account.";
    case "insufficient_credits":
      return withDetail("There are not enough credits for this", detail);
    case "invalid_amount":
      return withDetail("The amount is not valid: use a whole number from 1 up to 10^15", detail);
    case "invalid_request":
    case "invalid_json":
      return withDetail("The request was not accepted", detail);
    case "idempotency_conflict":
      return "This form was already sent with different values. Reload the page and try again.";
    case "grant_closed":
      return withDetail("This grant is already closed", detail);
    case "account_not_verified":
      return "This account is not verified, so it cannot receive promotional credits.";
    case "overloaded":
      return "The service is busy right now. Please try again in a few seconds.";
    case "velocity_limit":
      return "Too many operations in a short time. Please wait a moment and try again.";
    default:
      return `Something went wrong on our side. Please try again; if it keeps happening, quote reference ${requestId ?? "(none)"}.`;
  }
}
