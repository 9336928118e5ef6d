/**
 * Sealing: how an account turns the drafts of one transaction into served
 * entries. The seq, ids and hash chain are what make the ledger gapless and
 * tamper-evident, so they are assigned here, in one place, and nowhere else.
 */
import { entryHash } from "./hash";
import { wellFormed } from "./ids";
import { assert, type Entry, type EntryDraft } from "./types";
import { iso } from "./views";

/** What the account stamps on every entry of one transaction, and the chain head it extends. */
export interface SealContext {
  accountId: string;
  actor: string;
  txnId: string;
  headSeq: number;
  headHash: string;
  nowMs: number;
}

/** The served entries and the chain head after them (unchanged when there are no drafts). */
export interface Sealed {
  entries: Entry[];
  headSeq: number;
  headHash: string;
}

/**
 * Numbers drafts from `headSeq + 1`, ids them `<txnId>.<index>`, and links
 * each one's `prev_hash` to the hash before it.
 * @example sealEntries(drafts, { accountId, actor, txnId: "txn_1", headSeq: 0, headHash: GENESIS_HASH, nowMs })
 */
export function sealEntries(drafts: readonly EntryDraft[], c: SealContext): Sealed {
  let prevHash = c.headHash;
  let seq = c.headSeq;
  const entries = drafts.map((d, i): Entry => {
    seq++;
    const unhashed: Omit<Entry, "hash"> = {
      account_id: c.accountId,
      seq,
      entry_id: `${c.txnId}.${i}`,
      txn_id: c.txnId,
      kind: d.kind,
      unit: d.unit,
      amount: d.amount,
      held_delta: d.heldDelta,
      grant_id: d.grantId,
      credit_type: d.creditType,
      ref: d.ref,
      actor: c.actor,
      reason: d.reason,
      effective_at: iso(d.effectiveAtMs),
      recorded_at: iso(c.nowMs),
      prev_hash: prevHash,
      // Absent, not null, when the draw was not metered: older entries hash as they always did.
      ...(d.rating ? { rating: { ...d.rating } } : {}),
      ...(d.conversion ? { conversion: { ...d.conversion } } : {}),
    };
    // SQLite stores a lone surrogate as U+FFFD: such an entry would never match its hash again.
    assert(wellFormed(unhashed), `entry ${unhashed.entry_id} has a string that is not well-formed Unicode`);
    const entry: Entry = { ...unhashed, hash: entryHash(unhashed) };
    prevHash = entry.hash;
    return entry;
  });
  return { entries, headSeq: seq, headHash: prevHash };
}
