/**
 * Alert settings (credits.expiring windows, usage.spike factor), kept in D1
 * `settings` under "alerts"; missing fields take the defaults.
 */
import { type AlertSettings, DEFAULT_ALERT_SETTINGS } from "../ledger";

const KEY = "alerts";

export async function loadAlertSettings(db: D1Database): Promise<AlertSettings> {
  const row = await db.prepare("SELECT value FROM settings WHERE key = ?").bind(KEY).first<{ value: string }>();
  return row
    ? { ...DEFAULT_ALERT_SETTINGS, ...(JSON.parse(row.value) as Partial<AlertSettings>) }
    : DEFAULT_ALERT_SETTINGS;
}

export async function saveAlertSettings(db: D1Database, settings: AlertSettings): Promise<void> {
  await db
    .prepare(
      `INSERT INTO settings (key, value, updated_at_ms) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms`,
    )
    .bind(KEY, JSON.stringify(settings), Date.now())
    .run();
}
