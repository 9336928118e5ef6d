/**
 * /v1/accounts/{account_id}/recurring-grants: allowances issued every day,
 * week, month or year by the account's Durable Object (src/account/recurring.ts),
 * with rollover of the unspent remainder. The route validates, asks the DO,
 * then mirrors the schedule to D1 for the cron's backstop and audits it.
 */
import { z } from "@hono/zod-openapi";
import type { RecurringInput } from "../account/recurring";
import { RECURRING_MAX_PER_ACCOUNT } from "../account/recurring";
import { ledgerStub } from "../account/stub";
import type { Idempotency, OpContext, Outcome } from "../account/types";
import { cancelRecurringRow, saveRecurring } from "../db/recurring";
import { loadGlobalPolicy } from "../db/settings";
import { ApiError } from "../errors";
import {
  type BoundarySpec,
  RECURRING_DEFAULT_ROLLOVER_PERIODS,
  RECURRING_EXPIRES,
  RECURRING_INTERVALS,
  RECURRING_MAX_ROLLOVER_PERIODS,
} from "../ledger/recurring";
import { askApproval } from "./approval-gate";
import { recordChange, recordChangeBy } from "./audit";
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
} from "./context";
import { resource, route } from "./route";
import {
  AccountIdParam,
  Amount,
  CreditTypeSchema,
  Id,
  json,
  parseTime,
  problems,
  ShortText,
  Time,
  Unit,
} from "./schemas";

/** Who may create and cancel recurring grants. */
export const RECURRING_WRITERS = ["admin", "finance"] as const;

const RolloverInput = z
  .strictObject({
    max_amount: Amount.optional().openapi({ description: "At most this much moves on each period; absent: all" }),
    max_periods: z
      .number()
      .int()
      .min(1)
      .max(RECURRING_MAX_ROLLOVER_PERIODS)
      .default(RECURRING_DEFAULT_ROLLOVER_PERIODS)
      .openapi({ description: `Periods the rolled credits last, 1..${RECURRING_MAX_ROLLOVER_PERIODS}` }),
  })
  .openapi("RolloverRule");

export const RecurringInputSchema = z
  .strictObject({
    recurring_id: Id.optional(),
    amount: Amount,
    type: CreditTypeSchema,
    unit: Unit.default("credits"),
    interval: z.enum(RECURRING_INTERVALS),
    starts_at: Time.optional().openapi({ description: "Start of the first period; default: now" }),
    ends_at: Time.nullable().optional().openapi({ description: "No period starts at or after this time" }),
    priority: z.number().int().min(0).max(1_000_000).default(100),
    source: ShortText.nullable().optional(),
    reason: ShortText.nullable().optional(),
    expires: z.enum(RECURRING_EXPIRES),
    rollover: RolloverInput.nullable().optional(),
  })
  .openapi("RecurringGrantInput");

export const RecurringGrantSchema = z
  .object({
    recurring_id: z.string(),
    account_id: z.string(),
    amount: z.number().int(),
    unit: z.string(),
    type: CreditTypeSchema,
    interval: z.enum(RECURRING_INTERVALS),
    starts_at: z.string(),
    ends_at: z.string().nullable(),
    priority: z.number().int(),
    source: z.string().nullable(),
    reason: z.string().nullable(),
    expires: z.enum(RECURRING_EXPIRES),
    rollover: z.object({ max_amount: z.number().int().nullable(), max_periods: z.number().int() }).nullable(),
    status: z.enum(["active", "cancelled"]),
    periods_issued: z.number().int(),
    next_period_at: z.string().nullable(),
    created_at: z.string(),
    cancelled_at: z.string().nullable(),
  })
  .openapi("RecurringGrant");

type RecurringView = z.infer<typeof RecurringGrantSchema>;

/** The DO's input for a validated body; the rules zod cannot say are refused here as invalid_request. */
function recurringInput(recurringId: string, body: z.infer<typeof RecurringInputSchema>): RecurringInput {
  if (recurringId.length > RECURRING_ID_MAX) {
    throw new ApiError(
      "invalid_request",
      `recurring_id: at most ${RECURRING_ID_MAX} characters (its lots add ".<n>.rollover")`,
    );
  }
  const startsAtMs = body.starts_at === undefined ? null : (parseTime(body.starts_at) as number);
  const endsAtMs = body.ends_at == null ? null : (parseTime(body.ends_at) as number);
  if (startsAtMs !== null && startsAtMs < 0) throw new ApiError("invalid_request", "starts_at: before 1970");
  if (startsAtMs !== null && endsAtMs !== null && endsAtMs <= startsAtMs) {
    throw new ApiError("invalid_request", "ends_at must be after starts_at");
  }
  if (body.rollover != null && body.expires !== "end_of_period") {
    throw new ApiError(
      "invalid_request",
      "rollover needs expires: end_of_period (credits that never expire never roll over)",
    );
  }
  if (body.type === "compensatory" && !body.reason) {
    throw new ApiError("invalid_request", "compensatory grants require a reason");
  }
  return {
    recurringId,
    unit: body.unit,
    type: body.type,
    amount: body.amount,
    interval: body.interval,
    startsAtMs,
    endsAtMs,
    priority: body.priority,
    source: body.source ?? null,
    reason: body.reason ?? null,
    expires: body.expires,
    rollover:
      body.rollover == null
        ? null
        : { maxAmount: body.rollover.max_amount ?? null, maxPeriods: body.rollover.max_periods },
  };
}

/** What D1's backstop row needs, from the schedule the DO served. */
function boundarySpec(v: RecurringView): BoundarySpec {
  return {
    recurringId: v.recurring_id,
    interval: v.interval,
    startsAtMs: Date.parse(v.starts_at),
    endsAtMs: v.ends_at === null ? null : Date.parse(v.ends_at),
    expires: v.expires,
  };
}

