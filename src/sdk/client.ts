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

import { type Call, Transport, type TransportOptions } from "./transport";
import type {
  Account,
  AccountInput,
  ApiKey,
  ApiKeyCreated,
  ApiKeyInput,
  Balance,
  DebitInput,
  DebitRecord,
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
  OpenHold,
  Policy,
  PolicyOverridesPatch,
  ReceiptCreated,
  ReceiptInput,
  SettleInput,
  SettleResult,
} from "./types";

export interface CreditGateClientOptions extends TransportOptions {
  /** Makes idempotency ids (default `crypto.randomUUID()`). */
  newId?: () => string;
}

const seg = (s: string) => encodeURIComponent(s);

export class CreditGateClient {
  private readonly transport: Transport;
  private readonly newId: () => string;

  constructor(opts: CreditGateClientOptions) {
    this.transport = new Transport(opts);
    this.newId = opts.newId ?? (() => crypto.randomUUID());
  }

  // ── accounts and balance ─────────────────────────────────────────────────

  /** Creates (201) or updates (200) an account; fields omitted are kept. */
  putAccount(accountId: string, input: AccountInput = {}): Promise<Account> {
    return this.call({ method: "PUT", path: `/v1/accounts/${seg(accountId)}`, body: input, retry: true });
  }

  getAccount(accountId: string): Promise<Account> {
    return this.call({ method: "GET", path: `/v1/accounts/${seg(accountId)}`, retry: true });
  }

  /** One page of the account directory (it lags each account by the outbox delay). */
  listAccounts(
    opts: { parentId?: string; after?: string; limit?: number } = {},
  ): Promise<{ accounts: Account[]; next_cursor: string | null }> {
    return this.call({
      method: "GET",
      path: "/v1/accounts",
      query: { parent_id: opts.parentId, after: opts.after, limit: opts.limit },
      retry: true,
    });
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

  /** Every grant (optionally of one status), following the gate's pages of 1 000; at most `maxPages` pages. */
  async listGrants(accountId: string, opts: { status?: GrantStatus; maxPages?: number } = {}): Promise<Grant[]> {
    const out: Grant[] = [];
    let cursor: string | undefined;
    const maxPages = opts.maxPages ?? 100;
    for (let page = 0; page < maxPages; page++) {
      const res = await this.call<{ grants: Grant[]; next_cursor: string | null }>({
        method: "GET",
        path: `/v1/accounts/${seg(accountId)}/grants`,
        query: { status: opts.status, cursor, limit: 1000 },
        retry: true,
      });
      out.push(...res.grants);
      if (!res.next_cursor) return out;
      cursor = res.next_cursor;
    }
    throw new Error(`grants of ${accountId} span more than ${maxPages} pages`);
  }

  getGrant(accountId: string, grantId: string): Promise<Grant> {
    return this.call({ method: "GET", path: `/v1/accounts/${seg(accountId)}/grants/${seg(grantId)}`, retry: true });
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

  /** A debit as recorded: its metadata and the lots it drew from. */
  getDebit(accountId: string, debitId: string): Promise<DebitRecord> {
    return this.call({ method: "GET", path: `/v1/accounts/${seg(accountId)}/debits/${seg(debitId)}`, retry: true });
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

  /** One page of open holds and receipts, oldest first. */
  listHolds(
    accountId: string,
    opts: { cursor?: string; limit?: number } = {},
  ): Promise<{ holds: OpenHold[]; next_cursor: string | null }> {
    return this.call({
      method: "GET",
      path: `/v1/accounts/${seg(accountId)}/holds`,
      query: { cursor: opts.cursor, limit: opts.limit },
      retry: true,
    });
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

  /**
   * Entries after `afterSeq` as RFC 4180 CSV: at most `limit` (default and
   * cap 100 000); for more, call again after the last seq of this one.
   */
  ledgerCsv(accountId: string, opts: { afterSeq?: number; limit?: number } = {}): Promise<string> {
    return this.call({
      method: "GET",
      path: `/v1/accounts/${seg(accountId)}/ledger`,
      query: { after_seq: opts.afterSeq, format: "csv", limit: opts.limit },
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

  // ── ids and calls ────────────────────────────────────────────────────────

  private id(kind: string): string {
    return `${kind}_${this.newId()}`;
  }

  private call<T>(c: Call): Promise<T> {
    return this.transport.call(c);
  }
}
