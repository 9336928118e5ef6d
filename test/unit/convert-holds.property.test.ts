/**
 * Converting holds (src/ledger/holds.ts captureByAllocation, planCloseHold;
 * src/ledger/convert.ts holdAllocations) against a small reference model in
 * exact rational arithmetic: a hold of A in `credits` reserved partly in
 * credits and partly in other units; a capture of c spreads over the legs in
 * draw order, each converted leg giving the least of its unit worth its part
 * (found here by search, not by costIn). What is captured is worth at least
 * c, no lot gives more than it reserved, capture + release is what it
 * reserved, release restores every lot, and no sequence creates value.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ConversionRate,
  type ConvertingPlan,
  captureByAllocation,
  DEFAULT_POLICY,
  type Hold,
  holdAllocations,
  holdLegs,
  type Lot,
  planCloseHold,
  planDebitMaybeConverting,
} from "../../src/ledger";
import { makeHold, makeLot, T0 } from "./fixtures";

const NOW = T0 + 1;
const OTHER = ["tokens", "gb", "gpu_seconds"] as const;
const term = fc.integer({ min: 1, max: 1_000 });
const rateArb = fc.record({ numerator: term, denominator: term });
const ratesArb = fc.tuple(rateArb, rateArb, rateArb);
const lotsArb = fc.array(
  fc.record({ unit: fc.constantFrom("credits", ...OTHER), remaining: fc.integer({ min: 1, max: 5_000 }) }),
  { minLength: 1, maxLength: 10 },
);
const orderArb = fc.shuffledSubarray([...OTHER], { minLength: 1 });

type Rates = Map<string, ConversionRate>;
const rateOf = (rates: Rates, unit: string): ConversionRate => rates.get(unit) ?? { numerator: 1, denominator: 1 };

/** Exact value in credits of amounts per unit, as a fraction over the product of all denominators. */
function valueOver(rates: Rates, amounts: ReadonlyMap<string, number>): { num: bigint; den: bigint } {
  let den = 1n;
  for (const r of rates.values()) den *= BigInt(r.denominator);
  let num = 0n;
  for (const [unit, x] of amounts) {
    const r = rateOf(rates, unit);
    num += (BigInt(x) * BigInt(r.numerator) * den) / BigInt(r.denominator);
  }
  return { num, den };
}