const auditTarget = (accountId: string, recurringId: string) => `${accountId}:${recurringId}`;

/** Longest recurring_id: its lots' ids (`<recurring_id>.<n>.rollover`) must stay within the 128-character id rule. */
export const RECURRING_ID_MAX = 100;

/** A validated schedule request: what the route runs, and what an approval stores and runs later. */
export interface RecurringRun {
  accountId: string;
  body: z.infer<typeof RecurringInputSchema>;
  idem: Idempotency;
}

const systemCtx = (accountId: string, requestId: string): OpContext => ({
  accountId,
  actor: "system:approval",
  requestId,
  globalPolicy: null,
});

/**
 * Creates a validated schedule on `caller`'s authority (its role is checked
 * again here), then its D1 backstop row and its audit row: the route's work
 * without an HTTP context, so an approved request (src/api/approvals.ts) runs the same.
 */
export async function runRecurringGrant(
  env: Env,
  caller: Caller,
  req: RecurringRun,
  requestId: string,
): Promise<Outcome> {
  if (!(RECURRING_WRITERS as readonly string[]).includes(caller.role)) {
    return { ok: false, problem: { code: "forbidden", detail: "only admin and finance keys create recurring grants" } };
  }
  const { accountId, idem } = req;
  let input: RecurringInput;
  try {
    input = recurringInput(idem.key, req.body);
  } catch (e) {
    if (e instanceof ApiError) return { ok: false, problem: e.problem };
    throw e;
  }
  const ctx: OpContext = { accountId, actor: caller.actor, requestId, globalPolicy: await loadGlobalPolicy(env.DB) };
  const out = await ledgerStub(env, accountId).createRecurring(ctx, input, idem.bodyHash);
  if (out.ok) {
    const view = out.body as unknown as RecurringView;
    // Written again on a replay: a first attempt whose D1 write failed is completed by its retry.
    await saveRecurring(env.DB, accountId, boundarySpec(view), Date.now());
    if (!out.replayed) {
      await recordChangeBy(
        env.DB,
        { actor: caller.actor, requestId },
        { action: "recurring_grant.created", target: auditTarget(accountId, idem.key), before: null, after: out.body },
      );
    }
  }
  return out;
}

export const recurring = resource();

const listPath = "/v1/accounts/{account_id}/recurring-grants";

route(
  recurring,
  {
    method: "post",
    path: listPath,
    summary: "Create a recurring grant (an allowance issued every period, with optional rollover)",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: RecurringInputSchema } }, required: true },
    },
    responses: {
      201: json(RecurringGrantSchema, "Created (a repeat with the same body replays it)"),
      ...problems(400, 401, 403, 404, 409, 413, 415),
    },
  },
  async (c) => {
    requireRole(c, RECURRING_WRITERS);
    const accountId = pathId(c, "account_id");
    const body = validBody(c, RecurringInputSchema);
    const idem = idempotencyOf(c, body.recurring_id, "recurring_id");
    const req: RecurringRun = { accountId, body, idem };
    recurringInput(idem.key, body); // its rules, before anything is stored for approval
    // Each period issues a grant of `amount`: above the grant threshold, it waits for a second key.
    const pending = await askApproval(c, {
      kind: "recurring_grant",
      scope: accountId,
      idem,
      path: `/v1/accounts/${accountId}/recurring-grants`,
      policyAccount: accountId,
      whenMissing: "run",
      unit: body.unit,
      amount: body.amount,
      accounts: 1,
      ran: async (env) => {
        const list = await ledgerStub(env, accountId).listRecurring(systemCtx(accountId, "approval"));
        const found = list.ok ? (list.body as { recurring_grants: { recurring_id: string }[] }).recurring_grants : [];
        return found.some((r) => r.recurring_id === idem.key);
      },
    });
    if (pending) return pending;
    return send(c, await runRecurringGrant(c.env, c.get("caller"), req, c.get("requestId")));
  },
);

route(
  recurring,
  {
    method: "get",
    path: listPath,
    summary: `An account's recurring grants, active and cancelled (at most ${RECURRING_MAX_PER_ACCOUNT})`,
    request: { params: AccountIdParam },
    responses: {
      200: json(z.object({ recurring_grants: z.array(RecurringGrantSchema) })),
      ...problems(400, 401, 403, 404),
    },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    return send(c, await ledgerOf(c, accountId).listRecurring(await opContext(c, accountId)));
  },
);

route(
  recurring,
  {
    method: "delete",
    path: `${listPath}/{recurring_id}`,
    summary: "Cancel a recurring grant: no more periods; issued lots stay (and still roll over)",
    request: {
      params: AccountIdParam.extend({ recurring_id: Id.openapi({ param: { name: "recurring_id", in: "path" } }) }),
    },
    responses: { 200: json(RecurringGrantSchema), ...problems(400, 401, 403, 404) },
  },
  async (c: AppContext) => {
    requireRole(c, RECURRING_WRITERS);
    const accountId = pathId(c, "account_id");
    const recurringId = pathId(c, "recurring_id");
    const out = await ledgerOf(c, accountId).cancelRecurring(await opContext(c, accountId), recurringId);
    if (out.ok) {
      const view = out.body as unknown as RecurringView;
      await cancelRecurringRow(c.env.DB, accountId, boundarySpec(view), view.periods_issued, Date.now());
      if (!out.replayed) {
        const { status: _s, cancelled_at: _c, ...kept } = view;
        await recordChange(c, {
          action: "recurring_grant.cancelled",
          target: auditTarget(accountId, recurringId),
          before: { ...kept, status: "active", cancelled_at: null },
          after: out.body,
        });
      }
    }
    return send(c, out);
  },
);
