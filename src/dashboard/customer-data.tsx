/**
 * What the customer view reads, all through the /v1 API with the session's
 * bearer (src/dashboard/api-client.ts), with every read bounded:
 *
 * - the units an account has: those of its first LOTS_SCAN_MAX lots (one
 *   page of GET …/grants) plus `credits`, at most UNITS_SHOWN;
 * - usage per day: GET /v1/reports/credits (period=day, the account only);
 * - usage by meter and the filtered transaction log: GET …/ledger pages,
 *   starting at the first entry recorded at or after a time, found by a
 *   binary search over seq (`seekSeq`, at most SEEK_MAX_PROBES one-entry
 *   reads), then at most USAGE_SCAN_MAX_ENTRIES / LOG_SCAN_MAX_ENTRIES entries.
 */
import type { Context } from "hono";
import type { AppEnv } from "../api/context";
import { type ApiResult, apiCall } from "./api-client";
import { PageError } from "./layout";

/** One page of GET …/grants is read to learn the account's units. */
export const LOTS_SCAN_MAX = 1000;
/** At most this many units get a balance block (credits first, then by name). */
export const UNITS_SHOWN = 10;
/** At most this many children (departments) are listed with their balance. */
export const CHILDREN_SHOWN = 50;
/** The transaction log shows this many entries a page. */
export const LOG_PAGE_SIZE = 50;
/** A filtered log page reads at most this many entries looking for matches; past it, a "next" link continues. */
export const LOG_SCAN_MAX_ENTRIES = 5000;
/** Usage by meter adds up at most this many entries of the window; past it the table says it is partial. */
export const USAGE_SCAN_MAX_ENTRIES = 10_000;
/** The binary search for the first entry of a window makes at most this many one-entry reads. */
export const SEEK_MAX_PROBES = 64;
/** GET …/ledger's own page bound (LEDGER_PAGE_MAX in src/api/ledger.ts). */
const LEDGER_READ = 1000;
/** The usage chart spans the last 30 or 90 UTC days, today included. */
export const USAGE_DAYS = [30, 90] as const;

export interface Entry {
  seq: number;
  kind: string;
  unit: string;
  amount: number;
  held_delta: number;
  grant_id: string | null;
  credit_type: string | null;
  ref: string | null;
  actor: string | null;
  reason: string | null;
  effective_at: string;
  recorded_at: string;
  rating?: { meter: string; quantity: number; price_version: number };
}

interface LedgerPage {
  entries: Entry[];
  next_after_seq: number | null;
}

export interface Balance {
  unit: string;
  available: number;
  held: number;
  by_type: Record<string, number>;
  expiring: { grant_id: string; amount: number; expires_at: string }[];
  pending: { grant_id: string; amount: number; effective_at: string }[];
  awaiting_payment?: { grant_id: string; amount: number; type: string; created_at: string; topup: boolean }[];
  expiring_more?: boolean;
  pending_more?: boolean;
  rollup?: { available: number; held: number; by_type: Record<string, number>; accounts: number };
}

/** A read that must succeed for the page to make sense: its refusal becomes the page's error. */
export async function must<T>(c: Context<AppEnv>, bearer: string, path: string): Promise<T> {
  const res = await apiCall<T>(c, bearer, "GET", path);
  if (res.ok) return res.body;
  const status = ([400, 401, 403, 404, 409, 429, 503] as const).find((s) => s === res.status) ?? 502;
  throw new PageError(status, res.sentence);
}

export const read = <T,>(c: Context<AppEnv>, bearer: string, path: string): Promise<ApiResult<T>> =>
  apiCall<T>(c, bearer, "GET", path);

const ledgerPath = (accountId: string, afterSeq: number, limit: number) =>
  `/v1/accounts/${encodeURIComponent(accountId)}/ledger?after_seq=${afterSeq}&limit=${limit}`;

/** The units to show: `credits`, then those of the first LOTS_SCAN_MAX lots, by name, at most UNITS_SHOWN. */
export async function unitsOf(c: Context<AppEnv>, bearer: string, accountId: string): Promise<string[]> {
  const lots = await must<{ grants: { unit: string }[] }>(
    c,
    bearer,
    `/v1/accounts/${encodeURIComponent(accountId)}/grants?limit=${LOTS_SCAN_MAX}`,
  );
  const others = [...new Set(lots.grants.map((g) => g.unit))].filter((u) => u !== "credits").sort();
  return ["credits", ...others].slice(0, UNITS_SHOWN);
}

/**
 * The after_seq at which the entries recorded at or after `fromMs` begin
 * (recorded_at never decreases along the chain, so this is a binary search):
 * the largest seq s with entry s recorded before `fromMs`, 0 when none.
 */
export async function seekSeq(c: Context<AppEnv>, bearer: string, accountId: string, fromMs: number): Promise<number> {
  let probes = 0;
  /** true when entry `seq` does not exist or was recorded at or after fromMs. */
  const atOrAfter = async (seq: number): Promise<boolean> => {
    probes++;
    const page = await must<LedgerPage>(c, bearer, ledgerPath(accountId, seq - 1, 1));
    const e = page.entries[0];
    return e === undefined || Date.parse(e.recorded_at) >= fromMs;
  };
  let lo = 0;
  let hi = 1;
  while (probes < SEEK_MAX_PROBES && !(await atOrAfter(hi))) {
    lo = hi;
    hi *= 2;
  }
  // Invariant: entry lo (if lo > 0) is before fromMs; entry hi is at or after it (or missing).
  while (hi - lo > 1 && probes < SEEK_MAX_PROBES) {
    const mid = Math.floor((lo + hi) / 2);
    if (await atOrAfter(mid)) hi = mid;
    else lo = mid;
  }
  return lo;
}

