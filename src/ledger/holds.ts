import { type ConversionRate, costIn, valueIn } from "./convert";
import { assert, type EntryDraft, type EntryKind, err, type LedgerError, type Lot, ok, type Result } from "./types";

export type HoldKind = "hold" | "receipt";
export type HoldStatus = "open" | "captured" | "released";

/** A two-phase reservation; receipts are holds with a signed token. */
export interface Hold {
  holdId: string;
  kind: HoldKind;
  unit: string;
  amount: number;
  /** What each lot reserved (in the lot's unit), in draw order. */
  allocations: HoldAllocation[];
  status: HoldStatus;
  expiresAtMs: number;
  captured: number;
  released: number;
  createdAtMs: number;
  closedAtMs: number | null;
}

/** One lot's part of a hold: `amount` reserved there, in that lot's unit. */
export interface HoldAllocation {
  grantId: string;
  amount: number;
  /**
   * A converting hold's lot in another unit: that unit and its rate into the
   * hold's unit, as they were when the hold opened. Absent: the hold's own unit.
   */
  conversion?: { unit: string; numerator: number; denominator: number };
}

/**
 * One unit's part of a hold: a run of allocations in one unit, in draw order
 * (the hold's own unit first, then each unit it converted from). `covers` is
 * what the leg paid for in the hold's unit.
 */
export interface HoldLeg {
  unit: string;
  /** Null: the hold's own unit (1:1). */
  rate: ConversionRate | null;
  /** Reserved in the leg's unit: the sum of its allocations. */
  reserved: number;
  covers: number;
  /** Its allocations: hold.allocations[first .. first + count). */
  first: number;
  count: number;
}

/**
 * A hold's legs. `covers` is not stored: it follows from the reservation
 * (planConversion): walking the legs with `left` = the hold's amount, each
 * covers min(what its reserve is worth, rounded down; left). A leg that was
 * not the last took costIn(worth) and so is worth exactly `worth` again; the
 * last took costIn(short) and covers `short`, the rest.
 */
export function holdLegs(hold: Pick<Hold, "unit" | "amount" | "allocations">): HoldLeg[] {
  const legs: HoldLeg[] = [];
  hold.allocations.forEach((a, i) => {
    const unit = a.conversion?.unit ?? hold.unit;
    const last = legs[legs.length - 1];
    if (last && last.unit === unit) {
      last.reserved += a.amount;
      last.count++;
      return;
    }
    const rate = a.conversion ? { numerator: a.conversion.numerator, denominator: a.conversion.denominator } : null;
    legs.push({ unit, rate, reserved: a.amount, covers: 0, first: i, count: 1 });
  });
  let left = hold.amount;
  for (const leg of legs) {
    leg.covers = Math.min(leg.rate ? valueIn(leg.reserved, leg.rate) : leg.reserved, left);
    left -= leg.covers;
  }
  return legs;
}

/**
 * What a close captures from each allocation, in that lot's unit, when it
 * captures `capture` (0..amount) of the hold's unit. The rule:
 * - the capture is spread over the legs in draw order, each leg taking
 *   c_leg = min(what is left, leg.covers) of the hold's unit;
 * - a converted leg captures costIn(c_leg) of its own unit (rounded UP, so it
 *   is worth at least c_leg), never more than it reserved; the own leg c_leg;
 * - within a leg, that amount is captured from its lots in draw order.
 * So what is captured is worth at least `capture` (the house never
 * under-charges), no lot gives more than it reserved, everything not captured
 * is released exactly, and a full capture takes exactly what was reserved.
 */
export function captureByAllocation(hold: Pick<Hold, "unit" | "amount" | "allocations">, capture: number): number[] {
  const out = hold.allocations.map(() => 0);
  let left = capture;
  for (const leg of holdLegs(hold)) {
    const part = Math.min(left, leg.covers);
    left -= part;
    const take = leg.rate ? costIn(part, leg.rate) : part;
    assert(
      take <= leg.reserved,
      `a capture of ${part} would take ${take} ${leg.unit}, more than the leg's ${leg.reserved}`,
    );
    let rest = take;
    for (let i = leg.first; i < leg.first + leg.count && rest > 0; i++) {
      const n = Math.min(rest, hold.allocations[i]?.amount ?? 0);
      out[i] = n;
      rest -= n;
    }
  }
  return out;
}

export interface ClosePlan {
  hold: Hold;
  lots: Lot[];
  entries: EntryDraft[];
}

/**
 * Closes an open hold: captures `capture` (0..amount, in the hold's unit)
 * from its lots in draw order (captureByAllocation: a converted lot gives
 * what covers its part, rounded up, in its own unit) and releases the rest. Released credits that land in a lot that has
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
  const captures = captureByAllocation(hold, capture);
  hold.allocations.forEach((alloc, i) => {
    const lot = lotsById.get(alloc.grantId);
    assert(lot !== undefined, `hold ${hold.holdId} references unknown lot ${alloc.grantId}`);
    assert(lot.held >= alloc.amount, `lot ${lot.grantId} holds less than hold ${hold.holdId} reserved`);
    assert(lot.unit === (alloc.conversion?.unit ?? hold.unit), `lot ${lot.grantId} is not in the unit it was held in`);
    const c = captures[i] ?? 0;
    const r = alloc.amount - c;
    // A converted lot's entries say the rate they were held at, as the hold's own entries did.
    const conversion = alloc.conversion
      ? { to_unit: hold.unit, numerator: alloc.conversion.numerator, denominator: alloc.conversion.denominator }
      : undefined;
    const base = {
      unit: lot.unit,
      grantId: lot.grantId,
      creditType: lot.type,
      ref: hold.holdId,
      reason: null,
      effectiveAtMs: nowMs,
    };
    const held = conversion ? { ...base, conversion } : base;
    if (hold.kind === "receipt") {
      // 0 - c, not -c: an unused receipt must write amount 0, never -0.
      plan.entries.push({ ...held, kind: settleKind, amount: 0 - c, heldDelta: -alloc.amount });
    } else {
      if (c > 0) plan.entries.push({ ...held, kind: settleKind, amount: -c, heldDelta: -c });
      if (r > 0) plan.entries.push({ ...held, kind: "hold.released", amount: 0, heldDelta: -r });
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
  });
  return ok(plan);
}
