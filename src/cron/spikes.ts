/**
 * usage.spike (the anomaly scan): for every account that shipped entries
 * since the last scan (watermark over account_heads.updated_at_ms, with the
 * one-minute overlap of ./touched.ts), sums its consumption per unit in the
 * last hour and in the trailing window before it (index
 * ledger_entries(account_id, recorded_at_ms)), and alerts when the last hour
 * is ≥ factor × the trailing hourly average — averaged over the hours the
 * unit's history on the account (since its first grant) actually covers, and
 * only once it covers a few (src/ledger/alerts.ts).
 * An idle account cannot start a spike, so it is never scanned. One alert per
 * account, unit and hour. The watermark moves only after the alerts are in D1.
 */
import { loadAlertSettings } from "../db/alert-settings";
import { recordAlerts } from "../db/alerts";
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
  first_ms: number | null;
}

export async function runSpikes(ctx: JobContext) {
  const db = ctx.env.DB;
  const settings = await loadAlertSettings(db);
  const touched = await touchedSince(db, WATERMARK, SPIKE_BATCH);
  if (touched.rows.length === 0) return { accounts: 0, alerts: 0 };
  const hourAgo = ctx.nowMs - HOUR_MS;
  const since = hourAgo - settings.spike_trailing_hours * HOUR_MS;
  const kinds = CONSUMPTION_KINDS.map((k) => `'${k}'`).join(",");
  const sums = await db.batch(
    touched.rows.map((t) =>
      db
        .prepare(
          // first_ms: where the unit's history on the account starts, its first grant (credits are prepaid).
          `SELECT unit, SUM(CASE WHEN recorded_at_ms > ? THEN -amount ELSE 0 END) AS last_hour,
             SUM(CASE WHEN recorded_at_ms <= ? THEN -amount ELSE 0 END) AS trailing,
             (SELECT MIN(g.created_at_ms) FROM grants g WHERE g.account_id = ? AND g.unit = ledger_entries.unit)
               AS first_ms
           FROM ledger_entries WHERE account_id = ? AND recorded_at_ms > ? AND recorded_at_ms <= ?
             AND kind IN (${kinds}) GROUP BY unit`,
        )
        .bind(hourAgo, hourAgo, t.account_id, t.account_id, since, ctx.nowMs),
    ),
  );
  const alerts: AlertRecord[] = [];
  touched.rows.forEach((t, i) => {
    for (const row of (sums[i]?.results ?? []) as UsageRow[]) {
      const firstMs = row.first_ms === null ? null : Number(row.first_ms);
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
