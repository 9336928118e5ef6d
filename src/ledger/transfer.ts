/**
 * Transfers between accounts, as pure rules: which source lots give, the
 * slices they give (each keeping its lot's type, priority, expiry and a pro
 * rata share of its cost basis), and the lots those slices become on the
 * receiving account. Budget draws (a child drawing from its parent) use the
 * same two halves. No I/O: the Durable Objects persist what these return.
 *
 * Cost: a slice carries exactly what the cumulative rule (money.ts) moves
 * out of its lot at the moment the credits leave, so the source's
 * `transfer.out` journal row and the destination's new cost basis are the
 * same minor units.
 */
import { type LotSource, pickLots } from "./draw";
import { sha256Hex } from "./hash";
import { ID_PATTERN } from "./ids";
import { totalRemaining } from "./lots";
import { movementCost } from "./money";
import type { Policy } from "./policy";
import {
  assert,
  type CostBasis,
  type CreditType,
  type EntryDraft,
  err,
  type LedgerError,
  type Lot,
  MAX_ACCOUNT_TOTAL,
  ok,
  type Result,
} from "./types";

/**
 * Most source lots one transfer (or draw) may take from: the slices travel in
 * one RPC and one stored record, and each becomes a lot on the destination.
 */
export const MAX_TRANSFER_SLICES = 1000;

/** What one source lot gives: enough to rebuild it, pro rata, on the other side. */
export interface TransferSlice {
  sourceGrantId: string;
  unit: string;
  type: CreditType;
  amount: number;
  priority: number;
  effectiveAtMs: number;
  expiresAtMs: number | null;
  campaign: string | null;
  incidentId: string | null;
  /** The share of the source lot's cost that left with these credits (tax stays with the purchase). */
  costBasis: CostBasis | null;
}

export interface TransferOutCommand {
  /** The transfer id (or draw id): every entry's `ref`. */
  ref: string;
  unit: string;
  amount: number;
  reason: string | null;
}

export interface TransferOutPlan {
  slices: TransferSlice[];
  lots: Lot[];
  entries: EntryDraft[];
}

/**
 * The credits leave the source now, in the policy's consumption order: one
 * `transfer.out` entry per lot, all or nothing.
 *
 * @example planTransferOut(lots, { ref: "t1", unit: "credits", amount: 50, reason: null }, policy, now)
 */
export function planTransferOut(
  lots: LotSource,
  cmd: TransferOutCommand,
  policy: Policy,
  nowMs: number,
  maxSlices = MAX_TRANSFER_SLICES,
): Result<TransferOutPlan, LedgerError> {
  const picked = pickLots(lots, cmd.unit, cmd.amount, policy, nowMs);
  if (!picked.ok) return picked;
  if (picked.value.length > maxSlices) {
    return err({
      code: "invalid_request",
      detail: `a transfer may draw from at most ${maxSlices} lots; this one needs ${picked.value.length}: move less at a time`,
    });
  }
  const plan: TransferOutPlan = { slices: [], lots: [], entries: [] };
  for (const { lot, amount } of picked.value) {
    const after = lot.remaining - amount;
    const cost = movementCost(lot, lot.remaining, after);
    plan.slices.push({
      sourceGrantId: lot.grantId,
      unit: lot.unit,
      type: lot.type,
      amount,
      priority: lot.priority,
      effectiveAtMs: lot.effectiveAtMs,
      expiresAtMs: lot.expiresAtMs,
      campaign: lot.campaign,
      incidentId: lot.incidentId,
      costBasis: lot.costBasis === null ? null : { amount: cost, currency: lot.costBasis.currency },
    });
    plan.lots.push({ ...lot, remaining: after });
    plan.entries.push({
      kind: "transfer.out",
      unit: cmd.unit,
      amount: -amount,
      heldDelta: 0,
      grantId: lot.grantId,
      creditType: lot.type,
      ref: cmd.ref,
      reason: cmd.reason,
      effectiveAtMs: nowMs,
    });
  }
  return ok(plan);
}

/**
 * The id of the lot slice `index` of transfer `ref` becomes: `<ref>.<index>`
 * while that is a valid id, else a hash of the ref (ids stay ≤ 128 chars).
 * `tag` tells the lots a cancelled transfer returns to its source ("r").
 */
