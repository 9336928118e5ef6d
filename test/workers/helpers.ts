/** Shared helpers for the Workers suites: HTTP calls through the real Worker entry. */
import { createExecutionContext, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import worker from "../../src/index";

export const ADMIN = "test-admin-token";
let counter = 0;
/** A fresh id per call, so suites never share an account. */
export const uid = (prefix = "acct") =>
  `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

export interface CallOptions {
  token?: string | null;
  headers?: Record<string, string>;
  /** A raw body string sent as is. */
  raw?: string;
  viaExports?: boolean;
}

export interface Res {
  status: number;
  headers: Headers;
  json: any;
  text: string;
}

/** Reads a response whole: its text, and the JSON when it parses. */
export async function read(res: Response): Promise<Res> {
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/**
 * The Worker's own fetch handler, called directly: the pool's
 * `exports.default` wraps one more proxy per call and slows down
 * quadratically within a file (thousands of calls overflow the stack).
 */
export async function fetchWorker(req: Request): Promise<Res> {
  return read(await worker.fetch(req, env, createExecutionContext()));
}

/** JSON body, admin token unless told otherwise; `viaExports` goes through the pool's Worker entry. */
export async function call(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? ADMIN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (opts.raw !== undefined) payload = opts.raw;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) {
    headers["content-type"] = "application/json";
  }
  const req = new Request(`http://gate.test${path}`, { method, headers, body: payload });
  return opts.viaExports ? read(await exports.default.fetch(req)) : fetchWorker(req);
}

export async function grant(accountId: string, body: Record<string, unknown>) {
  const res = await call("POST", `/v1/accounts/${accountId}/grants`, {
    grant_id: uid("g"),
    type: "purchased",
    ...body,
  });
  if (res.status !== 201) throw new Error(`grant failed: ${res.status} ${res.text}`);
  return res.json;
}

export async function debit(accountId: string, amount: number, extra: Record<string, unknown> = {}) {
  return call("POST", `/v1/accounts/${accountId}/debits`, { debit_id: uid("d"), amount, ...extra });
}

export async function balance(accountId: string, unit = "credits") {
  const res = await call("GET", `/v1/accounts/${accountId}/balance?unit=${unit}`);
  return res.json;
}

export async function ledgerEntries(accountId: string) {
  const res = await call("GET", `/v1/accounts/${accountId}/ledger?limit=1000`);
  return res.json.entries as any[];
}

/** The account's Durable Object, for runInDurableObject / runDurableObjectAlarm. */
export function ledgerStubFor(accountId: string) {
  const ns = env.ACCOUNT;
  return ns.get(ns.idFromName(accountId));
}

/**
 * Runs the account's alarm handler to its end. Called directly rather than
 * through runDurableObjectAlarm: the real alarm (250 ms after a write) may
 * already be running, and then runDurableObjectAlarm finds none scheduled.
 */
export async function runAlarm(accountId: string): Promise<void> {
  await runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => inst.alarm());
}

/** Moves one account's DO clock forward: no sleeping in consistency tests. */
export async function advanceClock(accountId: string, ms: number) {
  await runInDurableObject(ledgerStubFor(accountId), (instance: AccountLedger) => {
    instance.clock.offsetMs += ms;
  });
}

export const iso = (ms: number) => new Date(ms).toISOString();

/** The RFC 9457 shape with the stable code; every response carries x-request-id. */
export function expectProblem(res: Res, status: number, code: string): void {
  expect({ status: res.status, code: res.json?.code, detail: res.json?.detail }).toMatchObject({ status, code });
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(res.json).toMatchObject({
    type: expect.any(String),
    title: expect.any(String),
    status,
    code,
    detail: expect.any(String),
  });
  expect(res.json.type.length).toBeGreaterThan(0);
  expect(res.json.title.length).toBeGreaterThan(0);
  expect(res.json.detail.length).toBeGreaterThan(0);
  expect(res.headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
}
