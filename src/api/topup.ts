/**
 * /v1/accounts/{account_id}/top-up: the automatic top-up rule of one unit
 * (src/account/topup.ts). When an operation leaves `available` below
 * `below`, the account's Durable Object creates, in that same transaction,
 * one grant awaiting payment (`topup.<n>`) and a `topup.requested` alert;
 * one outstanding at a time, never more than `max_per_month` a UTC month.
 *
 * Four eyes: a rule's `amount` is a grant's (each request becomes a grant of
 * it once paid), so a PUT whose amount is above the account's `grant`
 * approval threshold is stored as a pending approval (kind `top_up`) and
 * applied only when another admin or finance key approves it.
 */
import { z } from "@hono/zod-openapi";
import { ledgerStub } from "../account/stub";
import type { Outcome } from "../account/types";
import { ApiError } from "../errors";
import { ruleHash, TOPUP_EXPIRES_DAYS_MAX } from "../ledger/topup";
import { ApprovalPendingSchema, askApproval } from "./approval-gate";
import { recordChange, recordChangeBy } from "./audit";
import { type Caller, ledgerOf, pathId, READERS, requireRole, send, validBody, validQuery } from "./context";
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
    revision: z.number().int().openapi({
      description: "Moves on with every PUT and DELETE of the unit's rule (an approval names the one it replaces)",
    }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("TopUp");

const UnitQuery = z.strictObject({ unit: Unit.default("credits") });

type TopUpBody = z.infer<typeof TopUpInputSchema>;

/** The hash of a body's terms (ruleHash): the same rule however the JSON was written. */
export function bodyRuleHash(body: TopUpBody): string {
  return ruleHash({
    unit: body.unit,
    below: body.below,
    amount: body.amount,
    maxPerMonth: body.max_per_month ?? null,
    grant: {
      type: "purchased",
      costBasis: body.grant.cost_basis ?? null,
      expiresInDays: body.grant.expires_in_days ?? null,
    },
  });
}

/**
 * The approval's request key: `<unit>@<revision it replaces>:<hash of the terms>`.
 * A repeat of the same PUT while the rule is unchanged answers the same
 * approval; other terms, or the same terms once the rule moved on, ask anew.
 */
export const topUpRequestKey = (unit: string, revision: number, hash: string) => `${unit}@${revision}:${hash}`;

/** The revision an approved request was asked against (from its request key). */
export function askedRevision(requestKey: string): number {
  const m = /@(\d+):[0-9a-f]{64}$/.exec(requestKey);
  if (!m) throw new ApiError("invalid_request", `approval request key ${requestKey} names no revision`);
  return Number(m[1]);
}

/** A rule as served by the DO, or, when there is none (or it was deleted), its unit row's revision. */
async function currentRule(
  env: Env,
  accountId: string,
  unit: string,
): Promise<{ rule: Record<string, unknown> | null; revision: number; missing: Outcome | null }> {
  const out = await ledgerStub(env, accountId).getTopUp(accountId, unit);
  if (out.ok) {
    const rule = out.body as Record<string, unknown>;
    return { rule, revision: Number(rule.revision), missing: null };
  }
  const revision = out.problem.code === "not_found" ? Number(out.problem.extra?.revision ?? 0) : 0;
  return { rule: null, revision, missing: out.problem.code === "not_found" ? null : out };
}

/** A refusal as served: a missing rule's 404 without the revision the DO adds for the route. */
function served(out: Outcome): Outcome {
  if (out.ok || out.problem.code !== "not_found") return out;
  return { ok: false, problem: { code: out.problem.code, detail: out.problem.detail } };
}

/** A validated PUT: what the route runs, and what an approval stores and runs later. */
export interface TopUpRun {
  accountId: string;
  body: TopUpBody;
  /** Set by an approved request: the revision it was asked against (see TopUpInput.expect_revision). */
  expectRevision?: number;
}

/**
 * Sets a rule on `caller`'s authority (its role checked again here) and
 * audits it (`top_up.updated`, before/after): the route's work without an
 * HTTP context, so an approved request (src/api/approvals.ts) runs the same.
 */
export async function runTopUp(env: Env, caller: Caller, req: TopUpRun, requestId: string): Promise<Outcome> {
  if (!(TOPUP_WRITERS as readonly string[]).includes(caller.role)) {
    return { ok: false, problem: { code: "forbidden", detail: "only admin and finance keys set top-up rules" } };
  }
  const { accountId, body } = req;
  const before = await currentRule(env, accountId, body.unit);
  const input = req.expectRevision === undefined ? body : { ...body, expect_revision: req.expectRevision };
  const out = await ledgerStub(env, accountId).putTopUp(accountId, input);
  if (out.ok && !out.replayed) {
    await recordChangeBy(
      env.DB,
      { actor: caller.actor, requestId },
      { action: "top_up.updated", target: `${accountId}:${body.unit}`, before: before.rule, after: out.body },
    );
  }
  return out;
}

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
    responses: {
      200: json(TopUpSchema),
      202: json(
        ApprovalPendingSchema,
        "Pending: amount above the grant approval threshold; nothing set until approved",
      ),
      ...problems(400, 401, 403, 404, 409, 413, 415),
    },
  },
  async (c) => {
    requireRole(c, TOPUP_WRITERS);
    const accountId = pathId(c, "account_id");
    const body = validBody(c, TopUpInputSchema);
    const current = await currentRule(c.env, accountId, body.unit);
    if (current.missing) return send(c, current.missing);
    const hash = bodyRuleHash(body);
    // Each request becomes a grant of `amount`: above the grant threshold, the rule waits for a second key.
    const pending = await askApproval(c, {
      kind: "top_up",
      scope: accountId,
      idem: { key: topUpRequestKey(body.unit, current.revision, hash), bodyHash: hash },
      method: "PUT",
      path: `/v1/accounts/${accountId}/top-up`,
      policyAccount: accountId,
      whenMissing: "run",
      unit: body.unit,
      amount: body.amount,
      accounts: 1,
      // The rule already stands as asked (a threshold set since): setting it again changes nothing.
      ran: async () => current.rule !== null && viewHash(current.rule) === hash,
      // The rule's own rules, before it waits for a second key (the account checks them again when it runs).
      check: () => {
        if (body.max_per_month != null && body.amount > body.max_per_month) {
          throw new ApiError("invalid_request", "amount is above max_per_month: no top-up could ever be requested");
        }
      },
    });
    if (pending) return pending;
    return send(c, await runTopUp(c.env, c.get("caller"), { accountId, body }, c.get("requestId")));
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
    return send(c, served(await ledgerOf(c, accountId).getTopUp(accountId, q.unit)));
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
    return send(c, served(out));
  },
);

/** The hash of a rule as served (its terms; see bodyRuleHash). */
function viewHash(v: Record<string, unknown>): string {
  const grant = v.grant as { cost_basis: TopUpBody["grant"]["cost_basis"]; expires_in_days: number | null };
  return ruleHash({
    unit: String(v.unit),
    below: Number(v.below),
    amount: Number(v.amount),
    maxPerMonth: v.max_per_month === null ? null : Number(v.max_per_month),
    grant: { type: "purchased", costBasis: grant.cost_basis ?? null, expiresInDays: grant.expires_in_days },
  });
}
