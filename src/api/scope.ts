/**
 * Account-scoped API keys: a key with `account_scope` acts only on that
 * account and its descendants, and never on a global route.
 *
 * The tree is read from the D1 account directory (one recursive query per
 * check, at most MAX_DEPTH + 1 rows), which follows each account's Durable
 * Object by the outbox delay: an account created or moved a moment ago joins
 * or leaves a scope once its directory row has shipped.
 */
import type { MiddlewareHandler } from "hono";
import { ledgerStub } from "../account/stub";
import { ancestorChain, descendantsOf } from "../db/accounts";
import { ApiError } from "../errors";
import { inScope, MAX_DEPTH } from "../ledger/hierarchy";
import { ID_PATTERN } from "../ledger/ids";
import type { AppContext, AppEnv } from "./context";

/**
 * A scoped key may name at most this many accounts in one request (bulk
 * grants): the scope's tree is read once, up to this size, and every
 * account is looked up in it.
 */
export const MAX_SCOPE_ACCOUNTS = 10_000;

const outOfScope = (accountId: string) => new ApiError("account_not_found", `account ${accountId} does not exist`);

/**
 * Passes when the caller may act on `accountId`: always for unscoped keys and
 * the admin token; for a scoped key only when the account is the scope or
 * one of its descendants. Anything else is 404 account_not_found, the answer
 * an unknown account gets, so the key learns nothing about other trees.
 */
export async function requireAccountInScope(c: AppContext, accountId: string): Promise<void> {
  const scope = c.get("caller").accountScope;
  if (scope === null || scope === accountId) return;
  const chain = await ancestorChain(c.env.DB, accountId, MAX_DEPTH + 1);
  if (!inScope(chain, scope)) throw outOfScope(accountId);
}

/** 404 account_not_found unless the account exists (its Durable Object, the source of truth, says so). */
export async function requireAccountExists(c: AppContext, accountId: string): Promise<void> {
  if ((await ledgerStub(c.env, accountId).getAccount()) === null) throw outOfScope(accountId);
}

/** Global routes (policy, API keys, reports across accounts, …) refuse a scoped key with 403 forbidden. */
export function requireUnscoped(c: AppContext): void {
  if (c.get("caller").accountScope !== null) {
    throw new ApiError("forbidden", "an account-scoped key may not call this global route");
  }
}

/**
 * A read across accounts with optional account filters (reports, alerts,
 * the account list): a scoped key must name at least one filter, and each
 * one it names must be in its scope; unscoped callers pass.
 */
export async function requireFiltersInScope(c: AppContext, filters: readonly (string | undefined)[]): Promise<void> {
  if (c.get("caller").accountScope === null) return;
  const named = filters.filter((f): f is string => f !== undefined);
  if (named.length === 0) {
    throw new ApiError("forbidden", "an account-scoped key must filter this read by an account in its scope");
  }
  for (const id of named) await requireAccountInScope(c, id);
}

/**
 * Something one key made (a bulk grant) is visible to a scoped key only when
 * that key made it; else 404, as if it did not exist.
 */
export function requireOwnRecord(c: AppContext, actor: string, notFound: ApiError): void {
  const caller = c.get("caller");
  if (caller.accountScope !== null && caller.actor !== actor) throw notFound;
}

/**
 * Every account id of a many-account request (bulk grants) in the caller's
 * scope: one read of the scope's tree, then a lookup per id. No-op when the
 * caller is unscoped.
 */
export async function requireAllInScope(c: AppContext, accountIds: readonly string[]): Promise<void> {
  const scope = c.get("caller").accountScope;
  if (scope === null) return;
  const tree = await descendantsOf(c.env.DB, scope, MAX_DEPTH, MAX_SCOPE_ACCOUNTS);
  if (tree.more) {
    throw new ApiError(
      "invalid_request",
      `this key's tree holds more than ${MAX_SCOPE_ACCOUNTS} accounts; use an unscoped key for this request`,
    );
  }
  const members = new Set([scope, ...tree.accounts.map((a) => a.id)]);
  for (const id of accountIds) if (!members.has(id)) throw outOfScope(id);
}

/**
 * A scoped key may not detach an account from its tree (parent_id: null),
 * except the scope account itself, which is already the top of it.
 */
export function requireScopeKept(c: AppContext, accountId: string): void {
  const scope = c.get("caller").accountScope;
  if (scope !== null && scope !== accountId) {
    throw new ApiError("forbidden", "an account-scoped key may not move an account out of its tree");
  }
}

/**
 * PUT /v1/accounts/{id} by a scoped key may create an account that does not
 * exist yet, under a parent in its scope (the route then checks that parent
 * like any other). "Does not exist" is asked of the account's Durable Object,
 * the source of truth, so an account the directory has not seen yet cannot be
 * taken over this way.
 */
async function mayCreateInScope(c: AppContext, accountId: string): Promise<boolean> {
  if (c.req.method !== "PUT" || c.req.path !== `/v1/accounts/${accountId}`) return false;
  const body = c.get("body");
  const parentId = typeof body === "object" && body !== null ? (body as { parent_id?: unknown }).parent_id : undefined;
  if (typeof parentId !== "string" || !ID_PATTERN.test(parentId)) return false;
  if ((await ledgerStub(c.env, accountId).getAccount()) !== null) return false;
  await requireAccountInScope(c, parentId);
  return true;
}

/**
 * Mounted on /v1/accounts/{account_id} and everything under it, so no route
 * there can forget the check. A malformed id passes through: the route's own
 * pathId() refuses it with 400.
 */
export const accountScope: MiddlewareHandler<AppEnv> = async (c, next) => {
  const accountId = c.req.param("account_id");
  if (accountId !== undefined && ID_PATTERN.test(accountId)) {
    try {
      await requireAccountInScope(c, accountId);
    } catch (e) {
      if (!(e instanceof ApiError) || !(await mayCreateInScope(c, accountId))) throw e;
    }
  }
  return next();
};
