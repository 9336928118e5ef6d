/** The recurring-grant calendar, by hand: UTC, months clamped to their last day, leap years, weeks, years. */
import { describe, expect, it } from "vitest";
import {
  addMonthsMs,
  lastBoundaryMs,
  nextBoundaryAfter,
  nextStep,
  periodIndexAt,
  periodStartMs,
  type RecurringSpec,
} from "../../src/ledger/recurring";

const t = (s: string) => Date.parse(s);
const iso = (ms: number) => new Date(ms).toISOString();

describe("periodStartMs", () => {
  it("month: the same day of the month, clamped to its last day, never drifting (Jan 31 → Feb 28 → Mar 31)", () => {
    const s = t("2027-01-31T10:30:00.000Z");
    expect([0, 1, 2, 3, 4, 12, 13].map((k) => iso(periodStartMs(s, "month", k)))).toEqual([
      "2027-01-31T10:30:00.000Z",
      "2027-02-28T10:30:00.000Z",
      "2027-03-31T10:30:00.000Z",
      "2027-04-30T10:30:00.000Z",
      "2027-05-31T10:30:00.000Z",
      "2028-01-31T10:30:00.000Z",
      "2028-02-29T10:30:00.000Z", // 2028 is a leap year
    ]);
  });

  it("month: the 29th and 30th clamp in February only", () => {
    const s = t("2026-11-30T00:00:00Z");
    expect([1, 2, 3, 4].map((k) => iso(periodStartMs(s, "month", k)))).toEqual([
      "2026-12-30T00:00:00.000Z",
      "2027-01-30T00:00:00.000Z",
      "2027-02-28T00:00:00.000Z",
      "2027-03-30T00:00:00.000Z",
    ]);
  });

  it("year: Feb 29 falls on Feb 28 in common years and comes back in leap years", () => {
    const s = t("2028-02-29T00:00:00Z");
    expect([1, 2, 3, 4, 100].map((k) => iso(periodStartMs(s, "year", k)))).toEqual([
      "2029-02-28T00:00:00.000Z",
      "2030-02-28T00:00:00.000Z",
      "2031-02-28T00:00:00.000Z",
      "2032-02-29T00:00:00.000Z",
      "2128-02-29T00:00:00.000Z",
    ]);
  });

  it("day and week: fixed lengths in UTC (no daylight saving)", () => {
    const s = t("2027-03-27T23:00:00Z");
    expect(iso(periodStartMs(s, "day", 2))).toBe("2027-03-29T23:00:00.000Z");
    expect(iso(periodStartMs(s, "week", 1))).toBe("2027-04-03T23:00:00.000Z");
    expect(iso(periodStartMs(s, "week", 52))).toBe("2028-03-25T23:00:00.000Z");
  });

  it("addMonthsMs crosses year ends", () => {
    expect(iso(addMonthsMs(t("2026-12-31T00:00:00Z"), 2))).toBe("2027-02-28T00:00:00.000Z");
    expect(iso(addMonthsMs(t("2026-10-15T08:00:00Z"), 27))).toBe("2029-01-15T08:00:00.000Z");
  });
});

describe("periodIndexAt", () => {
  it("is the last period starting at or before the time; −1 before the first", () => {
    const s = t("2027-01-31T00:00:00Z");
    expect(periodIndexAt(s, "month", s - 1)).toBe(-1);
    expect(periodIndexAt(s, "month", s)).toBe(0);
    expect(periodIndexAt(s, "month", t("2027-02-27T23:59:59.999Z"))).toBe(0);
    expect(periodIndexAt(s, "month", t("2027-02-28T00:00:00Z"))).toBe(1);
    expect(periodIndexAt(s, "month", t("2027-03-30T12:00:00Z"))).toBe(1);
    expect(periodIndexAt(s, "month", t("2027-03-31T00:00:00Z"))).toBe(2);
    expect(periodIndexAt(s, "day", s + 86_400_000 * 5 - 1)).toBe(4);
    expect(periodIndexAt(t("2028-02-29T00:00:00Z"), "year", t("2029-02-28T00:00:00Z"))).toBe(1);
    expect(periodIndexAt(t("2028-02-29T00:00:00Z"), "year", t("2029-02-27T23:00:00Z"))).toBe(0);
  });

  it("agrees with periodStartMs for every month over 30 years (round trip)", () => {
    for (const start of ["2027-01-31T05:00:00Z", "2026-03-30T00:00:00Z", "2028-02-29T23:59:59Z"]) {
      const s = t(start);
      for (let k = 0; k < 360; k++) {
        const at = periodStartMs(s, "month", k);
        expect(periodIndexAt(s, "month", at)).toBe(k);
        expect(periodIndexAt(s, "month", at - 1)).toBe(k - 1);
      }
    }
  });
});

