/**
 * Recurring grants (allowances), the pure part: the calendar of a schedule's
 * periods, which step of a schedule falls due next, and the lots and entries
 * of each step — issuing a period's lot, and settling a period's end
 * (rollover of part of the unspent remainder into a new lot, the rest
 * expiring as breakage). No Cloudflare imports, no clock of its own.
 *
 * Periods are numbered from 0 here (`index`); grant ids number them from 1:
 * period `index` issues lot `<recurring_id>.<index + 1>`.
 */
import { totalRemaining } from "./lots";
import { type CreditType, type EntryDraft, type Lot, MAX_ACCOUNT_TOTAL } from "./types";

export const RECURRING_INTERVALS = ["day", "week", "month", "year"] as const;
export type RecurringInterval = (typeof RECURRING_INTERVALS)[number];
export const RECURRING_EXPIRES = ["end_of_period", "never"] as const;
export type RecurringExpires = (typeof RECURRING_EXPIRES)[number];

/** A rollover lot lives at most this many periods after the one it came from. */
export const RECURRING_MAX_ROLLOVER_PERIODS = 12;
/** `rollover.max_periods` when the body leaves it out: the rolled credits last through the next period. */
export const RECURRING_DEFAULT_ROLLOVER_PERIODS = 1;

const DAY_MS = 86_400_000;

export interface RolloverRule {
  /** At most this much of a period's unspent, unheld remainder moves on; null: all of it. */
  maxAmount: number | null;
  /** The rollover lot expires this many periods after the period it came from ended. */
  maxPeriods: number;
}

/** A schedule as created: its terms never change (cancelling only stops new periods). */
export interface RecurringSpec {
  recurringId: string;
  unit: string;
  type: CreditType;
  amount: number;
  interval: RecurringInterval;
  startsAtMs: number;
  /** No period starts at or after this time; null: periods go on until cancelled. */
  endsAtMs: number | null;
  priority: number;
  source: string | null;
  reason: string | null;
  expires: RecurringExpires;
  /** Only with expires = end_of_period. */
  rollover: RolloverRule | null;
}

/** How far a schedule has got: the next period to issue and the next period whose end to settle. */
export interface RecurringCursor {
  nextIssue: number;
  nextSettle: number;
}

export type RecurringStep = { kind: "issue" | "settle"; index: number; atMs: number };

/** UTC midnight of (year, month, day), month 0-based and allowed to run past 11. */
function utcDayMs(year: number, month: number, day: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  d.setUTCHours(0, 0, 0, 0);
  return d.getTime();
}

function daysInMonth(year: number, month: number): number {
  return new Date(utcDayMs(year, month + 1, 1) - DAY_MS).getUTCDate();
}

/** `months` calendar months after `fromMs`: the same day of the month, clamped to its last day; same time of day. */
export function addMonthsMs(fromMs: number, months: number): number {
  const d = new Date(fromMs);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + months;
  const timeOfDayMs = fromMs - utcDayMs(y, d.getUTCMonth(), d.getUTCDate());
  const year = y + Math.floor(m / 12);
  const month = ((m % 12) + 12) % 12;
  return utcDayMs(year, month, Math.min(d.getUTCDate(), daysInMonth(year, month))) + timeOfDayMs;
}

/**
 * Start of period `index` (from 0). Always computed from `startsAtMs` and
 * the index, never from the previous start, so a month clamped once is not
 * clamped for ever after: Jan 31 → Feb 28 → Mar 31.
 * @example periodStartMs(Date.parse("2027-01-31T00:00:00Z"), "month", 1) // 2027-02-28T00:00:00Z
 */
export function periodStartMs(startsAtMs: number, interval: RecurringInterval, index: number): number {
  switch (interval) {
    case "day":
      return startsAtMs + index * DAY_MS;
    case "week":
      return startsAtMs + index * 7 * DAY_MS;
    case "month":
      return addMonthsMs(startsAtMs, index);
    case "year":
      return addMonthsMs(startsAtMs, 12 * index);
  }
}

