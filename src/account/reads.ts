/**
 * What the AccountLedger answers without writing (except for closing holds
 * past their deadline first, so a read never shows freed credits as held).
 * Every list is a page with a named bound.
 */
import {
  appliedView,
  BALANCE_LIST_MAX,
  type CreditType,
  effectivePolicy,
  grantView,
  holdView,
  iso,
  type Lot,
  lotStatus,
  lotsAsOf,
  mergeOverrides,
  type Policy,
  ratingView,
} from "../ledger";
import type { AwaitingGrant } from "../ledger/awaiting";
import { type AccountCore, POLICY_UNKNOWN } from "./core";
import { getHold } from "./hold-ops";
import * as store from "./storage";
import type { TimeTravel } from "./time-travel";
import type { OpContext, Outcome, PolicyPatch } from "./types";
import { answer, balanceJson, missingAccount, refuse } from "./views";
import type { AccountWindow } from "./window";

/** A grants page lists at most this many lots. */
export const GRANTS_PAGE_MAX = 1000;
/** An open-holds page lists at most this many holds. */
export const HOLDS_PAGE_MAX = 1000;
/** A debit read lists at most this many lots in `applied`. */
export const DEBIT_APPLIED_MAX = 1000;

/**
 * The balance now, or as of a past time. A past balance reads each lot's
 * last mark at or before that time: one index probe per lot of the unit,
 * whatever the length of the history; below the window floor, the
 * checkpoint before it and one interval of entries (time-travel.ts), which
 * is the one case that answers asynchronously.
 */
