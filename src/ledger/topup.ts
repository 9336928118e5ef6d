/**
 * Automatic top-up: a rule per account and unit. When an operation leaves
 * `available` below `below`, the account requests one grant awaiting payment
 * of `amount`, unless one is already outstanding or the request would take
 * this calendar month's total past `max_per_month`. Pure rules: no
 * Cloudflare imports, no clock of its own.
 *
 * Decisions (docs: /v1/accounts/{id}/top-up):
 * - One outstanding request per rule (per unit) at a time.
 * - The month is the UTC calendar month of the account's clock at the request.
 * - Activated requests count towards the month; cancelled ones do not (the
 *   payment failed or was refused: nothing was bought).
 * - A request that would pass the cap is skipped, never shrunk: a payment
 *   system sees the same `amount` every time.
 */
import { canonicalJson, sha256Hex } from "./hash";
import type { CostBasis } from "./types";

/** Largest `expires_in_days` of a top-up grant (10 years). */
export const TOPUP_EXPIRES_DAYS_MAX = 3650;

export interface TopUpRule {
  unit: string;
  /** A request is due when available < below. */
  below: number;
  amount: number;
  /** null: no monthly cap. */
  maxPerMonth: number | null;
  grant: { type: "purchased"; costBasis: CostBasis | null; expiresInDays: number | null };
  createdAtMs: number;
  updatedAtMs: number;
}

/** What this rule has requested: in which month, how much (cancelled requests taken back out). */
export interface TopUpMonth {
  monthStartMs: number;
  requested: number;
}

export type TopUpDecision =
  | { request: true; amount: number; monthTotal: number }
  | { request: false; why: "not_below" | "outstanding" | "cap" };

/** The first millisecond of `ms`'s UTC calendar month. */
export function monthStartUtc(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** What the month of `nowMs` has requested so far (0 when `month` is an earlier one). */
export function requestedThisMonth(month: TopUpMonth | null, nowMs: number): number {
  return month !== null && month.monthStartMs === monthStartUtc(nowMs) ? month.requested : 0;
}

/**
 * Whether an operation that left `available` should request a top-up.
 * `monthTotal` in the answer is the month's total including this request.
 *
 * @example // rule: below 100, amount 500, max_per_month 1000; nothing requested yet
 * decideTopUp(rule, 40, false, null, now) // {request: true, amount: 500, monthTotal: 500}
 */
export function decideTopUp(
  rule: TopUpRule,
  available: number,
  outstanding: boolean,
  month: TopUpMonth | null,
  nowMs: number,
): TopUpDecision {
  if (available >= rule.below) return { request: false, why: "not_below" };
  if (outstanding) return { request: false, why: "outstanding" };
  const total = requestedThisMonth(month, nowMs) + rule.amount;
  if (rule.maxPerMonth !== null && total > rule.maxPerMonth) return { request: false, why: "cap" };
  return { request: true, amount: rule.amount, monthTotal: total };
}

/** The month after a request of `amount` at `nowMs`. */
export function addRequest(month: TopUpMonth | null, amount: number, nowMs: number): TopUpMonth {
  return { monthStartMs: monthStartUtc(nowMs), requested: requestedThisMonth(month, nowMs) + amount };
}

/**
 * The month after a request made at `requestedAtMs` was cancelled: it no
 * longer counts, if it was made in the month being counted.
 */
export function takeBack(month: TopUpMonth | null, amount: number, requestedAtMs: number): TopUpMonth | null {
  if (month === null || month.monthStartMs !== monthStartUtc(requestedAtMs)) return month;
  return { ...month, requested: Math.max(0, month.requested - amount) };
}

/** What a rule asks for, without its times: two PUTs with the same terms are the same rule. */
export type TopUpTerms = Pick<TopUpRule, "unit" | "below" | "amount" | "maxPerMonth" | "grant">;

/**
 * The hash of a rule's terms (canonical JSON, SHA-256 hex): the approval of a
 * top-up rule names it, and a rule stored with the same hash is that rule.
 * @example ruleHash({ unit: "credits", below: 10, amount: 5, maxPerMonth: null, grant }) // "9f…"
 */
export function ruleHash(t: TopUpTerms): string {
  return sha256Hex(
    canonicalJson({
      unit: t.unit,
      below: t.below,
      amount: t.amount,
      max_per_month: t.maxPerMonth,
      grant: { type: t.grant.type, cost_basis: t.grant.costBasis, expires_in_days: t.grant.expiresInDays },
    }),
  );
}
