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
import { GateUnreachableError } from "./errors";
import { SingleFlight } from "./single-flight";
import type { FailMode, WaitUntil } from "./types";
import { type ReceiptWalletOptions, type WalletConfig, walletConfig } from "./wallet-options";
import { type Held, RetiredReceipts, type WalletSettleReport, type WalletStats } from "./wallet-settlement";
import { ReceiptSupply } from "./wallet-supply";
import { UnbackedUsage } from "./wallet-unbacked";

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

export class ReceiptWallet {
  private readonly c: WalletConfig;
  private readonly supply: ReceiptSupply;
  private readonly retired: RetiredReceipts;
  private readonly unbacked: UnbackedUsage;

  /** The receipt being spent. */
  private current: Held | null = null;
  /** A prefetched receipt, next in line. */
  private ready: Held | null = null;
  private readonly dueRun = new SingleFlight<WalletSettleReport>();
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
    this.c = walletConfig(opts);
    this.supply = new ReceiptSupply(this.c, this.stats, (h) => this.place(h));
    this.retired = new RetiredReceipts(this.c, this.stats);
    this.unbacked = new UnbackedUsage(this.c);
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
      if (this.supply.backingOff(amount)) return this.refuse();
      try {
        if (!(await this.acquire(amount))) return this.refuse();
      } catch (e) {
        // No answer, or 502/503/504 to the last attempt: the fail mode decides.
        if (!(e instanceof GateUnreachableError)) throw e;
        return this.unreachable(amount, opts.onGateUnreachable ?? this.c.onGateUnreachable);
      }
    }
    return this.refuse();
  }

  private covers(h: Held, amount: number): boolean {
    return h.amount - h.used >= amount && this.c.now() < h.expiresAtMs - this.c.retireBeforeExpiryMs;
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
    this.retired.add(h, waitUntil);
  }

  /** A new receipt goes to the first free slot: current, then ready; a surplus one is retired unused. */
  private place(h: Held): void {
    if (h === this.current || h === this.ready || this.retired.has(h)) return;
    if (this.current === null) this.current = h;
    else if (this.ready === null) this.ready = h;
    else this.retire(h);
  }

  private take(cur: Held, amount: number, waitUntil?: WaitUntil): Spend {
    cur.used += amount;
    this.stats.admitted += amount;
    const remaining = cur.amount - cur.used;
    if (remaining < this.c.prefetchBelow || cur.expiresAtMs - this.c.now() < this.c.prefetchBeforeExpiryMs) {
      this.prefetch(waitUntil);
    }
    return { admitted: true, receipt: cur.token, receiptId: cur.receiptId, remaining, failOpen: false };
  }

  private refuse(): Spend {
    this.stats.refused++;
    return { admitted: false, reason: "insufficient_credits", available: this.supply.lastAvailable };
  }

  private prefetch(waitUntil?: WaitUntil): void {
    if (this.supply.inFlight !== null || this.ready !== null) return;
    if (this.supply.backingOff(1)) return;
    this.stats.prefetches++;
    // A failed prefetch is retried on demand by the next spend that needs a receipt.
    const fetching = this.supply.request(1).catch(() => undefined);
    waitUntil?.(fetching);
  }

  /** Waits for a receipt that covers `min`: the one in flight, else a new request. False on 402. */
  private async acquire(min: number): Promise<boolean> {
    const inFlight = this.supply.inFlight;
    if (inFlight !== null) {
      await inFlight.catch(() => null);
      if ((this.current && this.covers(this.current, min)) || (this.ready && this.covers(this.ready, min))) return true;
      // That request was just refused for lack of credits: do not ask again at once.
      if (this.supply.backingOff(min)) return false;
    }
    return (await this.supply.request(min)) !== null;
  }

  private unreachable(amount: number, mode: FailMode): Spend {
    if (mode === "closed") {
      this.stats.refused++;
      return { admitted: false, reason: "gate_unreachable" };
    }
    this.unbacked.add(amount);
    this.stats.failOpenAdmitted += amount;
    return { admitted: true, receipt: null, receiptId: null, remaining: 0, failOpen: true };
  }

  /** A held receipt that cannot be spent any more: used up, or inside the retire window before `exp`. */
  private retireDue(h: Held, nowMs: number): boolean {
    return h.used >= h.amount || nowMs >= h.expiresAtMs - this.c.retireBeforeExpiryMs;
  }

  /** From spend(): a background settleDue() when something is due, at most once per interval. */
  private kickDue(waitUntil?: WaitUntil): void {
    const nowMs = this.c.now();
    if (this.dueRun.inFlight !== null || nowMs < this.nextDueCheckMs) return;
    this.nextDueCheckMs = nowMs + this.c.settleDueIntervalMs;
    const due =
      this.unbacked.due ||
      [this.current, this.ready].some((h) => h !== null && this.retireDue(h, nowMs)) ||
      this.retired.anyDue(nowMs);
    if (due) waitUntil?.(this.settleDue());
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
    return this.dueRun.start(async () => {
      const nowMs = this.c.now();
      for (const h of [this.current, this.ready]) if (h !== null && this.retireDue(h, nowMs)) this.retire(h);
      return this.settleQueued(false);
    });
  }

  /**
   * Settles every receipt this wallet took, the current one included (the
   * next spend fetches a new one), and debits what was admitted fail-open.
   * Transport failures stay queued for the next call; refusals are returned.
   */
  async settle(): Promise<WalletSettleReport> {
    const inFlight = this.supply.inFlight;
    if (inFlight !== null) await inFlight.catch(() => null);
    if (this.current !== null) this.retire(this.current);
    if (this.ready !== null) this.retire(this.ready);
    return this.settleQueued(true);
  }

  private async settleQueued(force: boolean): Promise<WalletSettleReport> {
    const receipts = await this.retired.settle(force);
    const unbackedDebited = await this.unbacked.flush();
    return { ...receipts, unbackedDebited, unbackedLeft: this.unbacked.owed };
  }
}
