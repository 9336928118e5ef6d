/** The cumulative rounding rule, checked against hand-worked figures and a reference model. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { costOut, deferredCost, movementCost, planInvoice, planInvoiceVoid, planRefund } from "../../src/ledger";
import { DEFAULT_POLICY } from "../../src/ledger/policy";
import { makeLot, T0 } from "./fixtures";

describe("costOut: floor(C·x / A)", () => {
  it("matches hand-worked figures", () => {
    // 3 credits bought for 100 cents: 33, 66, then the last credit carries 34.
    expect([0, 1, 2, 3].map((x) => costOut(100, 3, x))).toEqual([0, 33, 66, 100]);
    // 1 000 credits for 9 999: one credit out carries 9, 501 out carry 5 009.
    expect(costOut(9999, 1000, 1)).toBe(9);
    expect(costOut(9999, 1000, 501)).toBe(5009);
    // Past 2^53 in the product: 9·10^15 × 10^15 / 10^15.
    expect(costOut(9e15, 1e15, 1e15)).toBe(9e15);
    expect(costOut(9e15, 1e15, 1)).toBe(9);
  });

  it("refuses what cannot happen", () => {
    expect(() => costOut(100, 3, 4)).toThrow();
    expect(() => costOut(100, 0, 0)).toThrow();
    expect(() => costOut(-1, 3, 1)).toThrow();
  });
});

describe("movements carry exactly the cost, in any order", () => {
  it("outflows and reversals of a lot sum to what has left, and a drained lot leaves all of it", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.array(fc.integer({ min: -50, max: 200 }), { maxLength: 60 }),
        (amount, cost, moves) => {
          const lot = { amount, costBasis: { amount: cost, currency: "USD" } };
          let remaining = amount;
          let carried = 0;
          for (const m of moves) {
            // Positive: credits leave; negative: an invoice void brings them back (never above the lot).
            const next = Math.min(amount, Math.max(0, remaining - m));
            const c = movementCost(lot, remaining, next);
            if (next < remaining) expect(c).toBeGreaterThanOrEqual(0);
            if (next > remaining) expect(c).toBeLessThanOrEqual(0);
            carried += c;
            remaining = next;
          }
          // Reference: the closed form (cost · out < 2^53 here, so plain floor division is exact).
          const out = amount - remaining;
          expect(carried).toBe(Math.floor((cost * out) / amount));
          expect(carried + deferredCost({ ...lot, remaining })).toBe(cost);
          const drained = carried + movementCost(lot, remaining, 0);
          expect(drained).toBe(cost);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("planRefund", () => {
  const lot = () =>
    makeLot({ grantId: "p", amount: 1000, remaining: 999, costBasis: { amount: 9999, currency: "USD" } });

  it("refunds the unspent, unheld remainder by default, with its cost by the cumulative rule", () => {
    const planned = planRefund({ ...lot(), held: 100 }, "r1", null, "unhappy", T0);
    expect(planned.ok).toBe(true);
    if (!planned.ok) return;
    expect(planned.value.amount).toBe(899);
    // 1 credit had left (cost 9); now 900 have: floor(9999·900/1000) = 8999, so 8 990 leaves.
    expect(planned.value.costMinor).toBe(8990);
    expect(planned.value.entries).toEqual([
      expect.objectContaining({ kind: "grant.refunded", amount: -899, heldDelta: 0, ref: "r1", reason: "unhappy" }),
    ]);
  });

  it("refuses promotional credits, more than is left, and a lot with nothing left", () => {
    const promo = planRefund({ ...lot(), type: "promotional", costBasis: null }, "r", null, null, T0);
    expect(promo.ok || promo.error.code).toBe("invalid_request");
    const tooMuch = planRefund(lot(), "r", 1000, null, T0);
    expect(tooMuch.ok || tooMuch.error.code).toBe("invalid_amount");
    const empty = planRefund({ ...lot(), remaining: 0 }, "r", null, null, T0);
    expect(empty.ok || empty.error.code).toBe("grant_closed");
  });
});

describe("planInvoice and planInvoiceVoid", () => {
  it("covers lines in order with live credit only, and a void puts back exactly what it took", () => {
    const lots = [
      makeLot({ grantId: "a", amount: 200, priority: 1 }),
      makeLot({ grantId: "b", amount: 100, priority: 2, expiresAtMs: T0 + 1000 }),
      makeLot({ grantId: "later", amount: 1000, effectiveAtMs: T0 + 86_400_000 }),
    ];
    const lines = [
      { description: "tokens", unit: "credits", amount: 250 },
      { description: "images", unit: "credits", amount: 250 },
    ];
    const plan = planInvoice(lots, "inv-1", lines, DEFAULT_POLICY, T0);
    expect(plan.lines.map((l) => [l.creditsApplied, l.amountDue])).toEqual([
      [250, 0],
      [50, 200],
    ]);
    expect(plan.applied).toEqual([
      { grantId: "a", type: "purchased", amount: 200 },
      { grantId: "b", type: "purchased", amount: 100 },
    ]);
    expect(plan.entries.every((e) => e.kind === "invoice" && e.ref === "inv-1")).toBe(true);

    // Voided after lot b expired: b's 100 come back and leave again at once, dated at its expiry.
    const after = new Map(plan.lots.map((l) => [l.grantId, l]));
    const voided = planInvoiceVoid(after, "inv-1", plan.applied, "billing error", T0 + 5000);
    expect(voided.entries.map((e) => [e.kind, e.grantId, e.amount, e.effectiveAtMs])).toEqual([
      ["invoice.reversal", "a", 200, T0 + 5000],
      ["invoice.reversal", "b", 100, T0 + 5000],
      ["grant.expired", "b", -100, T0 + 1000],
    ]);
    expect(voided.lots.map((l) => [l.grantId, l.remaining])).toEqual([
      ["a", 200],
      ["b", 0],
    ]);
  });
});
