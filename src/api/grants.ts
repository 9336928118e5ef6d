/** /v1/accounts/{account_id}/grants: issue, list and void lots. */
import { z } from "@hono/zod-openapi";
import { GRANTS_PAGE_MAX } from "../account/reads";
import { ledgerStub } from "../account/stub";
import type { Idempotency, Outcome } from "../account/types";
import { GRANTERS, grantRefusal } from "../bulk/permission";
import { loadGlobalPolicy } from "../db/settings";
import { ApiError } from "../errors";
import type { CreditType, GrantCommand } from "../ledger";
import { ApprovalPendingSchema, askApproval, grantAsk } from "./approval-gate";
import {
  type AppContext,
  type Caller,
  idempotencyOf,
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
  Amount,
  BalanceSchema,
  CreditTypeSchema,
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

/** Total paid (tax excluded) and, optionally, the tax collected on top, in minor units of `currency`. */
export const CostBasisInput = z
  .strictObject({
    amount: z.number().int().min(0).max(9e15),
    currency: z.string().regex(/^[A-Z]{3}$/, "an ISO 4217 code"),
    tax: z
      .strictObject({
        amount: z.number().int().min(0).max(9e15),
        jurisdiction: z.string().regex(/^[A-Z]{2}(-[A-Z0-9]{1,3})?$/, "an ISO 3166 code, e.g. DE or US-CA"),
      })
      .optional(),
  })
  .openapi("CostBasis");

export const GrantInputSchema = z
  .strictObject({
    grant_id: Id.optional(),
    amount: Amount,
    unit: Unit.default("credits"),
    type: CreditTypeSchema,
    priority: z.number().int().min(0).max(1_000_000).default(100),
    effective_at: Time.optional(),
    expires_at: Time.nullable().optional(),
    source: ShortText.nullable().optional(),
    reason: ShortText.nullable().optional(),
    campaign: ShortText.nullable().optional(),
    incident_id: ShortText.nullable().optional(),
    cost_basis: CostBasisInput.nullable().optional(),
    metadata: Metadata.nullable().optional(),
    awaiting_payment: z.boolean().optional().openapi({
      description:
        "true: recorded with status awaiting_payment, no entry and never spendable until POST …/activate (src/api/awaiting.ts)",
    }),
  })
  .openapi("GrantInput");

export const GrantSchema = z
  .object({
    grant_id: z.string(),
    amount: z.number().int(),
    unit: z.string(),
    type: CreditTypeSchema,
    priority: z.number().int(),
    effective_at: z.string(),
    expires_at: z.string().nullable(),
    source: z.string().nullable(),
    reason: z.string().nullable(),
    campaign: z.string().nullable(),
    incident_id: z.string().nullable(),
    cost_basis: z
      .object({
        amount: z.number().int(),
        currency: z.string(),
        tax: z.object({ amount: z.number().int(), jurisdiction: z.string() }).optional(),
      })
      .nullable(),
    metadata: z.record(z.string(), z.string()).nullable(),
    source_grant_id: z.string().nullable(),
    remaining: z.number().int(),
    held: z.number().int(),
    status: z.enum(["active", "pending", "expired", "depleted", "voided", "awaiting_payment", "cancelled"]),
    created_at: z.string(),
    voided_at: z.string().nullable(),
    // A grant that awaited payment (src/account/awaiting.ts) also serves how it was paid for.
    topup: z.boolean().optional().openapi({ description: "Awaiting-payment grants: made by an automatic top-up" }),
    expires_in_days: z.number().int().nullable().optional(),
    payment_ref: z.string().nullable().optional(),
    cancel_reason: z.string().nullable().optional(),
    closed_at: z.string().nullable().optional().openapi({ description: "When it was activated or cancelled" }),
  })
  .openapi("Grant");

const GrantResult = z.object({ grant: GrantSchema, balance: BalanceSchema });

/** A grant body as validated: the single grant's, and (without grant_id) each of a bulk grant's. */
export type GrantInput = z.infer<typeof GrantInputSchema>;

/** The DO's command for a validated grant body, named `grantId`. */
export function grantCommand(grantId: string, input: Omit<GrantInput, "grant_id">): GrantCommand {
  return {
    grantId,
    unit: input.unit,
    type: input.type,
    amount: input.amount,
    priority: input.priority,
    effectiveAtMs: input.effective_at === undefined ? null : parseTime(input.effective_at),
    expiresAtMs: input.expires_at == null ? null : parseTime(input.expires_at),
    source: input.source ?? null,
    reason: input.reason ?? null,
    campaign: input.campaign ?? null,
    incidentId: input.incident_id ?? null,
    costBasis: input.cost_basis ?? null,
    metadata: input.metadata ?? null,
    sourceGrantId: null,
  };
}

/** support may issue compensatory, marketing promotional, each within the key's limit (src/bulk/permission.ts). */
export function checkGrantPermission(c: AppContext, type: CreditType, amount: number): void {
  const refusal = grantRefusal(requireRole(c, GRANTERS), type, amount);
  if (refusal) throw new ApiError(refusal.code, refusal.detail, refusal.extra);
}

/** A validated single grant: what the route runs, and what an approval stores and runs later. */
export interface GrantRun {
  accountId: string;
  input: GrantInput;
  idem: Idempotency;
}

/**
 * Issues a validated grant on `caller`'s authority (its role and
 * max_grant_amount are checked again here): the route's work, without an
 * HTTP context, so an approved request (src/api/approvals.ts) runs the same.
 */
export async function runGrant(env: Env, caller: Caller, req: GrantRun, requestId: string): Promise<Outcome> {
  const refusal = grantRefusal(caller, req.input.type, req.input.amount);
  if (refusal) return { ok: false, problem: refusal };
  const ctx = {
    accountId: req.accountId,
    actor: caller.actor,
    requestId,
    globalPolicy: await loadGlobalPolicy(env.DB),
  };
  const stub = ledgerStub(env, req.accountId);
  const cmd = grantCommand(req.idem.key, req.input);
  // Awaiting payment: the same checks, recorded without an entry (src/account/awaiting.ts).
  if (req.input.awaiting_payment === true) return stub.createAwaiting(ctx, cmd, req.idem);
  return stub.grant(ctx, cmd, req.idem);
}

export const grants = resource();

route(
  grants,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/grants",
    summary: "Issue a grant (a lot); creates the account when it does not exist",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: GrantInputSchema } }, required: true },
    },
    responses: {
      201: json(GrantResult, "Created"),
      202: json(ApprovalPendingSchema, "Above the approval threshold: pending a second key's approval"),
      ...problems(400, 401, 403, 409, 413, 415),
    },
  },
  async (c) => {
    // Roles that may issue no grant learn nothing from the body.
    requireRole(c, GRANTERS);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, GrantInputSchema);
    checkGrantPermission(c, input.type, input.amount);
    const req: GrantRun = { accountId, input, idem: idempotencyOf(c, input.grant_id, "grant_id") };
    // Above the approval threshold: stored, answered 202 pending, nothing moved.
    const pending = await askApproval(c, grantAsk(req, grantCommand(req.idem.key, input)));
    if (pending) return pending;
    c.set("accountId", accountId);
    return send(c, await runGrant(c.env, c.get("caller"), req, c.get("requestId")));
  },
);

