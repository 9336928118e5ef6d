/**
 * A transfer between accounts as one operation, without an HTTP context:
 * the route (src/api/transfers.ts) and approvals both call runTransfer. It
 * checks the guardrails, claims the transfer id in D1 (ids are global), and
 * asks the source account's Durable Object to run the transfer, which
 * coordinates prepare → apply → commit with the destination
 * (src/account/transfers.ts).
 */
import { ledgerStub } from "../account/stub";
import { ancestorChain } from "../db/accounts";
import { loadGlobalPolicy } from "../db/settings";
import { claimTransfer, markTransfer } from "../db/transfers";
import type { Problem } from "../errors";
import { canonicalJson, sha256Hex } from "../ledger";
import { MAX_DEPTH } from "../ledger/hierarchy";
import { transferGuard } from "../ledger/transfer";
import type { Role } from "../roles";

/** Roles that may transfer at all (API.md, Roles). */
export const TRANSFER_ROLES: readonly Role[] = ["admin", "finance"];

export interface TransferInput {
  transfer_id: string;
  from_account: string;
  to_account: string;
  amount: number;
  unit: string;
  reason: string | null;
}

export interface TransferCaller {
  actor: string;
  role: Role;
  maxTransferAmount: number | null;
}

export type TransferResult = { status: number; body: unknown; replayed: boolean } | Problem;

export const isProblem = (r: TransferResult): r is Problem => "code" in r;

/** The hash a transfer id is claimed with: the request as parsed, defaults applied. */
export function transferHash(input: TransferInput): string {
  return sha256Hex(canonicalJson(input));
}

/** The root of an account's tree in the D1 directory (an account it does not know yet is its own root). */
async function rootOf(d1: D1Database, accountId: string): Promise<string> {
  const chain = await ancestorChain(d1, accountId, MAX_DEPTH + 1);
  return chain[chain.length - 1] ?? accountId;
}

/**
 * Runs (or replays) a transfer. 201 with the completed transfer; a refusal
 * as a problem (402 short, 403 guardrails, 404 unknown account, 409 id
 * conflict); nothing moves unless the whole transfer does.
 *
 * @example await runTransfer(env, { actor: "key_1:finance", role: "finance", maxTransferAmount: null }, input, "req-1")
 */
/**
 * What refuses a transfer before anything is claimed or moved: the role, the
 * same account twice, the key's max_transfer_amount and the cross-tree rule,
 * and either account missing. The route asks this before four eyes too, so a
 * request that would be refused never waits for approval.
 */
export async function checkTransfer(env: Env, caller: TransferCaller, input: TransferInput): Promise<Problem | null> {
  if (!TRANSFER_ROLES.includes(caller.role)) {
    return { code: "forbidden", detail: `role ${caller.role} may not transfer credits` };
  }
  if (input.from_account === input.to_account) {
    return { code: "invalid_request", detail: "from_account and to_account must be different accounts" };
  }
  const [fromRoot, toRoot] = await Promise.all([rootOf(env.DB, input.from_account), rootOf(env.DB, input.to_account)]);
  const refused = transferGuard(caller.role, caller.maxTransferAmount, input.amount, { from: fromRoot, to: toRoot });
  if (refused) return refused;
  const [from, to] = await Promise.all([
    ledgerStub(env, input.from_account).getAccount(),
    ledgerStub(env, input.to_account).getAccount(),
  ]);
  for (const [id, record] of [
    [input.from_account, from],
    [input.to_account, to],
  ] as const) {
    if (record === null) return { code: "account_not_found", detail: `account ${id} does not exist` };
  }
  return null;
}

export async function runTransfer(
  env: Env,
  caller: TransferCaller,
  input: TransferInput,
  requestId: string,
): Promise<TransferResult> {
  const refused = await checkTransfer(env, caller, input);
  if (refused) return refused;
  const source = ledgerStub(env, input.from_account);
  const bodyHash = transferHash(input);
  const nowMs = Date.now();
  const claim = {
    transferId: input.transfer_id,
    bodyHash,
    fromAccount: input.from_account,
    toAccount: input.to_account,
    amount: input.amount,
    unit: input.unit,
  };
  const owner = await claimTransfer(env.DB, claim, nowMs);
  if (owner.bodyHash !== bodyHash) {
    return {
      code: "idempotency_conflict",
      detail: `transfer ${input.transfer_id} was first sent with a different body`,
    };
  }
  const ctx = {
    accountId: input.from_account,
    actor: caller.actor,
    requestId,
    globalPolicy: await loadGlobalPolicy(env.DB),
  };
  const out = await source.sendTransfer(ctx, {
    transferId: input.transfer_id,
    to: input.to_account,
    unit: input.unit,
    amount: input.amount,
    reason: input.reason,
    bodyHash,
  });
  if (!out.ok) return out.problem;
  if (!out.replayed) await markTransfer(env.DB, input.transfer_id, "completed", Date.now());
  return { status: out.status, body: out.body, replayed: out.replayed };
}
