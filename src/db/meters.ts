/**
 * Meters in D1 (`meter_versions`): each price a meter has had, one row per
 * version, and the priced lookup the debit path uses.
 *
 * The current version of each meter is cached per isolate for at most
 * METER_CACHE_TTL_MS (and at most METER_CACHE_MAX meters), like the global
 * policy: a new price applies to every metered request that starts 5 s or
 * more after its PUT returned (at once in the isolate that served the PUT).
 * A D1 outage serves the last version this isolate read; an isolate that
 * never read the meter answers 503 `overloaded`.
 */
import { ApiError } from "../errors";
import { type MeterPrice, rate, samePrice } from "../ledger";
import { getUnit } from "./units";

/** At most this many meters are defined. */
export const METERS_MAX = 1000;
/** A meter keeps at most this many versions (its history is never rewritten, so a PUT past it is refused). */
export const METER_VERSIONS_MAX = 10_000;
/** GET /v1/meters/{meter} lists at most this many versions, newest first (`history_more` when cut). */
export const METER_HISTORY_MAX = 100;
/** GET /v1/meters lists at most this many meters. */
export const METER_LIST_MAX = METERS_MAX;
/** How long an isolate trusts the current version it read (the policy's rule: visible within 5 s). */
export const METER_CACHE_TTL_MS = 4_000;
/** Meters (known or unknown) an isolate keeps in its cache; the oldest read is dropped first. */
export const METER_CACHE_MAX = 1000;

export interface MeterVersion {
  meter: string;
  version: number;
  unit: string;
  price: MeterPrice;
  actor: string;
  created_at: string;
}

export interface MeterInput {
  unit: string;
  price: MeterPrice;
}

interface VersionRow {
  meter: string;
  version: number;
  unit: string;
  price_amount: number;
  price_per: number;
  actor: string;
  created_at_ms: number;
}

const versionView = (r: VersionRow): MeterVersion => ({
  meter: r.meter,
  version: r.version,
  unit: r.unit,
  price: { amount: r.price_amount, per: r.price_per },
  actor: r.actor,
  created_at: new Date(r.created_at_ms).toISOString(),
});

const cache = new Map<string, { version: MeterVersion | null; fetchedAtMs: number }>();

function remember(meter: string, version: MeterVersion | null, nowMs: number): void {
  cache.delete(meter);
  cache.set(meter, { version, fetchedAtMs: nowMs });
  // Map iteration is insertion order: the first key is the oldest read.
  while (cache.size > METER_CACHE_MAX) {
    const oldest = cache.keys().next().value;
    if (oldest === undefined) break;
    cache.delete(oldest);
  }
}

/** Test seam: a cold isolate, one that has never read a meter. */
export function forgetMeters(): void {
  cache.clear();
}

/** The current version read from D1, bypassing the cache (null: no such meter). */
export async function readCurrent(db: D1Database, meter: string): Promise<MeterVersion | null> {
  const row = await db
    .prepare("SELECT * FROM meter_versions WHERE meter = ? ORDER BY version DESC LIMIT 1")
    .bind(meter)
    .first<VersionRow>();
  return row ? versionView(row) : null;
}

/** The current version, from this isolate's cache when fresh (see METER_CACHE_TTL_MS). */
export async function currentMeter(db: D1Database, meter: string): Promise<MeterVersion | null> {
  const nowMs = Date.now();
  const hit = cache.get(meter);
  if (hit && nowMs - hit.fetchedAtMs < METER_CACHE_TTL_MS) return hit.version;
  try {
    const version = await readCurrent(db, meter);
    remember(meter, version, nowMs);
    return version;
  } catch {
    if (hit) return hit.version;
    throw new ApiError("overloaded", `meter ${meter} cannot be read right now; retry`);
  }
}

/** A meter's current version and its newest METER_HISTORY_MAX versions (null: no such meter). */
export async function getMeter(
  db: D1Database,
  meter: string,
): Promise<{ current: MeterVersion; history: MeterVersion[]; more: boolean } | null> {
  const { results } = await db
    .prepare("SELECT * FROM meter_versions WHERE meter = ? ORDER BY version DESC LIMIT ?")
    .bind(meter, METER_HISTORY_MAX + 1)
    .all<VersionRow>();
  const history = results.slice(0, METER_HISTORY_MAX).map(versionView);
  const current = history[0];
  return current ? { current, history, more: results.length > METER_HISTORY_MAX } : null;
}