export function transferLotId(ref: string, index: number, tag = ""): string {
  const plain = `${ref}.${tag}${index}`;
  return ID_PATTERN.test(plain) ? plain : `xfer_${sha256Hex(ref).slice(0, 40)}.${tag}${index}`;
}

export interface TransferInCommand {
  ref: string;
  reason: string | null;
  slices: readonly TransferSlice[];
  /** See transferLotId: "" on the destination, "r" for credits returned to the source. */
  tag?: string;
  /** The new lots' `source`: TRANSFER_SOURCE, or BUDGET_DRAW_SOURCE for a child's draw. */
  source?: string;
}

export const TRANSFER_SOURCE = "transfer";
/** Lots a child drew from its parent's under its budget: reports tell them apart by this source. */
export const BUDGET_DRAW_SOURCE = "budget_draw";

export interface TransferInPlan {
  lots: Lot[];
  entries: EntryDraft[];
}

/**
 * The slices become lots of the receiving account: same type, priority,
 * effective time and expiry, the slice's cost as their whole cost basis, the
 * source lot as `sourceGrantId`; one `transfer.in` entry each. Refused when
 * the account's total would pass MAX_ACCOUNT_TOTAL, or a lot id is taken.
 */
export function planTransferIn(
  lots: ReadonlyMap<string, Lot>,
  cmd: TransferInCommand,
  nextCreatedOrder: number,
  nowMs: number,
): Result<TransferInPlan, LedgerError> {
  const plan: TransferInPlan = { lots: [], entries: [] };
  const added = new Map<string, number>();
  cmd.slices.forEach((s, i) => {
    assert(Number.isSafeInteger(s.amount) && s.amount > 0, `slice ${i} of ${cmd.ref} has no credits`);
    added.set(s.unit, (added.get(s.unit) ?? 0) + s.amount);
  });
  for (const [unit, amount] of added) {
    if (totalRemaining(lots.values(), unit) + amount > MAX_ACCOUNT_TOTAL) {
      return err({ code: "invalid_amount", detail: "the account's total in this unit may not exceed 9*10^15" });
    }
  }
  for (const [i, s] of cmd.slices.entries()) {
    const grantId = transferLotId(cmd.ref, i, cmd.tag);
    if (lots.has(grantId)) {
      return err({ code: "invalid_request", detail: `lot ${grantId} already exists on the receiving account` });
    }
    plan.lots.push({
      grantId,
      unit: s.unit,
      type: s.type,
      amount: s.amount,
      priority: s.priority,
      effectiveAtMs: s.effectiveAtMs,
      expiresAtMs: s.expiresAtMs,
      source: cmd.source ?? TRANSFER_SOURCE,
      reason: cmd.reason,
      campaign: s.campaign,
      incidentId: s.incidentId,
      costBasis: s.costBasis,
      metadata: null,
      sourceGrantId: s.sourceGrantId,
      createdAtMs: nowMs,
      createdOrder: nextCreatedOrder + i,
      remaining: s.amount,
      held: 0,
      voidedAtMs: null,
    });
    plan.entries.push({
      kind: "transfer.in",
      unit: s.unit,
      amount: s.amount,
      heldDelta: 0,
      grantId,
      creditType: s.type,
      ref: cmd.ref,
      reason: cmd.reason,
      effectiveAtMs: nowMs,
    });
  }
  return ok(plan);
}

/** Roles that may move credits between accounts with no common root. */
export const CROSS_TREE_TRANSFER_ROLES: readonly string[] = ["admin", "finance"];

/**
 * Guardrails of a transfer, before anything moves: the key's
 * `max_transfer_amount`, and that only admin or finance cross from one
 * account tree to another. `roots` are the two accounts' roots (an account
 * the directory does not know yet is its own root).
 */
export function transferGuard(
  role: string,
  maxTransferAmount: number | null,
  amount: number,
  roots: { from: string; to: string },
): { code: "grant_limit_exceeded" | "forbidden"; detail: string } | null {
  if (maxTransferAmount !== null && amount > maxTransferAmount) {
    return {
      code: "grant_limit_exceeded",
      detail: `amount ${amount} is above this key's max_transfer_amount ${maxTransferAmount}`,
    };
  }
  if (roots.from !== roots.to && !CROSS_TREE_TRANSFER_ROLES.includes(role)) {
    return { code: "forbidden", detail: `role ${role} may not transfer between accounts with no common root` };
  }
  return null;
}
