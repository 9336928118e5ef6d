/**
 * Integer figures of the reports: every one is exact or refused. D1 hands
 * sums back as JS numbers, which are exact integers only up to 2^53 − 1, so a
 * figure past that is refused (narrow the window or the filters) rather than
 * served rounded. Ratios are taken in BigInt and rounded toward −∞.
 */
import { ApiError } from "../errors";

/** A sum from D1 (null for an empty set) as an exact integer, or 400 invalid_request. */
export function exact(value: number | null | undefined, what: string): number {
  const n = value ?? 0;
  if (!Number.isSafeInteger(n)) {
    throw new ApiError(
      "invalid_request",
      `${what} is past 2^53 − 1 and cannot be served exactly: narrow the window or the filters`,
    );
  }
  return n;
}

/** Integer division rounded toward −∞, exact at any size. */
export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** floor(expired × 10 000 / issued): breakage in basis points; 0 when nothing was issued. */
export function breakageBps(expired: number, issued: number): number {
  if (issued <= 0) return 0;
  return Number(floorDiv(BigInt(expired) * 10_000n, BigInt(issued)));
}

/**
 * floor(Σ age weight (credits × ms) / credits consumed / 1000): the average
 * age in seconds of a consumed credit; null when nothing (net) was consumed.
 * The weight is summed by SQLite's TOTAL, a float that cannot overflow; it is
 * exact while the sum stays below 2^53 (every partial sum of integers is),
 * and past that the average is the float quotient rounded down.
 */
export function avgSecondsToConsume(ageWeightMs: number, consumed: number): number | null {
  if (consumed <= 0) return null;
  if (Number.isSafeInteger(ageWeightMs)) {
    return Number(floorDiv(BigInt(ageWeightMs), BigInt(consumed) * 1000n));
  }
  return Math.floor(ageWeightMs / consumed / 1000);
}
