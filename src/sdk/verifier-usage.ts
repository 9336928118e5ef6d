/**
 * What the verifier's instance has admitted on each receipt: the running
 * `used` that keeps a receipt from being spent past its `amt` here, the
 * fail-open allowance, and settling that usage with the gate.
 */
import type { CreditGateClient } from "./client";
import { CreditGateError, isTransient } from "./errors";
import type { SettleResult } from "./types";
import { expired, type RefusalReason, type VerifiedReceipt } from "./verifier-claims";

export type Admission =
  | {
      admitted: true;
      receiptId: string;
      accountId: string;
      unit: string;
      /** What this receipt still allows on this instance. */
      remaining: number;
      /** True when admitted only because the gate was unreachable in `open` mode (signature NOT checked). */
      failOpen: boolean;
    }
  | { admitted: false; reason: RefusalReason; detail: string; remaining?: number };

/** What one settle() did. */
export interface SettleReport {
  settled: SettleResult[];
  /** Receipts the gate said were settled already (409 `receipt_settled`, e.g. by the wallet): done. */
  alreadySettled: string[];
  /** Refusals (done, nothing more to do) and transport failures (kept, retried by the next settle()). */
  failed: { receiptId: string; error: unknown }[];
}

/** Usage of one receipt on this instance, ready to settle. */
export interface Usage {
  receiptId: string;
  accountId: string;
  receipt: string;
  unit: string;
  amount: number;
  used: number;
  expiresAtMs: number;
  /** False for receipts admitted fail-open: the gate verifies them at settlement. */
  verified: boolean;
  /** True once it can no longer be spent (expired or settled locally). */
  final: boolean;
}

/** `final` is left out: report() derives it from `closed` and the clock. */
interface Tracked extends Omit<Usage, "final"> {
  /** No more spending here: a settle was started, with `settleUsed` frozen at that moment. */
  closed: boolean;
  /** The `used` sent to the gate; a retry after a transport failure sends the same. */
  settleUsed: number | null;
  /** The gate answered the settle (or said it was settled already, or refused it for good). */
  done: boolean;
}

const SETTLE_GRACE_MS = 300_000;

export interface UsageTrackerOptions {
  /** Receipts tracked at once. */
  maxTracked: number;
  /** Credits admitted on tracked receipts that are not verified (yet), at most. */
  failOpenMax: number;
  /** Accepted clock skew on `exp`. */
  toleranceMs: number;
  now: () => number;
}

export class UsageTracker {
  /** `${accountId} ${receiptId}` → local consumption (receipt ids are unique per account). */
  private readonly tracked = new Map<string, Tracked>();
  /** Credits admitted on tracked receipts that are not verified (yet): bounded by `failOpenMax`. */
  private unverifiedUsed = 0;

  constructor(private readonly o: UsageTrackerOptions) {}

