/**
 * Units and conversion rates in D1 (`units`, `rates`): the catalogue an
 * admin keeps, read by GET /v1/units and /v1/rates and by conversions.
 * `credits`, the default unit, always exists: it is served even before it
 * is PUT (as DEFAULT_UNIT_VIEW) and can be renamed or priced like any other.
 */
import { DEFAULT_UNIT } from "../ledger";

/** At most this many units are defined; GET /v1/units serves them all in one response. */
export const UNITS_MAX = 1000;
/** At most this many rates are defined; GET /v1/rates serves them all in one response. */
export const RATES_MAX = 1000;

export interface ListPrice {
  /** Minor units of `currency` … */
  amount: number;
  currency: string;
  /** … per this many units. */
  per: number;
}

export interface UnitInput {
  name: string;
  scale: number;
  list_price?: ListPrice | null;
}

export interface UnitView {
  unit: string;
  name: string;
  scale: number;
  list_price: ListPrice | null;
  created_at: string | null;
  updated_at: string | null;
}

export interface RateInput {
  numerator: number;
  denominator: number;
}

export interface RateView {
  from: string;
  to: string;
  numerator: number;
  denominator: number;
  created_at: string;
  updated_at: string;
}

/** `credits` as served before anyone PUT it. */
export const DEFAULT_UNIT_VIEW: UnitView = {
  unit: DEFAULT_UNIT,
  name: "Credits",
  scale: 0,
  list_price: null,
  created_at: null,
  updated_at: null,
};

const iso = (ms: number) => new Date(ms).toISOString();

interface UnitSqlRow {
  unit: string;
  name: string;
  scale: number;
  list_price_amount: number | null;
  list_price_currency: string | null;
  list_price_per: number | null;
  created_at_ms: number;
  updated_at_ms: number;
}

function unitView(r: UnitSqlRow): UnitView {
  const list_price =
    r.list_price_amount === null || r.list_price_currency === null || r.list_price_per === null
      ? null
      : { amount: r.list_price_amount, currency: r.list_price_currency, per: r.list_price_per };
  return {
    unit: r.unit,
    name: r.name,
    scale: r.scale,
    list_price,
    created_at: iso(r.created_at_ms),
    updated_at: iso(r.updated_at_ms),
  };
}

interface RateSqlRow {
  from_unit: string;
  to_unit: string;
  numerator: number;
  denominator: number;
  created_at_ms: number;
  updated_at_ms: number;
}

const rateView = (r: RateSqlRow): RateView => ({
  from: r.from_unit,
  to: r.to_unit,
  numerator: r.numerator,
  denominator: r.denominator,
  created_at: iso(r.created_at_ms),
  updated_at: iso(r.updated_at_ms),
});

export async function getUnit(db: D1Database, unit: string): Promise<UnitView | null> {
  const row = await db.prepare("SELECT * FROM units WHERE unit = ?").bind(unit).first<UnitSqlRow>();
  if (row) return unitView(row);
  return unit === DEFAULT_UNIT ? DEFAULT_UNIT_VIEW : null;
}

/** Every unit, by name of unit (at most UNITS_MAX, plus `credits` when it was never PUT). */
export async function listUnits(db: D1Database): Promise<UnitView[]> {
  const { results } = await db.prepare("SELECT * FROM units ORDER BY unit LIMIT ?").bind(UNITS_MAX).all<UnitSqlRow>();
  const views = results.map(unitView);
  if (!views.some((u) => u.unit === DEFAULT_UNIT)) {
    views.push(DEFAULT_UNIT_VIEW);
    views.sort((a, b) => (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0));
  }
  return views;
}

export type PutOutcome<T> = { ok: true; created: boolean; before: T | null; after: T } | { ok: false; detail: string };

/**
 * Creates or replaces a unit in one statement; a new one past UNITS_MAX is
 * refused (the count is part of the statement, so racing PUTs cannot pass it).
 */
export async function putUnit(
  db: D1Database,
  unit: string,
  input: UnitInput,
  nowMs: number,
): Promise<PutOutcome<UnitView>> {
  const before = await getUnit(db, unit);
  const lp = input.list_price ?? null;
  const row = await db
    .prepare(
      `INSERT INTO units (unit, name, scale, list_price_amount, list_price_currency, list_price_per,
         created_at_ms, updated_at_ms)
       SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7
       WHERE EXISTS (SELECT 1 FROM units WHERE unit = ?1) OR (SELECT COUNT(*) FROM units) < ?8
       ON CONFLICT (unit) DO UPDATE SET name = excluded.name, scale = excluded.scale,
         list_price_amount = excluded.list_price_amount, list_price_currency = excluded.list_price_currency,
         list_price_per = excluded.list_price_per, updated_at_ms = excluded.updated_at_ms
       RETURNING *`,
    )
    .bind(unit, input.name, input.scale, lp?.amount ?? null, lp?.currency ?? null, lp?.per ?? null, nowMs, UNITS_MAX)
    .first<UnitSqlRow>();
  if (!row) return { ok: false, detail: `at most ${UNITS_MAX} units may be defined` };
  return { ok: true, created: before === null || before.created_at === null, before, after: unitView(row) };
}

