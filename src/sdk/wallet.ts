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
 * A receipt not settled by `exp` + 300 s is captured IN FULL by the gate's
 * sweep, so an idle wallet must still be given the chance to settle: call
 * `settleDue()` regularly (a Worker: `ctx.waitUntil(wallet.settleDue())` on
 * each request; a Node service: from a timer). spend() also calls it now and then.
 *
 * @example
 * const wallet = new ReceiptWallet({ client, accountId: "acct_1", receiptAmount: 100 });
 * const s = await wallet.spend(3);
 * if (s.admitted) await fetch(api, { headers: { "x-credit-receipt": s.receipt ?? "" } });
 * setInterval(() => void wallet.settleDue(), 15_000); // Node; on shutdown: await wallet.settle();
 */
import type { CreditGateClient } from "./client";
import { CreditGateError, GateUnreachableError, isTransient } from "./errors";
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
  /**
   * Which side settles the receipts this wallet spent from; exactly one side
   * should (default `wallet`). `verifier`: the service's ReceiptVerifier settles
   * them with what it really served; this wallet then settles at once only the
   * receipts it never handed out (used 0), and a spent one only as a fallback
   * 150 s after its `exp` (a receipt the service never saw; if the verifier
   * settled it first, the gate's replay or 409 `receipt_settled` counts as done).
   * settle() settles everything at once either way.
   */
  settledBy?: "wallet" | "verifier";
  /** spend() starts a background settleDue() at most this often, when something is due (default 1 000 ms). */
  settleDueIntervalMs?: number;
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

/** A settle the gate refused with 409 `receipt_settled`: the other side settled it first. */
type SettleOutcome = SettleResult | "elsewhere";

interface Held {
  receiptId: string;
  token: string;
  amount: number;
  used: number;
  expiresAtMs: number;
  settling: Promise<SettleOutcome> | null;
  settled: SettleOutcome | null;
}

/** What settle() / settleDue() did. */
export interface WalletSettleReport {
  settled: SettleResult[];
  /** Receipts the gate said were already settled (409 `receipt_settled`, e.g. by the verifier): done. */
  alreadySettled: string[];
  /** Refusals (dropped: nothing more can be done) and transport failures (kept for the next call). */
  failed: { receiptId: string; error: unknown }[];
  /** Fail-open usage debited by this call, and what is still owed. */
  unbackedDebited: number;
  unbackedLeft: number;
}

