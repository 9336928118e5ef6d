/**
 * Recurring grants backstop. Each account's alarm issues its periods and
 * settles their ends on time; this finds schedules (D1 recurring_grants) with
 * a boundary the cron has not checked yet and pokes their account's Durable
 * Object (runRecurring), which takes whatever is due by its own clock. The DO
 * is the only authority: a poke that finds nothing due does nothing, so the
 * alarm and the cron racing each other issue every period once.
 */
import { advanceRecurring, dueRecurring } from "../db/recurring";
import { log } from "../log";
import { accountStub, type JobContext, mapLimit, PARALLEL } from "./job";

export async function runRecurringCron(
  ctx: JobContext,
): Promise<{ candidates: number; accounts: number; failed: number }> {
  const rows = await dueRecurring(ctx.env.DB, ctx.nowMs);
  const accounts = [...new Set(rows.map((r) => r.account_id))];
  const failedAccounts = new Set<string>();
  await mapLimit(accounts, PARALLEL, async (accountId) => {
    try {
      await accountStub(ctx.env, accountId).runRecurring();
    } catch (e) {
      failedAccounts.add(accountId);
      log({
        event: "cron.recurring.error",
        account_id: accountId,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  });
  // A failed poke keeps its boundary: the next run asks again.
  const advanced = rows
    .filter((r) => !failedAccounts.has(r.account_id))
    .map((r) => advanceRecurring(ctx.env.DB, r, ctx.nowMs));
  if (advanced.length > 0) await ctx.env.DB.batch(advanced);
  return { candidates: rows.length, accounts: accounts.length, failed: failedAccounts.size };
}
