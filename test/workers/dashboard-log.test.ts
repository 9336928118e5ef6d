/**
 * The transaction log's date filter over a ledger spread across days: the
 * dashboard finds the first entry of a window by a binary search over seq
 * (seekSeq), so the entries it shows for a window must be exactly the API's
 * entries recorded in it. The account's clock is moved forward between
 * batches, so the days differ by the ledger's own recorded_at.
 */
import { describe, expect, it } from "vitest";
import { formatAmount, formatDate } from "../../src/dashboard/layout";
import { fields, page, sessionFor } from "./dashboard-helpers";
import { advanceClock, call, grant, uid } from "./helpers";

const DAY = 86_400_000;
const shownSeqs = (html: string): number[] =>
  [...fields(html).keys()]
    .map((k) => /^entry\.(\d+)\.amount$/.exec(k)?.[1])
    .filter((s): s is string => s !== undefined)
    .map(Number);

describe("transaction log by date", () => {
  it("shows exactly the entries recorded in the chosen UTC days, however many precede them", async () => {
    const acct = uid("dash-days");
    const batches = [9, 7, 11, 5];
    for (const [i, n] of batches.entries()) {
      for (let k = 0; k < n; k++) await grant(acct, { amount: 10 * i + k + 1 });
      if (i < batches.length - 1) await advanceClock(acct, 2 * DAY);
    }
    const entries = (await call("GET", `/v1/accounts/${acct}/ledger?limit=1000`)).json.entries as {
      seq: number;
      recorded_at: string;
    }[];
    expect(entries).toHaveLength(32);
    const cookie = `cg_session=${await sessionFor(acct)}`;
    const days = [...new Set(entries.map((e) => e.recorded_at.slice(0, 10)))];
    expect(days).toHaveLength(4);
    for (let a = 0; a < days.length; a++) {
      for (let b = a; b < days.length; b++) {
        const from = days[a] as string;
        const to = days[b] as string;
        const want = entries
          .filter((e) => e.recorded_at.slice(0, 10) >= from && e.recorded_at.slice(0, 10) <= to)
          .map((e) => e.seq);
        const res = await page(`/app/accounts/${acct}?from=${from}&to=${to}`, { cookie });
        expect(res.status).toBe(200);
        expect(shownSeqs(res.text), `${from}..${to}`).toEqual(want);
      }
    }
    // A window after the last entry, and one before the first, show nothing.
    const after = new Date(Date.parse(`${days.at(-1)}T00:00:00Z`) + DAY).toISOString().slice(0, 10);
    expect(shownSeqs((await page(`/app/accounts/${acct}?from=${after}`, { cookie })).text)).toEqual([]);
    expect(shownSeqs((await page(`/app/accounts/${acct}?to=2000-01-01`, { cookie })).text)).toEqual([]);
    const bad = await page(`/app/accounts/${acct}?from=2026-02-30x`, { cookie });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/role="alert"[^>]*>The from date/);
  });
});

describe("formatting", () => {
  it("dates as YYYY-MM-DD HH:MM UTC and amounts with thousands separators", () => {
    expect(formatDate("2026-11-25T07:31:59.999Z")).toBe("2026-11-25 07:31 UTC");
    expect(formatDate("2026-11-25T08:31:00+01:00")).toBe("2026-11-25 07:31 UTC");
    expect(formatDate(Date.UTC(2027, 0, 2, 3, 4))).toBe("2027-01-02 03:04 UTC");
    expect(formatDate(null)).toBe("—");
    expect(formatDate("nonsense")).toBe("—");
    expect(formatAmount(0)).toBe("0");
    expect(formatAmount(999)).toBe("999");
    expect(formatAmount(1000)).toBe("1,000");
    expect(formatAmount(-1234567)).toBe("-1,234,567");
    expect(formatAmount(1_000_000_000_000_000)).toBe("1,000,000,000,000,000");
    expect(formatAmount(null)).toBe("—");
  });
});
