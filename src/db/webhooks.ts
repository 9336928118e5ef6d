/** Webhook endpoints, their deliveries and every attempt, in D1. */
import type { AlertType } from "../ledger";

export interface WebhookRow {
  id: string;
  url: string;
  event_types: string;
  secret: string;
  description: string | null;
  created_at_ms: number;
  deleted_at_ms: number | null;
}

const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A webhook as served; the secret is shown only when it is created. */
export function webhookView(row: WebhookRow) {
  return {
    id: row.id,
    url: row.url,
    event_types: JSON.parse(row.event_types) as AlertType[],
    description: row.description,
    created_at: new Date(row.created_at_ms).toISOString(),
    deleted_at: isoOrNull(row.deleted_at_ms),
  };
}

export async function createWebhook(
  db: D1Database,
  input: { url: string; eventTypes: AlertType[]; secret: string; description: string | null },
): Promise<WebhookRow> {
  const row: WebhookRow = {
    id: `wh_${crypto.randomUUID().replace(/-/g, "")}`,
    url: input.url,
    event_types: JSON.stringify(input.eventTypes),
    secret: input.secret,
    description: input.description,
    created_at_ms: Date.now(),
    deleted_at_ms: null,
  };
  await db
    .prepare(
      `INSERT INTO webhooks (id, url, event_types, secret, description, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)`,
    )
    .bind(row.id, row.url, row.event_types, row.secret, row.description, row.created_at_ms)
    .run();
  return row;
}

export async function listWebhooks(db: D1Database): Promise<WebhookRow[]> {
  const { results } = await db
    .prepare("SELECT * FROM webhooks WHERE deleted_at_ms IS NULL ORDER BY created_at_ms, id")
    .all<WebhookRow>();
  return results;
}

export async function getWebhook(db: D1Database, id: string): Promise<WebhookRow | null> {
  return db.prepare("SELECT * FROM webhooks WHERE id = ?").bind(id).first<WebhookRow>();
}

/** Soft delete: no new deliveries; pending ones are cancelled by the consumer. Deleting again is a no-op. */
export async function deleteWebhook(db: D1Database, id: string): Promise<WebhookRow | null> {
  await db
    .prepare("UPDATE webhooks SET deleted_at_ms = ? WHERE id = ? AND deleted_at_ms IS NULL")
    .bind(Date.now(), id)
    .run();
  return getWebhook(db, id);
}

interface DeliveryRow {
  id: string;
  webhook_id: string;
  alert_id: string;
  event_type: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  created_at_ms: number;
  updated_at_ms: number;
  delivered_at_ms: number | null;
}

interface AttemptRow {
  delivery_id: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  at_ms: number;
}

/** The newest deliveries of one webhook, each with its attempt log. */
export async function listDeliveries(db: D1Database, webhookId: string, limit: number) {
  const { results: deliveries } = await db
    .prepare("SELECT * FROM webhook_deliveries WHERE webhook_id = ? ORDER BY created_at_ms DESC, id DESC LIMIT ?")
    .bind(webhookId, limit)
    .all<DeliveryRow>();
  const byDelivery = new Map<string, AttemptRow[]>();
  if (deliveries.length > 0) {
    const { results: attempts } = await db
      .prepare(
        `SELECT a.delivery_id, a.attempt, a.status_code, a.error, a.duration_ms, a.at_ms FROM webhook_attempts a
         WHERE a.delivery_id IN (SELECT id FROM webhook_deliveries WHERE webhook_id = ?
           ORDER BY created_at_ms DESC, id DESC LIMIT ?)
         ORDER BY a.delivery_id, a.id`,
      )
      .bind(webhookId, limit)
      .all<AttemptRow>();
    for (const a of attempts) {
      const list = byDelivery.get(a.delivery_id) ?? [];
      list.push(a);
      byDelivery.set(a.delivery_id, list);
    }
  }
  return deliveries.map((d) => ({
    id: d.id,
    alert_id: d.alert_id,
    event_type: d.event_type,
    status: d.status,
    attempts: d.attempts,
    last_status_code: d.last_status_code,
    last_error: d.last_error,
    created_at: new Date(d.created_at_ms).toISOString(),
    updated_at: new Date(d.updated_at_ms).toISOString(),
    delivered_at: isoOrNull(d.delivered_at_ms),
    attempt_log: (byDelivery.get(d.id) ?? []).map((a) => ({
      attempt: a.attempt,
      status_code: a.status_code,
      error: a.error,
      duration_ms: a.duration_ms,
      at: new Date(a.at_ms).toISOString(),
    })),
  }));
}
