/** An account's part of a roll-up balance (GET …/balance?rollup=true): totals only, no lists. */
import { type AccountCore, POLICY_UNKNOWN } from "./core";
import type { OpContext, Outcome } from "./types";
import { answer, balanceJson, missingAccount } from "./views";

/**
 * The balance now with `expiring` and `pending` left empty: a roll-up adds up
 * `available`, `held` and `by_type` over up to MAX_ROLLUP_ACCOUNTS accounts,
 * so each answer stays a few hundred bytes whatever the account holds.
 */
export function rollupPart(core: AccountCore, ctx: OpContext, unit: string): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  if (core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  return answer(balanceJson(ctx.accountId, unit, core.now(), core.lots, core.awaitingOpen.values(), 0));
}
