/**
 * The live AccountLedger's side of POST /v1/accounts/{id}/replay: read-only
 * answers the scratch rebuild (src/replay/) is compared with. Nothing here
 * writes, sweeps or expires: a replay never changes the account it checks.
 *
 * - `head`: the chain head at the replay's time (the last entry recorded at
 *   or before `as_of`; now: the object's head) and, for a replay of now, the
 *   totals per unit and type of the lots the object serves from memory.
 * - `lots`: a page (by grant_id) of the persisted lots' terms-independent
 *   state (unit, type, remaining, held, voided): now, the lots table as it
 *   stands; at a past time, the as_of machinery's lots (lotsAt below).
 * A replay of now is answered synchronously (a consistent moment per page);
 * at a past time nothing it reads can change, so it may await the tiers.
 */
import { GENESIS_HASH, iso, type Lot, totalsOf } from "../ledger";
import type { HeadState, LotState, TotalState } from "../ledger/replay-diff";
import { REPLAY_LOTS_PAGE } from "../ledger/replay-diff";
import type { AccountCore } from "./core";
import { lotFromRow } from "./rows";
import type { TimeTravel } from "./time-travel";
import type { Outcome } from "./types";
import { answer, missingAccount, refuse } from "./views";

/** What the scratch asks the live object. */
export type SourceQuery =
  | { kind: "head"; asOfMs: number | null }
  | { kind: "lots"; asOfMs: number | null; after: string | null; limit: number }
  | { kind: "ids"; asOfMs: number | null; ids: string[] };

/** The answer to `head`. */
export interface SourceHead extends HeadState {
  /** The replay's time: `as_of`, or the object's clock when none was given. */
  as_of_ms: number;
  /** A replay of now only: totals of the lots in memory at this head. */
  totals: TotalState[] | null;
}

/** The answer to `lots` and `ids`: the lots that existed at the replay's time, and the head they were read at. */
export interface SourceLots {
  lots: LotState[];
  head_seq: number;
  /** The grant_id to continue after (null: no more lots). */
  next_after: string | null;
}

export function replaySource(
  core: AccountCore,
  past: TimeTravel,
  accountId: string,
  q: SourceQuery,
): Outcome | Promise<Outcome> {
  if (core.account === null) return missingAccount(accountId);
  const nowMs = core.now();
  if (q.asOfMs !== null && q.asOfMs > nowMs) {
    return refuse({
      code: "invalid_request",
      detail: `as_of may not be in the future (the account's clock reads ${iso(nowMs)})`,
    });
  }
  // Now: answered synchronously, so each page and the head it names are one consistent moment.
  if (q.asOfMs === null) return answer(q.kind === "head" ? headNow(core, nowMs) : lotsNow(core, q));
  const asOfMs = q.asOfMs;
  if (q.kind === "head")
    return headAt(core, past, asOfMs).then((h) => answer({ as_of_ms: asOfMs, ...h, totals: null }));
  return lotsAt(past, asOfMs).then((all) => answer(pageOf(core, all, q)));
}

function headNow(core: AccountCore, nowMs: number): SourceHead {
  const totals = totalsOf(core.lots.values()).map((t) => ({
    unit: t.unit,
    type: String(t.credit_type),
    remaining: t.remaining,
    held: t.held,
  }));
  return { as_of_ms: nowMs, seq: core.headSeq, hash: core.headHash, count: core.headSeq, totals };
}

/** A page of the persisted lots (the lots table, by grant_id) as they stand. */
function lotsNow(core: AccountCore, q: Exclude<SourceQuery, { kind: "head" }>): SourceLots {
  const read = (query: string, ...bindings: SqlStorageValue[]) =>
    core.sql
      .exec(query, ...bindings)
      .toArray()
      .map((r) => lotFromRow(r));
  if (q.kind === "ids") {
    const rows = q.ids.slice(0, REPLAY_LOTS_PAGE).flatMap((id) => read("SELECT * FROM lots WHERE grant_id = ?", id));
    return { lots: rows.map(stateOf), head_seq: core.headSeq, next_after: null };
  }
  const limit = Math.max(1, Math.min(q.limit, REPLAY_LOTS_PAGE));
  const rows = read("SELECT * FROM lots WHERE grant_id > ? ORDER BY grant_id LIMIT ?", q.after ?? "", limit + 1);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    lots: page.map(stateOf),
    head_seq: core.headSeq,
    next_after: rows.length > limit && last ? last.grantId : null,
  };
}

/** A page (by grant_id) of the lots as they stood at the replay's time. */
function pageOf(core: AccountCore, all: readonly LotState[], q: Exclude<SourceQuery, { kind: "head" }>): SourceLots {
  if (q.kind === "ids") {
    const wanted = new Set(q.ids.slice(0, REPLAY_LOTS_PAGE));
    return { lots: all.filter((l) => wanted.has(l.grant_id)), head_seq: core.headSeq, next_after: null };
  }
  const limit = Math.max(1, Math.min(q.limit, REPLAY_LOTS_PAGE));
  const after = q.after ?? "";
  const rest = all.filter((l) => l.grant_id > after);
  const page = rest.slice(0, limit);
  const last = page[page.length - 1];
  return { lots: page, head_seq: core.headSeq, next_after: rest.length > limit && last ? last.grant_id : null };
}

/**
 * The last entry recorded at or before `asOfMs` (recorded_at never
 * decreases along the chain, seqs are gapless from 1, so its seq is also
 * the count), found by time-travel.ts across the window and the tiers.
 */
async function headAt(core: AccountCore, past: TimeTravel, asOfMs: number): Promise<HeadState> {
  const last = (await past.firstSeqAtOrAfter(asOfMs + 1)) - 1;
  if (last < 1) return { seq: 0, hash: GENESIS_HASH, count: 0 };
  const hash = last === core.headSeq ? core.headHash : (await past.window.entryAt(last)).hash;
  return { seq: last, hash, count: last };
}

/**
 * Every lot as it stood at `asOfMs`, by grant_id: THE one call to the as_of
 * machinery (time-travel.ts lotStatesAt: lot marks in the window, the
 * checkpoint below it plus one interval of entries). It answers all lots at
 * once, so a page costs one pass over the account's lots.
 */
async function lotsAt(past: TimeTravel, asOfMs: number): Promise<LotState[]> {
  const lots = await past.lotStatesAt(asOfMs);
  return lots.map(stateOf).sort((a, b) => (a.grant_id < b.grant_id ? -1 : a.grant_id > b.grant_id ? 1 : 0));
}

const stateOf = (lot: Lot): LotState => ({
  grant_id: lot.grantId,
  unit: lot.unit,
  type: lot.type,
  remaining: lot.remaining,
  held: lot.held,
  voided: lot.voidedAtMs !== null,
});
