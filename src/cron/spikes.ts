/**
 * usage.spike (the anomaly scan): for every account that shipped entries
 * since the last scan (watermark over account_heads.updated_at_ms, with the
 * one-minute overlap of ./touched.ts), sums its consumption per unit in the
 * last hour and in the trailing window before it (index
 * ledger_entries(account_id, recorded_at_ms) in the account's ledger shard), and alerts when the last hour
 * is ≥ factor × the trailing hourly average — averaged over the hours the
 * unit's history on the account (since its first grant) actually covers, and
 * only once it covers a few (src/ledger/alerts.ts).
 * An idle account cannot start a spike, so it is never scanned. One alert per
 * account, unit and hour. The watermark moves only after the alerts are in D1.
 */
import { loadAlertSettings } from "../db/alert-settings";
import { recordAlerts } from "../db/alerts";
import { ledgerDb } from "../db/shards";
import { type AlertRecord, CONSUMPTION_KINDS, coveredHours, isUsageSpike, sha256Hex, spikeHour } from "../ledger";
import { dispatchAlerts } from "../webhooks/dispatch";
import type { JobContext } from "./job";
import { touchedSince } from "./touched";

export const SPIKE_BATCH = 200;
const HOUR_MS = 3_600_000;
const WATERMARK = "spikes.watermark";

interface UsageRow {
  unit: string;
  last_hour: number;
  trailing: number;
}

export async function runSpikes(ctx: JobContext) {
  const db = ctx.env.DB;
  const settings = await loadAlertSettings(db);
  const touched = await touchedSince(db, WATERMARK, SPIKE_BATCH);
  if (touched.rows.length === 0) return { accounts: 0, alerts: 0 };
  const hourAgo = ctx.nowMs - HOUR_MS;
  const since = hourAgo - settings.spike_trailing_hours * HOUR_MS;
  const kinds = CONSUMPTION_KINDS.map((k) => `'${k}'`).join(",");
  // Consumption from each account's ledger shard (one batch per shard), where each unit's history
  // starts (its first grant) from the directory in DB: the two live in different databases.
  const sums: { results: UsageRow[] }[] = new Array(touched.rows.length);
  const byShard = new Map<D1Database, number[]>();
  touched.rows.forEach((t, i) => {
    const shard = ledgerDb(ctx.env, t.account_id);
    byShard.set(shard, [...(byShard.get(shard) ?? []), i]);
  });
  const firstGrant = new Map<string, number>();
  await Promise.all([
    ...[...byShard].map(async ([shard, rows]) => {
      const results = await shard.batch<UsageRow>(
        rows.map((i) =>
          shard
            .prepare(
              `SELECT unit, SUM(CASE WHEN recorded_at_ms > ? THEN -amount ELSE 0 END) AS last_hour,
                 SUM(CASE WHEN recorded_at_ms <= ? THEN -amount ELSE 0 END) AS trailing
               FROM ledger_entries WHERE account_id = ? AND recorded_at_ms > ? AND recorded_at_ms <= ?
                 AND kind IN (${kinds}) GROUP BY unit`,
            )
            .bind(hourAgo, hourAgo, touched.rows[i]?.account_id, since, ctx.nowMs),
        ),
      );
      rows.forEach((i, k) => {
        sums[i] = { results: results[k]?.results ?? [] };
      });
    }),
    (async () => {
      const ids = touched.rows.map((t) => t.account_id);
      const { results } = await db
        .prepare(
          `SELECT account_id, unit, MIN(created_at_ms) AS first_ms FROM grants
           WHERE account_id IN (SELECT value FROM json_each(?)) GROUP BY account_id, unit`,
        )
        .bind(JSON.stringify(ids))
        .all<{ account_id: string; unit: string; first_ms: number }>();
      for (const r of results) firstGrant.set(`${r.account_id}\u0000${r.unit}`, Number(r.first_ms));
    })(),
  ]);
  const alerts: AlertRecord[] = [];
  touched.rows.forEach((t, i) => {
    for (const row of sums[i]?.results ?? []) {
      const firstMs = firstGrant.get(`${t.account_id}\u0000${row.unit}`) ?? null;
      const window = {
        lastHour: Number(row.last_hour),
        trailing: Number(row.trailing),
        coveredHours: coveredHours(firstMs, ctx.nowMs, settings.spike_trailing_hours),
      };
      if (!isUsageSpike(window, settings.spike_factor, settings.spike_trailing_hours)) continue;
      const hour = spikeHour(ctx.nowMs);
      alerts.push({
        id: `spike_${sha256Hex(`${t.account_id}\u0000${row.unit}\u0000${hour}`).slice(0, 32)}`,
        type: "usage.spike",
        account_id: t.account_id,
        unit: row.unit,
        data: {
          unit: row.unit,
          last_hour: window.lastHour,
          trailing_total: window.trailing,
          trailing_hours: settings.spike_trailing_hours,
          covered_hours: window.coveredHours,
          factor: settings.spike_factor,
        },
        created_at: new Date(ctx.nowMs).toISOString(),
      });
    }
  });
  // Alerts first: if recording fails, the watermark stays and the next run scans these accounts again.
  const fresh = await recordAlerts(db, alerts);
  if (touched.commit) await touched.commit.run();
  if (fresh.length > 0) await dispatchAlerts(db, ctx.env.WEBHOOK_QUEUE, { ids: fresh });
  return { accounts: touched.rows.length, alerts: fresh.length };
}