const ListQuery = z.strictObject({
  status: z.enum(["active", "pending", "expired", "depleted", "voided", "awaiting_payment"]).optional(),
  cursor: Id.optional().openapi({ description: "next_cursor of the previous page" }),
  limit: Limit(GRANTS_PAGE_MAX, 100),
  as_of: Time.optional().openapi({
    description:
      "Each grant as it stood then (remaining, held, status; entries recorded at or before it); not in the future",
  }),
});

route(
  grants,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/grants",
    summary: "List grants in creation order, optionally by status, a page at a time",
    request: { params: AccountIdParam, query: ListQuery },
    responses: {
      200: json(z.object({ grants: z.array(GrantSchema), next_cursor: z.string().nullable() })),
      ...problems(400, 401, 404),
    },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    const q = validQuery(c, ListQuery);
    const asOfMs = q.as_of === undefined ? null : (parseTime(q.as_of) as number);
    if (q.status === "awaiting_payment") {
      if (asOfMs !== null)
        throw new ApiError("invalid_request", "as_of lists lots; it cannot be combined with awaiting_payment");
      return send(c, await ledgerOf(c, accountId).listAwaiting(accountId, q.cursor ?? null, q.limit));
    }
    const query = { status: q.status ?? null, cursor: q.cursor ?? null, limit: q.limit, asOfMs };
    return send(c, await ledgerOf(c, accountId).listGrants(accountId, query));
  },
);

