import { CREDIT_TYPES, type CreditType, type Lot, type LotStatus } from "./types";

/** A lot may be drawn at `nowMs` when it is effective, not expired and not voided. */
export function isLive(lot: Lot, nowMs: number): boolean {
  return lot.voidedAtMs === null && lot.effectiveAtMs <= nowMs && (lot.expiresAtMs === null || nowMs < lot.expiresAtMs);
}

/** What a draw may take from the lot now: its unheld remainder while live. */
export function spendable(lot: Lot, nowMs: number): number {
  return isLive(lot, nowMs) ? lot.remaining - lot.held : 0;
}

export function lotStatus(lot: Lot, nowMs: number): LotStatus {
  if (lot.voidedAtMs !== null) return "voided";
  if (nowMs < lot.effectiveAtMs) return "pending";
  if (lot.expiresAtMs !== null && lot.expiresAtMs <= nowMs) return "expired";
  if (lot.remaining === 0) return "depleted";
  return "active";
}

export interface BalanceView {
  unit: string;
  available: number;
  held: number;
  byType: Record<CreditType, number>;
  expiring: { grantId: string; amount: number; expiresAtMs: number }[];
  pending: { grantId: string; amount: number; effectiveAtMs: number }[];
}

/**
 * The balance of one unit at `nowMs`: available = Σ live lots (remaining − held);
 * held counts every lot's reservation, live or not (a lot that expires while
 * held stays capturable by its hold).
 */
export function balanceOf(lots: Iterable<Lot>, unit: string, nowMs: number): BalanceView {
  const byType = Object.fromEntries(CREDIT_TYPES.map((t) => [t, 0])) as Record<CreditType, number>;
  const expiring: BalanceView["expiring"] = [];
  const pending: BalanceView["pending"] = [];
  let available = 0;
  let held = 0;
  for (const lot of lots) {
    if (lot.unit !== unit) continue;
    const free = spendable(lot, nowMs);
    available += free;
    held += lot.held;
    byType[lot.type] += free + lot.held;
    if (free > 0 && lot.expiresAtMs !== null) {
      expiring.push({ grantId: lot.grantId, amount: free, expiresAtMs: lot.expiresAtMs });
    }
    if (lot.voidedAtMs === null && nowMs < lot.effectiveAtMs && lot.remaining > 0) {
      pending.push({ grantId: lot.grantId, amount: lot.remaining, effectiveAtMs: lot.effectiveAtMs });
    }
  }
  // Ties by grant id in code-unit order, as the account's lot book keeps them (lot-book.ts).
  expiring.sort((a, b) => a.expiresAtMs - b.expiresAtMs || byGrantId(a.grantId, b.grantId));
  pending.sort((a, b) => a.effectiveAtMs - b.effectiveAtMs || byGrantId(a.grantId, b.grantId));
  return { unit, available, held, byType, expiring, pending };
}

function byGrantId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Total remaining of one unit over every lot, effective or not. */
export function totalRemaining(lots: Iterable<Lot>, unit: string): number {
  let total = 0;
  for (const lot of lots) if (lot.unit === unit) total += lot.remaining;
  return total;
}
