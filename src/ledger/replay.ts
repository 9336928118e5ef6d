import type { Lot } from "./types";

/** The members of an entry that replay needs. */
export interface ReplayEntry {
  grantId: string | null;
  amount: number;
  heldDelta: number;
  recordedAtMs: number;
}

/**
 * Rebuilds lots from their terms and the entries recorded at or before
 * `asOfMs`: remaining = Σ amount, held = Σ held_delta, per lot. Lots with no
 * entry by then did not exist yet and are left out.
 */
export function replayLots(terms: Iterable<Lot>, entries: Iterable<ReplayEntry>, asOfMs: number): Lot[] {
  const sums = new Map<string, { remaining: number; held: number }>();
  for (const e of entries) {
    if (e.recordedAtMs > asOfMs || e.grantId === null) continue;
    const s = sums.get(e.grantId) ?? { remaining: 0, held: 0 };
    s.remaining += e.amount;
    s.held += e.heldDelta;
    sums.set(e.grantId, s);
  }
  return lotsAsOf(terms, (grantId) => sums.get(grantId) ?? null, asOfMs);
}

/** A lot's remaining and held as of some time (null: it had no entry by then). */
export type MarkAt = (grantId: string) => { remaining: number; held: number } | null;

/**
 * Lots as they stood at `asOfMs`, from each lot's last mark at or before it:
 * the same answer as `replayLots` over the entries recorded by then, at the
 * cost of one lookup per lot instead of a pass over the history.
 */
export function lotsAsOf(terms: Iterable<Lot>, markAt: MarkAt, asOfMs: number): Lot[] {
  const lots: Lot[] = [];
  for (const lot of terms) {
    // A lot is created by the transaction that records its first entry, never after it.
    if (lot.createdAtMs > asOfMs) continue;
    const mark = markAt(lot.grantId);
    if (!mark) continue;
    lots.push({
      ...lot,
      remaining: mark.remaining,
      held: mark.held,
      voidedAtMs: lot.voidedAtMs !== null && lot.voidedAtMs <= asOfMs ? lot.voidedAtMs : null,
    });
  }
  return lots;
}
