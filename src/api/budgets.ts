/**
 * /v1/accounts/{account_id}/budget: a department's budget of draws from its
 * parent (src/account/budget.ts), and /v1/reports/drawdown, what children
 * drew and consumed per period (from D1's daily journal rollups).
 */
import { z } from "@hono/zod-openapi";
import { drawdownRows, MAX_DRAWDOWN_CHILDREN, saveBudget } from "../db/transfers";
import { ApiError } from "../errors";
import { BUDGET_PERIODS } from "../ledger/budget";
import { MAX_PERIODS, PERIODS, periodsOf } from "../reports/periods";
import { recordChange } from "./audit";
import { type AppContext, ledgerOf, pathId, READERS, requireRole, send, validBody, validQuery } from "./context";
import { REPORT_READERS } from "./reports";
import { resource, route } from "./route";
import { AccountIdParam, Amount, Id, json, parseTime, problems, Time, Unit } from "./schemas";
import { requireAccountInScope } from "./scope";

/** Who may set and remove budgets. */
export const BUDGET_WRITERS = ["admin", "finance"] as const;

export const BudgetInputSchema = z
  .strictObject({
    unit: Unit.default("credits"),
    period: z.enum(BUDGET_PERIODS),
    limit: Amount.openapi({ description: "Credits the child may draw from its parent per period" }),
  })
  .openapi("BudgetInput");

export const BudgetSchema = z
  .object({
    unit: z.string(),
    period: z.enum(BUDGET_PERIODS),
    limit: z.number().int(),
    used: z.number().int().openapi({ description: "Drawn from the parent this period (draws in flight count)" }),
    remaining: z.number().int(),
    period_start: z.string(),
  })
  .openapi("Budget");

/** The body, with a bad `limit` refused as invalid_amount like any other amount (a missing one: invalid_request). */
function budgetInput(c: AppContext) {
  try {
    return validBody(c, BudgetInputSchema);
  } catch (e) {
    if (
      e instanceof ApiError &&
      e.code === "invalid_request" &&
      e.message.startsWith("limit:") &&
      !e.message.includes("received undefined")
    ) {
      throw new ApiError("invalid_amount", e.message);
    }
    throw e;
  }
}

/**
 * A budget draws from the account's parent. A scoped key's own scope account
 * has its parent outside the key's tree, so the key may not set or remove
 * that budget: it would spend credits it cannot even see.
 */
function requireParentInScope(c: AppContext, accountId: string): void {
  if (c.get("caller").accountScope === accountId) {
    throw new ApiError(
      "forbidden",
      "a budget draws from the parent account, outside this key's scope; an unscoped key must set it",
    );
  }
}

export const budgets = resource();

const budgetPath = "/v1/accounts/{account_id}/budget";

route(
  budgets,
  {
    method: "put",
    path: budgetPath,
    summary: "Set a child account's budget of draws from its parent's lots",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: BudgetInputSchema } }, required: true },
    },
    responses: { 200: json(BudgetSchema), ...problems(400, 401, 403, 404, 413, 415) },
  },
  async (c) => {
    requireRole(c, BUDGET_WRITERS);
    const accountId = pathId(c, "account_id");
    requireParentInScope(c, accountId);
    const input = budgetInput(c);
    const stub = ledgerOf(c, accountId);
    const before = await stub.getBudget(accountId);
    const out = await stub.putBudget(accountId, input);
    // Mirrored for the drawdown report even without a parent yet ("" until it has one): the report finds it by child.
    if (out.ok) {
      const parentId = (await stub.getAccount())?.parent_id ?? "";
      await saveBudget(c.env.DB, accountId, parentId, input, Date.now());
      await recordChange(c, {
        action: "budget.updated",
        target: accountId,
        before: before.ok ? before.body : null,
        after: out.body,
      });
    }
    return send(c, out);
  },
);

