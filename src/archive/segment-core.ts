/**
 * The archive's format, pure (no Cloudflare imports, no I/O): how a run of an
 * account's entries becomes one NDJSON segment (one entry per line, RFC 8785
 * canonical JSON, so each line re-hashes to its `hash`), where it lives in
 * R2, and the sums a segment carries so reconciliation never reads it.
 *
 * Layout (ARCHIVE_PREFIX):
 *   ledger/v1/shard=<n>/month=<YYYY-MM>/<account_id>/<first_seq, 12 digits>-<last_seq>.ndjson
 *   ledger/v1/shard=<n>/month=<YYYY-MM>/manifest/<run_id>.json
 */
import { canonicalJson, type Entry, verifyChain } from "../ledger";

/** Every archive object's key starts with this (the format's version is part of it). */
export const ARCHIVE_PREFIX = "ledger/v1";
/** Entries in one segment at most (one account, one UTC month, seq-contiguous). */
export const SEGMENT_MAX_ENTRIES = 10_000;
/** first_seq is zero-padded to this many digits, so a listing sorts by seq. */
const SEQ_DIGITS = 12;

/** Σ amount and Σ held_delta of one unit and credit type. */
export interface Sum {
  unit: string;
  credit_type: string | null;
  amount: number;
  held_delta: number;
}

/** A segment ready to be written: its bytes and everything its D1 row and manifest line record. */
export interface Segment {
  accountId: string;
  firstSeq: number;
  lastSeq: number;
  month: string;
  key: string;
  body: Uint8Array;
  entries: number;
  firstPrevHash: string;
  lastHash: string;
  sums: Sum[];
}

/** UTC month of a time, "YYYY-MM". */
export const monthOf = (ms: number): string => new Date(ms).toISOString().slice(0, 7);

export function segmentKey(shard: number, month: string, accountId: string, firstSeq: number, lastSeq: number) {
  const first = String(firstSeq).padStart(SEQ_DIGITS, "0");
  return `${ARCHIVE_PREFIX}/shard=${shard}/month=${month}/${accountId}/${first}-${lastSeq}.ndjson`;
}

export const manifestKey = (shard: number, month: string, runId: string) =>
  `${ARCHIVE_PREFIX}/shard=${shard}/month=${month}/manifest/${runId}.json`;

const sumKey = (unit: string, type: string | null) => `${unit}\u0000${type ?? ""}`;

/** Adds `more` into `into` (both per unit and credit type), sorted. */
export function addSums(into: readonly Sum[], more: readonly Sum[]): Sum[] {
  const byKey = new Map(into.map((s) => [sumKey(s.unit, s.credit_type), { ...s }]));
  for (const s of more) {
    const k = sumKey(s.unit, s.credit_type);
    const t = byKey.get(k) ?? { unit: s.unit, credit_type: s.credit_type, amount: 0, held_delta: 0 };
    t.amount += s.amount;
    t.held_delta += s.held_delta;
    byKey.set(k, t);
  }
  return [...byKey.values()].sort(
    (a, b) =>
      (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : 0) || String(a.credit_type).localeCompare(String(b.credit_type)),
  );
}

export function sumsOf(entries: readonly Entry[]): Sum[] {
  return addSums(
    [],
    entries.map((e) => ({ unit: e.unit, credit_type: e.credit_type, amount: e.amount, held_delta: e.held_delta })),
  );
}

/**
 * The entries the next segment takes from `pending` (the account's oldest D1
 * entries, ascending from the archive's last seq + 1): the longest prefix
 * recorded before `cutoffMs`, in the first entry's month, at most `maxEntries`.
 * Empty when the first entry is not old enough.
 */
export function nextRun(pending: readonly Entry[], cutoffMs: number, maxEntries = SEGMENT_MAX_ENTRIES): Entry[] {
  const first = pending[0];
  if (first === undefined) return [];
  const month = first.recorded_at.slice(0, 7);
  const out: Entry[] = [];
  for (const e of pending) {
    if (out.length >= maxEntries || Date.parse(e.recorded_at) >= cutoffMs || e.recorded_at.slice(0, 7) !== month) break;
    out.push(e);
  }
  return out;
}

