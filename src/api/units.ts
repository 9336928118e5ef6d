/**
 * /v1/units and /v1/rates: the units an account may hold and the rates that
 * convert one into another (1 `from` = numerator/denominator `to`). Admin
 * writes, audited like policy changes; reads for every reader role.
 */
import { z } from "@hono/zod-openapi";
import { cachedRatesInto, deleteRate, listRates, listUnits, putRate, putUnit, RATES_MAX, UNITS_MAX } from "../db/units";
import { ApiError } from "../errors";
import { CONVERT_FROM_MAX, type ConversionSource } from "../ledger";
import { UNIT_PATTERN, UNIT_RULE } from "../ledger/ids";
import { recordChange } from "./audit";
import { type AppContext, READERS, requireRole, validBody } from "./context";
import { resource, route } from "./route";
import { Amount, AppliedMore, AppliedSchema, json, problems, ShortText, Unit } from "./schemas";
import { requireUnscoped } from "./scope";

/** The policy's `convert_from`: distinct units, at most CONVERT_FROM_MAX, tried in order. */
export const ConvertFrom = z
  .array(Unit)
  .max(CONVERT_FROM_MAX)
  .refine((a) => new Set(a).size === a.length, "no repeated units")
  .openapi({
    description:
      `Units a debit with \`convert: true\` may draw from, in order, once its own unit is spent (at most ${CONVERT_FROM_MAX}; ` +
      "each needs a rate to the debit's unit)",
  });

/** Largest scale of a unit: 18 decimal places (a wei-like denomination). */
export const UNIT_SCALE_MAX = 18;

const ListPriceSchema = z
  .strictObject({
    amount: Amount.openapi({ description: "Minor units of `currency` …" }),
    currency: z.string().regex(/^[A-Z]{3}$/, "an ISO 4217 code"),
    per: Amount.openapi({ description: "… per this many units" }),
  })
  .openapi("ListPrice");

const UnitInputSchema = z
  .strictObject({
    name: ShortText,
    scale: z.number().int().min(0).max(UNIT_SCALE_MAX).openapi({ description: "Decimal places shown, 0..18" }),
    list_price: ListPriceSchema.nullable().optional().openapi({
      description: "What `per` units list at: prices promotional and compensatory use in money in reports",
    }),
  })
  .openapi("UnitInput");

const UnitSchema = z
  .object({
    unit: z.string(),
    name: z.string(),
    scale: z.number().int(),
    list_price: z.object({ amount: z.number().int(), currency: z.string(), per: z.number().int() }).nullable(),
    created_at: z.string().nullable().openapi({ description: "null for `credits` before it was ever PUT" }),
    updated_at: z.string().nullable(),
  })
  .openapi("UnitDefinition");

/** A rate term: a positive safe integer. */
const RateTerm = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const RateInputSchema = z
  .strictObject({ numerator: RateTerm, denominator: RateTerm })
  .openapi("RateInput", { description: "1 `from` = numerator/denominator `to`" });