  /** Spends `amount` of `r` (as presented in `token`), or refuses; never past its `amt` in total. */
  take(token: string, r: VerifiedReceipt, amount: number, verified: boolean): Admission {
    const key = `${r.accountId} ${r.receiptId}`;
    let t = this.tracked.get(key);
    if (t !== undefined && verified && !t.verified) {
      // The real token of a receipt first admitted fail-open: from now on its signed claims are
      // the limit, not what the unverified token said. Use already past them stays refused.
      this.unverifiedUsed -= t.used;
      t.verified = true;
      t.receipt = token;
      t.amount = r.amount;
      t.unit = r.unit;
      t.expiresAtMs = r.expiresAtMs;
    }
    if (t?.closed) return { admitted: false, reason: "settled", detail: "the receipt was settled", remaining: 0 };
    // The tracked (signed) exp wins over an unverified token's claim.
    if (t !== undefined && expired(t.expiresAtMs, this.o.now(), this.o.toleranceMs)) {
      return { admitted: false, reason: "expired", detail: "the receipt expired" };
    }
    const trusted = t?.verified ?? verified;
    if (!trusted && this.unverifiedUsed + amount > this.o.failOpenMax) {
      return {
        admitted: false,
        reason: "gate_unreachable",
        detail: `the receipt cannot be verified and the fail-open allowance (${this.o.failOpenMax}) is used up`,
      };
    }
    if (t === undefined) {
      if (this.tracked.size >= this.o.maxTracked) this.prune();
      if (this.tracked.size >= this.o.maxTracked) {
        return { admitted: false, reason: "overloaded", detail: `tracking ${this.o.maxTracked} live receipts already` };
      }
      t = {
        receiptId: r.receiptId,
        accountId: r.accountId,
        receipt: token,
        unit: r.unit,
        amount: r.amount,
        used: 0,
        expiresAtMs: r.expiresAtMs,
        verified,
        closed: false,
        settleUsed: null,
        done: false,
      };
      this.tracked.set(key, t);
    }
    const remaining = Math.max(0, t.amount - t.used);
    if (amount > remaining) {
      return { admitted: false, reason: "exhausted", detail: `the receipt has ${remaining} left`, remaining };
    }
    t.used += amount;
    if (!t.verified) this.unverifiedUsed += amount;
    return {
      admitted: true,
      receiptId: t.receiptId,
      accountId: t.accountId,
      unit: t.unit,
      remaining: t.amount - t.used,
      failOpen: !verified,
    };
  }

  /**
   * Forgets receipts that can never be spent again AND need nothing more: settled
   * and past `exp` + tolerance (a re-presented token is then refused as expired),
   * or past the gate's settle grace (it would refuse the settle anyway). A live
   * receipt is never forgotten: starting it again at used=0 would spend it twice.
   */
  private prune(): void {
    const nowMs = this.o.now();
    const tol = this.o.toleranceMs;
    for (const [key, t] of this.tracked) {
      if ((expired(t.expiresAtMs, nowMs, tol) && t.done) || expired(t.expiresAtMs + SETTLE_GRACE_MS, nowMs, tol)) {
        if (!t.verified) this.unverifiedUsed -= t.used;
        this.tracked.delete(key);
      }
    }
  }

  /** Usage of every receipt not yet settled. */
  report(): Usage[] {
    const nowMs = this.o.now();
    const out: Usage[] = [];
    for (const t of this.tracked.values()) {
      if (t.done) continue;
      out.push({
        receiptId: t.receiptId,
        accountId: t.accountId,
        receipt: t.receipt,
        unit: t.unit,
        amount: t.amount,
        used: t.used,
        expiresAtMs: t.expiresAtMs,
        verified: t.verified,
        final: t.closed || expired(t.expiresAtMs, nowMs, this.o.toleranceMs),
      });
    }
    return out;
  }

  /** See ReceiptVerifier.settle(). */
  async settle(client: CreditGateClient, opts: { all?: boolean }): Promise<SettleReport> {
    const nowMs = this.o.now();
    // One synchronous pass: pick, close and read `used` with no await in between.
    const batch: Tracked[] = [];
    for (const t of this.tracked.values()) {
      if (t.done) continue;
      if (t.settleUsed === null) {
        if (!opts.all && !expired(t.expiresAtMs, nowMs, this.o.toleranceMs)) continue;
        t.closed = true;
        t.settleUsed = Math.min(t.used, t.amount);
      }
      batch.push(t);
    }
    const report: SettleReport = { settled: [], alreadySettled: [], failed: [] };
    for (const t of batch) {
      // Capped again at send time: a fail-open receipt upgraded since may have a smaller amt.
      const used = Math.min(t.settleUsed ?? t.used, t.amount);
      t.settleUsed = used;
      try {
        report.settled.push(await client.settleReceipt({ receipt: t.receipt, used }));
        t.done = true;
      } catch (e) {
        if (e instanceof CreditGateError && e.code === "receipt_settled") {
          t.done = true;
          report.alreadySettled.push(t.receiptId);
          continue;
        }
        report.failed.push({ receiptId: t.receiptId, error: e });
        // A definitive refusal: nothing more can be done. Otherwise kept for the next settle().
        if (!isTransient(e)) t.done = true;
      }
    }
    return report;
  }
}
