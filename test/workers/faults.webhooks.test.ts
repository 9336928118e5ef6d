/**
 * A webhook receiver that fails, then hangs, then fails again, then
 * recovers: the real queue consumer retries with backoff (10 s, 30 s, 90 s),
 * records every attempt, and delivers exactly once; a redelivered message
 * afterwards sends nothing. The first failure is the receiver's own
 * (test/support/webhook-receiver.js, `?fail=1`); the hang and the second
 * failure come from the plan's hook on the delivery fetch (src/faults.ts
 * webhookFetch): a hang lasts until the attempt's own timeout aborts it.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { recordAlerts } from "../../src/db/alerts";
import { faultCounters, setFaultPlan } from "../../src/faults";
import worker from "../../src/index";
import { ATTEMPT_TIMEOUT_MS } from "../../src/webhooks/deliver";
import { type DeliveryMessage, dispatchAlerts } from "../../src/webhooks/dispatch";
import { countFaults, printReliability, scenarioDone } from "./faults-helpers";
import { call, uid } from "./helpers";

afterEach(() => setFaultPlan({}));
afterAll(() => printReliability("webhooks"));

async function consume(body: DeliveryMessage, attempts: number) {
  const batch = createMessageBatch<DeliveryMessage>("credit-gate-webhooks", [
    { id: `m-${body.delivery_id}-${attempts}`, timestamp: new Date(), attempts, body },
  ]);
  const retry = vi.spyOn(batch.messages[0]!, "retry");
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, env, ctx);
  const result = (await getQueueResult(batch, ctx)) as { retryMessages: unknown[]; explicitAcks: string[] };
  return { retried: result.retryMessages.length, acked: result.explicitAcks.length, delays: retry.mock.calls };
}

describe("a webhook receiver that fails, then hangs", () => {
  it("is retried with backoff and delivered once when it recovers; nothing is lost", { timeout: 60_000 }, async () => {
    const token = uid("fhook");
    const hook = await call("POST", "/v1/webhooks", {
      url: `https://hooks.example.test/hooks/${token}?fail=1`,
      event_types: ["balance.low"],
      secret: `whsec_${btoa("k".repeat(32))}`,
    });
    expect(hook.status).toBe(201);
    const alert = {
      id: uid("alert"),
      type: "balance.low" as const,
      account_id: uid(),
      unit: "credits",
      data: { unit: "credits", available: 5, threshold: 10 },
      created_at: new Date().toISOString(),
    };
    expect(await recordAlerts(env.DB, [alert])).toEqual([alert.id]);
    const sent: DeliveryMessage[] = [];
    const queue = {
      send: async (b: DeliveryMessage) => void sent.push(b),
      sendBatch: async (ms: Iterable<MessageSendRequest<DeliveryMessage>>) => {
        for (const m of ms) sent.push(m.body);
      },
    } as unknown as Queue<DeliveryMessage>;
    await dispatchAlerts(env.DB, queue, { ids: [alert.id] });
    expect(sent).toHaveLength(1);
    const message = sent[0] as DeliveryMessage;
    const before = faultCounters();

    // 1: the receiver answers 500.
    expect(await consume(message, 1)).toMatchObject({ retried: 1, delays: [[{ delaySeconds: 10 }]] });
    countFaults(1);
    // 2: it hangs; the attempt's timeout gives up on it.
    setFaultPlan({ webhookHang: 1 });
    const started = Date.now();
    expect(await consume(message, 2)).toMatchObject({ retried: 1, delays: [[{ delaySeconds: 30 }]] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(ATTEMPT_TIMEOUT_MS - 50);
    // 3: 500 again, without reaching the receiver.
    setFaultPlan({ webhookFail: 1 });
    expect(await consume(message, 3)).toMatchObject({ retried: 1, delays: [[{ delaySeconds: 90 }]] });
    // 4: recovered: delivered and acknowledged.
    setFaultPlan({});
    expect(await consume(message, 4)).toMatchObject({ retried: 0, acked: 1 });
    // A redelivered message (the queue's at-least-once) sends nothing more.
    expect(await consume(message, 5)).toMatchObject({ retried: 0, acked: 1 });
    const after = faultCounters();
    expect(after.webhook_hang - before.webhook_hang).toBe(1);
    expect(after.webhook_fail - before.webhook_fail).toBe(1);

    const received = (await (await env.WEBHOOK_RECEIVER.fetch(`http://receiver/__log/${token}`)).json()) as {
      status: number;
      headers: Record<string, string>;
    }[];
    expect(received.map((r) => r.status)).toEqual([500, 204]);
    expect(received.every((r) => r.headers["webhook-id"] === message.delivery_id)).toBe(true);
    const d = (await call("GET", `/v1/webhooks/${hook.json.id}/deliveries`)).json.deliveries;
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ status: "delivered", attempts: 4, alert_id: alert.id });
    expect(d[0].attempt_log.map((x: any) => [x.attempt, x.status_code, x.error === null])).toEqual([
      [1, 500, false],
      [2, null, false],
      [3, 500, false],
      [4, 204, true],
    ]);
    expect(d[0].attempt_log[1].error).toMatch(/Timeout|abort/i);
    scenarioDone();
  });
});
