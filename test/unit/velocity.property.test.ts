/**
 * Velocity windows against a naive reference: a plain list of every counted
 * (time, amount), summed afresh for each question. The reference shares
 * nothing with src/ledger/velocity.ts but the rule from docs: a window of N
 * minutes at time t holds what was counted in t's minute and the N−1 before.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  applyTally,
  checkVelocity,
  tallyVelocity,
  VELOCITY_BUCKETS_KEPT,
  type VelocityBucket,
  type VelocityLimits,
} from "../../src/ledger/velocity";

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const SIZES = { per_minute: 1, per_hour: 60, per_day: 1440 } as const;
type Win = keyof typeof SIZES;
const ORDER: Win[] = ["per_minute", "per_hour", "per_day"];

interface Counted {
  atMs: number;
  amount: number;
}

const minuteOf = (ms: number) => Math.floor(ms / MIN);
function naiveUsed(history: Counted[], win: Win, nowMs: number): number {
  let sum = 0;
  for (const h of history) if (minuteOf(h.atMs) > minuteOf(nowMs) - SIZES[win]) sum += h.amount;
  return sum;
}
function naiveFits(history: Counted[], limits: VelocityLimits, amount: number, nowMs: number): boolean {
  return ORDER.every((w) => limits[w] === undefined || naiveUsed(history, w, nowMs) + amount <= (limits[w] as number));
}

const arbLimits = fc
  .record(
    {
      per_minute: fc.integer({ min: 1, max: 60 }),
      per_hour: fc.integer({ min: 1, max: 400 }),
      per_day: fc.integer({ min: 1, max: 2000 }),
    },
    { requiredKeys: [] },
  )
  .filter((l) => Object.keys(l).length > 0);

/** Steps apart: mostly seconds, sometimes minutes, hours or more than a day. */
const arbGap = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 20_000 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 10 * MIN }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 30 * 60 * MIN }) },
);
const arbOps = fc.array(fc.record({ gapMs: arbGap, amount: fc.integer({ min: 1, max: 70 }) }), {
  minLength: 1,
  maxLength: 120,
});

