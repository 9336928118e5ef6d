/**
 * The archive in D1 and R2: an account's archive_segments rows (its shard),
 * and a segment's entries read back from R2, checked against the row's
 * SHA-256 and seq range before anything is served.
 */
import { type Entry, GENESIS_HASH } from "../ledger";
import { entryFromLine, hex, type Segment, type Sum } from "./segment-core";

/** An archive_segments row as D1 returns it. */
export interface SegmentRow {
  account_id: string;
  first_seq: number;
  last_seq: number;
  month: string;
  r2_key: string;
  sha256: string;
  bytes: number;
  entries: number;
  first_prev_hash: string;
  last_hash: string;
  sums: string;
  totals: string;
  archived_at_ms: number;
}

/** Where an account's archive ends: seq 1..seq are in R2, `hash` is seq's, `totals` sum them. */
export interface ArchiveHead {
  seq: number;
  hash: string;
  totals: Sum[];
}

export const EMPTY_HEAD: ArchiveHead = { seq: 0, hash: GENESIS_HASH, totals: [] };

/** The account's last segment (one indexed row), or EMPTY_HEAD when nothing is archived. */
export function archiveHeadStatement(db: D1Database, accountId: string): D1PreparedStatement {
  return db
    .prepare(
      "SELECT last_seq, last_hash, totals FROM archive_segments WHERE account_id = ? ORDER BY first_seq DESC LIMIT 1",
    )
    .bind(accountId);
}

export function headFromRow(row: { last_seq: number; last_hash: string; totals: string } | undefined): ArchiveHead {
  if (row === undefined) return EMPTY_HEAD;
  return { seq: Number(row.last_seq), hash: row.last_hash, totals: JSON.parse(row.totals) as Sum[] };
}

export async function archiveHead(db: D1Database, accountId: string): Promise<ArchiveHead> {
  const row = await archiveHeadStatement(db, accountId).first<{
    last_seq: number;
    last_hash: string;
    totals: string;
  }>();
  return headFromRow(row ?? undefined);
}

/**
 * The segment's D1 row and the deletion of the rows it holds, as one batch
 * (one D1 transaction): the row's triggers refuse a segment that does not
 * continue the archive, and the delete trigger refuses any row it does not cover.
 */
export function commitStatements(
  db: D1Database,
  seg: Segment,
  sha256: string,
  totals: Sum[],
  atMs: number,
): D1PreparedStatement[] {
  return [
    db
      .prepare(
        `INSERT INTO archive_segments (account_id, first_seq, last_seq, month, r2_key, sha256, bytes, entries,
          first_prev_hash, last_hash, sums, totals, archived_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        seg.accountId,
        seg.firstSeq,
        seg.lastSeq,
        seg.month,
        seg.key,
        sha256,
        seg.body.byteLength,
        seg.entries,
        seg.firstPrevHash,
        seg.lastHash,
        JSON.stringify(seg.sums),
        JSON.stringify(totals),
        atMs,
      ),
    db
      .prepare("DELETE FROM ledger_entries WHERE account_id = ? AND seq >= ? AND seq <= ?")
      .bind(seg.accountId, seg.firstSeq, seg.lastSeq),
  ];
}

/** Parsed segments kept per isolate at most, by their bytes (consecutive pages of one export reuse them). */
export const SEGMENT_CACHE_BYTES = 16 * 1024 * 1024;
const cache = new Map<string, { lines: string[]; bytes: number }>();
let cachedBytes = 0;

function remember(key: string, lines: string[], bytes: number) {
  if (bytes > SEGMENT_CACHE_BYTES) return;
  while (cachedBytes + bytes > SEGMENT_CACHE_BYTES) {
    const oldest = cache.keys().next().value;
    if (oldest === undefined) break;
    cachedBytes -= cache.get(oldest)?.bytes ?? 0;
    cache.delete(oldest);
  }
  cache.set(key, { lines, bytes });
  cachedBytes += bytes;
}

/** The object's lines, its bytes checked against the row's SHA-256 and its line count against the range. */
async function segmentLines(bucket: R2Bucket, row: SegmentRow): Promise<string[]> {
  const key = `${row.r2_key}\u0000${row.sha256}`;
  const hit = cache.get(key);
  if (hit) return hit.lines;
  const object = await bucket.get(row.r2_key);
  if (object === null) throw new Error(`archive segment ${row.r2_key} is missing from R2`);
  const bytes = new Uint8Array(await object.arrayBuffer());
  const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
  if (digest !== row.sha256)
    throw new Error(`archive segment ${row.r2_key}: SHA-256 ${digest}, recorded ${row.sha256}`);
  const text = new TextDecoder().decode(bytes);
  const lines = text.endsWith("\n") ? text.slice(0, -1).split("\n") : text.split("\n");
  if (lines.length !== row.entries || row.entries !== row.last_seq - row.first_seq + 1) {
    throw new Error(`archive segment ${row.r2_key}: ${lines.length} lines, recorded ${row.entries}`);
  }
  remember(key, lines, bytes.byteLength);
  return lines;
}

/** The segment's entries with seq in (afterSeq, throughSeq], at most `limit`, ascending. */
export async function segmentEntries(
  bucket: R2Bucket,
  row: SegmentRow,
  afterSeq: number,
  throughSeq: number,
  limit: number,
): Promise<Entry[]> {
  const lines = await segmentLines(bucket, row);
  const from = Math.max(afterSeq + 1, row.first_seq);
  const to = Math.min(throughSeq, row.last_seq, from + limit - 1);
  const out: Entry[] = [];
  for (let seq = from; seq <= to; seq++) {
    const entry = entryFromLine(lines[seq - row.first_seq] ?? "");
    if (entry.seq !== seq || entry.account_id !== row.account_id) {
      throw new Error(`archive segment ${row.r2_key}: line for seq ${seq} holds ${entry.account_id} seq ${entry.seq}`);
    }
    out.push(entry);
  }
  return out;
}