/** The least x in [0, max] with x·n ≥ part·d (x of the leg's unit worth at least `part` credits), by search. */
function leastCovering(part: number, rate: ConversionRate, max: number): number {
  let lo = 0;
  let hi = max;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (BigInt(mid) * BigInt(rate.numerator) >= BigInt(part) * BigInt(rate.denominator)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Reference: per allocation, what a capture of `c` takes, from the plan's own covers (not derived). */
function referenceCapture(plan: ConvertingPlan, c: number): number[] {
  const legs = [
    { rate: null as ConversionRate | null, covers: plan.applied.reduce((n, a) => n + a.amount, 0), lots: plan.applied },
    ...plan.converted.map((l) => ({ rate: l.rate as ConversionRate | null, covers: l.covers, lots: l.applied })),
  ];
  const out: number[] = [];
  let left = c;
  for (const leg of legs) {
    const part = Math.min(left, leg.covers);
    left -= part;
    const reserved = leg.lots.reduce((n, a) => n + a.amount, 0);
    let take = leg.rate ? leastCovering(part, leg.rate, reserved) : part;
    for (const a of leg.lots) {
      const n = Math.min(take, a.amount);
      out.push(n);
      take -= n;
    }
  }
  return out;
}

interface World {
  lots: Map<string, Lot>;
  rates: Rates;
  order: string[];
}

function world(specs: { unit: string; remaining: number }[], rs: ConversionRate[], order: string[]): World {
  const rates: Rates = new Map(OTHER.map((u, i) => [u, rs[i] ?? { numerator: 1, denominator: 1 }]));
  const lots = new Map(
    specs.map((s, i) => {
      const lot = makeLot({ grantId: `g${i}`, unit: s.unit, amount: s.remaining, remaining: s.remaining });
      return [lot.grantId, lot] as const;
    }),
  );
  return { lots, rates, order };
}

/** Reserves `amount` credits converting; null when even converting it is short. */
function reserve(w: World, holdId: string, amount: number): { hold: Hold; plan: ConvertingPlan } | null {
  const policy = { ...DEFAULT_POLICY, convert_from: w.order };
  const sources = [...w.rates].map(([unit, rate]) => ({ unit, rate }));
  const planned = planDebitMaybeConverting(
    w.lots.values(),
    { ref: holdId, unit: "credits", amount },
    policy,
    NOW,
    sources,
    "hold",
  );
  if (!planned.ok) return null;
  for (const lot of planned.value.lots) w.lots.set(lot.grantId, lot);
  const hold = makeHold({ holdId, amount, allocations: holdAllocations(planned.value) });
  return { hold, plan: planned.value };
}

/** What the captures take per unit. */
function perUnit(hold: Hold, captures: number[]): Map<string, number> {
  const out = new Map<string, number>();
  hold.allocations.forEach((a, i) => {
    const unit = a.conversion?.unit ?? hold.unit;
    out.set(unit, (out.get(unit) ?? 0) + (captures[i] ?? 0));
  });
  return out;
}

const remainingByUnit = (lots: Map<string, Lot>) => {
  const out = new Map<string, number>();
  for (const l of lots.values()) out.set(l.unit, (out.get(l.unit) ?? 0) + l.remaining);
  return out;
};

describe("converting holds: worked example", () => {
  // 5 credits; 2 000 tokens at 3/1 000 (worth 6); 10 GB at 10/1. A hold of 20: 5 own, 2 000 tokens (6), 1 GB (9).
  const w = () =>
    world(
      [
        { unit: "credits", remaining: 5 },
        { unit: "tokens", remaining: 2_000 },
        { unit: "gb", remaining: 10 },
      ],
      [
        { numerator: 3, denominator: 1_000 },
        { numerator: 10, denominator: 1 },
        { numerator: 1, denominator: 1 },
      ],
      ["tokens", "gb"],
    );

  it("stores each leg's unit and rate, and derives what each leg covers", () => {
    const held = reserve(w(), "h", 20);
    expect(held?.hold.allocations).toEqual([
      { grantId: "g0", amount: 5 },
      { grantId: "g1", amount: 2_000, conversion: { unit: "tokens", numerator: 3, denominator: 1_000 } },
      { grantId: "g2", amount: 1, conversion: { unit: "gb", numerator: 10, denominator: 1 } },
    ]);
    expect(holdLegs(held?.hold ?? makeHold({ holdId: "x", allocations: [] })).map((l) => [l.unit, l.covers])).toEqual([
      ["credits", 5],
      ["tokens", 6],
      ["gb", 9],
    ]);
  });

  it("captures in draw order, converting each part back rounded up", () => {
    const hold = reserve(w(), "h", 20)?.hold;
    if (!hold) throw new Error("reserve failed");
    // 3: from own credits only.
    expect(captureByAllocation(hold, 3)).toEqual([3, 0, 0]);
    // 7: 5 own, 2 credits of tokens = ceil(2 · 1 000 / 3) = 667 tokens.
    expect(captureByAllocation(hold, 7)).toEqual([5, 667, 0]);
    // 11: 5 own, 6 of tokens = all 2 000; nothing of GB.
    expect(captureByAllocation(hold, 11)).toEqual([5, 2_000, 0]);
    // 12: 1 credit of GB costs 0.1 GB -> 1 GB (worth 10: the house rounds up).
    expect(captureByAllocation(hold, 12)).toEqual([5, 2_000, 1]);
    expect(captureByAllocation(hold, 20)).toEqual([5, 2_000, 1]);
    expect(captureByAllocation(hold, 0)).toEqual([0, 0, 0]);
  });

  it("writes entries in each lot's unit with the rate, capture + release = reserved", () => {
    const ww = w();
    const hold = reserve(ww, "h", 20)?.hold;
    if (!hold) throw new Error("reserve failed");
    const closed = planCloseHold(ww.lots, hold, 7, NOW + 1);
    if (!closed.ok) throw new Error("close failed");
    const tok = { to_unit: "credits", numerator: 3, denominator: 1_000 };
    const gb = { to_unit: "credits", numerator: 10, denominator: 1 };
    expect(closed.value.entries.map((e) => [e.kind, e.unit, e.amount, e.heldDelta, e.conversion ?? null])).toEqual([
      ["hold.captured", "credits", -5, -5, null],
      ["hold.captured", "tokens", -667, -667, tok],
      ["hold.released", "tokens", 0, -1_333, tok],
      ["hold.released", "gb", 0, -1, gb],
    ]);
    expect(closed.value.hold).toMatchObject({ status: "captured", captured: 7, released: 13 });
    expect(closed.value.lots.map((l) => [l.grantId, l.remaining, l.held])).toEqual([
      ["g0", 0, 0],
      ["g1", 1_333, 0],
      ["g2", 10, 0],
    ]);
  });

  it("a hold written before conversions (no conversion members) closes exactly as before", () => {
    const lots = new Map([
      ["a", makeLot({ grantId: "a", amount: 4, held: 4 })],
      ["b", makeLot({ grantId: "b", amount: 9, held: 6 })],
    ]);
    const hold = makeHold({
      holdId: "old",
      allocations: [
        { grantId: "a", amount: 4 },
        { grantId: "b", amount: 6 },
      ],
    });
    expect(captureByAllocation(hold, 7)).toEqual([4, 3]);
    const closed = planCloseHold(lots, hold, 7, NOW);
    expect(closed.ok && closed.value.entries.map((e) => [e.grantId, e.kind, e.amount, e.heldDelta])).toEqual([
      ["a", "hold.captured", -4, -4],
      ["b", "hold.captured", -3, -3],
      ["b", "hold.released", 0, -3],
    ]);
  });
});

describe("converting holds: properties", () => {
  it("covers match the reservation; a capture matches the reference and is worth at least c", () => {
    fc.assert(
      fc.property(
        lotsArb,
        ratesArb,
        orderArb,
        fc.integer({ min: 1, max: 20_000 }),
        fc.nat(),
        (specs, rs, order, a, k) => {
          const w = world(specs, rs, order);
          const held = reserve(w, "h", a);
          if (!held) return;
          const { hold, plan } = held;
          // The derived covers are the plan's.
          const legs = holdLegs(hold);
          expect(legs.map((l) => l.covers).filter((n) => n > 0)).toEqual(
            [plan.applied.reduce((n, x) => n + x.amount, 0), ...plan.converted.map((l) => l.covers)].filter(
              (n) => n > 0,
            ),
          );
          const c = k % (a + 1);
          const captures = captureByAllocation(hold, c);
          expect(captures).toEqual(referenceCapture(plan, c));
          hold.allocations.forEach((alloc, i) => {
            expect(captures[i]).toBeGreaterThanOrEqual(0);
            expect(captures[i]).toBeLessThanOrEqual(alloc.amount);
          });
          // The house never under-charges: the captured lots are worth at least c credits.
          const v = valueOver(w.rates, perUnit(hold, captures));
          expect(v.num >= BigInt(c) * v.den).toBe(true);
          // A full capture takes exactly what was reserved, as a converting debit would.
          expect(captureByAllocation(hold, a)).toEqual(hold.allocations.map((x) => x.amount));
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("capture + release of each lot is what it reserved; release restores every lot", () => {
    fc.assert(
      fc.property(
        lotsArb,
        ratesArb,
        orderArb,
        fc.integer({ min: 1, max: 20_000 }),
        fc.nat(),
        (specs, rs, order, a, k) => {
          const w = world(specs, rs, order);
          const before = new Map([...w.lots].map(([id, l]) => [id, { ...l }]));
          const held = reserve(w, "h", a);
          if (!held) return;
          const released = planCloseHold(w.lots, held.hold, 0, NOW);
          if (!released.ok) throw new Error("release failed");
          for (const lot of released.value.lots) {
            expect(lot).toEqual(before.get(lot.grantId));
            expect(lot.unit).toBe(before.get(lot.grantId)?.unit);
          }
          const c = k % (a + 1);
          const captured = planCloseHold(w.lots, held.hold, c, NOW);
          if (!captured.ok) throw new Error("capture failed");
          const captures = captureByAllocation(held.hold, c);
          held.hold.allocations.forEach((alloc, i) => {
            const mine = captured.value.entries.filter((e) => e.grantId === alloc.grantId);
            expect(mine.reduce((n, e) => n - e.heldDelta, 0)).toBe(alloc.amount);
            expect(mine.reduce((n, e) => n - e.amount, 0)).toBe(captures[i]);
            for (const e of mine) {
              expect(e.unit).toBe(alloc.conversion?.unit ?? "credits");
              expect(e.conversion ?? null).toEqual(
                alloc.conversion
                  ? {
                      to_unit: "credits",
                      numerator: alloc.conversion.numerator,
                      denominator: alloc.conversion.denominator,
                    }
                  : null,
              );
            }
          });
          expect(captured.value.hold).toMatchObject({ captured: c, released: a - c });
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it("no sequence of converting holds, captures and releases creates value", () => {
    const stepArb = fc.record({ amount: fc.integer({ min: 1, max: 6_000 }), capture: fc.nat(), release: fc.boolean() });
    fc.assert(
      fc.property(
        lotsArb,
        ratesArb,
        orderArb,
        fc.array(stepArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
        (specs, rs, order, steps, closeOrder) => {
          const w = world(specs, rs, order);
          const start = valueOver(w.rates, remainingByUnit(w.lots));
          const open: { hold: Hold; c: number }[] = [];
          steps.forEach((s, i) => {
            const held = reserve(w, `h${i}`, s.amount);
            if (held) open.push({ hold: held.hold, c: s.release ? 0 : s.capture % (s.amount + 1) });
          });
          let charged = 0n;
          // Close in an arbitrary order.
          while (open.length > 0) {
            const [next] = open.splice((closeOrder[open.length - 1] ?? 0) % open.length, 1);
            if (!next) break;
            const closed = planCloseHold(w.lots, next.hold, next.c, NOW);
            if (!closed.ok) throw new Error("close failed");
            for (const lot of closed.value.lots) {
              expect(lot.held).toBeGreaterThanOrEqual(0);
              expect(lot.remaining).toBeGreaterThanOrEqual(lot.held);
              w.lots.set(lot.grantId, lot);
            }
            charged += BigInt(next.c);
          }
          for (const lot of w.lots.values()) expect(lot.held).toBe(0);
          // What is left is worth at most what was there less what was charged: nothing created.
          const end = valueOver(w.rates, remainingByUnit(w.lots));
          expect(end.den).toBe(start.den);
          expect(end.num <= start.num - charged * start.den).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
