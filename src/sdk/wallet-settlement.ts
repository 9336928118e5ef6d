/**
 * The wallet's retired receipts, queued until each is settled once with what
 * it paid for. With `settledBy: "verifier"` a spent receipt is left to the
 * service and settled here only as a late fallback.
 */
import { CreditGateError, isTransient } from "./errors";
import type { SettleResult, WaitUntil } from "./types";
import type { WalletConfig } from "./wallet-options";

/** How a settle ended: the gate's result, or `elsewhere` on a 409 `receipt_settled` (the other side settled first). */
export type SettleOutcome = SettleResult | "elsewhere";

/** A receipt the wallet holds: spent locally, then settled once. */
export interface Held {
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

/** With `settledBy: "verifier"`, how long after `exp` the wallet settles a spent receipt itself. */
const VERIFIER_FIRST_MS = 150_000;

export class RetiredReceipts {
  private readonly queue: Held[] = [];

  constructor(
    private readonly c: WalletConfig,
    /** Counts what was settled. */
    private readonly stats: WalletStats,
  ) {}

  has(h: Held): boolean {
    return this.queue.includes(h);
  }

  /** Queues a receipt that will not be spent any more, and settles it now if that is due and wanted. */
  add(h: Held, waitUntil?: WaitUntil): void {
    this.queue.push(h);
    if (this.c.autoSettle && this.c.now() >= this.settleAfterMs(h)) {
      const settling = this.settleOne(h).catch(() => undefined);
      waitUntil?.(settling);
    }
  }

  /** Whether a queued receipt is due and not already being settled. */
  anyDue(nowMs: number): boolean {
    return this.queue.some((h) => h.settling === null && nowMs >= this.settleAfterMs(h));
  }

  /** Settles the queued receipts that are due, or all of them with `force`. */
  async settle(force: boolean): Promise<Pick<WalletSettleReport, "settled" | "alreadySettled" | "failed">> {
    const nowMs = this.c.now();
    const report: Pick<WalletSettleReport, "settled" | "alreadySettled" | "failed"> = {
      settled: [],
      alreadySettled: [],
      failed: [],
    };
    for (const h of [...this.queue]) {
      if (!force && nowMs < this.settleAfterMs(h)) continue;
      try {
        const outcome = await this.settleOne(h);
        if (outcome === "elsewhere") report.alreadySettled.push(h.receiptId);
        else report.settled.push(outcome);
      } catch (e) {
        report.failed.push({ receiptId: h.receiptId, error: e });
      }
    }
    return report;
  }

  /** When a retired receipt may be settled by this wallet (see `settledBy`). */
  private settleAfterMs(h: Held): number {
    return this.c.settledBy === "wallet" || h.used === 0 ? Number.NEGATIVE_INFINITY : h.expiresAtMs + VERIFIER_FIRST_MS;
  }

  /** Settles one retired receipt once; a transport failure leaves it queued, a refusal drops it. */
  private settleOne(h: Held): Promise<SettleOutcome> {
    if (h.settled) return Promise.resolve(h.settled);
    if (h.settling) return h.settling;
    const p = this.c.client.settleReceipt({ receipt: h.token, used: h.used }).then(
      (res): SettleOutcome => this.close(h, res),
      (e: unknown): SettleOutcome => {
        // The other side settled it first: done, not an error.
        if (e instanceof CreditGateError && e.code === "receipt_settled") return this.close(h, "elsewhere");
        h.settling = null;
        // Refused for good (e.g. past its grace): nothing more can be done with it.
        if (!isTransient(e)) this.unqueue(h);
        throw e;
      },
    );
    h.settling = p;
    return p;
  }

  private close(h: Held, outcome: SettleOutcome): SettleOutcome {
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
    const i = this.queue.indexOf(h);
    if (i >= 0) this.queue.splice(i, 1);
  }
}
