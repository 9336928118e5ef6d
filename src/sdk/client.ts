/**
 * CreditGateClient: typed calls for every endpoint of the contract.
 *
 * Every call that creates or moves credits carries a client-supplied id; when
 * the caller gives none the client makes one BEFORE the first attempt, so a
 * retry after a network error is the same request to the gate (it replays the
 * first result instead of charging twice).
 *
 * @example
 * const gate = new CreditGateClient({ baseUrl: "https://gate.example.com", token: env.GATE_KEY });
 * const { balance } = await gate.debit("acct_1", { amount: 3 });
 */
import { CreditGateError, errorFromResponse, GateUnreachableError } from "./errors";
import type {
  Account,
  AccountInput,
  ApiKey,
  ApiKeyCreated,
  ApiKeyInput,
  Balance,
  DebitInput,
  DebitResult,
  Grant,
  GrantInput,
  GrantResult,
  GrantStatus,
  HoldClosed,
  HoldCreated,
  HoldInput,
  HoldState,
  Jwks,
  LedgerPage,
  Policy,
  PolicyOverridesPatch,
  ReceiptCreated,
  ReceiptInput,
  SettleInput,
  SettleResult,
} from "./types";

export interface CreditGateClientOptions {
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
  /** Makes idempotency ids (default `crypto.randomUUID()`). */
  newId?: () => string;
  /** Test seam for the backoff. */
  sleep?: (ms: number) => Promise<void>;
}

/** Answers worth retrying: the request may not have been processed, or was shed. */
const RETRY_STATUSES = new Set([502, 503, 504]);
const MAX_RETRY_AFTER_MS = 10_000;

interface Call {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Only requests that are idempotent end to end may be retried. */
  retry: boolean;
  /** Return the body as text (CSV). */
  text?: boolean;
}

const seg = (s: string) => encodeURIComponent(s);

export class CreditGateClient {
  private readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly timeoutMs: number;
  private readonly newId: () => string;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: CreditGateClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
    this.maxAttempts = Math.max(1, Math.min(10, Math.floor(opts.maxAttempts ?? 3)));
    this.retryBaseMs = opts.retryBaseMs ?? 100;
    this.retryMaxMs = opts.retryMaxMs ?? 2_000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.newId = opts.newId ?? (() => crypto.randomUUID());
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  // ── accounts and balance ─────────────────────────────────────────────────

  /** Creates (201) or updates (200) an account; fields omitted are kept. */
  putAccount(accountId: string, input: AccountInput = {}): Promise<Account> {
    return this.call({ method: "PUT", path: `/v1/accounts/${seg(accountId)}`, body: input, retry: true });
  }

  getAccount(accountId: string): Promise<Account> {
    return this.call({ method: "GET", path: `/v1/accounts/${seg(accountId)}`, retry: true });
  }

  getBalance(accountId: string, opts: { unit?: string; asOf?: string } = {}): Promise<Balance> {
    return this.call({
      method: "GET",
      path: `/v1/accounts/${seg(accountId)}/balance`,
      query: { unit: opts.unit, as_of: opts.asOf },
      retry: true,
    });
  }

  // ── grants ───────────────────────────────────────────────────────────────

  createGrant(accountId: string, input: GrantInput): Promise<GrantResult> {
    const body = { ...input, grant_id: input.grant_id ?? this.id("grant") };
    return this.call({ method: "POST", path: `/v1/accounts/${seg(accountId)}/grants`, body, retry: true });
  }

  async listGrants(accountId: string, opts: { status?: GrantStatus } = {}): Promise<Grant[]> {
    const res = await this.call<{ grants: Grant[] }>({
      method: "GET",
      path: `/v1/accounts/${seg(accountId)}/grants`,
      query: { status: opts.status },
      retry: true,
    });
    return res.grants;
  }

  /** Voiding again returns the first result, so this is safe to retry. */
  voidGrant(accountId: string, grantId: string, opts: { reason?: string | null } = {}): Promise<GrantResult> {
    return this.call({
      method: "POST",
      path: `/v1/accounts/${seg(accountId)}/grants/${seg(grantId)}/void`,
      body: opts.reason === undefined ? {} : { reason: opts.reason },
      retry: true,
    });
  }

  // ── debits, holds, receipts ──────────────────────────────────────────────

  /** Throws CreditGateError code `insufficient_credits` (extra.available/requested) on 402. */
  debit(accountId: string, input: DebitInput): Promise<DebitResult> {
    const body = { ...input, debit_id: input.debit_id ?? this.id("debit") };
    return this.call({ method: "POST", path: `/v1/accounts/${seg(accountId)}/debits`, body, retry: true });
  }

  createHold(accountId: string, input: HoldInput): Promise<HoldCreated> {
    const body = { ...input, hold_id: input.hold_id ?? this.id("hold") };
    return this.call({ method: "POST", path: `/v1/accounts/${seg(accountId)}/holds`, body, retry: true });
  }

