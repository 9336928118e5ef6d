/**
 * The pure rules of POST /v1/accounts/{id}/replay: how entries fold into a
 * rebuilt account (per lot Σ amount and Σ held_delta, per unit and type the
 * same sums, the chain re-verified entry by entry), and how the rebuild is
 * compared with the live account's state. No I/O: the scratch Durable Object
 * (src/replay/) stores the fold in its own SQLite and calls these.
 */
import { entryHash, GENESIS_HASH } from "./hash";
import type { Entry } from "./types";

/** A replay rebuilds at most this many entries (else 400: pass an earlier `as_of`). */
export const REPLAY_MAX_ENTRIES = 100_000;
/** Entries asked of the live account per page (the ledger RPC's own page bound). */
export const REPLAY_ENTRIES_PAGE = 1000;
/** Lots compared per page of the live account's state. */
export const REPLAY_LOTS_PAGE = 1000;
/** A replay's answer lists at most this many differences, then says `diff_more: true`. */
export const REPLAY_DIFF_MAX = 100;

export type DiffKind = "lot" | "total" | "chain" | "seq";
export type DiffValue = string | number | boolean | null;

/** One difference: what the live account says beside what its entries replay to. */
export interface DiffItem {
  kind: DiffKind;
  grant_id?: string;
  unit?: string;
  credit_type?: string;
  seq?: number;
  field: string;
  live: DiffValue;
  replayed: DiffValue;
}

/** The differences found so far: the first REPLAY_DIFF_MAX kept, the rest counted. */
export class DiffList {
  readonly items: DiffItem[] = [];
  more = false;

  constructor(private readonly max = REPLAY_DIFF_MAX) {}

  add(item: DiffItem): void {
    if (this.items.length < this.max) this.items.push(item);
    else this.more = true;
  }

  get empty(): boolean {
    return this.items.length === 0 && !this.more;
  }
}

/** Where the re-verified chain stands: the last folded entry. */
export interface ChainState {
  seq: number;
  hash: string;
  recordedAtMs: number;
  /** Entries folded so far. */
  count: number;
}

export const CHAIN_START: ChainState = { seq: 0, hash: GENESIS_HASH, recordedAtMs: 0, count: 0 };

/** What a page of entries adds to one lot (or to one unit and type). */
export interface LotDelta {
  grantId: string;
  unit: string;
  type: string;
  amount: number;
  held: number;
  /** A `grant.voided` entry was folded. */
  voided: boolean;
}

export interface TotalDelta {
  unit: string;
  type: string;
  amount: number;
  held: number;
}

/** Which entries a replay folds: all through a seq (replay "now"), or those recorded at or before a time. */
export type FoldLimit = { throughSeq: number } | { asOfMs: number };

export interface FoldedPage {
  chain: ChainState;
  lots: Map<string, LotDelta>;
  totals: Map<string, TotalDelta>;
  /** True when the fold reached its limit inside this page (the rest of the ledger is not replayed). */
  done: boolean;
}

const within = (e: Entry, limit: FoldLimit) =>
  "throughSeq" in limit ? e.seq <= limit.throughSeq : Date.parse(e.recorded_at) <= limit.asOfMs;

/**
 * Folds one page of entries (seq order) onto the chain state: each entry's
 * seq must follow the last, its prev_hash link to the last hash, its hash
 * match its contents and its recorded_at not go back in time; every break is
 * reported and the fold carries on from the entry as served, so one tampered
 * entry is one difference. Stops at the first entry past `limit`.
 */
export function foldEntries(
  accountId: string,
  start: ChainState,
  entries: readonly Entry[],
  limit: FoldLimit,
  diff: DiffList,
): FoldedPage {
  const lots = new Map<string, LotDelta>();
  const totals = new Map<string, TotalDelta>();
  let chain = start;
  for (const e of entries) {
    if (!within(e, limit)) return { chain, lots, totals, done: true };
    checkLink(accountId, chain, e, diff);
    const type = e.credit_type ?? "";
    if (e.grant_id !== null) {
      const d = lots.get(e.grant_id) ?? { grantId: e.grant_id, unit: e.unit, type, amount: 0, held: 0, voided: false };
      d.amount += e.amount;
      d.held += e.held_delta;
      d.voided ||= e.kind === "grant.voided";
      lots.set(e.grant_id, d);
    }
    const key = `${e.unit}\u0000${type}`;
    const t = totals.get(key) ?? { unit: e.unit, type, amount: 0, held: 0 };
    t.amount += e.amount;
    t.held += e.held_delta;
    totals.set(key, t);
    chain = { seq: e.seq, hash: e.hash, recordedAtMs: Date.parse(e.recorded_at), count: chain.count + 1 };
  }
  return { chain, lots, totals, done: false };
}

