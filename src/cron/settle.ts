/**
 * Asks accounts' Durable Objects to do their due work: write grant.expired
 * entries and close holds/receipts past deadline (expireAndSweep, idempotent),
 * then ship their outbox so the D1 indexes stop pointing at them.
 * Shared by the expirations and sweeps jobs.
 */
import { loadGlobalPolicy } from "../db/settings";
import { accountStub, type JobContext, mapLimit, PARALLEL } from "./job";

export type SettleCounts = {
  accounts: number;
  expired: number;
  swept: number;
  failed: number;
};

export async function settleAccounts(ctx: JobContext, accountIds: readonly string[]): Promise<SettleCounts> {
  const counts: SettleCounts = { accounts: accountIds.length, expired: 0, swept: 0, failed: 0 };
  if (accountIds.length === 0) return counts;
  const policy = await loadGlobalPolicy(ctx.env.DB);
  await mapLimit(accountIds, PARALLEL, async (accountId) => {
    try {
      const stub = accountStub(ctx.env, accountId);
      const done = await stub.expireAndSweep(policy);
      counts.expired += done.expired;
      counts.swept += done.swept;
      await stub.drain();
    } catch {
      counts.failed++;
    }
  });
  return counts;
}
