/**
 * One replay, step by step: pull the account's entries from the live object a
 * page at a time and fold them into the scratch store (re-verifying the
 * chain), then page through the live object's lots and compare each with its
 * rebuild, then the totals per unit and type and the head.
 *
 * Replay of now (`asOfMs` null): the live object may be written meanwhile, so
 * every live page says the head it was read at and the fold catches up to it
 * before that page is compared (the fold only ever moves forward; pages come
 * in order). Replay as of a past time: entries recorded after it are never
 * folded and the live side answers from its as_of machinery, so nothing moves.
 */
import type { SourceHead, SourceLots, SourceQuery } from "../account/replay-source";
import { type Entry, iso } from "../ledger";
import {
  CHAIN_START,
  type ChainState,
  compareHead,
  compareLot,
  compareTotals,
  type DiffItem,
  DiffList,
  type FoldLimit,
  foldEntries,
  REPLAY_ENTRIES_PAGE,
  REPLAY_LOTS_PAGE,
  REPLAY_MAX_ENTRIES,
  type TotalState,
} from "../ledger/replay-diff";
import type { ScratchStore } from "./store";

/** The live account as the replay reads it: its ledger pages and its read-only replay source. */
export interface LiveAccount {
  entries(afterSeq: number, limit: number): Promise<{ entries: Entry[]; next_after_seq: number | null }>;
  head(asOfMs: number | null): Promise<SourceHead>;
  lots(q: Exclude<SourceQuery, { kind: "head" }>): Promise<SourceLots>;
}

export interface ReplayRequest {
  accountId: string;
  /** null: replay now. */
  asOfMs: number | null;
  /** The live head the gateway read first (it validated the request against it). */
  head: SourceHead;
}

/** What POST /v1/accounts/{id}/replay answers (src/api/replay.ts describes each member). */
export interface ReplayAnswer {
  account_id: string;
  as_of: string;
  replayed_entries: number;
  head_seq: number;
  head_hash: string;
  matches: boolean;
  diff: DiffItem[];
  diff_more: boolean;
}

/** A replay that cannot finish: more entries than it rebuilds, or an account that would not hold still. */
export class ReplayRefused extends Error {
  constructor(
    readonly code: "invalid_request" | "overloaded",
    detail: string,
  ) {
    super(detail);
  }
}

/** A replay of now re-reads the head at most this many times for the account to hold still while it ends. */
export const REPLAY_SETTLE_ROUNDS = 5;

/** Pages of lots a replay reads at most: every lot has at least one entry, so lots ≤ entries. */
const LOT_PAGES_MAX = Math.ceil(REPLAY_MAX_ENTRIES / REPLAY_LOTS_PAGE) + 1;

export async function replayAccount(store: ScratchStore, live: LiveAccount, req: ReplayRequest): Promise<ReplayAnswer> {
  const { accountId, asOfMs } = req;
  const diff = new DiffList();
  let chain: ChainState = CHAIN_START;
  let ledgerEnd = false;

  /** Folds entries through `targetSeq` (now) or up to the first recorded after as_of. */
  const foldThrough = async (targetSeq: number) => {
    const limit: FoldLimit = asOfMs === null ? { throughSeq: targetSeq } : { asOfMs };
    while (asOfMs !== null ? !ledgerEnd : chain.seq < targetSeq) {
      if (chain.count >= REPLAY_MAX_ENTRIES) {
        throw new ReplayRefused(
          "invalid_request",
          `the account gained entries during the replay past the ${REPLAY_MAX_ENTRIES} one replay rebuilds; pass an as_of`,
        );
      }
      const want = asOfMs === null ? Math.min(REPLAY_ENTRIES_PAGE, targetSeq - chain.seq) : REPLAY_ENTRIES_PAGE;
      const page = await live.entries(chain.seq, want);
      const folded = foldEntries(accountId, chain, page.entries, limit, diff);
      store.apply(folded);
      chain = folded.chain;
      if (folded.done || page.next_after_seq === null) ledgerEnd = true;
      // Now: a ledger that ends before the head it was read at (the head comparison reports it).
      if (page.entries.length === 0) break;
    }
  };

  store.init();
  await foldThrough(req.head.seq);

  const liveTotals = new Map<string, TotalState>();
  const addLive = (unit: string, type: string, remaining: number, held: number) => {
    const key = `${unit}\u0000${type}`;
    const t = liveTotals.get(key) ?? { unit, type, remaining: 0, held: 0 };
    t.remaining += remaining;
    t.held += held;
    liveTotals.set(key, t);
  };
  const compareLive = async (page: SourceLots) => {
    if (asOfMs === null && page.head_seq > chain.seq) await foldThrough(page.head_seq);
    for (const lot of page.lots) {
      compareLot(lot, store.takeLot(lot.grant_id), diff);
      addLive(lot.unit, lot.type, lot.remaining, lot.held);
    }
  };

  // Every live lot, by grant_id.
  let after: string | null = null;
  for (let pages = 0; pages < LOT_PAGES_MAX; pages++) {
    const page = await live.lots({ kind: "lots", asOfMs, after, limit: REPLAY_LOTS_PAGE });
    await compareLive(page);
    after = page.next_after;
    if (after === null) break;
  }
  // Rebuilt lots no page named: created meanwhile (replay of now: asked for by id), or missing live.
  const unseenPass = async () => {
    for (let pages = 0; pages < LOT_PAGES_MAX; pages++) {
      const unseen = store.unseen(REPLAY_LOTS_PAGE);
      if (unseen.length === 0) return;
      const found =
        asOfMs === null ? await live.lots({ kind: "ids", asOfMs, ids: unseen.map((l) => l.grant_id) }) : null;
      if (found) await compareLive(found);
      const named = new Set(found?.lots.map((l) => l.grant_id));
      for (const lot of unseen) {
        if (!named.has(lot.grant_id)) compareLot(null, lot, diff);
        store.markSeen(lot.grant_id);
      }
    }
  };
  await unseenPass();

  // Totals and head: at as_of, Σ of the lots paged above; now, what the object serves from memory at its
  // head, once the fold stands exactly there with every lot it rebuilt compared.
  let head = req.head;
  let totals = [...liveTotals.values()];
  if (asOfMs === null) {
    for (let round = 0; ; round++) {
      if (round === REPLAY_SETTLE_ROUNDS) {
        throw new ReplayRefused("overloaded", "the account kept changing during the replay; retry, or pass an as_of");
      }
      head = await live.head(null);
      await foldThrough(head.seq);
      // A ledger that ends short of the head stops here: the head comparison reports it.
      if (chain.seq !== head.seq || store.unseen(1).length === 0) break;
      await unseenPass();
    }
    totals = head.totals ?? [];
  }
  compareTotals(totals, store.totals(), diff);
  compareHead(head, chain, diff);

  return {
    account_id: accountId,
    as_of: iso(req.head.as_of_ms),
    replayed_entries: chain.count,
    head_seq: chain.seq,
    head_hash: chain.hash,
    matches: diff.empty,
    diff: diff.items,
    diff_more: diff.more,
  };
}
