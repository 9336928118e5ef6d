import type { EntryDraft, Lot } from "./types";

export interface ExpirePlan {
  lots: Lot[];
  entries: EntryDraft[];
}

/**
 * Writes off the unheld remainder of every lot past its expiry (breakage).
 * Idempotent: a lot whose remainder already left has nothing more to expire.
 * Correctness never waits for this: an expired lot is not spendable anyway.
 */
export function planExpire(lots: Iterable<Lot>, nowMs: number): ExpirePlan {
  const plan: ExpirePlan = { lots: [], entries: [] };
  for (const lot of lots) {
    if (lot.voidedAtMs !== null || lot.expiresAtMs === null || lot.expiresAtMs > nowMs) continue;
    const free = lot.remaining - lot.held;
    if (free <= 0) continue;
    plan.lots.push({ ...lot, remaining: lot.held });
    plan.entries.push({
      kind: "grant.expired",
      unit: lot.unit,
      amount: -free,
      heldDelta: 0,
      grantId: lot.grantId,
      creditType: lot.type,
      ref: null,
      reason: null,
      effectiveAtMs: lot.expiresAtMs,
    });
  }
  return plan;
}

/** The next time a lot of this account expires with something left to expire. */
export function nextExpiryMs(lots: Iterable<Lot>, nowMs: number): number | null {
  let next: number | null = null;
  for (const lot of lots) {
    if (lot.voidedAtMs !== null || lot.expiresAtMs === null) continue;
    if (lot.remaining - lot.held <= 0 && lot.expiresAtMs <= nowMs) continue;
    if (lot.remaining === 0) continue;
    if (next === null || lot.expiresAtMs < next) next = lot.expiresAtMs;
  }
  return next;
}
