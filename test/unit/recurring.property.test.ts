/**
 * Recurring grants against a small reference model. The driver runs the pure
 * steps (nextStep, planIssue, planSettle, then planExpire for rollover lots)
 * the way the account's catch-up does, at random times, with random debits
 * between; the reference computes, per period and with nothing of
 * src/ledger/recurring.ts but periodStartMs, what each period must leave: one
 * lot per period, rolled = min(cap, unspent), breakage = unspent − rolled,
 * and every credit accounted for.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type EntryDraft, isLive, type Lot, planExpire } from "../../src/ledger";
import {
  nextStep,
  periodGrantId,
  periodIndexAt,
  periodStartMs,
  planIssue,
  planSettle,
  type RecurringCursor,
  type RecurringSpec,
  rolloverGrantId,
} from "../../src/ledger/recurring";

const DAY = 86_400_000;
const T0 = Date.UTC(2027, 0, 31);

interface State {
  lots: Map<string, Lot>;
  entries: EntryDraft[];
  cursor: RecurringCursor;
}

/** What the DO's catch-up does, over the pure steps: every step due by `nowMs`, oldest first, then expiry. */
function catchUp(st: State, spec: RecurringSpec, nowMs: number): void {
  for (;;) {
    const step = nextStep(spec, st.cursor, true);
    if (step === null || step.atMs > nowMs) break;
    const plan =
      step.kind === "issue"
        ? st.lots.has(periodGrantId(spec.recurringId, step.index))
          ? null
          : planIssue(spec, step.index, st.lots.values(), st.lots.size + 1, nowMs)
        : planSettle(
            spec,
            step.index,
            st.lots.get(periodGrantId(spec.recurringId, step.index)),
            st.lots.has(rolloverGrantId(spec.recurringId, step.index)),
            st.lots.size + 1,
            nowMs,
          );
    if (plan) {
      for (const lot of plan.lots) st.lots.set(lot.grantId, lot);
      st.entries.push(...plan.entries);
    }
    st.cursor =
      step.kind === "issue"
        ? { ...st.cursor, nextIssue: step.index + 1 }
        : { ...st.cursor, nextSettle: step.index + 1 };
  }
  const expired = planExpire(st.lots.values(), nowMs);
  for (const lot of expired.lots) st.lots.set(lot.grantId, lot);
  st.entries.push(...expired.entries);
}

/** A debit of up to `amount` from the live lots, oldest first (the order does not matter to the model). */
function spend(st: State, amount: number, nowMs: number): { grantId: string; amount: number }[] {
  const taken: { grantId: string; amount: number }[] = [];
  let left = amount;
  for (const lot of [...st.lots.values()].sort((a, b) => a.createdOrder - b.createdOrder)) {
    if (left === 0) break;
    if (!isLive(lot, nowMs)) continue;
    const take = Math.min(left, lot.remaining - lot.held);
    if (take <= 0) continue;
    st.lots.set(lot.grantId, { ...lot, remaining: lot.remaining - take });
    st.entries.push({
      kind: "debit",
      unit: lot.unit,
      amount: -take,
      heldDelta: 0,
      grantId: lot.grantId,
      creditType: lot.type,
      ref: null,
      reason: null,
      effectiveAtMs: nowMs,
    });
    taken.push({ grantId: lot.grantId, amount: take });
    left -= take;
  }
  return taken;
}

const specArb = fc.record({
  interval: fc.constantFrom<RecurringSpec["interval"]>("day", "week", "month", "year"),
  amount: fc.integer({ min: 1, max: 1000 }),
  cap: fc.option(fc.integer({ min: 1, max: 1200 }), { nil: null }),
  maxPeriods: fc.integer({ min: 1, max: 3 }),
  rollover: fc.boolean(),
  periods: fc.option(fc.integer({ min: 1, max: 14 }), { nil: null }),
});