  /** Captures `amount` (default: all held) and releases the rest. */
  captureHold(accountId: string, holdId: string, opts: { amount?: number } = {}): Promise<HoldClosed> {
    return this.call({
      method: "POST",
      path: `/v1/accounts/${seg(accountId)}/holds/${seg(holdId)}/capture`,
      body: opts.amount === undefined ? {} : { amount: opts.amount },
      retry: true,
    });
  }

  releaseHold(accountId: string, holdId: string): Promise<HoldClosed> {
    return this.call({
      method: "POST",
      path: `/v1/accounts/${seg(accountId)}/holds/${seg(holdId)}/release`,
      body: {},
      retry: true,
    });
  }

  getHold(accountId: string, holdId: string): Promise<HoldState> {
    return this.call({ method: "GET", path: `/v1/accounts/${seg(accountId)}/holds/${seg(holdId)}`, retry: true });
  }

  /** Reserves `amount` and returns a signed receipt to spend offline. */
  createReceipt(accountId: string, input: ReceiptInput): Promise<ReceiptCreated> {
    const body = { ...input, receipt_id: input.receipt_id ?? this.id("receipt") };
    return this.call({ method: "POST", path: `/v1/accounts/${seg(accountId)}/receipts`, body, retry: true });
  }

  /** Settling again with the same `used` returns the first result, so this is safe to retry. */
  settleReceipt(input: SettleInput): Promise<SettleResult> {
    return this.call({ method: "POST", path: "/v1/receipts/settle", body: input, retry: true });
  }

  /** The public keys that verify receipts (no auth needed). */
  jwks(): Promise<Jwks> {
    return this.call({ method: "GET", path: "/.well-known/jwks.json", retry: true });
  }

  // ── ledger ───────────────────────────────────────────────────────────────

  ledger(accountId: string, opts: { afterSeq?: number; limit?: number } = {}): Promise<LedgerPage> {
    return this.call({
      method: "GET",
      path: `/v1/accounts/${seg(accountId)}/ledger`,
      query: { after_seq: opts.afterSeq, limit: opts.limit },
      retry: true,
    });
  }

  /** Every entry after `afterSeq` as RFC 4180 CSV. */
  ledgerCsv(accountId: string, opts: { afterSeq?: number } = {}): Promise<string> {
    return this.call({
      method: "GET",
      path: `/v1/accounts/${seg(accountId)}/ledger`,
      query: { after_seq: opts.afterSeq, format: "csv" },
      retry: true,
      text: true,
    });
  }

  /** Pages through the whole ledger (bounded by `maxPages`, default 1 000 pages of 1 000). */
  async allEntries(accountId: string, maxPages = 1_000): Promise<LedgerPage["entries"]> {
    const out: LedgerPage["entries"] = [];
    let after = 0;
    for (let page = 0; page < maxPages; page++) {
      const res = await this.ledger(accountId, { afterSeq: after, limit: 1000 });
      out.push(...res.entries);
      if (res.next_after_seq === null) return out;
      after = res.next_after_seq;
    }
    throw new Error(`ledger of ${accountId} has more than ${maxPages} pages`);
  }

  // ── policy ───────────────────────────────────────────────────────────────

  getPolicy(): Promise<Policy> {
    return this.call({ method: "GET", path: "/v1/policy", retry: true });
  }

  putPolicy(patch: Partial<Policy>): Promise<Policy> {
    return this.call({ method: "PUT", path: "/v1/policy", body: patch, retry: true });
  }

  getAccountPolicy(accountId: string): Promise<Policy> {
    return this.call({ method: "GET", path: `/v1/accounts/${seg(accountId)}/policy`, retry: true });
  }

  putAccountPolicy(accountId: string, patch: PolicyOverridesPatch): Promise<Policy> {
    return this.call({ method: "PUT", path: `/v1/accounts/${seg(accountId)}/policy`, body: patch, retry: true });
  }

  // ── API keys ─────────────────────────────────────────────────────────────

  /** Not retried: the gate has no id for it, so a retry could make a second key. */
  createApiKey(input: ApiKeyInput): Promise<ApiKeyCreated> {
    return this.call({ method: "POST", path: "/v1/api-keys", body: input, retry: false });
  }

  async listApiKeys(): Promise<ApiKey[]> {
    return (await this.call<{ api_keys: ApiKey[] }>({ method: "GET", path: "/v1/api-keys", retry: true })).api_keys;
  }

  revokeApiKey(id: string): Promise<ApiKey> {
    return this.call({ method: "DELETE", path: `/v1/api-keys/${seg(id)}`, retry: true });
  }

  async health(): Promise<{ ok: boolean }> {
    return this.call({ method: "GET", path: "/v1/health", retry: true });
  }

  // ── transport ────────────────────────────────────────────────────────────

  private id(kind: string): string {
    return `${kind}_${this.newId()}`;
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
  private async call<T>(c: Call): Promise<T> {
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

export { CreditGateError, GateUnreachableError };
