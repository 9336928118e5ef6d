/** Issue 8: invoices applied atomically and voided back exactly; refunds of purchased credits with their cost. */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { advanceClock, call, expectProblem, grant, ledgerEntries, ledgerStubFor, uid } from "./helpers";

const DAY = 86_400_000;
const inv = (a: string, rest = "") => `/v1/accounts/${a}/invoices${rest}`;

describe("invoices", () => {
  it("covers lines in order with live credit, records ref = invoice id, and replays", async () => {
    const a = uid();
    await grant(a, { grant_id: "p", amount: 300 });
    // A promotion valid from next month is not this month's credit.
    await grant(a, {
      grant_id: "next-month",
      amount: 1000,
      type: "promotional",
      effective_at: new Date(Date.now() + 30 * DAY).toISOString(),
    });
    const body = {
      invoice_id: "inv-7",
      lines: [
        { description: "tokens", amount: 200 },
        { description: "images", amount: 300 },
      ],
    };
    const res = await call("POST", inv(a), body);
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      invoice_id: "inv-7",
      status: "finalized",
      unit: "credits",
      credits_applied: 300,
      amount_due: 200,
      applied: [{ grant_id: "p", type: "purchased", amount: 300 }],
      applied_more: false,
    });
    expect(res.json.lines.map((l: any) => [l.credits_applied, l.amount_due])).toEqual([
      [200, 0],
      [100, 200],
    ]);
    expect(res.json.balance.available).toBe(0);
    const entries = (await ledgerEntries(a)).filter((e) => e.kind === "invoice");
    expect(entries.map((e) => [e.grant_id, e.amount, e.ref])).toEqual([["p", -300, "inv-7"]]);

    const again = await call("POST", inv(a), body);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(res.text);
    const other = await call("POST", inv(a), { ...body, lines: [{ amount: 1 }] });
    expectProblem(other, 409, "idempotency_conflict");
    const read = await call("GET", inv(a, "/inv-7"));
    expect(read.json).toMatchObject({ status: "finalized", credits_applied: 300, amount_due: 200 });
  });

  it("a failure between applying credits and recording the invoice leaves neither", async () => {
    const a = uid();
    await grant(a, { grant_id: "p", amount: 100 });
    const before = await ledgerEntries(a);
    const stub = ledgerStubFor(a);
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.faults.beforeRecord = () => {
        throw new Error("injected: crash before the invoice row");
      };
    });
    const failed = await call("POST", inv(a), { invoice_id: "inv-x", lines: [{ amount: 60 }] });
    expectProblem(failed, 500, "internal_error");
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.faults.beforeRecord = undefined;
    });
    expect(await ledgerEntries(a)).toEqual(before);
    expect((await call("GET", `/v1/accounts/${a}/balance`)).json.available).toBe(100);
    expectProblem(await call("GET", inv(a, "/inv-x")), 404, "invoice_not_found");
    // The same invoice goes through once the fault is gone: nothing was half-applied.
    const ok = await call("POST", inv(a), { invoice_id: "inv-x", lines: [{ amount: 60 }] });
    expect(ok.status).toBe(201);
    expect(ok.json.balance.available).toBe(40);
  });

  it("a void reinstates exactly, and what lands in a lot that expired meanwhile leaves at once", async () => {
    const a = uid();
    await grant(a, { grant_id: "soon", amount: 50, expires_at: new Date(Date.now() + DAY).toISOString() });
    await grant(a, { grant_id: "later", amount: 70 });
    const created = await call("POST", inv(a), { invoice_id: "inv-9", lines: [{ amount: 100 }] });
    expect(created.json.applied).toEqual([
      { grant_id: "soon", type: "purchased", amount: 50 },
      { grant_id: "later", type: "purchased", amount: 50 },
    ]);
    await advanceClock(a, 2 * DAY);
    const voided = await call("POST", inv(a, "/inv-9/void"), { reason: "billing error" });
    expect(voided.status).toBe(200);
    expect(voided.json.status).toBe("voided");
    // 20 left in "later" + 50 back; "soon" expired, so its 50 leave again.
    expect(voided.json.balance.available).toBe(70);
    const tail = (await ledgerEntries(a)).filter((e) => e.kind === "invoice.reversal" || e.kind === "grant.expired");
    expect(tail.map((e) => [e.kind, e.grant_id, e.amount, e.ref])).toEqual([
      ["invoice.reversal", "soon", 50, "inv-9"],
      ["grant.expired", "soon", -50, null],
      ["invoice.reversal", "later", 50, "inv-9"],
    ]);
    const expiry = tail.find((e) => e.kind === "grant.expired");
    const lot = (await call("GET", `/v1/accounts/${a}/grants/soon`)).json;
    expect(expiry?.effective_at).toBe(lot.expires_at);

    const again = await call("POST", inv(a, "/inv-9/void"), { reason: "other words" });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(voided.text);
    expect((await call("GET", inv(a, "/inv-9"))).json.status).toBe("voided");
  });

  it("refuses bad invoices and changes nothing", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const before = await ledgerEntries(a);
    const bad = [
      { invoice_id: "i1", lines: [] },
      { invoice_id: "i2", lines: Array.from({ length: 101 }, () => ({ amount: 1 })) },
      {
        invoice_id: "i3",
        lines: [
          { amount: 1, unit: "credits" },
          { amount: 1, unit: "tokens" },
        ],
      },
      { invoice_id: "i4", lines: [{ amount: 0 }] },
      { invoice_id: "i5", lines: [{ amount: 1, extra: true }] },
    ];
    for (const body of bad) {
      const res = await call("POST", inv(a), body);
      expect([400], JSON.stringify(body)).toContain(res.status);
    }
    expectProblem(
      await call("POST", inv(uid()), { invoice_id: "i6", lines: [{ amount: 1 }] }),
      404,
      "account_not_found",
    );
    expectProblem(await call("POST", inv(a, "/nope/void"), {}), 404, "invoice_not_found");
    expect(await ledgerEntries(a)).toEqual(before);
  });
});

