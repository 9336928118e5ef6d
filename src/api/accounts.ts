/** /v1/accounts (the D1 directory) and /v1/accounts/{account_id}: the account record and its balance. */
import { z } from "@hono/zod-openapi";
import { OUTBOX_DELAY_MS } from "../account/outbox";
import { listAccounts } from "../db/accounts";
import { ApiError } from "../errors";
import { recordChange } from "./audit";
import {
  type AppContext,
  BALANCE_READERS,
  ledgerOf,
  opContext,
  pathId,
  READERS,
  requireRole,
  send,
  validBody,
  validQuery,
} from "./context";
import { resource, route } from "./route";
import {
  AccountIdParam,
  BalanceSchema,
  Id,
  json,
  Limit,
  Metadata,
  parseTime,
  problems,
  ShortText,
  Time,
  Unit,
} from "./schemas";

/**
 * Units an account may watch with a low-balance threshold: every write to the
 * account checks each of them against its balance, so the list stays short.
 */
export const MAX_LOW_BALANCE_UNITS = 16;

export const AccountInputSchema = z
  .strictObject({
    name: ShortText.nullable().optional(),
    parent_id: Id.nullable().optional(),
    verified: z.boolean().optional(),
    metadata: Metadata.nullable().optional(),
    low_balance: z
      .record(Unit, z.number().int().min(0).max(9e15))
      .refine(
        (m) => Object.keys(m).length <= MAX_LOW_BALANCE_UNITS,
        `at most ${MAX_LOW_BALANCE_UNITS} units have a low-balance threshold`,
      )
      .nullable()
      .optional(),
  })
  .openapi("AccountInput");

export const AccountSchema = z
  .object({
    account_id: z.string(),
    name: z.string().nullable(),
    parent_id: z.string().nullable(),
    verified: z.boolean(),
    metadata: z.record(z.string(), z.string()).nullable(),
    low_balance: z.record(z.string(), z.number()).nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Account");

export const MAX_PARENT_DEPTH = 32;

/** GET /v1/accounts pages hold at most ACCOUNT_LIST_MAX accounts, DEFAULT_ACCOUNT_LIST_LIMIT when `limit` is absent. */
export const ACCOUNT_LIST_MAX = 1000;
export const DEFAULT_ACCOUNT_LIST_LIMIT = 100;

const AccountListQuery = z.strictObject({
  parent_id: Id.optional().openapi({ description: "Only the direct children of this account" }),
  after: Id.optional().openapi({ description: "The next_cursor of the previous page" }),
  limit: Limit(ACCOUNT_LIST_MAX, DEFAULT_ACCOUNT_LIST_LIMIT),
});

/** parent_id must exist and may not make a cycle (walks up at most 32 levels). */
async function checkParent(c: AppContext, accountId: string, parentId: string): Promise<void> {
  let current: string | null = parentId;
  for (let depth = 0; current !== null; depth++) {
    if (current === accountId) throw new ApiError("invalid_request", "parent_id would make a cycle");
    if (depth >= MAX_PARENT_DEPTH)
      throw new ApiError("invalid_request", `account trees are limited to ${MAX_PARENT_DEPTH} levels`);
    const parent = await ledgerOf(c, current).getAccount();
    if (!parent) throw new ApiError("account_not_found", `parent account ${current} does not exist`);
    current = parent.parent_id;
  }
  c.set("accountId", accountId);
}

export const accounts = resource();

route(
  accounts,
  {
    method: "get",
    path: "/v1/accounts",
    summary: "List accounts by id, cursor-paged, optionally the children of one parent",
    description:
      "Read from the D1 account directory, which each account's Durable Object feeds through its outbox: " +
      `a created or changed account shows here about ${OUTBOX_DELAY_MS} ms after the write (later while D1 ` +
      "is unreachable). GET /v1/accounts/{account_id} reads the Durable Object itself.",
    request: { query: AccountListQuery },
    responses: {
      200: json(
        z.object({ accounts: z.array(AccountSchema), next_cursor: z.string().nullable() }).openapi("AccountList"),
      ),
      ...problems(400, 401, 403),
    },
  },
  async (c) => {
    requireRole(c, READERS);
    const q = validQuery(c, AccountListQuery);
    const page = await listAccounts(c.env.DB, {
      parentId: q.parent_id ?? null,
      after: q.after ?? null,
      limit: q.limit,
    });
    const last = page.accounts[page.accounts.length - 1];
    return c.json({ accounts: page.accounts, next_cursor: page.more && last ? last.account_id : null });
  },
);

route(
  accounts,
  {
    method: "put",
    path: "/v1/accounts/{account_id}",
    summary: "Create or update an account",
    request: { params: AccountIdParam, body: { content: { "application/json": { schema: AccountInputSchema } } } },
    responses: {
      200: json(AccountSchema, "Updated"),
      201: json(AccountSchema, "Created"),
      ...problems(400, 401, 403, 404),
    },
  },
  async (c) => {
    requireRole(c, ["admin", "finance"]);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, AccountInputSchema);
    if (input.parent_id) await checkParent(c, accountId, input.parent_id);
    const stub = ledgerOf(c, accountId);
    // Read for the audit row's `before`: a separate call, so a concurrent PUT
    // to the same account may land in between (its own row shows it).
    const before = await stub.getAccount();
    const outcome = await stub.upsertAccount(accountId, input);
    // The Durable Object is the source of truth: the row follows its success.
    if (outcome.ok) {
      const created = outcome.status === 201;
      await recordChange(c, {
        action: created ? "account.created" : "account.updated",
        target: accountId,
        before: created ? null : before,
        after: outcome.body,
      });
    }
    return send(c, outcome);
  },
);

route(
  accounts,
  {
    method: "get",
    path: "/v1/accounts/{account_id}",
    summary: "Read an account",
    request: { params: AccountIdParam },
    responses: { 200: json(AccountSchema), ...problems(400, 401, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    const account = await ledgerOf(c, accountId).getAccount();
    if (!account) throw new ApiError("account_not_found", `account ${accountId} does not exist`);
    return c.json(account);
  },
);

const BalanceQuery = z.strictObject({ unit: Unit.default("credits"), as_of: Time.optional() });

route(
  accounts,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/balance",
    summary: "Balance of one unit, now or replayed as of a past time",
    request: { params: AccountIdParam, query: BalanceQuery },
    responses: { 200: json(BalanceSchema), ...problems(400, 401, 404) },
  },
  async (c) => {
    requireRole(c, BALANCE_READERS);
    const accountId = pathId(c, "account_id");
    const q = validQuery(c, BalanceQuery);
    const asOfMs = q.as_of === undefined ? null : (parseTime(q.as_of) as number);
    return send(c, await ledgerOf(c, accountId).balance(await opContext(c, accountId), q.unit, asOfMs));
  },
);
