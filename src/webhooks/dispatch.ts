/**
 * Alert fan-out: one delivery row and one queue message per (alert, webhook
 * subscribed to its type). Idempotent: delivery ids derive from the pair, the
 * rows are INSERT OR IGNORE'd, and only the dispatch whose INSERT created the
 * row queues its message, so the DO's immediate dispatch and the cron's
 * backstop may overlap without queueing a delivery twice. A dispatch that
 * stopped between creating rows and marking its alerts leaves them
 * undispatched; the backstop re-queues such rows once they are older than its
 * grace period and still unattempted (the consumer skips closed deliveries).
 */
import { sha256Hex } from "../ledger";

export interface DeliveryMessage {
  delivery_id: string;
}

/** Which alerts: these ids (just shipped), or the oldest still undispatched. */
export type AlertSelection = { ids: readonly string[] } | { recordedBeforeMs: number; limit: number };

/** The Standard Webhooks `webhook-id`: the same for every retry of one delivery. */
export const deliveryIdOf = (alertId: string, webhookId: string): string =>
  `msg_${sha256Hex(`${alertId}\u0000${webhookId}`).slice(0, 32)}`;

/** D1 refuses statements with more than 100 bound parameters. */
const ID_CHUNK = 90;
const SEND_CHUNK = 100;

interface PendingAlert {
  id: string;
  type: string;
}

async function selectAlerts(db: D1Database, sel: AlertSelection): Promise<PendingAlert[]> {
  if ("ids" in sel) {
    const out: PendingAlert[] = [];
    for (let i = 0; i < sel.ids.length; i += ID_CHUNK) {
      const chunk = sel.ids.slice(i, i + ID_CHUNK);
      const { results } = await db
        .prepare(
          `SELECT id, type FROM alerts WHERE dispatched_at_ms IS NULL AND id IN (${chunk.map(() => "?").join(",")})`,
        )
        .bind(...chunk)
        .all<PendingAlert>();
      out.push(...results);
    }
    return out;
  }
  const { results } = await db
    .prepare(
      "SELECT id, type FROM alerts WHERE dispatched_at_ms IS NULL AND recorded_at_ms < ? ORDER BY recorded_at_ms LIMIT ?",
    )
    .bind(sel.recordedBeforeMs, sel.limit)
    .all<PendingAlert>();
  return results;
}

/**
 * Delivery rows of still-undispatched alerts created before `createdBeforeMs`
 * and never attempted: the dispatch that created them stopped before marking
 * its alerts, perhaps before queueing their messages.
 */
async function strandedDeliveries(db: D1Database, ids: readonly string[], createdBeforeMs: number) {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i += ID_CHUNK) {
    const chunk = ids.slice(i, i + ID_CHUNK);
    const { results } = await db
      .prepare(
        `SELECT id FROM webhook_deliveries WHERE status = 'pending' AND attempts = 0 AND created_at_ms < ?
         AND id IN (${chunk.map(() => "?").join(",")})`,
      )
      .bind(createdBeforeMs, ...chunk)
      .all<{ id: string }>();
    out.push(...results.map((r) => r.id));
  }
  return out;
}

/**
 * Creates a delivery for every matching webhook and queues the ones it
 * created, then marks the alerts dispatched. A crash before the mark leaves
 * them for the backstop (the cron), which re-queues stranded rows.
 * `deliveries` counts the messages queued.
 */
export async function dispatchAlerts(
  db: D1Database,
  queue: Queue<DeliveryMessage>,
  sel: AlertSelection,
): Promise<{ alerts: number; deliveries: number }> {
  const alerts = await selectAlerts(db, sel);
  if (alerts.length === 0) return { alerts: 0, deliveries: 0 };
  const { results: hooks } = await db
    .prepare("SELECT id, event_types FROM webhooks WHERE deleted_at_ms IS NULL")
    .all<{ id: string; event_types: string }>();
  const subscribed = hooks.map((h) => ({ id: h.id, types: new Set(JSON.parse(h.event_types) as string[]) }));
  const nowMs = Date.now();
  const inserts: D1PreparedStatement[] = [];
  const ids: string[] = [];
  for (const alert of alerts) {
    for (const hook of subscribed) {
      if (!hook.types.has(alert.type)) continue;
      const id = deliveryIdOf(alert.id, hook.id);
      inserts.push(
        db
          .prepare(
            `INSERT OR IGNORE INTO webhook_deliveries (id, webhook_id, alert_id, event_type, status, attempts,
              created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)`,
          )
          .bind(id, hook.id, alert.id, alert.type, nowMs, nowMs),
      );
      ids.push(id);
    }
  }
  const inserted = inserts.length > 0 ? await db.batch(inserts) : [];
  // Queue only the rows this call created: another dispatch that created a row queues its own message.
  const toSend = ids.filter((_, i) => (inserted[i]?.meta.changes ?? 0) > 0);
  const existing = ids.filter((_, i) => (inserted[i]?.meta.changes ?? 0) === 0);
  if ("recordedBeforeMs" in sel && existing.length > 0) {
    toSend.push(...(await strandedDeliveries(db, existing, sel.recordedBeforeMs)));
  }
  const messages = toSend.map(
    (id): MessageSendRequest<DeliveryMessage> => ({
      body: { delivery_id: id },
      contentType: "json",
    }),
  );
  for (let i = 0; i < messages.length; i += SEND_CHUNK) await queue.sendBatch(messages.slice(i, i + SEND_CHUNK));
  const marks: D1PreparedStatement[] = [];
  for (let i = 0; i < alerts.length; i += ID_CHUNK) {
    const chunk = alerts.slice(i, i + ID_CHUNK).map((a) => a.id);
    marks.push(
      db
        .prepare(`UPDATE alerts SET dispatched_at_ms = ? WHERE id IN (${chunk.map(() => "?").join(",")})`)
        .bind(nowMs, ...chunk),
    );
  }
  await db.batch(marks);
  return { alerts: alerts.length, deliveries: messages.length };
}
