/**
 * Grants awaiting payment: recorded with no entry and never spendable, listed
 * in the balance; activation issues the lot (its grant entry dated at
 * activation) with a grant.activated alert; cancellation drops it; both
 * idempotent. Real DO SQLite and local D1.
 */
import { describe, expect, it } from "vitest";
import { call, debit, grant, ledgerEntries, uid } from "./helpers";
import { alertsFor, DAY, doNow, drain, setDoClock } from "./jobs-helpers";

const awaitingGrant = (a: string, body: Record<string, unknown>) =>
  call("POST", `/v1/accounts/${a}/grants`, { grant_id: uid("aw"), type: "purchased", awaiting_payment: true, ...body });

describe("grants awaiting payment", () => {
  it("is recorded with no entry, listed in the balance, never spendable; activation issues it dated now", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const created = await awaitingGrant(a, {
      grant_id: "inv-77",
      amount: 5000,
      cost_basis: { amount: 4900, currency: "USD" },
    });
    expect(created.status).toBe(201);
    expect(created.json.grant).toMatchObject({
      grant_id: "inv-77",
      amount: 5000,
      status: "awaiting_payment",
      remaining: 0,
    });
    expect(created.json.balance).toMatchObject({ available: 100, held: 0, awaiting_payment_more: false });
    expect(created.json.balance.by_type).toEqual({ promotional: 0, compensatory: 0, purchased: 100 });
    expect(created.json.balance.awaiting_payment).toEqual([
      { grant_id: "inv-77", amount: 5000, type: "purchased", created_at: created.json.grant.created_at, topup: false },
    ]);
    // No entry: only the first grant's.
    expect((await ledgerEntries(a)).map((e) => e.grant_id)).toEqual([expect.stringMatching(/^g-/)]);
    // Never spendable: 101 is more than the 100 available.
    const refused = await debit(a, 101);
    expect(refused.status).toBe(402);
    expect(refused.json.available).toBe(100);
    // The balance read and another operation's answer list it too.
    const read = await call("GET", `/v1/accounts/${a}/balance`);
    expect(read.json.awaiting_payment.map((x: any) => x.grant_id)).toEqual(["inv-77"]);
    expect((await debit(a, 10)).json.balance.awaiting_payment.map((x: any) => x.grant_id)).toEqual(["inv-77"]);
    const listed = await call("GET", `/v1/accounts/${a}/grants?status=awaiting_payment`);
    expect(listed.json.grants.map((g: any) => [g.grant_id, g.status])).toEqual([["inv-77", "awaiting_payment"]]);
    expect((await call("GET", `/v1/accounts/${a}/grants/inv-77`)).json.status).toBe("awaiting_payment");

    // Activate a day later: the lot is issued then, its entry dated then.
    const at = (await doNow(a)) + DAY;
    await setDoClock(a, at);
    const activated = await call("POST", `/v1/accounts/${a}/grants/inv-77/activate`, { payment_ref: "pi_123" });
    expect(activated.status).toBe(200);
    expect(activated.json.grant).toMatchObject({
      grant_id: "inv-77",
      status: "active",
      remaining: 5000,
      payment_ref: "pi_123",
      topup: false,
      cost_basis: { amount: 4900, currency: "USD" },
    });
    expect(Date.parse(activated.json.grant.effective_at)).toBeGreaterThanOrEqual(at);
    // 100 − 10 + 5000.
    expect(activated.json.balance).toMatchObject({ available: 5090, awaiting_payment: [] });
    const entry = (await ledgerEntries(a)).find((e) => e.grant_id === "inv-77");
    expect(entry).toMatchObject({ kind: "grant", amount: 5000, credit_type: "purchased" });
    expect(Date.parse(entry.effective_at)).toBeGreaterThanOrEqual(at);
    expect((await debit(a, 5090)).status).toBe(200);

    // Repeating the activation answers the first result and issues nothing more.
    const again = await call("POST", `/v1/accounts/${a}/grants/inv-77/activate`, { payment_ref: "pi_123" });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(activated.json);
    expect((await ledgerEntries(a)).filter((e) => e.grant_id === "inv-77" && e.kind === "grant")).toHaveLength(1);

    // The grant.activated alert reaches D1 with what it says.
    await drain(a);
    const alerts = await alertsFor(a, "grant.activated");
    expect(alerts.map((x) => x.data)).toEqual([
      expect.objectContaining({
        grant_id: "inv-77",
        unit: "credits",
        amount: 5000,
        credit_type: "purchased",
        payment_ref: "pi_123",
        topup: false,
      }),
    ]);
    const audit = await call("GET", `/v1/audit?action=grant.activated&target=${a}:inv-77`);
    expect(audit.json.events).toHaveLength(1);
  });

  it("cancellation drops it with no entry; repeating it answers the same; the grant id stays taken", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    expect((await awaitingGrant(a, { grant_id: "aw-1", amount: 700 })).status).toBe(201);
    const cancelled = await call("POST", `/v1/accounts/${a}/grants/aw-1/cancel`, { reason: "card declined" });
    expect(cancelled.status).toBe(200);
    expect(cancelled.json.grant).toMatchObject({
      grant_id: "aw-1",
      status: "cancelled",
      cancel_reason: "card declined",
    });
    expect(cancelled.json.balance).toMatchObject({ available: 10, awaiting_payment: [] });
    const again = await call("POST", `/v1/accounts/${a}/grants/aw-1/cancel`, { reason: "card declined" });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(cancelled.json);
    expect((await ledgerEntries(a)).filter((e) => e.grant_id === "aw-1")).toEqual([]);
    expect((await call("GET", `/v1/accounts/${a}/grants/aw-1`)).json.status).toBe("cancelled");
    expect((await call("GET", `/v1/accounts/${a}/balance`)).json.awaiting_payment).toEqual([]);
    const audit = await call("GET", `/v1/audit?action=grant.cancelled&target=${a}:aw-1`);
    expect(audit.json.events).toHaveLength(1);
  });

  it("the same body replays the first 201; an awaiting grant to a new account creates it", async () => {
    const a = uid();
    const body = { grant_id: "first", type: "purchased", awaiting_payment: true, amount: 300 };
    const first = await call("POST", `/v1/accounts/${a}/grants`, body);
    expect(first.status).toBe(201);
    const again = await call("POST", `/v1/accounts/${a}/grants`, body);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(first.json);
    expect((await call("GET", `/v1/accounts/${a}`)).status).toBe(200);
    const listed = await call("GET", `/v1/accounts/${a}/grants?status=awaiting_payment`);
    expect(listed.json.grants).toHaveLength(1);
  });

  it("a balance as of a time between creation and activation lists it; one before creation does not", async () => {
    const a = uid();
    await grant(a, { amount: 1 });
    const t0 = await doNow(a);
    await setDoClock(a, t0 + 60_000);
    expect((await awaitingGrant(a, { grant_id: "later", amount: 40 })).status).toBe(201);
    await setDoClock(a, t0 + 120_000);
    expect((await call("POST", `/v1/accounts/${a}/grants/later/activate`, {})).status).toBe(200);
    await setDoClock(a, t0 + 180_000);
    const between = await call("GET", `/v1/accounts/${a}/balance?as_of=${new Date(t0 + 90_000).toISOString()}`);
    expect(between.json.awaiting_payment.map((x: any) => x.grant_id)).toEqual(["later"]);
    expect(between.json.available).toBe(1);
    const before = await call("GET", `/v1/accounts/${a}/balance?as_of=${new Date(t0 + 30_000).toISOString()}`);
    expect(before.json.awaiting_payment).toEqual([]);
    const now = await call("GET", `/v1/accounts/${a}/balance`);
    expect(now.json).toMatchObject({ available: 41, awaiting_payment: [] });
  });

  it("a write answer lists 10 and says awaiting_payment_more; a read lists them all", async () => {
    const a = uid();
    await grant(a, { amount: 5 });
    for (let i = 0; i < 12; i++)
      expect((await awaitingGrant(a, { grant_id: `w-${i}`, amount: i + 1 })).status).toBe(201);
    const write = await debit(a, 1);
    expect(write.json.balance.awaiting_payment).toHaveLength(10);
    expect(write.json.balance.awaiting_payment_more).toBe(true);
    const read = await call("GET", `/v1/accounts/${a}/balance`);
    expect(read.json.awaiting_payment.map((x: any) => x.grant_id)).toEqual(
      Array.from({ length: 12 }, (_, i) => `w-${i}`),
    );
    expect(read.json.awaiting_payment_more).toBe(false);
    expect(read.json.available).toBe(4);
  });
});
