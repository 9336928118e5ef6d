/** Invoices and refunds on one account: credits applied or returned in one commit with their record. */
import {
  type Applied,
  appliedView,
  type CoveredLine,
  type InvoiceLine,
  iso,
  type LotBook,
  planInvoice,
  planInvoiceVoid,
  planRefund,
  WRITE_APPLIED_MAX,
} from "../ledger";
import type { AwaitingGrant } from "../ledger/awaiting";
import { type AccountCore, POLICY_UNKNOWN } from "./core";
import { type InvoiceRecord, readInvoice, readInvoiceAllocations, refundApplied } from "./storage";
import type { Idempotency, Json, OpContext, Outcome } from "./types";
import { answer, balanceJson, fromLedgerError, grantBody, missingAccount, refuse } from "./views";

/** The invoice as served: its lines with what credits covered, the lots drawn (first WRITE_APPLIED_MAX), the balance. */
function invoiceBody(
  accountId: string,
  r: Omit<InvoiceRecord, "txnId">,
  applied: readonly Applied[],
  appliedTotal: number,
  nowMs: number,
  lots: LotBook,
  awaiting: Iterable<AwaitingGrant>,
) {
  return {
    invoice_id: r.invoiceId,
    status: r.status,
    unit: r.unit,
    lines: r.lines.map((l: CoveredLine) => ({
      description: l.description,
      unit: l.unit,
      amount: l.amount,
      credits_applied: l.creditsApplied,
      amount_due: l.amountDue,
    })),
    credits_applied: r.lines.reduce((s, l) => s + l.creditsApplied, 0),
    amount_due: r.lines.reduce((s, l) => s + l.amountDue, 0),
    ...appliedView(applied, WRITE_APPLIED_MAX),
    applied_more: appliedTotal > WRITE_APPLIED_MAX,
    created_at: iso(r.createdAtMs),
    voided_at: r.voidedAtMs === null ? null : iso(r.voidedAtMs),
    void_reason: r.voidReason,
    balance: balanceJson(accountId, r.unit, nowMs, lots, awaiting),
  };
}

/** Finalizes an invoice: live credits cover its lines in order, in the same transaction that records it. */
export function createInvoice(
  core: AccountCore,
  ctx: OpContext,
  invoiceId: string,
  lines: readonly InvoiceLine[],
  idem: Idempotency,
): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  const first = core.recall("invoice", idem);
  if (first) return first;
  if (readInvoice(core.sql, invoiceId)) {
    return refuse({ code: "idempotency_conflict", detail: `invoice ${invoiceId} already exists` });
  }
  const policy = core.policy(ctx);
  if (policy === null || core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  const nowMs = core.now();
  const plan = planInvoice(core.lots, invoiceId, lines, policy, nowMs);
  const record = {
    invoiceId,
    unit: lines[0]?.unit ?? "credits",
    lines: plan.lines,
    status: "finalized" as const,
    createdAtMs: nowMs,
    voidedAtMs: null,
    voidReason: null,
  };
  return core.commit(
    { ctx, lots: plan.lots, entries: plan.entries, invoice: { record, applied: plan.applied } },
    nowMs,
    (lots) =>
      invoiceBody(ctx.accountId, record, plan.applied, plan.applied.length, nowMs, lots, core.awaitingOpen.values()),
    { scope: "invoice", idem, status: 201 },
  );
}

export function getInvoice(core: AccountCore, accountId: string, invoiceId: string): Outcome {
  if (core.account === null) return missingAccount(accountId);
  const r = readInvoice(core.sql, invoiceId);
  if (!r) return refuse({ code: "invoice_not_found", detail: `invoice ${invoiceId} does not exist` });
  const applied = readInvoiceAllocations(core.sql, invoiceId, WRITE_APPLIED_MAX + 1);
  return answer(invoiceBody(accountId, r, applied, applied.length, core.now(), core.lots, core.awaitingOpen.values()));
}

/** Bounds how many lots one void reads back at a time (an invoice may have drawn from many). */
const VOID_ALLOCATION_PAGE = 10_000;

/**
 * Voids an invoice: every credit it took goes back to its lot by an
 * `invoice.reversal` entry, and leaves again at once where the lot has since
 * expired or been voided. Voiding again returns the first result.
 */
export function voidInvoice(core: AccountCore, ctx: OpContext, invoiceId: string, reason: string | null): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  const idem = { key: invoiceId, bodyHash: "" };
  const first = core.recall("invoice.void", idem);
  if (first) return first;
  const r = readInvoice(core.sql, invoiceId);
  if (!r) return refuse({ code: "invoice_not_found", detail: `invoice ${invoiceId} does not exist` });
  if (r.status === "voided") {
    return refuse({ code: "idempotency_conflict", detail: `invoice ${invoiceId} was already voided` });
  }
  if (core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  const applied: Applied[] = [];
  for (let offset = 0; ; offset += VOID_ALLOCATION_PAGE) {
    const page = readInvoiceAllocations(core.sql, invoiceId, VOID_ALLOCATION_PAGE, offset);
    applied.push(...page);
    if (page.length < VOID_ALLOCATION_PAGE) break;
  }
  const nowMs = core.now();
  const plan = planInvoiceVoid(core.lots, invoiceId, applied, reason, nowMs);
  const record = { ...r, status: "voided" as const, voidedAtMs: nowMs, voidReason: reason };
  return core.commit(
    { ctx, lots: plan.lots, entries: plan.entries, invoice: { record } },
    nowMs,
    (lots) => invoiceBody(ctx.accountId, record, applied, applied.length, nowMs, lots, core.awaitingOpen.values()),
    { scope: "invoice.void", idem, status: 200 },
  );
}

export interface RefundRequest {
  refundId: string;
  grantId: string;
  amount: number | null;
  reason: string | null;
}

/** Refunds purchased credits of one lot; the cost leaves deferred revenue by the cumulative rule. */
export function refund(core: AccountCore, ctx: OpContext, req: RefundRequest, idem: Idempotency): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  const first = core.recall("refund", idem);
  if (first) return first;
  // Past the idempotency retention the record is gone but the entry is not: never refund twice.
  if (refundApplied(core.sql, req.refundId)) {
    return refuse({ code: "idempotency_conflict", detail: `refund ${req.refundId} was already applied` });
  }
  if (core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  const lot = core.lots.get(req.grantId);
  if (!lot) return refuse({ code: "grant_not_found", detail: `grant ${req.grantId} does not exist` });
  const nowMs = core.now();
  const planned = planRefund(lot, req.refundId, req.amount, req.reason, nowMs);
  if (!planned.ok) return refuse(fromLedgerError(planned.error));
  const { lot: next, entries, amount, costMinor } = planned.value;
  const cost = lot.costBasis === null ? null : { amount: costMinor, currency: lot.costBasis.currency };
  return core.commit(
    { ctx, lots: [next], entries },
    nowMs,
    (lots) => ({
      ...grantBody(ctx.accountId, next, next.unit, nowMs, lots, core.awaitingOpen.values()),
      refund: { refund_id: req.refundId, grant_id: req.grantId, amount, cost } as Json,
    }),
    { scope: "refund", idem, status: 200 },
  );
}
