/** /v1/accounts/{account_id}/invoices: credits applied at finalization, and voided back. */
import { z } from "@hono/zod-openapi";
import { INVOICE_LINES_MAX } from "../ledger";
import { idempotencyOf, ledgerOf, opContext, pathId, READERS, requireRole, send, validBody } from "./context";
import { resource, route } from "./route";
import {
  AccountIdParam,
  Amount,
  AppliedMore,
  AppliedSchema,
  BalanceSchema,
  Id,
  json,
  problems,
  ShortText,
  Unit,
} from "./schemas";

const LineInput = z.strictObject({
  description: ShortText.nullable().optional(),
  unit: Unit.default("credits"),
  amount: Amount,
});

export const InvoiceInputSchema = z
  .strictObject({
    invoice_id: Id.optional(),
    lines: z
      .array(LineInput)
      .min(1)
      .max(INVOICE_LINES_MAX)
      .refine((lines) => new Set(lines.map((l) => l.unit)).size === 1, "all lines must be in one unit"),
  })
  .openapi("InvoiceInput");

export const InvoiceSchema = z
  .object({
    invoice_id: z.string(),
    status: z.enum(["finalized", "voided"]),
    unit: z.string(),
    lines: z.array(
      z.object({
        description: z.string().nullable(),
        unit: z.string(),
        amount: z.number().int(),
        credits_applied: z.number().int(),
        amount_due: z.number().int(),
      }),
    ),
    credits_applied: z.number().int(),
    amount_due: z.number().int(),
    applied: AppliedSchema,
    applied_more: AppliedMore,
    created_at: z.string(),
    voided_at: z.string().nullable(),
    void_reason: z.string().nullable(),
    balance: BalanceSchema,
  })
  .openapi("Invoice");

const InvoiceParams = AccountIdParam.extend({ invoice_id: Id });
const VoidInput = z.strictObject({ reason: ShortText.nullable().optional() }).openapi("InvoiceVoidInput");
const BILLERS = ["admin", "finance"] as const;

export const invoices = resource();

route(
  invoices,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/invoices",
    summary: "Finalize an invoice: live credits cover its lines in order, in the same transaction",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: InvoiceInputSchema } }, required: true },
    },
    responses: { 201: json(InvoiceSchema, "Created"), ...problems(400, 401, 403, 404, 409, 413, 415, 503) },
  },
  async (c) => {
    requireRole(c, BILLERS);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, InvoiceInputSchema);
    const idem = idempotencyOf(c, input.invoice_id, "invoice_id");
    const lines = input.lines.map((l) => ({ description: l.description ?? null, unit: l.unit, amount: l.amount }));
    const ctx = await opContext(c, accountId);
    return send(c, await ledgerOf(c, accountId).createInvoice(ctx, idem.key, lines, idem));
  },
);

route(
  invoices,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/invoices/{invoice_id}",
    summary: "An invoice with its current status",
    request: { params: InvoiceParams },
    responses: { 200: json(InvoiceSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    return send(c, await ledgerOf(c, accountId).getInvoice(accountId, pathId(c, "invoice_id")));
  },
);

route(
  invoices,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/invoices/{invoice_id}/void",
    summary: "Void an invoice: its credits go back to their lots by invoice.reversal entries",
    request: { params: InvoiceParams, body: { content: { "application/json": { schema: VoidInput } } } },
    responses: { 200: json(InvoiceSchema), ...problems(400, 401, 403, 404, 409, 503) },
  },
  async (c) => {
    requireRole(c, BILLERS);
    const accountId = pathId(c, "account_id");
    const invoiceId = pathId(c, "invoice_id");
    const input = validBody(c, VoidInput);
    const ctx = await opContext(c, accountId);
    return send(c, await ledgerOf(c, accountId).voidInvoice(ctx, invoiceId, input.reason ?? null));
  },
);
