/**
 * Events a CRM can follow: a webhook subscribed to `grant.issued` receives,
 * for every `grant` entry, the account, grant_id, unit, amount, credit_type,
 * source, campaign and the campaign variant (the lot's metadata.variant), so
 * a redemption can be matched with a later conversion without polling.
 *
 * Real parts: the grant goes through the API into the account's Durable
 * Object, which raises the alert in the same transaction as the entry; the
 * outbox ships it to D1 (drained here), the dispatch creates the delivery,
 * and the Worker's real queue handler POSTs it to test/support/webhook-receiver.js
 * (vitest.config.ts routes outbound HTTP there). The queue message is handed
 * to the handler here so the test does not wait for the queue's batch timer;
 * should the real queue deliver first, the handler skips the delivered row.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { ledgerDb } from "../../src/db/shards";
import worker from "../../src/index";
import { type DeliveryMessage, dispatchAlerts } from "../../src/webhooks/dispatch";
import { call, debit, grant, uid } from "./helpers";
import { alertsFor, drain } from "./jobs-helpers";
import { interceptBatch, shipTo } from "./outbox-helpers";

const QUEUE = "credit-gate-webhooks";
const hooks: string[] = [];

async function subscribe(eventTypes: string[]): Promise<{ id: string; token: string }> {
  const token = uid("crm");
  const res = await call("POST", "/v1/webhooks", {
    url: `https://hooks.example.test/hooks/${token}`,
    event_types: eventTypes,
  });
  expect(res.status, res.text).toBe(201);
  hooks.push(res.json.id);
  return { id: res.json.id, token };
}

/**
 * The real queue also carries every delivery the Durable Objects dispatched
 * and hands it to the consumer after its batch timeout (wrangler.toml
 * max_batch_timeout = 1 s); the consumer finds it delivered, skips it and
 * logs its batch. Waiting that long once, at the end, lets that log land
 * before the test environment closes (else vitest reports a teardown error).
 */
const QUEUE_SETTLE_MS = 2_000;

afterAll(async () => {
  await new Promise((r) => setTimeout(r, QUEUE_SETTLE_MS));
  for (const id of hooks) await call("DELETE", `/v1/webhooks/${id}`);
});

/** The deliveries D1 holds for this webhook, of alerts on this account. */
async function deliveriesOf(webhookId: string, accountId: string) {
  const { results } = await env.DB.prepare(
    `SELECT d.id, a.type, a.data FROM webhook_deliveries d JOIN alerts a ON a.id = d.alert_id
     WHERE d.webhook_id = ? AND a.account_id = ? ORDER BY a.created_at_ms, a.id`,
  )
    .bind(webhookId, accountId)
    .all<{ id: string; type: string; data: string }>();
  return results;
}

