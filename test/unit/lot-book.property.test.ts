/**
 * The lot book (src/ledger/lot-book.ts) against the plain functions it
 * replaces on the hot path: after every step of a random history (new lots,
 * draws, holds, voids, expiry settling, the clock moving either way, a
 * commit put back), for every unit and a random policy, the book answers what
 * pickLots and balanceOf answer over a plain Map of every lot.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { balanceOf, CREDIT_TYPES, DEFAULT_POLICY, type Lot, type Policy, pickLots, SORT_KEYS } from "../../src/ledger";
import { LotBook } from "../../src/ledger/lot-book";
import { T0 } from "./fixtures";

const UNITS = ["credits", "tokens"] as const;
const MIN = 60_000;

const lotArb = (i: number) =>
  fc
    .record({
      unit: fc.constantFrom(...UNITS),
      type: fc.constantFrom(...CREDIT_TYPES),
      amount: fc.integer({ min: 1, max: 50 }),
      priority: fc.integer({ min: 0, max: 3 }),
      effectiveMin: fc.integer({ min: -5, max: 20 }),
      lifeMin: fc.option(fc.integer({ min: 0, max: 40 }), { nil: null }),
      // Creation orders may repeat (two lots of one commit): the map's order breaks the tie.
      createdOrder: fc.integer({ min: 0, max: 6 }),
    })
    .map(
      (r): Lot => ({
        grantId: `g${i}`,
        unit: r.unit,
        type: r.type,
        amount: r.amount,
        priority: r.priority,
        effectiveAtMs: T0 + r.effectiveMin * MIN,
        expiresAtMs: r.lifeMin === null ? null : T0 + (r.effectiveMin + r.lifeMin) * MIN,
        source: null,
        reason: null,
        campaign: null,
        incidentId: null,
        costBasis: null,
        metadata: null,
        sourceGrantId: null,
        createdAtMs: T0,
        createdOrder: r.createdOrder,
        remaining: r.amount,
        held: 0,
        voidedAtMs: null,
      }),
    );

type Step =
  | { op: "grant"; seed: number }
  | { op: "draw"; unit: (typeof UNITS)[number]; amount: number }
  | { op: "hold"; pick: number; amount: number }
  | { op: "release"; pick: number }
  | { op: "void"; pick: number }
  | { op: "settle" }
  | { op: "clock"; minutes: number }
  | { op: "undo"; seed: number }
  | { op: "wake" };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("grant" as const), seed: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("draw" as const),
      unit: fc.constantFrom(...UNITS),
      amount: fc.integer({ min: 1, max: 80 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("hold" as const), pick: fc.nat(), amount: fc.integer({ min: 1, max: 20 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("release" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("void" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("settle" as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("clock" as const), minutes: fc.integer({ min: -15, max: 15 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("undo" as const), seed: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("wake" as const) }) },
);

const policyArb: fc.Arbitrary<Policy> = fc
  .record({
    order: fc.shuffledSubarray([...SORT_KEYS], { minLength: 0 }),
    type_order: fc.shuffledSubarray([...CREDIT_TYPES], { minLength: 0 }),
  })
  .map((p) => ({ ...DEFAULT_POLICY, ...p }));

/** The lists cut the way the book cuts them: listMax + 1 is enough to tell "more". */
function cut(view: ReturnType<typeof balanceOf>, listMax: number) {
  return { ...view, expiring: view.expiring.slice(0, listMax + 1), pending: view.pending.slice(0, listMax + 1) };
}

