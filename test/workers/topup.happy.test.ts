/**
 * Automatic top-up: the operation that leaves `available` below the rule's
 * threshold creates, in its own Durable Object transaction, one grant
 * awaiting payment (`topup.<n>`) and a topup.requested alert; one
 * outstanding at a time; never more than max_per_month a UTC month
 * (cancelled requests do not count). The alert reaches a webhook receiver
 * through the real queue consumer. Real DO SQLite and local D1; no sleeping.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import type { DeliveryMessage } from "../../src/webhooks/dispatch";
import { call, debit, grant, ledgerEntries, uid } from "./helpers";
import { alertsFor, drain, setDoClock } from "./jobs-helpers";

const awaitingIds = async (a: string) =>
  (await call("GET", `/v1/accounts/${a}/grants?status=awaiting_payment`)).json.grants.map((g: any) => g.grant_id);

const putRule = (a: string, body: Record<string, unknown>) => call("PUT", `/v1/accounts/${a}/top-up`, body);

const activate = async (a: string, grantId: string) => {
  const res = await call("POST", `/v1/accounts/${a}/grants/${grantId}/activate`, { payment_ref: `pay-${grantId}` });
  expect(res.status).toBe(200);
  return res;
};

describe("automatic top-up", () => {
  it("64 concurrent debits crossing the threshold create exactly one awaiting topup.1; activation, then topup.2", async () => {
    const a = uid();
    await grant(a, { amount: 1000 });
    const rule = await putRule(a, {
      below: 500,
      amount: 300,
      grant: { type: "purchased", cost_basis: { amount: 3000, currency: "USD" }, expires_in_days: 30 },
    });
    expect(rule.status).toBe(200);
    expect(rule.json).toMatchObject({
      unit: "credits",
      below: 500,
      amount: 300,
      max_per_month: null,
      outstanding: null,
    });
    const results = await Promise.all(Array.from({ length: 64 }, () => debit(a, 10)));
    expect(results.map((r) => r.status)).toEqual(Array(64).fill(200));
    // 1000 − 64·10 = 360 < 500: one request, however many debits left it below.
    expect(await awaitingIds(a)).toEqual(["topup.1"]);
    const bal = await call("GET", `/v1/accounts/${a}/balance`);
    expect(bal.json).toMatchObject({ available: 360 });
    expect(bal.json.awaiting_payment).toEqual([
      { grant_id: "topup.1", amount: 300, type: "purchased", created_at: expect.any(String), topup: true },
    ]);
    const got = await call("GET", `/v1/accounts/${a}/top-up`);
    expect(got.json).toMatchObject({ outstanding: "topup.1", requested_this_month: 300 });
    await drain(a);
    const requested = await alertsFor(a, "topup.requested");
    expect(requested).toHaveLength(1);
    // The first debit that left available below 500: 1000 − 51·10 = 490.
    expect(requested[0]?.data).toMatchObject({
      grant_id: "topup.1",
      unit: "credits",
      amount: 300,
      available: 490,
      below: 500,
      month_total: 300,
      cost_basis_amount: 3000,
      cost_basis_currency: "USD",
    });

    // Activation: spendable now (360 + 300), expiring 30 days after activation.
    const activated = await activate(a, "topup.1");
    expect(activated.json.grant).toMatchObject({ grant_id: "topup.1", status: "active", topup: true, remaining: 300 });
    const expiresIn = Date.parse(activated.json.grant.expires_at) - Date.parse(activated.json.grant.effective_at);
    expect(expiresIn).toBe(30 * 86_400_000);
    expect(activated.json.balance.available).toBe(660);
    expect(await awaitingIds(a)).toEqual([]);
    // 660 − 200 = 460 < 500: the next crossing asks again.
    expect((await debit(a, 200)).status).toBe(200);
    expect(await awaitingIds(a)).toEqual(["topup.2"]);
    const entries = await ledgerEntries(a);
    expect(entries.filter((e) => e.kind === "grant").map((e) => e.grant_id)).toEqual([expect.any(String), "topup.1"]);
    await drain(a);
    const activatedAlerts = await alertsFor(a, "grant.activated");
    expect(activatedAlerts.map((x) => x.data)).toEqual([
      expect.objectContaining({ grant_id: "topup.1", amount: 300, topup: true, payment_ref: "pay-topup.1" }),
    ]);
  });

  it("the monthly cap holds across many crossings, within a month and across its boundary; cancelled ones do not count", async () => {
    const a = uid();
    await grant(a, { amount: 150 });
    const jan10 = Date.UTC(2031, 0, 10, 12);
    await setDoClock(a, jan10);
    expect((await putRule(a, { below: 100, amount: 100, max_per_month: 250 })).status).toBe(200);
    // Set while above: nothing yet. 150 − 60 = 90 < 100: topup.1 (January: 100).
    expect(await awaitingIds(a)).toEqual([]);
    expect((await debit(a, 60)).status).toBe(200);
    expect(await awaitingIds(a)).toEqual(["topup.1"]);
    await activate(a, "topup.1"); // 190
    expect((await debit(a, 100)).status).toBe(200); // 90: topup.2 (January: 200)
    expect(await awaitingIds(a)).toEqual(["topup.2"]);
    await activate(a, "topup.2"); // 190
    // Many crossings in January: a third request would make 300 > 250, so none is made.
    for (let i = 0; i < 20; i++) {
      await setDoClock(a, jan10 + (i + 1) * 86_400_000);
      expect((await debit(a, 100)).status).toBe(200);
      expect((await grant(a, { amount: 100 })).grant.grant_id).toBeTruthy();
    }
    await setDoClock(a, Date.UTC(2031, 0, 31, 23, 59));
    expect((await debit(a, 100)).status).toBe(200); // 90, the last minute of January
    expect(await awaitingIds(a)).toEqual([]);
    expect((await call("GET", `/v1/accounts/${a}/top-up`)).json).toMatchObject({
      requested_this_month: 200,
      outstanding: null,
    });

    // February: a fresh month. The next operation below the threshold asks (February: 100).
    await setDoClock(a, Date.UTC(2031, 1, 1));
    expect((await debit(a, 1)).status).toBe(200); // 89
    expect(await awaitingIds(a)).toEqual(["topup.3"]);
    // Cancelled (the card was declined): it no longer counts, so the next operation asks again.
    expect((await call("POST", `/v1/accounts/${a}/grants/topup.3/cancel`, { reason: "declined" })).status).toBe(200);
    expect((await call("GET", `/v1/accounts/${a}/top-up`)).json.requested_this_month).toBe(0);
    expect((await debit(a, 1)).status).toBe(200); // 88
    expect(await awaitingIds(a)).toEqual(["topup.4"]);
    await activate(a, "topup.4"); // 188
    expect((await debit(a, 100)).status).toBe(200); // 88: topup.5 (February: 200)
    await activate(a, "topup.5"); // 188
    for (let i = 0; i < 10; i++) expect((await debit(a, 10)).status).toBe(200); // 88, no third one
    expect(await awaitingIds(a)).toEqual([]);

    await drain(a);
    const requested = (await alertsFor(a, "topup.requested")).map((x) => [x.data.grant_id, x.data.month_total]);
    expect(requested).toEqual([
      ["topup.1", 100],
      ["topup.2", 200],
      ["topup.3", 100],
      ["topup.4", 100],
      ["topup.5", 200],
    ]);
    // Per calendar month, what was requested and not cancelled stays within the cap.
    const grants = (await ledgerEntries(a)).filter((e) => e.kind === "grant" && e.grant_id.startsWith("topup."));
    const perMonth = new Map<string, number>();
    for (const e of grants) {
      const m = e.effective_at.slice(0, 7);
      perMonth.set(m, (perMonth.get(m) ?? 0) + e.amount);
    }
    expect(Object.fromEntries(perMonth)).toEqual({ "2031-01": 200, "2031-02": 200 });
  });

  it("the topup.requested alert is delivered by webhook to a receiver, then the payment system activates it", async () => {
    const token = uid("hook");
    const hook = await call("POST", "/v1/webhooks", {
      url: `https://hooks.example.test/hooks/${token}`,
      event_types: ["topup.requested"],
    });
    expect(hook.status).toBe(201);
    const a = uid();
    await grant(a, { amount: 100 });
    expect((await putRule(a, { below: 50, amount: 500 })).status).toBe(200);
    expect((await debit(a, 60)).status).toBe(200);
    await drain(a);
    const row = await env.DB.prepare(
      `SELECT d.id AS delivery_id FROM webhook_deliveries d JOIN alerts al ON al.id = d.alert_id
       WHERE al.account_id = ? AND al.type = 'topup.requested' AND d.webhook_id = ?`,
    )
      .bind(a, hook.json.id)
      .first<{ delivery_id: string }>();
    expect(row?.delivery_id).toMatch(/^msg_/);
    // The Worker's real queue consumer delivers it (signed) to the receiver.
    const body: DeliveryMessage = { delivery_id: row?.delivery_id as string };
    const batch = createMessageBatch<DeliveryMessage>("credit-gate-webhooks", [
      { id: `m-${body.delivery_id}`, timestamp: new Date(), attempts: 1, body },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch<unknown>, env, ctx);
    await getQueueResult(batch, ctx);
    const log = (await (await env.WEBHOOK_RECEIVER.fetch(`http://receiver/__log/${token}`)).json()) as {
      body: string;
      status: number;
    }[];
    const received = log.map((r) => JSON.parse(r.body)).filter((b) => b.data.account_id === a);
    expect(received.length).toBeGreaterThanOrEqual(1);
    expect(received[0]).toMatchObject({
      type: "topup.requested",
      data: { account_id: a, grant_id: "topup.1", unit: "credits", amount: 500, available: 40, below: 50 },
    });
    // The payment system pays and activates.
    const activated = await activate(a, received[0].data.grant_id);
    expect(activated.json.balance.available).toBe(540);
    await call("DELETE", `/v1/webhooks/${hook.json.id}`);
  });

  it("a rule per unit: a change in another unit asks nothing; DELETE stops requests and keeps the outstanding one", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await grant(a, { amount: 100, unit: "tokens" });
    expect((await putRule(a, { unit: "tokens", below: 50, amount: 10 })).status).toBe(200);
    expect((await debit(a, 90)).status).toBe(200); // credits only
    expect(await awaitingIds(a)).toEqual([]);
    expect((await debit(a, 60, { unit: "tokens" })).status).toBe(200);
    const listed = (await call("GET", `/v1/accounts/${a}/grants?status=awaiting_payment`)).json.grants;
    expect(listed.map((g: any) => [g.grant_id, g.unit, g.amount])).toEqual([["topup.1", "tokens", 10]]);
    const removed = await call("DELETE", `/v1/accounts/${a}/top-up?unit=tokens`);
    expect(removed.status).toBe(200);
    expect(removed.json).toMatchObject({ unit: "tokens", deleted: true, outstanding: "topup.1" });
    expect((await call("GET", `/v1/accounts/${a}/top-up?unit=tokens`)).status).toBe(404);
    await activate(a, "topup.1");
    expect((await debit(a, 45, { unit: "tokens" })).status).toBe(200);
    expect(await awaitingIds(a)).toEqual([]);
    const audit = await call("GET", `/v1/audit?target=${a}:tokens`);
    expect(audit.json.events.map((e: any) => e.action)).toEqual(["top_up.updated", "top_up.deleted"]);
  });
});
