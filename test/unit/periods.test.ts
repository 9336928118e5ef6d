/** Report periods and figures: UTC days and months, the window rules, and exact integer ratios. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { avgSecondsToConsume, breakageBps, exact, floorDiv } from "../../src/reports/figures";
import {
  DAY_MS,
  isBoundary,
  MAX_PERIODS,
  nextStart,
  periodCount,
  periodStart,
  periodsOf,
  utcDay,
} from "../../src/reports/periods";

const t = (s: string) => Date.parse(s);
const iso = (ms: number) => new Date(ms).toISOString();

describe("period arithmetic", () => {
  it("floors to the UTC day and month, before 1970 too", () => {
    expect(iso(utcDay(t("2026-03-05T23:59:59.999Z")))).toBe("2026-03-05T00:00:00.000Z");
    expect(iso(utcDay(t("1969-12-31T12:00:00.000Z")))).toBe("1969-12-31T00:00:00.000Z");
    expect(iso(periodStart(t("2026-03-05T10:00:00.000Z"), "month"))).toBe("2026-03-01T00:00:00.000Z");
    expect(iso(periodStart(t("1969-07-20T20:17:00.000Z"), "month"))).toBe("1969-07-01T00:00:00.000Z");
  });

  it("steps months of every length and across years, and days across DST-free UTC", () => {
    expect(iso(nextStart(t("2024-01-01T00:00:00Z"), "month"))).toBe("2024-02-01T00:00:00.000Z");
    expect(iso(nextStart(t("2024-02-01T00:00:00Z"), "month"))).toBe("2024-03-01T00:00:00.000Z");
    expect(iso(nextStart(t("2026-12-01T00:00:00Z"), "month"))).toBe("2027-01-01T00:00:00.000Z");
    expect(iso(nextStart(t("2024-02-28T00:00:00Z"), "day"))).toBe("2024-02-29T00:00:00.000Z");
    expect(nextStart(t("2026-03-29T00:00:00Z"), "day") - t("2026-03-29T00:00:00Z")).toBe(DAY_MS);
  });

  it("knows boundaries", () => {
    expect(isBoundary(t("2026-03-01T00:00:00Z"), "month")).toBe(true);
    expect(isBoundary(t("2026-03-02T00:00:00Z"), "month")).toBe(false);
    expect(isBoundary(t("2026-03-02T00:00:00Z"), "day")).toBe(true);
    expect(isBoundary(t("2026-03-02T00:00:00.001Z"), "day")).toBe(false);
  });

  it("counts periods", () => {
    expect(periodCount(t("2026-01-01T00:00:00Z"), t("2027-01-01T00:00:00Z"), "month")).toBe(12);
    expect(periodCount(t("2024-01-01T00:00:00Z"), t("2025-01-01T00:00:00Z"), "day")).toBe(366);
  });
});

describe("periodsOf: the window rules", () => {
  it("cuts [from, to) into whole periods, each one's end the next one's start", () => {
    const r = periodsOf(t("2026-01-01T00:00:00Z"), t("2026-04-01T00:00:00Z"), "month");
    expect(r.ok && r.spans.map((s) => [iso(s.startMs), iso(s.endMs)])).toEqual([
      ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"],
      ["2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"],
      ["2026-03-01T00:00:00.000Z", "2026-04-01T00:00:00.000Z"],
    ]);
  });

  it("refuses an empty or reversed window, unaligned ends, and more than MAX_PERIODS", () => {
    const bad = (from: string, to: string, period: "day" | "month") => {
      const r = periodsOf(t(from), t(to), period);
      return r.ok ? null : r.detail;
    };
    expect(bad("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "day")).toMatch(/before/);
    expect(bad("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", "day")).toMatch(/before/);
    expect(bad("2026-01-01T00:00:01Z", "2026-01-03T00:00:00Z", "day")).toMatch(/^from must be a UTC midnight/);
    expect(bad("2026-01-01T00:00:00Z", "2026-01-03T12:00:00Z", "day")).toMatch(/^to must be a UTC midnight/);
    expect(bad("2026-01-02T00:00:00Z", "2026-03-01T00:00:00Z", "month")).toMatch(/^from must be the 1st/);
    expect(bad("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", "day")).toBeNull(); // 366 days: the bound
    expect(bad("2024-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "day")).toMatch(/367 periods.*at most 366/);
    expect(bad("2000-01-01T00:00:00Z", "2030-07-01T00:00:00Z", "month")).toBeNull(); // 366 months
    expect(bad("2000-01-01T00:00:00Z", "2030-08-01T00:00:00Z", "month")).toMatch(/367 periods/);
  });

  it("for any aligned window: contiguous spans, on boundaries, as many as periodCount", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("day" as const, "month" as const),
        fc.integer({ min: -20_000, max: 40_000 }),
        fc.integer({ min: 1, max: MAX_PERIODS }),
        (period, startDay, n) => {
          let from = periodStart(startDay * DAY_MS, period);
          let to = from;
          for (let i = 0; i < n; i++) to = nextStart(to, period);
          const r = periodsOf(from, to, period);
          expect(r.ok).toBe(true);
          if (!r.ok) return;
          expect(r.spans.length).toBe(n);
          expect(periodCount(from, to, period)).toBe(n);
          for (const s of r.spans) {
            expect(s.startMs).toBe(from);
            expect(isBoundary(s.startMs, period)).toBe(true);
            from = s.endMs;
          }
          expect(from).toBe(to);
        },
      ),
    );
  });
});

describe("figures", () => {
  it("floorDiv rounds toward −∞", () => {
    expect(floorDiv(7n, 2n)).toBe(3n);
    expect(floorDiv(-7n, 2n)).toBe(-4n);
    expect(floorDiv(7n, -2n)).toBe(-4n);
    expect(floorDiv(-8n, 2n)).toBe(-4n);
  });

  it("breakage_bps = floor(expired × 10000 / issued), 0 when nothing was issued, exact past 2^53", () => {
    expect(breakageBps(1, 3)).toBe(3333);
    expect(breakageBps(2, 3)).toBe(6666);
    expect(breakageBps(3, 3)).toBe(10_000);
    expect(breakageBps(5, 0)).toBe(0);
    expect(breakageBps(0, 7)).toBe(0);
    // 9·10^15 × 10^4 is far past 2^53: still exact.
    expect(breakageBps(9e15 - 1, 9e15)).toBe(9999);
  });

  it("avg_seconds_to_consume = floor(Σ age / consumed / 1000), null when nothing was consumed", () => {
    expect(avgSecondsToConsume(10 * 90_500, 10)).toBe(90);
    expect(avgSecondsToConsume(0, 0)).toBeNull();
    expect(avgSecondsToConsume(123, -2)).toBeNull();
    expect(avgSecondsToConsume(3 * 1000 * 1000 - 1, 3)).toBe(999);
  });

  it("exact: null is 0, a figure past 2^53 − 1 is refused", () => {
    expect(exact(null, "x")).toBe(0);
    expect(exact(-5, "x")).toBe(-5);
    expect(() => exact(2 ** 53, "purchased")).toThrow(/purchased is past 2\^53/);
  });
});
