/**
 * Pure rules over the account's own records: the account row, holds, and
 * what the D1 indexes and the alarm need to know about them. No SQL here, so
 * they are unit-tested without workerd.
 */
import {
  type Applied,
  type ConvertedLeg,
  type Hold,
  type HoldKind,
  holdAllocations,
  iso,
  type Lot,
  nextExpiryMs,
} from "../ledger";
import type { AccountInput, AccountRecord, HoldRequest } from "./types";

/**
 * The account after an upsert: fields given replace, fields omitted are kept
 * (a new account starts them empty). `null` is a value, so it clears a field.
 * @example accountRecord(prev, "acct_1", { name: "Acme" }, nowMs) // only name and updated_at change
 */
export function accountRecord(
  prev: AccountRecord | null,
  accountId: string,
  input: AccountInput,
  nowMs: number,
): AccountRecord {
  return {
    account_id: accountId,
    name: input.name !== undefined ? input.name : (prev?.name ?? null),
    parent_id: input.parent_id !== undefined ? input.parent_id : (prev?.parent_id ?? null),
    verified: input.verified ?? prev?.verified ?? false,
    metadata: input.metadata !== undefined ? input.metadata : (prev?.metadata ?? null),
    low_balance: input.low_balance !== undefined ? input.low_balance : (prev?.low_balance ?? null),
    ...velocityOf(prev, input),
    created_at: prev?.created_at ?? iso(nowMs),
    updated_at: iso(nowMs),
  };
}

/** `velocity` as the record keeps it: present only when some unit has a limit. */
function velocityOf(prev: AccountRecord | null, input: AccountInput): Pick<AccountRecord, "velocity"> {
  const velocity = input.velocity !== undefined ? input.velocity : prev?.velocity;
  return velocity && Object.keys(velocity).length > 0 ? { velocity } : {};
}

/** The open hold a reservation creates over the lots it drew from. */
export function openHold(
  req: HoldRequest,
  kind: HoldKind,
  applied: readonly Applied[],
  nowMs: number,
  converted: readonly ConvertedLeg[] = [],
): Hold {
  return {
    holdId: req.id,
    kind,
    unit: req.unit,
    amount: req.amount,
    // A converting hold's lots in other units keep their unit and rate: its close converts back at them.
    allocations: holdAllocations({ applied, converted }),
    status: "open",
    // A receipt stays held until its settle grace ends; then the sweep captures it in full. Both
    // deadlines run on the account's clock (its ttl from now here), never the gateway's: the token's
    // `exp` is the gateway's second-floored copy of the same moment, at or before this deadline.
    expiresAtMs: nowMs + req.ttlSeconds * 1000 + (req.receipt ? req.receipt.settleGraceMs : 0),
    captured: 0,
    released: 0,
    createdAtMs: nowMs,
    closedAtMs: null,
  };
}

/** The earliest deadline among holds (null: none), so the sweep can skip work cheaply. */
export function earliestDeadline(holds: Iterable<Hold>): number | null {
  let min: number | null = null;
  for (const h of holds) if (min === null || h.expiresAtMs < min) min = h.expiresAtMs;
  return min;
}

/** When the alarm must next run for the account's own deadlines: a lot expiry or a hold deadline. */
export function nextDeadline(lots: Iterable<Lot>, holds: Iterable<Hold>, nowMs: number): number | null {
  const expiry = nextExpiryMs(lots, nowMs);
  const hold = earliestDeadline(holds);
  if (expiry === null) return hold;
  return hold === null ? expiry : Math.min(expiry, hold);
}

/**
 * The D1 grant index only needs what the cron searches by: a new lot, a void,
 * and whether anything unheld is left (expiry has work to do). Ordinary draws
 * that leave the lot open do not touch it, which keeps D1 writes per debit low.
 */
export function indexChanged(before: Lot | undefined, after: Lot): boolean {
  if (!before) return true;
  if (before.voidedAtMs !== after.voidedAtMs) return true;
  return (before.remaining - before.held === 0) !== (after.remaining - after.held === 0);
}
