/**
 * Domain types of the ledger. Pure data: no Cloudflare imports, no I/O.
 * Amounts are safe integers in the unit's smallest denomination; times are
 * integer epoch milliseconds.
 */

export const CREDIT_TYPES = ["promotional", "compensatory", "purchased"] as const;
export type CreditType = (typeof CREDIT_TYPES)[number];

export const ENTRY_KINDS = [
  "grant",
  "grant.voided",
  "grant.refunded",
  "grant.expired",
  "debit",
  "hold",
  "hold.captured",
  "hold.released",
  "receipt",
  "receipt.settled",
  "invoice",
  "invoice.reversal",
  "transfer.out",
  "transfer.in",
  // Recurring grants (recurring.ts): a period's remainder moving into its rollover lot, out and in.
  "grant.rolled_over",
  "rollover",
] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/** Largest amount of one operation. */
export const MAX_AMOUNT = 1_000_000_000_000_000;
/** Largest total an account may hold in one unit. */
export const MAX_ACCOUNT_TOTAL = 9_000_000_000_000_000;
export const DEFAULT_UNIT = "credits";

export interface CostBasis {
  /** Total paid, integer minor units of `currency`, tax excluded. */
  amount: number;
  currency: string;
  /** Tax collected on top (minor units of `currency`): never revenue, reported apart by jurisdiction. */
  tax?: { amount: number; jurisdiction: string };
}

/** A grant as issued: its attributes never change after creation. */
export interface GrantTerms {
  grantId: string;
  unit: string;
  type: CreditType;
  amount: number;
  priority: number;
  effectiveAtMs: number;
  expiresAtMs: number | null;
  source: string | null;
  reason: string | null;
  campaign: string | null;
  incidentId: string | null;
  costBasis: CostBasis | null;
  metadata: Record<string, string> | null;
  sourceGrantId: string | null;
  createdAtMs: number;
  /** Creation order within the account: the final consumption tie-break. */
  createdOrder: number;
}

/**
 * A lot: a grant plus what entries have done to it. `remaining` counts held
 * credits too; `held` is the part reserved by open holds.
 */
export interface Lot extends GrantTerms {
  remaining: number;
  held: number;
  voidedAtMs: number | null;
}

export type LotStatus = "active" | "pending" | "expired" | "depleted" | "voided";

/**
 * What a metered draw was rated by: the meter, the quantity asked for and the
 * price version that turned it into the amount. An entry carries it as its
 * `rating` member only when it was metered: absent (never null) otherwise, so
 * every entry written before meters existed keeps its hash.
 */
export interface EntryRating {
  meter: string;
  quantity: number;
  price_version: number;
}

/**
 * What a converting draw recorded on an entry drawn from a lot in another
 * unit: the unit the draw was for and the rate used (1 of the entry's unit =
 * numerator/denominator `to_unit`). Absent (never null) on every other entry.
 */
export interface EntryConversion {
  to_unit: string;
  numerator: number;
  denominator: number;
}

/** An entry before the account assigns its seq, ids and hash. */
export interface EntryDraft {
  kind: EntryKind;
  unit: string;
  amount: number;
  heldDelta: number;
  grantId: string | null;
  creditType: CreditType | null;
  ref: string | null;
  reason: string | null;
  effectiveAtMs: number;
  /** Metered draws only (see EntryRating). */
  rating?: EntryRating;
  /** Converting draws only, on entries of lots in another unit (see EntryConversion). */
  conversion?: EntryConversion;
}

/** An entry as served by the API (and hashed). */
export interface Entry {
  account_id: string;
  seq: number;
  entry_id: string;
  txn_id: string;
  kind: EntryKind;
  unit: string;
  amount: number;
  held_delta: number;
  grant_id: string | null;
  credit_type: CreditType | null;
  ref: string | null;
  actor: string;
  reason: string | null;
  effective_at: string;
  recorded_at: string;
  prev_hash: string;
  hash: string;
  /** Present only on metered entries; hashed like every other member when present. */
  rating?: EntryRating;
  /** Present only on entries a conversion drew from another unit's lot; hashed when present. */
  conversion?: EntryConversion;
}

/** One lot touched by a draw, in draw order. */
export interface Applied {
  grantId: string;
  type: CreditType;
  amount: number;
}

export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });

/** Expected refusals of the domain core; the HTTP layer maps them to problems. */
export type LedgerError =
  | { code: "insufficient_credits"; available: number; requested: number }
  | { code: "invalid_amount"; detail: string }
  | { code: "invalid_request"; detail: string }
  | { code: "grant_closed"; detail: string }
  | { code: "hold_closed"; detail: string };

/** Thrown when a rule that must always hold does not: a bug, never user input. */
export class InvariantViolation extends Error {
  override name = "InvariantViolation";
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}
