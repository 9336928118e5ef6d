/**
 * A grant awaiting payment as stored (the `awaiting_grants` table) and as
 * served (the Grant shape of the grants routes): the row mapping awaiting.ts
 * reads and writes through.
 */
import { type GrantCommand, iso } from "../ledger";
import type { AwaitingGrant, AwaitingStatus } from "../ledger/awaiting";
import type { Json } from "./types";

/** A record as the grants routes serve it (the Grant shape; remaining 0: never spendable). */
export function awaitingView(r: AwaitingGrant) {
  const c = r.command;
  return {
    grant_id: r.grantId,
    amount: c.amount,
    unit: c.unit,
    type: c.type,
    priority: c.priority,
    effective_at: iso(c.effectiveAtMs ?? r.createdAtMs),
    expires_at: c.expiresAtMs === null ? null : iso(c.expiresAtMs),
    source: c.source,
    reason: c.reason,
    campaign: c.campaign,
    incident_id: c.incidentId,
    cost_basis: c.costBasis,
    metadata: c.metadata,
    source_grant_id: null,
    remaining: 0,
    held: 0,
    status: r.status,
    created_at: iso(r.createdAtMs),
    voided_at: null,
    ...awaitingFacts(r),
  };
}

/** What the record adds to a grant's view: how it was paid for, and whether a top-up asked for it. */
export function awaitingFacts(r: AwaitingGrant) {
  return {
    topup: r.topup,
    expires_in_days: r.expiresInDays,
    payment_ref: r.paymentRef,
    cancel_reason: r.cancelReason,
    closed_at: r.closedAtMs === null ? null : iso(r.closedAtMs),
  };
}

export function rowOf(row: Record<string, SqlStorageValue>): AwaitingGrant {
  const num = (v: SqlStorageValue | undefined) => (v == null ? null : Number(v));
  const str = (v: SqlStorageValue | undefined) => (v == null ? null : String(v));
  return {
    grantId: String(row.grant_id),
    command: JSON.parse(String(row.command)) as GrantCommand,
    expiresInDays: num(row.expires_in_days),
    topup: Number(row.topup) === 1,
    status: String(row.status) as AwaitingStatus,
    createdAtMs: Number(row.created_at_ms),
    closedAtMs: num(row.closed_at_ms),
    paymentRef: str(row.payment_ref),
    cancelReason: str(row.cancel_reason),
  };
}

/** Inserts the record, or moves it on (status, closing, the answer replayed for its transition). */
export function writeAwaiting(sql: SqlStorage, r: AwaitingGrant, response: Json): void {
  sql.exec(
    `INSERT INTO awaiting_grants (grant_id, unit, command, expires_in_days, topup, status, created_at_ms,
       closed_at_ms, payment_ref, cancel_reason, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (grant_id) DO UPDATE SET status = excluded.status, closed_at_ms = excluded.closed_at_ms,
       payment_ref = excluded.payment_ref, cancel_reason = excluded.cancel_reason, response = excluded.response`,
    r.grantId,
    r.command.unit,
    JSON.stringify(r.command),
    r.expiresInDays,
    r.topup ? 1 : 0,
    r.status,
    r.createdAtMs,
    r.closedAtMs,
    r.paymentRef,
    r.cancelReason,
    response === null ? null : JSON.stringify(response),
  );
}
