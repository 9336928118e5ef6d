/**
 * Conversions (src/ledger/convert.ts) against a reference in exact rational
 * arithmetic (BigInt cross-multiplication), written from the brief alone:
 * rounding always in the house's favour, so no sequence of conversions
 * creates value, and a converting draw is all or nothing.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ConversionRate, costIn, planConversion, valueIn } from "../../src/ledger";
import { makeLot, T0 } from "./fixtures";

const term = fc.integer({ min: 1, max: 1_000_000 });
const rateArb = fc.record({ numerator: term, denominator: term });
/** Up to 10^9: with terms up to 10^6 every product and quotient stays a safe integer. */
const amount = fc.integer({ min: 0, max: 1_000_000_000 });

/** x·n/d ≥ y exactly (cross-multiplied, no division). */
const worthAtLeast = (x: number, r: ConversionRate, y: number) =>
  BigInt(x) * BigInt(r.numerator) >= BigInt(y) * BigInt(r.denominator);

describe("valueIn / costIn: worked examples", () => {
  it("rounds value down and cost up", () => {
    // 1 token = 3/1000 credits: 1 000 tokens = 3 credits; 999 tokens = 2.997 -> 2.
    expect(valueIn(1_000, { numerator: 3, denominator: 1_000 })).toBe(3);
    expect(valueIn(999, { numerator: 3, denominator: 1_000 })).toBe(2);
    // 1 credit costs 1 000/3 = 333.3… tokens -> 334.
    expect(costIn(1, { numerator: 3, denominator: 1_000 })).toBe(334);
    expect(costIn(3, { numerator: 3, denominator: 1_000 })).toBe(1_000);
    // 1 GB = 10 credits: 7 credits cost 0.7 GB -> 1 GB.
    expect(costIn(7, { numerator: 10, denominator: 1 })).toBe(1);
    // The product passes 2^53: 10^15 · 7 / 999 983 = 7 000 119 002.02… -> 7 000 119 003.
    expect(costIn(1e15, { numerator: 999_983, denominator: 7 })).toBe(7_000_119_003);
    // Worth more than 2^53 − 1: capped there, which is still rounding down.
    expect(valueIn(9e15, { numerator: 10, denominator: 1 })).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe("valueIn / costIn: properties", () => {
  it("valueIn is the largest y that x is worth; costIn the least x worth y", () => {
    fc.assert(
      fc.property(amount, rateArb, (x, r) => {
        const y = valueIn(x, r);
        expect(worthAtLeast(x, r, y)).toBe(true);
        expect(worthAtLeast(x, r, y + 1)).toBe(false);
        const c = costIn(x, r);
        expect(worthAtLeast(c, r, x)).toBe(true);
        if (c > 0) expect(worthAtLeast(c - 1, r, x)).toBe(false);
      }),
      { numRuns: 2_000 },
    );
  });

  it("converting A -> B -> A never yields more than you started with", () => {
    fc.assert(
      fc.property(amount, rateArb, (x, r) => {
        const back = { numerator: r.denominator, denominator: r.numerator };
        expect(valueIn(valueIn(x, r), back)).toBeLessThanOrEqual(x);
        // Buying y of B with A and selling it back never returns more A than was paid.
        const y = Math.min(x, 1_000_000_000);
        expect(valueIn(y, back)).toBeLessThanOrEqual(costIn(y, r));
      }),
      { numRuns: 2_000 },
    );
  });

  it("no chain of conversions increases value in any unit (consistent prices in one numeraire)", () => {
    // Units 0..3 priced p[u] in a common numeraire; the rate u -> v is p[u]/p[v].
    const prices = fc.array(fc.integer({ min: 1, max: 10_000 }), { minLength: 4, maxLength: 4 });
    const hops = fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(prices, hops, fc.integer({ min: 0, max: 1_000_000_000 }), (p, path, start) => {
        let unit = 0;
        let held = start;
        const value = (u: number, x: number) => BigInt(x) * BigInt(p[u] ?? 1);
        let last = value(unit, held);
        for (const next of path) {
          if (next === unit) continue;
          held = valueIn(held, { numerator: p[unit] ?? 1, denominator: p[next] ?? 1 });
          unit = next;
          const now = value(unit, held);
          expect(now <= last).toBe(true);
          last = now;
        }
      }),
    );
  });
});

describe("planConversion", () => {
  const lotsArb = fc.array(
    fc.record({
      unit: fc.constantFrom("credits", "tokens", "gb", "gpu_seconds"),
      remaining: fc.integer({ min: 0, max: 10_000 }),
    }),
    { maxLength: 12 },
  );
  const sourcesArb = fc
    .subarray(["tokens", "gb", "gpu_seconds", "credits"])
    .chain((units) => fc.tuple(...units.map((u) => rateArb.map((rate) => ({ unit: u, rate })))));

  it("covers exactly the amount or takes nothing, never taking more than a unit has nor giving more than it is worth", () => {
    fc.assert(
      fc.property(lotsArb, sourcesArb, fc.integer({ min: 1, max: 20_000 }), (specs, sources, want) => {
        const lots = specs.map((s, i) =>
          makeLot({ grantId: `g${i}`, unit: s.unit, amount: s.remaining || 1, remaining: s.remaining }),
        );
        const free = (u: string) => specs.filter((s) => s.unit === u).reduce((n, s) => n + s.remaining, 0);
        const plan = planConversion(lots, "credits", want, sources, T0 + 1);
        // Reference: own credits plus, per other listed unit (first listing only), what all of it is worth.
        const seen = new Set(["credits"]);
        let reach = free("credits");
        for (const s of sources) {
          if (seen.has(s.unit)) continue;
          seen.add(s.unit);
          reach += Number((BigInt(free(s.unit)) * BigInt(s.rate.numerator)) / BigInt(s.rate.denominator));
        }
        if (reach < want) {
          expect(plan).toEqual({
            ok: false,
            error: { code: "insufficient_credits", available: reach, requested: want },
          });
          return;
        }
        expect(plan.ok).toBe(true);
        if (!plan.ok) return;
        const { own, legs } = plan.value;
        expect(own).toBe(Math.min(free("credits"), want));
        expect(own + legs.reduce((n, l) => n + l.covers, 0)).toBe(want);
        for (const leg of legs) {
          expect(leg.unit).not.toBe("credits");
          expect(leg.take).toBeLessThanOrEqual(free(leg.unit));
          expect(worthAtLeast(leg.take, leg.rate, leg.covers)).toBe(true);
          expect(leg.covers).toBeGreaterThan(0);
        }
        expect(new Set(legs.map((l) => l.unit)).size).toBe(legs.length);
      }),
      { numRuns: 1_000 },
    );
  });

  it("draws sources in list order: a later unit is touched only once the earlier ones are spent", () => {
    const lots = [
      makeLot({ grantId: "c", unit: "credits", amount: 5, remaining: 5 }),
      makeLot({ grantId: "t", unit: "tokens", amount: 2_000, remaining: 2_000 }),
      makeLot({ grantId: "g", unit: "gb", amount: 10, remaining: 10 }),
    ];
    const sources = [
      { unit: "tokens", rate: { numerator: 3, denominator: 1_000 } },
      { unit: "gb", rate: { numerator: 10, denominator: 1 } },
    ];
    // 20 credits: 5 own; 2 000 tokens are worth 6 -> all 2 000 taken for 6; 9 left from gb at 10 each -> 1 GB.
    expect(planConversion(lots, "credits", 20, sources, T0 + 1)).toEqual({
      ok: true,
      value: {
        own: 5,
        legs: [
          { unit: "tokens", rate: sources[0]?.rate, take: 2_000, covers: 6 },
          { unit: "gb", rate: sources[1]?.rate, take: 1, covers: 9 },
        ],
      },
    });
    // 7 credits: 5 own, 2 from tokens: ceil(2 · 1 000 / 3) = 667 tokens.
    expect(planConversion(lots, "credits", 7, sources, T0 + 1)).toMatchObject({
      ok: true,
      value: { own: 5, legs: [{ unit: "tokens", take: 667, covers: 2 }] },
    });
    // A unit with no rate listed never mixes: without sources, 6 credits are short.
    expect(planConversion(lots, "credits", 6, [], T0 + 1)).toEqual({
      ok: false,
      error: { code: "insufficient_credits", available: 5, requested: 6 },
    });
  });
});
