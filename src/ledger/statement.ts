/**
 * Customer statements, the pure part: which figure each entry kind moves,
 * the figures of a window, and where a window starts and ends on the chain.
 * The account's Durable Object (src/account/statement.ts) supplies the reads.
 *
 * A window is [from, to) by `recorded_at`: an entry recorded exactly at `to`
 * opens the next window, so the closing of one window is, by construction,
 * the opening of the window that starts where it ends.
 */
import { type EntryKind, err, type LedgerError, ok, type Result } from "./types";

/** Every refusal of a statement's own rules is a 400 invalid_request. */
export type StatementRefusal = Extract<LedgerError, { code: "invalid_request" }>;

/** A statement serves at most this many entries: the window may hold no more (all units counted). */
export const STATEMENT_MAX_ENTRIES = 10_000;

export type StatementFigure = "granted" | "consumed" | "expired" | "other";

/**
 * The figure each kind's amount moves. A Record over every kind, so a new
 * kind cannot be written without deciding where it counts. Holds, receipts
 * and releases move `held`, never `amount` (their amount is 0), so they sit
 * in `other` and change nothing there.
 */
export const STATEMENT_FIGURE_OF: Readonly<Record<EntryKind, StatementFigure>> = {
  grant: "granted",
  debit: "consumed",
  "hold.captured": "consumed",
  "receipt.settled": "consumed",
  invoice: "consumed",
  "grant.expired": "expired",
  "grant.voided": "other",
  "grant.refunded": "other",
  "invoice.reversal": "other",
  "transfer.out": "other",
  "transfer.in": "other",
  hold: "other",
  "hold.released": "other",
  receipt: "other",
  // A rollover's pair (recurring grants) nets to zero in one transaction.
  "grant.rolled_over": "other",
  rollover: "other",
};

export interface StatementFigures {
  opening: number;
  /** Σ amount of `grant` entries. */
  granted: number;
  /** −Σ amount of consumption: debits, hold captures, receipt settlements, invoices. */
  consumed: number;
  /** −Σ amount of `grant.expired` entries. */
  expired: number;
  /** Σ amount of everything else, signed: voids, refunds, reversals, transfers. */
  other: number;
  /** opening + granted − consumed − expired + other. */
  closing: number;
}

/**
 * The figures of a window from its opening total and its entries (of one
 * unit). Refused when a figure would pass 2^53 − 1: a JSON number past it is
 * not exact, and the signed digest would commit to a rounded figure. Each
 * amount is at most 10^15, so checking after every addition is exact.
 * @example statementFigures(100, [{ kind: "debit", amount: -30 }]) // ok: consumed 30, closing 70
 */
export function statementFigures(
  opening: number,
  entries: Iterable<{ kind: EntryKind; amount: number }>,
): Result<StatementFigures, StatementRefusal> {
  const sums: Record<StatementFigure, number> = { granted: 0, consumed: 0, expired: 0, other: 0 };
  for (const e of entries) {
    const figure = STATEMENT_FIGURE_OF[e.kind];
    // Consumption and expiry are served as positive figures: they take credits away.
    sums[figure] += figure === "consumed" || figure === "expired" ? -e.amount : e.amount;
    if (!Number.isSafeInteger(sums[figure])) {
      return err({ code: "invalid_request", detail: `the window's ${figure} passes 2^53 - 1; narrow the window` });
    }
  }
  const closing = opening + sums.granted - sums.consumed - sums.expired + sums.other;
  return ok({ opening, ...sums, closing });
}

/**
 * The first seq in 1..headSeq recorded at or after `atMs` (headSeq + 1 when
 * none is). `recorded_at` never decreases along the chain, so a binary search
 * over point reads by seq finds it: at most ⌈log2(headSeq + 1)⌉ probes,
 * whatever the length of the history.
 * @example firstSeqAtOrAfter(3, (seq) => [0, 10, 20, 30][seq] ?? 0, 15) // 2
 */
export function firstSeqAtOrAfter(headSeq: number, recordedAtMsOf: (seq: number) => number, atMs: number): number {
  let lo = 1;
  let hi = headSeq + 1;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (recordedAtMsOf(mid) < atMs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The seqs of the entries recorded in [fromMs, toMs): `first` … `last` (empty when last < first). */
export interface StatementRange {
  first: number;
  last: number;
}

export function statementRange(
  headSeq: number,
  recordedAtMsOf: (seq: number) => number,
  fromMs: number,
  toMs: number,
): StatementRange {
  const first = firstSeqAtOrAfter(headSeq, recordedAtMsOf, fromMs);
  const last = firstSeqAtOrAfter(headSeq, recordedAtMsOf, toMs) - 1;
  return { first, last };
}

/**
 * The window's own rules: from < to, and `to` not past the account's clock.
 * A `to` at or before now makes the statement final: an entry recorded later
 * is recorded at or after now, so outside [from, to), and the same request
 * later serves the same figures and entries.
 */
export function checkStatementWindow(fromMs: number, toMs: number, nowMs: number): StatementRefusal | null {
  if (fromMs >= toMs) return { code: "invalid_request", detail: "from must be before to" };
  if (toMs > nowMs) {
    return {
      code: "invalid_request",
      detail: `to may not be in the future (the account's clock reads ${new Date(nowMs).toISOString()})`,
    };
  }
  return null;
}

/** The refusal of a window holding more entries than a statement serves. */
export function windowTooLong(
  range: StatementRange,
  firstOutsideAtMs: number | null,
  fromMs: number,
): StatementRefusal {
  const held = range.last - range.first + 1;
  // A window ending at the recorded_at of the first entry that does not fit
  // holds at most the bound (every entry before it in seq); none when that is `from` itself.
  const hint =
    firstOutsideAtMs !== null && firstOutsideAtMs > fromMs
      ? ` (to=${new Date(firstOutsideAtMs).toISOString()} fits)`
      : "";
  return {
    code: "invalid_request",
    detail: `the window holds ${held} entries and a statement serves at most ${STATEMENT_MAX_ENTRIES}: narrow the window${hint}`,
  };
}