describe("LotBook answers what the plain functions answer over every lot", () => {
  it("pick, balance, available and the open lots, after every step of a random history", () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 1, maxLength: 60 }),
        fc.array(policyArb, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (steps, policies, listMax, seed) => {
          const plain = new Map<string, Lot>();
          let book = new LotBook();
          let nowMs = T0;
          let made = 0;
          const lotSamples = fc.sample(fc.tuple(...Array.from({ length: 40 }, (_, i) => lotArb(i))), {
            numRuns: 1,
            seed,
          })[0] as Lot[];
          const put = (lots: Lot[]) => {
            for (const lot of lots) {
              plain.set(lot.grantId, lot);
              book.set(lot);
            }
          };
          const nth = (k: number) => [...plain.values()][k % Math.max(1, plain.size)];
          for (const [i, step] of steps.entries()) {
            const policy = policies[i % policies.length] as Policy;
            switch (step.op) {
              case "grant": {
                const lot = lotSamples[made % lotSamples.length] as Lot;
                if (made < lotSamples.length) put([lot]);
                made++;
                break;
              }
              case "draw": {
                const ref = pickLots(plain.values(), step.unit, step.amount, policy, nowMs);
                const got = book.pick(step.unit, step.amount, policy, nowMs);
                expect(got).toEqual(ref);
                if (ref.ok) put(ref.value.map((t) => ({ ...t.lot, remaining: t.lot.remaining - t.amount })));
                break;
              }
              case "hold": {
                const lot = nth(step.pick);
                if (lot && lot.remaining - lot.held > 0) {
                  put([{ ...lot, held: lot.held + Math.min(step.amount, lot.remaining - lot.held) }]);
                }
                break;
              }
              case "release": {
                const lot = nth(step.pick);
                if (lot && lot.held > 0) put([{ ...lot, held: 0 }]);
                break;
              }
              case "void": {
                const lot = nth(step.pick);
                if (lot && lot.voidedAtMs === null && lot.held === 0)
                  put([{ ...lot, remaining: 0, voidedAtMs: nowMs }]);
                break;
              }
              case "settle": {
                // The expiry pass: an expired lot keeps only what is held.
                const due = [...plain.values()].filter(
                  (l) =>
                    l.voidedAtMs === null && l.expiresAtMs !== null && l.expiresAtMs <= nowMs && l.remaining > l.held,
                );
                put(due.map((l) => ({ ...l, remaining: l.held })));
                break;
              }
              case "wake":
                // The Durable Object restarted: the book is rebuilt from every lot at once.
                book = new LotBook(plain.values());
                break;
              case "clock":
                nowMs += step.minutes * MIN;
                break;
              case "undo": {
                // A commit that threw: the book takes the lots, then puts them back.
                const lot = lotSamples[step.seed % lotSamples.length] as Lot;
                const existing = plain.get(lot.grantId);
                const changed: Lot[] = existing ? [{ ...existing, remaining: 0, held: 0 }] : [lot];
                const before = changed.map((l) => book.get(l.grantId));
                for (const l of changed) book.set(l);
                book.restore(changed, before);
                break;
              }
            }
            expect([...book.keys()]).toEqual([...plain.keys()]);
            for (const unit of UNITS) {
              expect(book.balance(unit, nowMs, listMax)).toEqual(cut(balanceOf(plain.values(), unit, nowMs), listMax));
              expect(book.available(unit, nowMs)).toBe(balanceOf(plain.values(), unit, nowMs).available);
              const asked = 1 + (i % 60);
              expect(book.pick(unit, asked, policy, nowMs)).toEqual(
                pickLots(plain.values(), unit, asked, policy, nowMs),
              );
            }
            const open = [...plain.values()].filter((l) => l.remaining > 0 || l.held > 0).map((l) => l.grantId);
            expect(new Set([...book.openLots()].map((l) => l.grantId))).toEqual(new Set(open));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a book of 100 000 live lots, half of them dated, answers as the plain functions do", () => {
    const lots: Lot[] = Array.from({ length: 100_000 }, (_, i) => ({
      grantId: `big${i}`,
      unit: "credits",
      type: "purchased",
      amount: 10,
      priority: 100,
      effectiveAtMs: T0 - MIN,
      expiresAtMs: i % 2 === 0 ? T0 + (i + 1) * MIN : null,
      source: null,
      reason: null,
      campaign: null,
      incidentId: null,
      costBasis: null,
      metadata: null,
      sourceGrantId: null,
      createdAtMs: T0,
      createdOrder: i,
      remaining: 10,
      held: 0,
      voidedAtMs: null,
    }));
    const book = new LotBook(lots);
    const first = book.pick("credits", 15, DEFAULT_POLICY, T0);
    expect(first).toEqual(pickLots(lots, "credits", 15, DEFAULT_POLICY, T0));
    expect(book.balance("credits", T0, 3).available).toBe(1_000_000);
    expect(book.balance("credits", T0, 3).expiring.map((e) => e.grantId)).toEqual(["big0", "big2", "big4", "big6"]);
  });
});
