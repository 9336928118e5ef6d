/**
 * D1 tables of the operational metrics (src/metrics/store.ts; docs/runbook.md
 * names each metric). Not ledger tables: rows are counts, updated and pruned.
 * - metric_deltas: one closed minute of one series on one account, as its
 *   Durable Object shipped it; the key makes a re-shipment count once. Pruned
 *   after METRIC_DELTA_RETENTION_MS (8 days).
 * - metric_minutes: the global per-minute series; pruned after
 *   METRIC_MINUTES_RETENTION_MS (7 days).
 * - metric_totals: running counter totals, what /v1/metrics serves; one row per
 *   series (bounded by the label combinations: entry kinds × units, error
 *   codes, cron jobs), read at most METRICS_SERIES_MAX at a time.
 * - metric_gauges: gauges the cron sets (each job's last run and success).
 */
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const metricDeltas = sqliteTable(
  "metric_deltas",
  {
    accountId: text("account_id").notNull(),
    minuteMs: integer("minute_ms").notNull(),
    name: text("name").notNull(),
    /** Canonical label pairs, as between a sample's braces: `kind="debit",unit="credits"`. */
    labels: text("labels").notNull(),
    value: integer("value").notNull(),
    recordedAtMs: integer("recorded_at_ms").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.accountId, t.minuteMs, t.name, t.labels] }),
    index("metric_deltas_minute").on(t.minuteMs),
  ],
);

export const metricMinutes = sqliteTable(
  "metric_minutes",
  {
    minuteMs: integer("minute_ms").notNull(),
    name: text("name").notNull(),
    labels: text("labels").notNull(),
    value: integer("value").notNull(),
  },
  (t) => [primaryKey({ columns: [t.minuteMs, t.name, t.labels] })],
);

export const metricTotals = sqliteTable(
  "metric_totals",
  {
    name: text("name").notNull(),
    labels: text("labels").notNull(),
    value: integer("value").notNull(),
    updatedAtMs: integer("updated_at_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.name, t.labels] })],
);

export const metricGauges = sqliteTable(
  "metric_gauges",
  {
    name: text("name").notNull(),
    labels: text("labels").notNull(),
    value: integer("value").notNull(),
    updatedAtMs: integer("updated_at_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.name, t.labels] })],
);