/** The index of the period holding `atMs` (the last one starting at or before it); −1 before the first. */
export function periodIndexAt(startsAtMs: number, interval: RecurringInterval, atMs: number): number {
  if (atMs < startsAtMs) return -1;
  let k: number;
  if (interval === "day" || interval === "week") {
    k = Math.floor((atMs - startsAtMs) / ((interval === "day" ? 1 : 7) * DAY_MS));
  } else {
    const s = new Date(startsAtMs);
    const t = new Date(atMs);
    const months = (t.getUTCFullYear() - s.getUTCFullYear()) * 12 + (t.getUTCMonth() - s.getUTCMonth());
    k = interval === "month" ? months : Math.floor(months / 12);
  }
  // The estimate is off by at most one either way (day of month, time of day).
  while (k > 0 && periodStartMs(startsAtMs, interval, k) > atMs) k--;
  while (periodStartMs(startsAtMs, interval, k + 1) <= atMs) k++;
  return k;
}

/** Whether period `index` exists: it starts before the schedule's end. */
export function periodExists(spec: RecurringSpec, index: number): boolean {
  return spec.endsAtMs === null || periodStartMs(spec.startsAtMs, spec.interval, index) < spec.endsAtMs;
}

export const periodGrantId = (recurringId: string, index: number) => `${recurringId}.${index + 1}`;
export const rolloverGrantId = (recurringId: string, index: number) => `${recurringId}.${index + 1}.rollover`;

/**
 * The schedule's next step, due or not: issue the next period (while the
 * schedule is active and the period exists) or settle the end of the oldest
 * issued period not yet settled (expires = end_of_period only). A period's
 * end is the next one's start; there the settlement comes first.
 */
export function nextStep(spec: RecurringSpec, cursor: RecurringCursor, active: boolean): RecurringStep | null {
  const at = (i: number) => periodStartMs(spec.startsAtMs, spec.interval, i);
  const issue: RecurringStep | null =
    active && periodExists(spec, cursor.nextIssue)
      ? { kind: "issue", index: cursor.nextIssue, atMs: at(cursor.nextIssue) }
      : null;
  const settle: RecurringStep | null =
    spec.expires === "end_of_period" && cursor.nextSettle < cursor.nextIssue
      ? { kind: "settle", index: cursor.nextSettle, atMs: at(cursor.nextSettle + 1) }
      : null;
  if (settle && (!issue || settle.atMs <= issue.atMs)) return settle;
  return issue;
}

export interface RecurringPlan {
  lots: Lot[];
  entries: EntryDraft[];
}

/**
 * The lot of period `index`, effective at the period's start (even when that
 * is long past: a late period is still issued), expiring at its end under
 * end_of_period. Null when the account's total in the unit would pass
 * MAX_ACCOUNT_TOTAL: that period is skipped, never issued later.
 */
export function planIssue(
  spec: RecurringSpec,
  index: number,
  lots: Iterable<Lot>,
  createdOrder: number,
  nowMs: number,
): RecurringPlan | null {
  if (totalRemaining(lots, spec.unit) + spec.amount > MAX_ACCOUNT_TOTAL) return null;
  const startMs = periodStartMs(spec.startsAtMs, spec.interval, index);
  const grantId = periodGrantId(spec.recurringId, index);
  const lot: Lot = {
    grantId,
    unit: spec.unit,
    type: spec.type,
    amount: spec.amount,
    priority: spec.priority,
    effectiveAtMs: startMs,
    expiresAtMs: spec.expires === "end_of_period" ? periodStartMs(spec.startsAtMs, spec.interval, index + 1) : null,
    source: spec.source,
    reason: spec.reason,
    campaign: null,
    incidentId: null,
    costBasis: null,
    metadata: { recurring_id: spec.recurringId, period: String(index + 1) },
    sourceGrantId: null,
    createdAtMs: nowMs,
    createdOrder,
    remaining: spec.amount,
    held: 0,
    voidedAtMs: null,
  };
  const entry: EntryDraft = {
    kind: "grant",
    unit: spec.unit,
    amount: spec.amount,
    heldDelta: 0,
    grantId,
    creditType: spec.type,
    ref: spec.recurringId,
    reason: spec.reason,
    effectiveAtMs: startMs,
  };
  return { lots: [lot], entries: [entry] };
}

