/** Progress markers of the cron jobs (cursors, watermarks) in D1 `cron_state`. */

export async function readCronState<T>(db: D1Database, key: string): Promise<T | null> {
  const row = await db.prepare("SELECT value FROM cron_state WHERE key = ?").bind(key).first<{ value: string }>();
  return row ? (JSON.parse(row.value) as T) : null;
}

export function writeCronState(db: D1Database, key: string, value: unknown): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO cron_state (key, value, updated_at_ms) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms`,
    )
    .bind(key, JSON.stringify(value), Date.now());
}
