/**
 * Invoices: credits applied at finalization, line by line, and reinstated
 * by a void. Only live credit applies (effective, unexpired, unheld), in the
 * policy's consumption order.
 */
import { type LotSource, pickLots } from "./draw";
import { LotBook } from "./lot-book";
import { balanceOf } from "./lots";
import type { Policy } from "./policy";
import { type Applied, assert, type EntryDraft, type Lot } from "./types";

/** Lines per invoice. */
export const INVOICE_LINES_MAX = 100;

export interface InvoiceLine {
  description: string | null;
  unit: string;
  amount: number;
}

export interface CoveredLine extends InvoiceLine {
  creditsApplied: number;
  amountDue: number;
}

export interface InvoicePlan {
  lines: CoveredLine[];
  applied: Applied[];
  lots: Lot[];
  entries: EntryDraft[];
}

/**
 * Covers the lines in order with what the account has live now: each line
 * takes min(its amount, what is left), and `amount_due` is the rest. One
 * `invoice` entry per lot drawn, ref = the invoice id.
 * @example planInvoice(lots, "inv-7", lines, policy, now) // lines[0].creditsApplied = 300, amountDue = 200
 */
export function planInvoice(
  lots: LotSource,
  invoiceId: string,
  lines: readonly InvoiceLine[],
  policy: Policy,
  nowMs: number,
): InvoicePlan {
  const unit = lines[0]?.unit ?? "credits";
  const list = lots instanceof LotBook ? null : [...lots];
  let available = list === null ? (lots as LotBook).available(unit, nowMs) : balanceOf(list, unit, nowMs).available;
  const covered = lines.map((line): CoveredLine => {
    const creditsApplied = Math.min(line.amount, available);
    available -= creditsApplied;
    return { ...line, creditsApplied, amountDue: line.amount - creditsApplied };
  });
  const left = covered.reduce((s, l) => s + l.creditsApplied, 0);
  const plan: InvoicePlan = { lines: covered, applied: [], lots: [], entries: [] };
  const picked = pickLots(list ?? lots, unit, left, policy, nowMs);
  assert(picked.ok, "planInvoice: the live total covered the lines but the draw fell short");
  for (const { lot, amount: n } of picked.value) {
    plan.applied.push({ grantId: lot.grantId, type: lot.type, amount: n });
    plan.lots.push({ ...lot, remaining: lot.remaining - n });
    plan.entries.push({
      kind: "invoice",
      unit,
      amount: -n,
      heldDelta: 0,
      grantId: lot.grantId,
      creditType: lot.type,
      ref: invoiceId,
      reason: null,
      effectiveAtMs: nowMs,
    });
  }
  return plan;
}

export interface ReversalPlan {
  lots: Lot[];
  entries: EntryDraft[];
}

/**
 * Voids an invoice: what it took from each lot goes back by an
 * `invoice.reversal` entry; what lands in a lot that has since expired or
 * been voided leaves again at once by its own entry (`grant.expired`, dated
 * at the lot's expiry, or `grant.voided`).
 */
export function planInvoiceVoid(
  lotsById: ReadonlyMap<string, Lot>,
  invoiceId: string,
  applied: readonly Applied[],
  reason: string | null,
  nowMs: number,
): ReversalPlan {
  const plan: ReversalPlan = { lots: [], entries: [] };
  const touched = new Map<string, Lot>();
  for (const a of applied) {
    const lot = touched.get(a.grantId) ?? lotsById.get(a.grantId);
    assert(lot !== undefined, `invoice ${invoiceId} references unknown lot ${a.grantId}`);
    const base = { unit: lot.unit, grantId: lot.grantId, creditType: lot.type, heldDelta: 0 };
    plan.entries.push({
      ...base,
      kind: "invoice.reversal",
      amount: a.amount,
      ref: invoiceId,
      reason,
      effectiveAtMs: nowMs,
    });
    let next: Lot = { ...lot, remaining: lot.remaining + a.amount };
    const expired = lot.expiresAtMs !== null && lot.expiresAtMs <= nowMs;
    if (lot.voidedAtMs !== null || expired) {
      const kind = lot.voidedAtMs !== null ? "grant.voided" : "grant.expired";
      const effectiveAtMs = kind === "grant.expired" && lot.expiresAtMs !== null ? lot.expiresAtMs : nowMs;
      plan.entries.push({ ...base, kind, amount: -a.amount, ref: null, reason: null, effectiveAtMs });
      next = { ...next, remaining: next.remaining - a.amount };
    }
    touched.set(lot.grantId, next);
  }
  plan.lots = [...touched.values()];
  return plan;
}
