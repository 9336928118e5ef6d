import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CREDIT_TYPES,
  type CreditType,
  DEFAULT_POLICY,
  effectivePolicy,
  type Lot,
  lotComparator,
  mergeOverrides,
  type Policy,
  type PolicyOverrides,
  planDebit,
  SORT_KEYS,
  type SortKey,
} from "../../src/ledger";
import { makeLot, T0 } from "./fixtures";

const policyWith = (over: Partial<Policy>): Policy => ({ ...DEFAULT_POLICY, ...over });

/** Ids in consumption order under `policy`. */
const drawOrder = (lots: Lot[], policy: Policy): string[] =>
  [...lots].sort(lotComparator(policy)).map((l) => l.grantId);

describe("default consumption policy", () => {
  it("is priority, expires_at, type, created with promotional → compensatory → purchased", () => {
    expect(DEFAULT_POLICY.order).toEqual(["priority", "expires_at", "type", "created"]);
    expect(DEFAULT_POLICY.type_order).toEqual(["promotional", "compensatory", "purchased"]);
    expect(DEFAULT_POLICY.hold_on_expiry).toBe("release");
    expect(DEFAULT_POLICY.require_verified_for_promotional).toBe(false);
  });

  it("draws lower priority first, before any later key", () => {
    const lots = [
      makeLot({ grantId: "p5-soon", priority: 5, expiresAtMs: T0 + 10, type: "promotional", createdOrder: 1 }),
      makeLot({ grantId: "p1-never", priority: 1, expiresAtMs: null, type: "purchased", createdOrder: 2 }),
    ];
    expect(drawOrder(lots, DEFAULT_POLICY)).toEqual(["p1-never", "p5-soon"]);
  });

  it("breaks a priority tie by soonest expiry, lots without expiry last", () => {
    const lots = [
      makeLot({ grantId: "never", expiresAtMs: null, type: "promotional", createdOrder: 1 }),
      makeLot({ grantId: "late", expiresAtMs: T0 + 5000, type: "purchased", createdOrder: 2 }),
      makeLot({ grantId: "soon", expiresAtMs: T0 + 10, type: "purchased", createdOrder: 3 }),
    ];
    expect(drawOrder(lots, DEFAULT_POLICY)).toEqual(["soon", "late", "never"]);
  });

  it("breaks a priority and expiry tie by type_order", () => {
    const lots = [
      makeLot({ grantId: "pur", type: "purchased", createdOrder: 1 }),
      makeLot({ grantId: "comp", type: "compensatory", createdOrder: 2 }),
      makeLot({ grantId: "promo", type: "promotional", createdOrder: 3 }),
    ];
    expect(drawOrder(lots, DEFAULT_POLICY)).toEqual(["promo", "comp", "pur"]);
  });

  it("breaks a full tie by creation order, oldest first", () => {
    const lots = [
      makeLot({ grantId: "c3", createdOrder: 3, effectiveAtMs: T0 - 9000 }),
      makeLot({ grantId: "c1", createdOrder: 1, effectiveAtMs: T0 - 10 }),
      makeLot({ grantId: "c2", createdOrder: 2, effectiveAtMs: T0 - 500 }),
    ];
    // effective_at is not in the default order, so the older effective_at of c3 does not matter.
    expect(drawOrder(lots, DEFAULT_POLICY)).toEqual(["c1", "c2", "c3"]);
  });

  it("is what planDebit follows", () => {
    const lots = [
      makeLot({ grantId: "pur", type: "purchased", amount: 5, createdOrder: 1 }),
      makeLot({ grantId: "promo-never", type: "promotional", amount: 5, createdOrder: 2 }),
      makeLot({ grantId: "promo-soon", type: "promotional", amount: 5, expiresAtMs: T0 + 60_000, createdOrder: 3 }),
      makeLot({ grantId: "first", priority: 0, amount: 5, createdOrder: 4 }),
    ];
    const plan = planDebit(lots, { ref: "d", unit: "credits", amount: 20 }, DEFAULT_POLICY, T0);
    if (!plan.ok) throw new Error("debit refused");
    expect(plan.value.applied.map((a) => a.grantId)).toEqual(["first", "promo-soon", "promo-never", "pur"]);
  });
});

