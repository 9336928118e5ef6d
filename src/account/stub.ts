/** The AccountLedger as its callers see it over RPC: the gateway's routes and the cron's jobs. */
import type { AccountLedger } from "./account-do";

/** The AccountLedger's methods as seen over RPC (plain promises; keeps type-checking shallow). */
export type LedgerRpc = {
  [K in keyof AccountLedger as AccountLedger[K] extends (...a: never[]) => unknown
    ? K
    : never]: AccountLedger[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never;
};

/** The one Durable Object that owns `accountId`. */
export function ledgerStub(env: Env, accountId: string): LedgerRpc {
  return env.ACCOUNT.get(env.ACCOUNT.idFromName(accountId)) as unknown as LedgerRpc;
}