export function balance(
  core: AccountCore,
  ctx: OpContext,
  unit: string,
  asOfMs: number | null,
  awaitingAsOf?: (unit: string, asOfMs: number) => { records: Iterable<AwaitingGrant>; more: boolean },
  past?: TimeTravel,
): Outcome | Promise<Outcome> {
  const { accountId } = ctx;
  if (core.account === null) return missingAccount(accountId);
  if (asOfMs === null) {
    if (core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
    return answer(balanceJson(accountId, unit, core.now(), core.lots, core.awaitingOpen.values(), BALANCE_LIST_MAX));
  }
  if (asOfMs > core.now()) return refuse({ code: "invalid_request", detail: "as_of may not be in the future" });
  const at = asOfMs;
  const body = (lots: Lot[]) => {
    // Grants awaiting payment as they stood then (recorded by then, not yet activated or cancelled).
    const then = awaitingAsOf?.(unit, at) ?? { records: [], more: false };
    return answer(balanceJson(accountId, unit, at, lots, then.records, BALANCE_LIST_MAX, then.more));
  };
  if (past === undefined) {
    const terms = [...core.lots.values()].filter((lot) => lot.unit === unit);
    return body(lotsAsOf(terms, (grantId) => store.readMark(core.sql, grantId, at), at));
  }
  const inWindow = past.statesInWindow(at, unit);
  return inWindow !== null ? body(inWindow) : past.lotStatesAt(at, unit).then(body);
}

export interface GrantsQuery {
  status: string | null;
  /** The grant_id the previous page ended with (null: from the first lot). */
  cursor: string | null;
  limit: number;
  /** The lots as they stood then (remaining, held, status), those that existed; absent: now. */
  asOfMs?: number | null;
}

/** Lots as they stood at `q.asOfMs` (time-travel.ts), listed as listGrants lists them now. */
export async function listGrantsAsOf(core: AccountCore, past: TimeTravel, accountId: string, q: GrantsQuery) {
  if (core.account === null || q.asOfMs === undefined || q.asOfMs === null) return listGrants(core, accountId, q);
  if (q.asOfMs > core.now()) return refuse({ code: "invalid_request", detail: "as_of may not be in the future" });
  return listGrants(core, accountId, q, await past.lotStatesAt(q.asOfMs));
}

/** Lots in creation order, optionally of one status, a page at a time (`then`: as they stood at q.asOfMs). */
export function listGrants(core: AccountCore, accountId: string, q: GrantsQuery, then?: Lot[]): Outcome {
  if (core.account === null) return missingAccount(accountId);
  const nowMs = then === undefined ? core.now() : (q.asOfMs ?? core.now());
  const afterOrder = q.cursor === null ? 0 : core.lots.get(q.cursor)?.createdOrder;
  if (afterOrder === undefined) return refuse({ code: "invalid_request", detail: "cursor: no such grant" });
  const limit = Math.min(q.limit, GRANTS_PAGE_MAX);
  const page: Lot[] = [];
  let more = false;
  // Map order is creation order: lots load ORDER BY created_order and new ones are appended.
  for (const lot of then ?? core.lots.values()) {
    if (lot.createdOrder <= afterOrder) continue;
    if (q.status !== null && lotStatus(lot, nowMs) !== q.status) continue;
    if (page.length === limit) {
      more = true;
      break;
    }
    page.push(lot);
  }
  const last = page[page.length - 1];
  return answer({
    grants: page.map((lot) => grantView(lot, nowMs)),
    next_cursor: more && last ? last.grantId : null,
  });
}

export function getGrant(core: AccountCore, accountId: string, grantId: string): Outcome {
  if (core.account === null) return missingAccount(accountId);
  const lot = core.lots.get(grantId);
  if (!lot) return refuse({ code: "grant_not_found", detail: `grant ${grantId} does not exist` });
  return answer(grantView(lot, core.now()));
}

/** The unheld remainder and status of the named lots (the cron's expiring-soon job asks for a few). */
export function grantRemainders(core: AccountCore, grantIds: readonly string[]) {
  const nowMs = core.now();
  const out: { grant_id: string; remaining: number; held: number; status: string; type: CreditType }[] = [];
  for (const id of grantIds.slice(0, GRANTS_PAGE_MAX)) {
    const lot = core.lots.get(id);
    if (lot)
      out.push({
        grant_id: id,
        remaining: lot.remaining,
        held: lot.held,
        status: lotStatus(lot, nowMs),
        type: lot.type,
      });
  }
  return out;
}

/** Open holds and receipts, oldest first; the cursor is `<created ms>:<hold_id>` of the last one served. */
export function listHolds(
  core: AccountCore,
  ctx: OpContext,
  after: { atMs: number; id: string } | null,
  limit: number,
): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  // Holds past their deadline are closed first, so the list never shows one as open.
  if (core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  const n = Math.min(limit, HOLDS_PAGE_MAX);
  const rows = store.readOpenHoldsPage(core.sql, after, n + 1);
  const page = rows.slice(0, n);
  const last = page[page.length - 1];
  return answer({
    holds: page.map((h) => ({ ...holdView(h), kind: h.kind })),
    next_cursor: rows.length > n && last ? `${last.createdAtMs}:${last.holdId}` : null,
  });
}

export function holdStatus(core: AccountCore, ctx: OpContext, holdId: string): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  if (core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  const hold = getHold(core, holdId);
  if (!hold) return refuse({ code: "hold_not_found", detail: `hold ${holdId} does not exist` });
  return answer(holdView(hold));
}

/** One debit: what it was asked with (metadata included) and the lots it drew from (below the floor: the tiers). */
export async function getDebit(
  core: AccountCore,
  window: AccountWindow,
  accountId: string,
  debitId: string,
): Promise<Outcome> {
  if (core.account === null) return missingAccount(accountId);
  const d = store.readDebit(core.sql, debitId);
  if (!d) return refuse({ code: "not_found", detail: `debit ${debitId} does not exist` });
  const last = Math.min(d.lastSeq, d.firstSeq + DEBIT_APPLIED_MAX);
  const entries = await window.entries(d.firstSeq - 1, last);
  const applied = entries.map((e) => ({
    grantId: e.grant_id ?? "",
    type: e.credit_type as CreditType,
    amount: -e.amount,
  }));
  return answer({
    debit_id: d.debitId,
    amount: d.amount,
    unit: d.unit,
    // A metered debit's entries all carry its rating: the first says it.
    ...ratingView(entries[0]?.rating),
    metadata: d.metadata,
    ...appliedView(applied, DEBIT_APPLIED_MAX),
    txn_id: d.txnId,
    first_seq: d.firstSeq,
    last_seq: d.lastSeq,
    actor: d.actor,
    created_at: iso(d.createdAtMs),
  });
}

/**
 * Entries after `afterSeq`, oldest first, at most `limit` (the caller bounds
 * it). Below the window floor they come from the tiers (window.ts), then
 * from the object: the same pages before and after compaction.
 */
export async function ledger(
  core: AccountCore,
  window: AccountWindow,
  accountId: string,
  afterSeq: number,
  limit: number,
): Promise<Outcome> {
  if (core.account === null) return missingAccount(accountId);
  // The chain is gapless, 1..head: the limit + 1 entries after afterSeq are the seqs up to afterSeq + limit + 1.
  const entries = await window.entries(afterSeq, Math.min(core.headSeq, afterSeq + limit + 1));
  const more = entries.length > limit;
  const page = more ? entries.slice(0, limit) : entries;
  const next = more ? (page[page.length - 1]?.seq ?? null) : null;
  return answer({ entries: page, next_after_seq: next });
}

export function getPolicy(core: AccountCore, accountId: string, seen: Policy | null): Outcome {
  if (core.account === null) return missingAccount(accountId);
  const global = core.globalPolicy(seen);
  if (global === null) return POLICY_UNKNOWN;
  return answer(effectivePolicy(global, core.overrides));
}

export function putPolicy(core: AccountCore, accountId: string, patch: PolicyPatch, seen: Policy | null): Outcome {
  if (core.account === null) return missingAccount(accountId);
  const next = mergeOverrides(core.overrides, patch);
  store.writeMeta(core.sql, "policy", next);
  core.overrides = next;
  return getPolicy(core, accountId, seen);
}
