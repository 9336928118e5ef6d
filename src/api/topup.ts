/**
 * /v1/accounts/{account_id}/top-up: the automatic top-up rule of one unit
 * (src/account/topup.ts). When an operation leaves `available` below
 * `below`, the account's Durable Object creates, in that same transaction,
 * one grant awaiting payment (`topup.<n>`) and a `topup.requested` alert;
 * one outstanding at a time, never more than `max_per_month` a UTC month.
 */
import { z } from "@hono/zod-openapi";
import { TOPUP_EXPIRES_DAYS_MAX } from "../ledger/topup";
import { recordChange } from "./audit";
import { ledgerOf, pathId, READERS, requireRole, send, validBody, validQuery } from "./context";
import { CostBasisInput } from "./grants";
import { resource, route } from "./route";
import { AccountIdParam, Amount, CreditTypeSchema, json, problems, Unit } from "./schemas";

/** Who may set and remove top-up rules. */
export const TOPUP_WRITERS = ["admin", "finance"] as const;

export const TopUpInputSchema = z
  .strictObject({
    unit: Unit.default("credits"),
    below: Amount.openapi({ description: "A top-up is requested when an operation leaves available below this" }),
    amount: Amount.openapi({ description: "Credits each top-up grant carries" }),
    max_per_month: Amount.nullable()
      .optional()
      .openapi({ description: "Most credits requested per UTC calendar month (cancelled requests do not count)" }),
    grant: z
      .strictObject({
        type: z.literal("purchased"),
        cost_basis: CostBasisInput.nullable().optional(),
        expires_in_days: z.number().int().min(1).max(TOPUP_EXPIRES_DAYS_MAX).nullable().optional().openapi({
          description: "The lot expires this many days after activation",
        }),
      })
      .default({ type: "purchased" }),
  })
  .openapi("TopUpInput");

export const TopUpSchema = z
  .object({
    unit: z.string(),
    below: z.number().int(),
    amount: z.number().int(),
    max_per_month: z.number().int().nullable(),
    grant: z.object({
      type: CreditTypeSchema,
      cost_basis: z.object({ amount: z.number().int(), currency: z.string() }).passthrough().nullable(),
      expires_in_days: z.number().int().nullable(),
    }),
    month_start: z.string().openapi({ description: "Start of the account clock's UTC month" }),
    requested_this_month: z.number().int(),
    outstanding: z.string().nullable().openapi({ description: "The top-up grant awaiting payment, if any" }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("TopUp");

const UnitQuery = z.strictObject({ unit: Unit.default("credits") });

export const topup = resource();

const path = "/v1/accounts/{account_id}/top-up";

route(
  topup,
  {
    method: "put",
    path,
    summary: "Set the automatic top-up rule of a unit",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: TopUpInputSchema } }, required: true },
    },
    responses: { 200: json(TopUpSchema), ...problems(400, 401, 403, 404, 413, 415) },
  },
  async (c) => {
    requireRole(c, TOPUP_WRITERS);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, TopUpInputSchema);
    const stub = ledgerOf(c, accountId);
    const before = await stub.getTopUp(accountId, input.unit);
    const out = await stub.putTopUp(accountId, input);
    if (out.ok) {
      await recordChange(c, {
        action: "top_up.updated",
        target: `${accountId}:${input.unit}`,
        before: before.ok ? before.body : null,
        after: out.body,
      });
    }
    return send(c, out);
  },
);

route(
  topup,
  {
    method: "get",
    path,
    summary: "The automatic top-up rule of a unit, with what it requested this month",
    request: { params: AccountIdParam, query: UnitQuery },
    responses: { 200: json(TopUpSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    const q = validQuery(c, UnitQuery);
    return send(c, await ledgerOf(c, accountId).getTopUp(accountId, q.unit));
  },
);

route(
  topup,
  {
    method: "delete",
    path,
    summary: "Remove the automatic top-up rule of a unit (a request outstanding stays to be settled)",
    request: { params: AccountIdParam, query: UnitQuery },
    responses: { 200: json(TopUpSchema.extend({ deleted: z.literal(true) })), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, TOPUP_WRITERS);
    const accountId = pathId(c, "account_id");
    const q = validQuery(c, UnitQuery);
    const out = await ledgerOf(c, accountId).deleteTopUp(accountId, q.unit);
    if (out.ok) {
      const { deleted: _, ...removed } = out.body as Record<string, unknown>;
      await recordChange(c, {
        action: "top_up.deleted",
        target: `${accountId}:${q.unit}`,
        before: removed,
        after: null,
      });
    }
    return send(c, out);
  },
);