const spec = (over: Partial<RecurringSpec> = {}): RecurringSpec => ({
  recurringId: "r",
  unit: "credits",
  type: "promotional",
  amount: 100,
  interval: "month",
  startsAtMs: t("2027-01-31T00:00:00Z"),
  endsAtMs: null,
  priority: 100,
  source: null,
  reason: null,
  expires: "end_of_period",
  rollover: null,
  ...over,
});

describe("nextStep and the boundaries", () => {
  it("settles a period's end before issuing the next period at the same instant", () => {
    const s = spec();
    expect(nextStep(s, { nextIssue: 0, nextSettle: 0 }, true)).toEqual({ kind: "issue", index: 0, atMs: s.startsAtMs });
    expect(nextStep(s, { nextIssue: 1, nextSettle: 0 }, true)).toEqual({
      kind: "settle",
      index: 0,
      atMs: t("2027-02-28T00:00:00Z"),
    });
    expect(nextStep(s, { nextIssue: 1, nextSettle: 1 }, true)?.kind).toBe("issue");
    // Cancelled: still settles what was issued, issues nothing more.
    expect(nextStep(s, { nextIssue: 1, nextSettle: 0 }, false)?.kind).toBe("settle");
    expect(nextStep(s, { nextIssue: 1, nextSettle: 1 }, false)).toBeNull();
    // expires: never has nothing to settle.
    expect(nextStep(spec({ expires: "never" }), { nextIssue: 3, nextSettle: 0 }, false)).toBeNull();
  });

  it("ends_at: no period starts at or after it; the last one's end is the last boundary", () => {
    const s = spec({ endsAtMs: t("2027-03-31T00:00:00Z") }); // periods Jan 31 and Feb 28 only
    expect(nextStep(s, { nextIssue: 2, nextSettle: 2 }, true)).toBeNull();
    expect(nextStep(s, { nextIssue: 1, nextSettle: 1 }, true)?.atMs).toBe(t("2027-02-28T00:00:00Z"));
    expect(iso(lastBoundaryMs(s, null) as number)).toBe("2027-03-31T00:00:00.000Z");
    expect(iso(lastBoundaryMs({ ...s, expires: "never" }, null) as number)).toBe("2027-02-28T00:00:00.000Z");
    expect(lastBoundaryMs(spec(), null)).toBeUndefined();
    expect(lastBoundaryMs(spec(), 0)).toBeNull();
    expect(iso(lastBoundaryMs(spec(), 2) as number)).toBe("2027-03-31T00:00:00.000Z");
  });

  it("nextBoundaryAfter: the next period start, bounded by the last boundary", () => {
    const s = spec().startsAtMs;
    expect(iso(nextBoundaryAfter(s, "month", s - 1, undefined) as number)).toBe("2027-01-31T00:00:00.000Z");
    expect(iso(nextBoundaryAfter(s, "month", s, undefined) as number)).toBe("2027-02-28T00:00:00.000Z");
    expect(nextBoundaryAfter(s, "month", s, s)).toBeNull();
    expect(nextBoundaryAfter(s, "month", s, null)).toBeNull();
  });
});
