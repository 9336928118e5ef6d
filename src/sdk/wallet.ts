/**
 * ReceiptWallet (client side): holds a receipt for one account and spends it
 * locally, so a hot stream of requests costs one gate round trip per
 * `receiptAmount` credits instead of one per request. It fetches the next
 * receipt before the current one runs low or expires, and settles what each
 * receipt really paid for.
 *
 * Nothing is ever overspent: every receipt's credits were reserved by the
 * gate before the wallet hands out a single one of them.
 *
 * @example
 * const wallet = new ReceiptWallet({ client, accountId: "acct_1", receiptAmount: 100 });
 * const s = await wallet.spend(3);
 * if (s.admitted) await fetch(api, { headers: { "x-credit-receipt": s.receipt ?? "" } });
 * // on shutdown: await wallet.settle();
 */
import type { CreditGateClient } from "./client";
import { CreditGateError, GateUnreachableError } from "./errors";
import type { FailMode, ReceiptCreated, SettleResult, WaitUntil } from "./types";

export interface ReceiptWalletOptions {
  client: CreditGateClient;
  accountId: string;
  unit?: string;
  /** Credits reserved per receipt (default 100). */
  receiptAmount?: number;
  /** Receipt lifetime, 1..3600 (default 60). */
  ttlSeconds?: number;
  audience?: string;
  /** Prefetch the next receipt when the current one has fewer than this left (default 20% of receiptAmount). */
  prefetchBelow?: number;
  /** …or when it expires within this (default 10 s, at most half the TTL). */
  prefetchBeforeExpiryMs?: number;
  /** Stop spending a receipt this long before its `exp`, for clock skew and latency (default 2 s). */
  retireBeforeExpiryMs?: number;
  /** After a 402, refuse locally for this long instead of asking the gate again (default 1 s). */
  exhaustedBackoffMs?: number;
  /** Settle a receipt in the background as soon as it is used up or retired (default true). */
  autoSettle?: boolean;
  /** When no receipt can be had because the gate is unreachable (default `closed`). */
  onGateUnreachable?: FailMode;
  /** Prefix for receipt and debit ids (default `w`). */
  idPrefix?: string;
  /** Epoch ms (test seam). */
  now?: () => number;
}

export interface SpendOptions {
  /** Overrides the wallet's `onGateUnreachable` for this call site. */
  onGateUnreachable?: FailMode;
  /**
   * In a Worker, pass `ctx.waitUntil.bind(ctx)`: a prefetch or background
   * settle started by this spend then outlives the request that started it.
   */
  waitUntil?: WaitUntil;
}

export type Spend =
  | {
      admitted: true;
      /** The receipt to present; null when admitted fail-open without one. */
      receipt: string | null;
      receiptId: string | null;
      /** Left on this receipt after the spend. */
      remaining: number;
      failOpen: boolean;
    }
  | {
      admitted: false;
      reason: "insufficient_credits" | "gate_unreachable" | "invalid_amount";
      /** The account's available credits when the gate last said 402. */
      available?: number;
    };

interface Held {
  receiptId: string;
  token: string;
  amount: number;
  used: number;
  expiresAtMs: number;
  settling: Promise<SettleResult> | null;
  settled: SettleResult | null;
}

export interface WalletStats {
  admitted: number;
  refused: number;
  failOpenAdmitted: number;
  receipts: number;
  prefetches: number;
  reserved: number;
  /** Receipts settled with the gate, and the credits they captured. */
  settled: number;
  settledUsed: number;
}

export class ReceiptWallet {
  private readonly client: CreditGateClient;
  private readonly accountId: string;
  private readonly unit: string;
  private readonly receiptAmount: number;
  private readonly ttlSeconds: number;
  private readonly audience: string | undefined;
  private readonly prefetchBelow: number;
  private readonly prefetchBeforeExpiryMs: number;
  private readonly retireBeforeExpiryMs: number;
  private readonly exhaustedBackoffMs: number;
  private readonly autoSettle: boolean;
  private readonly failMode: FailMode;
  private readonly idPrefix: string;
  private readonly now: () => number;

  /** The receipt being spent. */
  private current: Held | null = null;
  /** A prefetched receipt, next in line. */
  private ready: Held | null = null;
  /** The receipt request in flight (prefetch or on demand), shared by concurrent spends. */
  private pending: Promise<Held | null> | null = null;
  /** Retired receipts not yet settled. */
  private readonly finished: Held[] = [];
  /** After a 402: until when to refuse locally, and what the gate said was available. */
  private exhausted: { untilMs: number; available: number } | null = null;
  private unbacked = 0;
  private unbackedSeq = 0;
  private readonly stats: WalletStats = {
    admitted: 0,
    refused: 0,
    failOpenAdmitted: 0,
    receipts: 0,
    prefetches: 0,
    reserved: 0,
    settled: 0,
    settledUsed: 0,
  };

