/**
 * Grants awaiting payment: a grant recorded but not issued. It writes no
 * entry and is never spendable until it is activated (then it is issued by
 * planGrant, dated at activation) or cancelled (then it is dropped). Pure
 * rules: no Cloudflare imports, no clock of its own.
 *
 *   awaiting_payment ──activate──▶ activated
 *          └─────────cancel────▶ cancelled
 *
 * Repeating the transition a record already took is the same result; the
 * other transition after either is `grant_closed`.
 */
import type { GrantCommand } from "./grant";
import { err, type LedgerError, ok, type Result } from "./types";

export const AWAITING_STATUSES = ["awaiting_payment", "activated", "cancelled"] as const;
export type AwaitingStatus = (typeof AWAITING_STATUSES)[number];

/** An account holds at most this many grants awaiting payment at once (open records, in memory). */
export const AWAITING_OPEN_MAX = 1000;
/** `payment_ref` and a cancellation's `reason`: at most this many characters. */
export const AWAITING_TEXT_MAX = 256;

const DAY_MS = 86_400_000;

export interface AwaitingGrant {
  grantId: string;
  /** The grant as asked (its effective_at and expires_at as sent; null: at activation / never). */
  command: GrantCommand;
  /** Top-up grants only: the lot expires this many days after activation. */
  expiresInDays: number | null;
  /** true when an automatic top-up rule created it (src/ledger/topup.ts). */
  topup: boolean;
  status: AwaitingStatus;
  createdAtMs: number;
  /** When it was activated or cancelled (null while awaiting payment). */
  closedAtMs: number | null;
  paymentRef: string | null;
  cancelReason: string | null;
}

export type Transition = "activate" | "cancel";

/** What a transition asked of a record: do it now, or it was already done (replay its first answer). */
export type TransitionPlan = { kind: "apply"; record: AwaitingGrant } | { kind: "repeat" };

const closedBy: Record<Transition, AwaitingStatus> = { activate: "activated", cancel: "cancelled" };

/**
 * Checks a transition against the record's status. The same transition
 * again is a repeat (the caller serves its first answer); the other one is
 * `grant_closed`.
 *
 * @example planTransition(rec, "activate", { paymentRef: "pi_1" }, now) // {ok, value: {kind: "apply", record}}
 */
export function planTransition(
  rec: AwaitingGrant,
  transition: Transition,
  detail: { paymentRef?: string | null; reason?: string | null },
  nowMs: number,
): Result<TransitionPlan, LedgerError> {
  const target = closedBy[transition];
  if (rec.status === target) return ok({ kind: "repeat" });
  if (rec.status !== "awaiting_payment") {
    return err({ code: "grant_closed", detail: `grant ${rec.grantId} is already ${rec.status}` });
  }
  const record: AwaitingGrant = {
    ...rec,
    status: target,
    closedAtMs: nowMs,
    paymentRef: transition === "activate" ? (detail.paymentRef ?? null) : rec.paymentRef,
    cancelReason: transition === "cancel" ? (detail.reason ?? null) : rec.cancelReason,
  };
  return ok({ kind: "apply", record });
}

/**
 * The grant an activation issues: effective at activation (a future
 * effective_at as sent is kept: the lot is then pending until it), and a
 * top-up's `expires_in_days` counted from activation. An explicit expires_at
 * already past is refused with `grant_closed`: the record stays awaiting
 * payment and can be cancelled.
 */
export function activationCommand(rec: AwaitingGrant, nowMs: number): Result<GrantCommand, LedgerError> {
  const cmd = rec.command;
  const effectiveAtMs = Math.max(cmd.effectiveAtMs ?? nowMs, nowMs);
  const expiresAtMs = rec.expiresInDays !== null ? nowMs + rec.expiresInDays * DAY_MS : cmd.expiresAtMs;
  if (expiresAtMs !== null && expiresAtMs <= effectiveAtMs) {
    return err({
      code: "grant_closed",
      detail: `grant ${rec.grantId} expires_at has passed; it cannot be activated, cancel it and issue a new one`,
    });
  }
  return ok({ ...cmd, effectiveAtMs, expiresAtMs });
}