export async function getRate(db: D1Database, from: string, to: string): Promise<RateView | null> {
  const row = await db
    .prepare("SELECT * FROM rates WHERE from_unit = ? AND to_unit = ?")
    .bind(from, to)
    .first<RateSqlRow>();
  return row ? rateView(row) : null;
}

/** Every rate, by (from, to): at most RATES_MAX. */
export async function listRates(db: D1Database): Promise<RateView[]> {
  const { results } = await db
    .prepare("SELECT * FROM rates ORDER BY from_unit, to_unit LIMIT ?")
    .bind(RATES_MAX)
    .all<RateSqlRow>();
  return results.map(rateView);
}

/** The rates into `to` (1 `from` = n/d `to`), keyed by `from`: what a converting draw into `to` may use. */
export async function ratesInto(db: D1Database, to: string): Promise<Map<string, RateView>> {
  const { results } = await db
    .prepare("SELECT * FROM rates WHERE to_unit = ? ORDER BY from_unit LIMIT ?")
    .bind(to, RATES_MAX)
    .all<RateSqlRow>();
  return new Map(results.map((r) => [r.from_unit, rateView(r)]));
}

/**
 * Sets a rate; both units must exist (checked here: `credits` always does)
 * and a new rate past RATES_MAX is refused, in the same statement.
 */
export async function putRate(
  db: D1Database,
  from: string,
  to: string,
  input: RateInput,
  nowMs: number,
): Promise<PutOutcome<RateView>> {
  for (const unit of [from, to]) {
    if ((await getUnit(db, unit)) === null) {
      return { ok: false, detail: `unit ${unit} is not defined (PUT /v1/units/${unit} first)` };
    }
  }
  const before = await getRate(db, from, to);
  const row = await db
    .prepare(
      `INSERT INTO rates (from_unit, to_unit, numerator, denominator, created_at_ms, updated_at_ms)
       SELECT ?1, ?2, ?3, ?4, ?5, ?5
       WHERE EXISTS (SELECT 1 FROM rates WHERE from_unit = ?1 AND to_unit = ?2) OR (SELECT COUNT(*) FROM rates) < ?6
       ON CONFLICT (from_unit, to_unit) DO UPDATE SET numerator = excluded.numerator,
         denominator = excluded.denominator, updated_at_ms = excluded.updated_at_ms
       RETURNING *`,
    )
    .bind(from, to, input.numerator, input.denominator, nowMs, RATES_MAX)
    .first<RateSqlRow>();
  if (!row) return { ok: false, detail: `at most ${RATES_MAX} rates may be defined` };
  forgetRates(to);
  return { ok: true, created: before === null, before, after: rateView(row) };
}

/** Removes a rate; the rate as it was, or null when there was none. */
export async function deleteRate(db: D1Database, from: string, to: string): Promise<RateView | null> {
  const row = await db
    .prepare("DELETE FROM rates WHERE from_unit = ? AND to_unit = ? RETURNING *")
    .bind(from, to)
    .first<RateSqlRow>();
  forgetRates(to);
  return row ? rateView(row) : null;
}

/** How long an isolate trusts the rates into a unit it read (a rate change applies within 5 s, like the policy). */
export const RATES_CACHE_TTL_MS = 4_000;
/** Units whose incoming rates an isolate keeps cached; the oldest read is dropped first. */
export const RATES_CACHE_MAX = 1000;
const ratesCache = new Map<string, { rates: Map<string, RateView>; fetchedAtMs: number }>();

/**
 * ratesInto through this isolate's cache (RATES_CACHE_TTL_MS): the debit path
 * reads D1 at most once per unit every 4 s. On a D1 failure it serves the
 * last rates it read, else none (a conversion then finds nothing to draw).
 */
export async function cachedRatesInto(db: D1Database, to: string): Promise<Map<string, RateView>> {
  const nowMs = Date.now();
  const hit = ratesCache.get(to);
  if (hit && nowMs - hit.fetchedAtMs < RATES_CACHE_TTL_MS) return hit.rates;
  try {
    const fresh = await ratesInto(db, to);
    ratesCache.delete(to);
    ratesCache.set(to, { rates: fresh, fetchedAtMs: nowMs });
    while (ratesCache.size > RATES_CACHE_MAX) {
      const oldest = ratesCache.keys().next().value;
      if (oldest === undefined) break;
      ratesCache.delete(oldest);
    }
    return fresh;
  } catch {
    return hit?.rates ?? new Map();
  }
}

/** Drops the cached rates into `to` (after a PUT or DELETE in this isolate), or all of them. */
export function forgetRates(to?: string): void {
  if (to === undefined) ratesCache.clear();
  else ratesCache.delete(to);
}
