/** API shapes of domain objects: what the HTTP contract serves. */
import type { Hold } from "./holds";
import { type BalanceView, lotStatus } from "./lots";
import type { Applied, Lot } from "./types";

export const iso = (ms: number): string => new Date(ms).toISOString();

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

export function balanceView(accountId: string, b: BalanceView, asOfMs: number) {
  return {
    account_id: accountId,
    unit: b.unit,
    as_of: iso(asOfMs),
    available: b.available,
    held: b.held,
    by_type: b.byType,
    expiring: b.expiring.map((x) => ({ grant_id: x.grantId, amount: x.amount, expires_at: iso(x.expiresAtMs) })),
    pending: b.pending.map((x) => ({ grant_id: x.grantId, amount: x.amount, effective_at: iso(x.effectiveAtMs) })),
  };
}
export type BalanceJson = ReturnType<typeof balanceView>;

export const appliedView = (applied: Applied[]) =>
  applied.map((a) => ({ grant_id: a.grantId, type: a.type, amount: a.amount }));

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
