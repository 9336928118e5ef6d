import { LotBook } from "./lot-book";
import { spendable } from "./lots";
import { lotComparator, type Policy } from "./policy";
import {
  type Applied,
  assert,
  type EntryDraft,
  type EntryKind,
  err,
  type LedgerError,
  type Lot,
  ok,
  type Result,
} from "./types";

/** Lots to draw from: the account's book (indexed) or any plain list of lots. */
export type LotSource = Iterable<Lot> | LotBook;

export interface Take {
  lot: Lot;
  amount: number;
}

/**
 * Picks what to take from live lots, in the policy's order, for `amount` of
 * `unit`. All or nothing: when the live unheld total is short, nothing is
 * taken and the refusal says what was available.
 */
export function pickLots(
  lots: LotSource,
  unit: string,
  amount: number,
  policy: Policy,
  nowMs: number,
): Result<Take[], LedgerError> {
  // The account's book answers from its index (lot-book.ts); a plain list is filtered and sorted here.
  if (lots instanceof LotBook) return lots.pick(unit, amount, policy, nowMs);
  const candidates: Lot[] = [];
  let available = 0;
  for (const lot of lots) {
    if (lot.unit !== unit) continue;
    const free = spendable(lot, nowMs);
    if (free > 0) {
      candidates.push(lot);
      available += free;
    }
  }
  if (available < amount) return err({ code: "insufficient_credits", available, requested: amount });
  candidates.sort(lotComparator(policy));
  const takes: Take[] = [];
  let left = amount;
  for (const lot of candidates) {
    if (left === 0) break;
    const n = Math.min(left, spendable(lot, nowMs));
    takes.push({ lot, amount: n });
    left -= n;
  }
  assert(left === 0, "pickLots: available covered the amount but the draw fell short");
  return ok(takes);
}

export interface DrawPlan {
  applied: Applied[];
  lots: Lot[];
  entries: EntryDraft[];
}

export interface DrawCommand {
  ref: string;
  unit: string;
  amount: number;
}

/**
 * A debit: consumes `amount` now, one entry per lot touched, in draw order.
 *
 * @example planDebit(lots, { ref: "req-1", unit: "credits", amount: 3 }, policy, now)
 */
export function planDebit(
  lots: LotSource,
  cmd: DrawCommand,
  policy: Policy,
  nowMs: number,
): Result<DrawPlan, LedgerError> {
  return planDraw(lots, cmd, policy, nowMs, "debit");
}

/** A hold (or receipt): reserves `amount`; lots keep it in `held`. */
export function planReserve(
  lots: LotSource,
  cmd: DrawCommand,
  policy: Policy,
  nowMs: number,
  kind: "hold" | "receipt",
): Result<DrawPlan, LedgerError> {
  return planDraw(lots, cmd, policy, nowMs, kind);
}

function planDraw(
  lots: LotSource,
  cmd: DrawCommand,
  policy: Policy,
  nowMs: number,
  kind: EntryKind & ("debit" | "hold" | "receipt"),
): Result<DrawPlan, LedgerError> {
  const picked = pickLots(lots, cmd.unit, cmd.amount, policy, nowMs);
  if (!picked.ok) return picked;
  const reserve = kind !== "debit";
  const plan: DrawPlan = { applied: [], lots: [], entries: [] };
  for (const { lot, amount } of picked.value) {
    plan.applied.push({ grantId: lot.grantId, type: lot.type, amount });
    plan.lots.push(reserve ? { ...lot, held: lot.held + amount } : { ...lot, remaining: lot.remaining - amount });
    plan.entries.push({
      kind,
      unit: cmd.unit,
      amount: reserve ? 0 : -amount,
      heldDelta: reserve ? amount : 0,
      grantId: lot.grantId,
      creditType: lot.type,
      ref: cmd.ref,
      reason: null,
      effectiveAtMs: nowMs,
    });
  }
  return ok(plan);
}