describe("each sort key alone", () => {
  // Creation order is the reverse of what each key alone asks for, so only the key can explain the result.
  const mk = (i: number, over: Partial<Lot>) => makeLot({ grantId: `g${i}`, createdOrder: 10 - i, ...over });

  it("priority: ascending", () => {
    const lots = [mk(1, { priority: 0 }), mk(2, { priority: 7 }), mk(3, { priority: 1_000_000 })];
    expect(drawOrder(lots, policyWith({ order: ["priority"] }))).toEqual(["g1", "g2", "g3"]);
  });

  it("expires_at: soonest first, nulls last", () => {
    const lots = [mk(1, { expiresAtMs: T0 + 1 }), mk(2, { expiresAtMs: T0 + 2 }), mk(3, { expiresAtMs: null })];
    expect(drawOrder(lots, policyWith({ order: ["expires_at"] }))).toEqual(["g1", "g2", "g3"]);
  });

  it("type: by type_order, custom orders respected", () => {
    const lots = [mk(1, { type: "promotional" }), mk(2, { type: "compensatory" }), mk(3, { type: "purchased" })];
    expect(drawOrder(lots, policyWith({ order: ["type"] }))).toEqual(["g1", "g2", "g3"]);
    const reversed = policyWith({ order: ["type"], type_order: ["purchased", "compensatory", "promotional"] });
    expect(drawOrder(lots, reversed)).toEqual(["g3", "g2", "g1"]);
  });

  it("type: types missing from type_order come after the listed ones, in canonical order", () => {
    const lots = [mk(1, { type: "promotional" }), mk(2, { type: "compensatory" }), mk(3, { type: "purchased" })];
    expect(drawOrder(lots, policyWith({ order: ["type"], type_order: ["purchased"] }))).toEqual(["g3", "g1", "g2"]);
  });

  it("effective_at: oldest first", () => {
    const lots = [mk(1, { effectiveAtMs: T0 - 300 }), mk(2, { effectiveAtMs: T0 - 200 }), mk(3, { effectiveAtMs: T0 })];
    expect(drawOrder(lots, policyWith({ order: ["effective_at"] }))).toEqual(["g1", "g2", "g3"]);
  });

  it("created: oldest first", () => {
    const lots = [mk(3, { priority: 0 }), mk(1, { priority: 9 }), mk(2, {})];
    expect(drawOrder(lots, policyWith({ order: ["created"] }))).toEqual(["g3", "g2", "g1"]);
  });

  it("created is the final tie-break even when the order omits it", () => {
    const lots = [mk(1, { priority: 2 }), mk(2, { priority: 1 }), mk(3, { priority: 1 })];
    expect(drawOrder(lots, policyWith({ order: ["priority"] }))).toEqual(["g3", "g2", "g1"]);
    expect(drawOrder(lots, policyWith({ order: [] }))).toEqual(["g3", "g2", "g1"]);
  });

  it("a later key only decides ties of the earlier ones", () => {
    const lots = [
      mk(1, { expiresAtMs: T0 + 1, priority: 2 }),
      mk(2, { expiresAtMs: T0 + 2, priority: 1 }),
      mk(3, { expiresAtMs: T0 + 3, priority: 1 }),
    ];
    expect(drawOrder(lots, policyWith({ order: ["expires_at", "priority"] }))).toEqual(["g1", "g2", "g3"]);
    expect(drawOrder(lots, policyWith({ order: ["priority", "expires_at"] }))).toEqual(["g2", "g3", "g1"]);
  });
});

/** An independent reading of API.md's order: each lot becomes a tuple of numbers compared left to right. */
function tupleOf(lot: Lot, policy: Policy): number[] {
  const rank = (t: CreditType) => {
    const i = policy.type_order.indexOf(t);
    return i === -1 ? 100 + CREDIT_TYPES.indexOf(t) : i;
  };
  const key: Record<SortKey, number> = {
    priority: lot.priority,
    expires_at: lot.expiresAtMs ?? Number.POSITIVE_INFINITY,
    type: rank(lot.type),
    effective_at: lot.effectiveAtMs,
    created: lot.createdOrder,
  };
  return [...policy.order.map((k) => key[k]), lot.createdOrder];
}

