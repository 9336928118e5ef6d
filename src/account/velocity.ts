/**
 * The account's spending velocity: minute buckets of credits consumed or
 * reserved (debits, holds, receipts, usage events), kept in the DO's
 * `velocity_buckets` table and cached per unit. The rule is pure, in
 * src/ledger/velocity.ts; this file loads, asks, and hands the tally to the
 * operation's commit, which writes it in the same transaction.
 *
 * Only units with a configured limit are counted, so a plain debit on an
 * account without limits does no extra work. Counting starts when a limit is
 * set; a released hold is not given back (it was reserved, which counts).
 */
import {
  applyTally,
  checkVelocity,
  tallyVelocity,
  VELOCITY_BUCKETS_KEPT,
  type VelocityBucket,
  type VelocityTally,
} from "../ledger/velocity";
import type { AccountCore } from "./core";
import type { Outcome } from "./types";
import { refuse } from "./views";

/** Units of one account that may carry velocity limits (each keeps up to VELOCITY_BUCKETS_KEPT buckets). */
export const MAX_VELOCITY_UNITS = 16;

/** The buckets of each counted unit: a cache of velocity_buckets, loaded on first use. */
export class VelocityBook {
  private readonly cache = new Map<string, VelocityBucket[]>();

  constructor(private readonly sql: SqlStorage) {}

  /** The unit's buckets, ascending (at most VELOCITY_BUCKETS_KEPT + the ones a tally will prune). */
  buckets(unit: string): VelocityBucket[] {
    let cached = this.cache.get(unit);
    if (cached === undefined) {
      cached = this.sql
        .exec(
          "SELECT minute, amount FROM velocity_buckets WHERE unit = ? ORDER BY minute DESC LIMIT ?",
          unit,
          VELOCITY_BUCKETS_KEPT,
        )
        .toArray()
        .map((r) => ({ minute: Number(r.minute), amount: Number(r.amount) }))
        .reverse();
      this.cache.set(unit, cached);
    }
    return cached;
  }

  /** Runs inside the operation's transactionSync: the bucket's new total, and the day-old ones pruned. */
  write(t: VelocityTally): void {
    this.sql.exec(
      `INSERT INTO velocity_buckets (unit, minute, amount) VALUES (?, ?, ?)
       ON CONFLICT (unit, minute) DO UPDATE SET amount = excluded.amount`,
      t.unit,
      t.bucket.minute,
      t.bucket.amount,
    );
    const oldest = this.buckets(t.unit)[0];
    if (oldest !== undefined && oldest.minute < t.keepFrom) {
      this.sql.exec("DELETE FROM velocity_buckets WHERE unit = ? AND minute < ?", t.unit, t.keepFrom);
    }
  }

  /** After the transaction committed: memory follows SQLite. */
  applied(t: VelocityTally): void {
    this.cache.set(t.unit, applyTally(this.buckets(t.unit), t));
  }

  /** Drops the counts of units that no longer have a limit, so rows never outlive their limit. */
  keepOnly(units: readonly string[]): void {
    const keep = new Set(units);
    const counted = this.sql.exec("SELECT DISTINCT unit FROM velocity_buckets").toArray();
    for (const row of counted) {
      const unit = String(row.unit);
      if (keep.has(unit)) continue;
      this.sql.exec("DELETE FROM velocity_buckets WHERE unit = ?", unit);
      this.cache.delete(unit);
    }
  }
}

/** What a draw learns from the velocity check: a refusal, or the tally to commit (none when unlimited). */
export interface VelocityGate {
  refused: Outcome | null;
  tally: VelocityTally | undefined;
}

const UNLIMITED: VelocityGate = { refused: null, tally: undefined };

/**
 * Checks `amount` more of `unit` at `nowMs` against the account's limits: 429
 * velocity_limit (members `retry_after` in seconds, `window`, `limit`, `used`,
 * `requested`, `unit`) or the tally the operation's commit writes.
 */
export function velocityGate(core: AccountCore, unit: string, amount: number, nowMs: number): VelocityGate {
  const limits = core.account?.velocity?.[unit];
  if (limits === undefined) return UNLIMITED;
  const buckets = core.velocity.buckets(unit);
  const r = checkVelocity(buckets, limits, amount, nowMs);
  if (r === null) return { refused: null, tally: tallyVelocity(buckets, unit, amount, nowMs) };
  const refused = refuse({
    code: "velocity_limit",
    detail: `${r.used} ${unit} counted in the ${r.window} window; ${r.requested} more would pass its limit of ${r.limit}`,
    extra: {
      retry_after: r.retryAfterSeconds,
      window: r.window,
      limit: r.limit,
      used: r.used,
      requested: r.requested,
      unit,
    },
  });
  return { refused, tally: undefined };
}
