/** /v1/accounts/{account_id}/holds: two-phase reservations. */
import { z } from "@hono/zod-openapi";
import {
  BALANCE_READERS,
  idempotencyOf,
  ledgerOf,
  opContext,
  pathId,
  requireRole,
  send,
  validBody,
  validQuery,
} from "./context";
import { ChargeFields, RatingResultFields, resolveCharge } from "./meters";
import { resource, route } from "./route";
import {
  AccountIdParam,
  AppliedMore,
  AppliedSchema,
  BalanceSchema,
  Id,
  json,
  Limit,
  problems,
  TimeIdCursor,
} from "./schemas";
import { ConvertedSchema, ConvertFlag, conversionsInto } from "./units";

export const HoldInputSchema = z
  .strictObject({
    hold_id: Id.optional(),
    ...ChargeFields,
    convert: ConvertFlag,
    ttl_seconds: z.number().int().min(1).max(86_400).default(300),
  })
  .openapi("HoldInput");

const HoldCreated = z.object({
  hold_id: z.string(),
  amount: z.number().int(),
  unit: z.string(),
  ...RatingResultFields,
  status: z.literal("open"),
  expires_at: z.string(),
  applied: AppliedSchema,
  applied_more: AppliedMore,
  converted: ConvertedSchema,
  balance: BalanceSchema,
});
const CaptureInput = z.strictObject({ amount: z.number().int().min(0).max(1e15).optional() }).openapi("CaptureInput");
const ReleaseInput = z.strictObject({}).openapi("ReleaseInput");
const Closed = z.object({
  hold_id: z.string(),
  status: z.enum(["captured", "released"]),
  captured: z.number().int().optional(),
  released: z.number().int(),
  balance: BalanceSchema,
});
const HoldParams = AccountIdParam.extend({ hold_id: Id });

export const holds = resource();

route(
  holds,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/holds",
    summary: "Reserve credits until capture, release or the deadline",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: HoldInputSchema } }, required: true },
    },
    responses: { 201: json(HoldCreated, "Created"), ...problems(400, 401, 402, 403, 404, 409) },
  },
  async (c) => {
    requireRole(c, ["admin", "gateway"]);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, HoldInputSchema);
    const idem = idempotencyOf(c, input.hold_id, "hold_id");
    const charge = await resolveCharge(c, input);
    const conversions = input.convert ? await conversionsInto(c, charge.unit) : undefined;
    const req = { id: idem.key, ...charge, ttlSeconds: input.ttl_seconds, ...(conversions ? { conversions } : {}) };
    return send(c, await ledgerOf(c, accountId).hold(await opContext(c, accountId), req, idem, "hold"));
  },
);

for (const action of ["capture", "release"] as const) {
  route(
    holds,
    {
      method: "post",
      path: `/v1/accounts/{account_id}/holds/{hold_id}/${action}`,
      summary: action === "capture" ? "Capture up to the held amount; the rest is released" : "Release a hold",
      request: {
        params: HoldParams,
        body: { content: { "application/json": { schema: action === "capture" ? CaptureInput : ReleaseInput } } },
      },
      responses: { 200: json(Closed), ...problems(400, 401, 403, 404, 409) },
    },
    async (c) => {
      requireRole(c, ["admin", "gateway"]);
      const accountId = pathId(c, "account_id");
      const holdId = pathId(c, "hold_id");
      let capture: number | null = null;
      if (action === "capture") capture = validBody(c, CaptureInput).amount ?? null;
      else validBody(c, ReleaseInput);
      const ctx = await opContext(c, accountId);
      return send(c, await ledgerOf(c, accountId).closeHold(ctx, holdId, action, capture));
    },
  );
}

const HoldListQuery = z.strictObject({ cursor: TimeIdCursor.optional(), limit: Limit(1000, 100) });

route(
  holds,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/holds",
    summary: "Open holds and receipts, oldest first, a page at a time",
    request: { params: AccountIdParam, query: HoldListQuery },
    responses: {
      200: json(
        z.object({
          holds: z.array(z.object({ hold_id: z.string(), kind: z.enum(["hold", "receipt"]) }).passthrough()),
          next_cursor: z.string().nullable(),
        }),
      ),
      ...problems(400, 401, 404),
    },
  },
  async (c) => {
    requireRole(c, BALANCE_READERS);
    const accountId = pathId(c, "account_id");
    const q = validQuery(c, HoldListQuery);
    const ctx = await opContext(c, accountId);
    return send(c, await ledgerOf(c, accountId).listHolds(ctx, q.cursor ?? null, q.limit));
  },
);

route(
  holds,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/holds/{hold_id}",
    summary: "A hold's state",
    request: { params: HoldParams },
    responses: {
      200: json(z.object({ hold_id: z.string(), status: z.string() }).passthrough()),
      ...problems(400, 401, 404),
    },
  },
  async (c) => {
    requireRole(c, BALANCE_READERS);
    const accountId = pathId(c, "account_id");
    const holdId = pathId(c, "hold_id");
    return send(c, await ledgerOf(c, accountId).holdStatus(await opContext(c, accountId), holdId));
  },
);
