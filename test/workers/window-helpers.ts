/** Shared steps of the window and as_of tests: ship, checkpoint and compact one account; read it whole. */
import { runInDurableObject } from "cloudflare:test";
import type { AccountLedger } from "../../src/account/account-do";
import type { WindowReport } from "../../src/account/window";
import { call, ledgerStubFor } from "./helpers";

export type Settings = { window: number; checkpointEvery: number };

/** No compaction (a window larger than any test history), checkpoints every `every` entries. */
export const noCompaction = (every: number): Settings => ({ window: 1_000_000_000, checkpointEvery: every });

export async function doNow(accountId: string): Promise<number> {
  return runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => Date.now() + inst.clock.offsetMs);
}

/** Ships the whole outbox, then one window run (checkpoint if due, move the floor, delete a batch). */
export async function settle(accountId: string, s: Settings): Promise<WindowReport> {
  return runInDurableObject(ledgerStubFor(accountId), async (inst: AccountLedger) => {
    // The real alarm may be shipping too (drain then joins its batch): drain until nothing waits.
    for (let i = 0; ; i++) {
      const drained = await inst.drain();
      if (drained.ok && drained.pending === 0) break;
      if (i === 10) throw new Error(`outbox did not drain: ${JSON.stringify(drained)}`);
    }
    return inst.compactNow(s);
  });
}

/** Window runs until nothing is left to delete (bounded). */
export async function compactAll(accountId: string, s: Settings): Promise<WindowReport> {
  for (let i = 0; i < 100; i++) {
    const r = await settle(accountId, s);
    if (!r.more && r.deleted === 0) return r;
  }
  throw new Error("compaction did not finish in 100 runs");
}

/** Every entry, through the API's ledger pages of `limit`. */
export async function exportAll(accountId: string, limit = 1000): Promise<{ pages: any[]; entries: any[] }> {
  const pages: any[] = [];
  let after = 0;
  for (let page = 0; page < 1000; page++) {
    const res = await call("GET", `/v1/accounts/${accountId}/ledger?after_seq=${after}&limit=${limit}`);
    if (res.status !== 200) throw new Error(`ledger page: ${res.status} ${JSON.stringify(res.json)}`);
    pages.push(res.json);
    if (res.json.next_after_seq === null) return { pages, entries: pages.flatMap((p) => p.entries) };
    after = res.json.next_after_seq;
  }
  throw new Error("export did not end");
}

/** The object's own rows: entries and lot marks it holds, its floor and checkpoints. */
export async function storageCounts(accountId: string) {
  return runInDurableObject(ledgerStubFor(accountId), (_inst: AccountLedger, state) => {
    const one = (q: string) => Number(state.storage.sql.exec(q).one().n);
    return {
      entries: one("SELECT count(*) AS n FROM entries"),
      marks: one("SELECT count(*) AS n FROM lot_marks"),
      floor: one("SELECT seq AS n FROM window_floor"),
      checkpoints: one("SELECT count(*) AS n FROM checkpoints"),
      minSeq: one("SELECT COALESCE(MIN(seq), 0) AS n FROM entries"),
    };
  });
}
