import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CREDIT_TYPES,
  DEFAULT_POLICY,
  type DrawPlan,
  type LedgerError,
  type Lot,
  lotComparator,
  pickLots,
  planDebit,
  planReserve,
  type Result,
  spendable,
} from "../../src/ledger";
import { deepFreeze, makeLot, T0 } from "./fixtures";

const now = T0;
const debit = (lots: Lot[], amount: number, unit = "credits") =>
  planDebit(lots, { ref: "req-1", unit, amount }, DEFAULT_POLICY, now);

function expectOk(r: Result<DrawPlan, LedgerError>): DrawPlan {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.error)}`);
  return r.value;
}

function expectRefused(r: Result<DrawPlan, LedgerError>, available: number, requested: number) {
  expect(r).toEqual({ ok: false, error: { code: "insufficient_credits", available, requested } });
}

describe("all or nothing", () => {
  it("refuses a debit above the available total and says what was available", () => {
    const lots = deepFreeze([makeLot({ grantId: "a", amount: 4 }), makeLot({ grantId: "b", amount: 6 })]);
    const before = structuredClone(lots);
    expectRefused(debit(lots, 11), 10, 11);
    expect(lots).toEqual(before);
  });

  it("takes exactly the available total when asked for it", () => {
    const lots = deepFreeze([makeLot({ grantId: "a", amount: 4 }), makeLot({ grantId: "b", amount: 6 })]);
    const plan = expectOk(debit(lots, 10));
    expect(plan.lots.map((l) => l.remaining)).toEqual([0, 0]);
    expect(plan.applied.reduce((s, a) => s + a.amount, 0)).toBe(10);
  });

  it("counts in the refusal only what is spendable now", () => {
    const lots = deepFreeze([
      makeLot({ grantId: "live", amount: 10, held: 3 }),
      makeLot({ grantId: "pending", amount: 50, effectiveAtMs: now + 1 }),
      makeLot({ grantId: "expired", amount: 50, expiresAtMs: now }),
      makeLot({ grantId: "voided", amount: 50, remaining: 20, held: 0, voidedAtMs: now - 5 }),
      makeLot({ grantId: "other-unit", amount: 50, unit: "gpu_seconds" }),
    ]);
    expectRefused(debit(lots, 8), 7, 8);
  });

  it("refuses on an account with no lots", () => {
    expectRefused(debit([], 1), 0, 1);
  });
});

describe("draw order and the plan", () => {
  const lots = deepFreeze([
    makeLot({ grantId: "late", amount: 5, priority: 200, type: "purchased" }),
    makeLot({ grantId: "first", amount: 3, priority: 1, type: "promotional" }),
    makeLot({ grantId: "second", amount: 4, priority: 50, type: "compensatory" }),
  ]);

  it("has one Applied per lot touched, in draw order, and stops at the amount", () => {
    const plan = expectOk(debit(lots, 9));
    expect(plan.applied).toEqual([
      { grantId: "first", type: "promotional", amount: 3 },
      { grantId: "second", type: "compensatory", amount: 4 },
      { grantId: "late", type: "purchased", amount: 2 },
    ]);
  });

  it("returns only the touched lots, with their remaining reduced and nothing else changed", () => {
    const plan = expectOk(debit(lots, 5));
    expect(plan.lots).toEqual([
      { ...lots[1], remaining: 0 },
      { ...lots[2], remaining: 2 },
    ]);
  });

  it("writes one debit entry per lot touched: negative amount, no held change", () => {
    const plan = expectOk(debit(lots, 5));
    expect(plan.entries).toEqual([
      {
        kind: "debit",
        unit: "credits",
        amount: -3,
        heldDelta: 0,
        grantId: "first",
        creditType: "promotional",
        ref: "req-1",
        reason: null,
        effectiveAtMs: now,
      },
      {
        kind: "debit",
        unit: "credits",
        amount: -2,
        heldDelta: 0,
        grantId: "second",
        creditType: "compensatory",
        ref: "req-1",
        reason: null,
        effectiveAtMs: now,
      },
    ]);
  });

  it("does not mutate its inputs (frozen lots would throw)", () => {
    const before = structuredClone(lots);
    expectOk(debit(lots, 12));
    expect(lots).toEqual(before);
  });
});

describe("what may be drawn", () => {
  it("draws a lot whose effective_at is now, never one effective a millisecond later", () => {
    const lots = deepFreeze([
      makeLot({ grantId: "future", amount: 5, effectiveAtMs: now + 1, priority: 0 }),
      makeLot({ grantId: "now", amount: 5, effectiveAtMs: now, priority: 1 }),
    ]);
    expect(expectOk(debit(lots, 5)).applied).toEqual([{ grantId: "now", type: "purchased", amount: 5 }]);
    expectRefused(debit(lots, 6), 5, 6);
  });

  it("never draws a lot at or after its expiry; one millisecond before is fine", () => {
    const lots = deepFreeze([
      makeLot({ grantId: "at", amount: 5, expiresAtMs: now }),
      makeLot({ grantId: "past", amount: 5, expiresAtMs: now - 100 }),
      makeLot({ grantId: "next-ms", amount: 5, expiresAtMs: now + 1 }),
    ]);
    expect(expectOk(debit(lots, 5)).applied.map((a) => a.grantId)).toEqual(["next-ms"]);
    expectRefused(debit(lots, 6), 5, 6);
  });

  it("never draws a voided lot, even one with a remainder", () => {
    const lots = deepFreeze([
      makeLot({ grantId: "voided", amount: 10, remaining: 10, held: 4, voidedAtMs: now - 1, priority: 0 }),
      makeLot({ grantId: "ok", amount: 2 }),
    ]);
    expect(expectOk(debit(lots, 2)).applied.map((a) => a.grantId)).toEqual(["ok"]);
    expectRefused(debit(lots, 3), 2, 3);
  });

  it("never draws held parts", () => {
    const lots = deepFreeze([
      makeLot({ grantId: "mostly-held", amount: 10, held: 7, priority: 0 }),
      makeLot({ grantId: "all-held", amount: 5, held: 5, priority: 1 }),
      makeLot({ grantId: "free", amount: 4, priority: 2 }),
    ]);
    const plan = expectOk(debit(lots, 7));
    expect(plan.applied).toEqual([
      { grantId: "mostly-held", type: "purchased", amount: 3 },
      { grantId: "free", type: "purchased", amount: 4 },
    ]);
    expect(plan.lots[0]).toMatchObject({ remaining: 7, held: 7 });
    expectRefused(debit(lots, 8), 7, 8);
  });

  it("never mixes units", () => {
    const lots = deepFreeze([
      makeLot({ grantId: "gpu", amount: 100, unit: "gpu_seconds", priority: 0 }),
      makeLot({ grantId: "cr", amount: 3 }),
    ]);
    const cr = expectOk(debit(lots, 3));
    expect(cr.applied.map((a) => a.grantId)).toEqual(["cr"]);
    expect(cr.entries.every((e) => e.unit === "credits")).toBe(true);
    const gpu = expectOk(debit(lots, 50, "gpu_seconds"));
    expect(gpu.applied).toEqual([{ grantId: "gpu", type: "purchased", amount: 50 }]);
    expect(gpu.entries.every((e) => e.unit === "gpu_seconds")).toBe(true);
    expectRefused(debit(lots, 4), 3, 4);
    expectRefused(debit(lots, 1, "tokens"), 0, 1);
  });
});

describe("planReserve", () => {
  it("reserves in draw order: held grows, remaining stays, entries are amount 0 and held_delta +n", () => {
    const lots = deepFreeze([
      makeLot({ grantId: "b", amount: 5, priority: 2 }),
      makeLot({ grantId: "a", amount: 3, priority: 1, held: 1 }),
    ]);
    for (const kind of ["hold", "receipt"] as const) {
      const plan = expectOk(planReserve(lots, { ref: "h1", unit: "credits", amount: 4 }, DEFAULT_POLICY, now, kind));
      expect(plan.applied.map((a) => [a.grantId, a.amount])).toEqual([
        ["a", 2],
        ["b", 2],
      ]);
      expect(plan.lots.map((l) => [l.grantId, l.remaining, l.held])).toEqual([
        ["a", 3, 3],
        ["b", 5, 2],
      ]);
      expect(plan.entries.map((e) => [e.kind, e.grantId, e.amount, e.heldDelta, e.ref])).toEqual([
        [kind, "a", 0, 2, "h1"],
        [kind, "b", 0, 2, "h1"],
      ]);
    }
  });

  it("refuses like a debit when short, counting held parts as unavailable", () => {
    const lots = deepFreeze([makeLot({ grantId: "a", amount: 3, held: 1 })]);
    const r = planReserve(lots, { ref: "h1", unit: "credits", amount: 3 }, DEFAULT_POLICY, now, "hold");
    expectRefused(r, 2, 3);
  });
});

describe("planDebit against brute force", () => {
  const arbLot = fc.record({
    amount: fc.integer({ min: 1, max: 20 }),
    used: fc.integer({ min: 0, max: 20 }),
    heldFrac: fc.integer({ min: 0, max: 20 }),
    unit: fc.constantFrom("credits", "tokens"),
    type: fc.constantFrom(...CREDIT_TYPES),
    priority: fc.integer({ min: 0, max: 3 }),
    effOffset: fc.integer({ min: -3, max: 2 }),
    expOffset: fc.option(fc.integer({ min: -2, max: 3 }), { nil: null }),
    voided: fc.boolean(),
  });

  it("succeeds iff Σ spendable ≥ amount and drains lots strictly in comparator order", () => {
    fc.assert(
      fc.property(fc.array(arbLot, { maxLength: 10 }), fc.integer({ min: 1, max: 80 }), (raw, amount) => {
        const lots = deepFreeze(
          raw.map((r, i) => {
            const remaining = Math.max(0, r.amount - r.used);
            return makeLot({
              grantId: `g${i}`,
              amount: r.amount,
              remaining,
              held: Math.min(remaining, r.heldFrac),
              unit: r.unit,
              type: r.type,
              priority: r.priority,
              effectiveAtMs: now + r.effOffset,
              expiresAtMs: r.expOffset === null ? null : now + r.effOffset + Math.abs(r.expOffset) + 1,
              voidedAtMs: r.voided ? now - 1 : null,
              createdOrder: i,
            });
          }),
        );
        // Brute force from the rules in API.md, not from the core's helpers.
        const live = lots.filter(
          (l) =>
            l.unit === "credits" &&
            l.voidedAtMs === null &&
            l.effectiveAtMs <= now &&
            (l.expiresAtMs === null || now < l.expiresAtMs) &&
            l.remaining - l.held > 0,
        );
        const available = live.reduce((s, l) => s + l.remaining - l.held, 0);
        const r = debit(lots, amount);
        if (available < amount) {
          expectRefused(r, available, amount);
          return;
        }
        const plan = expectOk(r);
        const ordered = [...live].sort(lotComparator(DEFAULT_POLICY));
        let left = amount;
        const expected: [string, number][] = [];
        for (const l of ordered) {
          if (left === 0) break;
          const n = Math.min(left, l.remaining - l.held);
          expected.push([l.grantId, n]);
          left -= n;
        }
        expect(plan.applied.map((a) => [a.grantId, a.amount])).toEqual(expected);
        for (const a of plan.applied) {
          const lot = lots.find((l) => l.grantId === a.grantId) as Lot;
          expect(a.amount).toBeGreaterThan(0);
          expect(a.amount).toBeLessThanOrEqual(spendable(lot, now));
        }
        expect(plan.entries.reduce((s, e) => s + e.amount, 0)).toBe(-amount);
      }),
      { numRuns: 300 },
    );
  });

  it("pickLots never picks a lot that is not spendable", () => {
    const lots = deepFreeze([
      makeLot({ grantId: "zero", amount: 5, remaining: 0 }),
      makeLot({ grantId: "held", amount: 5, held: 5 }),
      makeLot({ grantId: "ok", amount: 5 }),
    ]);
    const r = pickLots(lots, "credits", 5, DEFAULT_POLICY, now);
    if (!r.ok) throw new Error("refused");
    expect(r.value.map((t) => t.lot.grantId)).toEqual(["ok"]);
  });
});