describe("velocity windows (property, against a naive sum)", () => {
  it("refuses exactly what the reference refuses, with the reference's used and a minimal retry-after", () => {
    fc.assert(
      fc.property(arbLimits, arbOps, (limits, ops) => {
        const history: Counted[] = [];
        let buckets: VelocityBucket[] = [];
        let nowMs = T0;
        for (const op of ops) {
          nowMs += op.gapMs;
          const refusal = checkVelocity(buckets, limits, op.amount, nowMs);
          expect(refusal === null).toBe(naiveFits(history, limits, op.amount, nowMs));
          if (refusal === null) {
            history.push({ atMs: nowMs, amount: op.amount });
            buckets = applyTally(buckets, tallyVelocity(buckets, "credits", op.amount, nowMs));
          } else {
            const first = ORDER.find(
              (w) => limits[w] !== undefined && naiveUsed(history, w, nowMs) + op.amount > (limits[w] as number),
            );
            expect(refusal.window).toBe(first);
            expect(refusal.used).toBe(naiveUsed(history, refusal.window, nowMs));
            expect(refusal.limit).toBe(limits[refusal.window]);
            expect(refusal.requested).toBe(op.amount);
            const tooBig = ORDER.filter((w) => limits[w] !== undefined && op.amount > (limits[w] as number));
            if (tooBig.length === 0) {
              // Waiting retry-after seconds is enough, and one second less is not.
              const r = refusal.retryAfterSeconds;
              expect(r).toBeGreaterThanOrEqual(1);
              expect(naiveFits(history, limits, op.amount, nowMs + r * 1000)).toBe(true);
              if (r > 1) expect(naiveFits(history, limits, op.amount, nowMs + (r - 1) * 1000)).toBe(false);
            } else {
              // Never fits: at least the longest such window's length.
              const longest = Math.max(...tooBig.map((w) => SIZES[w] * 60));
              expect(refusal.retryAfterSeconds).toBeGreaterThanOrEqual(longest);
            }
          }
          // Bounded whatever the traffic, ascending, and nothing counted twice (buckets
          // older than a day wait for the next tally to be pruned, and count nowhere).
          expect(buckets.length).toBeLessThanOrEqual(VELOCITY_BUCKETS_KEPT);
          for (let i = 1; i < buckets.length; i++) {
            expect((buckets[i] as VelocityBucket).minute).toBeGreaterThan((buckets[i - 1] as VelocityBucket).minute);
          }
          const dayFrom = minuteOf(nowMs) - 1440;
          const inDay = buckets.filter((b) => b.minute > dayFrom).reduce((sum, b) => sum + b.amount, 0);
          expect(inDay).toBe(naiveUsed(history, "per_day", nowMs));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("velocity windows (worked by hand)", () => {
  it("per_minute: 100 with 90 used this minute refuses 20 until the next minute starts", () => {
    const at = T0 + 15_000; // 12:00:15
    const buckets = [{ minute: minuteOf(T0), amount: 90 }];
    expect(checkVelocity(buckets, { per_minute: 100 }, 10, at)).toBeNull();
    expect(checkVelocity(buckets, { per_minute: 100 }, 20, at)).toEqual({
      window: "per_minute",
      limit: 100,
      used: 90,
      requested: 20,
      retryAfterSeconds: 45, // 12:01:00 − 12:00:15
    });
    expect(checkVelocity(buckets, { per_minute: 100 }, 20, T0 + MIN)).toBeNull();
  });

  it("per_hour waits for just enough of the oldest minutes to leave", () => {
    // 12:00 → 30, 12:10 → 30, 12:20 → 30; at 12:30:00 an hour of 100 holds 90.
    const buckets = [0, 10, 20].map((m) => ({ minute: minuteOf(T0) + m, amount: 30 }));
    const at = T0 + 30 * MIN;
    // 40 needs 20 back: 12:00's 30 leaves at 13:00:00, 30 minutes away.
    expect(checkVelocity(buckets, { per_hour: 100 }, 40, at)?.retryAfterSeconds).toBe(1800);
    // 70 needs 60 back: 12:00 and 12:10 must leave; 12:10 does at 13:10:00, 40 minutes away.
    expect(checkVelocity(buckets, { per_hour: 100 }, 70, at)?.retryAfterSeconds).toBe(2400);
    // 80 needs 70 back: all three must leave; 12:20 does at 13:20:00.
    expect(checkVelocity(buckets, { per_hour: 100 }, 80, at)?.retryAfterSeconds).toBe(3000);
  });

  it("takes the longest wait among the windows it overflows, and names the first", () => {
    const buckets = [{ minute: minuteOf(T0), amount: 50 }];
    const r = checkVelocity(buckets, { per_minute: 50, per_day: 60 }, 20, T0 + 30_000);
    expect(r?.window).toBe("per_minute");
    expect(r?.retryAfterSeconds).toBe(86_400 - 30);
  });

  it("an amount above the limit itself waits a whole window", () => {
    expect(checkVelocity([], { per_hour: 10 }, 11, T0)?.retryAfterSeconds).toBe(3600);
  });

  it("a tally adds into the current minute's bucket and drops buckets a day old", () => {
    const old = { minute: minuteOf(T0) - VELOCITY_BUCKETS_KEPT, amount: 7 };
    const kept = { minute: minuteOf(T0) - VELOCITY_BUCKETS_KEPT + 1, amount: 5 };
    const now = { minute: minuteOf(T0), amount: 3 };
    const t = tallyVelocity([old, kept, now], "credits", 4, T0 + 59_999);
    expect(t.bucket).toEqual({ minute: minuteOf(T0), amount: 7 });
    expect(applyTally([old, kept, now], t)).toEqual([kept, { minute: minuteOf(T0), amount: 7 }]);
  });
});