/** Thrown when entries about to be archived do not continue the archived chain: nothing is written. */
export class ChainError extends Error {}

/**
 * Builds the segment of `entries`, which must continue the account's archive
 * (seq `afterSeq` + 1 onward, the first prev_hash `afterHash`), each entry's
 * hash recomputed: a break throws ChainError, so a damaged row never leaves D1.
 */
export function buildSegment(shard: number, entries: readonly Entry[], afterSeq: number, afterHash: string): Segment {
  const first = entries[0];
  const last = entries[entries.length - 1];
  if (first === undefined || last === undefined) throw new Error("buildSegment: no entries");
  const broken = verifyChain(entries, afterHash, afterSeq + 1);
  if (broken) throw new ChainError(`${first.account_id}: chain breaks at seq ${broken.seq}: ${broken.reason}`);
  const month = first.recorded_at.slice(0, 7);
  const text = entries.map((e) => `${canonicalJson(e)}\n`).join("");
  return {
    accountId: first.account_id,
    firstSeq: first.seq,
    lastSeq: last.seq,
    month,
    key: segmentKey(shard, month, first.account_id, first.seq, last.seq),
    body: new TextEncoder().encode(text),
    entries: entries.length,
    firstPrevHash: first.prev_hash,
    lastHash: last.hash,
    sums: sumsOf(entries),
  };
}

const str = (v: unknown, what: string): string => {
  if (typeof v !== "string") throw new Error(`archive line: ${what} is not a string`);
  return v;
};
const int = (v: unknown, what: string): number => {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new Error(`archive line: ${what} is not an integer`);
  return v;
};
const strOrNull = (v: unknown, what: string): string | null => (v === null ? null : str(v, what));

/** One NDJSON line back as the entry the API serves, members in the served order. */
export function entryFromLine(line: string): Entry {
  const o = JSON.parse(line) as Record<string, unknown>;
  const rating = o.rating as Record<string, unknown> | undefined;
  const conversion = o.conversion as Record<string, unknown> | undefined;
  return {
    account_id: str(o.account_id, "account_id"),
    seq: int(o.seq, "seq"),
    entry_id: str(o.entry_id, "entry_id"),
    txn_id: str(o.txn_id, "txn_id"),
    kind: str(o.kind, "kind") as Entry["kind"],
    unit: str(o.unit, "unit"),
    amount: int(o.amount, "amount"),
    held_delta: int(o.held_delta, "held_delta"),
    grant_id: strOrNull(o.grant_id, "grant_id"),
    credit_type: strOrNull(o.credit_type, "credit_type") as Entry["credit_type"],
    ref: strOrNull(o.ref, "ref"),
    actor: str(o.actor, "actor"),
    reason: strOrNull(o.reason, "reason"),
    effective_at: str(o.effective_at, "effective_at"),
    recorded_at: str(o.recorded_at, "recorded_at"),
    prev_hash: str(o.prev_hash, "prev_hash"),
    hash: str(o.hash, "hash"),
    ...(rating === undefined
      ? {}
      : {
          rating: {
            meter: str(rating.meter, "rating.meter"),
            quantity: int(rating.quantity, "rating.quantity"),
            price_version: int(rating.price_version, "rating.price_version"),
          },
        }),
    ...(conversion === undefined
      ? {}
      : {
          conversion: {
            to_unit: str(conversion.to_unit, "conversion.to_unit"),
            numerator: int(conversion.numerator, "conversion.numerator"),
            denominator: int(conversion.denominator, "conversion.denominator"),
          },
        }),
  };
}

/** Lowercase hex of a digest. */
export const hex = (bytes: ArrayBuffer | Uint8Array): string =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
