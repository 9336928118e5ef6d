/**
 * Department budgets: how much a child account may draw from its parent's
 * lots per period. "Used" counts the credits drawn from the parent in the
 * current period (a draw in flight counts from the moment it is recorded);
 * a debit covered by the child's own lots uses none of the budget. Periods
 * are calendar periods in UTC: a day, an ISO week (from Monday), a month.
 */
export const BUDGET_PERIODS = ["day", "week", "month"] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

export interface Budget {
  unit: string;
  period: BudgetPeriod;
  limit: number;
}

const DAY_MS = 86_400_000;

/**
 * Start (UTC epoch ms) of the period that contains `nowMs`.
 * @example periodStart("week", Date.parse("2026-12-03T10:00:00Z")) // 2026-11-30T00:00:00Z, a Monday
 */
export function periodStart(period: BudgetPeriod, nowMs: number): number {
  const day = Math.floor(nowMs / DAY_MS) * DAY_MS;
  if (period === "day") return day;
  if (period === "week") {
    const weekday = (new Date(day).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
    return day - weekday * DAY_MS;
  }
  const d = new Date(day);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** Start of the period after the one starting at `startMs`. */
export function nextPeriodStart(period: BudgetPeriod, startMs: number): number {
  if (period === "day") return startMs + DAY_MS;
  if (period === "week") return startMs + 7 * DAY_MS;
  const d = new Date(startMs);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** What the budget still allows this period (never negative: a lowered limit leaves 0). */
export function budgetRemaining(budget: Budget, used: number): number {
  return Math.max(0, budget.limit - used);
}

/**
 * What a draw for a shortfall may take: all of it, or nothing when the
 * budget's remaining (or, once known, the parent's available) is short.
 * Returns the amount to draw, or null with what could be drawn at most.
 */
export function planDrawAmount(
  shortfall: number,
  remaining: number,
  parentAvailable: number | null,
): { draw: number } | { drawable: number } {
  const drawable = parentAvailable === null ? remaining : Math.min(remaining, parentAvailable);
  return shortfall <= drawable ? { draw: shortfall } : { drawable };
}
