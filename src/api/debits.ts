/** POST /v1/accounts/{account_id}/debits: the per-request gate. */
import { z } from "@hono/zod-openapi";
import { idempotencyOf, ledgerOf, opContext, pathId, requireRole, send, validBody } from "./context";
import { resource, route } from "./route";
import { AccountIdParam, Amount, AppliedSchema, BalanceSchema, Id, json, Metadata, problems, Unit } from "./schemas";

export const DebitInputSchema = z
  .strictObject({
    debit_id: Id.optional(),
    amount: Amount,
    unit: Unit.default("credits"),
    metadata: Metadata.optional(),
  })
  .openapi("DebitInput");

export const DebitResultSchema = z
  .object({
    debit_id: z.string(),
    amount: z.number().int(),
    unit: z.string(),
    applied: AppliedSchema,
    balance: BalanceSchema,
  })
  .openapi("DebitResult");

export const debits = resource();

route(
  debits,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/debits",
    summary: "Debit credits now, all or nothing, in the policy's consumption order",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: DebitInputSchema } }, required: true },
    },
    responses: { 200: json(DebitResultSchema), ...problems(400, 401, 402, 403, 404, 409, 413, 415) },
  },
  async (c) => {
    requireRole(c, ["admin", "gateway"]);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, DebitInputSchema);
    const idem = idempotencyOf(c, input.debit_id, "debit_id");
    const req = { id: idem.key, unit: input.unit, amount: input.amount };
    return send(c, await ledgerOf(c, accountId).debit(await opContext(c, accountId), req, idem));
  },
);
