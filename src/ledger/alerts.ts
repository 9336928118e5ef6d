/**
 * Alert rules: pure functions of ledger state and time. The DO applies the
 * ones that must see every change (low balance, expiry); the cron applies the
 * ones that look at history or the calendar (expiring soon, usage spikes).
 * Integers only: a spike is `covered hours × last hour ≥ factor × trailing
 * sum`, never a division.
 */
import { LotBook } from "./lot-book";
import { balanceOf } from "./lots";
import type { EntryDraft, Lot } from "./types";

export const ALERT_TYPES = [
  "balance.low",
  "credits.expiring",
  "credits.expired",
  "usage.spike",
  "reconciliation.drift",
  // Lifecycle events a CRM follows (issue 10): every `grant` entry, an
  // activation of a grant awaiting payment, a campaign redemption, a top-up.
  "grant.issued",
  "grant.activated",
  "grant.redeemed",
  "topup.requested",
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** An alert before the writer gives it an id and an account. */
export interface AlertDraft {
  type: AlertType;
  unit: string | null;
  data: Record<string, string | number | boolean | null>;
  atMs: number;
}

export interface AlertSettings {
  /** credits.expiring fires this many days before a lot expires, once per window (e.g. [7, 1]). */
  expiring_days: number[];
  /** usage.spike when last hour ≥ factor × the trailing hourly average. */
  spike_factor: number;
  /** Hours averaged for the trailing baseline (before the last hour). */
  spike_trailing_hours: number;
}

export const DEFAULT_ALERT_SETTINGS: AlertSettings = {
  expiring_days: [7, 1],
  spike_factor: 10,
  spike_trailing_hours: 24,
};

/** Entry kinds that consume credits (their negative amounts are usage). */
export const CONSUMPTION_KINDS = ["debit", "hold.captured", "receipt.settled", "invoice"] as const;

// ── balance.low ───────────────────────────────────────────────────────────

/** Per unit: true while available is below the threshold (the alert has fired and is disarmed). */
export type LowBalanceState = Record<string, boolean>;

/**
 * Fires `balance.low` when available crosses below a unit's threshold, once
 * per crossing; going back to or above the threshold re-arms it.
 * @example lowBalanceCrossings({credits: 100}, {}, () => 40, t) // one alert; state {credits: true}
 */
export function lowBalanceCrossings(
  thresholds: Readonly<Record<string, number>> | null,
  state: Readonly<LowBalanceState>,
  availableOf: (unit: string) => number,
  nowMs: number,
): { alerts: AlertDraft[]; state: LowBalanceState; changed: boolean } {
  const next: LowBalanceState = {};
  const alerts: AlertDraft[] = [];
  for (const [unit, threshold] of Object.entries(thresholds ?? {})) {
    const available = availableOf(unit);
    const low = available < threshold;
    if (low && !state[unit]) {
      alerts.push({ type: "balance.low", unit, data: { unit, available, threshold }, atMs: nowMs });
    }
    if (low) next[unit] = true;
  }
  const changed = canonicalState(next) !== canonicalState(state);
  return { alerts, state: next, changed };
}

const canonicalState = (s: Readonly<LowBalanceState>): string =>
  Object.keys(s)
    .filter((k) => s[k])
    .sort()
    .join(",");

// ── credits.expired ───────────────────────────────────────────────────────

/** One `credits.expired` per lot whose unheld remainder an expiry entry wrote off. */
export function expiredAlerts(entries: readonly EntryDraft[], nowMs: number): AlertDraft[] {
  return entries
    .filter((e) => e.kind === "grant.expired" && e.amount < 0)
    .map((e) => ({
      type: "credits.expired" as const,
      unit: e.unit,
      data: {
        grant_id: e.grantId,
        unit: e.unit,
        credit_type: e.creditType,
        amount_lost: -e.amount,
        expired_at: new Date(e.effectiveAtMs).toISOString(),
      },
      atMs: nowMs,
    }));
}

// ── credits.expiring ──────────────────────────────────────────────────────

/**
 * The window (in days) a lot that expires at `expiresAtMs` is in at `nowMs`:
 * the smallest configured N with expiry ≤ now + N days, or null when it is
 * outside every window or already expired. A window is due only if no window
 * this small has been notified yet (`notifiedDays` is the smallest sent).
 * @example expiringWindowDue(now + 3 * DAY, now, [7, 1], null) // 7
 * @example expiringWindowDue(now + 3 * DAY, now, [7, 1], 7)    // null: already told
 */
export function expiringWindowDue(
  expiresAtMs: number,
  nowMs: number,
  windowsDays: readonly number[],
  notifiedDays: number | null,
): number | null {
  if (expiresAtMs <= nowMs) return null;
  const sorted = [...windowsDays].sort((a, b) => a - b);
  const window = sorted.find((n) => expiresAtMs <= nowMs + n * DAY_MS);
  if (window === undefined) return null;
  if (notifiedDays !== null && notifiedDays <= window) return null;
  return window;
}

// ── usage.spike ───────────────────────────────────────────────────────────

/**
 * A spike needs a baseline of at least this many whole hours of history
 * (or the whole trailing window, when that is shorter): a young account's
 * second or third hour is not compared with an average it has not lived.
 */
export const SPIKE_MIN_COVERED_HOURS = 3;

export interface UsageWindow {
  /** Consumption in (now − 1 h, now]. */
  lastHour: number;
  /** Consumption in (now − (1 + trailingHours) h, now − 1 h]. */
  trailing: number;
  /**
   * Whole hours of the trailing window the account's history covers: the
   * trailing hours for an account older than the window, fewer for a younger
   * one (see `coveredHours`). The trailing average is `trailing / coveredHours`.
   */
  coveredHours: number;
}

/**
 * Whole hours of the trailing window (the `trailingHours` before the last
 * hour) that lie after the history starts (the cron takes the unit's first
 * grant on the account), rounded down: a partial hour does not count, so the
 * average is never diluted by time the account could not have used.
 * `historyStartMs` null: no history at all, 0 hours.
 * @example coveredHours(now - 2.5 * HOUR, now, 24) // 1: only (now − 2.5 h, now − 1 h] is history
 * @example coveredHours(now - 30 * HOUR, now, 24) // 24
 */
export function coveredHours(historyStartMs: number | null, nowMs: number, trailingHours: number): number {
  if (historyStartMs === null) return 0;
  const hourAgo = nowMs - HOUR_MS;
  const lived = Math.floor((hourAgo - historyStartMs) / HOUR_MS);
  return Math.max(0, Math.min(trailingHours, lived));
}

/**
 * A spike: last hour ≥ factor × the trailing hourly average over the hours
 * the account's history covers, with some trailing usage to compare against
 * (a first hour of use is not a spike) and at least SPIKE_MIN_COVERED_HOURS
 * of history (or all `trailingHours`, when fewer).
 * @example isUsageSpike({lastHour: 240, trailing: 24, coveredHours: 24}, 10, 24) // true: avg 1/h
 * @example isUsageSpike({lastHour: 2, trailing: 1, coveredHours: 1}, 10, 24)     // false: 1 h of history
 */
export function isUsageSpike(w: UsageWindow, factor: number, trailingHours: number): boolean {
  const covered = Math.min(w.coveredHours, trailingHours);
  if (covered < Math.min(SPIKE_MIN_COVERED_HOURS, trailingHours)) return false;
  if (w.trailing <= 0 || w.lastHour <= 0) return false;
  return w.lastHour * covered >= factor * w.trailing;
}

/**
 * Sums a synthetic or queried history of consumption events into the two
 * windows `isUsageSpike` compares; the history starts at `historyStartMs`,
 * or at the earliest event when not given.
 */
export function usageWindow(
  events: Iterable<{ atMs: number; amount: number }>,
  nowMs: number,
  trailingHours: number,
  historyStartMs?: number | null,
): UsageWindow {
  const hourAgo = nowMs - HOUR_MS;
  const trailingStart = hourAgo - trailingHours * HOUR_MS;
  let lastHour = 0;
  let trailing = 0;
  let first: number | null = historyStartMs ?? null;
  for (const e of events) {
    if (historyStartMs === undefined && (first === null || e.atMs < first)) first = e.atMs;
    if (e.atMs > hourAgo && e.atMs <= nowMs) lastHour += e.amount;
    else if (e.atMs > trailingStart && e.atMs <= hourAgo) trailing += e.amount;
  }
  return { lastHour, trailing, coveredHours: coveredHours(first, nowMs, trailingHours) };
}

/**
 * One `grant.issued` per `grant` entry, with what a CRM needs to follow it:
 * the lot's type, amount, source, campaign and campaign variant (the lot's
 * `metadata.variant`, set by a redemption), so redemption can be matched with
 * conversion without polling.
 */
export function issuedAlerts(
  drafts: readonly EntryDraft[],
  lotOf: ((grantId: string) => Lot | undefined) | undefined,
  nowMs: number,
): AlertDraft[] {
  const out: AlertDraft[] = [];
  for (const d of drafts) {
    if (d.kind !== "grant" || d.grantId === null) continue;
    const lot = lotOf?.(d.grantId);
    out.push({
      type: "grant.issued",
      unit: d.unit,
      data: {
        grant_id: d.grantId,
        unit: d.unit,
        amount: d.amount,
        credit_type: d.creditType,
        source: lot?.source ?? null,
        campaign: lot?.campaign ?? null,
        variant: lot?.metadata?.variant ?? null,
      },
      atMs: nowMs,
    });
  }
  return out;
}

/** Spike alerts are deduplicated per account, unit and clock hour. */
export const spikeHour = (nowMs: number): number => Math.floor(nowMs / HOUR_MS);

/** An alert as stored in D1 and served by GET /v1/alerts. */
export interface AlertRecord {
  id: string;
  type: AlertType;
  account_id: string | null;
  unit: string | null;
  data: AlertDraft["data"];
  created_at: string;
}

/** Stamps drafts with ids derived from one transaction id, so a re-shipped outbox row is the same alert. */
export function alertRecords(drafts: readonly AlertDraft[], accountId: string | null, idPrefix: string): AlertRecord[] {
  return drafts.map((d, i) => ({
    id: `${idPrefix}.${i}`,
    type: d.type,
    account_id: accountId,
    unit: d.unit,
    data: d.data,
    created_at: new Date(d.atMs).toISOString(),
  }));
}

/** The alerts one change raises, and the balance.low state it leaves. */
export interface RaisedAlerts {
  alerts: AlertRecord[];
  lowBalance: LowBalanceState;
  /** Whether `lowBalance` differs from the state before, so the writer persists it only then. */
  lowChanged: boolean;
}

/**
 * The rules the account applies on every change: balance.low crossings
 * measured on the lots after the change, and credits.expired for its expiry
 * drafts. Ids come from `idPrefix`, one per transaction.
 */
export function raiseAlerts(change: {
  accountId: string;
  thresholds: Readonly<Record<string, number>> | null;
  lowBalance: Readonly<LowBalanceState>;
  drafts: readonly EntryDraft[];
  /** The account's book (its running totals answer) or a plain list of lots. */
  lots: Iterable<Lot> | LotBook;
  nowMs: number;
  idPrefix: string;
  /** Alerts the operation raises itself (top-up requested, grant activated, redeemed), after the rules' own. */
  extra?: readonly AlertDraft[];
  /** The lot a `grant` entry issued, for its grant.issued alert (campaign, source, variant). */
  lotOf?: (grantId: string) => Lot | undefined;
}): RaisedAlerts {
  // Only a threshold needs the balance; the common case (none) copies nothing.
  const source = change.lots;
  const lots = change.thresholds && !(source instanceof LotBook) ? [...source] : [];
  const availableOf = (unit: string) =>
    source instanceof LotBook ? source.available(unit, change.nowMs) : balanceOf(lots, unit, change.nowMs).available;
  const low = lowBalanceCrossings(change.thresholds, change.lowBalance, availableOf, change.nowMs);
  const drafts = [
    ...low.alerts,
    ...expiredAlerts(change.drafts, change.nowMs),
    ...issuedAlerts(change.drafts, change.lotOf, change.nowMs),
    ...(change.extra ?? []),
  ];
  return {
    alerts: alertRecords(drafts, change.accountId, change.idPrefix),
    lowBalance: low.state,
    lowChanged: low.changed,
  };
}
