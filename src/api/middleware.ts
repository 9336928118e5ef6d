/** Request id, structured logs, body guard, auth, and the problem+json error handler. */
import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { looksLikeJws, sessionCaller } from "../dashboard/tokens";
import { type ApiKey, findApiKey, KeyStoreUnavailable } from "../db/api-keys";
import { ApiError, problemBody, statusOf } from "../errors";
import { wellFormed } from "../ledger/ids";
import { IMPORT_BODY_MAX_BYTES } from "../ledger/migration";
import { log } from "../log";
import { recordHttpError } from "../metrics/analytics";
import type { AppContext, AppEnv, Caller } from "./context";

export const MAX_BODY_BYTES = 65_536;
/** What a 503 `overloaded` asks the client to wait before retrying. */
export const RETRY_AFTER_SECONDS = 5;
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

export const requestId: MiddlewareHandler<AppEnv> = async (c, next) => {
  const sent = c.req.header("x-request-id");
  const id = sent && REQUEST_ID.test(sent) ? sent : crypto.randomUUID();
  c.set("requestId", id);
  const started = performance.now();
  await next();
  c.res.headers.set("x-request-id", id);
  const status = c.res.status;
  if (status >= 400) recordHttpError(c.env.METRICS, c.get("errorCode") ?? null, status); // src/metrics/analytics.ts
  if (c.req.method !== "GET" || status >= 400) {
    const write = c.get("write");
    log({
      event: write ? "ledger.write" : "request",
      request_id: id,
      method: c.req.method,
      path: c.req.path,
      status,
      code: c.get("errorCode") ?? null,
      account_id: c.get("accountId") ?? null,
      actor: c.get("caller")?.actor ?? null,
      ...write,
      latency_ms: Math.round((performance.now() - started) * 1000) / 1000,
    });
  }
};

/**
 * A refused body is still read to its end and thrown away, up to this many
 * bytes in all, before the 413 goes out (see drain()).
 */
export const MAX_DRAIN_BYTES = 8_388_608;
/** How long a refused body may take to arrive before it is cancelled anyway. */
export const DRAIN_TIMEOUT_MS = 5_000;

/**
 * Enforces the body rules of the contract before any route sees the body:
 * 413 over 64 KiB, 415 without application/json, 400 invalid_json, 400 for a
 * body that breaks off or holds ill-formed Unicode. POST /v1/imports alone
 * takes application/x-ndjson up to 10 MiB, kept as text for the route.
 */
export const bodyGuard: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set("body", undefined);
  c.set("ndjson", undefined);
  if (c.req.method === "GET" || c.req.method === "HEAD") return next();
  const body = c.req.raw.body;
  const cap = bodyCap(c.req.method, c.req.path);
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > cap) {
    // Read to its end first, so the 413 never races the upload (wrangler dev's
    // proxy then sometimes answers with its own plain-text 503). Past the drain
    // bound it is left untouched: a body nobody began to read is discarded by
    // the runtime without harm, one read in part and cancelled is not.
    if (body !== null && declared <= MAX_DRAIN_BYTES) await drain(body.getReader(), 0);
    throw tooLarge(cap);
  }
  const raw = await readCapped(body, cap);
  if (raw.byteLength === 0) return next();
  const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  // POST /v1/imports alone takes NDJSON: kept as text, each line judged by the route (src/api/imports.ts).
  // Its 415 / 400 waits for the route's role check, so a caller who may not import learns nothing of the body.
  if (isImportRoute(c.req.method, c.req.path)) {
    try {
      c.set("ndjson", ndjsonText(raw, type));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      c.set("ndjson", e);
    }
    return next();
  }
  if (type !== "application/json") {
    throw new ApiError("unsupported_media_type", "send the body as content-type: application/json");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(raw));
  } catch {
    throw new ApiError("invalid_json", "the body is not valid JSON");
  }
  // Valid UTF-8 can still spell a lone surrogate as a \uD800 escape; entries are
  // hashed over RFC 8785 JSON, which has no form for one.
  if (!wellFormed(parsed)) throw new ApiError("invalid_request", "body: strings must be well-formed Unicode");
  c.set("body", parsed);
  return next();
};

const tooLarge = (cap: number) => new ApiError("payload_too_large", `this route takes bodies of at most ${cap} bytes`);

/**
 * A bulk grant names up to 10 000 accounts of up to 128 characters each, so
 * its route takes larger bodies than the rest (docs/api.md, Bounds).
 */
export const BULK_BODY_MAX_BYTES = 1_572_864;

/**
 * A usage batch holds up to 1 000 events of up to ~550 bytes each (two
 * 128-character ids, a meter name, a time), so POST /v1/usage takes this much.
 */
export const USAGE_BODY_MAX_BYTES = 1_048_576;

/** The legacy import (exactly POST /v1/imports): NDJSON up to IMPORT_BODY_MAX_BYTES (src/ledger/migration.ts). */
const isImportRoute = (method: string, path: string) => method === "POST" && path === "/v1/imports";

/** An NDJSON body as text: 415 unless sent as application/x-ndjson, 400 invalid_json unless UTF-8. */
function ndjsonText(raw: Uint8Array, type: string | undefined): string {
  if (type !== "application/x-ndjson") {
    throw new ApiError("unsupported_media_type", "send the body as content-type: application/x-ndjson");
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(raw);
  } catch {
    throw new ApiError("invalid_json", "the body is not UTF-8 text");
  }
}

