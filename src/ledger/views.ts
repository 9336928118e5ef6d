/** API shapes of domain objects: what the HTTP contract serves. */
import type { Hold } from "./holds";
import { type BalanceView, lotStatus } from "./lots";
import type { Applied, Lot } from "./types";

export const iso = (ms: number): string => new Date(ms).toISOString();

/** A balance read lists at most this many `expiring` and `pending` items each. */
export const BALANCE_LIST_MAX = 1000;
/** The balance inside a write response (grant, debit, hold, …) lists at most this many. */
export const WRITE_RESPONSE_LIST_MAX = 10;
/** A write response's `applied` lists at most this many lots; the debit's entries have them all. */
export const WRITE_APPLIED_MAX = 100;

export function grantView(lot: Lot, nowMs: number) {
  return {
    grant_id: lot.grantId,
    amount: lot.amount,
    unit: lot.unit,
    type: lot.type,
    priority: lot.priority,
    effective_at: iso(lot.effectiveAtMs),
    expires_at: lot.expiresAtMs === null ? null : iso(lot.expiresAtMs),
    source: lot.source,
    reason: lot.reason,
    campaign: lot.campaign,
    incident_id: lot.incidentId,
    cost_basis: lot.costBasis,
    metadata: lot.metadata,
    source_grant_id: lot.sourceGrantId,
    remaining: lot.remaining,
    held: lot.held,
    status: lotStatus(lot, nowMs),
    created_at: iso(lot.createdAtMs),
    voided_at: lot.voidedAtMs === null ? null : iso(lot.voidedAtMs),
  };
}
export type GrantView = ReturnType<typeof grantView>;

/**
 * The served balance; `expiring` and `pending` keep their soonest `listMax`
 * items, and `expiring_more` / `pending_more` say whether any were cut.
 */
export function balanceView(accountId: string, b: BalanceView, asOfMs: number, listMax: number) {
  const expiring = b.expiring.slice(0, listMax);
  const pending = b.pending.slice(0, listMax);
  return {
    account_id: accountId,
    unit: b.unit,
    as_of: iso(asOfMs),
    available: b.available,
    held: b.held,
    by_type: b.byType,
    expiring: expiring.map((x) => ({ grant_id: x.grantId, amount: x.amount, expires_at: iso(x.expiresAtMs) })),
    expiring_more: b.expiring.length > listMax,
    pending: pending.map((x) => ({ grant_id: x.grantId, amount: x.amount, effective_at: iso(x.effectiveAtMs) })),
    pending_more: b.pending.length > listMax,
  };
}
export type BalanceJson = ReturnType<typeof balanceView>;

/** The first `max` lots a draw touched, in draw order, and whether there were more. */
export function appliedView(applied: readonly Applied[], max: number) {
  return {
    applied: applied.slice(0, max).map((a) => ({ grant_id: a.grantId, type: a.type, amount: a.amount })),
    applied_more: applied.length > max,
  };
}

export function holdView(h: Hold) {
  return {
    hold_id: h.holdId,
    unit: h.unit,
    amount: h.amount,
    status: h.status,
    expires_at: iso(h.expiresAtMs),
    captured: h.captured,
    released: h.released,
    created_at: iso(h.createdAtMs),
    closed_at: h.closedAtMs === null ? null : iso(h.closedAtMs),
  };
}
