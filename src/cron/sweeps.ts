/**
 * Sweeps backstop: holds and receipts past their deadline. The DO's alarm
 * closes them on time (holds by the policy's hold_on_expiry, receipts captured
 * in full); this finds accounts whose earliest open hold deadline, reported to
 * D1 `account_heads.next_hold_deadline_ms` with every shipped batch, has
 * passed, and asks their DO. (No per-hold D1 rows: one column per account.)
 * Transfers stuck between prepare and commit join here once transfers exist.
 */
import type { JobContext } from "./job";
import { type SettleCounts, settleAccounts } from "./settle";

export const SWEEP_BATCH = 50;

export async function runSweeps(ctx: JobContext): Promise<SettleCounts & { candidates: number }> {
  const { results } = await ctx.env.DB.prepare(
    `SELECT account_id FROM account_heads WHERE next_hold_deadline_ms <= ?
     ORDER BY next_hold_deadline_ms LIMIT ?`,
  )
    .bind(ctx.nowMs, SWEEP_BATCH)
    .all<{ account_id: string }>();
  const counts = await settleAccounts(
    ctx,
    results.map((r) => r.account_id),
  );
  return { candidates: results.length, ...counts };
}
