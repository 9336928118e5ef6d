/**
 * Issue 8: a scripted accounting scenario whose journal figures are worked
 * out by hand below (not by the code under test), checked in D1's journal
 * and in its daily rollups, also after every shipment was sent twice.
 *
 * Lots (USD minor units):
 *   promo  200 promotional, priority 0 (drawn first), no cost
 *   p1    1000 purchased for 10 000 (tax 1 900, DE), priority 1
 *   p2     300 purchased for  4 500, priority 2, expires in 10 days
 * Movements of p1 by the cumulative rule floor(10000·out/1000) = 10·out:
 *   debit 250   → promo 200 (contra), p1 50:  out 50  → 500  recognized
 *   debit 333   → p1 333:                     out 383 → 3830, recognized 3 330
 *   invoice 100 → p1 100:                     out 483 → 4830, recognized 1 000
 *   refund 200  of p1:                        out 683 → 6830, refunded 2 000
 *   invoice void → p1 +100:                   out 583 → 5830, recognized −1 000
 *   p2 expires (300 credits):                 breakage floor(4500·300/300) = 4 500
 * Totals: purchased 14 500; recognized 500 + 3 330 + 1 000 − 1 000 = 3 830;
 * breakage 4 500; refunded 2 000; deferred 14 500 − 3 830 − 4 500 − 2 000 = 4 170,
 * which is p1's 417 credits left: 10 000 − 5 830 = 4 170. Contra: 200 units. Tax DE 1 900.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { advanceClock, call, grant, runAlarm, uid } from "./helpers";
import { drainVia, interceptBatch, shipTo } from "./outbox-helpers";

const DAY = 86_400_000;

async function bySql(sql: string, accountId: string) {
  const { results } = await env.DB.prepare(sql).bind(accountId).all<Record<string, number | string>>();
  return Object.fromEntries(results.map((r) => [String(r.k), Number(r.v)]));
}

describe("the journal of a scripted history", () => {
  it("carries the hand-worked figures, once, whatever is shipped twice", async () => {
    const a = uid();
    await grant(a, { grant_id: "promo", amount: 200, type: "promotional", priority: 0 });
    await grant(a, {
      grant_id: "p1",
      amount: 1000,
      priority: 1,
      cost_basis: { amount: 10_000, currency: "USD", tax: { amount: 1_900, jurisdiction: "DE" } },
    });
    await grant(a, {
      grant_id: "p2",
      amount: 300,
      priority: 2,
      cost_basis: { amount: 4_500, currency: "USD" },
      expires_at: new Date(Date.now() + 10 * DAY).toISOString(),
    });
    // Every shipment commits in D1 and then "fails", so the outbox sends it again: rollups must not double.
    await shipTo(a, (real) =>
      interceptBatch(real, async (statements, batch) => {
        await batch(statements);
        throw new Error("injected: the answer was lost after D1 committed");
      }),
    );
    await drainVia(a);
    expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 250 })).status).toBe(200);
    expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d2", amount: 333 })).status).toBe(200);
    await drainVia(a);
    const invoice = await call("POST", `/v1/accounts/${a}/invoices`, { invoice_id: "inv-1", lines: [{ amount: 100 }] });
    expect(invoice.json.applied).toEqual([{ grant_id: "p1", type: "purchased", amount: 100 }]);
    const refund = await call("POST", `/v1/accounts/${a}/grants/p1/refund`, {
      refund_id: "r1",
      amount: 200,
      reason: "x",
    });
    expect(refund.json.refund.cost).toEqual({ amount: 2_000, currency: "USD" });
    expect((await call("POST", `/v1/accounts/${a}/invoices/inv-1/void`, { reason: "error" })).status).toBe(200);
    await advanceClock(a, 11 * DAY);
    await runAlarm(a); // writes p2's expiry (and tries to ship it through the lossy D1)
    await drainVia(a);
    await shipTo(a, (real) => real);
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });

    const journal = await bySql(
      "SELECT category || ':' || credit_type AS k, SUM(cost_minor) AS v FROM journal WHERE account_id = ? GROUP BY 1",
      a,
    );
    expect(journal).toEqual({
      "issued:promotional": 0,
      "issued:purchased": 14_500,
      "consumed:promotional": 0,
      "consumed:purchased": 3_830,
      "refunded:purchased": 2_000,
      "expired:purchased": 4_500,
    });
    const units = await bySql(
      "SELECT category || ':' || credit_type AS k, SUM(amount) AS v FROM journal WHERE account_id = ? GROUP BY 1",
      a,
    );
    expect(units).toEqual({
      "issued:promotional": 200,
      "issued:purchased": 1_300,
      "consumed:promotional": -200,
      "consumed:purchased": -(50 + 333 + 100 - 100),
      "refunded:purchased": -200,
      "expired:purchased": -300,
    });
    const tax = await bySql(
      "SELECT tax_jurisdiction AS k, SUM(tax_minor) AS v FROM journal WHERE account_id = ? AND category = 'issued' AND tax_jurisdiction IS NOT NULL GROUP BY 1",
      a,
    );
    expect(tax).toEqual({ DE: 1_900 });

    // The rollups hold the same sums, counted once although every shipment went to D1 twice.
    const rolled = await bySql(
      "SELECT category || ':' || credit_type AS k, SUM(cost_minor) AS v FROM journal_daily WHERE account_id = ? GROUP BY 1",
      a,
    );
    expect(rolled).toEqual(journal);
    const counted = await env.DB.prepare(
      "SELECT (SELECT SUM(rows) FROM journal_daily WHERE account_id = ?1) AS rolled, (SELECT COUNT(*) FROM journal WHERE account_id = ?1) AS journal",
    )
      .bind(a)
      .first<{ rolled: number; journal: number }>();
    // 3 grants, 2 + 1 debit entries, the invoice, the refund, the reversal, the expiry.
    expect(counted?.journal).toBe(10);
    expect(counted?.rolled).toBe(counted?.journal);
    // Deferred revenue left = what p1's 417 credits still carry.
    const deferred = 14_500 - 3_830 - 4_500 - 2_000;
    expect(deferred).toBe(4_170);
    const p1 = (await call("GET", `/v1/accounts/${a}/grants/p1`)).json;
    expect(p1.remaining).toBe(417);
  });
});
