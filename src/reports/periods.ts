/**
 * Report periods: UTC days and calendar months, as epoch-millisecond
 * half-open ranges [start, end). Pure arithmetic, no Cloudflare imports.
 *
 * A report's `from` and `to` must fall on its period's boundaries (UTC
 * midnight for `day`, the 1st of a month 00:00Z for `month`): the reports read
 * the daily rollups (journal_daily), which know nothing finer than a day, so
 * an aligned window is answered exactly from them and a clipped one could
 * only be answered by a pass over the raw journal.
 */

export const PERIODS = ["day", "month"] as const;
export type Period = (typeof PERIODS)[number];

export const DAY_MS = 86_400_000;
/** A report covers at most this many periods (a leap year of days; 30½ years of months). */
export const MAX_PERIODS = 366;

export interface Span {
  startMs: number;
  endMs: number;
}

/** The UTC midnight at or before `ms` (floor, so times before 1970 too). */
export const utcDay = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;

/** The start of the period holding `ms`. */
export function periodStart(ms: number, period: Period): number {
  if (period === "day") return utcDay(ms);
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** The start of the period after the one that starts at `startMs`. */
export function nextStart(startMs: number, period: Period): number {
  if (period === "day") return startMs + DAY_MS;
  const d = new Date(startMs);
  // Date.UTC carries month 12 into January of the next year.
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

export const isBoundary = (ms: number, period: Period): boolean => periodStart(ms, period) === ms;

/** How many periods [from, to) holds; both ends must be boundaries. */
export function periodCount(fromMs: number, toMs: number, period: Period): number {
  if (period === "day") return Math.round((toMs - fromMs) / DAY_MS);
  const a = new Date(fromMs);
  const b = new Date(toMs);
  return (b.getUTCFullYear() - a.getUTCFullYear()) * 12 + (b.getUTCMonth() - a.getUTCMonth());
}

const NAMES: Record<Period, string> = { day: "a UTC midnight", month: "the 1st of a month, 00:00Z" };

/**
 * The periods of [from, to), or why the window is refused: `from` before
 * `to`, both on boundaries, at most MAX_PERIODS periods. The count is checked
 * before any period is built, so a refused window costs nothing.
 */
export function periodsOf(
  fromMs: number,
  toMs: number,
  period: Period,
): { ok: true; spans: Span[] } | { ok: false; detail: string } {
  if (!(fromMs < toMs)) return { ok: false, detail: "from must be before to" };
  for (const [name, ms] of [
    ["from", fromMs],
    ["to", toMs],
  ] as const) {
    if (!isBoundary(ms, period)) {
      return { ok: false, detail: `${name} must be ${NAMES[period]} for period=${period} (reports add whole periods)` };
    }
  }
  const count = periodCount(fromMs, toMs, period);
  if (count > MAX_PERIODS) {
    return { ok: false, detail: `[from, to) holds ${count} periods of a ${period}; at most ${MAX_PERIODS} per report` };
  }
  const spans: Span[] = [];
  for (let start = fromMs; start < toMs; start = nextStart(start, period)) {
    spans.push({ startMs: start, endMs: nextStart(start, period) });
  }
  return { ok: true, spans };
}
