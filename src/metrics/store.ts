/**
 * The metrics in D1 (env.DB; docs/storage.md): per-account per-minute delta
 * rows shipped by the account Durable Objects (metric_deltas, unique per
 * account, minute, name and labels), the global per-minute series
 * (metric_minutes) and the running totals /v1/metrics serves (metric_totals).
 * A shipment adds to the series and totals only the rows metric_deltas does
 * not hold yet, in the same D1 batch (one transaction) as it inserts them, so
 * a shipment sent twice counts once. Deltas are kept METRIC_DELTA_RETENTION_MS
 * and a row older than METRIC_ACCEPT_MS is refused on arrival: a re-shipment
 * can never find its delta pruned and count again.
 */
import { labelsOf, MINUTE_MS } from "./names";

const DAY_MS = 86_400_000;
/** A shipped row counts only when its minute is at most this old (then dropped, and logged by the DO). */
export const METRIC_ACCEPT_MS = 7 * DAY_MS;
/** Delta rows are pruned this long after their minute: a day beyond METRIC_ACCEPT_MS, for clock skew. */
export const METRIC_DELTA_RETENTION_MS = METRIC_ACCEPT_MS + DAY_MS;
/** The global per-minute series is kept this long. */
export const METRIC_MINUTES_RETENTION_MS = 7 * DAY_MS;
/** Rows one prune statement deletes; METRIC_PRUNE_ROUNDS statements per table per cron run. */
export const METRIC_PRUNE_BATCH = 5000;
export const METRIC_PRUNE_ROUNDS = 10;
/** Counter series /v1/metrics reads and serves; more are left out and creditgate_metrics_truncated says so. */
export const METRICS_SERIES_MAX = 2000;

/** One closed minute of one series on one account, as it travels: [account_id, minute_ms, name, labels, value]. */
export type DeltaRow = [string, number, string, string, number];

const at = (i: number) => `json_extract(j.value, '$[${i}]')`;
const fresh = `${at(1)} >= ? AND NOT EXISTS (SELECT 1 FROM metric_deltas d WHERE d.account_id = ${at(0)}
  AND d.minute_ms = ${at(1)} AND d.name = ${at(2)} AND d.labels = ${at(3)})`;

const TOTALS_SQL = `INSERT INTO metric_totals (name, labels, value, updated_at_ms)
  SELECT ${at(2)}, ${at(3)}, SUM(${at(4)}), ? FROM json_each(?) j WHERE ${fresh} GROUP BY 1, 2
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value, updated_at_ms = excluded.updated_at_ms`;

const MINUTES_SQL = `INSERT INTO metric_minutes (minute_ms, name, labels, value)
  SELECT ${at(1)}, ${at(2)}, ${at(3)}, SUM(${at(4)}) FROM json_each(?) j WHERE ${fresh} GROUP BY 1, 2, 3
  ON CONFLICT (minute_ms, name, labels) DO UPDATE SET value = value + excluded.value`;

const DELTAS_SQL = `INSERT INTO metric_deltas (account_id, minute_ms, name, labels, value, recorded_at_ms)
  SELECT ${at(0)}, ${at(1)}, ${at(2)}, ${at(3)}, ${at(4)}, ? FROM json_each(?) j WHERE ${at(1)} >= ?
  ON CONFLICT (account_id, minute_ms, name, labels) DO NOTHING`;

/**
 * The statements that ship `rows` (one D1 batch, in this order): totals and
 * series first, counting only rows not in metric_deltas, then the deltas.
 * Rows must be distinct per (account, minute, name, labels): the DO's table
 * key guarantees it.
 */
export function shipStatements(db: D1Database, rows: readonly DeltaRow[], nowMs: number): D1PreparedStatement[] {
  const chunk = JSON.stringify(rows);
  const horizon = nowMs - METRIC_ACCEPT_MS;
  return [
    db.prepare(TOTALS_SQL).bind(nowMs, chunk, horizon),
    db.prepare(MINUTES_SQL).bind(chunk, horizon),
    db.prepare(DELTAS_SQL).bind(nowMs, chunk, horizon),
  ];
}