function checkLink(accountId: string, last: ChainState, e: Entry, diff: DiffList): void {
  const seq = e.seq;
  if (e.seq !== last.seq + 1) diff.add({ kind: "seq", seq, field: "seq", live: e.seq, replayed: last.seq + 1 });
  if (e.account_id !== accountId) {
    diff.add({ kind: "chain", seq, field: "account_id", live: e.account_id, replayed: accountId });
  }
  if (e.prev_hash !== last.hash)
    diff.add({ kind: "chain", seq, field: "prev_hash", live: e.prev_hash, replayed: last.hash });
  const recomputed = entryHash(e);
  if (recomputed !== e.hash) diff.add({ kind: "chain", seq, field: "hash", live: e.hash, replayed: recomputed });
  const recordedAtMs = Date.parse(e.recorded_at);
  if (!(recordedAtMs >= last.recordedAtMs)) {
    diff.add({
      kind: "seq",
      seq,
      field: "recorded_at",
      live: e.recorded_at,
      replayed: `not before ${new Date(last.recordedAtMs).toISOString()}`,
    });
  }
}

/** A lot's state as of the replay's time, apart from its terms: what entries can rebuild. */
export interface LotState {
  grant_id: string;
  unit: string;
  type: string;
  remaining: number;
  held: number;
  voided: boolean;
}

/**
 * One lot, live beside replayed (null: the side has no such lot). `voided`
 * is compared one way: a void of a lot whose remainder is all held writes no
 * entry, so a live voided lot may replay unvoided, never the reverse.
 */
export function compareLot(live: LotState | null, replayed: LotState | null, diff: DiffList): void {
  if (live === null && replayed === null) return;
  const grantId = (live ?? replayed)?.grant_id as string;
  if (live === null || replayed === null) {
    diff.add({ kind: "lot", grant_id: grantId, field: "exists", live: live !== null, replayed: replayed !== null });
    return;
  }
  for (const field of ["unit", "type", "remaining", "held"] as const) {
    if (live[field] !== replayed[field]) {
      diff.add({
        kind: "lot",
        grant_id: grantId,
        unit: live.unit,
        field,
        live: live[field],
        replayed: replayed[field],
      });
    }
  }
  if (replayed.voided && !live.voided) {
    diff.add({ kind: "lot", grant_id: grantId, unit: live.unit, field: "voided", live: false, replayed: true });
  }
}

export interface TotalState {
  unit: string;
  type: string;
  remaining: number;
  held: number;
}

/** Per unit and credit type, Σ remaining and Σ held of the live lots beside Σ amount and Σ held_delta of the entries. */
export function compareTotals(live: readonly TotalState[], replayed: readonly TotalState[], diff: DiffList): void {
  const key = (t: TotalState) => `${t.unit}\u0000${t.type}`;
  const liveBy = new Map(live.map((t) => [key(t), t]));
  const replayedBy = new Map(replayed.map((t) => [key(t), t]));
  const keys = [...new Set([...liveBy.keys(), ...replayedBy.keys()])].sort();
  for (const k of keys) {
    const l = liveBy.get(k);
    const r = replayedBy.get(k);
    const ref = (l ?? r) as TotalState;
    for (const field of ["remaining", "held"] as const) {
      const lv = l?.[field] ?? 0;
      const rv = r?.[field] ?? 0;
      if (lv !== rv) diff.add({ kind: "total", unit: ref.unit, credit_type: ref.type, field, live: lv, replayed: rv });
    }
  }
}

/** The live head at the replay's time: the last entry recorded by then, and how many there were. */
export interface HeadState {
  seq: number;
  hash: string;
  count: number;
}

export function compareHead(live: HeadState, replayed: ChainState, diff: DiffList): void {
  if (live.seq !== replayed.seq) diff.add({ kind: "seq", field: "head_seq", live: live.seq, replayed: replayed.seq });
  if (live.count !== replayed.count)
    diff.add({ kind: "seq", field: "count", live: live.count, replayed: replayed.count });
  if (live.hash !== replayed.hash)
    diff.add({ kind: "chain", field: "head_hash", live: live.hash, replayed: replayed.hash });
}
