/**
 * Signed receipts: POST /v1/accounts/{account_id}/receipts issues one (a hold
 * plus an ES256 JWT), POST /v1/receipts/settle closes it with what was used,
 * GET /.well-known/jwks.json publishes the keys that verify them.
 */
import { z } from "@hono/zod-openapi";
import type { HoldRequest } from "../account/types";
import { ApiError } from "../errors";
import { MAX_AMOUNT } from "../ledger";
import { receiptKeys } from "../receipts/keys";
import { DEFAULT_AUDIENCE, signReceipt } from "../receipts/sign";
import { SETTLE_GRACE_SECONDS, verifyReceipt } from "../receipts/verify";
import { type AppContext, idempotencyOf, ledgerOf, opContext, pathId, requireRole, send, validBody } from "./context";
import { ChargeFields, RatingResultFields, resolveCharge } from "./meters";
import { resource, route } from "./route";
import { AccountIdParam, AppliedMore, AppliedSchema, BalanceSchema, Id, json, problems } from "./schemas";
import { requireAccountInScope } from "./scope";
import { ConvertedSchema, ConvertFlag, conversionsInto } from "./units";

export const ReceiptInputSchema = z
  .strictObject({
    receipt_id: Id.optional(),
    ...ChargeFields,
    convert: ConvertFlag,
    ttl_seconds: z.number().int().min(1).max(3600).default(60),
    audience: z
      .string()
      .regex(/^[\x21-\x7e]{1,256}$/, "1-256 printable ASCII characters")
      .default(DEFAULT_AUDIENCE),
  })
  .openapi("ReceiptInput");

export const ReceiptCreatedSchema = z
  .object({
    receipt_id: z.string(),
    receipt: z
      .string()
      .openapi({ description: "ES256 JWT: kid in the header; iss, sub, aud, jti, iat, exp, amt, unit" }),
    amount: z.number().int(),
    unit: z.string(),
    ...RatingResultFields,
    expires_at: z.string(),
    applied: AppliedSchema,
    applied_more: AppliedMore,
    converted: ConvertedSchema,
    balance: BalanceSchema,
  })
  .openapi("ReceiptCreated");

export const SettleInputSchema = z
  .strictObject({
    receipt: z.string().min(1).max(8192),
    used: z.number().int().min(0).max(MAX_AMOUNT).openapi({ description: "0..amt" }),
  })
  .openapi("SettleInput");

export const SettleResultSchema = z
  .object({ receipt_id: z.string(), used: z.number().int(), released: z.number().int(), balance: BalanceSchema })
  .openapi("SettleResult");

export const JwksSchema = z
  .object({
    keys: z.array(
      z.object({
        kty: z.literal("EC"),
        crv: z.literal("P-256"),
        x: z.string(),
        y: z.string(),
        kid: z.string(),
        alg: z.literal("ES256"),
        use: z.literal("sig"),
      }),
    ),
  })
  .openapi("Jwks");

const issuerOf = (c: AppContext): string => c.env.RECEIPT_ISSUER || "credit-gate";

export const receipts = resource();

route(
  receipts,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/receipts",
    summary: "Reserve credits and sign a short-lived receipt for offline use",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: ReceiptInputSchema } }, required: true },
    },
    responses: { 201: json(ReceiptCreatedSchema, "Created"), ...problems(400, 401, 402, 403, 404, 409, 413, 415) },
  },
  async (c) => {
    requireRole(c, ["admin", "gateway"]);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, ReceiptInputSchema);
    const idem = idempotencyOf(c, input.receipt_id, "receipt_id");
    const charge = await resolveCharge(c, input);
    const conversions = input.convert ? await conversionsInto(c, charge.unit) : undefined;
    const issuedAtS = Math.floor(Date.now() / 1000);
    const expiresAtS = issuedAtS + input.ttl_seconds;
    // Signed before the hold so a signing failure never leaves credits held.
    // On an idempotent replay the ledger serves the first token and this one is dropped unseen.
    const token = await signReceipt(await receiptKeys(c.env.RECEIPT_SIGNING_KEYS), issuerOf(c), {
      accountId,
      receiptId: idem.key,
      amount: charge.amount,
      unit: charge.unit,
      audience: input.audience,
      issuedAtS,
      expiresAtS,
    });
    const req: HoldRequest = {
      id: idem.key,
      ...charge,
      ttlSeconds: input.ttl_seconds,
      receipt: { token, expiresAtMs: expiresAtS * 1000, settleGraceMs: SETTLE_GRACE_SECONDS * 1000 },
      ...(conversions ? { conversions } : {}),
    };
    return send(c, await ledgerOf(c, accountId).hold(await opContext(c, accountId), req, idem, "receipt"));
  },
);

route(
  receipts,
  {
    method: "post",
    path: "/v1/receipts/settle",
    summary: "Settle a receipt: capture `used`, release the rest (once; the same `used` replays)",
    request: { body: { content: { "application/json": { schema: SettleInputSchema } }, required: true } },
    responses: { 200: json(SettleResultSchema), ...problems(400, 401, 403, 404, 409, 413, 415) },
  },
  async (c) => {
    requireRole(c, ["admin", "gateway"]);
    const input = validBody(c, SettleInputSchema);
    const keys = await receiptKeys(c.env.RECEIPT_SIGNING_KEYS);
    const receipt = await verifyReceipt(keys, issuerOf(c), input.receipt);
    if (input.used > receipt.amount) {
      throw new ApiError("invalid_amount", `used ${input.used} exceeds the receipt's amt ${receipt.amount}`);
    }
    await requireAccountInScope(c, receipt.accountId);
    const ctx = await opContext(c, receipt.accountId);
    return send(c, await ledgerOf(c, receipt.accountId).settleReceipt(ctx, receipt.receiptId, input.used));
  },
);

route(
  receipts,
  {
    method: "get",
    path: "/.well-known/jwks.json",
    summary: "Public keys that verify receipts (no auth; cacheable for 300 s)",
    security: [],
    responses: { 200: json(JwksSchema) },
  },
  async (c) => {
    const keys = await receiptKeys(c.env.RECEIPT_SIGNING_KEYS);
    c.header("cache-control", "public, max-age=300");
    return c.json(keys.jwks);
  },
);