route(
  grants,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/grants/{grant_id}",
    summary: "One grant as it stands now",
    request: { params: AccountIdParam.extend({ grant_id: Id }) },
    responses: { 200: json(GrantSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    const grantId = pathId(c, "grant_id");
    const stub = ledgerOf(c, accountId);
    const lot = await stub.getGrant(accountId, grantId);
    // Not a lot: perhaps a grant awaiting payment, or one cancelled before it was paid.
    if (!lot.ok && lot.problem.code === "grant_not_found") return send(c, await stub.getAwaiting(accountId, grantId));
    return send(c, lot);
  },
);

const VoidInput = z.strictObject({ reason: ShortText.nullable().optional() }).openapi("VoidInput");

route(
  grants,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/grants/{grant_id}/void",
    summary: "Void a grant: its unspent, unheld remainder leaves by a grant.voided entry",
    request: {
      params: AccountIdParam.extend({ grant_id: Id }),
      body: { content: { "application/json": { schema: VoidInput } } },
    },
    responses: { 200: json(GrantResult), ...problems(400, 401, 403, 404, 409) },
  },
  async (c) => {
    requireRole(c, ["admin", "finance"]);
    const accountId = pathId(c, "account_id");
    const grantId = pathId(c, "grant_id");
    const input = validBody(c, VoidInput);
    return send(
      c,
      await ledgerOf(c, accountId).voidGrant(await opContext(c, accountId), grantId, input.reason ?? null),
    );
  },
);

const RefundInput = z
  .strictObject({
    refund_id: Id.optional(),
    amount: Amount.optional().openapi({ description: "Default: the unspent, unheld remainder" }),
    reason: ShortText,
  })
  .openapi("RefundInput");

const RefundResult = z.object({
  grant: GrantSchema,
  refund: z.object({
    refund_id: z.string(),
    grant_id: z.string(),
    amount: z.number().int(),
    cost: z.object({ amount: z.number().int(), currency: z.string() }).nullable(),
  }),
  balance: BalanceSchema,
});

route(
  grants,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/grants/{grant_id}/refund",
    summary: "Refund purchased credits: they leave by a grant.refunded entry with their cost",
    request: {
      params: AccountIdParam.extend({ grant_id: Id }),
      body: { content: { "application/json": { schema: RefundInput } }, required: true },
    },
    responses: { 200: json(RefundResult), ...problems(400, 401, 403, 404, 409, 503) },
  },
  async (c) => {
    requireRole(c, ["admin", "finance"]);
    const accountId = pathId(c, "account_id");
    const grantId = pathId(c, "grant_id");
    const input = validBody(c, RefundInput);
    const idem = idempotencyOf(c, input.refund_id, "refund_id");
    const req = { refundId: idem.key, grantId, amount: input.amount ?? null, reason: input.reason };
    return send(c, await ledgerOf(c, accountId).refund(await opContext(c, accountId), req, idem));
  },
);
