/** Typed helpers for the Node e2e suites: the gate started by global-setup.ts, and plain fetch calls. */
import { inject } from "vitest";

export interface Gate {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:41234. */
  url: string;
  /** The bootstrap ADMIN_TOKEN of this run. */
  adminToken: string;
  /** The PRIVATE JWK set (JSON) the gate signs receipts with; derive public keys by dropping `d`. */
  signingJwks: string;
}

export function gate(): Gate {
  return { url: inject("gateUrl"), adminToken: inject("adminToken"), signingJwks: inject("signingJwks") };
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  /** The parsed body when it is JSON (including problem+json), else null. */
  json: T;
  text: string;
}

let counter = 0;
/** A fresh id per call, so tests sharing one gate never share an account. */
export const uid = (prefix = "acct"): string =>
  `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * One HTTP call to the gate. `token` defaults to the admin token; pass null to send none.
 * A body is sent as JSON with content-type application/json.
 * @example const res = await api("POST", `/v1/accounts/${id}/debits`, { debit_id: "d1", amount: 3 }, gatewayKey);
 */
export async function api<T = any>(
  method: string,
  path: string,
  body?: unknown,
  token?: string | null,
  headers: Record<string, string> = {},
): Promise<ApiResponse<T>> {
  const g = gate();
  const h: Record<string, string> = { ...headers };
  const bearer = token === undefined ? g.adminToken : token;
  if (bearer !== null) h.authorization = `Bearer ${bearer}`;
  if (body !== undefined) h["content-type"] ??= "application/json";
  const res = await fetch(`${g.url}${path}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any = null;
  if (/json/i.test(res.headers.get("content-type") ?? "")) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  return { status: res.status, headers: res.headers, json, text };
}
