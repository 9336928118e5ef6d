/**
 * The queue consumer: signs and POSTs one delivery per message, logs every
 * attempt in D1, and retries failures with exponential backoff through the
 * queue (message.retry with a delay) until MAX_ATTEMPTS, then gives up and
 * records it. A 2xx answer is success; anything else, or no answer within
 * the timeout, is a failed attempt.
 */
import { webhookFetch } from "../faults";
import { log } from "../log";
import { webhookAttemptStatements } from "../metrics/store";
import type { DeliveryMessage } from "./dispatch";
import { signPayload } from "./sign";

export const MAX_ATTEMPTS = 8;
export const ATTEMPT_TIMEOUT_MS = 10_000;

/**
 * Seconds before attempt `attempt + 1`: 10 s, 30 s, 90 s, … capped at 1 h.
 * @example retryDelaySeconds(1) // 10
 */
export function retryDelaySeconds(attempt: number): number {
  return Math.min(3600, 10 * 3 ** Math.max(0, attempt - 1));
}

interface Target {
  id: string;
  status: string;
  attempts: number;
  webhook_id: string;
  alert_id: string;
  url: string;
  secret: string;
  deleted_at_ms: number | null;
  type: string;
  account_id: string | null;
  unit: string | null;
  data: string;
  created_at_ms: number;
}

/** The JSON body receivers get: Standard Webhooks' {type, timestamp, data}. */
export function webhookBody(t: Pick<Target, "type" | "alert_id" | "account_id" | "unit" | "data" | "created_at_ms">) {
  return JSON.stringify({
    type: t.type,
    timestamp: new Date(t.created_at_ms).toISOString(),
    data: { alert_id: t.alert_id, account_id: t.account_id, unit: t.unit, ...(JSON.parse(t.data) as object) },
  });
}

type Outcome = "delivered" | "retry" | "failed" | "skipped";

async function attempt(env: Env, msg: Message<unknown>): Promise<Outcome> {
  const deliveryId = (msg.body as Partial<DeliveryMessage> | null)?.delivery_id;
  if (typeof deliveryId !== "string") {
    msg.ack();
    return "skipped";
  }
  const t = await env.DB.prepare(
    `SELECT d.id, d.status, d.attempts, d.webhook_id, d.alert_id, w.url, w.secret, w.deleted_at_ms,
       a.type, a.account_id, a.unit, a.data, a.created_at_ms
     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN alerts a ON a.id = d.alert_id
     WHERE d.id = ?`,
  )
    .bind(deliveryId)
    .first<Target>();
  if (!t || t.status === "delivered" || t.status === "failed" || t.status === "cancelled") {
    msg.ack();
    return "skipped";
  }
  const nowMs = Date.now();
  if (t.deleted_at_ms !== null) {
    await env.DB.prepare("UPDATE webhook_deliveries SET status = 'cancelled', updated_at_ms = ? WHERE id = ?")
      .bind(nowMs, t.id)
      .run();
    msg.ack();
    return "skipped";
  }
  const number = t.attempts + 1;
  const body = webhookBody(t);
  const timestamp = Math.floor(nowMs / 1000);
  let statusCode: number | null = null;
  let error: string | null = null;
  const started = Date.now();
  try {
    const res = await webhookFetch(env)(t.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      headers: {
        "content-type": "application/json",
        "user-agent": "credit-gate-webhooks/1",
        "webhook-id": t.id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": await signPayload(t.secret, t.id, timestamp, body),
      },
      body,
    });
    statusCode = res.status;
    await res.body?.cancel();
    if (!res.ok) error = `HTTP ${res.status}`;
  } catch (e) {
    error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  const durationMs = Date.now() - started;
  const ok = error === null;
  const status = ok ? "delivered" : number >= MAX_ATTEMPTS ? "failed" : "retrying";
  await env.DB.batch([
    env.DB.prepare(
      `INSERT INTO webhook_attempts (delivery_id, webhook_id, attempt, status_code, error, duration_ms, at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).bind(t.id, t.webhook_id, number, statusCode, error, durationMs, nowMs),
    env.DB.prepare(
      `UPDATE webhook_deliveries SET status = ?, attempts = ?, last_status_code = ?, last_error = ?, updated_at_ms = ?,
        delivered_at_ms = ? WHERE id = ?`,
    ).bind(status, number, statusCode, error, nowMs, ok ? nowMs : null, t.id),
    ...webhookAttemptStatements(env.DB, status, nowMs), // failure counters, with the attempt row (src/metrics/store.ts)
  ]);
  if (status === "retrying") {
    msg.retry({ delaySeconds: retryDelaySeconds(number) });
    return "retry";
  }
  msg.ack();
  return ok ? "delivered" : "failed";
}

/** The Worker's `queue` handler. Logs one JSON line per batch. */
export async function deliverWebhooks(batch: MessageBatch<unknown>, env: Env, _ctx?: ExecutionContext): Promise<void> {
  const started = Date.now();
  const counts: Record<Outcome | "errors", number> = { delivered: 0, retry: 0, failed: 0, skipped: 0, errors: 0 };
  await Promise.all(
    batch.messages.map(async (msg) => {
      try {
        counts[await attempt(env, msg)]++;
      } catch (e) {
        // D1 unreachable: try the whole message again later; the attempt log may miss this one.
        counts.errors++;
        msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
        log({ event: "webhooks.error", error: e instanceof Error ? e.message : String(e) });
      }
    }),
  );
  log({
    event: "webhooks.deliver",
    queue: batch.queue,
    messages: batch.messages.length,
    ...counts,
    duration_ms: Date.now() - started,
  });
}
