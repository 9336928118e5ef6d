/**
 * /v1/meters: what a metered debit (hold, receipt) costs. A meter prices
 * `quantity` at `amount` units per `per`, rounded up per request
 * (src/ledger/meter.ts); every new price is a new version and past versions
 * stay, so an entry's `rating` can always be explained.
 */
import { z } from "@hono/zod-openapi";
import {
  getMeter,
  listMeters,
  METER_HISTORY_MAX,
  METER_LIST_MAX,
  METERS_MAX,
  priceUsage,
  putMeter,
} from "../db/meters";
import { ApiError } from "../errors";
import { DEFAULT_UNIT, type EntryRating, MAX_QUANTITY } from "../ledger";
import { recordChange } from "./audit";
import { type AppContext, pathId, READERS, requireRole, validBody } from "./context";
import { resource, route } from "./route";
import { Amount, Id, json, problems, Unit } from "./schemas";
import { requireUnscoped } from "./scope";

/**
 * The members a debit, hold or receipt body takes for its charge: `amount`,
 * or `meter` and `quantity` (exactly one of the two); `unit` defaults to
 * `credits`, or to the meter's unit for a metered request.
 */
export const ChargeFields = {
  amount: Amount.optional().openapi({ description: "Integer 1..10^15; or send `meter` and `quantity` instead" }),
  unit: Unit.optional().openapi({
    description: "Default `credits`; a metered request is in the meter's unit (naming another is 400)",
  }),
  meter: Id.optional().openapi({
    description: "Price the request with this meter (with `quantity`, instead of `amount`)",
  }),
  quantity: z
    .number()
    .int()
    .min(1)
    .max(MAX_QUANTITY)
    .optional()
    .openapi({ description: "How much was used, a positive safe integer: costs ceil(quantity · amount / per)" }),
};

/** What a debit, hold or receipt draws once its charge is resolved. */
export interface Charge {
  amount: number;
  unit: string;
  rating?: EntryRating;
}

/**
 * Resolves a body's charge: a plain `amount`, or a meter's current price
 * applied to `quantity` (src/db/meters.ts, cached per isolate for 4 s).
 * 400 `invalid_request` for both or neither, an unknown meter, or a `unit`
 * other than the meter's; 400 `invalid_amount` when the priced amount
 * would pass 10^15.
 */
export async function resolveCharge(
  c: AppContext,
  input: {
    amount?: number | undefined;
    unit?: string | undefined;
    meter?: string | undefined;
    quantity?: number | undefined;
  },
): Promise<Charge> {
  const metered = input.meter !== undefined || input.quantity !== undefined;
  if (input.amount !== undefined) {
    if (metered) throw new ApiError("invalid_request", "send amount, or meter and quantity, not both");
    return { amount: input.amount, unit: input.unit ?? DEFAULT_UNIT };
  }
  if (input.meter === undefined || input.quantity === undefined) {
    throw new ApiError(
      "invalid_request",
      metered ? "meter and quantity go together" : "amount (or meter and quantity) is required",
    );
  }
  const priced = await priceUsage(c.env.DB, input.meter, input.quantity);
  if (priced === null) throw new ApiError("invalid_request", `meter ${input.meter} does not exist`);
  if (input.unit !== undefined && input.unit !== priced.unit) {
    throw new ApiError("invalid_request", `meter ${input.meter} charges in ${priced.unit}, not ${input.unit}`);
  }
  return {
    amount: priced.amount,
    unit: priced.unit,
    rating: { meter: priced.meter, quantity: priced.quantity, price_version: priced.priceVersion },
  };
}

/** Beside `amount` in a metered result. */
export const RatingResultFields = {
  meter: z.string().optional().openapi({ description: "Metered requests only" }),
  quantity: z.number().int().optional(),
  price_version: z.number().int().optional().openapi({ description: "The meter version that priced `amount`" }),
};

const PriceSchema = z
  .strictObject({
    amount: Amount.openapi({ description: "Units of the meter's unit …" }),
    per: Amount.openapi({ description: "… per this much quantity; a request costs ceil(quantity · amount / per)" }),
  })
  .openapi("MeterPrice");

const MeterInputSchema = z
  .strictObject({
    unit: Unit.default("credits").openapi({ description: "What the meter charges in; fixed once the meter exists" }),
    price: PriceSchema,
  })
  .openapi("MeterInput");

const MeterVersionSchema = z
  .object({
    meter: z.string(),
    version: z.number().int().openapi({ description: "1 for the first price, +1 for each different price" }),
    unit: z.string(),
    price: z.object({ amount: z.number().int(), per: z.number().int() }),
    actor: z.string(),
    created_at: z.string(),
  })
  .openapi("MeterVersion");

const MeterSchema = MeterVersionSchema.extend({
  history: z
    .array(MeterVersionSchema)
    .openapi({ description: `Versions newest first, the current one included (at most ${METER_HISTORY_MAX})` }),
  history_more: z.boolean().openapi({ description: "true when older versions were left out" }),
}).openapi("Meter");

const MeterParam = z.object({ meter: Id.openapi({ param: { name: "meter", in: "path" } }) });

export const meters = resource();

route(
  meters,
  {
    method: "put",
    path: "/v1/meters/{meter}",
    summary: "Set a meter's price: a different price is a new version, the same price changes nothing",
    description:
      `At most ${METERS_MAX} meters. A new price applies to metered requests that start 5 s or more after ` +
      "the PUT returned (each isolate caches a meter's current version for 4 s).",
    request: {
      params: MeterParam,
      body: { content: { "application/json": { schema: MeterInputSchema } }, required: true },
    },
    responses: {
      200: json(MeterVersionSchema),
      201: json(MeterVersionSchema, "Created"),
      ...problems(400, 401, 403, 413, 415),
    },
  },
  async (c) => {
    const caller = requireRole(c, ["admin"]);
    requireUnscoped(c);
    const meter = pathId(c, "meter");
    const input = validBody(c, MeterInputSchema);
    const outcome = await putMeter(c.env.DB, meter, input, caller.actor, Date.now());
    if (!outcome.ok) throw new ApiError("invalid_request", outcome.detail);
    if (outcome.after !== outcome.before) {
      await recordChange(c, {
        action: outcome.created ? "meter.created" : "meter.updated",
        target: meter,
        before: outcome.before,
        after: outcome.after,
      });
    }
    return c.json(outcome.after, outcome.status);
  },
);

route(
  meters,
  {
    method: "get",
    path: "/v1/meters/{meter}",
    summary: "A meter's current price and its history",
    request: { params: MeterParam },
    responses: { 200: json(MeterSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    requireUnscoped(c);
    const meter = pathId(c, "meter");
    const found = await getMeter(c.env.DB, meter);
    if (!found) throw new ApiError("not_found", `meter ${meter} does not exist`);
    return c.json({ ...found.current, history: found.history, history_more: found.more });
  },
);

route(
  meters,
  {
    method: "get",
    path: "/v1/meters",
    summary: `Every meter's current version, by meter (at most ${METER_LIST_MAX})`,
    responses: { 200: json(z.object({ meters: z.array(MeterVersionSchema) })), ...problems(401, 403) },
  },
  async (c) => {
    requireRole(c, READERS);
    requireUnscoped(c);
    return c.json({ meters: await listMeters(c.env.DB) });
  },
);
