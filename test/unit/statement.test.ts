/** Statements, the pure part: figures per kind, window ends on the chain, the window's rules. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ENTRY_KINDS, MAX_AMOUNT } from "../../src/ledger";
import {
  checkStatementWindow,
  firstSeqAtOrAfter,
  STATEMENT_FIGURE_OF,
  STATEMENT_MAX_ENTRIES,
  statementFigures,
  statementRange,
  windowTooLong,
} from "../../src/ledger/statement";

describe("statementFigures", () => {
  it("sorts each kind into its figure, consumption and expiry served positive", () => {
    const out = statementFigures(100, [
      { kind: "grant", amount: 500 },
      { kind: "debit", amount: -30 },
      { kind: "hold", amount: 0 },
      { kind: "hold.captured", amount: -15 },
      { kind: "hold.released", amount: 0 },
      { kind: "receipt", amount: 0 },
      { kind: "receipt.settled", amount: -7 },
      { kind: "grant.voided", amount: -40 },
      { kind: "grant.expired", amount: -20 },
      { kind: "transfer.in", amount: 9 },
    ]);
    // opening 100; granted 500; consumed 30 + 15 + 7 = 52; expired 20; other −40 + 9 = −31.
    // closing 100 + 500 − 52 − 20 − 31 = 497 = 100 + Σ amounts (397).
    expect(out).toEqual({
      ok: true,
      value: { opening: 100, granted: 500, consumed: 52, expired: 20, other: -31, closing: 497 },
    });
  });

  it("places every kind the ledger knows", () => {
    for (const kind of ENTRY_KINDS)
      expect(STATEMENT_FIGURE_OF[kind], kind).toMatch(/^(granted|consumed|expired|other)$/);
    expect(Object.keys(STATEMENT_FIGURE_OF).sort()).toEqual([...ENTRY_KINDS].sort());
  });

  it("closing is always opening + Σ amounts", () => {
    const entry = fc.record({
      kind: fc.constantFrom(...ENTRY_KINDS),
      amount: fc.integer({ min: -1_000_000, max: 1_000_000 }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e12 }), fc.array(entry, { maxLength: 50 }), (opening, entries) => {
        const out = statementFigures(opening, entries);
        if (!out.ok) throw new Error(out.error.detail);
        const sum = entries.reduce((n, e) => n + e.amount, 0);
        expect(out.value.closing).toBe(opening + sum);
      }),
    );
  });

  it("an empty window closes at its opening", () => {
    expect(statementFigures(42, [])).toEqual({
      ok: true,
      value: { opening: 42, granted: 0, consumed: 0, expired: 0, other: 0, closing: 42 },
    });
  });

  it("refuses figures past 2^53 − 1 rather than serve a rounded one", () => {
    const grants = Array.from({ length: 10 }, () => ({ kind: "grant" as const, amount: MAX_AMOUNT }));
    const out = statementFigures(0, grants);
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.error).toMatchObject({ code: "invalid_request", detail: expect.stringMatching(/narrow/) });
    // Nine fit: 9·10^15 < 2^53.
    expect(statementFigures(0, grants.slice(0, 9)).ok).toBe(true);
  });
});

describe("firstSeqAtOrAfter / statementRange", () => {
  // recorded_at by seq (index 0 unused): ties are one transaction, or one millisecond.
  const times = [0, 10, 10, 20, 30, 30, 30, 40];
  const head = times.length - 1;
  const at = (seq: number) => {
    const t = times[seq];
    if (t === undefined || seq < 1) throw new Error(`probe out of the chain: ${seq}`);
    return t;
  };

  it("finds the first entry at or after a time, ties included", () => {
    expect(firstSeqAtOrAfter(head, at, 0)).toBe(1);
    expect(firstSeqAtOrAfter(head, at, 10)).toBe(1);
    expect(firstSeqAtOrAfter(head, at, 11)).toBe(3);
    expect(firstSeqAtOrAfter(head, at, 30)).toBe(4);
    expect(firstSeqAtOrAfter(head, at, 31)).toBe(7);
    expect(firstSeqAtOrAfter(head, at, 41)).toBe(head + 1);
    expect(firstSeqAtOrAfter(0, at, 5)).toBe(1);
  });

  it("[from, to): an entry recorded at `to` opens the next window", () => {
    expect(statementRange(head, at, 10, 30)).toEqual({ first: 1, last: 3 });
    expect(statementRange(head, at, 30, 41)).toEqual({ first: 4, last: 7 });
    // Nothing in between: an empty range (last < first) whose `last` is the head before it.
    expect(statementRange(head, at, 31, 40)).toEqual({ first: 7, last: 6 });
    expect(statementRange(0, at, 0, 100)).toEqual({ first: 1, last: 0 });
  });

  it("matches a scan of the chain, and adjacent windows split it with nothing lost or counted twice", () => {
    const chain = fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 60 }).map((steps) => {
      const t = [0];
      for (const s of steps) t.push((t[t.length - 1] ?? 0) + s);
      return t;
    });
    fc.assert(
      fc.property(chain, fc.integer({ min: -2, max: 200 }), fc.integer({ min: 1, max: 100 }), (t, from, len) => {
        const h = t.length - 1;
        const probes: number[] = [];
        const probe = (seq: number) => {
          probes.push(seq);
          return t[seq] as number;
        };
        const to = from + len;
        const r = statementRange(h, probe, from, to);
        const scanned = t.flatMap((ms, seq) => (seq >= 1 && ms >= from && ms < to ? [seq] : []));
        const got = r.last >= r.first ? Array.from({ length: r.last - r.first + 1 }, (_, i) => r.first + i) : [];
        expect(got).toEqual(scanned);
        expect(probes.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(h + 1)) + 2);
        const next = statementRange(h, probe, to, to + len);
        expect(next.first).toBe(r.last + 1);
      }),
    );
  });
});

describe("checkStatementWindow / windowTooLong", () => {
  const now = Date.UTC(2026, 10, 25, 12);

  it("wants from < to ≤ now", () => {
    expect(checkStatementWindow(now - 10, now, now)).toBeNull();
    expect(checkStatementWindow(now, now, now)).toMatchObject({ code: "invalid_request", detail: /before/ });
    expect(checkStatementWindow(now - 1, now - 2, now)).toMatchObject({ code: "invalid_request" });
    expect(checkStatementWindow(now - 10, now + 1, now)).toMatchObject({ code: "invalid_request", detail: /future/ });
  });

  it("says how many entries the window holds, and where a window that fits may end", () => {
    const from = now - 60_000;
    const tooLong = { first: 5, last: 5 + STATEMENT_MAX_ENTRIES };
    const out = windowTooLong(tooLong, now - 1000, from);
    expect(out.detail).toContain(`holds ${STATEMENT_MAX_ENTRIES + 1} entries`);
    expect(out.detail).toContain("narrow the window");
    expect(out.detail).toContain(`to=${new Date(now - 1000).toISOString()}`);
    // One millisecond holds more than the bound: no window from `from` fits, so no hint.
    expect(windowTooLong(tooLong, from, from).detail).not.toContain("to=");
  });
});