/** Runs the Worker's queue handler on the deliveries, as the queue would. */
async function deliver(deliveryIds: readonly string[]): Promise<void> {
  const batch = createMessageBatch<DeliveryMessage>(
    QUEUE,
    deliveryIds.map((id, i) => ({ id: `m-${id}-${i}`, timestamp: new Date(), attempts: 1, body: { delivery_id: id } })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, env, ctx);
  await getQueueResult(batch, ctx);
}

async function received(token: string) {
  const res = await env.WEBHOOK_RECEIVER.fetch(`http://receiver/__log/${token}`);
  return (await res.json()) as { headers: Record<string, string>; body: string; status: number }[];
}

describe("grant.issued, for a CRM", () => {
  it("a campaign lot's grant.issued reaches the receiver with account, grant, amount, type, campaign and variant", async () => {
    const hook = await subscribe(["grant.issued"]);
    const a = uid("crm-acct");
    const campaign = uid("spring");
    const issued = await grant(a, {
      grant_id: `campaign.${campaign}`,
      type: "promotional",
      amount: 500,
      source: "campaign",
      campaign,
      metadata: { variant: "trial_7d", code: "SPRING-1" },
    });
    await drain(a);

    const rows = await deliveriesOf(hook.id, a);
    expect(rows.map((r) => r.type)).toEqual(["grant.issued"]);
    await deliver(rows.map((r) => r.id));

    const got = await received(hook.token);
    expect(got.length).toBeGreaterThanOrEqual(1);
    for (const r of got) {
      expect(r.status).toBe(204);
      expect(r.headers["webhook-id"]).toBe(rows[0]?.id);
      const body = JSON.parse(r.body);
      expect(body).toEqual({
        type: "grant.issued",
        timestamp: issued.grant.created_at,
        data: {
          alert_id: expect.any(String),
          account_id: a,
          unit: "credits",
          grant_id: `campaign.${campaign}`,
          amount: 500,
          credit_type: "promotional",
          source: "campaign",
          campaign,
          variant: "trial_7d",
        },
      });
    }
    const served = await call("GET", `/v1/webhooks/${hook.id}/deliveries`);
    expect(served.json.deliveries.map((d: any) => d.status)).toEqual(["delivered"]);
  });

  it("a purchase without a campaign: campaign, source and variant are null; a later grant is its own event", async () => {
    const hook = await subscribe(["grant.issued"]);
    const a = uid("crm-buyer");
    await grant(a, {
      grant_id: "buy-1",
      type: "purchased",
      amount: 1200,
      cost_basis: { amount: 999, currency: "USD" },
    });
    await grant(a, { grant_id: "buy-2", type: "purchased", amount: 30, unit: "tokens" });
    await drain(a);
    const rows = await deliveriesOf(hook.id, a);
    expect(rows.map((r) => JSON.parse(r.data))).toEqual([
      {
        grant_id: "buy-1",
        unit: "credits",
        amount: 1200,
        credit_type: "purchased",
        source: null,
        campaign: null,
        variant: null,
      },
      {
        grant_id: "buy-2",
        unit: "tokens",
        amount: 30,
        credit_type: "purchased",
        source: null,
        campaign: null,
        variant: null,
      },
    ]);
    await deliver(rows.map((r) => r.id));
    const bodies = (await received(hook.token)).map((r) => JSON.parse(r.body).data.grant_id);
    expect([...new Set(bodies)].sort()).toEqual(["buy-1", "buy-2"]);
  });

  it("a webhook not subscribed to grant.issued gets no delivery for a grant; a repeated grant raises nothing new", async () => {
    const other = await subscribe(["balance.low"]);
    const issuedHook = await subscribe(["grant.issued"]);
    const a = uid("crm-quiet");
    const body = { grant_id: "g-once", type: "promotional", amount: 10, campaign: "c1", metadata: { variant: "v1" } };
    expect((await call("POST", `/v1/accounts/${a}/grants`, body)).status).toBe(201);
    const replay = await call("POST", `/v1/accounts/${a}/grants`, body);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    await drain(a);
    expect(await deliveriesOf(other.id, a)).toEqual([]);
    expect((await deliveriesOf(issuedHook.id, a)).map((r) => JSON.parse(r.data).variant)).toEqual(["v1"]);
  });
});

describe("grant.redeemed and grant.activated, for a CRM", () => {
  it("a redemption through POST /v1/redemptions: grant.redeemed and grant.issued name the same campaign, variant and account", async () => {
    const hook = await subscribe(["grant.issued", "grant.redeemed"]);
    const campaignId = uid("crm-cmp");
    const put = await call("PUT", `/v1/campaigns/${campaignId}`, {
      name: "CRM follow-up",
      grant: { amount: 1000, type: "promotional" },
      variants: [
        { variant: "signup_1000", weight: 1, grant: { amount: 1000, type: "promotional" } },
        { variant: "trial_7d", weight: 1, grant: { amount: 500, type: "promotional", expires_in_days: 7 } },
      ],
    });
    expect(put.status, put.text).toBeLessThan(300);
    const codes = await call("POST", `/v1/campaigns/${campaignId}/codes`, { count: 1 });
    expect(codes.status, codes.text).toBeLessThan(300);
    const a = uid("crm-redeemer");
    await call("PUT", `/v1/accounts/${a}`, { name: "redeemer" });
    const redeemed = await call("POST", "/v1/redemptions", { code: codes.json.codes[0], account_id: a });
    expect(redeemed.status, redeemed.text).toBe(201);
    const { variant } = redeemed.json;
    const amount = variant === "trial_7d" ? 500 : 1000;
    await drain(a);

    const rows = await deliveriesOf(hook.id, a);
    expect(rows.map((r) => r.type).sort()).toEqual(["grant.issued", "grant.redeemed"]);
    await deliver(rows.map((r) => r.id));
    const bodies = new Map((await received(hook.token)).map((r) => [JSON.parse(r.body).type, JSON.parse(r.body).data]));
    expect(bodies.get("grant.redeemed")).toEqual({
      alert_id: expect.any(String),
      account_id: a,
      unit: "credits",
      campaign_id: campaignId,
      variant,
      code_kind: "single_use",
      grant_id: `campaign.${campaignId}`,
      amount,
      referrer_account_id: null,
    });
    expect(bodies.get("grant.issued")).toEqual({
      alert_id: expect.any(String),
      account_id: a,
      unit: "credits",
      grant_id: `campaign.${campaignId}`,
      amount,
      credit_type: "promotional",
      source: "campaign",
      campaign: campaignId,
      variant,
    });
  });

  it("activating a grant awaiting payment: grant.activated, then the lot's grant.issued; nothing while it waits", async () => {
    const hook = await subscribe(["grant.issued", "grant.activated"]);
    const a = uid("crm-payer");
    const body = { grant_id: "pack-9", type: "purchased", amount: 2500, awaiting_payment: true };
    expect((await call("POST", `/v1/accounts/${a}/grants`, body)).status).toBe(201);
    await drain(a);
    expect(await deliveriesOf(hook.id, a)).toEqual([]);
    const activated = await call("POST", `/v1/accounts/${a}/grants/pack-9/activate`, { payment_ref: "pay-77" });
    expect(activated.status, activated.text).toBe(200);
    await drain(a);
    const rows = await deliveriesOf(hook.id, a);
    expect(rows.map((r) => [r.type, JSON.parse(r.data).grant_id]).sort()).toEqual([
      ["grant.activated", "pack-9"],
      ["grant.issued", "pack-9"],
    ]);
    await deliver(rows.map((r) => r.id));
    const activation = (await received(hook.token))
      .map((r) => JSON.parse(r.body))
      .find((b) => b.type === "grant.activated");
    expect(activation.data).toMatchObject({
      account_id: a,
      grant_id: "pack-9",
      amount: 2500,
      credit_type: "purchased",
      payment_ref: "pay-77",
    });
  });
  it("a top-up: topup.requested names the awaiting grant, the amount and the threshold", async () => {
    const hook = await subscribe(["topup.requested"]);
    const a = uid("crm-topup");
    await grant(a, { grant_id: "seed", type: "purchased", amount: 1000 });
    const rule = await call("PUT", `/v1/accounts/${a}/top-up`, {
      below: 200,
      amount: 1000,
      grant: { type: "purchased", cost_basis: { amount: 900, currency: "USD" } },
    });
    expect(rule.status, rule.text).toBeLessThan(300);
    expect((await debit(a, 850)).status).toBe(200);
    await drain(a);
    const rows = await deliveriesOf(hook.id, a);
    expect(rows.map((r) => r.type)).toEqual(["topup.requested"]);
    await deliver(rows.map((r) => r.id));
    const got = (await received(hook.token)).map((r) => JSON.parse(r.body));
    expect(got[0]).toMatchObject({
      type: "topup.requested",
      data: {
        account_id: a,
        unit: "credits",
        grant_id: "topup.1",
        amount: 1000,
        available: 150, // 1 000 − 850
        below: 200,
        cost_basis_amount: 900,
        cost_basis_currency: "USD",
      },
    });
  });
});

describe("what raises no grant.issued, and what is raised once", () => {
  it("a transfer (transfer.out on one account, transfer.in on the other) raises no grant.issued on either", async () => {
    const hook = await subscribe(["grant.issued"]);
    const [from, to] = [uid("crm-from"), uid("crm-to")];
    for (const a of [from, to]) expect((await call("PUT", `/v1/accounts/${a}`, { name: a })).status).toBe(201);
    await grant(from, { grant_id: "bought", type: "purchased", amount: 1000, campaign: "c-transfer" });
    await drain(from);
    const before = await deliveriesOf(hook.id, from);
    expect(before.map((r) => [r.type, JSON.parse(r.data).grant_id])).toEqual([["grant.issued", "bought"]]);
    const moved = await call("POST", "/v1/transfers", {
      transfer_id: uid("tr"),
      from_account: from,
      to_account: to,
      amount: 400,
    });
    expect(moved.status, moved.text).toBe(201);
    expect(moved.json.status).toBe("completed");
    for (const a of [from, to]) await drain(a);
    // The receiving account holds the credits, in a lot of its own, written as transfer.in.
    const lots = (await call("GET", `/v1/accounts/${to}/grants`)).json.grants;
    expect(lots.map((g: any) => g.amount)).toEqual([400]);
    const kinds = (await call("GET", `/v1/accounts/${to}/ledger?limit=10`)).json.entries.map((e: any) => e.kind);
    expect(kinds).toEqual(["transfer.in"]);
    // Still the one grant.issued of the purchase; nothing on the receiving account, in D1 or at the webhook.
    expect((await deliveriesOf(hook.id, from)).map((r) => r.id)).toEqual(before.map((r) => r.id));
    expect(await deliveriesOf(hook.id, to)).toEqual([]);
    expect((await alertsFor(from, "grant.issued")).length).toBe(1);
    expect(await alertsFor(to, "grant.issued")).toEqual([]);
  });

  it("an outbox row shipped twice, dispatched twice and queued twice: one alert, one delivery, one POST", async () => {
    const hook = await subscribe(["grant.issued"]);
    const a = uid("crm-reship");
    // Every shipment of this account goes to D1 twice, as when D1 committed but its answer was lost
    // and the same outbox rows are sent again.
    let batches = 0;
    await shipTo(a, (real) =>
      interceptBatch(real, async (statements, batch) => {
        batches += 1;
        const first = await batch(statements);
        await batch(statements);
        return first;
      }),
    );
    await grant(a, { grant_id: "twice", type: "purchased", amount: 700 });
    await drain(a);
    await drain(a);
    await shipTo(a, (real) => real);
    expect(batches).toBeGreaterThanOrEqual(1);

    // One alert, its id derived from the DO transaction: alert_<txn>.<i>.
    const alerts = await alertsFor(a, "grant.issued");
    expect(alerts).toHaveLength(1);
    const alert = alerts[0] as (typeof alerts)[number];
    expect(alert.id).toMatch(/^alert_txn_[0-9a-f-]{36}\.0$/);
    const { txn } = (await ledgerDb(env, a)
      .prepare("SELECT txn_id AS txn FROM ledger_entries WHERE account_id = ?")
      .bind(a)
      .first<{ txn: string }>()) ?? { txn: "" };
    expect(alert.id).toBe(`alert_${txn}.0`);
    expect(
      (
        await ledgerDb(env, a)
          .prepare("SELECT COUNT(*) AS n FROM ledger_entries WHERE account_id = ?")
          .bind(a)
          .first<{ n: number }>()
      )?.n,
    ).toBe(1);
    // And one journal row (what the reports read), not two.
    expect(
      (await env.DB.prepare("SELECT COUNT(*) AS n FROM journal WHERE account_id = ?").bind(a).first<{ n: number }>())
        ?.n,
    ).toBe(1);

    // The dispatch runs again for the same alert (a crash before it marked the alert dispatched):
    // the delivery row exists, nothing new is created or queued.
    await env.DB.prepare("UPDATE alerts SET dispatched_at_ms = NULL WHERE id = ?").bind(alert.id).run();
    expect(await dispatchAlerts(env.DB, env.WEBHOOK_QUEUE, { ids: [alert.id] })).toEqual({
      alerts: 1,
      deliveries: 0,
    });
    const rows = await deliveriesOf(hook.id, a);
    expect(rows.map((r) => r.type)).toEqual(["grant.issued"]);

    // The queue hands the same delivery over twice: the second finds it delivered.
    await deliver(rows.map((r) => r.id));
    await deliver(rows.map((r) => r.id));
    const got = await received(hook.token);
    expect(new Set(got.map((r) => r.headers["webhook-id"]))).toEqual(new Set([rows[0]?.id]));
    expect(got.map((r) => JSON.parse(r.body).data.alert_id)).toEqual(got.map(() => alert.id));
    const served = await call("GET", `/v1/webhooks/${hook.id}/deliveries`);
    expect(served.json.deliveries.map((d: any) => [d.alert_id, d.status])).toEqual([[alert.id, "delivered"]]);
  });
});
