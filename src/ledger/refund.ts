import { lotStatus } from "./lots";
import { movementCost } from "./money";
import { type EntryDraft, err, type LedgerError, type Lot, ok, type Result } from "./types";

export interface RefundPlan {
  lot: Lot;
  entries: EntryDraft[];
  amount: number;
  /** The cost that leaves with the credits (minor units of the lot's currency), by the cumulative rule. */
  costMinor: number;
}

/**
 * Refunds purchased credits: `amount` (null: all the unspent, unheld
 * remainder) leaves by one `grant.refunded` entry, carrying its cost out of
 * deferred revenue without recognizing it.
 */
export function planRefund(
  lot: Lot,
  refundId: string,
  amount: number | null,
  reason: string | null,
  nowMs: number,
): Result<RefundPlan, LedgerError> {
  if (lot.type !== "purchased") return err({ code: "invalid_request", detail: "only purchased credits are refunded" });
  const status = lotStatus(lot, nowMs);
  const free = lot.remaining - lot.held;
  if (status === "voided" || status === "expired" || free <= 0) {
    return err({ code: "grant_closed", detail: `grant ${lot.grantId} has nothing left to refund (${status})` });
  }
  const n = amount ?? free;
  if (n > free) {
    return err({ code: "invalid_amount", detail: `amount may not exceed the unspent, unheld remainder ${free}` });
  }
  const next: Lot = { ...lot, remaining: lot.remaining - n };
  const entry: EntryDraft = {
    kind: "grant.refunded",
    unit: lot.unit,
    amount: -n,
    heldDelta: 0,
    grantId: lot.grantId,
    creditType: lot.type,
    ref: refundId,
    reason,
    effectiveAtMs: nowMs,
  };
  return ok({ lot: next, entries: [entry], amount: n, costMinor: movementCost(lot, lot.remaining, next.remaining) });
}
