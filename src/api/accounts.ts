/** /v1/accounts (the D1 directory) and /v1/accounts/{account_id}: the account record and its balance. */
import { z } from "@hono/zod-openapi";
import { OUTBOX_DELAY_MS } from "../account/outbox";
import type { Json } from "../account/types";
import { MAX_VELOCITY_UNITS } from "../account/velocity";
import { listAccounts } from "../db/accounts";
import { ApiError } from "../errors";
import { MAX_ACCOUNT_TOTAL } from "../ledger";
import { MAX_DEPTH } from "../ledger/hierarchy";
import { recordChange } from "./audit";
import {
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
import { checkParent, MAX_ROLLUP_ACCOUNTS, RollupSchema, rollupOf } from "./hierarchy";
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
import { requireFiltersInScope, requireScopeKept } from "./scope";

/**
 * Units an account may watch with a low-balance threshold: every write to the
 * account checks each of them against its balance, so the list stays short.
 */
export const MAX_LOW_BALANCE_UNITS = 16;

/**
 * Velocity limits of one unit: the most that debits, holds, receipts and usage
 * events may consume or reserve in a trailing minute, hour or day (counted in
 * whole minutes by the account's Durable Object).
 */
export const VelocityLimitsSchema = z
  .strictObject({
    per_minute: z.number().int().min(1).max(MAX_ACCOUNT_TOTAL).optional(),
    per_hour: z.number().int().min(1).max(MAX_ACCOUNT_TOTAL).optional(),
    per_day: z.number().int().min(1).max(MAX_ACCOUNT_TOTAL).optional(),
  })
  .refine((l) => Object.keys(l).length > 0, "give at least one of per_minute, per_hour, per_day")
  .openapi("VelocityLimits");

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
    velocity: z
      .record(Unit, VelocityLimitsSchema)
      .refine(
        (m) => Object.keys(m).length <= MAX_VELOCITY_UNITS,
        `at most ${MAX_VELOCITY_UNITS} units have velocity limits`,
      )
      .nullable()
      .optional()
      .openapi({ description: "Limits per unit on credits consumed or reserved; replaces them all, null removes" }),
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
    velocity: z
      .record(z.string(), VelocityLimitsSchema)
      .optional()
      .openapi({ description: "Present while the account has velocity limits" }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Account");

/**
 * How far the reports' parent_id filter walks down. New trees are at most
 * MAX_DEPTH (src/ledger/hierarchy.ts) deep; this deeper walk still reaches
 * accounts placed before that rule.
 */
export const MAX_PARENT_DEPTH = 32;

/** GET /v1/accounts pages hold at most ACCOUNT_LIST_MAX accounts, DEFAULT_ACCOUNT_LIST_LIMIT when `limit` is absent. */
export const ACCOUNT_LIST_MAX = 1000;
export const DEFAULT_ACCOUNT_LIST_LIMIT = 100;

const AccountListQuery = z.strictObject({
  parent_id: Id.optional().openapi({ description: "Only the direct children of this account" }),
  after: Id.optional().openapi({ description: "The next_cursor of the previous page" }),
  limit: Limit(ACCOUNT_LIST_MAX, DEFAULT_ACCOUNT_LIST_LIMIT),
});

/** A children page holds at most CHILDREN_PAGE_MAX accounts, DEFAULT_CHILDREN_LIMIT when `limit` is absent. */
export const CHILDREN_PAGE_MAX = 1000;
export const DEFAULT_CHILDREN_LIMIT = 100;

const ChildrenQuery = z.strictObject({
  after: Id.optional().openapi({ description: "The next_cursor of the previous page" }),
  limit: Limit(CHILDREN_PAGE_MAX, DEFAULT_CHILDREN_LIMIT),
});

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
    await requireFiltersInScope(c, [q.parent_id]);
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
    if (input.parent_id === null) requireScopeKept(c, accountId);
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

const BalanceQuery = z.strictObject({
  unit: Unit.default("credits"),
  as_of: Time.optional(),
  rollup: z
    .enum(["true", "false"])
    .optional()
    .openapi({
      description: `true: add "rollup", the totals over the account and its descendants (at most ${MAX_ROLLUP_ACCOUNTS} accounts; not with as_of)`,
    }),
});

route(
  accounts,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/balance",
    summary: "Balance of one unit, now or replayed as of a past time",
    request: { params: AccountIdParam, query: BalanceQuery },
    responses: { 200: json(BalanceSchema.extend({ rollup: RollupSchema.optional() })), ...problems(400, 401, 404) },
  },
  async (c) => {
    requireRole(c, BALANCE_READERS);
    const accountId = pathId(c, "account_id");
    const q = validQuery(c, BalanceQuery);
    const asOfMs = q.as_of === undefined ? null : (parseTime(q.as_of) as number);
    if (q.rollup === "true" && asOfMs !== null) {
      throw new ApiError("invalid_request", "rollup=true reads balances now; it cannot be combined with as_of");
    }
    const outcome = await ledgerOf(c, accountId).balance(await opContext(c, accountId), q.unit, asOfMs);
    if (q.rollup !== "true" || !outcome.ok) return send(c, outcome);
    const own = outcome.body as unknown as Parameters<typeof rollupOf>[3];
    const rollup = await rollupOf(c, accountId, q.unit, own);
    return send(c, {
      ...outcome,
      body: { ...(outcome.body as Record<string, Json>), rollup: rollup as unknown as Json },
    });
  },
);

route(
  accounts,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/children",
    summary: "The account's direct children, by id, cursor-paged",
    description:
      `Read from the D1 account directory (a moment behind each account's Durable Object). Trees are at most ${MAX_DEPTH} ` +
      `levels deep below a root; a page holds at most ${CHILDREN_PAGE_MAX} children.`,
    request: { params: AccountIdParam, query: ChildrenQuery },
    responses: {
      200: json(
        z.object({ children: z.array(AccountSchema), next_cursor: z.string().nullable() }).openapi("AccountChildren"),
      ),
      ...problems(400, 401, 403, 404),
    },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    const q = validQuery(c, ChildrenQuery);
    if ((await ledgerOf(c, accountId).getAccount()) === null) {
      throw new ApiError("account_not_found", `account ${accountId} does not exist`);
    }
    const page = await listAccounts(c.env.DB, { parentId: accountId, after: q.after ?? null, limit: q.limit });
    const last = page.accounts[page.accounts.length - 1];
    return c.json({ children: page.accounts, next_cursor: page.more && last ? last.account_id : null });
  },
);