route(
  budgets,
  {
    method: "get",
    path: budgetPath,
    summary: "A child account's budget: limit, used and remaining this period",
    request: { params: AccountIdParam },
    responses: { 200: json(BudgetSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    return send(c, await ledgerOf(c, accountId).getBudget(accountId));
  },
);

route(
  budgets,
  {
    method: "delete",
    path: budgetPath,
    summary: "Remove a child account's budget: it no longer draws from its parent",
    request: { params: AccountIdParam },
    responses: { 200: json(BudgetSchema.extend({ deleted: z.literal(true) })), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, BUDGET_WRITERS);
    const accountId = pathId(c, "account_id");
    requireParentInScope(c, accountId);
    const stub = ledgerOf(c, accountId);
    const out = await stub.deleteBudget(accountId);
    if (out.ok) {
      await saveBudget(c.env.DB, accountId, "", null, Date.now());
      const { deleted: _, ...removed } = out.body as Record<string, unknown>;
      await recordChange(c, { action: "budget.deleted", target: accountId, before: removed, after: null });
    }
    return send(c, out);
  },
);

const DrawdownQuery = z.strictObject({
  parent_id: Id,
  unit: Unit.default("credits"),
  period: z.enum(PERIODS).default("month"),
  from: Time.openapi({ description: "Start, inclusive: a period boundary (UTC midnight; the 1st for months)" }),
  to: Time.openapi({ description: `End, exclusive: at most ${MAX_PERIODS} periods after from` }),
});

const DrawdownSchema = z
  .object({
    parent_id: z.string(),
    unit: z.string(),
    period: z.enum(PERIODS),
    periods: z.array(
      z.object({
        start: z.string(),
        end: z.string(),
        children: z.array(
          z.object({
            account_id: z.string(),
            drawn: z.number().int().openapi({ description: "Drawn from the parent under the budget" }),
            consumed: z.number().int().openapi({ description: "Consumed by the child, whatever lots it used" }),
            budget: z.object({ unit: z.string(), period: z.string(), limit: z.number().int() }).nullable(),
          }),
        ),
      }),
    ),
    children_more: z.boolean().openapi({ description: `true past ${MAX_DRAWDOWN_CHILDREN} children (by id)` }),
  })
  .openapi("Drawdown");

route(
  budgets,
  {
    method: "get",
    path: "/v1/reports/drawdown",
    summary: "Per period and child: credits drawn from the parent, consumed, and the budget",
    request: { query: DrawdownQuery },
    responses: { 200: json(DrawdownSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, REPORT_READERS);
    const q = validQuery(c, DrawdownQuery);
    await requireAccountInScope(c, q.parent_id);
    const spans = periodsOf(parseTime(q.from) as number, parseTime(q.to) as number, q.period);
    if (!spans.ok) throw new ApiError("invalid_request", spans.detail);
    const first = spans.spans[0];
    const last = spans.spans[spans.spans.length - 1];
    if (first === undefined || last === undefined) throw new ApiError("invalid_request", "from must be before to");
    const data = await drawdownRows(c.env.DB, q.parent_id, q.unit, first.startMs, last.endMs);
    const budgetOf = new Map(
      data.budgets.map((b) => [b.accountId, { unit: b.unit, period: b.period, limit: b.limit }]),
    );
    // One pass over the rows: each day lands in the period holding it (spans are sorted and contiguous).
    const sums = new Map<string, { drawn: number; consumed: number }>();
    for (const r of data.rows) {
      const at = spanIndex(spans.spans, Number(r.day_ms));
      if (at < 0) continue;
      const key = `${at}|${r.account_id}`;
      const sum = sums.get(key) ?? { drawn: 0, consumed: 0 };
      sum.drawn += Number(r.drawn);
      sum.consumed += Number(r.consumed);
      sums.set(key, sum);
    }
    const periods = spans.spans.map((s, i) => ({
      start: new Date(s.startMs).toISOString(),
      end: new Date(s.endMs).toISOString(),
      children: data.children.map((id) => ({
        account_id: id,
        ...(sums.get(`${i}|${id}`) ?? { drawn: 0, consumed: 0 }),
        budget: budgetOf.get(id) ?? null,
      })),
    }));
    return c.json({ parent_id: q.parent_id, unit: q.unit, period: q.period, periods, children_more: data.more });
  },
);

/** The index of the span holding `ms` (binary search), or -1. */
function spanIndex(spans: readonly { startMs: number; endMs: number }[], ms: number): number {
  let lo = 0;
  let hi = spans.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = spans[mid];
    if (s === undefined) return -1;
    if (ms < s.startMs) hi = mid - 1;
    else if (ms >= s.endMs) lo = mid + 1;
    else return mid;
  }
  return -1;
}
