/** /v1/transfers: credits moved between two accounts, exactly once (src/transfers/run.ts). */
import { z } from "@hono/zod-openapi";
import { readTransfer, transferLimitOf } from "../db/transfers";
import { ApiError } from "../errors";
import { checkTransfer, isProblem, runTransfer, TRANSFER_ROLES, type TransferInput } from "../transfers/run";
import { ApprovalPendingSchema, askApproval, transferAsk } from "./approval-gate";
import { idempotencyOf, ledgerOf, pathId, READERS, requireRole, validBody } from "./context";
import { resource, route } from "./route";
import { Amount, AppliedMore, AppliedSchema, Id, json, problems, ShortText, Unit } from "./schemas";
import { requireAccountInScope } from "./scope";

export const TransferInputSchema = z
  .strictObject({
    transfer_id: Id.optional().openapi({ description: "Global idempotency id (or the Idempotency-Key header)" }),
    from_account: Id,
    to_account: Id,
    amount: Amount,
    unit: Unit.default("credits"),
    reason: ShortText.optional(),
  })
  .openapi("TransferInput");

export const TransferResultSchema = z
  .object({
    transfer_id: z.string(),
    status: z.literal("completed"),
    from_account: z.string(),
    to_account: z.string(),
    amount: z.number().int(),
    unit: z.string(),
    applied: AppliedSchema.openapi({ description: "The source lots the credits left, in draw order" }),
    applied_more: AppliedMore,
  })
  .openapi("TransferResult");

export const TransferSchema = z
  .object({
    transfer_id: z.string(),
    status: z.enum(["preparing", "applied", "completed", "cancelled"]),
    from_account: z.string(),
    to_account: z.string(),
    amount: z.number().int(),
    unit: z.string(),
    reason: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Transfer");

export const transfers = resource();

route(
  transfers,
  {
    method: "post",
    path: "/v1/transfers",
    summary: "Move credits from one account to another: the lots keep type, priority, expiry and cost basis",
    request: { body: { content: { "application/json": { schema: TransferInputSchema } }, required: true } },
    responses: {
      201: json(TransferResultSchema, "Created"),
      202: json(ApprovalPendingSchema, "Above the approval threshold: pending a second key's approval"),
      ...problems(400, 401, 402, 403, 404, 409, 413, 415, 503),
    },
  },
  async (c) => {
    const caller = requireRole(c, TRANSFER_ROLES);
    const body = validBody(c, TransferInputSchema);
    const idem = idempotencyOf(c, body.transfer_id, "transfer_id");
    await requireAccountInScope(c, body.from_account);
    await requireAccountInScope(c, body.to_account);
    const input: TransferInput = {
      transfer_id: idem.key,
      from_account: body.from_account,
      to_account: body.to_account,
      amount: body.amount,
      unit: body.unit,
      reason: body.reason ?? null,
    };
    const maxTransferAmount = caller.keyId === "admin-token" ? null : await transferLimitOf(c.env.DB, caller.keyId);
    const transferCaller = { actor: caller.actor, role: caller.role, maxTransferAmount };
    // The guardrails first, so a transfer they refuse never waits for approval.
    const refused = await checkTransfer(c.env, transferCaller, input);
    if (refused) throw new ApiError(refused.code, refused.detail, refused.extra);
    // Above the source account's approval threshold: stored, answered 202 pending, nothing moved.
    const ask = transferAsk({ fromAccount: input.from_account, unit: input.unit, amount: input.amount, idem });
    const pending = await askApproval(c, ask);
    if (pending) return pending;
    c.set("accountId", input.from_account);
    const out = await runTransfer(c.env, transferCaller, input, c.get("requestId"));
    if (isProblem(out)) throw new ApiError(out.code, out.detail, out.extra);
    // Each account's write is logged by its Durable Object (ledger.write with the transfer id).
    if (out.replayed) c.header("idempotent-replayed", "true");
    return c.json(out.body as object, out.status as 201);
  },
);

route(
  transfers,
  {
    method: "get",
    path: "/v1/transfers/{transfer_id}",
    summary: "A transfer's state, as its source account holds it",
    request: { params: z.object({ transfer_id: Id }) },
    responses: { 200: json(TransferSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    const transferId = pathId(c, "transfer_id");
    const row = await readTransfer(c.env.DB, transferId);
    const notFound = new ApiError("transfer_not_found", `transfer ${transferId} does not exist`);
    if (row === null) throw notFound;
    try {
      await requireAccountInScope(c, row.fromAccount);
      await requireAccountInScope(c, row.toAccount);
    } catch {
      throw notFound;
    }
    const out = await ledgerOf(c, row.fromAccount).getTransfer(transferId);
    if (!out.ok) throw new ApiError(out.problem.code, out.problem.detail, out.problem.extra);
    return c.json(out.body as object);
  },
);
