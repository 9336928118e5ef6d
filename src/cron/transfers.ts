/**
 * Transfers backstop: the source account's alarm finishes or undoes a
 * transfer interrupted between its steps; this finds transfer ids D1 still
 * holds as claimed (the gateway never saw them end) and asks each source's
 * Durable Object to settle the transfer now. A claim whose source never
 * prepared anything (refused with 402, or a crash before prepare) leaves the
 * index as `refused`. Idempotent: settling a settled transfer changes nothing.
 */
import { markTransfer } from "../db/transfers";
import { accountStub, type JobContext, mapLimit, PARALLEL } from "./job";

/** Claims looked at per run, oldest first. */
export const TRANSFER_SWEEP_BATCH = 50;
/** A claim younger than this may still be running in its request: left alone. */
export const TRANSFER_SWEEP_AFTER_MS = 60_000;

export async function runTransferSweep(ctx: JobContext): Promise<Record<string, number>> {
  const { results } = await ctx.env.DB.prepare(
    `SELECT transfer_id, from_account FROM transfers WHERE state = 'claimed' AND updated_at_ms <= ?
     ORDER BY updated_at_ms LIMIT ?`,
  )
    .bind(ctx.nowMs - TRANSFER_SWEEP_AFTER_MS, TRANSFER_SWEEP_BATCH)
    .all<{ transfer_id: string; from_account: string }>();
  const counts = { candidates: results.length, completed: 0, cancelled: 0, refused: 0, open: 0 };
  await mapLimit(results, PARALLEL, async (row) => {
    const state = await accountStub(ctx.env, row.from_account).recoverTransfer(row.transfer_id);
    const final = state === "none" ? "refused" : state === "completed" || state === "cancelled" ? state : null;
    if (final === null) {
      counts.open++;
      return;
    }
    counts[final]++;
    await markTransfer(ctx.env.DB, row.transfer_id, final, ctx.nowMs);
  });
  return counts;
}
