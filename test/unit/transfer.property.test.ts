/**
 * Transfer planning (src/ledger/transfer.ts) and budget periods
 * (src/ledger/budget.ts): hand-worked figures, and properties against a
 * small reference model of one account's lots and the cumulative cost rule.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deferredCost, type Lot, movementCost, planDebit } from "../../src/ledger";
import { budgetRemaining, nextPeriodStart, periodStart, planDrawAmount } from "../../src/ledger/budget";
import { DEFAULT_POLICY } from "../../src/ledger/policy";
import {
  BUDGET_DRAW_SOURCE,
  MAX_TRANSFER_SLICES,
  planTransferIn,
  planTransferOut,
  transferGuard,
  transferLotId,
} from "../../src/ledger/transfer";
import { makeLot, T0 } from "./fixtures";

const cmd = (amount: number) => ({ ref: "t1", unit: "credits", amount, reason: "move" });
const byId = (lots: Lot[]) => new Map(lots.map((l) => [l.grantId, l]));

describe("planTransferOut", () => {
  it("takes in consumption order and carries cost by the cumulative rule (hand-worked)", () => {
    const lots = [
      makeLot({ grantId: "promo", type: "promotional", amount: 5, priority: 1 }),
      makeLot({ grantId: "paid", amount: 3, priority: 2, costBasis: { amount: 100, currency: "USD" } }),
    ];
    const out = planTransferOut(lots, cmd(7), DEFAULT_POLICY, T0);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    // 5 promotional first, then 2 of the 3 paid credits: floor(100·2/3) = 66.
    expect(out.value.slices.map((s) => [s.sourceGrantId, s.amount, s.costBasis?.amount ?? null])).toEqual([
      ["promo", 5, null],
      ["paid", 2, 66],
    ]);
    expect(out.value.entries.map((e) => [e.kind, e.grantId, e.amount, e.ref])).toEqual([
      ["transfer.out", "promo", -5, "t1"],
      ["transfer.out", "paid", -2, "t1"],
    ]);
    expect(out.value.lots.map((l) => l.remaining)).toEqual([0, 1]);
  });

  it("is all or nothing, and refuses more slices than MAX_TRANSFER_SLICES", () => {
    const lots = [makeLot({ grantId: "a", amount: 4 })];
    expect(planTransferOut(lots, cmd(5), DEFAULT_POLICY, T0)).toEqual({
      ok: false,
      error: { code: "insufficient_credits", available: 4, requested: 5 },
    });
    const many = Array.from({ length: 3 }, (_, i) => makeLot({ grantId: `l${i}`, amount: 1 }));
    const refused = planTransferOut(many, cmd(3), DEFAULT_POLICY, T0, 2);
    expect(refused.ok ? null : refused.error.code).toBe("invalid_request");
    expect(MAX_TRANSFER_SLICES).toBe(1000);
  });
});

describe("planTransferIn", () => {
  it("makes lots with the slices' terms, source_grant_id and cost", () => {
    const expires = T0 + 86_400_000;
    const src = [
      makeLot({
        grantId: "p",
        amount: 10,
        priority: 7,
        expiresAtMs: expires,
        costBasis: { amount: 999, currency: "EUR" },
      }),
    ];
    const out = planTransferOut(src, cmd(4), DEFAULT_POLICY, T0);
    if (!out.ok) throw new Error("planned");
    const into = planTransferIn(new Map(), { ref: "t1", reason: "move", slices: out.value.slices }, 1, T0);
    if (!into.ok) throw new Error("applied");
    // floor(999·4/10) = 399.
    expect(into.value.lots[0]).toMatchObject({
      grantId: "t1.0",
      amount: 4,
      remaining: 4,
      priority: 7,
      expiresAtMs: expires,
      type: "purchased",
      source: "transfer",
      sourceGrantId: "p",
      costBasis: { amount: 399, currency: "EUR" },
    });
    expect(into.value.entries[0]).toMatchObject({ kind: "transfer.in", amount: 4, ref: "t1", grantId: "t1.0" });
    const draw = planTransferIn(
      new Map(),
      { ref: "d", reason: null, slices: out.value.slices, source: BUDGET_DRAW_SOURCE },
      1,
      T0,
    );
    expect(draw.ok && draw.value.lots[0]?.source).toBe(BUDGET_DRAW_SOURCE);
  });

  it("refuses a total past 9·10^15 and a taken lot id", () => {
    const slice = planTransferOut([makeLot({ grantId: "s", amount: 10 })], cmd(10), DEFAULT_POLICY, T0);
    if (!slice.ok) throw new Error("planned");
    const full = byId([makeLot({ grantId: "big", amount: 9e15 })]);
    const over = planTransferIn(full, { ref: "t1", reason: null, slices: slice.value.slices }, 2, T0);
    expect(over.ok ? null : over.error.code).toBe("invalid_amount");
    const taken = planTransferIn(
      byId([makeLot({ grantId: "t1.0", amount: 1 })]),
      { ref: "t1", reason: null, slices: slice.value.slices },
      2,
      T0,
    );
    expect(taken.ok ? null : taken.error.code).toBe("invalid_request");
  });

  it("keeps lot ids within the id rule however long the transfer id", () => {
    expect(transferLotId("t1", 3)).toBe("t1.3");
    expect(transferLotId("t1", 3, "r")).toBe("t1.r3");
    const long = transferLotId("x".repeat(128), 999);
    expect(long).toMatch(/^xfer_[0-9a-f]{40}\.999$/);
    expect(long.length).toBeLessThanOrEqual(128);
  });
});

describe("property: a transfer moves credits and cost exactly, against a reference model", () => {
  it("Σ slices = amount, each source lot keeps Σ costs = its cost basis, terms are kept", () => {
    const lotArb = fc.record({
      amount: fc.integer({ min: 1, max: 1000 }),
      cost: fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: null }),
      priority: fc.integer({ min: 0, max: 5 }),
      expires: fc.option(fc.integer({ min: 1, max: 10 }), { nil: null }),
    });
    const opArb = fc.record({ transfer: fc.boolean(), amount: fc.integer({ min: 1, max: 800 }) });
    fc.assert(
      fc.property(
        fc.array(lotArb, { minLength: 1, maxLength: 6 }),
        fc.array(opArb, { maxLength: 12 }),
        (specs, ops) => {
          let lots = specs.map((s, i) =>
            makeLot({
              grantId: `g${i}`,
              amount: s.amount,
              priority: s.priority,
              expiresAtMs: s.expires === null ? null : T0 + s.expires * 86_400_000,
              type: s.cost === null ? "promotional" : "purchased",
              costBasis: s.cost === null ? null : { amount: s.cost, currency: "USD" },
            }),
          );
          const original = byId(lots);
          // Reference: per lot, credits that have left and the cost that has left, by floor(C·x/A) with BigInt.
          const left = new Map(lots.map((l) => [l.grantId, 0]));
          const costLeft = new Map(lots.map((l) => [l.grantId, 0]));
          const ref = (l: Lot, x: number) =>
            l.costBasis === null ? 0 : Number((BigInt(l.costBasis.amount) * BigInt(x)) / BigInt(l.amount));
          let free = lots.reduce((s, l) => s + l.amount, 0);
          let received = 0;
          for (const [n, op] of ops.entries()) {
            if (op.transfer) {
              const out = planTransferOut(lots, { ...cmd(op.amount), ref: `t${n}` }, DEFAULT_POLICY, T0);
              expect(out.ok).toBe(op.amount <= free);
              if (!out.ok) continue;
              expect(out.value.slices.reduce((s, x) => s + x.amount, 0)).toBe(op.amount);
              const into = planTransferIn(new Map(), { ref: `t${n}`, reason: null, slices: out.value.slices }, 1, T0);
              if (!into.ok) throw new Error("apply refused");
              for (const [i, s] of out.value.slices.entries()) {
                const src = original.get(s.sourceGrantId) as Lot;
                const was = left.get(src.grantId) as number;
                const cost = ref(src, was + s.amount) - ref(src, was);
                left.set(src.grantId, was + s.amount);
                costLeft.set(src.grantId, (costLeft.get(src.grantId) as number) + cost);
                expect(s.costBasis?.amount ?? 0).toBe(cost);
                const made = into.value.lots[i] as Lot;
                expect([made.type, made.priority, made.expiresAtMs, made.amount, made.sourceGrantId]).toEqual([
                  src.type,
                  src.priority,
                  src.expiresAtMs,
                  s.amount,
                  src.grantId,
                ]);
                expect(made.costBasis?.amount ?? 0).toBe(cost);
              }
              received += op.amount;
              const next = byId(lots);
              for (const l of out.value.lots) next.set(l.grantId, l);
              lots = [...next.values()];
            } else {
              const out = planDebit(lots, { ref: `d${n}`, unit: "credits", amount: op.amount }, DEFAULT_POLICY, T0);
              if (!out.ok) continue;
              const next = byId(lots);
              for (const l of out.value.lots) {
                const before = next.get(l.grantId) as Lot;
                const src = original.get(l.grantId) as Lot;
                const was = left.get(l.grantId) as number;
                const moved = before.remaining - l.remaining;
                expect(movementCost(src, before.remaining, l.remaining)).toBe(ref(src, was + moved) - ref(src, was));
                left.set(l.grantId, was + moved);
                costLeft.set(l.grantId, (costLeft.get(l.grantId) as number) + ref(src, was + moved) - ref(src, was));
                next.set(l.grantId, l);
              }
              lots = [...next.values()];
            }
            free = lots.reduce((s, l) => s + l.remaining - l.held, 0);
          }
          // Conservation per purchased lot: what left + what is still deferred = what was paid.
          for (const l of lots) {
            if (l.costBasis === null) continue;
            expect((costLeft.get(l.grantId) as number) + deferredCost(l)).toBe(l.costBasis.amount);
          }
          expect(received).toBeLessThanOrEqual(specs.reduce((s, x) => s + x.amount, 0));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("transferGuard", () => {
  it("refuses above max_transfer_amount, and across trees unless admin or finance", () => {
    const same = { from: "org", to: "org" };
    const cross = { from: "org-a", to: "org-b" };
    expect(transferGuard("finance", 10, 11, same)?.code).toBe("grant_limit_exceeded");
    expect(transferGuard("finance", 10, 10, same)).toBeNull();
    expect(transferGuard("finance", null, 10 ** 15, cross)).toBeNull();
    expect(transferGuard("admin", null, 1, cross)).toBeNull();
    // A role that may one day transfer inside its tree still may not cross trees.
    expect(transferGuard("support", null, 1, cross)?.code).toBe("forbidden");
    expect(transferGuard("support", null, 1, same)).toBeNull();
  });
});

describe("budget periods", () => {
  it("starts days, ISO weeks and months in UTC (hand-worked)", () => {
    const t = Date.parse("2026-12-03T10:00:00.000Z"); // a Thursday
    expect(new Date(periodStart("day", t)).toISOString()).toBe("2026-12-03T00:00:00.000Z");
    expect(new Date(periodStart("week", t)).toISOString()).toBe("2026-11-30T00:00:00.000Z");
    expect(new Date(periodStart("month", t)).toISOString()).toBe("2026-12-01T00:00:00.000Z");
    expect(new Date(nextPeriodStart("month", Date.parse("2026-12-01T00:00:00Z"))).toISOString()).toBe(
      "2027-01-01T00:00:00.000Z",
    );
    const sunday = Date.parse("2026-12-06T23:59:59.999Z");
    expect(new Date(periodStart("week", sunday)).toISOString()).toBe("2026-11-30T00:00:00.000Z");
  });

  it("property: the period holds the time, and the next period starts where it ends", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.constantFrom("day" as const, "week" as const, "month" as const),
        (t, period) => {
          const start = periodStart(period, t);
          const next = nextPeriodStart(period, start);
          expect(start).toBeLessThanOrEqual(t);
          expect(t).toBeLessThan(next);
          expect(periodStart(period, next)).toBe(next);
          if (period === "week") expect(new Date(start).getUTCDay()).toBe(1);
          if (period === "month") expect(new Date(start).getUTCDate()).toBe(1);
        },
      ),
    );
  });

  it("draws the whole shortfall or nothing, within the budget and the parent", () => {
    expect(budgetRemaining({ unit: "credits", period: "day", limit: 10 }, 12)).toBe(0);
    expect(planDrawAmount(5, 10, null)).toEqual({ draw: 5 });
    expect(planDrawAmount(11, 10, null)).toEqual({ drawable: 10 });
    expect(planDrawAmount(8, 10, 7)).toEqual({ drawable: 7 });
  });
});