function compareTuples(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

describe("lotComparator against a tuple model", () => {
  const arbLot = fc.record({
    priority: fc.constantFrom(0, 1, 5, 100),
    expiresAtMs: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }),
    type: fc.constantFrom(...CREDIT_TYPES),
    effectiveAtMs: fc.integer({ min: -3, max: 0 }),
  });
  const arbPolicy = fc.record({
    order: fc.shuffledSubarray([...SORT_KEYS]),
    type_order: fc.shuffledSubarray([...CREDIT_TYPES]),
  });

  it("sorts random lots exactly as the tuple model does", () => {
    fc.assert(
      fc.property(fc.array(arbLot, { maxLength: 12 }), arbPolicy, (raw, p) => {
        const policy = policyWith(p);
        const lots = raw.map((r, i) =>
          makeLot({ grantId: `g${i}`, ...r, createdOrder: (i * 7) % 13, expiresAtMs: r.expiresAtMs }),
        );
        const expected = [...lots]
          .sort((a, b) => compareTuples(tupleOf(a, policy), tupleOf(b, policy)))
          .map((l) => l.grantId);
        expect(drawOrder(lots, policy)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});

describe("effectivePolicy", () => {
  const global: Policy = {
    order: ["expires_at", "priority"],
    type_order: ["purchased", "promotional", "compensatory"],
    require_verified_for_promotional: true,
    hold_on_expiry: "capture",
  };

  it("is the global policy without overrides", () => {
    expect(effectivePolicy(global, null)).toEqual(global);
    expect(effectivePolicy(global, {})).toEqual(global);
  });

  it("takes each overridden field and keeps the rest from the global policy", () => {
    expect(effectivePolicy(global, { order: ["created"], hold_on_expiry: "release" })).toEqual({
      ...global,
      order: ["created"],
      hold_on_expiry: "release",
    });
    expect(effectivePolicy(global, { require_verified_for_promotional: false })).toEqual({
      ...global,
      require_verified_for_promotional: false,
    });
    expect(effectivePolicy(global, { type_order: ["compensatory"] }).type_order).toEqual(["compensatory"]);
  });

  it("falls back to the global field for an override set to null", () => {
    const overrides: PolicyOverrides = {
      order: null,
      type_order: null,
      require_verified_for_promotional: null,
      hold_on_expiry: null,
    };
    expect(effectivePolicy(global, overrides)).toEqual(global);
  });
});

describe("mergeOverrides", () => {
  it("adds and replaces the fields a patch gives", () => {
    const current: PolicyOverrides = { order: ["priority"] };
    expect(mergeOverrides(current, { order: ["created"], hold_on_expiry: "capture" })).toEqual({
      order: ["created"],
      hold_on_expiry: "capture",
    });
  });

  it("drops an override set to null and keeps fields the patch omits", () => {
    const current: PolicyOverrides = { order: ["priority"], hold_on_expiry: "capture" };
    const next = mergeOverrides(current, { order: null });
    expect(next).toEqual({ hold_on_expiry: "capture" });
    expect("order" in next).toBe(false);
    expect(effectivePolicy(DEFAULT_POLICY, next).order).toEqual(DEFAULT_POLICY.order);
  });

  it("keeps false as a real override (only null drops)", () => {
    const next = mergeOverrides({}, { require_verified_for_promotional: false });
    expect(next).toEqual({ require_verified_for_promotional: false });
    const global = policyWith({ require_verified_for_promotional: true });
    expect(effectivePolicy(global, next).require_verified_for_promotional).toBe(false);
  });

  it("does not modify the current overrides", () => {
    const current: PolicyOverrides = Object.freeze<PolicyOverrides>({ order: ["priority"], hold_on_expiry: "capture" });
    mergeOverrides(current, { order: null, type_order: ["purchased"] });
    expect(current).toEqual({ order: ["priority"], hold_on_expiry: "capture" });
  });
});
