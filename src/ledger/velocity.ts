/**
 * Spending velocity: how many credits an account consumed or reserved in a
 * trailing window, and whether one more operation fits under its limits.
 *
 * Time is counted in whole-minute buckets (VELOCITY_BUCKET_MS). The window of
 * `per_hour` at time t is the bucket holding t and the 59 before it; of
 * `per_minute`, the bucket holding t alone. A bucket leaves a window when the
 * clock enters the bucket one window length after it, which is what
 * `retry-after` counts down to. An account keeps at most
 * VELOCITY_BUCKETS_KEPT buckets per unit (one day), whatever its traffic.
 *
 * Pure: no clock, no storage. The account's Durable Object stores the buckets.
 */

/** The width of one bucket: windows slide a minute at a time. */
export const VELOCITY_BUCKET_MS = 60_000;

/** Each window's length in buckets. */
export const VELOCITY_WINDOWS = { per_minute: 1, per_hour: 60, per_day: 1440 } as const;
export type VelocityWindow = keyof typeof VELOCITY_WINDOWS;
export const VELOCITY_WINDOW_NAMES = Object.keys(VELOCITY_WINDOWS) as VelocityWindow[];

/** Buckets kept per unit: the longest window. Older ones count in no window and are pruned. */
export const VELOCITY_BUCKETS_KEPT = VELOCITY_WINDOWS.per_day;

/** An account's limits for one unit; a window left out has no limit. */
export type VelocityLimits = Partial<Record<VelocityWindow, number>>;

/** What was counted in one minute: `minute` is epoch ms / VELOCITY_BUCKET_MS, floored. */
export interface VelocityBucket {
  minute: number;
  amount: number;
}

/** Why an operation was refused: the first window it would overflow, and when it would fit. */
export interface VelocityRefusal {
  window: VelocityWindow;
  limit: number;
  /** Counted in that window before this operation. */
  used: number;
  requested: number;
  /**
   * Seconds until enough of the window has passed for `requested` to fit
   * (≥ 1), assuming nothing else is counted meanwhile; the longest among the
   * windows it overflows. An amount above a limit by itself never fits: then
   * the whole window's length.
   */
  retryAfterSeconds: number;
}

export const bucketOf = (nowMs: number): number => Math.floor(nowMs / VELOCITY_BUCKET_MS);

/** The credits counted in the window of `size` buckets that ends with the bucket of `nowMs`. */
export function usedIn(buckets: readonly VelocityBucket[], size: number, nowMs: number): number {
  const first = bucketOf(nowMs) - size + 1;
  let used = 0;
  for (const b of buckets) if (b.minute >= first) used += b.amount;
  return used;
}

/**
 * Seconds until `amount` fits under `limit` in a window of `size` buckets,
 * as its oldest buckets leave it (null: it fits now). `buckets` ascending.
 */
function waitFor(buckets: readonly VelocityBucket[], size: number, limit: number, amount: number, nowMs: number) {
  const first = bucketOf(nowMs) - size + 1;
  const inWindow = buckets.filter((b) => b.minute >= first);
  let used = 0;
  for (const b of inWindow) used += b.amount;
  if (used + amount <= limit) return null;
  const whole = Math.ceil((size * VELOCITY_BUCKET_MS) / 1000);
  if (amount > limit) return { used, seconds: whole };
  let left = used;
  for (const b of inWindow) {
    left -= b.amount;
    if (left + amount <= limit) {
      const leavesAtMs = (b.minute + size) * VELOCITY_BUCKET_MS;
      return { used, seconds: Math.max(1, Math.ceil((leavesAtMs - nowMs) / 1000)) };
    }
  }
  // Unreachable: with every bucket gone the window holds 0 and amount ≤ limit.
  return { used, seconds: whole };
}

/**
 * Whether `amount` more at `nowMs` stays within every limit; the refusal
 * otherwise. `buckets` in ascending minute order.
 * @example checkVelocity([{ minute: bucketOf(now), amount: 90 }], { per_minute: 100 }, 20, now) // refused, used 90
 */
export function checkVelocity(
  buckets: readonly VelocityBucket[],
  limits: VelocityLimits,
  amount: number,
  nowMs: number,
): VelocityRefusal | null {
  let refusal: VelocityRefusal | null = null;
  for (const window of VELOCITY_WINDOW_NAMES) {
    const limit = limits[window];
    if (limit === undefined) continue;
    const wait = waitFor(buckets, VELOCITY_WINDOWS[window], limit, amount, nowMs);
    if (wait === null) continue;
    if (refusal === null) {
      refusal = { window, limit, used: wait.used, requested: amount, retryAfterSeconds: wait.seconds };
    } else {
      refusal.retryAfterSeconds = Math.max(refusal.retryAfterSeconds, wait.seconds);
    }
  }
  return refusal;
}

/** What counting one operation changes: the bucket's new total, and the buckets that fell out of every window. */
export interface VelocityTally {
  unit: string;
  bucket: VelocityBucket;
  /** Buckets with a minute below this count in no window any more (delete them). */
  keepFrom: number;
}

/** Counts `amount` at `nowMs`; the tally is what the account writes with the operation. */
export function tallyVelocity(
  buckets: readonly VelocityBucket[],
  unit: string,
  amount: number,
  nowMs: number,
): VelocityTally {
  const minute = bucketOf(nowMs);
  let prior = 0;
  for (let i = buckets.length - 1; i >= 0; i--) {
    const b = buckets[i] as VelocityBucket;
    if (b.minute === minute) prior = b.amount;
    if (b.minute <= minute) break;
  }
  return { unit, bucket: { minute, amount: prior + amount }, keepFrom: minute - VELOCITY_BUCKETS_KEPT + 1 };
}

/** The buckets after a tally: pruned to the kept window, ascending, at most VELOCITY_BUCKETS_KEPT. */
export function applyTally(buckets: readonly VelocityBucket[], t: VelocityTally): VelocityBucket[] {
  const kept = buckets.filter((b) => b.minute >= t.keepFrom && b.minute !== t.bucket.minute);
  kept.push(t.bucket);
  // Only a clock that went back puts the new bucket before an older one.
  const before = kept[kept.length - 2];
  if (before !== undefined && before.minute > t.bucket.minute) kept.sort((a, b) => a.minute - b.minute);
  return kept;
}
