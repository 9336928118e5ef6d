/**
 * usage.spike (the anomaly scan): for every account that shipped entries
 * since the last scan (watermark over account_heads.updated_at_ms), sums its
 * consumption per unit in the last hour and in the trailing window before it
 * (index ledger_entries(account_id, recorded_at_ms)), and alerts when the last
 * hour is ≥ factor × the trailing hourly average. An idle account cannot
 * start a spike, so it is never scanned. One alert per account, unit and hour.
 */
import { loadAlertSettings } from "../db/alert-settings";
import { recordAlerts } from "../db/alerts";
import { readCronState, writeCronState } from "../db/cron-state";
import { type AlertRecord, CONSUMPTION_KINDS, isUsageSpike, sha256Hex, spikeHour } from "../ledger";
import { dispatchAlerts } from "../webhooks/dispatch";
import type { JobContext } from "./job";

export const SPIKE_BATCH = 200;
const HOUR_MS = 3_600_000;
const WATERMARK = "spikes.watermark";

export async function runSpikes(ctx: JobContext) {
  const db = ctx.env.DB;
  const settings = await loadAlertSettings(db);
  const mark = (await readCronState<{ ms: number; id: string }>(db, WATERMARK)) ?? { ms: 0, id: "" };
  const { results: touched } = await db
    .prepare(
      `SELECT account_id, updated_at_ms FROM account_heads
       WHERE updated_at_ms > ? OR (updated_at_ms = ? AND account_id > ?)
       ORDER BY updated_at_ms, account_id LIMIT ?`,
    )
    .bind(mark.ms, mark.ms, mark.id, SPIKE_BATCH)
    .all<{ account_id: string; updated_at_ms: number }>();
  if (touched.length === 0) return { accounts: 0, alerts: 0 };
  const hourAgo = ctx.nowMs - HOUR_MS;
  const since = hourAgo - settings.spike_trailing_hours * HOUR_MS;
  const kinds = CONSUMPTION_KINDS.map((k) => `'${k}'`).join(",");
  const sums = await db.batch(
    touched.map((t) =>
      db
        .prepare(
          `SELECT unit, SUM(CASE WHEN recorded_at_ms > ? THEN -amount ELSE 0 END) AS last_hour,
             SUM(CASE WHEN recorded_at_ms <= ? THEN -amount ELSE 0 END) AS trailing
           FROM ledger_entries WHERE account_id = ? AND recorded_at_ms > ? AND recorded_at_ms <= ?
             AND kind IN (${kinds}) GROUP BY unit`,
        )
        .bind(hourAgo, hourAgo, t.account_id, since, ctx.nowMs),
    ),
  );
  const alerts: AlertRecord[] = [];
  touched.forEach((t, i) => {
    for (const row of (sums[i]?.results ?? []) as { unit: string; last_hour: number; trailing: number }[]) {
      const window = { lastHour: Number(row.last_hour), trailing: Number(row.trailing) };
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
          factor: settings.spike_factor,
        },
        created_at: new Date(ctx.nowMs).toISOString(),
      });
    }
  });
  const last = touched[touched.length - 1];
  if (last) await writeCronState(db, WATERMARK, { ms: last.updated_at_ms, id: last.account_id }).run();
  const fresh = await recordAlerts(db, alerts);
  if (fresh.length > 0) await dispatchAlerts(db, ctx.env.WEBHOOK_QUEUE, { ids: fresh });
  return { accounts: touched.length, alerts: fresh.length };
}