const RateSchema = z
  .object({
    from: z.string(),
    to: z.string(),
    numerator: z.number().int(),
    denominator: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Rate");

const UnitParam = z.object({ unit: Unit.openapi({ param: { name: "unit", in: "path" } }) });
const RateParams = z.object({
  from: Unit.openapi({ param: { name: "from", in: "path" } }),
  to: Unit.openapi({ param: { name: "to", in: "path" } }),
});

/** A unit in the path: 400 invalid_request unless it is a well-formed unit name. */
export function pathUnit(c: AppContext, name: string): string {
  const value = c.req.param(name);
  if (value === undefined || !UNIT_PATTERN.test(value))
    throw new ApiError("invalid_request", `${name} must be ${UNIT_RULE}`);
  return value;
}

function ratePath(c: AppContext): { from: string; to: string } {
  const from = pathUnit(c, "from");
  const to = pathUnit(c, "to");
  if (from === to) throw new ApiError("invalid_request", "a rate converts between two different units");
  return { from, to };
}

/** The `convert` flag of a debit, hold or receipt (API.md, Units, conversions and meters). */
export const ConvertFlag = z
  .boolean()
  .optional()
  .openapi({
    description:
      "Once the unit is spent, draw from lots in the units of the policy's `convert_from` that have a rate to it, " +
      "in that order (the amount drawn there rounded up); see `converted` in the answer",
  });

/** A converting debit's (hold's, receipt's) `converted` member: what it drew from each other unit (left out when none). */
export const ConvertedSchema = z
  .array(
    z.object({
      unit: z.string(),
      numerator: z.number().int(),
      denominator: z.number().int(),
      amount: z.number().int().openapi({ description: "Drawn from this unit's lots (rounded up)" }),
      covers: z.number().int().openapi({ description: "What it paid for, in the debit's unit" }),
      applied: AppliedSchema,
      applied_more: AppliedMore,
    }),
  )
  .optional()
  .openapi({
    description: "`convert: true` only, when other units were drawn; `applied` lists the debit unit's own lots",
  });

/** Every rate into `unit` (cached 4 s per isolate), as the account's converting draw takes them. */
export async function conversionsInto(c: AppContext, unit: string): Promise<ConversionSource[]> {
  const rates = await cachedRatesInto(c.env.DB, unit);
  return [...rates.values()].map((r) => ({
    unit: r.from,
    rate: { numerator: r.numerator, denominator: r.denominator },
  }));
}

export const units = resource();

route(
  units,
  {
    method: "put",
    path: "/v1/units/{unit}",
    summary: "Define or replace a unit",
    description: `At most ${UNITS_MAX} units. \`credits\` always exists; PUT it to rename or price it.`,
    request: {
      params: UnitParam,
      body: { content: { "application/json": { schema: UnitInputSchema } }, required: true },
    },
    responses: { 200: json(UnitSchema), 201: json(UnitSchema, "Created"), ...problems(400, 401, 403, 413, 415) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const unit = pathUnit(c, "unit");
    const input = validBody(c, UnitInputSchema);
    const outcome = await putUnit(c.env.DB, unit, input, Date.now());
    if (!outcome.ok) throw new ApiError("invalid_request", outcome.detail);
    await recordChange(c, {
      action: outcome.created ? "unit.created" : "unit.updated",
      target: unit,
      before: outcome.before,
      after: outcome.after,
    });
    return c.json(outcome.after, outcome.created ? 201 : 200);
  },
);

route(
  units,
  {
    method: "get",
    path: "/v1/units",
    summary: `Every unit, by name (at most ${UNITS_MAX})`,
    responses: { 200: json(z.object({ units: z.array(UnitSchema) })), ...problems(401, 403) },
  },
  async (c) => {
    requireRole(c, READERS);
    requireUnscoped(c);
    return c.json({ units: await listUnits(c.env.DB) });
  },
);

route(
  units,
  {
    method: "put",
    path: "/v1/rates/{from}/{to}",
    summary: "Set the rate 1 `from` = numerator/denominator `to`",
    description: `Both units must be defined and differ. At most ${RATES_MAX} rates.`,
    request: {
      params: RateParams,
      body: { content: { "application/json": { schema: RateInputSchema } }, required: true },
    },
    responses: { 200: json(RateSchema), 201: json(RateSchema, "Created"), ...problems(400, 401, 403, 413, 415) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const { from, to } = ratePath(c);
    const input = validBody(c, RateInputSchema);
    const outcome = await putRate(c.env.DB, from, to, input, Date.now());
    if (!outcome.ok) throw new ApiError("invalid_request", outcome.detail);
    await recordChange(c, {
      action: outcome.created ? "rate.created" : "rate.updated",
      target: `${from}:${to}`,
      before: outcome.before,
      after: outcome.after,
    });
    return c.json(outcome.after, outcome.created ? 201 : 200);
  },
);

route(
  units,
  {
    method: "get",
    path: "/v1/rates",
    summary: `Every rate, by (from, to) (at most ${RATES_MAX})`,
    responses: { 200: json(z.object({ rates: z.array(RateSchema) })), ...problems(401, 403) },
  },
  async (c) => {
    requireRole(c, READERS);
    requireUnscoped(c);
    return c.json({ rates: await listRates(c.env.DB) });
  },
);

route(
  units,
  {
    method: "delete",
    path: "/v1/rates/{from}/{to}",
    summary: "Remove a rate: the two units no longer convert that way",
    request: { params: RateParams },
    responses: { 200: json(RateSchema, "The rate removed"), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const { from, to } = ratePath(c);
    const removed = await deleteRate(c.env.DB, from, to);
    if (!removed) throw new ApiError("not_found", `no rate from ${from} to ${to}`);
    await recordChange(c, { action: "rate.deleted", target: `${from}:${to}`, before: removed, after: null });
    return c.json(removed);
  },
);
