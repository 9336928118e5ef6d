/**
 * The D1 rows of recurring grants (schema-recurring.ts): written by the route
 * once the account's Durable Object has the schedule, read and advanced by
 * the cron's backstop. Every write is idempotent: a route retried after a
 * D1 failure writes the same row again.
 */
import { type BoundarySpec, lastBoundaryMs, nextBoundaryAfter, type RecurringInterval } from "../ledger/recurring";

/** Rows the cron reads per run; a larger backlog waits for the next run (the DO's own alarm is on time anyway). */
export const RECURRING_CRON_BATCH = 500;

export interface RecurringDue {
  account_id: string;
  recurring_id: string;
  interval: RecurringInterval;
  starts_at_ms: number;
  last_boundary_ms: number | null;
  status: string;
}

/** The row of a schedule the DO accepted; an existing row (a retried create) is left as it is. */
export async function saveRecurring(db: D1Database, accountId: string, spec: BoundarySpec, nowMs: number) {
  const last = lastBoundaryMs(spec, null);
  // The first boundary is the first period's start: "checked through" just before it.
  const checked = spec.startsAtMs - 1;
  await db
    .prepare(
      `INSERT INTO recurring_grants (account_id, recurring_id, interval, starts_at_ms, ends_at_ms, expires, status,
       last_boundary_ms, checked_through_ms, next_boundary_ms, created_at_ms, updated_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?) ON CONFLICT (account_id, recurring_id) DO NOTHING`,
    )
    .bind(
      accountId,
      spec.recurringId,
      spec.interval,
      spec.startsAtMs,
      spec.endsAtMs,
      spec.expires,
      last ?? null,
      checked,
      nextBoundaryAfter(spec.startsAtMs, spec.interval, checked, last),
      nowMs,
      nowMs,
    )
    .run();
}

/** A cancelled schedule: no boundary after the end of its last issued period. */
export async function cancelRecurringRow(
  db: D1Database,
  accountId: string,
  spec: BoundarySpec,
  issued: number,
  nowMs: number,
) {
  const last = lastBoundaryMs(spec, issued);
  const row = await db
    .prepare("SELECT checked_through_ms FROM recurring_grants WHERE account_id = ? AND recurring_id = ?")
    .bind(accountId, spec.recurringId)
    .first<{ checked_through_ms: number }>();
  const checked = row?.checked_through_ms ?? spec.startsAtMs - 1;
  await db
    .prepare(
      `INSERT INTO recurring_grants (account_id, recurring_id, interval, starts_at_ms, ends_at_ms, expires, status,
       last_boundary_ms, checked_through_ms, next_boundary_ms, created_at_ms, updated_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, 'cancelled', ?, ?, ?, ?, ?) ON CONFLICT (account_id, recurring_id) DO UPDATE SET
       status = 'cancelled', last_boundary_ms = excluded.last_boundary_ms,
       next_boundary_ms = excluded.next_boundary_ms, updated_at_ms = excluded.updated_at_ms`,
    )
    .bind(
      accountId,
      spec.recurringId,
      spec.interval,
      spec.startsAtMs,
      spec.endsAtMs,
      spec.expires,
      last,
      checked,
      nextBoundaryAfter(spec.startsAtMs, spec.interval, checked, last),
      nowMs,
      nowMs,
    )
    .run();
}

/** Schedules with a boundary at or before `nowMs` not yet poked, soonest first. */
export async function dueRecurring(db: D1Database, nowMs: number): Promise<RecurringDue[]> {
  const { results } = await db
    .prepare(
      `SELECT account_id, recurring_id, interval, starts_at_ms, last_boundary_ms, status FROM recurring_grants
       WHERE next_boundary_ms IS NOT NULL AND next_boundary_ms <= ?
       ORDER BY next_boundary_ms, account_id, recurring_id LIMIT ?`,
    )
    .bind(nowMs, RECURRING_CRON_BATCH)
    .all<RecurringDue>();
  return results;
}

/** After a successful poke: checked through `nowMs`, the next boundary after it (or none). */
export function advanceRecurring(db: D1Database, row: RecurringDue, nowMs: number): D1PreparedStatement {
  const last = row.last_boundary_ms ?? undefined;
  return db
    .prepare(
      `UPDATE recurring_grants SET checked_through_ms = ?, next_boundary_ms = ?, updated_at_ms = ?
       WHERE account_id = ? AND recurring_id = ? AND status = ?`,
    )
    .bind(
      nowMs,
      nextBoundaryAfter(row.starts_at_ms, row.interval, nowMs, last),
      nowMs,
      row.account_id,
      row.recurring_id,
      // A cancel that landed since the read computed its own next boundary: leave it.
      row.status,
    );
}
