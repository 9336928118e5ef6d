/**
 * What the AccountLedger answers: outcomes and the response bodies of its
 * operations. Bodies are computed on the lots as they will be after a change,
 * which the caller passes in, so they never read the DO's memory.
 */
import type { Problem } from "../errors";
import {
  type Applied,
  appliedView,
  balanceOf,
  balanceView,
  type EntryRating,
  grantView,
  type Hold,
  iso,
  type LedgerError,
  type Lot,
  LotBook,
  ratingView,
  WRITE_APPLIED_MAX,
  WRITE_RESPONSE_LIST_MAX,
} from "../ledger";
import type { AwaitingGrant } from "../ledger/awaiting";
import type { HoldRequest, Json, Outcome } from "./types";

export const refuse = (problem: Problem): Outcome => ({ ok: false, problem });

/** A first answer (`replayed` false) or an answer recalled for a repeat. */
export const answer = (body: unknown, status = 200, replayed = false): Outcome => ({
  ok: true,
  status,
  body: body as Json,
  replayed,
});

export const missingAccount = (accountId: string): Outcome =>
  refuse({ code: "account_not_found", detail: `account ${accountId} does not exist` });

export function fromLedgerError(e: LedgerError): Problem {
  if (e.code === "insufficient_credits") {
    return {
      code: e.code,
      detail: `available ${e.available} is less than requested ${e.requested}`,
      extra: { available: e.available, requested: e.requested },
    };
  }
  return { code: e.code, detail: e.detail };
}

/** One item of a balance's `awaiting_payment` list. */
export interface AwaitingItem {
  grant_id: string;
  amount: number;
  type: string;
  created_at: string;
  topup: boolean;
}

/**
 * The balance's `awaiting_payment` of `unit`: the first `max` of `records`
 * (creation order) in that unit, and whether more were left out.
 */
export function awaitingList(
  unit: string,
  max: number,
  records: Iterable<AwaitingGrant>,
): { awaiting_payment: AwaitingItem[]; awaiting_payment_more: boolean } {
  const items: AwaitingItem[] = [];
  let more = false;
  for (const r of records) {
    if (r.command.unit !== unit) continue;
    if (items.length === max) {
      more = true;
      break;
    }
    items.push({
      grant_id: r.grantId,
      amount: r.command.amount,
      type: r.command.type,
      created_at: iso(r.createdAtMs),
      topup: r.topup,
    });
  }
  return { awaiting_payment: items, awaiting_payment_more: more };
}

/**
 * A balance; inside a write response its lists keep WRITE_RESPONSE_LIST_MAX items, so a record stays small.
 * `awaiting`: the grants awaiting payment it lists (the account's open ones, `core.awaitingOpen`, or
 * those open at an as_of time), with `more` when the caller already knows the list was cut.
 */
export function balanceJson(
  accountId: string,
  unit: string,
  nowMs: number,
  lots: Iterable<Lot> | LotBook,
  awaiting: Iterable<AwaitingGrant>,
  listMax = WRITE_RESPONSE_LIST_MAX,
  more = false,
): Json {
  const listed = awaitingList(unit, listMax, awaiting);
  // The account's book answers from its running totals; a plain list (a replay, a past date) is scanned.
  const balance = lots instanceof LotBook ? lots.balance(unit, nowMs, listMax) : balanceOf(lots, unit, nowMs);
  return {
    ...balanceView(accountId, balance, nowMs, listMax),
    ...listed,
    awaiting_payment_more: listed.awaiting_payment_more || more,
  } as unknown as Json;
}

/** A grant or a void: the lot as it now stands and the balance of its unit. */
export function grantBody(
  accountId: string,
  lot: Lot,
  unit: string,
  nowMs: number,
  lots: LotBook,
  awaiting: Iterable<AwaitingGrant>,
) {
  return {
    grant: grantView(lot, nowMs) as unknown as Json,
    balance: balanceJson(accountId, unit, nowMs, lots, awaiting),
  };
}

export function debitBody(
  accountId: string,
  req: { id: string; unit: string; amount: number; rating?: EntryRating },
  applied: Applied[],
  nowMs: number,
  lots: LotBook,
  awaiting: Iterable<AwaitingGrant>,
) {
  return {
    debit_id: req.id,
    amount: req.amount,
    unit: req.unit,
    ...ratingView(req.rating),
    ...appliedView(applied, WRITE_APPLIED_MAX),
    balance: balanceJson(accountId, req.unit, nowMs, lots, awaiting),
  };
}

/** A receipt serves its token and the token's `exp`; a plain hold serves its own deadline. */
export function reserveBody(req: HoldRequest, hold: Hold, applied: Applied[], balance: Json) {
  return req.receipt
    ? {
        receipt_id: req.id,
        receipt: req.receipt.token,
        amount: req.amount,
        unit: req.unit,
        ...ratingView(req.rating),
        expires_at: iso(req.receipt.expiresAtMs),
        ...appliedView(applied, WRITE_APPLIED_MAX),
        balance,
      }
    : {
        hold_id: req.id,
        amount: req.amount,
        unit: req.unit,
        ...ratingView(req.rating),
        status: "open",
        expires_at: iso(hold.expiresAtMs),
        ...appliedView(applied, WRITE_APPLIED_MAX),
        balance,
      };
}

export const settleBody = (receiptId: string, used: number, released: number, balance: Json) => ({
  receipt_id: receiptId,
  used,
  released,
  balance,
});

export function closeView(
  accountId: string,
  hold: Hold,
  action: "capture" | "release",
  nowMs: number,
  lots: LotBook,
  awaiting: Iterable<AwaitingGrant> = [],
): Json {
  const balance = balanceJson(accountId, hold.unit, nowMs, lots, awaiting);
  return action === "capture"
    ? { hold_id: hold.holdId, status: hold.status, captured: hold.captured, released: hold.released, balance }
    : { hold_id: hold.holdId, status: hold.status, released: hold.released, balance };
}