describe("recurring grants against a reference model", () => {
  it("one lot per period, rollover capped, breakage exact, every credit accounted for, however the clock jumps", () => {
    fc.assert(
      fc.property(
        specArb,
        fc.array(
          fc.record({
            jump: fc.integer({ min: 0, max: 3 }),
            frac: fc.double({ min: 0, max: 0.999, noNaN: true }),
            spend: fc.integer({ min: 0, max: 900 }),
          }),
          {
            minLength: 1,
            maxLength: 30,
          },
        ),
        (g, moves) => {
          const spec: RecurringSpec = {
            recurringId: "r",
            unit: "credits",
            type: "promotional",
            amount: g.amount,
            interval: g.interval,
            startsAtMs: T0,
            endsAtMs: g.periods === null ? null : periodStartMs(T0, g.interval, g.periods),
            priority: 100,
            source: null,
            reason: null,
            expires: "end_of_period",
            rollover: g.rollover ? { maxAmount: g.cap, maxPeriods: g.maxPeriods } : null,
          };
          const st: State = { lots: new Map(), entries: [], cursor: { nextIssue: 0, nextSettle: 0 } };
          // Reference: what each period's own lot gave to debits.
          const spentFrom = new Map<string, number>();
          let k = 0;
          let nowMs = T0;
          for (const m of moves) {
            // Jump 0..3 periods ahead, to a random point inside that period (0 jumps: a second look, same period).
            k += m.jump;
            const start = periodStartMs(T0, g.interval, k);
            nowMs = Math.max(nowMs, start + Math.floor((periodStartMs(T0, g.interval, k + 1) - start) * m.frac));
            catchUp(st, spec, nowMs);
            catchUp(st, spec, nowMs); // a second caller at the same moment finds nothing to do
            for (const t of spend(st, m.spend, nowMs))
              spentFrom.set(t.grantId, (spentFrom.get(t.grantId) ?? 0) + t.amount);
          }
          const current = periodIndexAt(T0, g.interval, nowMs);
          const expectedPeriods = g.periods === null ? current + 1 : Math.min(current + 1, g.periods);
          const periodLots = [...st.lots.keys()].filter((id) => /^r\.\d+$/.test(id));
          expect(periodLots.sort()).toEqual(Array.from({ length: expectedPeriods }, (_, i) => `r.${i + 1}`).sort());
          expect(st.entries.filter((e) => e.kind === "grant").length).toBe(expectedPeriods);
          for (let i = 0; i < expectedPeriods; i++) {
            const id = periodGrantId("r", i);
            const lot = st.lots.get(id) as Lot;
            expect(lot.effectiveAtMs).toBe(periodStartMs(T0, g.interval, i));
            expect(lot.expiresAtMs).toBe(periodStartMs(T0, g.interval, i + 1));
            const unspent = g.amount - (spentFrom.get(id) ?? 0);
            const ended = periodStartMs(T0, g.interval, i + 1) <= nowMs;
            const rolled = st.entries
              .filter((e) => e.kind === "grant.rolled_over" && e.grantId === id)
              .map((e) => -e.amount);
            const broken = st.entries
              .filter((e) => e.kind === "grant.expired" && e.grantId === id)
              .map((e) => -e.amount);
            if (!ended) {
              expect([rolled, broken]).toEqual([[], []]);
              expect(lot.remaining).toBe(unspent);
              continue;
            }
            const expectRolled = g.rollover ? Math.min(g.cap ?? unspent, unspent) : 0;
            expect(rolled.reduce((a, b) => a + b, 0)).toBe(expectRolled);
            expect(rolled.length).toBeLessThanOrEqual(1);
            expect(broken.reduce((a, b) => a + b, 0)).toBe(unspent - expectRolled);
            expect(lot.remaining).toBe(0);
            const ro = st.lots.get(rolloverGrantId("r", i));
            if (expectRolled > 0) {
              expect(ro).toMatchObject({
                amount: expectRolled,
                effectiveAtMs: periodStartMs(T0, g.interval, i + 1),
                expiresAtMs: periodStartMs(T0, g.interval, i + 1 + g.maxPeriods),
              });
              const roSpent = spentFrom.get(rolloverGrantId("r", i)) ?? 0;
              const roExpired = periodStartMs(T0, g.interval, i + 1 + g.maxPeriods) <= nowMs;
              expect(ro?.remaining).toBe(roExpired ? 0 : expectRolled - roSpent);
            } else {
              expect(ro).toBeUndefined();
            }
          }
          // Rollover lots never roll over again.
          expect(st.entries.some((e) => e.kind === "grant.rolled_over" && e.grantId?.endsWith(".rollover"))).toBe(
            false,
          );
          // Conservation: per lot Σ entries = remaining; in total, issued − spent − expired = Σ remaining.
          for (const lot of st.lots.values()) {
            const sum = st.entries.filter((e) => e.grantId === lot.grantId).reduce((s, e) => s + e.amount, 0);
            expect(sum).toBe(lot.remaining);
          }
          const issued = expectedPeriods * g.amount;
          const spent = [...spentFrom.values()].reduce((a, b) => a + b, 0);
          const expired = -st.entries.filter((e) => e.kind === "grant.expired").reduce((s, e) => s + e.amount, 0);
          const remaining = [...st.lots.values()].reduce((s, l) => s + l.remaining, 0);
          expect(issued - spent - expired).toBe(remaining);
          // A rollover's pair nets to zero.
          const pairs = st.entries.filter((e) => e.kind === "rollover" || e.kind === "grant.rolled_over");
          expect(pairs.reduce((s, e) => s + e.amount, 0)).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a late catch-up (the account slept) issues every missed period at its start and settles each end", () => {
    const spec: RecurringSpec = {
      recurringId: "r",
      unit: "credits",
      type: "purchased",
      amount: 1000,
      interval: "day",
      startsAtMs: T0,
      endsAtMs: null,
      priority: 100,
      source: null,
      reason: null,
      expires: "end_of_period",
      rollover: { maxAmount: 300, maxPeriods: 1 },
    };
    const st: State = { lots: new Map(), entries: [], cursor: { nextIssue: 0, nextSettle: 0 } };
    catchUp(st, spec, T0 + 3 * DAY + 5);
    // Periods 1..4 issued; ends of 1..3 settled: each rolls 300 of its untouched 1000 and breaks 700.
    expect(st.entries.filter((e) => e.kind === "grant").map((e) => [e.grantId, e.effectiveAtMs])).toEqual([
      ["r.1", T0],
      ["r.2", T0 + DAY],
      ["r.3", T0 + 2 * DAY],
      ["r.4", T0 + 3 * DAY],
    ]);
    expect(st.entries.filter((e) => e.kind === "grant.rolled_over").map((e) => e.amount)).toEqual([-300, -300, -300]);
    const breakage = st.entries.filter((e) => e.kind === "grant.expired");
    // 700 × 3 from the periods, and the rollover lots of periods 1 and 2 (alive through the next day only) expire whole.
    expect(breakage.map((e) => [e.grantId, e.amount])).toEqual([
      ["r.1", -700],
      ["r.2", -700],
      ["r.3", -700],
      ["r.1.rollover", -300],
      ["r.2.rollover", -300],
    ]);
    // Left: period 4 (1000) and period 3's rollover (300, alive until T0 + 4 days).
    expect([...st.lots.values()].reduce((s, l) => s + l.remaining, 0)).toBe(1300);
  });
});
