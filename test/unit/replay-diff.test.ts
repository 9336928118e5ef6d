/**
 * The pure rules of a replay (src/ledger/replay-diff.ts): entries fold into
 * per-lot and per-unit/type sums with the chain re-verified, and the
 * comparisons name each difference. Expected figures worked out by hand.
 */
import { describe, expect, it } from "vitest";
import { type Entry, type EntryDraft, GENESIS_HASH, sealEntries } from "../../src/ledger";
import {
  CHAIN_START,
  compareHead,
  compareLot,
  compareTotals,
  DiffList,
  foldEntries,
  type LotState,
} from "../../src/ledger/replay-diff";

const T0 = Date.parse("2026-03-01T00:00:00.000Z");
const draft = (over: Partial<EntryDraft>): EntryDraft => ({
  kind: "debit",
  unit: "credits",
  amount: 0,
  heldDelta: 0,
  grantId: "g1",
  creditType: "purchased",
  ref: null,
  reason: null,
  effectiveAtMs: T0,
  ...over,
});

/** Seals each group of drafts as one transaction, a second apart. */
function ledger(groups: EntryDraft[][]): Entry[] {
  const out: Entry[] = [];
  let head = { headSeq: 0, headHash: GENESIS_HASH };
  groups.forEach((drafts, i) => {
    const sealed = sealEntries(drafts, {
      accountId: "a1",
      actor: "t:admin",
      txnId: `txn${i}`,
      ...head,
      nowMs: T0 + i * 1000,
    });
    out.push(...sealed.entries);
    head = { headSeq: sealed.headSeq, headHash: sealed.headHash };
  });
  return out;
}

const HISTORY = () =>
  ledger([
    [draft({ kind: "grant", amount: 100 })],
    [draft({ kind: "grant", amount: 40, grantId: "g2", creditType: "promotional" })],
    [draft({ kind: "hold", heldDelta: 30 })],
    [draft({ kind: "hold.captured", amount: -20, heldDelta: -20 }), draft({ kind: "hold.released", heldDelta: -10 })],
    [draft({ kind: "grant.voided", amount: -40, grantId: "g2", creditType: "promotional" })],
  ]);

describe("foldEntries", () => {
  it("sums amount and held_delta per lot and per unit/type; the chain ends at the last entry", () => {
    const entries = HISTORY();
    const diff = new DiffList();
    const f = foldEntries("a1", CHAIN_START, entries, { throughSeq: 99 }, diff);
    expect(diff.empty).toBe(true);
    expect(f.done).toBe(false);
    // g1: 100 − 20 = 80 remaining; held +30 − 20 − 10 = 0. g2: 40 − 40 = 0, voided.
    expect(f.lots.get("g1")).toMatchObject({ amount: 80, held: 0, voided: false, unit: "credits", type: "purchased" });
    expect(f.lots.get("g2")).toMatchObject({ amount: 0, held: 0, voided: true, type: "promotional" });
    expect([...f.totals.values()]).toEqual([
      { unit: "credits", type: "purchased", amount: 80, held: 0 },
      { unit: "credits", type: "promotional", amount: 0, held: 0 },
    ]);
    const last = entries[entries.length - 1] as Entry;
    expect(f.chain).toEqual({ seq: 6, hash: last.hash, recordedAtMs: T0 + 4000, count: 6 });
  });

  it("as of a time folds the entries recorded by then and says it is done", () => {
    const diff = new DiffList();
    // T0 + 2500: the two grants and the hold (recorded at T0, +1 s, +2 s), not the capture at +3 s.
    const f = foldEntries("a1", CHAIN_START, HISTORY(), { asOfMs: T0 + 2500 }, diff);
    expect(f.done).toBe(true);
    expect(f.chain.seq).toBe(3);
    expect(f.lots.get("g1")).toMatchObject({ amount: 100, held: 30 });
  });

  it("a fold split over pages ends where one fold does", () => {
    const entries = HISTORY();
    const d1 = new DiffList();
    const a = foldEntries("a1", CHAIN_START, entries.slice(0, 2), { throughSeq: 99 }, d1);
    const b = foldEntries("a1", a.chain, entries.slice(2), { throughSeq: 99 }, d1);
    expect(d1.empty).toBe(true);
    expect(b.chain).toEqual(foldEntries("a1", CHAIN_START, entries, { throughSeq: 99 }, new DiffList()).chain);
  });

  it("a rewritten entry is one hash difference at its seq; a relinked one also breaks the next link", () => {
    const entries = HISTORY();
    const tampered = entries.map((e) => (e.seq === 3 ? { ...e, reason: "edited" } : e));
    const diff = new DiffList();
    foldEntries("a1", CHAIN_START, tampered, { throughSeq: 99 }, diff);
    expect(diff.items).toEqual([
      {
        kind: "chain",
        seq: 3,
        field: "hash",
        live: entries[2]?.hash,
        replayed: expect.stringMatching(/^[0-9a-f]{64}$/),
      },
    ]);

    const dropped = entries.filter((e) => e.seq !== 4);
    const d2 = new DiffList();
    foldEntries("a1", CHAIN_START, dropped, { throughSeq: 99 }, d2);
    expect(d2.items).toEqual([
      { kind: "seq", seq: 5, field: "seq", live: 5, replayed: 4 },
      { kind: "chain", seq: 5, field: "prev_hash", live: entries[3]?.hash, replayed: entries[2]?.hash },
    ]);
  });

  it("an entry of another account and a recorded_at that goes back are reported", () => {
    const entries = HISTORY();
    const diff = new DiffList();
    foldEntries("other", CHAIN_START, entries.slice(0, 1), { throughSeq: 99 }, diff);
    expect(diff.items.map((d) => d.field)).toEqual(["account_id"]);
    const back = ledger([[draft({ kind: "grant", amount: 1 })]]);
    const d2 = new DiffList();
    foldEntries("a1", { seq: 0, hash: GENESIS_HASH, recordedAtMs: T0 + 1, count: 0 }, back, { throughSeq: 9 }, d2);
    expect(d2.items).toEqual([
      { kind: "seq", seq: 1, field: "recorded_at", live: new Date(T0).toISOString(), replayed: expect.any(String) },
    ]);
  });
});

