import { assert, type EntryDraft, type EntryKind, err, type LedgerError, type Lot, ok, type Result } from "./types";

export type HoldKind = "hold" | "receipt";
export type HoldStatus = "open" | "captured" | "released";

/** A two-phase reservation; receipts are holds with a signed token. */
export interface Hold {
  holdId: string;
  kind: HoldKind;
  unit: string;
  amount: number;
  /** What each lot reserved, in draw order. */
  allocations: { grantId: string; amount: number }[];
  status: HoldStatus;
  expiresAtMs: number;
  captured: number;
  released: number;
  createdAtMs: number;
  closedAtMs: number | null;
}

export interface ClosePlan {
  hold: Hold;
  lots: Lot[];
  entries: EntryDraft[];
}

/**
 * Closes an open hold: captures `capture` (0..amount) from its lots in draw
 * order and releases the rest. Released credits that land in a lot that has
 * expired or been voided since leave again at once by their own entry.
 * `closedAs` is the status the close leaves: a capture of 0 is still a
 * capture (API.md), a release captures nothing; by default a hold that
 * captured anything, and any receipt, ends "captured".
 */
export function planCloseHold(
  lotsById: ReadonlyMap<string, Lot>,
  hold: Hold,
  capture: number,
  nowMs: number,
  closedAs: "captured" | "released" = capture > 0 || hold.kind === "receipt" ? "captured" : "released",
): Result<ClosePlan, LedgerError> {
  if (hold.status !== "open") return err({ code: "hold_closed", detail: `hold ${hold.holdId} is ${hold.status}` });
  if (!Number.isSafeInteger(capture) || capture < 0 || capture > hold.amount) {
    return err({ code: "invalid_amount", detail: `capture must be an integer from 0 to ${hold.amount}` });
  }
  assert(closedAs === "captured" || capture === 0, "a release captures nothing");
  const settleKind: EntryKind = hold.kind === "receipt" ? "receipt.settled" : "hold.captured";
  const plan: ClosePlan = {
    hold: {
      ...hold,
      status: closedAs,
      captured: capture,
      released: hold.amount - capture,
      closedAtMs: nowMs,
    },
    lots: [],
    entries: [],
  };
  let toCapture = capture;
  for (const alloc of hold.allocations) {
    const lot = lotsById.get(alloc.grantId);
    assert(lot !== undefined, `hold ${hold.holdId} references unknown lot ${alloc.grantId}`);
    assert(lot.held >= alloc.amount, `lot ${lot.grantId} holds less than hold ${hold.holdId} reserved`);
    const c = Math.min(toCapture, alloc.amount);
    const r = alloc.amount - c;
    toCapture -= c;
    const base = {
      unit: hold.unit,
      grantId: lot.grantId,
      creditType: lot.type,
      ref: hold.holdId,
      reason: null,
      effectiveAtMs: nowMs,
    };
    if (hold.kind === "receipt") {
      // 0 - c, not -c: an unused receipt must write amount 0, never -0.
      plan.entries.push({ ...base, kind: settleKind, amount: 0 - c, heldDelta: -alloc.amount });
    } else {
      if (c > 0) plan.entries.push({ ...base, kind: settleKind, amount: -c, heldDelta: -c });
      if (r > 0) plan.entries.push({ ...base, kind: "hold.released", amount: 0, heldDelta: -r });
    }
    let next: Lot = { ...lot, remaining: lot.remaining - c, held: lot.held - alloc.amount };
    const dead =
      lot.voidedAtMs !== null
        ? "grant.voided"
        : lot.expiresAtMs !== null && lot.expiresAtMs <= nowMs
          ? "grant.expired"
          : null;
    if (dead !== null && r > 0) {
      // API.md: a grant.expired entry is dated at the lot's expiry, whenever it is written.
      const effectiveAtMs = dead === "grant.expired" && lot.expiresAtMs !== null ? lot.expiresAtMs : nowMs;
      plan.entries.push({ ...base, kind: dead, amount: -r, heldDelta: 0, ref: null, effectiveAtMs });
      next = { ...next, remaining: next.remaining - r };
    }
    plan.lots.push(next);
  }
  return ok(plan);
}