/** Every meter's current version, by meter (at most METER_LIST_MAX). */
export async function listMeters(db: D1Database): Promise<MeterVersion[]> {
  const { results } = await db
    .prepare(
      `SELECT v.* FROM meter_versions v
       JOIN (SELECT meter, MAX(version) AS version FROM meter_versions GROUP BY meter) c
         ON c.meter = v.meter AND c.version = v.version
       ORDER BY v.meter LIMIT ?`,
    )
    .bind(METER_LIST_MAX)
    .all<VersionRow>();
  return results.map(versionView);
}

export type PutMeterOutcome =
  | { ok: true; status: 200 | 201; created: boolean; before: MeterVersion | null; after: MeterVersion }
  | { ok: false; detail: string };

/**
 * Sets a meter's price. A price different from the current one is a new
 * version (version 1 creates the meter); the same price again answers the
 * current version and writes nothing. The version number, the bounds and
 * the same-price check are one INSERT … SELECT, so two racing PUTs cannot
 * write the same version or pass a bound (the loser's primary key clashes).
 */
export async function putMeter(
  db: D1Database,
  meter: string,
  input: MeterInput,
  actor: string,
  nowMs: number,
): Promise<PutMeterOutcome> {
  const before = await readCurrent(db, meter);
  if (before && before.unit !== input.unit) {
    return {
      ok: false,
      detail: `meter ${meter} counts in ${before.unit}; a meter's unit never changes (define a new meter)`,
    };
  }
  if (before && samePrice(before.price, input.price)) {
    return { ok: true, status: 200, created: false, before, after: before };
  }
  if (!before && (await getUnit(db, input.unit)) === null) {
    return { ok: false, detail: `unit ${input.unit} is not defined (PUT /v1/units/${input.unit} first)` };
  }
  const row = await db
    .prepare(
      `INSERT INTO meter_versions (meter, version, unit, price_amount, price_per, actor, created_at_ms)
       SELECT ?1, COALESCE(MAX(version), 0) + 1, ?2, ?3, ?4, ?5, ?6 FROM meter_versions WHERE meter = ?1
       HAVING COALESCE(MAX(version), 0) = ?7 AND COUNT(*) < ?8
         AND (COUNT(*) > 0 OR (SELECT COUNT(DISTINCT meter) FROM meter_versions) < ?9)
       RETURNING *`,
    )
    .bind(
      meter,
      input.unit,
      input.price.amount,
      input.price.per,
      actor,
      nowMs,
      before?.version ?? 0,
      METER_VERSIONS_MAX,
      METERS_MAX,
    )
    .first<VersionRow>();
  if (!row) {
    const now = await readCurrent(db, meter);
    if (now && now.version !== (before?.version ?? 0)) {
      return { ok: false, detail: `meter ${meter} changed while this PUT ran (now version ${now.version}); retry` };
    }
    return {
      ok: false,
      detail: before
        ? `meter ${meter} has ${METER_VERSIONS_MAX} versions, the most one meter keeps`
        : `at most ${METERS_MAX} meters may be defined`,
    };
  }
  const after = versionView(row);
  remember(meter, after, nowMs);
  return { ok: true, status: before ? 200 : 201, created: before === null, before, after };
}

/** What a metered request costs, as the gateway passes it to the account. */
export interface PricedUsage {
  unit: string;
  amount: number;
  meter: string;
  quantity: number;
  priceVersion: number;
}

/**
 * Prices `quantity` of `meter` at its current version (cached, see
 * METER_CACHE_TTL_MS): ceil(quantity · amount / per). Null: no such meter.
 * Throws ApiError `invalid_amount` when the charge would exceed 10^15,
 * `invalid_request` for a quantity that is not a positive safe integer, and
 * `overloaded` when D1 cannot be read and this isolate never saw the meter.
 * @example await priceUsage(env.DB, "tokens-gpt-x", 2_500) // { unit: "credits", amount: 8, … }
 */
export async function priceUsage(db: D1Database, meter: string, quantity: number): Promise<PricedUsage | null> {
  const version = await currentMeter(db, meter);
  if (version === null) return null;
  const amount = rate(quantity, version.price);
  if (!amount.ok) {
    throw new ApiError(
      amount.error.code === "invalid_amount" ? "invalid_amount" : "invalid_request",
      "detail" in amount.error ? amount.error.detail : "the quantity cannot be priced",
    );
  }
  return { unit: version.unit, amount: amount.value, meter, quantity, priceVersion: version.version };
}
