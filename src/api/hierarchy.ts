/**
 * Account trees: the roll-up part of GET …/balance?rollup=true, and the
 * parent rules of PUT /v1/accounts/{id} (depth ≤ MAX_DEPTH below a root, no
 * cycles). The children route is in accounts.ts, beside the account schema.
 *
 * Parents are read from the Durable Objects (the source of truth) when a
 * parent is set; children and descendants come from the D1 directory, which
 * follows each DO by the outbox delay.
 */
import { z } from "@hono/zod-openapi";
import { ledgerStub } from "../account/stub";
import { mapLimit } from "../cron/job";
import { descendantsOf } from "../db/accounts";
import { ApiError } from "../errors";
import { CREDIT_TYPES, type CreditType } from "../ledger";
import { checkNewParent, MAX_DEPTH } from "../ledger/hierarchy";
import { type AppContext, type LedgerRpc, opContext } from "./context";
import { requireAccountInScope } from "./scope";

/** A roll-up adds up at most this many accounts (the account and its descendants); more is 400. */
export const MAX_ROLLUP_ACCOUNTS = 1000;
/** Descendants' Durable Objects asked at once by a roll-up. */
export const ROLLUP_PARALLEL = 8;
/**
 * Moving an account reads its subtree (to keep its deepest descendant within
 * MAX_DEPTH); a subtree larger than this is refused rather than read whole.
 */
export const MAX_MOVED_SUBTREE = 10_000;

export const RollupSchema = z
  .object({
    available: z.number().int(),
    held: z.number().int(),
    by_type: z.object({ promotional: z.number().int(), compensatory: z.number().int(), purchased: z.number().int() }),
    accounts: z.number().int().openapi({ description: "Accounts added up: the account and its descendants" }),
  })
  .openapi("Rollup");
export type Rollup = z.infer<typeof RollupSchema>;

interface Totals {
  available: number;
  held: number;
  by_type: Record<CreditType, number>;
}

/**
 * Sums totals in BigInt: MAX_ROLLUP_ACCOUNTS accounts of up to 9·10^15 each
 * can pass 2^53, and a roll-up that cannot be served exactly is refused.
 */
export function sumTotals(parts: readonly Totals[]): Rollup {
  const keys = ["available", "held", ...CREDIT_TYPES] as const;
  const sums = new Map<string, bigint>(keys.map((k) => [k, 0n]));
  for (const p of parts) {
    sums.set("available", (sums.get("available") ?? 0n) + BigInt(p.available));
    sums.set("held", (sums.get("held") ?? 0n) + BigInt(p.held));
    for (const t of CREDIT_TYPES) sums.set(t, (sums.get(t) ?? 0n) + BigInt(p.by_type[t]));
  }
  const exact = (k: string): number => {
    const v = sums.get(k) ?? 0n;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ApiError(
        "invalid_request",
        "the roll-up total exceeds 2^53 - 1; read the accounts' balances one by one",
      );
    }
    return Number(v);
  };
  return {
    available: exact("available"),
    held: exact("held"),
    by_type: { promotional: exact("promotional"), compensatory: exact("compensatory"), purchased: exact("purchased") },
    accounts: parts.length,
  };
}

/**
 * The roll-up of `accountId` (whose own balance is `own`) and every
 * descendant the directory lists, asking each descendant's DO for its totals.
 */
export async function rollupOf(c: AppContext, accountId: string, unit: string, own: Totals): Promise<Rollup> {
  const tree = await descendantsOf(c.env.DB, accountId, MAX_DEPTH, MAX_ROLLUP_ACCOUNTS - 1);
  if (tree.more) {
    throw new ApiError(
      "invalid_request",
      `a roll-up adds up at most ${MAX_ROLLUP_ACCOUNTS} accounts; this tree holds more. Ask for a subtree's roll-up`,
    );
  }
  const base = await opContext(c, accountId);
  const parts = await mapLimit(tree.accounts, ROLLUP_PARALLEL, async ({ id }) => {
    const outcome = await ledgerStub(c.env, id).rollupPart({ ...base, accountId: id }, unit);
    if (outcome.ok) return outcome.body as unknown as Totals;
    // Listed in the directory but gone from its DO cannot happen; a descendant whose answer is unknown fails the read.
    if (outcome.problem.code === "account_not_found") return null;
    throw new ApiError(outcome.problem.code, outcome.problem.detail, outcome.problem.extra);
  });
  return sumTotals([own, ...parts.filter((p): p is Totals => p !== null)]);
}

/**
 * PUT /v1/accounts/{id} with a parent: the parent exists (and is in the
 * caller's scope), the move makes no cycle, and no account ends up deeper
 * than MAX_DEPTH below its root. Walks up from the parent through the DOs,
 * at most MAX_DEPTH + 1 calls; reads the moved account's subtree from D1.
 */
export async function checkParent(c: AppContext, accountId: string, parentId: string): Promise<void> {
  await requireAccountInScope(c, parentId);
  const chain: string[] = [];
  let current: string | null = parentId;
  while (current !== null && chain.length <= MAX_DEPTH && current !== accountId) {
    const parent: Awaited<ReturnType<LedgerRpc["getAccount"]>> = await ledgerStub(c.env, current).getAccount();
    if (!parent) throw new ApiError("account_not_found", `parent account ${current} does not exist`);
    chain.push(current);
    current = parent.parent_id;
  }
  // Stopped on the account itself (a cycle) or with the root still above (too deep): checkNewParent says which.
  if (current !== null) chain.push(current);
  const subtree = await descendantsOf(c.env.DB, accountId, MAX_DEPTH, MAX_MOVED_SUBTREE);
  if (subtree.more) {
    throw new ApiError("invalid_request", `an account with more than ${MAX_MOVED_SUBTREE} descendants cannot be moved`);
  }
  const height = subtree.accounts.reduce((h, a) => Math.max(h, a.depth), 0);
  const refusal = checkNewParent(accountId, chain, height);
  if (refusal) throw new ApiError("invalid_request", refusal.detail);
}