  constructor(opts: ReceiptWalletOptions) {
    this.client = opts.client;
    this.accountId = opts.accountId;
    this.unit = opts.unit ?? "credits";
    this.receiptAmount = opts.receiptAmount ?? 100;
    if (!Number.isSafeInteger(this.receiptAmount) || this.receiptAmount < 1) {
      throw new Error("receiptAmount must be a positive integer");
    }
    this.ttlSeconds = opts.ttlSeconds ?? 60;
    this.audience = opts.audience;
    this.prefetchBelow = opts.prefetchBelow ?? Math.ceil(this.receiptAmount / 5);
    this.prefetchBeforeExpiryMs = opts.prefetchBeforeExpiryMs ?? Math.min(10_000, (this.ttlSeconds * 1000) / 2);
    this.retireBeforeExpiryMs = opts.retireBeforeExpiryMs ?? Math.min(2_000, (this.ttlSeconds * 1000) / 4);
    this.exhaustedBackoffMs = opts.exhaustedBackoffMs ?? 1_000;
    this.autoSettle = opts.autoSettle ?? true;
    this.failMode = opts.onGateUnreachable ?? "closed";
    this.idPrefix = opts.idPrefix ?? "w";
    this.now = opts.now ?? Date.now;
  }

  /** Counters since construction. */
  getStats(): WalletStats {
    return { ...this.stats };
  }

  /**
   * Spends `amount` from the current receipt, fetching a new one when needed.
   * A spend never splits across receipts: the caller presents one token.
   */
  async spend(amount: number, opts: SpendOptions = {}): Promise<Spend> {
    if (!Number.isSafeInteger(amount) || amount < 1) return { admitted: false, reason: "invalid_amount" };
    // Bounded: each turn spends, refuses, or brings in a new receipt.
    for (let turn = 0; turn < 4; turn++) {
      const cur = this.promote(amount, opts.waitUntil);
      if (cur !== null) return this.take(cur, amount, opts.waitUntil);
      if (this.exhausted !== null && this.now() < this.exhausted.untilMs && amount > this.exhausted.available) {
        return this.refuse(this.exhausted.available);
      }
      try {
        if (!(await this.acquire(amount))) return this.refuse(this.exhausted?.available ?? 0);
      } catch (e) {
        if (!(e instanceof GateUnreachableError)) throw e;
        return this.unreachable(amount, opts.onGateUnreachable ?? this.failMode);
      }
    }
    return this.refuse(this.exhausted?.available ?? 0);
  }

  private covers(h: Held, amount: number): boolean {
    return h.amount - h.used >= amount && this.now() < h.expiresAtMs - this.retireBeforeExpiryMs;
  }

  /** The receipt to spend `amount` from, retiring ones that cannot cover it; null when none. */
  private promote(amount: number, waitUntil?: WaitUntil): Held | null {
    for (let i = 0; i < 2; i++) {
      if (this.current !== null && this.covers(this.current, amount)) return this.current;
      if (this.current !== null) this.retire(this.current, waitUntil);
      this.current = this.ready;
      this.ready = null;
      if (this.current === null) return null;
    }
    return this.current !== null && this.covers(this.current, amount) ? this.current : null;
  }

  private retire(h: Held, waitUntil?: WaitUntil): void {
    if (this.current === h) this.current = null;
    if (this.ready === h) this.ready = null;
    this.finished.push(h);
    if (this.autoSettle) {
      const settling = this.settleOne(h).catch(() => undefined);
      waitUntil?.(settling);
    }
  }

  /** A new receipt goes to the first free slot: current, then ready; a surplus one is retired unused. */
  private place(h: Held): void {
    if (h === this.current || h === this.ready || this.finished.includes(h)) return;
    if (this.current === null) this.current = h;
    else if (this.ready === null) this.ready = h;
    else this.retire(h);
  }

  private take(cur: Held, amount: number, waitUntil?: WaitUntil): Spend {
    cur.used += amount;
    this.stats.admitted += amount;
    const remaining = cur.amount - cur.used;
    if (remaining < this.prefetchBelow || cur.expiresAtMs - this.now() < this.prefetchBeforeExpiryMs) {
      this.prefetch(waitUntil);
    }
    return { admitted: true, receipt: cur.token, receiptId: cur.receiptId, remaining, failOpen: false };
  }

  private refuse(available: number): Spend {
    this.stats.refused++;
    return { admitted: false, reason: "insufficient_credits", available };
  }

  private prefetch(waitUntil?: WaitUntil): void {
    if (this.pending !== null || this.ready !== null) return;
    if (this.exhausted !== null && this.now() < this.exhausted.untilMs && this.exhausted.available < 1) return;
    this.stats.prefetches++;
    // A failed prefetch is retried on demand by the next spend that needs a receipt.
    const fetching = this.request(1).catch(() => undefined);
    waitUntil?.(fetching);
  }