/**
 * Adds `value` to a global counter directly, for events D1 itself records
 * once (a webhook attempt row, a cron run): put the statements in the same
 * batch as that record so the two cannot disagree.
 */
export function bumpStatements(
  db: D1Database,
  name: string,
  labels: Record<string, string>,
  value: number,
  nowMs: number,
): D1PreparedStatement[] {
  const key = labelsOf(labels);
  const minuteMs = Math.floor(nowMs / MINUTE_MS) * MINUTE_MS;
  return [
    db
      .prepare(
        `INSERT INTO metric_totals (name, labels, value, updated_at_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value, updated_at_ms = excluded.updated_at_ms`,
      )
      .bind(name, key, value, nowMs),
    db
      .prepare(
        `INSERT INTO metric_minutes (minute_ms, name, labels, value) VALUES (?, ?, ?, ?)
         ON CONFLICT (minute_ms, name, labels) DO UPDATE SET value = value + excluded.value`,
      )
      .bind(minuteMs, name, key, value),
  ];
}

/** Sets a gauge kept in D1 (metric_gauges), such as a cron job's last run. */
export function gaugeStatement(
  db: D1Database,
  name: string,
  labels: Record<string, string>,
  value: number,
  nowMs: number,
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO metric_gauges (name, labels, value, updated_at_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (name, labels) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms`,
    )
    .bind(name, labelsOf(labels), value, nowMs);
}

/** The webhook consumer's counters for one attempt (src/webhooks/deliver.ts): nothing when it was delivered. */
export function webhookAttemptStatements(db: D1Database, status: string, nowMs: number): D1PreparedStatement[] {
  if (status === "delivered") return [];
  const failed = bumpStatements(db, "creditgate_webhook_attempt_failures_total", {}, 1, nowMs);
  if (status !== "failed") return failed;
  return [...failed, ...bumpStatements(db, "creditgate_webhook_deliveries_failed_total", {}, 1, nowMs)];
}

export interface SeriesRow {
  name: string;
  labels: string;
  value: number;
}

/** Up to METRICS_SERIES_MAX counter series, by name and labels, and whether more exist. */
export async function readTotals(db: D1Database): Promise<{ rows: SeriesRow[]; truncated: boolean }> {
  const { results } = await db
    .prepare("SELECT name, labels, value FROM metric_totals ORDER BY name, labels LIMIT ?")
    .bind(METRICS_SERIES_MAX + 1)
    .all<SeriesRow>();
  return { rows: results.slice(0, METRICS_SERIES_MAX), truncated: results.length > METRICS_SERIES_MAX };
}

/** Every gauge metric_gauges holds (bounded: one row per cron job and gauge name). */
export async function readStoredGauges(db: D1Database): Promise<SeriesRow[]> {
  const { results } = await db
    .prepare("SELECT name, labels, value FROM metric_gauges ORDER BY name, labels LIMIT ?")
    .bind(METRICS_SERIES_MAX)
    .all<SeriesRow>();
  return results;
}

/**
 * Deletes delta rows past METRIC_DELTA_RETENTION_MS and series minutes past
 * METRIC_MINUTES_RETENTION_MS, at most METRIC_PRUNE_BATCH × METRIC_PRUNE_ROUNDS
 * rows of each per call.
 */
export async function pruneMetrics(db: D1Database, nowMs: number): Promise<{ deltas: number; minutes: number }> {
  const pruned = { deltas: 0, minutes: 0 };
  const tables = [
    { key: "deltas", table: "metric_deltas", before: nowMs - METRIC_DELTA_RETENTION_MS },
    { key: "minutes", table: "metric_minutes", before: nowMs - METRIC_MINUTES_RETENTION_MS },
  ] as const;
  for (const t of tables) {
    for (let round = 0; round < METRIC_PRUNE_ROUNDS; round++) {
      const res = await db
        .prepare(`DELETE FROM ${t.table} WHERE rowid IN (SELECT rowid FROM ${t.table} WHERE minute_ms < ? LIMIT ?)`)
        .bind(t.before, METRIC_PRUNE_BATCH)
        .run();
      const n = res.meta.changes ?? 0;
      pruned[t.key] += n;
      if (n < METRIC_PRUNE_BATCH) break;
    }
  }
  return pruned;
}
