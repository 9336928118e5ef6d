/**
 * The archive's format and its independent verifier (scripts/verify-archive.mjs,
 * node:crypto + canonicalize, none of the gate's code): for random histories
 * cut into segments the way the archival job cuts them (by cutoff, month and
 * size), the segments hold the history exactly, their sums add up to a
 * reference model's, their lines are canonical JSON that re-hash to `hash`,
 * and the verifier accepts them; any byte changed in any segment, a segment
 * missing, or segments that do not chain are refused.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script without types
import { verifyArchive, verifyEntries } from "../../scripts/verify-archive.mjs";
import {
  addSums,
  buildSegment,
  ChainError,
  entryFromLine,
  nextRun,
  type Segment,
  segmentKey,
} from "../../src/archive/segment-core";
import { type Entry, entryHash, GENESIS_HASH } from "../../src/ledger";

const DAY = 86_400_000;
const T0 = Date.UTC(2025, 10, 20);

interface Step {
  gapDays: number;
  amount: number;
  held: number;
  unit: "credits" | "tokens";
  type: "purchased" | "promotional" | null;
  metered: boolean;
}

const step = fc.record({
  gapDays: fc.integer({ min: 0, max: 20 }),
  amount: fc.integer({ min: -500, max: 500 }),
  held: fc.integer({ min: -50, max: 50 }),
  unit: fc.constantFrom("credits" as const, "tokens" as const),
  type: fc.constantFrom("purchased" as const, "promotional" as const, null),
  metered: fc.boolean(),
});

/** A sealed history: the ledger's own entryHash, chained from genesis. */
function history(steps: Step[], accountId = "acct_1"): Entry[] {
  const out: Entry[] = [];
  let prev = GENESIS_HASH;
  let at = T0;
  for (const [i, s] of steps.entries()) {
    at += s.gapDays * DAY + 1000;
    const body: Omit<Entry, "hash"> = {
      account_id: accountId,
      seq: i + 1,
      entry_id: `txn_${i}.0`,
      txn_id: `txn_${i}`,
      kind: s.amount >= 0 ? "grant" : "debit",
      unit: s.unit,
      amount: s.amount,
      held_delta: s.held,
      grant_id: "g1",
      credit_type: s.type,
      ref: i % 3 === 0 ? null : `r-${i} "quoted" ☃`,
      actor: "key_1:gateway",
      reason: null,
      effective_at: new Date(at).toISOString(),
      recorded_at: new Date(at).toISOString(),
      prev_hash: prev,
      ...(s.metered ? { rating: { meter: "tok", quantity: 3, price_version: 1 } } : {}),
    };
    const e = { ...body, hash: entryHash(body) } as Entry;
    out.push(e);
    prev = e.hash;
  }
  return out;
}