  /** Waits for a receipt that covers `min`: the one in flight, else a new request. False on 402. */
  private async acquire(min: number): Promise<boolean> {
    if (this.pending !== null) {
      await this.pending.catch(() => null);
      if ((this.current && this.covers(this.current, min)) || (this.ready && this.covers(this.ready, min))) return true;
      // That request was just refused for lack of credits: do not ask again at once.
      const ex = this.exhausted;
      if (ex !== null && this.now() < ex.untilMs && min > ex.available) return false;
    }
    return (await this.request(min)) !== null;
  }

  /**
   * Asks for `receiptAmount` (at least `min`); on 402, for what is available if
   * that covers `min`. Places the receipt; null when the account cannot cover `min`.
   */
  private request(min: number): Promise<Held | null> {
    if (this.pending !== null) return this.pending;
    const p = (async () => {
      let want = Math.max(min, this.receiptAmount);
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const created = await this.client.createReceipt(this.accountId, {
            receipt_id: `${this.idPrefix}_${crypto.randomUUID()}`,
            amount: want,
            unit: this.unit,
            ttl_seconds: this.ttlSeconds,
            ...(this.audience === undefined ? {} : { audience: this.audience }),
          });
          this.exhausted = null;
          const h = this.held(created);
          this.place(h);
          return h;
        } catch (e) {
          if (!(e instanceof CreditGateError) || e.code !== "insufficient_credits") throw e;
          const available = typeof e.extra.available === "number" ? e.extra.available : 0;
          this.exhausted = { untilMs: this.now() + this.exhaustedBackoffMs, available };
          if (available < min || available >= want) return null;
          want = available;
        }
      }
      return null;
    })();
    this.pending = p;
    const clear = () => {
      if (this.pending === p) this.pending = null;
    };
    p.then(clear, clear);
    return p;
  }

  private held(created: ReceiptCreated): Held {
    this.stats.receipts++;
    this.stats.reserved += created.amount;
    return {
      receiptId: created.receipt_id,
      token: created.receipt,
      amount: created.amount,
      used: 0,
      expiresAtMs: Date.parse(created.expires_at),
      settling: null,
      settled: null,
    };
  }

  private unreachable(amount: number, mode: FailMode): Spend {
    if (mode === "closed") {
      this.stats.refused++;
      return { admitted: false, reason: "gate_unreachable" };
    }
    this.unbacked += amount;
    this.stats.failOpenAdmitted += amount;
    return { admitted: true, receipt: null, receiptId: null, remaining: 0, failOpen: true };
  }

  // ── settlement ───────────────────────────────────────────────────────────

  /** Settles one retired receipt once; a transport failure leaves it queued for settle(). */
  private settleOne(h: Held): Promise<SettleResult> {
    if (h.settled) return Promise.resolve(h.settled);
    if (h.settling) return h.settling;
    const p = this.client.settleReceipt({ receipt: h.token, used: h.used }).then(
      (res) => {
        h.settled = res;
        this.stats.settled++;
        this.stats.settledUsed += res.used;
        const i = this.finished.indexOf(h);
        if (i >= 0) this.finished.splice(i, 1);
        return res;
      },
      (e: unknown) => {
        h.settling = null;
        throw e;
      },
    );
    h.settling = p;
    return p;
  }

  /**
   * Settles every receipt this wallet took, the current one included (the
   * next spend fetches a new one), and debits what was admitted fail-open.
   * Transport failures stay queued for the next call; refusals are returned.
   */
  async settle(): Promise<{
    settled: SettleResult[];
    failed: { receiptId: string; error: unknown }[];
    unbackedDebited: number;
    unbackedLeft: number;
  }> {
    if (this.pending !== null) await this.pending.catch(() => null);
    if (this.current !== null) this.retire(this.current);
    if (this.ready !== null) this.retire(this.ready);
    const settled: SettleResult[] = [];
    const failed: { receiptId: string; error: unknown }[] = [];
    for (const h of [...this.finished]) {
      try {
        settled.push(await this.settleOne(h));
      } catch (e) {
        failed.push({ receiptId: h.receiptId, error: e });
        // The gate refused it for good (e.g. past its grace): nothing more to do with it.
        if (e instanceof CreditGateError) this.finished.splice(this.finished.indexOf(h), 1);
      }
    }
    const unbackedDebited = await this.flushUnbacked();
    return { settled, failed, unbackedDebited, unbackedLeft: this.unbacked };
  }

  /** Debits usage admitted fail-open, by one stable debit id per batch (so retries never charge twice). */
  private async flushUnbacked(): Promise<number> {
    if (this.unbacked === 0) return 0;
    const amount = this.unbacked;
    const debitId = `${this.idPrefix}_unbacked_${this.unbackedSeq}`;
    try {
      await this.client.debit(this.accountId, { debit_id: debitId, amount, unit: this.unit });
    } catch {
      return 0;
    }
    this.unbacked -= amount;
    this.unbackedSeq++;
    return amount;
  }
}
