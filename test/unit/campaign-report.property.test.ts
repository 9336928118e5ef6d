/**
 * The campaign report's pure parts (src/reports/campaigns.ts): the rates in
 * basis points against exact rational arithmetic, the variants read from a
 * stored spec, a summed row turned into served figures, and the CSV table.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { basisPoints, campaignTable, declaredVariants, variantFigures } from "../../src/reports/campaigns";

describe("basisPoints", () => {
  it("is the largest b with b × whole ≤ part × 10 000 (floor), 0 for an empty whole, at any size", () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), (x, y) => {
        const whole = y;
        const part = whole === 0 ? x : x % (whole + 1);
        const b = basisPoints(part, whole);
        if (whole === 0) {
          expect(b).toBe(0);
          return;
        }
        expect(BigInt(b) * BigInt(whole) <= BigInt(part) * 10_000n).toBe(true);
        expect(BigInt(b + 1) * BigInt(whole) > BigInt(part) * 10_000n).toBe(true);
        expect(b).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThanOrEqual(10_000);
      }),
    );
  });

  it("worked examples", () => {
    expect(basisPoints(1, 3)).toBe(3333);
    expect(basisPoints(2, 3)).toBe(6666);
    expect(basisPoints(800, 1000)).toBe(8000);
    expect(basisPoints(5, 5)).toBe(10_000);
    expect(basisPoints(0, 7)).toBe(0);
    expect(basisPoints(9_000_000_000_000_000, 9_000_000_000_000_001)).toBe(9999);
  });
});

describe("declaredVariants", () => {
  it("the spec's variants in order; 'default' when it has none, null, or is not JSON", () => {
    const spec = (variants: unknown) => JSON.stringify({ grant: { amount: 1 }, variants });
    expect(declaredVariants(spec([{ variant: "b" }, { variant: "a" }]))).toEqual(["b", "a"]);
    expect(declaredVariants(spec(null))).toEqual(["default"]);
    expect(declaredVariants(JSON.stringify({ grant: {} }))).toEqual(["default"]);
    expect(declaredVariants(spec([]))).toEqual(["default"]);
    expect(declaredVariants("{not json")).toEqual(["default"]);
    expect(declaredVariants("null")).toEqual(["default"]);
    expect(declaredVariants(spec([{ variant: "a" }, { variant: "a" }, { weight: 1 }]))).toEqual(["a"]);
  });
});

describe("variantFigures and the CSV table", () => {
  it("outflows are served positive, missing sums are 0, rates follow", () => {
    const f = variantFigures({
      variant: "trial_7d",
      redeemed: 2,
      converted: 1,
      issued: 1000,
      consumed: -200,
      expired: -800,
    });
    expect(f).toEqual({
      variant: "trial_7d",
      redeemed: 2,
      issued: 1000,
      consumed: 200,
      expired: 800,
      converted: 1,
      conversion_bps: 5000,
      breakage_bps: 8000,
    });
    const none = variantFigures({
      variant: "x",
      redeemed: 1,
      converted: 0,
      issued: null,
      consumed: null,
      expired: null,
    });
    expect(none).toMatchObject({ issued: 0, consumed: 0, expired: 0, breakage_bps: 0, conversion_bps: 0 });
    expect(Object.is(none.expired, 0) && Object.is(none.consumed, 0)).toBe(true);
    expect(() =>
      variantFigures({ variant: "x", redeemed: 1, converted: 0, issued: 2 ** 53, consumed: 0, expired: 0 }),
    ).toThrow(/2\^53/);
    expect(campaignTable({ campaign_id: "c", unit: "credits", variants: [f] })).toEqual({
      header: [
        "campaign_id",
        "unit",
        "variant",
        "redeemed",
        "issued",
        "consumed",
        "expired",
        "converted",
        "conversion_bps",
        "breakage_bps",
      ],
      rows: [["c", "credits", "trial_7d", 2, 1000, 200, 800, 1, 5000, 8000]],
    });
  });
});