/** The byte cap for a request's body: MAX_BODY_BYTES, except for the bulk grant, usage and import routes. */
export function bodyCap(method: string, path: string): number {
  if (isImportRoute(method, path)) return IMPORT_BODY_MAX_BYTES;
  if (method === "POST" && path === "/v1/usage") return USAGE_BODY_MAX_BYTES;
  return method === "POST" && path === "/v1/grants/bulk" ? BULK_BODY_MAX_BYTES : MAX_BODY_BYTES;
}

/**
 * Reads a body, refusing it as soon as it passes `cap` bytes: a chunked body
 * without content-length is never buffered whole.
 */
async function readCapped(body: ReadableStream<Uint8Array> | null, cap: number): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let step: ReadableStreamReadResult<Uint8Array>;
    try {
      step = await reader.read();
    } catch {
      // The client stopped before the body was complete: its request, not our fault.
      throw new ApiError("invalid_request", "the body ended before it was complete");
    }
    if (step.done) break;
    size += step.value.byteLength;
    if (size > cap) {
      await drain(reader, size);
      throw tooLarge(cap);
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
 * Reads what is left of a refused body and throws it away, so the 413 goes
 * out only once the client has sent everything. Cancelling the stream instead
 * (or answering while the client still sends) breaks the connection the body
 * came on: workerd drops it after the response, so the client's next request
 * on it gets ECONNRESET, and under `wrangler dev` the next request to any
 * route stalls until some other request or alarm arrives (issue 7). Bounded by
 * MAX_DRAIN_BYTES and DRAIN_TIMEOUT_MS; past either the stream is cancelled
 * after all, which can cost that connection.
 */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, alreadyRead: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), DRAIN_TIMEOUT_MS);
  });
  try {
    for (let size = alreadyRead; size <= MAX_DRAIN_BYTES; ) {
      const step = await Promise.race([reader.read(), timeout]);
      if (step === "timeout") break;
      if (step.done) return;
      size += step.value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The body broke off while being drained: nothing is left to read, and the
    // answer is 413 all the same.
  } finally {
    clearTimeout(timer);
  }
}

/** Bearer token -> caller: the bootstrap ADMIN_TOKEN or an API key. */
export const auth: MiddlewareHandler<AppEnv> = async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) throw new ApiError("unauthorized", "send Authorization: Bearer <token>");
  const token = match[1];
  const admin = c.env.ADMIN_TOKEN;
  if (admin && isAdminToken(token, admin)) {
    c.set("caller", {
      keyId: "admin-token",
      role: "admin",
      maxGrantAmount: null,
      accountScope: null,
      actor: "admin-token:admin",
    });
    return next();
  }
  // Dashboard sessions (src/dashboard/tokens.ts): a customer session is a scoped
  // viewer, an operator session the key it names, re-read from D1.
  if (looksLikeJws(token)) {
    let session: Caller | null;
    try {
      session = await sessionCaller(c.env, token);
    } catch (e) {
      if (!(e instanceof KeyStoreUnavailable)) throw e;
      log({ event: "auth.key_store_unavailable", request_id: c.get("requestId"), path: c.req.path, error: e.message });
      throw new ApiError("overloaded", "API keys cannot be checked right now; retry shortly");
    }
    if (!session) throw new ApiError("unauthorized", "unknown, expired or revoked token");
    c.set("caller", session);
    return next();
  }
  let key: ApiKey | null;
  try {
    key = await findApiKey(c.env.DB, token);
  } catch (e) {
    if (!(e instanceof KeyStoreUnavailable)) throw e;
    // What failed stays in the logs; the client learns only that it may retry.
    log({ event: "auth.key_store_unavailable", request_id: c.get("requestId"), path: c.req.path, error: e.message });
    throw new ApiError("overloaded", "API keys cannot be checked right now; retry shortly");
  }
  if (!key) throw new ApiError("unauthorized", "unknown or revoked token");
  c.set("caller", {
    keyId: key.id,
    role: key.role,
    maxGrantAmount: key.maxGrantAmount,
    accountScope: key.accountScope,
    actor: `${key.id}:${key.role}`,
  });
  return next();
};

/** The bootstrap token's SHA-256, computed once per isolate (and again if the secret changes). */
let adminDigest: { token: string; digest: Buffer } | null = null;

/**
 * Whether `token` is the ADMIN_TOKEN, in time independent of where they
 * differ: both are hashed to 32 bytes and compared with timingSafeEqual. Every
 * request asks this first, so it is synchronous (node:crypto) and hashes the
 * secret once, not twice per request through async WebCrypto digests (issue 11).
 */
function isAdminToken(token: string, admin: string): boolean {
  if (adminDigest?.token !== admin) adminDigest = { token: admin, digest: createHash("sha256").update(admin).digest() };
  return timingSafeEqual(createHash("sha256").update(token).digest(), adminDigest.digest);
}

export function onError(e: Error, c: AppContext): Response {
  const problem =
    e instanceof ApiError
      ? e.problem
      : { code: "internal_error" as const, detail: "an internal error occurred; see the logs with this request id" };
  if (!(e instanceof ApiError)) {
    log({
      event: "error",
      request_id: c.get("requestId"),
      path: c.req.path,
      code: "internal_error",
      error: e.message,
      stack: e.stack,
    });
  }
  c.set("errorCode", problem.code);
  const headers: Record<string, string> = { "content-type": "application/problem+json" };
  if (problem.code === "overloaded") headers["retry-after"] = String(RETRY_AFTER_SECONDS);
  // velocity_limit: the seconds until the window has room, as the account's DO counted them.
  const wait = problem.extra?.retry_after;
  if (problem.code === "velocity_limit" && typeof wait === "number") headers["retry-after"] = String(wait);
  return c.body(JSON.stringify(problemBody(problem)), statusOf(problem.code), headers);
}
