/**
 * Alerts in D1: the cron records its own (the DO's arrive through the outbox),
 * and GET /v1/alerts lists them newest first.
 */
import type { AlertRecord, AlertType } from "../ledger";

export interface AlertRow {
  id: string;
  type: string;
  account_id: string | null;
  unit: string | null;
  data: string;
  created_at_ms: number;
  recorded_at_ms: number;
  dispatched_at_ms: number | null;
}

export function alertView(row: AlertRow) {
  return {
    id: row.id,
    type: row.type as AlertType,
    account_id: row.account_id,
    unit: row.unit,
    data: JSON.parse(row.data) as Record<string, string | number | boolean | null>,
    created_at: new Date(row.created_at_ms).toISOString(),
    recorded_at: new Date(row.recorded_at_ms).toISOString(),
    dispatched_at: row.dispatched_at_ms === null ? null : new Date(row.dispatched_at_ms).toISOString(),
  };
}
export type AlertView = ReturnType<typeof alertView>;

/**
 * INSERT OR IGNORE by id (ids are deterministic, so a repeated or overlapping
 * run writes nothing twice). Returns the ids that were new.
 */
export async function recordAlerts(db: D1Database, alerts: readonly AlertRecord[]): Promise<string[]> {
  if (alerts.length === 0) return [];
  const nowMs = Date.now();
  const results = await db.batch(
    alerts.map((a) =>
      db
        .prepare(
          `INSERT OR IGNORE INTO alerts (id, type, account_id, unit, data, created_at_ms, recorded_at_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .bind(a.id, a.type, a.account_id, a.unit, JSON.stringify(a.data), Date.parse(a.created_at), nowMs),
    ),
  );
  return alerts.filter((_, i) => (results[i]?.meta.changes ?? 0) > 0).map((a) => a.id);
}

export interface AlertQuery {
  type: string | null;
  accountId: string | null;
  /** Opaque cursor from a previous page: "<created_at_ms>:<id>". */
  before: { atMs: number; id: string } | null;
  limit: number;
}

/** Newest first, keyset-paginated by (created_at_ms, id). */
export async function listAlerts(db: D1Database, q: AlertQuery): Promise<{ rows: AlertRow[]; more: boolean }> {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (q.type !== null) {
    where.push("type = ?");
    args.push(q.type);
  }
  if (q.accountId !== null) {
    where.push("account_id = ?");
    args.push(q.accountId);
  }
  if (q.before !== null) {
    where.push("(created_at_ms < ? OR (created_at_ms = ? AND id < ?))");
    args.push(q.before.atMs, q.before.atMs, q.before.id);
  }
  const sql = `SELECT * FROM alerts ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
    ORDER BY created_at_ms DESC, id DESC LIMIT ?`;
  const { results } = await db
    .prepare(sql)
    .bind(...args, q.limit + 1)
    .all<AlertRow>();
  return { rows: results.slice(0, q.limit), more: results.length > q.limit };
}
