/** Sealing drafts onto an account's chain (src/ledger/entries.ts): seqs, ids, times and hashes. */
import { describe, expect, it } from "vitest";
import { type EntryDraft, entryHash, GENESIS_HASH, sealEntries, verifyChain } from "../../src/ledger";
import { deepFreeze, T0 } from "./fixtures";

const draft = (over: Partial<EntryDraft> = {}): EntryDraft => ({
  kind: "debit",
  unit: "credits",
  amount: -5,
  heldDelta: 0,
  grantId: "g1",
  creditType: "purchased",
  ref: "d1",
  reason: null,
  effectiveAtMs: T0,
  ...over,
});

const base = { accountId: "acct_1", actor: "key_1:writer", txnId: "txn_a", nowMs: T0 + 1000 };

describe("sealEntries", () => {
  it("numbers a first transaction from seq 1 and links it to the genesis hash", () => {
    const drafts = deepFreeze([draft(), draft({ grantId: "g2", amount: -3, creditType: "promotional" })]);
    const sealed = sealEntries(drafts, { ...base, headSeq: 0, headHash: GENESIS_HASH });
    expect(sealed.entries.map((e) => [e.seq, e.entry_id, e.txn_id])).toEqual([
      [1, "txn_a.0", "txn_a"],
      [2, "txn_a.1", "txn_a"],
    ]);
    expect(sealed.entries[0]?.prev_hash).toBe(GENESIS_HASH);
    expect(sealed.entries[1]?.prev_hash).toBe(sealed.entries[0]?.hash);
    expect(verifyChain(sealed.entries)).toBeNull();
    expect(sealed.headSeq).toBe(2);
    expect(sealed.headHash).toBe(sealed.entries[1]?.hash);
  });

  it("serves every member of the draft, stamped with the account, actor and time of the transaction", () => {
    const d = draft({ kind: "hold", amount: 0, heldDelta: 7, ref: "h1", reason: "why", effectiveAtMs: T0 - 60_000 });
    const [entry] = sealEntries([d], { ...base, headSeq: 0, headHash: GENESIS_HASH }).entries;
    expect(entry).toEqual({
      account_id: "acct_1",
      seq: 1,
      entry_id: "txn_a.0",
      txn_id: "txn_a",
      kind: "hold",
      unit: "credits",
      amount: 0,
      held_delta: 7,
      grant_id: "g1",
      credit_type: "purchased",
      ref: "h1",
      actor: "key_1:writer",
      reason: "why",
      effective_at: new Date(T0 - 60_000).toISOString(),
      recorded_at: new Date(T0 + 1000).toISOString(),
      prev_hash: GENESIS_HASH,
      hash: expect.any(String),
    });
    const { hash, ...unhashed } = entry ?? { hash: "" };
    expect(hash).toBe(entryHash(unhashed as Parameters<typeof entryHash>[0]));
  });

  it("continues an existing chain from its head", () => {
    const first = sealEntries([draft(), draft()], { ...base, headSeq: 0, headHash: GENESIS_HASH });
    const next = sealEntries([draft({ ref: "d2" })], {
      ...base,
      txnId: "txn_b",
      headSeq: first.headSeq,
      headHash: first.headHash,
    });
    expect(next.entries[0]?.seq).toBe(3);
    expect(next.entries[0]?.prev_hash).toBe(first.headHash);
    expect(verifyChain([...first.entries, ...next.entries])).toBeNull();
    expect(verifyChain(next.entries, first.headHash, 3)).toBeNull();
  });

  it("leaves the head where it was when there is nothing to seal", () => {
    expect(sealEntries([], { ...base, headSeq: 9, headHash: "ab".repeat(32) })).toEqual({
      entries: [],
      headSeq: 9,
      headHash: "ab".repeat(32),
    });
  });

  it("is a pure function of its inputs: the same drafts and head seal to the same entries", () => {
    const ctx = { ...base, headSeq: 4, headHash: "cd".repeat(32) };
    expect(sealEntries([draft(), draft()], ctx)).toEqual(sealEntries([draft(), draft()], ctx));
  });

  it("chains each hash into the next: a changed draft changes every later hash", () => {
    const ctx = { ...base, headSeq: 0, headHash: GENESIS_HASH };
    const a = sealEntries([draft(), draft(), draft()], ctx).entries;
    const b = sealEntries([draft({ amount: -6 }), draft(), draft()], ctx).entries;
    expect(a.map((e, i) => e.hash === b[i]?.hash)).toEqual([false, false, false]);
  });
});