/** With `settledBy: "verifier"`, how long after `exp` the wallet settles a spent receipt itself. */
const VERIFIER_FIRST_MS = 150_000;

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
  /** Receipts the gate said the other side had settled already. */
  settledElsewhere: number;
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
  private readonly settledBy: "wallet" | "verifier";
  private readonly settleDueIntervalMs: number;
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
  /**
   * A receipt request that got no answer: the gate may have created it. The
   * next request reuses its id and amount, so the gate replays it instead of
   * reserving another (which would be captured in full, never spent).
   */
  private inTransit: { receiptId: string; amount: number } | null = null;
  /** Fail-open usage not yet in a debit batch. */
  private unbacked = 0;
  /** The debit in progress: its id always carries this amount, so a retry is the same request. */
  private unbackedBatch: { debitId: string; amount: number } | null = null;
  private unbackedSeq = 0;
  private flushing: Promise<number> | null = null;
  /** Makes debit ids unique across wallets and restarts that share an idPrefix. */
  private readonly instanceId = crypto.randomUUID();
  private dueRun: Promise<WalletSettleReport> | null = null;
  private nextDueCheckMs = Number.NEGATIVE_INFINITY;
  private readonly stats: WalletStats = {
    admitted: 0,
    refused: 0,
    failOpenAdmitted: 0,
    receipts: 0,
    prefetches: 0,
    reserved: 0,
    settled: 0,
    settledUsed: 0,
    settledElsewhere: 0,
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
    this.settledBy = opts.settledBy ?? "wallet";
    this.settleDueIntervalMs = opts.settleDueIntervalMs ?? 1_000;
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
    this.kickDue(opts.waitUntil);
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
        // No answer, or 502/503/504 to the last attempt: the fail mode decides.
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
    if (this.autoSettle && this.now() >= this.settleAfterMs(h)) {
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
        // After a request that got no answer, ask again under its id and amount: if the
        // gate created it, it replays that receipt instead of reserving a second one.
        const ask = this.inTransit ?? { receiptId: `${this.idPrefix}_${crypto.randomUUID()}`, amount: want };
        this.inTransit = ask;
        try {
          const created = await this.client.createReceipt(this.accountId, {
            receipt_id: ask.receiptId,
            amount: ask.amount,
            unit: this.unit,
            ttl_seconds: this.ttlSeconds,
            ...(this.audience === undefined ? {} : { audience: this.audience }),
          });
          this.inTransit = null;
          this.exhausted = null;
          const h = this.held(created);
          this.place(h);
          return h;
        } catch (e) {
          // No answer (or a 5xx): it may have been created, so `inTransit` stays for the next request.
          if (!(e instanceof CreditGateError) || e.status >= 500) throw e;
          this.inTransit = null; // a refusal: nothing was created under that id
          if (!(e instanceof CreditGateError) || e.code !== "insufficient_credits") throw e;
          const available = typeof e.extra.available === "number" ? e.extra.available : 0;
          this.exhausted = { untilMs: this.now() + this.exhaustedBackoffMs, available };
          if (available < min || available >= ask.amount) return null;
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

  /** When a retired receipt may be settled by this wallet (see `settledBy`). */
  private settleAfterMs(h: Held): number {
    return this.settledBy === "wallet" || h.used === 0 ? Number.NEGATIVE_INFINITY : h.expiresAtMs + VERIFIER_FIRST_MS;
  }

  /** Settles one retired receipt once; a transport failure leaves it queued, a refusal drops it. */
  private settleOne(h: Held): Promise<SettleOutcome> {
    if (h.settled) return Promise.resolve(h.settled);
    if (h.settling) return h.settling;
    const p = this.client.settleReceipt({ receipt: h.token, used: h.used }).then(
      (res): SettleOutcome => this.closeHeld(h, res),
      (e: unknown): SettleOutcome => {
        // The other side settled it first: done, not an error.
        if (e instanceof CreditGateError && e.code === "receipt_settled") return this.closeHeld(h, "elsewhere");
        h.settling = null;
        // Refused for good (e.g. past its grace): nothing more can be done with it.
        if (!isTransient(e)) this.unqueue(h);
        throw e;
      },
    );
    h.settling = p;
    return p;
  }

  private closeHeld(h: Held, outcome: SettleOutcome): SettleOutcome {
    h.settled = outcome;
    if (outcome === "elsewhere") {
      this.stats.settledElsewhere++;
    } else {
      this.stats.settled++;
      this.stats.settledUsed += outcome.used;
    }
    this.unqueue(h);
    return outcome;
  }

  private unqueue(h: Held): void {
    const i = this.finished.indexOf(h);
    if (i >= 0) this.finished.splice(i, 1);
  }

  /** Whether settleDue() has anything to do now. */
  private hasDue(nowMs: number): boolean {
    if (this.unbacked > 0 || this.unbackedBatch !== null) return true;
    for (const h of [this.current, this.ready]) if (h !== null && this.retireDue(h, nowMs)) return true;
    return this.finished.some((h) => h.settling === null && nowMs >= this.settleAfterMs(h));
  }

  /** A held receipt that cannot be spent any more: used up, or inside the retire window before `exp`. */
  private retireDue(h: Held, nowMs: number): boolean {
    return h.used >= h.amount || nowMs >= h.expiresAtMs - this.retireBeforeExpiryMs;
  }

  /** From spend(): a background settleDue() when something is due, at most once per interval. */
  private kickDue(waitUntil?: WaitUntil): void {
    const nowMs = this.now();
    if (this.dueRun !== null || nowMs < this.nextDueCheckMs) return;
    this.nextDueCheckMs = nowMs + this.settleDueIntervalMs;
    if (!this.hasDue(nowMs)) return;
    waitUntil?.(this.settleDue());
  }

  /**
   * Settles what is due, and only that: retires the current or prefetched
   * receipt once it is used up or about to expire, settles retired receipts
   * (again, if an earlier settle got no answer), and debits fail-open usage.
   * Call it regularly: an idle wallet otherwise never settles, and the sweep
   * captures an unsettled receipt in full at `exp` + 300 s. In a Worker:
   * `ctx.waitUntil(wallet.settleDue())`; in Node: from a timer. Never throws.
   */
  settleDue(): Promise<WalletSettleReport> {
    if (this.dueRun !== null) return this.dueRun;
    const run = (async () => {
      const nowMs = this.now();
      for (const h of [this.current, this.ready]) if (h !== null && this.retireDue(h, nowMs)) this.retire(h);
      return this.settleQueued(false);
    })();
    this.dueRun = run;
    const clear = () => {
      if (this.dueRun === run) this.dueRun = null;
    };
    run.then(clear, clear);
    return run;
  }

  /**
   * Settles every receipt this wallet took, the current one included (the
   * next spend fetches a new one), and debits what was admitted fail-open.
   * Transport failures stay queued for the next call; refusals are returned.
   */
  async settle(): Promise<WalletSettleReport> {
    if (this.pending !== null) await this.pending.catch(() => null);
    if (this.current !== null) this.retire(this.current);
    if (this.ready !== null) this.retire(this.ready);
    return this.settleQueued(true);
  }

  private async settleQueued(force: boolean): Promise<WalletSettleReport> {
    const nowMs = this.now();
    const report: WalletSettleReport = {
      settled: [],
      alreadySettled: [],
      failed: [],
      unbackedDebited: 0,
      unbackedLeft: 0,
    };
    for (const h of [...this.finished]) {
      if (!force && nowMs < this.settleAfterMs(h)) continue;
      try {
        const outcome = await this.settleOne(h);
        if (outcome === "elsewhere") report.alreadySettled.push(h.receiptId);
        else report.settled.push(outcome);
      } catch (e) {
        report.failed.push({ receiptId: h.receiptId, error: e });
      }
    }
    report.unbackedDebited = await this.flushUnbacked();
    report.unbackedLeft = this.unbacked + (this.unbackedBatch?.amount ?? 0);
    return report;
  }

  /**
   * Debits usage admitted fail-open in batches. A batch's id and amount are
   * fixed when it is formed and kept until the gate takes it, so a retry is the
   * same request (the gate replays it) and never a 409; usage admitted
   * meanwhile waits for the next batch.
   */
  private flushUnbacked(): Promise<number> {
    if (this.flushing !== null) return this.flushing;
    const run = (async () => {
      let debited = 0;
      for (let round = 0; round < 3; round++) {
        if (this.unbackedBatch === null) {
          if (this.unbacked === 0) break;
          this.unbackedBatch = {
            debitId: `${this.idPrefix}_unbacked_${this.instanceId}_${this.unbackedSeq++}`,
            amount: this.unbacked,
          };
          this.unbacked = 0;
        }
        const batch = this.unbackedBatch;
        try {
          await this.client.debit(this.accountId, { debit_id: batch.debitId, amount: batch.amount, unit: this.unit });
        } catch (e) {
          // Only another request under the same id could cause this: owe the amount under a new id.
          if (e instanceof CreditGateError && e.code === "idempotency_conflict") {
            this.unbackedBatch = null;
            this.unbacked += batch.amount;
            continue;
          }
          break; // no answer, or refused (e.g. 402): the same batch is tried again next time
        }
        this.unbackedBatch = null;
        debited += batch.amount;
      }
      return debited;
    })();
    this.flushing = run;
    const clear = () => {
      if (this.flushing === run) this.flushing = null;
    };
    run.then(clear, clear);
    return run;
  }
}
