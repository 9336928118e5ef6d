/** /v1/accounts/{account_id}/debits: the per-request gate, and what support reads back. */
import { z } from "@hono/zod-openapi";
import { idempotencyOf, ledgerOf, opContext, pathId, READERS, requireRole, send, validBody } from "./context";
import { ChargeFields, RatingResultFields, resolveCharge } from "./meters";
import { resource, route } from "./route";
import { AccountIdParam, AppliedMore, AppliedSchema, BalanceSchema, Id, json, Metadata, problems } from "./schemas";
import { ConvertedSchema, ConvertFlag, conversionsInto } from "./units";

export const DebitInputSchema = z
  .strictObject({
    debit_id: Id.optional(),
    ...ChargeFields,
    convert: ConvertFlag,
    metadata: Metadata.optional().openapi({ description: "Kept with the debit; served by GET …/debits/{debit_id}" }),
  })
  .openapi("DebitInput");

export const DebitResultSchema = z
  .object({
    debit_id: z.string(),
    amount: z.number().int(),
    unit: z.string(),
    ...RatingResultFields,
    applied: AppliedSchema,
    applied_more: AppliedMore,
    converted: ConvertedSchema,
    balance: BalanceSchema,
  })
  .openapi("DebitResult");

export const DebitRecordSchema = z
  .object({
    debit_id: z.string(),
    amount: z.number().int(),
    unit: z.string(),
    ...RatingResultFields,
    metadata: z.record(z.string(), z.string()).nullable(),
    applied: AppliedSchema,
    applied_more: AppliedMore,
    txn_id: z.string(),
    first_seq: z.number().int(),
    last_seq: z.number().int(),
    actor: z.string(),
    created_at: z.string(),
  })
  .openapi("Debit");

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
    responses: { 200: json(DebitResultSchema), ...problems(400, 401, 402, 403, 404, 409, 413, 415, 503) },
  },
  async (c) => {
    requireRole(c, ["admin", "gateway"]);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, DebitInputSchema);
    const idem = idempotencyOf(c, input.debit_id, "debit_id");
    const charge = await resolveCharge(c, input);
    const conversions = input.convert ? await conversionsInto(c, charge.unit) : undefined;
    const req = { id: idem.key, ...charge, metadata: input.metadata ?? null, ...(conversions ? { conversions } : {}) };
    return send(c, await ledgerOf(c, accountId).debit(await opContext(c, accountId), req, idem));
  },
);

route(
  debits,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/debits/{debit_id}",
    summary: "One debit: its amount, metadata and the lots it drew from (at most 1 000 listed)",
    request: { params: AccountIdParam.extend({ debit_id: Id }) },
    responses: { 200: json(DebitRecordSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    return send(c, await ledgerOf(c, accountId).getDebit(accountId, pathId(c, "debit_id")));
  },
);
