/**
 * The client's HTTP transport: one logical call is the same request on every
 * attempt, retried with jittered backoff only where the gate dedupes it.
 */
import { type CreditGateError, errorFromResponse, GateUnreachableError } from "./errors";
import { globalFetch, trimTrailingSlashes } from "./http";

export interface TransportOptions {
  /** e.g. `https://gate.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /** An API key or the admin token. */
  token: string;
  /** Defaults to the global fetch (Workers, Node 20+). Bind it yourself if it needs `this`. */
  fetch?: typeof fetch;
  /** Attempts per call, first included (default 3; 1 disables retries). */
  maxAttempts?: number;
  /** First backoff; doubles per attempt with full jitter (default 100 ms). */
  retryBaseMs?: number;
  /** Cap on one backoff (default 2 000 ms). */
  retryMaxMs?: number;
  /** Per attempt (default 10 000 ms). */
  timeoutMs?: number;
  /** Test seam for the backoff. */
  sleep?: (ms: number) => Promise<void>;
}

/** Answers worth retrying: the request may not have been processed, or was shed. */
const RETRY_STATUSES = new Set([502, 503, 504]);
const MAX_RETRY_AFTER_MS = 10_000;

export interface Call {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Only requests that are idempotent end to end may be retried. */
  retry: boolean;
  /** Return the body as text (CSV). */
  text?: boolean;
}

export class Transport {
  private readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: TransportOptions) {
    this.baseUrl = trimTrailingSlashes(opts.baseUrl);
    this.fetchFn = opts.fetch ?? globalFetch;
    this.maxAttempts = Math.max(1, Math.min(10, Math.floor(opts.maxAttempts ?? 3)));
    this.retryBaseMs = opts.retryBaseMs ?? 100;
    this.retryMaxMs = opts.retryMaxMs ?? 2_000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  private url(c: Call): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(c.query ?? {})) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return `${this.baseUrl}${c.path}${qs ? `?${qs}` : ""}`;
  }

  private backoffMs(attempt: number, retryAfter: string | null): number {
    const cap = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (attempt - 1));
    const jittered = Math.floor(Math.random() * (cap + 1));
    const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
    return Number.isFinite(seconds) ? Math.min(MAX_RETRY_AFTER_MS, Math.max(jittered, seconds * 1000)) : jittered;
  }

  /** One logical call: the same method, URL and body on every attempt. */
  async call<T>(c: Call): Promise<T> {
    const url = this.url(c);
    const headers: Record<string, string> = { authorization: `Bearer ${this.opts.token}`, accept: "application/json" };
    let payload: string | undefined;
    if (c.body !== undefined) {
      payload = JSON.stringify(c.body);
      headers["content-type"] = "application/json";
    }
    const attempts = c.retry ? this.maxAttempts : 1;
    let lastFailure: unknown = null;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let res: Response;
      try {
        res = await this.fetchFn(url, {
          method: c.method,
          headers,
          body: payload,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (e) {
        lastFailure = e;
        if (attempt < attempts) await this.sleep(this.backoffMs(attempt, null));
        continue;
      }
      if (RETRY_STATUSES.has(res.status)) {
        if (attempt === attempts) {
          // Still shed or failing upstream on the last attempt: the request may or may not
          // have been processed, which is "unreachable", not a refusal (keep the details).
          throw new GateUnreachableError(attempts, await this.problemOf(res));
        }
        lastFailure = new Error(`HTTP ${res.status}`);
        const retryAfter = res.headers.get("retry-after");
        await res.body?.cancel();
        await this.sleep(this.backoffMs(attempt, retryAfter));
        continue;
      }
      return this.read<T>(res, c.text === true);
    }
    throw new GateUnreachableError(attempts, lastFailure);
  }

  private async read<T>(res: Response, asText: boolean): Promise<T> {
    const text = await res.text();
    if (res.ok && asText) return text as T;
    const body = parseJson(text);
    if (!res.ok) throw errorFromResponse(res.status, body, res.headers.get("x-request-id"));
    return body as T;
  }

  /** The error an answer stands for (problem+json or not), as a CreditGateError. */
  private async problemOf(res: Response): Promise<CreditGateError> {
    let text = "";
    try {
      text = await res.text();
    } catch {
      text = "";
    }
    return errorFromResponse(res.status, parseJson(text), res.headers.get("x-request-id"));
  }
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}
