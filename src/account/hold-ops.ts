/** Holds and receipts on one account: reserve, capture or release, settle. */
import {
  convertedView,
  type Hold,
  planCloseHold,
  planDebitMaybeConverting,
  WRITE_APPLIED_MAX,
  withRating,
} from "../ledger";
import { type AccountCore, POLICY_UNKNOWN, type Scope } from "./core";
import { openHold } from "./records";
import { holdRecorded, readHold, readIdempotency } from "./storage";
import type { HoldRequest, Idempotency, OpContext, Outcome } from "./types";
import { velocityGate } from "./velocity";
import {
  answer,
  balanceJson,
  closeView,
  fromLedgerError,
  missingAccount,
  refuse,
  reserveBody,
  settleBody,
} from "./views";

export function getHold(core: AccountCore, holdId: string): Hold | null {
  return core.openHolds.get(holdId) ?? readHold(core.sql, holdId);
}

/** A hold or a receipt: lots reserved in policy order until capture, release or deadline. */
export function reserve(
  core: AccountCore,
  ctx: OpContext,
  req: HoldRequest,
  idem: Idempotency,
  kind: "hold" | "receipt",
): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  const first = core.recall(kind, idem);
  if (first) return first;
  const policy = core.policy(ctx);
  if (policy === null || core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  if (core.openHolds.has(req.id) || holdRecorded(core.sql, req.id)) {
    return refuse({ code: "idempotency_conflict", detail: `hold ${req.id} already exists` });
  }
  const nowMs = core.now();
  const draw = { ref: req.id, unit: req.unit, amount: req.amount };
  // `convert: true` brings the rates into req.unit, as for a debit; the hold keeps each leg's rate.
  const planned = planDebitMaybeConverting(core.lots, draw, policy, nowMs, req.conversions, kind);
  if (!planned.ok) return refuse(fromLedgerError(planned.error));
  const { applied, converted } = planned.value;
  const velocity = velocityGate(core, req.unit, req.amount, nowMs);
  if (velocity.refused) return velocity.refused;
  const hold = openHold(req, kind, applied, nowMs, converted);
  return core.commit(
    {
      ctx,
      lots: planned.value.lots,
      holds: [hold],
      entries: withRating(planned.value.entries, req.rating),
      velocity: velocity.tally,
    },
    nowMs,
    (lots) => ({
      ...reserveBody(req, hold, applied, balanceJson(ctx.accountId, req.unit, nowMs, lots, core.awaitingOpen.values())),
      ...convertedView(converted, WRITE_APPLIED_MAX),
    }),
    { scope: kind, idem, status: 201 },
  );
}

/**
 * Settles a receipt: captures `used` and releases the rest. Settling again
 * with the same `used` answers the first result; with another, 409.
 */
export function settleReceipt(core: AccountCore, ctx: OpContext, receiptId: string, used: number): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  const idem = { key: receiptId, bodyHash: String(used) };
  const settled = readIdempotency(core.sql, "receipt.settle", receiptId);
  if (settled && settled.bodyHash !== idem.bodyHash) {
    return refuse({
      code: "receipt_settled",
      detail: `receipt ${receiptId} was already settled with used=${settled.bodyHash}`,
    });
  }
  const first = core.recall("receipt.settle", idem);
  if (first) return first;
  const notFound = refuse({ code: "receipt_not_found", detail: `receipt ${receiptId} does not exist` });
  if (getHold(core, receiptId)?.kind !== "receipt") return notFound;
  if (core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  const hold = getHold(core, receiptId);
  if (hold?.kind !== "receipt") return notFound;
  if (hold.status !== "open") {
    // Captured in full by the sweep: settling with that same use answers as a replay.
    if (used === hold.captured) {
      const balance = balanceJson(ctx.accountId, hold.unit, core.now(), core.lots, core.awaitingOpen.values());
      return answer(settleBody(receiptId, used, hold.released, balance), 200, true);
    }
    return refuse({
      code: "receipt_settled",
      detail: `receipt ${receiptId} was already closed (captured ${hold.captured})`,
    });
  }
  if (used > hold.amount)
    return refuse({ code: "invalid_amount", detail: `used may not exceed the receipt's ${hold.amount}` });
  const nowMs = core.now();
  const planned = planCloseHold(core.lots, hold, used, nowMs, "captured");
  if (!planned.ok) return refuse(fromLedgerError(planned.error));
  const closed = planned.value.hold;
  return core.commit(
    { ctx, lots: planned.value.lots, holds: [closed], entries: planned.value.entries },
    nowMs,
    (lots) => {
      const balance = balanceJson(ctx.accountId, hold.unit, nowMs, lots, core.awaitingOpen.values());
      return settleBody(receiptId, closed.captured, closed.released, balance);
    },
    { scope: "receipt.settle", idem, status: 200 },
  );
}

/**
 * Captures `capture` of an open hold (null: all of it) and releases the rest,
 * or releases it all. Repeating the same close answers the first result.
 */
export function closeHold(
  core: AccountCore,
  ctx: OpContext,
  holdId: string,
  action: "capture" | "release",
  capture: number | null,
): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  const found = getHold(core, holdId);
  if (found?.kind !== "hold") return refuse({ code: "hold_not_found", detail: `hold ${holdId} does not exist` });
  const amount = action === "release" ? 0 : (capture ?? found.amount);
  // Keyed on what the close means, not on how its body was spelled: no body,
  // {} and {"amount": <held>} are the same capture.
  const scope: Scope = action === "capture" ? "hold.capture" : "hold.release";
  const idem = { key: holdId, bodyHash: action === "release" ? "release" : `capture:${amount}` };
  const first = core.recall(scope, idem);
  if (first) return first;
  // A hold past its deadline is closed by policy first, whatever the alarm's timing.
  if (core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  const hold = getHold(core, holdId) ?? found;
  const closedAs = action === "capture" ? "captured" : "released";
  if (hold.status !== "open") {
    // Closed by the deadline sweep the same way: answer as that close did, moving nothing.
    if (hold.status !== closedAs || (action === "capture" && hold.captured !== amount)) {
      return refuse({ code: "hold_closed", detail: `hold ${holdId} is already ${hold.status}` });
    }
    return answer(closeView(ctx.accountId, hold, action, core.now(), core.lots, core.awaitingOpen.values()), 200, true);
  }
  if (amount > hold.amount) {
    return refuse({ code: "invalid_amount", detail: `capture may not exceed the held ${hold.amount}` });
  }
  const nowMs = core.now();
  const planned = planCloseHold(core.lots, hold, amount, nowMs, closedAs);
  if (!planned.ok) return refuse(fromLedgerError(planned.error));
  const closed = planned.value.hold;
  return core.commit(
    { ctx, lots: planned.value.lots, holds: [closed], entries: planned.value.entries },
    nowMs,
    (lots) => closeView(ctx.accountId, closed, action, nowMs, lots, core.awaitingOpen.values()),
    { scope, idem, status: 200 },
  );
}
