/**
 * A customer statement of one unit over [from, to), as the account's Durable
 * Object answers it (the gateway signs it). Bounded whatever the history:
 * the window's ends are found by a binary search over the chain (recorded_at
 * never decreases along it; below the window floor, between two checkpoints),
 * opening and closing come from lot marks or checkpoints (time-travel.ts),
 * and the window may hold at most
 * STATEMENT_MAX_ENTRIES entries, which is all it reads.
 */
import { assert, GENESIS_HASH, iso } from "../ledger";
import { checkStatementWindow, STATEMENT_MAX_ENTRIES, statementFigures, windowTooLong } from "../ledger/statement";
import type { AccountCore } from "./core";
import type { TimeTravel } from "./time-travel";
import type { Outcome } from "./types";
import { answer, missingAccount, refuse } from "./views";
import type { AccountWindow } from "./window";

/** The account's total of `unit` (Σ remaining over its lots, held or not) after the entries recorded at or before `asOfMs`. */
async function totalAsOf(past: TimeTravel, unit: string, asOfMs: number): Promise<number> {
  const lots = await past.lotStatesAt(asOfMs, unit);
  return lots.reduce((total, lot) => total + lot.remaining, 0);
}

/**
 * The statement without its signature. opening is the total as of the last
 * millisecond before `from`, closing as of the last before `to` (the balance
 * `as_of` semantics: entries recorded at or before a time), so closing of
 * [a, b) is the opening of [b, c). `head` is the last entry of the account,
 * any unit, recorded before `to` (seq 0 and the genesis hash when none is).
 * Below the window floor the ends, the entries and the figures come from
 * the checkpoints and the tiers (time-travel.ts), the same answer as before.
 */
export async function statement(
  core: AccountCore,
  past: TimeTravel,
  window: AccountWindow,
  accountId: string,
  unit: string,
  fromMs: number,
  toMs: number,
): Promise<Outcome> {
  if (core.account === null) return missingAccount(accountId);
  const bad = checkStatementWindow(fromMs, toMs, core.now());
  if (bad) return refuse(bad);
  const range = { first: await past.firstSeqAtOrAfter(fromMs), last: (await past.firstSeqAtOrAfter(toMs)) - 1 };
  if (range.last - range.first + 1 > STATEMENT_MAX_ENTRIES) {
    return refuse(windowTooLong(range, await past.recordedAt(range.first + STATEMENT_MAX_ENTRIES), fromMs));
  }
  const all = range.last >= range.first ? await window.entries(range.first - 1, range.last) : [];
  const entries = all.filter((e) => e.unit === unit);
  const opening = await totalAsOf(past, unit, fromMs - 1);
  const figures = statementFigures(opening, entries);
  if (!figures.ok) return refuse(figures.error);
  // Two independent routes to the same number: the marks at `to` and the window's entries.
  const closing = await totalAsOf(past, unit, toMs - 1);
  assert(
    figures.value.closing === closing,
    `statement ${accountId}/${unit}: entries give closing ${figures.value.closing}, lot marks ${closing}`,
  );
  const lastEntry = all[all.length - 1] ?? (range.last >= 1 ? await window.entryAt(range.last) : null);
  const head = lastEntry ? { seq: lastEntry.seq, hash: lastEntry.hash } : { seq: 0, hash: GENESIS_HASH };
  return answer({
    account_id: accountId,
    unit,
    from: iso(fromMs),
    to: iso(toMs),
    ...figures.value,
    entries,
    head,
  });
}
