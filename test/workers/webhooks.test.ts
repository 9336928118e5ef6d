/**
 * Webhooks: registration (admin only), Standard Webhooks signatures checked
 * by an independent HMAC written here with WebCrypto (not src/webhooks/sign.ts),
 * and retries with backoff. The queue consumer is the Worker's real `queue`
 * export, driven message by message with createMessageBatch/getQueueResult;
 * its real `fetch` reaches test/support/webhook-receiver.js (vitest.config.ts
 * routes outbound HTTP there), which fails the first N requests when asked.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { recordAlerts } from "../../src/db/alerts";
import worker from "../../src/index";
import type { AlertRecord } from "../../src/ledger";
import { type DeliveryMessage, dispatchAlerts } from "../../src/webhooks/dispatch";
import { signPayload } from "../../src/webhooks/sign";
import { call, debit, grant, uid } from "./helpers";
import { drain } from "./jobs-helpers";

const QUEUE = "credit-gate-webhooks";

/** Standard Webhooks verification, written from the spec: HMAC-SHA256 over "id.timestamp.body". */
async function verifySignature(secret: string, headers: Record<string, string>, body: string): Promise<boolean> {
  const keyBytes = Uint8Array.from(atob(secret.replace(/^whsec_/, "")), (ch) => ch.charCodeAt(0));
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const signed = new TextEncoder().encode(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`);
  for (const part of (headers["webhook-signature"] ?? "").split(" ")) {
    const [version, sig] = part.split(",");
    if (version !== "v1" || !sig) continue;
    const mac = Uint8Array.from(atob(sig), (ch) => ch.charCodeAt(0));
    if (await crypto.subtle.verify("HMAC", key, mac, signed)) return true;
  }
  return false;
}

/** A queue stand-in that records what dispatch sends, so this suite decides when each attempt runs. */
function recordingQueue() {
  const sent: DeliveryMessage[] = [];
  const queue = {
    async send(body: DeliveryMessage) {
      sent.push(body);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<DeliveryMessage>>) {
      for (const m of messages) sent.push(m.body);
    },
  } as unknown as Queue<DeliveryMessage>;
  return { queue, sent };
}

/**
 * Runs the Worker's queue handler on one message delivered for the `attempts`-th time.
 * getQueueResult reports acks and retries; the requested delay is read off the message's retry() call.
 */
async function consume(body: DeliveryMessage, attempts: number) {
  const batch = createMessageBatch<DeliveryMessage>(QUEUE, [
    { id: `m-${body.delivery_id}-${attempts}`, timestamp: new Date(), attempts, body },
  ]);
  const retry = vi.spyOn(batch.messages[0]!, "retry");
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, env, ctx);
  const result = (await getQueueResult(batch, ctx)) as { retryMessages: { msgId: string }[]; explicitAcks: string[] };
  const delays = retry.mock.calls.map((c) => c[0]?.delaySeconds ?? 0);
  return { ...result, delays };
}

async function receiverLog(token: string) {
  const res = await env.WEBHOOK_RECEIVER.fetch(`http://receiver/__log/${token}`);
  return (await res.json()) as { headers: Record<string, string>; body: string; status: number }[];
}

function syntheticAlert(accountId: string): AlertRecord {
  return {
    id: uid("alert"),
    type: "balance.low",
    account_id: accountId,
    unit: "credits",
    data: { unit: "credits", available: 5, threshold: 10 },
    created_at: new Date().toISOString(),
  };
}

describe("Standard Webhooks signature", () => {
  // The known-answer vector published with the Standard Webhooks reference libraries.
  const vector = {
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
    timestamp: 1614265330,
    body: '{"test": 2432232314}',
    signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
  };
  const headers = {
    "webhook-id": vector.id,
    "webhook-timestamp": String(vector.timestamp),
    "webhook-signature": vector.signature,
  };

  it("src/webhooks/sign.ts produces the published signature", async () => {
    expect(await signPayload(vector.secret, vector.id, vector.timestamp, vector.body)).toBe(vector.signature);
  });

  it("this suite's independent verifier accepts it, and rejects it for another body, id or secret", async () => {
    expect(await verifySignature(vector.secret, headers, vector.body)).toBe(true);
    expect(await verifySignature(vector.secret, headers, '{"test": 2432232315}')).toBe(false);
    expect(await verifySignature(vector.secret, { ...headers, "webhook-id": "msg_other" }, vector.body)).toBe(false);
    expect(await verifySignature(`whsec_${btoa("x".repeat(32))}`, headers, vector.body)).toBe(false);
    // Several signatures, space-separated (key rotation): one that verifies is enough.
    const rotated = { ...headers, "webhook-signature": `v1,${btoa("y".repeat(32))} ${vector.signature}` };
    expect(await verifySignature(vector.secret, rotated, vector.body)).toBe(true);
  });
});

describe("webhook endpoints", () => {
  it("admins register, list and delete; the secret is shown once; other roles may not", async () => {
    const created = await call("POST", "/v1/webhooks", {
      url: "https://hooks.example.test/hooks/crud",
      event_types: ["balance.low", "usage.spike"],
    });
    expect(created.status).toBe(201);
    expect(created.json.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const list = await call("GET", "/v1/webhooks");
    const listed = list.json.webhooks.find((w: any) => w.id === created.json.id);
    expect(listed).toMatchObject({
      url: "https://hooks.example.test/hooks/crud",
      event_types: ["balance.low", "usage.spike"],
    });
    expect(listed.secret).toBeUndefined();

    expect((await call("POST", "/v1/webhooks", { url: "ftp://x", event_types: ["balance.low"] })).status).toBe(400);
    expect((await call("POST", "/v1/webhooks", { url: "https://x.test", event_types: ["nope"] })).status).toBe(400);
    expect(
      (await call("POST", "/v1/webhooks", { url: "https://x.test", event_types: ["balance.low"], secret: "hunter2" }))
        .status,
    ).toBe(400);
    const viewer = await call("POST", "/v1/api-keys", { name: "v", role: "viewer" });
    expect((await call("GET", "/v1/webhooks", undefined, { token: viewer.json.key })).status).toBe(403);
    expect((await call("GET", "/v1/alerts", undefined, { token: viewer.json.key })).status).toBe(200);

    const deleted = await call("DELETE", `/v1/webhooks/${created.json.id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.json.deleted_at).not.toBeNull();
    expect((await call("GET", "/v1/webhooks")).json.webhooks.some((w: any) => w.id === created.json.id)).toBe(false);
    expect((await call("DELETE", "/v1/webhooks/wh_missing")).status).toBe(404);
  });
});

describe("webhook delivery", () => {
  it("signs every attempt, retries a failing receiver with backoff, then succeeds; every attempt is logged", async () => {
    const token = uid("hook");
    const secret = `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
    const hook = await call("POST", "/v1/webhooks", {
      url: `https://hooks.example.test/hooks/${token}?fail=2`,
      event_types: ["balance.low"],
      secret,
    });
    expect(hook.status).toBe(201);
    const alert = syntheticAlert(uid());
    expect(await recordAlerts(env.DB, [alert])).toEqual([alert.id]);
    const { queue, sent } = recordingQueue();
    expect(await dispatchAlerts(env.DB, queue, { ids: [alert.id] })).toEqual({ alerts: 1, deliveries: 1 });
    // Dispatching again finds the alert already dispatched.
    expect(await dispatchAlerts(env.DB, queue, { ids: [alert.id] })).toEqual({ alerts: 0, deliveries: 0 });
    expect(sent).toHaveLength(1);
    const message = sent[0]!;

    const first = await consume(message, 1);
    expect(first.retryMessages.map((m) => m.msgId)).toEqual([`m-${message.delivery_id}-1`]);
    expect(first.delays).toEqual([10]);
    const second = await consume(message, 2);
    expect(second.retryMessages.map((m) => m.msgId)).toEqual([`m-${message.delivery_id}-2`]);
    expect(second.delays).toEqual([30]);
    const third = await consume(message, 3);
    expect(third.retryMessages).toEqual([]);
    expect(third.explicitAcks).toEqual([`m-${message.delivery_id}-3`]);
    // A duplicate message after success delivers nothing more.
    const dup = await consume(message, 1);
    expect(dup.explicitAcks).toHaveLength(1);

    const received = await receiverLog(token);
    expect(received.map((r) => r.status)).toEqual([500, 500, 204]);
    for (const r of received) {
      expect(r.headers["webhook-id"]).toBe(message.delivery_id);
      expect(r.headers["content-type"]).toBe("application/json");
      expect(Math.abs(Number(r.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(300);
      expect(await verifySignature(secret, r.headers, r.body)).toBe(true);
      // A different secret or a changed body does not verify.
      expect(await verifySignature(`whsec_${btoa("x".repeat(32))}`, r.headers, r.body)).toBe(false);
      expect(await verifySignature(secret, r.headers, `${r.body} `)).toBe(false);
      expect(JSON.parse(r.body)).toEqual({
        type: "balance.low",
        timestamp: alert.created_at,
        data: { alert_id: alert.id, account_id: alert.account_id, unit: "credits", available: 5, threshold: 10 },
      });
    }

    const deliveries = await call("GET", `/v1/webhooks/${hook.json.id}/deliveries`);
    expect(deliveries.status).toBe(200);
    expect(deliveries.json.deliveries).toHaveLength(1);
    const d = deliveries.json.deliveries[0];
    expect(d).toMatchObject({ id: message.delivery_id, alert_id: alert.id, status: "delivered", attempts: 3 });
    expect(d.attempt_log.map((x: any) => [x.attempt, x.status_code])).toEqual([
      [1, 500],
      [2, 500],
      [3, 204],
    ]);
    await call("DELETE", `/v1/webhooks/${hook.json.id}`);
  });

  it("gives up after the last attempt and records it", async () => {
    const token = uid("hook");
    const hook = await call("POST", "/v1/webhooks", {
      url: `https://hooks.example.test/hooks/${token}?fail=99`,
      event_types: ["usage.spike"],
    });
    const alert = { ...syntheticAlert(uid()), type: "usage.spike" as const };
    await recordAlerts(env.DB, [alert]);
    const { queue, sent } = recordingQueue();
    await dispatchAlerts(env.DB, queue, { ids: [alert.id] });
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 8; attempt++) {
      const result = await consume(sent[0]!, attempt);
      expect(result.retryMessages).toHaveLength(attempt < 8 ? 1 : 0);
      delays.push(...result.delays);
    }
    expect(delays).toEqual([10, 30, 90, 270, 810, 2430, 3600]);
    const d = (await call("GET", `/v1/webhooks/${hook.json.id}/deliveries`)).json.deliveries[0];
    expect(d).toMatchObject({ status: "failed", attempts: 8, last_status_code: 500 });
    expect(await receiverLog(token)).toHaveLength(8);
    await call("DELETE", `/v1/webhooks/${hook.json.id}`);
  });

  it("a deleted endpoint gets nothing more", async () => {
    const token = uid("hook");
    const hook = await call("POST", "/v1/webhooks", {
      url: `https://hooks.example.test/hooks/${token}`,
      event_types: ["credits.expired"],
    });
    const alert = { ...syntheticAlert(uid()), type: "credits.expired" as const };
    await recordAlerts(env.DB, [alert]);
    const { queue, sent } = recordingQueue();
    await dispatchAlerts(env.DB, queue, { ids: [alert.id] });
    await call("DELETE", `/v1/webhooks/${hook.json.id}`);
    const result = await consume(sent[0]!, 1);
    expect(result.explicitAcks).toHaveLength(1);
    expect(await receiverLog(token)).toEqual([]);
    const d = (await call("GET", `/v1/webhooks/${hook.json.id}/deliveries`)).json.deliveries[0];
    expect(d.status).toBe("cancelled");
  });

  it("an alert raised by a Durable Object is fanned out as soon as its outbox ships", async () => {
    const hook = await call("POST", "/v1/webhooks", {
      url: `https://hooks.example.test/hooks/${uid("hook")}`,
      event_types: ["balance.low"],
    });
    const a = uid();
    await grant(a, { amount: 100 });
    await call("PUT", `/v1/accounts/${a}`, { low_balance: { credits: 50 } });
    expect((await debit(a, 60)).status).toBe(200);
    await drain(a);
    const row = await env.DB.prepare(
      `SELECT a.id, a.dispatched_at_ms, d.id AS delivery_id FROM alerts a
       JOIN webhook_deliveries d ON d.alert_id = a.id WHERE a.account_id = ? AND d.webhook_id = ?`,
    )
      .bind(a, hook.json.id)
      .first<{ id: string; dispatched_at_ms: number | null; delivery_id: string }>();
    expect(row?.dispatched_at_ms).not.toBeNull();
    expect(row?.delivery_id).toMatch(/^msg_[0-9a-f]{32}$/);
    await call("DELETE", `/v1/webhooks/${hook.json.id}`);
  });

  it("an alert dispatched at once and by the backstop is queued once", async () => {
    const hook = await call("POST", "/v1/webhooks", {
      url: `https://hooks.example.test/hooks/${uid("hook")}`,
      event_types: ["balance.low"],
    });
    const alert = syntheticAlert(uid());
    await recordAlerts(env.DB, [alert]);
    // Recorded a while ago, so the backstop's grace period is over.
    await env.DB.prepare("UPDATE alerts SET recorded_at_ms = ? WHERE id = ?")
      .bind(Date.now() - 10 * 60_000, alert.id)
      .run();
    const immediate = recordingQueue();
    const backstop = recordingQueue();
    // Both select the alert while it is still undispatched (the immediate dispatch has not marked it yet).
    expect(await dispatchAlerts(env.DB, immediate.queue, { ids: [alert.id] })).toEqual({ alerts: 1, deliveries: 1 });
    await env.DB.prepare("UPDATE alerts SET dispatched_at_ms = NULL WHERE id = ?").bind(alert.id).run();
    const late = await dispatchAlerts(env.DB, backstop.queue, { recordedBeforeMs: Date.now() - 60_000, limit: 200 });
    expect(late.alerts).toBeGreaterThanOrEqual(1);
    expect(immediate.sent).toHaveLength(1);
    expect(backstop.sent.filter((m) => m.delivery_id === immediate.sent[0]!.delivery_id)).toEqual([]);
    await call("DELETE", `/v1/webhooks/${hook.json.id}`);
  });

  it("the backstop re-queues a delivery whose dispatch stopped before queueing it", async () => {
    const hook = await call("POST", "/v1/webhooks", {
      url: `https://hooks.example.test/hooks/${uid("hook")}`,
      event_types: ["balance.low"],
    });
    const alert = syntheticAlert(uid());
    await recordAlerts(env.DB, [alert]);
    const crashed = recordingQueue();
    crashed.queue.sendBatch = async () => {
      throw new Error("queue unavailable");
    };
    await expect(dispatchAlerts(env.DB, crashed.queue, { ids: [alert.id] })).rejects.toThrow("queue unavailable");
    // The delivery row exists, unsent and the alert unmarked; minutes later the backstop finds both.
    const old = Date.now() - 10 * 60_000;
    await env.DB.prepare("UPDATE alerts SET recorded_at_ms = ? WHERE id = ?").bind(old, alert.id).run();
    await env.DB.prepare("UPDATE webhook_deliveries SET created_at_ms = ? WHERE alert_id = ?")
      .bind(old, alert.id)
      .run();
    const backstop = recordingQueue();
    await dispatchAlerts(env.DB, backstop.queue, { recordedBeforeMs: Date.now() - 60_000, limit: 200 });
    const row = await env.DB.prepare(
      "SELECT d.id, a.dispatched_at_ms FROM webhook_deliveries d JOIN alerts a ON a.id = d.alert_id WHERE a.id = ?",
    )
      .bind(alert.id)
      .first<{ id: string; dispatched_at_ms: number | null }>();
    expect(backstop.sent.filter((m) => m.delivery_id === row!.id)).toHaveLength(1);
    expect(row!.dispatched_at_ms).not.toBeNull();
    await call("DELETE", `/v1/webhooks/${hook.json.id}`);
  });
});
