/**
 * Reconciliation rules: what an account's Durable Object says against what
 * D1's ledger_entries replay to. Pure: the cron gathers both sides and this
 * names every difference. A difference is reported, never repaired.
 */
import { verifyChain } from "./hash";
import type { Entry, Lot } from "./types";

/** Remaining (held or not) and held per unit and credit type. */
export interface Totals {
  unit: string;
  credit_type: string | null;
  remaining: number;
  held: number;
}

/** The DO's side: its chain head and its lots summed. */
export interface DoSnapshot {
  seq: number;
  hash: string;
  /** Outbox rows not yet shipped to D1. */
  pending: number;
  totals: Totals[];
}

/** D1's side, restricted to seq ≤ the DO snapshot's seq (later entries may be in flight). */
export interface D1Replay {
  /** Rows with seq ≤ snapshot seq. */
  count: number;
  /** The hash D1 holds at the snapshot's seq, null when it has no such row. */
  hashAtSeq: string | null;
  /** Highest seq D1 holds for the account, any. */
  maxSeq: number;
  totals: Totals[];
}

export type DriftKind = "seq_gap" | "head_hash" | "balance" | "held" | "chain" | "d1_ahead";

export interface Drift {
  kind: DriftKind;
  unit: string | null;
  credit_type: string | null;
  /** What the DO (the source of truth) says. */
  expected: string | null;
  /** What D1 says. */
  actual: string | null;
  detail: string;
}

/** Sums lots per unit and credit type, as reconciliation compares them. */
export function totalsOf(lots: Iterable<Lot>): Totals[] {
  const byKey = new Map<string, Totals>();
  for (const lot of lots) {
    const key = `${lot.unit}\u0000${lot.type}`;
    const t = byKey.get(key) ?? { unit: lot.unit, credit_type: lot.type, remaining: 0, held: 0 };
    t.remaining += lot.remaining;
    t.held += lot.held;
    byKey.set(key, t);
  }
  return sortTotals([...byKey.values()]);
}

function sortTotals(t: Totals[]): Totals[] {
  return t.sort((a, b) => a.unit.localeCompare(b.unit) || String(a.credit_type).localeCompare(String(b.credit_type)));
}

/**
 * Every difference between the DO snapshot and D1's replay up to the same
 * seq. `laterHeadSeq` is the DO's head read after D1 was queried: D1 rows
 * above it are entries the DO never wrote.
 */
export function compareAccount(snap: DoSnapshot, d1: D1Replay, laterHeadSeq: number): Drift[] {
  const drifts: Drift[] = [];
  if (d1.count !== snap.seq) {
    drifts.push({
      kind: "seq_gap",
      unit: null,
      credit_type: null,
      expected: String(snap.seq),
      actual: String(d1.count),
      detail: `D1 holds ${d1.count} entries with seq ≤ ${snap.seq}; the DO has ${snap.seq}`,
    });
  }
  if (snap.seq > 0 && d1.hashAtSeq !== snap.hash) {
    drifts.push({
      kind: "head_hash",
      unit: null,
      credit_type: null,
      expected: snap.hash,
      actual: d1.hashAtSeq,
      detail: `hash at seq ${snap.seq} differs`,
    });
  }
  if (d1.maxSeq > Math.max(snap.seq, laterHeadSeq)) {
    drifts.push({
      kind: "d1_ahead",
      unit: null,
      credit_type: null,
      expected: String(Math.max(snap.seq, laterHeadSeq)),
      actual: String(d1.maxSeq),
      detail: `D1 holds seq ${d1.maxSeq}, beyond the DO's head`,
    });
  }
  const keyOf = (t: Totals) => `${t.unit}\u0000${t.credit_type ?? ""}`;
  const fromD1 = new Map(d1.totals.map((t) => [keyOf(t), t]));
  const fromDo = new Map(snap.totals.map((t) => [keyOf(t), t]));
  for (const key of new Set([...fromDo.keys(), ...fromD1.keys()])) {
    const want = fromDo.get(key);
    const got = fromD1.get(key);
    const unit = want?.unit ?? got?.unit ?? null;
    const type = want?.credit_type ?? got?.credit_type ?? null;
    const wantRemaining = want?.remaining ?? 0;
    const gotRemaining = got?.remaining ?? 0;
    if (wantRemaining !== gotRemaining) {
      drifts.push({
        kind: "balance",
        unit,
        credit_type: type,
        expected: String(wantRemaining),
        actual: String(gotRemaining),
        detail: `remaining ${unit}/${type}: DO ${wantRemaining}, D1 Σ amount ${gotRemaining}`,
      });
    }
    const wantHeld = want?.held ?? 0;
    const gotHeld = got?.held ?? 0;
    if (wantHeld !== gotHeld) {
      drifts.push({
        kind: "held",
        unit,
        credit_type: type,
        expected: String(wantHeld),
        actual: String(gotHeld),
        detail: `held ${unit}/${type}: DO ${wantHeld}, D1 Σ held_delta ${gotHeld}`,
      });
    }
  }
  return drifts;
}

/**
 * Re-verifies a slice of D1's chain that continues a verified checkpoint.
 * Returns a drift on the first break.
 */
export function chainDrift(entries: readonly Entry[], afterSeq: number, afterHash: string): Drift | null {
  const broken = verifyChain(entries, afterHash, afterSeq + 1);
  if (!broken) return null;
  return {
    kind: "chain",
    unit: null,
    credit_type: null,
    expected: null,
    actual: String(broken.seq),
    detail: `D1 chain breaks at seq ${broken.seq}: ${broken.reason}`,
  };
}

/** Where an account's audit of its D1 chain below the checkpoint stands: after `seq`, whose hash is `hash`. */
export interface AuditPosition {
  seq: number;
  hash: string;
}

export interface AuditStep {
  drift: Drift | null;
  /** Entries this page re-hashed. */
  verified: number;
  /** Where the next page starts; null: the pass is over (reached the target, or broke), start again from seq 1. */
  next: AuditPosition | null;
}

/**
 * One bounded page of the rolling audit, which re-verifies an account's D1
 * chain from seq 1 up to its verified checkpoint (`target`), a page per
 * visit, so an edit below the checkpoint that keeps sums, count and head is
 * still found. `page` holds the D1 entries after `from.seq`, at most
 * `pageLimit`, none beyond `target.seq`. The pass ends at the target, whose
 * hash must be the checkpoint's (a rewritten stretch that re-links cannot
 * reach it), or at the first break, which is a `chain` drift.
 */
export function auditStep(
  page: readonly Entry[],
  from: AuditPosition,
  target: AuditPosition,
  pageLimit: number,
): AuditStep {
  const broken = chainDrift(page, from.seq, from.hash);
  if (broken) return { drift: { ...broken, detail: `audit: ${broken.detail}` }, verified: 0, next: null };
  const last = page[page.length - 1];
  const reached: AuditPosition = last ? { seq: last.seq, hash: last.hash } : from;
  const chain = (detail: string): AuditStep => ({
    drift: { kind: "chain", unit: null, credit_type: null, expected: target.hash, actual: String(reached.seq), detail },
    verified: page.length,
    next: null,
  });
  if (reached.seq >= target.seq) {
    if (reached.seq === target.seq && reached.hash === target.hash)
      return { drift: null, verified: page.length, next: null };
    return chain(`audit: D1 hash at seq ${reached.seq} differs from the verified checkpoint`);
  }
  if (page.length < pageLimit)
    return chain(`audit: D1 has no entry after seq ${reached.seq} (checkpoint ${target.seq})`);
  return { drift: null, verified: page.length, next: reached };
}