describe("refunds", () => {
  it("refund purchased credits with their cost, by the cumulative rule, exactly once", async () => {
    const a = uid();
    await grant(a, { grant_id: "p", amount: 1000, cost_basis: { amount: 9999, currency: "USD" } });
    await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 1 });
    const body = { refund_id: "r1", amount: 500, reason: "customer request" };
    const res = await call("POST", `/v1/accounts/${a}/grants/p/refund`, body);
    expect(res.status).toBe(200);
    // 1 credit had left (floor(9999·1/1000) = 9); after 501: floor(9999·501/1000) = 5009; 5000 leaves.
    expect(res.json.refund).toEqual({
      refund_id: "r1",
      grant_id: "p",
      amount: 500,
      cost: { amount: 5000, currency: "USD" },
    });
    expect(res.json.grant.remaining).toBe(499);
    const entry = (await ledgerEntries(a)).find((e) => e.kind === "grant.refunded");
    expect(entry).toMatchObject({ amount: -500, ref: "r1", reason: "customer request", credit_type: "purchased" });
    const again = await call("POST", `/v1/accounts/${a}/grants/p/refund`, body);
    expect(again.text).toBe(res.text);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    // The rest, by default: floor(9999·1000/1000) − 5009 = 4990.
    const rest = await call("POST", `/v1/accounts/${a}/grants/p/refund`, { refund_id: "r2", reason: "close account" });
    expect(rest.json.refund).toMatchObject({ amount: 499, cost: { amount: 4990, currency: "USD" } });
    expectProblem(
      await call("POST", `/v1/accounts/${a}/grants/p/refund`, { refund_id: "r3", reason: "again" }),
      409,
      "grant_closed",
    );
  });

  it("a refund id reused after its idempotency record was pruned is refused, never refunded twice", async () => {
    const a = uid();
    await grant(a, { grant_id: "p", amount: 100, cost_basis: { amount: 1000, currency: "USD" } });
    const body = { refund_id: "r-old", amount: 10, reason: "x" };
    expect((await call("POST", `/v1/accounts/${a}/grants/p/refund`, body)).status).toBe(200);
    await runInDurableObject(ledgerStubFor(a), (_inst: AccountLedger, state) => {
      state.storage.sql.exec("DELETE FROM idempotency WHERE scope = 'refund'");
    });
    expectProblem(await call("POST", `/v1/accounts/${a}/grants/p/refund`, body), 409, "idempotency_conflict");
    expect((await call("GET", `/v1/accounts/${a}/grants/p`)).json.remaining).toBe(90);
  });

  it("refuses promotional credits and more than is left", async () => {
    const a = uid();
    await grant(a, { grant_id: "promo", amount: 10, type: "promotional" });
    await grant(a, { grant_id: "p", amount: 10 });
    expectProblem(
      await call("POST", `/v1/accounts/${a}/grants/promo/refund`, { refund_id: "r1", reason: "x" }),
      400,
      "invalid_request",
    );
    expectProblem(
      await call("POST", `/v1/accounts/${a}/grants/p/refund`, { refund_id: "r2", amount: 11, reason: "x" }),
      400,
      "invalid_amount",
    );
    const key = await call("POST", "/v1/api-keys", { name: "s", role: "support", max_grant_amount: 100 });
    expectProblem(
      await call(
        "POST",
        `/v1/accounts/${a}/grants/p/refund`,
        { refund_id: "r3", reason: "x" },
        { token: key.json.key },
      ),
      403,
      "forbidden",
    );
    expect((await call("GET", `/v1/accounts/${a}/balance`)).json.available).toBe(20);
  });

  it("a purchase may carry the tax collected, served with the grant", async () => {
    const a = uid();
    const res = await call("POST", `/v1/accounts/${a}/grants`, {
      grant_id: "p",
      amount: 100,
      type: "purchased",
      cost_basis: { amount: 1000, currency: "EUR", tax: { amount: 190, jurisdiction: "DE" } },
    });
    expect(res.status).toBe(201);
    expect(res.json.grant.cost_basis).toEqual({
      amount: 1000,
      currency: "EUR",
      tax: { amount: 190, jurisdiction: "DE" },
    });
    const read = await call("GET", `/v1/accounts/${a}/grants/p`);
    expect(read.json.cost_basis.tax).toEqual({ amount: 190, jurisdiction: "DE" });
  });
});
