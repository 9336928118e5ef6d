/**
 * Cost basis: what a purchased lot was paid, carried with its credits as
 * they leave. The one rounding rule (docs/api.md, Money): once `x` of a lot's
 * `A` credits have left it by any route, the cost that has left is
 * floor(C·x / A); each movement carries the difference from the one before.
 * Every minor unit is accounted for exactly once, in any order of movements.
 * BigInt, because C·x reaches 9·10^30 (past 2^53).
 */
import { assert, type Lot } from "./types";

/** Cost (minor units) that has left a lot of `amount` credits bought for `costMinor` once `out` credits have left. */
export function costOut(costMinor: number, amount: number, out: number): number {
  assert(Number.isSafeInteger(costMinor) && costMinor >= 0, "costOut: cost must be a safe integer ≥ 0");
  assert(Number.isSafeInteger(amount) && amount > 0, "costOut: amount must be a positive safe integer");
  assert(Number.isSafeInteger(out) && out >= 0 && out <= amount, `costOut: out ${out} outside 0..${amount}`);
  return Number((BigInt(costMinor) * BigInt(out)) / BigInt(amount));
}

/**
 * The cost a movement carries when a lot's remaining goes from `before` to
 * `after`: positive when credits leave, negative when they come back (an
 * invoice reversal). Zero for a lot without a cost basis.
 * @example movementCost({amount: 3, costBasis: {amount: 100, currency: "USD"}}, 3, 2) // 33
 */
export function movementCost(lot: Pick<Lot, "amount" | "costBasis">, before: number, after: number): number {
  if (lot.costBasis === null) return 0;
  const c = lot.costBasis.amount;
  return costOut(c, lot.amount, lot.amount - after) - costOut(c, lot.amount, lot.amount - before);
}

/** What a lot's cost basis still holds (deferred revenue) with `remaining` credits left in it. */
export function deferredCost(lot: Pick<Lot, "amount" | "costBasis" | "remaining">): number {
  if (lot.costBasis === null) return 0;
  return lot.costBasis.amount - costOut(lot.costBasis.amount, lot.amount, lot.amount - lot.remaining);
}
