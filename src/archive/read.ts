/**
 * Ledger reads below an account's Durable Object window: the entries that
 * left the object live in its D1 shard (ledger_entries) and, past the
 * archive retention, in R2 segments. This module answers "the entries after
 * seq N" across both tiers, in seq order and gapless, so a reader never sees
 * where one tier ends and the next begins.
 *
 * The archive is always a prefix of the account's history (seq 1..A in R2,
 * A+1.. in D1, never both: migrations/0014_archive.sql), so one D1 batch (a
 * consistent snapshot) gives both the covering segments and the D1 rows.
 */
import { entryFromD1 } from "../db/reconciliation";
import { ledgerDb } from "../db/shards";
import type { Entry } from "../ledger";
import { type SegmentRow, segmentEntries } from "./segments";

/** Entries one call returns at most. */
export const HISTORY_READ_MAX = 10_000;
/**
 * R2 segments one call reads at most. A page that would need more (an account
 * with very few entries a month, whose segments are small) comes back shorter
 * than `limit` but still gapless: the caller continues after its last seq.
 */
export const HISTORY_SEGMENTS_PER_READ = 16;

type HistoryEnv = Parameters<typeof ledgerDb>[0] & { LEDGER_ARCHIVE?: R2Bucket };
type Row = Parameters<typeof entryFromD1>[0];

/**
 * Up to `limit` (≤ HISTORY_READ_MAX) entries of the account with seq >
 * `afterSeq` and seq ≤ `throughSeq`, ascending and gapless: archived ones
 * from R2 (each segment's bytes checked against its recorded SHA-256), the
 * rest from D1. Fewer than `limit` only at the end of what the two tiers hold
 * in the range, or when HISTORY_SEGMENTS_PER_READ segments did not reach it;
 * empty only when neither holds seq `afterSeq` + 1.
 */
export async function readHistory(
  env: HistoryEnv,
  accountId: string,
  afterSeq: number,
  throughSeq: number,
  limit: number,
): Promise<Entry[]> {
  const n = Math.min(limit, HISTORY_READ_MAX, Math.max(0, throughSeq - afterSeq));
  if (n <= 0) return [];
  const db = ledgerDb(env, accountId);
  const [segs, rows] = await db.batch([
    db
      .prepare(
        `SELECT * FROM archive_segments WHERE account_id = ? AND last_seq > ? AND first_seq <= ?
         ORDER BY first_seq LIMIT ?`,
      )
      .bind(accountId, afterSeq, throughSeq, HISTORY_SEGMENTS_PER_READ),
    db
      .prepare("SELECT * FROM ledger_entries WHERE account_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?")
      .bind(accountId, afterSeq, throughSeq, n),
  ]);
  const out = await fromArchive(env, (segs?.results ?? []) as SegmentRow[], afterSeq, throughSeq, n);
  let at = out[out.length - 1]?.seq ?? afterSeq;
  for (const row of (rows?.results ?? []) as Row[]) {
    if (out.length >= n) break;
    if (row.seq <= at) continue;
    if (row.seq !== at + 1) break;
    out.push(entryFromD1(row));
    at = row.seq;
  }
  return out;
}

/** The archived part of the page: the contiguous segments from afterSeq + 1, fetched together. */
async function fromArchive(
  env: HistoryEnv,
  segs: readonly SegmentRow[],
  afterSeq: number,
  throughSeq: number,
  n: number,
): Promise<Entry[]> {
  const needed: { row: SegmentRow; after: number; take: number }[] = [];
  let at = afterSeq;
  let left = n;
  for (const row of segs) {
    if (left <= 0 || row.first_seq > at + 1) break;
    const take = Math.min(left, Math.min(row.last_seq, throughSeq) - at);
    needed.push({ row, after: at, take });
    at += take;
    left -= take;
  }
  if (needed.length === 0) return [];
  const bucket = env.LEDGER_ARCHIVE;
  if (!bucket) throw new Error("archive segments are recorded but the LEDGER_ARCHIVE binding is missing");
  const parts = await Promise.all(needed.map((p) => segmentEntries(bucket, p.row, p.after, throughSeq, p.take)));
  return parts.flat();
}