/**
 * The end of period `index`, effective at that moment whenever it is
 * planned: of the lot's unspent, unheld remainder, min(max_amount, it) moves
 * into lot `<recurring_id>.<n>.rollover` (a `grant.rolled_over` entry on the
 * period's lot, a `rollover` entry on the new one), which expires
 * max_periods periods later and never rolls over again; the rest leaves as
 * breakage (`grant.expired`). Held credits stay with their holds. Nothing to
 * do for a voided or spent lot.
 */
export function planSettle(
  spec: RecurringSpec,
  index: number,
  lot: Lot | undefined,
  rolloverTaken: boolean,
  createdOrder: number,
  nowMs: number,
): RecurringPlan {
  const plan: RecurringPlan = { lots: [], entries: [] };
  if (lot === undefined || lot.voidedAtMs !== null) return plan;
  const free = lot.remaining - lot.held;
  if (free <= 0) return plan;
  const endMs = periodStartMs(spec.startsAtMs, spec.interval, index + 1);
  const rule = spec.rollover;
  const rolled = rule === null || rolloverTaken ? 0 : Math.min(rule.maxAmount ?? free, free);
  const base = { unit: lot.unit, heldDelta: 0, creditType: lot.type, effectiveAtMs: endMs } as const;
  plan.lots.push({ ...lot, remaining: lot.held });
  if (rule !== null && rolled > 0) {
    const rolloverId = rolloverGrantId(spec.recurringId, index);
    plan.entries.push(
      { ...base, kind: "grant.rolled_over", amount: -rolled, grantId: lot.grantId, ref: rolloverId, reason: null },
      { ...base, kind: "rollover", amount: rolled, grantId: rolloverId, ref: lot.grantId, reason: null },
    );
    plan.lots.push({
      ...lot,
      grantId: rolloverId,
      amount: rolled,
      effectiveAtMs: endMs,
      expiresAtMs: periodStartMs(spec.startsAtMs, spec.interval, index + 1 + rule.maxPeriods),
      metadata: { recurring_id: spec.recurringId, period: String(index + 1), rollover: "true" },
      sourceGrantId: lot.grantId,
      createdAtMs: nowMs,
      createdOrder,
      remaining: rolled,
      held: 0,
      voidedAtMs: null,
    });
  }
  if (free > rolled) {
    plan.entries.push({
      ...base,
      kind: "grant.expired",
      amount: -(free - rolled),
      grantId: lot.grantId,
      ref: null,
      reason: null,
    });
  }
  return plan;
}

/** What a schedule's boundaries depend on. */
export type BoundarySpec = Pick<RecurringSpec, "recurringId" | "interval" | "startsAtMs" | "endsAtMs" | "expires">;

/**
 * The last moment a schedule has a step to take: the start of its last
 * period, or that period's end when its lots expire (the end is settled).
 * `issued` counts the periods issued when it was cancelled (null: active).
 * Returns undefined when it never ends, null when nothing is left at all.
 */
export function lastBoundaryMs(spec: BoundarySpec, issued: number | null): number | null | undefined {
  const at = (i: number) => periodStartMs(spec.startsAtMs, spec.interval, i);
  const settles = spec.expires === "end_of_period" ? 1 : 0;
  if (issued !== null) return issued === 0 ? null : settles ? at(issued) : at(issued - 1);
  if (spec.endsAtMs === null) return undefined;
  if (spec.endsAtMs <= spec.startsAtMs) return null;
  const last = periodIndexAt(spec.startsAtMs, spec.interval, spec.endsAtMs - 1);
  return at(last + settles);
}

/**
 * The first boundary (a period start; a period's end is the next one's
 * start) after `afterMs`, or null when it would pass `lastMs` (undefined:
 * no last boundary).
 * @example nextBoundaryAfter(start, "day", start, undefined) // start + 1 day
 */
export function nextBoundaryAfter(
  startsAtMs: number,
  interval: RecurringInterval,
  afterMs: number,
  lastMs: number | null | undefined,
): number | null {
  if (lastMs === null) return null;
  const next = periodStartMs(startsAtMs, interval, periodIndexAt(startsAtMs, interval, afterMs) + 1);
  return lastMs !== undefined && next > lastMs ? null : next;
}