describe("comparisons", () => {
  const lot = (over: Partial<LotState> = {}): LotState => ({
    grant_id: "g1",
    unit: "credits",
    type: "purchased",
    remaining: 80,
    held: 5,
    voided: false,
    ...over,
  });

  it("compareLot names each field that differs; voided only when the replay saw a void", () => {
    const diff = new DiffList();
    compareLot(lot(), lot(), diff);
    compareLot(lot({ voided: true }), lot(), diff); // a void with everything held writes no entry
    expect(diff.empty).toBe(true);
    compareLot(lot({ remaining: 79, held: 4 }), lot({ voided: true }), diff);
    compareLot(null, lot({ grant_id: "g9" }), diff);
    compareLot(lot({ grant_id: "g8" }), null, diff);
    expect(diff.items).toEqual([
      { kind: "lot", grant_id: "g1", unit: "credits", field: "remaining", live: 79, replayed: 80 },
      { kind: "lot", grant_id: "g1", unit: "credits", field: "held", live: 4, replayed: 5 },
      { kind: "lot", grant_id: "g1", unit: "credits", field: "voided", live: false, replayed: true },
      { kind: "lot", grant_id: "g9", field: "exists", live: false, replayed: true },
      { kind: "lot", grant_id: "g8", field: "exists", live: true, replayed: false },
    ]);
  });

  it("compareTotals treats a missing unit/type as zeros", () => {
    const diff = new DiffList();
    compareTotals(
      [{ unit: "credits", type: "purchased", remaining: 10, held: 0 }],
      [
        { unit: "credits", type: "purchased", remaining: 10, held: 0 },
        { unit: "credits", type: "promotional", remaining: 0, held: 0 },
        { unit: "gpu", type: "purchased", remaining: 3, held: 1 },
      ],
      diff,
    );
    expect(diff.items).toEqual([
      { kind: "total", unit: "gpu", credit_type: "purchased", field: "remaining", live: 0, replayed: 3 },
      { kind: "total", unit: "gpu", credit_type: "purchased", field: "held", live: 0, replayed: 1 },
    ]);
  });

  it("compareHead compares seq, count and hash", () => {
    const diff = new DiffList();
    compareHead({ seq: 6, hash: "h6", count: 6 }, { seq: 6, hash: "h6", recordedAtMs: 0, count: 6 }, diff);
    expect(diff.empty).toBe(true);
    compareHead({ seq: 7, hash: "h7", count: 7 }, { seq: 6, hash: "h6", recordedAtMs: 0, count: 6 }, diff);
    expect(diff.items.map((d) => d.field)).toEqual(["head_seq", "count", "head_hash"]);
  });

  it("DiffList keeps the first items up to its bound and says there were more", () => {
    const diff = new DiffList(2);
    for (let i = 0; i < 5; i++) diff.add({ kind: "seq", field: "seq", live: i, replayed: i + 1 });
    expect(diff.items.map((d) => d.live)).toEqual([0, 1]);
    expect(diff.more).toBe(true);
    expect(diff.empty).toBe(false);
  });
});
