/**
 * Expirations backstop. Each DO's alarm expires its own lots on time; this
 * finds lots the D1 grant index still shows with an unheld remainder past
 * expiry (the alarm did not fire, or its entries are not shipped yet) and
 * asks their DO. Re-asking is harmless: expireAndSweep writes nothing twice.
 */
import type { JobContext } from "./job";
import { type SettleCounts, settleAccounts } from "./settle";

/** Accounts per run; a larger backlog is worked through over the next runs. */
export const EXPIRY_BATCH = 50;

export async function runExpirations(ctx: JobContext): Promise<SettleCounts & { candidates: number }> {
  // Lots, soonest first, through the partial index grants_expiry_open; several lots may share an account.
  const { results } = await ctx.env.DB.prepare(
    `SELECT account_id FROM grants WHERE expires_at_ms <= ? AND remaining > held AND status != 'voided'
     ORDER BY expires_at_ms LIMIT ?`,
  )
    .bind(ctx.nowMs, EXPIRY_BATCH * 4)
    .all<{ account_id: string }>();
  const accounts = [...new Set(results.map((r) => r.account_id))].slice(0, EXPIRY_BATCH);
  const counts = await settleAccounts(ctx, accounts);
  return { candidates: results.length, ...counts };
}
