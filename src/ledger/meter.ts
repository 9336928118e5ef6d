/**
 * Rating: how a meter's price turns a quantity into an amount. Pure: no
 * Cloudflare imports, no I/O. A price is `amount` units per `per` quantity;
 * a request is charged ceil(quantity · amount / per), rounded UP per
 * request, so a metered charge is never less than its exact value.
 */
import { type EntryDraft, type EntryRating, err, type LedgerError, MAX_AMOUNT, ok, type Result } from "./types";

/** A meter's price: `amount` units of the meter's unit per `per` quantity. */
export interface MeterPrice {
  amount: number;
  per: number;
}

/** Largest `amount` and `per` of a price (the same bound as an operation's amount). */
export const MAX_PRICE_TERM = MAX_AMOUNT;
/** Largest quantity of one metered request: a safe integer. */
export const MAX_QUANTITY = Number.MAX_SAFE_INTEGER;

const isTerm = (n: number, max: number) => Number.isSafeInteger(n) && n >= 1 && n <= max;

/**
 * The amount `quantity` costs at `price`: ceil(quantity · amount / per), in
 * exact integer arithmetic (BigInt: the product may pass 2^53). Refused with
 * `invalid_amount` when the charge would exceed MAX_AMOUNT, `invalid_request`
 * when a term is not a positive safe integer in range.
 * @example rate(2_500, { amount: 3, per: 1_000 }) // ok(8): 7.5 credits rounded up
 */
export function rate(quantity: number, price: MeterPrice): Result<number, LedgerError> {
  if (!isTerm(quantity, MAX_QUANTITY)) {
    return err({ code: "invalid_request", detail: "quantity must be a positive safe integer" });
  }
  if (!isTerm(price.amount, MAX_PRICE_TERM) || !isTerm(price.per, MAX_PRICE_TERM)) {
    return err({
      code: "invalid_request",
      detail: `price amount and per must be integers from 1 to ${MAX_PRICE_TERM}`,
    });
  }
  const product = BigInt(quantity) * BigInt(price.amount);
  const per = BigInt(price.per);
  const charged = (product + per - 1n) / per;
  if (charged > BigInt(MAX_AMOUNT)) {
    return err({
      code: "invalid_amount",
      detail: `quantity ${quantity} costs more than ${MAX_AMOUNT} at ${price.amount} per ${price.per}`,
    });
  }
  return ok(Number(charged));
}

/** Two prices are the same version when both terms match exactly (3 per 1 000 ≠ 6 per 2 000: a new version). */
export const samePrice = (a: MeterPrice, b: MeterPrice): boolean => a.amount === b.amount && a.per === b.per;

/** The drafts of a metered draw, each carrying what it was rated by (a copy: drafts are shared by nothing). */
export function withRating(drafts: EntryDraft[], rating: EntryRating | undefined): EntryDraft[] {
  if (!rating) return drafts;
  return drafts.map((d) => ({ ...d, rating }));
}

/** The members a metered result adds beside `amount` (none for an unmetered one). */
export function ratingView(rating: EntryRating | undefined): Partial<EntryRating> {
  return rating ? { meter: rating.meter, quantity: rating.quantity, price_version: rating.price_version } : {};
}
