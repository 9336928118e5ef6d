import { describe, expect, it } from "vitest";
import {
  balanceOf,
  type ClosePlan,
  type GrantPlan,
  InvariantViolation,
  type LedgerError,
  type Lot,
  lotStatus,
  MAX_ACCOUNT_TOTAL,
  MAX_AMOUNT,
  nextExpiryMs,
  planCloseHold,
  planExpire,
  planGrant,
  planVoid,
  type Result,
} from "../../src/ledger";
import { byId, deepFreeze, grantCmd, makeHold, makeLot, T0 } from "./fixtures";

const now = T0;

function value<T>(r: Result<T, LedgerError>): T {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.error)}`);
  return r.value;
}

const code = (r: Result<unknown, LedgerError>) => (r.ok ? "ok" : r.error.code);

describe("planGrant", () => {
  it("issues a lot effective now by default, with one grant entry", () => {
    const plan: GrantPlan = value(
      planGrant([], grantCmd({ grantId: "g1", amount: 250, type: "promotional", priority: 7 }), 4, now),
    );
    expect(plan.lot).toMatchObject({
      grantId: "g1",
      amount: 250,
      remaining: 250,
      held: 0,
      priority: 7,
      effectiveAtMs: now,
      expiresAtMs: null,
      createdAtMs: now,
      createdOrder: 4,
      voidedAtMs: null,
    });
    expect(plan.entries).toEqual([
      {
        kind: "grant",
        unit: "credits",
        amount: 250,
        heldDelta: 0,
        grantId: "g1",
        creditType: "promotional",
        ref: null,
        reason: null,
        effectiveAtMs: now,
      },
    ]);
  });

  it("keeps a given effective_at, past or future, and marks transferred lots transfer.in", () => {
    const past = value(planGrant([], grantCmd({ grantId: "p", effectiveAtMs: now - 10_000 }), 1, now));
    expect(past.lot.effectiveAtMs).toBe(now - 10_000);
    expect(past.entries[0]?.effectiveAtMs).toBe(now - 10_000);
    const future = value(planGrant([], grantCmd({ grantId: "f", effectiveAtMs: now + 10_000 }), 1, now));
    expect(future.lot.effectiveAtMs).toBe(now + 10_000);
    expect(lotStatus(future.lot, now)).toBe("pending");
    const moved = value(planGrant([], grantCmd({ grantId: "t", sourceGrantId: "src" }), 1, now));
    expect(moved.entries[0]?.kind).toBe("transfer.in");
  });

  it("requires expires_at after effective_at and after now", () => {
    const at = (effectiveAtMs: number | null, expiresAtMs: number) =>
      code(planGrant([], grantCmd({ grantId: "g", effectiveAtMs, expiresAtMs }), 1, now));
    expect(at(null, now)).toBe("invalid_request");
    expect(at(null, now - 1)).toBe("invalid_request");
    expect(at(null, now + 1)).toBe("ok");
    expect(at(now - 100, now)).toBe("invalid_request"); // after the start but not in the future
    expect(at(now - 100, now + 1)).toBe("ok");
    expect(at(now + 100, now + 100)).toBe("invalid_request"); // in the future but not after the start
    expect(at(now + 100, now + 50)).toBe("invalid_request");
    expect(at(now + 100, now + 101)).toBe("ok");
  });

  it("requires a reason on compensatory grants", () => {
    const comp = (reason: string | null) =>
      code(planGrant([], grantCmd({ grantId: "g", type: "compensatory", reason }), 1, now));
    expect(comp(null)).toBe("invalid_request");
    expect(comp("")).toBe("invalid_request");
    expect(comp("outage 42")).toBe("ok");
    expect(code(planGrant([], grantCmd({ grantId: "g", type: "promotional" }), 1, now))).toBe("ok");
  });

  it("accepts a cost basis on purchased grants only", () => {
    const costBasis = { amount: 1000, currency: "USD" };
    for (const type of ["promotional", "compensatory"] as const) {
      expect(code(planGrant([], grantCmd({ grantId: "g", type, reason: "r", costBasis }), 1, now))).toBe(
        "invalid_request",
      );
    }
    const bought = value(planGrant([], grantCmd({ grantId: "g", type: "purchased", costBasis }), 1, now));
    expect(bought.lot.costBasis).toEqual(costBasis);
  });

  it("takes amounts from 1 to 10^15 integers only", () => {
    const amt = (amount: number) => code(planGrant([], grantCmd({ grantId: "g", amount }), 1, now));
    for (const bad of [0, -1, 1.5, MAX_AMOUNT + 1, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 2]) {
      expect(amt(bad), String(bad)).toBe("invalid_amount");
    }
    expect(amt(1)).toBe("ok");
    expect(amt(MAX_AMOUNT)).toBe("ok");
  });

  it("keeps the account's total per unit at or under 9·10^15, counting every lot of that unit", () => {
    const lots = deepFreeze([
      ...Array.from({ length: 8 }, (_, i) => makeLot({ grantId: `big${i}`, amount: MAX_AMOUNT })),
      // Pending, expired and voided-with-held lots still count: they are part of the total remaining.
      makeLot({ grantId: "pend", amount: MAX_AMOUNT, remaining: 400, effectiveAtMs: now + 5 }),
      makeLot({ grantId: "gone", amount: MAX_AMOUNT, remaining: 100, held: 100, voidedAtMs: now - 1 }),
      makeLot({ grantId: "other-unit", amount: MAX_AMOUNT, unit: "tokens" }),
    ]);
    const room = MAX_ACCOUNT_TOTAL - 8 * MAX_AMOUNT - 500;
    expect(code(planGrant(lots, grantCmd({ grantId: "fits", amount: room }), 9, now))).toBe("ok");
    expect(code(planGrant(lots, grantCmd({ grantId: "over", amount: room + 1 }), 9, now))).toBe("invalid_amount");
    expect(code(planGrant(lots, grantCmd({ grantId: "tok", amount: room + 1, unit: "tokens" }), 9, now))).toBe("ok");
  });
});

describe("planVoid", () => {
  it("lets the unspent, unheld remainder leave and keeps the held part", () => {
    const lot = deepFreeze(makeLot({ grantId: "g", amount: 100, remaining: 60, held: 20, type: "promotional" }));
    const plan = value(planVoid(lot, "fraud", now));
    expect(plan.lot).toEqual({ ...lot, remaining: 20, held: 20, voidedAtMs: now });
    expect(plan.entries).toEqual([
      {
        kind: "grant.voided",
        unit: "credits",
        amount: -40,
        heldDelta: 0,
        grantId: "g",
        creditType: "promotional",
        ref: null,
        reason: "fraud",
        effectiveAtMs: now,
      },
    ]);
    expect(lotStatus(plan.lot, now)).toBe("voided");
  });

  it("writes no entry when everything left is held, but still closes the lot", () => {
    const lot = deepFreeze(makeLot({ grantId: "g", amount: 10, remaining: 4, held: 4 }));
    const plan = value(planVoid(lot, null, now));
    expect(plan.entries).toEqual([]);
    expect(plan.lot).toMatchObject({ remaining: 4, held: 4, voidedAtMs: now });
    expect(code(planVoid(plan.lot, null, now))).toBe("grant_closed");
  });

  it("voids a pending lot in full", () => {
    const lot = makeLot({ grantId: "g", amount: 30, effectiveAtMs: now + 60_000 });
    const plan = value(planVoid(lot, null, now));
    expect(plan.lot.remaining).toBe(0);
    expect(plan.entries.map((e) => e.amount)).toEqual([-30]);
  });

  it("refuses with grant_closed once voided, expired or depleted", () => {
    expect(code(planVoid(makeLot({ grantId: "v", remaining: 0, voidedAtMs: now - 1 }), null, now))).toBe(
      "grant_closed",
    );
    expect(code(planVoid(makeLot({ grantId: "e", expiresAtMs: now }), null, now))).toBe("grant_closed");
    expect(code(planVoid(makeLot({ grantId: "e1", expiresAtMs: now + 1 }), null, now))).toBe("ok");
    expect(code(planVoid(makeLot({ grantId: "d", amount: 5, remaining: 0 }), null, now))).toBe("grant_closed");
  });
});

describe("planExpire", () => {
  const lots = deepFreeze([
    makeLot({ grantId: "at-now", amount: 10, remaining: 7, expiresAtMs: now }),
    makeLot({ grantId: "past-held", amount: 10, remaining: 9, held: 4, expiresAtMs: now - 50, type: "promotional" }),
    makeLot({ grantId: "next-ms", amount: 10, expiresAtMs: now + 1 }),
    makeLot({ grantId: "no-expiry", amount: 10 }),
    makeLot({ grantId: "voided", amount: 10, remaining: 3, held: 3, expiresAtMs: now - 5, voidedAtMs: now - 9 }),
    makeLot({ grantId: "all-held", amount: 10, remaining: 6, held: 6, expiresAtMs: now - 5 }),
  ]);

  it("writes off the unheld remainder of lots at or past expiry, dated at the expiry", () => {
    const plan = planExpire(lots, now);
    expect(plan.lots.map((l) => [l.grantId, l.remaining, l.held])).toEqual([
      ["at-now", 0, 0],
      ["past-held", 4, 4],
    ]);
    expect(plan.entries).toEqual([
      {
        kind: "grant.expired",
        unit: "credits",
        amount: -7,
        heldDelta: 0,
        grantId: "at-now",
        creditType: "purchased",
        ref: null,
        reason: null,
        effectiveAtMs: now,
      },
      {
        kind: "grant.expired",
        unit: "credits",
        amount: -5,
        heldDelta: 0,
        grantId: "past-held",
        creditType: "promotional",
        ref: null,
        reason: null,
        effectiveAtMs: now - 50,
      },
    ]);
  });

  it("is idempotent: run again on its own output it writes nothing", () => {
    const state = byId(lots);
    for (const l of planExpire(lots, now).lots) state.set(l.grantId, l);
    expect(planExpire(state.values(), now)).toEqual({ lots: [], entries: [] });
    expect(planExpire(state.values(), now + 1).entries.map((e) => e.grantId)).toEqual(["next-ms"]);
  });

  it("nextExpiryMs names the soonest expiry that still has something to write off", () => {
    expect(nextExpiryMs(lots, now)).toBe(now - 50);
    const state = byId(lots);
    for (const l of planExpire(lots, now).lots) state.set(l.grantId, l);
    expect(nextExpiryMs(state.values(), now)).toBe(now + 1);
  });
});

describe("planCloseHold", () => {
  const lots = deepFreeze([
    makeLot({ grantId: "a", amount: 10, remaining: 10, held: 3, type: "promotional" }),
    makeLot({ grantId: "b", amount: 10, remaining: 8, held: 6 }),
  ]);
  const hold = deepFreeze(
    makeHold({
      holdId: "h1",
      allocations: [
        { grantId: "a", amount: 3 },
        { grantId: "b", amount: 4 },
      ],
    }),
  );
  const close = (capture: number, h = hold, ls: Lot[] = lots, at = now) => planCloseHold(byId(ls), h, capture, at);
  const rows = (p: ClosePlan) => p.entries.map((e) => [e.kind, e.grantId, e.amount, e.heldDelta]);

  it("captures in draw order and releases the rest", () => {
    const plan = value(close(5));
    expect(rows(plan)).toEqual([
      ["hold.captured", "a", -3, -3],
      ["hold.captured", "b", -2, -2],
      ["hold.released", "b", 0, -2],
    ]);
    expect(plan.lots.map((l) => [l.grantId, l.remaining, l.held])).toEqual([
      ["a", 7, 0],
      ["b", 6, 2],
    ]);
    expect(plan.hold).toMatchObject({ status: "captured", captured: 5, released: 2, closedAtMs: now });
    expect(plan.entries.every((e) => e.ref === "h1" && e.effectiveAtMs === now)).toBe(true);
  });

  it("releases everything when capturing 0, and captures everything at the full amount", () => {
    const released = value(close(0));
    expect(rows(released)).toEqual([
      ["hold.released", "a", 0, -3],
      ["hold.released", "b", 0, -4],
    ]);
    expect(released.hold).toMatchObject({ status: "released", captured: 0, released: 7 });
    const full = value(close(7));
    expect(rows(full)).toEqual([
      ["hold.captured", "a", -3, -3],
      ["hold.captured", "b", -4, -4],
    ]);
    expect(full.hold).toMatchObject({ status: "captured", captured: 7, released: 0 });
  });

  it("refuses a capture above the held amount, negative or fractional", () => {
    for (const bad of [8, -1, 2.5, Number.NaN]) expect(code(close(bad)), String(bad)).toBe("invalid_amount");
  });

  it("refuses to close a closed hold", () => {
    const closed = value(close(2)).hold;
    expect(code(close(0, closed))).toBe("hold_closed");
    expect(code(close(2, closed))).toBe("hold_closed");
  });

  it("keeps a lot that expired while held capturable", () => {
    const expired = deepFreeze([makeLot({ grantId: "a", amount: 10, remaining: 3, held: 3, expiresAtMs: now - 1 })]);
    const h = makeHold({ holdId: "h", allocations: [{ grantId: "a", amount: 3 }] });
    const plan = value(close(3, h, expired));
    expect(rows(plan)).toEqual([["hold.captured", "a", -3, -3]]);
    expect(plan.lots[0]).toMatchObject({ remaining: 0, held: 0 });
  });

  it("lets released credits that land in an expired lot leave again at once, dated at the expiry", () => {
    const expired = deepFreeze([
      makeLot({ grantId: "a", amount: 10, remaining: 9, held: 5, expiresAtMs: now - 100, type: "promotional" }),
    ]);
    const h = makeHold({ holdId: "h", allocations: [{ grantId: "a", amount: 5 }] });
    const plan = value(close(1, h, expired));
    expect(plan.entries).toEqual([
      expect.objectContaining({ kind: "hold.captured", amount: -1, heldDelta: -1, ref: "h" }),
      expect.objectContaining({ kind: "hold.released", amount: 0, heldDelta: -4, ref: "h" }),
      {
        kind: "grant.expired",
        unit: "credits",
        amount: -4,
        heldDelta: 0,
        grantId: "a",
        creditType: "promotional",
        ref: null,
        reason: null,
        effectiveAtMs: now - 100,
      },
    ]);
    // The unheld rest (4) was never held: it is the expiry sweep's, which still finds it.
    expect(plan.lots[0]).toMatchObject({ remaining: 4, held: 0 });
    expect(planExpire(plan.lots, now).entries.map((e) => e.amount)).toEqual([-4]);
  });

  it("lets released credits that land in a voided lot leave again at once", () => {
    const voided = deepFreeze([makeLot({ grantId: "a", amount: 10, remaining: 5, held: 5, voidedAtMs: now - 1 })]);
    const h = makeHold({ holdId: "h", allocations: [{ grantId: "a", amount: 5 }] });
    const plan = value(close(0, h, voided));
    expect(rows(plan)).toEqual([
      ["hold.released", "a", 0, -5],
      ["grant.voided", "a", -5, 0],
    ]);
    expect(plan.entries[1]).toMatchObject({ ref: null, effectiveAtMs: now });
    expect(plan.lots[0]).toMatchObject({ remaining: 0, held: 0 });
  });

  it("settles a receipt with one entry per lot and calls it captured even when nothing was used", () => {
    const r = makeHold({
      holdId: "r1",
      kind: "receipt",
      allocations: [
        { grantId: "a", amount: 3 },
        { grantId: "b", amount: 4 },
      ],
    });
    const used = value(close(4, r));
    expect(rows(used)).toEqual([
      ["receipt.settled", "a", -3, -3],
      ["receipt.settled", "b", -1, -4],
    ]);
    const unused = value(close(0, r));
    expect(rows(unused)).toEqual([
      ["receipt.settled", "a", 0, -3],
      ["receipt.settled", "b", 0, -4],
    ]);
    expect(unused.hold.status).toBe("captured");
  });

  it("throws an InvariantViolation when a lot holds less than the hold reserved", () => {
    const short = [makeLot({ grantId: "a", amount: 10, held: 1 }), makeLot({ grantId: "b", amount: 10, held: 4 })];
    expect(() => close(0, hold, short)).toThrow(InvariantViolation);
  });
});

describe("balanceOf", () => {
  const lots = deepFreeze([
    makeLot({ grantId: "pur", amount: 100, remaining: 80, held: 30, expiresAtMs: now + 5000 }),
    makeLot({ grantId: "promo", amount: 20, type: "promotional", expiresAtMs: now + 1000 }),
    makeLot({ grantId: "promo2", amount: 9, type: "promotional", expiresAtMs: now + 1000 }),
    makeLot({ grantId: "forever", amount: 11 }),
    makeLot({ grantId: "pend", amount: 50, type: "compensatory", effectiveAtMs: now + 100 }),
    makeLot({ grantId: "pend-soon", amount: 5, type: "compensatory", effectiveAtMs: now + 1 }),
    makeLot({ grantId: "exp-held", amount: 10, remaining: 10, held: 5, expiresAtMs: now - 1, type: "promotional" }),
    makeLot({ grantId: "void-held", amount: 10, remaining: 2, held: 2, voidedAtMs: now - 1 }),
    makeLot({ grantId: "all-held", amount: 10, remaining: 4, held: 4, expiresAtMs: now + 10 }),
    makeLot({ grantId: "tok", amount: 999, unit: "tokens", type: "compensatory" }),
  ]);

  it("sums available from live lots only and held from every lot", () => {
    const b = balanceOf(lots, "credits", now);
    expect(b.unit).toBe("credits");
    expect(b.available).toBe(50 + 20 + 9 + 11);
    expect(b.held).toBe(30 + 5 + 2 + 4);
  });

  it("has by_type = available + held per type, with all three types", () => {
    expect(balanceOf(lots, "credits", now).byType).toEqual({
      promotional: 20 + 9 + 5,
      compensatory: 0,
      purchased: 50 + 30 + 11 + 2 + 4,
    });
    expect(balanceOf([], "credits", now).byType).toEqual({ promotional: 0, compensatory: 0, purchased: 0 });
  });

  it("lists the unheld remainder of live dated lots, soonest first, ties by grant id", () => {
    expect(balanceOf(lots, "credits", now).expiring).toEqual([
      { grantId: "promo", amount: 20, expiresAtMs: now + 1000 },
      { grantId: "promo2", amount: 9, expiresAtMs: now + 1000 },
      { grantId: "pur", amount: 50, expiresAtMs: now + 5000 },
    ]);
  });

  it("lists lots not yet effective as pending, soonest first", () => {
    expect(balanceOf(lots, "credits", now).pending).toEqual([
      { grantId: "pend-soon", amount: 5, effectiveAtMs: now + 1 },
      { grantId: "pend", amount: 50, effectiveAtMs: now + 100 },
    ]);
  });

  it("moves a pending lot into available at its effective time", () => {
    const later = balanceOf(lots, "credits", now + 1);
    expect(later.available).toBe(90 + 5);
    expect(later.pending.map((p) => p.grantId)).toEqual(["pend"]);
  });

  it("keeps units apart", () => {
    const b = balanceOf(lots, "tokens", now);
    expect(b).toEqual({
      unit: "tokens",
      available: 999,
      held: 0,
      byType: { promotional: 0, compensatory: 999, purchased: 0 },
      expiring: [],
      pending: [],
    });
  });
});
