/**
 * A customer statement of one unit over [from, to), as the account's Durable
 * Object answers it (the gateway signs it). Bounded whatever the history:
 * the window's ends are found by a binary search over the chain (recorded_at
 * never decreases along it), opening and closing come from lot marks (one
 * probe per lot of the unit at each end), and the window may hold at most
 * STATEMENT_MAX_ENTRIES entries, which is all it reads.
 */
import { assert, GENESIS_HASH, iso, lotsAsOf } from "../ledger";
import {
  checkStatementWindow,
  STATEMENT_MAX_ENTRIES,
  statementFigures,
  statementRange,
  windowTooLong,
} from "../ledger/statement";
import type { AccountCore } from "./core";
import * as store from "./storage";
import type { Outcome } from "./types";
import { answer, missingAccount, refuse } from "./views";

/** The account's total of `unit` (Σ remaining over its lots, held or not) after the entries recorded at or before `asOfMs`. */
function totalAsOf(core: AccountCore, unit: string, asOfMs: number): number {
  const terms = [...core.lots.values()].filter((lot) => lot.unit === unit);
  const lots = lotsAsOf(terms, (grantId) => store.readMark(core.sql, grantId, asOfMs), asOfMs);
  return lots.reduce((total, lot) => total + lot.remaining, 0);
}

/** Point reads of one entry by seq (the primary key), remembered for the length of one statement. */
function chainProbe(sql: SqlStorage): (seq: number) => { recordedAtMs: number; hash: string } {
  const seen = new Map<number, { recordedAtMs: number; hash: string }>();
  return (seq) => {
    const known = seen.get(seq);
    if (known) return known;
    const row = sql.exec("SELECT recorded_at_ms, hash FROM entries WHERE seq = ?", seq).toArray()[0];
    assert(row !== undefined, `seq ${seq} is missing from a gapless chain`);
    const found = { recordedAtMs: Number(row.recorded_at_ms), hash: String(row.hash) };
    seen.set(seq, found);
    return found;
  };
}

/**
 * The statement without its signature. opening is the total as of the last
 * millisecond before `from`, closing as of the last before `to` (the balance
 * `as_of` semantics: entries recorded at or before a time), so closing of
 * [a, b) is the opening of [b, c). `head` is the last entry of the account,
 * any unit, recorded before `to` (seq 0 and the genesis hash when none is).
 */
export function statement(core: AccountCore, accountId: string, unit: string, fromMs: number, toMs: number): Outcome {
  if (core.account === null) return missingAccount(accountId);
  const bad = checkStatementWindow(fromMs, toMs, core.now());
  if (bad) return refuse(bad);
  const probe = chainProbe(core.sql);
  const recordedAt = (seq: number) => probe(seq).recordedAtMs;
  const range = statementRange(core.headSeq, recordedAt, fromMs, toMs);
  if (range.last - range.first + 1 > STATEMENT_MAX_ENTRIES) {
    return refuse(windowTooLong(range, recordedAt(range.first + STATEMENT_MAX_ENTRIES), fromMs));
  }
  const entries = store.readEntryRange(core.sql, accountId, range.first, range.last).filter((e) => e.unit === unit);
  const opening = totalAsOf(core, unit, fromMs - 1);
  const figures = statementFigures(opening, entries);
  if (!figures.ok) return refuse(figures.error);
  // Two independent routes to the same number: the marks at `to` and the window's entries.
  const closing = totalAsOf(core, unit, toMs - 1);
  assert(
    figures.value.closing === closing,
    `statement ${accountId}/${unit}: entries give closing ${figures.value.closing}, lot marks ${closing}`,
  );
  const head = range.last >= 1 ? { seq: range.last, hash: probe(range.last).hash } : { seq: 0, hash: GENESIS_HASH };
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