/** Cuts the history as the job does, segment after segment from the archive's head. */
function archive(entries: Entry[], cutoffMs: number, maxEntries: number): Segment[] {
  const segs: Segment[] = [];
  let seq = 0;
  let hash = GENESIS_HASH;
  for (let guard = 0; guard <= entries.length; guard++) {
    const run = nextRun(entries.slice(seq), cutoffMs, maxEntries);
    if (run.length === 0) break;
    const seg = buildSegment(3, run, seq, hash);
    segs.push(seg);
    seq = seg.lastSeq;
    hash = seg.lastHash;
  }
  return segs;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function manifestOf(segs: Segment[]) {
  return JSON.stringify({
    format: "credit-gate.ledger-archive.manifest.v1",
    shard: 3,
    month: "any",
    run_id: "run_1",
    created_at: new Date(T0).toISOString(),
    segments: segs.map((s) => ({
      account_id: s.accountId,
      first_seq: s.firstSeq,
      last_seq: s.lastSeq,
      r2_key: s.key,
      sha256: sha256(s.body),
      bytes: s.body.byteLength,
      entries: s.entries,
      first_prev_hash: s.firstPrevHash,
      last_hash: s.lastHash,
      sums: s.sums,
    })),
  });
}

const objects = (segs: Segment[]) => {
  const m = new Map(segs.map((s) => [s.key, s.body]));
  return async (k: string) => m.get(k) ?? null;
};

describe("archive segments", () => {
  it("hold exactly the entries before the cutoff, seq-contiguous, one month and ≤ max each; sums add up", () => {
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 400 }),
        (steps, max, cutDays) => {
          const entries = history(steps);
          const cutoff = T0 + cutDays * DAY;
          const segs = archive(entries, cutoff, max);
          // Reference: the longest prefix recorded before the cutoff.
          const firstNew = entries.findIndex((e) => Date.parse(e.recorded_at) >= cutoff);
          const expected = firstNew < 0 ? entries : entries.slice(0, firstNew);
          const lines = segs.flatMap((s) => new TextDecoder().decode(s.body).trimEnd().split("\n").filter(Boolean));
          expect(lines.map(entryFromLine)).toEqual(expected);
          for (const s of segs) {
            expect(s.entries).toBeLessThanOrEqual(max);
            const months = new Set(expected.slice(s.firstSeq - 1, s.lastSeq).map((e) => e.recorded_at.slice(0, 7)));
            expect(months).toEqual(new Set([s.month]));
            expect(s.key).toBe(segmentKey(3, s.month, "acct_1", s.firstSeq, s.lastSeq));
          }
          // Σ per unit and type against a plain fold of the entries.
          const model = new Map<string, [number, number]>();
          for (const e of expected) {
            const k = `${e.unit}/${e.credit_type}`;
            const [a, h] = model.get(k) ?? [0, 0];
            model.set(k, [a + e.amount, h + e.held_delta]);
          }
          const total = segs.reduce((t, s) => addSums(t, s.sums), addSums([], []));
          expect(new Map(total.map((t) => [`${t.unit}/${t.credit_type}`, [t.amount, t.held_delta]]))).toEqual(model);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("each line is canonical JSON whose SHA-256 (without `hash`) is its hash; the verifier accepts the archive", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 7 }),
        async (steps, max) => {
          const entries = history(steps);
          const segs = archive(entries, T0 + 10_000 * DAY, max);
          expect(segs.reduce((n, s) => n + s.entries, 0)).toBe(entries.length);
          const result = await verifyArchive([manifestOf(segs)], objects(segs));
          expect(result.errors).toEqual([]);
          expect(result).toMatchObject({ ok: true, segments: segs.length, accounts: 1, entries: entries.length });
        },
      ),
      { numRuns: 100 },
    );
  });

  it("the verifier refuses any changed byte, a missing segment, or segments that do not chain", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 2, maxLength: 30 }),
        fc.integer({ min: 1, max: 5 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        async (steps, max, where, xor) => {
          const segs = archive(history(steps), T0 + 10_000 * DAY, max);
          const manifest = manifestOf(segs);
          const victim = segs[where % segs.length] as Segment;
          const body = victim.body.slice();
          const at = where % body.byteLength;
          body[at] = (body[at] as number) ^ xor;
          const tampered = segs.map((s) => (s === victim ? { ...s, body } : s));
          const bad = await verifyArchive([manifest], objects(tampered));
          expect(bad.ok).toBe(false);
          expect(bad.errors.join("\n")).toContain(victim.key);
          // The same bytes with a manifest re-computed over them still fail: the lines no longer re-hash or chain.
          const rehashed = await verifyArchive([manifestOf(tampered)], objects(tampered));
          expect(rehashed.ok).toBe(false);
          // A segment dropped from the manifest leaves a gap (only the tail's loss needs the account's head to see).
          if (segs.length > 1) {
            const dropped = segs[where % (segs.length - 1)];
            const missing = await verifyArchive([manifestOf(segs.filter((s) => s !== dropped))], objects(segs));
            expect(missing.ok).toBe(false);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("buildSegment refuses entries that do not continue the archive; verifyEntries names the break", () => {
    const entries = history([
      { gapDays: 1, amount: 10, held: 0, unit: "credits", type: "purchased", metered: false },
      { gapDays: 1, amount: -3, held: 0, unit: "credits", type: "purchased", metered: true },
      { gapDays: 1, amount: -2, held: 0, unit: "credits", type: "purchased", metered: false },
    ]);
    expect(() => buildSegment(0, entries.slice(1), 0, GENESIS_HASH)).toThrow(ChainError);
    expect(() => buildSegment(0, entries.slice(1), 1, GENESIS_HASH)).toThrow(/prev_hash/);
    const forged = entries.map((e) => (e.seq === 2 ? { ...e, amount: -30 } : e));
    expect(() => buildSegment(0, forged, 0, GENESIS_HASH)).toThrow(/seq 2: hash/);
    expect(verifyEntries(forged)).toEqual(["seq 2: hash does not match its contents"]);
    expect(verifyEntries(entries)).toEqual([]);
    expect(buildSegment(0, entries.slice(1), 1, entries[0]?.hash ?? "").firstSeq).toBe(2);
  });
});
