import { totalRemaining } from "./lots";
import {
  type CostBasis,
  type CreditType,
  type EntryDraft,
  err,
  type LedgerError,
  type Lot,
  MAX_ACCOUNT_TOTAL,
  MAX_AMOUNT,
  ok,
  type Result,
} from "./types";

export interface GrantCommand {
  grantId: string;
  unit: string;
  type: CreditType;
  amount: number;
  priority: number;
  /** null: effective now. */
  effectiveAtMs: number | null;
  expiresAtMs: number | null;
  source: string | null;
  reason: string | null;
  campaign: string | null;
  incidentId: string | null;
  costBasis: CostBasis | null;
  metadata: Record<string, string> | null;
  sourceGrantId: string | null;
}

export interface GrantPlan {
  lot: Lot;
  entries: EntryDraft[];
}

/**
 * Issues a lot. Rules: amount within range, expiry after both the start and
 * now, a reason on compensatory credits, cost basis only on purchased credits,
 * and the account's unit total within MAX_ACCOUNT_TOTAL.
 *
 * @example planGrant(lots, { grantId: "g1", amount: 100, type: "promotional", ... }, 3, now)
 */
export function planGrant(
  lots: Iterable<Lot>,
  cmd: GrantCommand,
  createdOrder: number,
  nowMs: number,
): Result<GrantPlan, LedgerError> {
  if (!Number.isSafeInteger(cmd.amount) || cmd.amount < 1 || cmd.amount > MAX_AMOUNT) {
    return err({ code: "invalid_amount", detail: "amount must be an integer from 1 to 10^15" });
  }
  const effectiveAtMs = cmd.effectiveAtMs ?? nowMs;
  if (cmd.expiresAtMs !== null) {
    if (cmd.expiresAtMs <= effectiveAtMs) {
      return err({ code: "invalid_request", detail: "expires_at must be after effective_at" });
    }
    if (cmd.expiresAtMs <= nowMs) {
      return err({ code: "invalid_request", detail: "expires_at must be in the future" });
    }
  }
  if (cmd.type === "compensatory" && !cmd.reason) {
    return err({ code: "invalid_request", detail: "compensatory grants require a reason" });
  }
  if (cmd.costBasis !== null && cmd.type !== "purchased") {
    return err({ code: "invalid_request", detail: "cost_basis is for purchased grants only" });
  }
  if (totalRemaining(lots, cmd.unit) + cmd.amount > MAX_ACCOUNT_TOTAL) {
    return err({ code: "invalid_amount", detail: "the account's total in this unit may not exceed 9*10^15" });
  }
  const lot: Lot = {
    grantId: cmd.grantId,
    unit: cmd.unit,
    type: cmd.type,
    amount: cmd.amount,
    priority: cmd.priority,
    effectiveAtMs,
    expiresAtMs: cmd.expiresAtMs,
    source: cmd.source,
    reason: cmd.reason,
    campaign: cmd.campaign,
    incidentId: cmd.incidentId,
    costBasis: cmd.costBasis,
    metadata: cmd.metadata,
    sourceGrantId: cmd.sourceGrantId,
    createdAtMs: nowMs,
    createdOrder,
    remaining: cmd.amount,
    held: 0,
    voidedAtMs: null,
  };
  const entry: EntryDraft = {
    kind: cmd.sourceGrantId !== null ? "transfer.in" : "grant",
    unit: cmd.unit,
    amount: cmd.amount,
    heldDelta: 0,
    grantId: cmd.grantId,
    creditType: cmd.type,
    ref: null,
    reason: cmd.reason,
    effectiveAtMs,
  };
  return ok({ lot, entries: [entry] });
}