export interface LogFilter {
  kind?: string;
  unit?: string;
  fromMs?: number;
  toMs?: number;
}

export interface LogPage {
  entries: Entry[];
  /** after_seq of the next page, null at the end. */
  next: number | null;
  /** The page stopped at LOG_SCAN_MAX_ENTRIES before filling: there may be more matches further on. */
  scanCut: boolean;
}

const matches = (e: Entry, f: LogFilter): boolean =>
  (f.kind === undefined || e.kind === f.kind) &&
  (f.unit === undefined || e.unit === f.unit) &&
  (f.fromMs === undefined || Date.parse(e.recorded_at) >= f.fromMs);

/** One page of the transaction log, oldest first, filtered on the dashboard's side (the ledger route has no filters). */
export async function logPage(
  c: Context<AppEnv>,
  bearer: string,
  accountId: string,
  startAfter: number,
  f: LogFilter,
): Promise<LogPage> {
  const filtered = f.kind !== undefined || f.unit !== undefined;
  const out: Entry[] = [];
  let after = startAfter;
  let scanned = 0;
  while (scanned < LOG_SCAN_MAX_ENTRIES) {
    const limit = filtered ? Math.min(LEDGER_READ, LOG_SCAN_MAX_ENTRIES - scanned) : LOG_PAGE_SIZE - out.length;
    const page = await must<LedgerPage>(c, bearer, ledgerPath(accountId, after, limit));
    for (const e of page.entries) {
      scanned++;
      after = e.seq;
      if (f.toMs !== undefined && Date.parse(e.recorded_at) >= f.toMs)
        return { entries: out, next: null, scanCut: false };
      if (!matches(e, f)) continue;
      out.push(e);
      if (out.length === LOG_PAGE_SIZE) {
        return {
          entries: out,
          next: page.next_after_seq === null && e === page.entries.at(-1) ? null : e.seq,
          scanCut: false,
        };
      }
    }
    if (page.next_after_seq === null || page.entries.length === 0) return { entries: out, next: null, scanCut: false };
  }
  return { entries: out, next: after, scanCut: true };
}

export interface MeterUsage {
  meter: string;
  /** Σ rating.quantity, once per debit (a debit drawing from several lots repeats its rating on each entry). */
  quantity: number;
  /** −Σ amount of the meter's debit entries. */
  amount: number;
}

/** Metered debits of one unit recorded in [fromMs, now), by meter; `partial` when USAGE_SCAN_MAX_ENTRIES cut it. */
export async function meterUsage(
  c: Context<AppEnv>,
  bearer: string,
  accountId: string,
  unit: string,
  fromMs: number,
): Promise<{ meters: MeterUsage[]; partial: boolean }> {
  const byMeter = new Map<string, { quantity: number; amount: number; refs: Set<string> }>();
  let after = await seekSeq(c, bearer, accountId, fromMs);
  let scanned = 0;
  let partial = false;
  for (;;) {
    if (scanned >= USAGE_SCAN_MAX_ENTRIES) {
      partial = true;
      break;
    }
    const page = await must<LedgerPage>(
      c,
      bearer,
      ledgerPath(accountId, after, Math.min(LEDGER_READ, USAGE_SCAN_MAX_ENTRIES - scanned)),
    );
    for (const e of page.entries) {
      scanned++;
      after = e.seq;
      if (e.kind !== "debit" || e.unit !== unit || !e.rating) continue;
      const m = byMeter.get(e.rating.meter) ?? { quantity: 0, amount: 0, refs: new Set<string>() };
      m.amount -= e.amount;
      const ref = e.ref ?? `seq:${e.seq}`;
      if (!m.refs.has(ref)) {
        m.refs.add(ref);
        m.quantity += e.rating.quantity;
      }
      byMeter.set(e.rating.meter, m);
    }
    if (page.next_after_seq === null || page.entries.length === 0) break;
  }
  const meters = [...byMeter.entries()]
    .map(([meter, m]) => ({ meter, quantity: m.quantity, amount: m.amount }))
    .sort((a, b) => (a.meter < b.meter ? -1 : 1));
  return { meters, partial };
}

const DAY_MS = 86_400_000;

/** UTC midnight of the day `ms` falls in. */
export const dayStart = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;

export interface DayUsage {
  day: string;
  consumed: number;
}

interface CreditsReport {
  periods: { start: string; groups: { consumed: number }[] }[];
}

/** Credits consumed per UTC day over the last `days` days (today included), from the credits report. */
export async function dailyUsage(
  c: Context<AppEnv>,
  bearer: string,
  accountId: string,
  unit: string,
  days: number,
  nowMs: number,
): Promise<ApiResult<DayUsage[]>> {
  const to = dayStart(nowMs) + DAY_MS;
  const from = to - days * DAY_MS;
  const q = new URLSearchParams({
    group_by: "type",
    period: "day",
    unit,
    account_id: accountId,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
  });
  const res = await read<CreditsReport>(c, bearer, `/v1/reports/credits?${q}`);
  if (!res.ok) return res;
  const byStart = new Map(
    res.body.periods.map((p) => [Date.parse(p.start), p.groups.reduce((s, g) => s + g.consumed, 0)]),
  );
  const out: DayUsage[] = [];
  for (let t = from; t < to; t += DAY_MS) {
    out.push({ day: new Date(t).toISOString().slice(0, 10), consumed: byStart.get(t) ?? 0 });
  }
  return { ...res, body: out };
}
