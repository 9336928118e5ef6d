/**
 * Archival of one account: its oldest D1 entries, past the cutoff, become
 * NDJSON segments in R2, then leave D1. Per segment, in this order:
 *   1. read the next run of entries after the archive's head (nextSegment),
 *      re-verify their chain and hashes (a break stops the account);
 *   2. put the object with R2's `sha256` check (putSegment): R2 refuses bytes
 *      that do not match, and the same range always gives the same bytes, so
 *      a put repeated after a crash rewrites an identical object;
 *   3. one D1 batch: the archive_segments row (its trigger checks it continues
 *      the archive) and the deletion of the rows it covers (commitSegment).
 * A crash between 2 and 3 leaves an object no row names (an orphan, never
 * read); the next run writes the same key again and commits it.
 */
import { entryFromD1 } from "../db/reconciliation";
import type { Entry } from "../ledger";
import { addSums, buildSegment, hex, nextRun, SEGMENT_MAX_ENTRIES, type Segment } from "./segment-core";
import { type ArchiveHead, archiveHead, commitStatements } from "./segments";

export interface ArchiveTarget {
  bucket: R2Bucket;
  db: D1Database;
  shard: number;
}

/**
 * The next segment of the account after `head`, or null when its oldest D1
 * entry is not older than `cutoffMs` (or it has none). Reads at most
 * `maxEntries` D1 rows.
 */
export async function nextSegment(
  t: ArchiveTarget,
  accountId: string,
  head: ArchiveHead,
  cutoffMs: number,
  maxEntries = SEGMENT_MAX_ENTRIES,
): Promise<Segment | null> {
  const { results } = await t.db
    .prepare(
      "SELECT * FROM ledger_entries WHERE account_id = ? AND seq > ? AND recorded_at_ms < ? ORDER BY seq LIMIT ?",
    )
    .bind(accountId, head.seq, cutoffMs, maxEntries)
    .all<Parameters<typeof entryFromD1>[0]>();
  const run: Entry[] = nextRun(results.map(entryFromD1), cutoffMs, maxEntries);
  // Only a prefix of the history is archived: the run stops at the first seq D1 does not return (an entry
  // recorded after the cutoff, or a gap, which reconciliation reports; it is never skipped over).
  const stop = run.findIndex((e, i) => e.seq !== head.seq + 1 + i);
  const contiguous = stop < 0 ? run : run.slice(0, stop);
  return contiguous.length === 0 ? null : buildSegment(t.shard, contiguous, head.seq, head.hash);
}

/** Lowercase hex SHA-256 of the segment's bytes. */
export async function segmentSha256(seg: Segment): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", seg.body));
}

/** Writes the object; R2 verifies the bytes against `sha256` and refuses a mismatch. */
export async function putSegment(bucket: R2Bucket, seg: Segment, sha256: string, shard: number): Promise<void> {
  await bucket.put(seg.key, seg.body, {
    sha256,
    httpMetadata: { contentType: "application/x-ndjson" },
    customMetadata: {
      account_id: seg.accountId,
      shard: String(shard),
      month: seg.month,
      first_seq: String(seg.firstSeq),
      last_seq: String(seg.lastSeq),
      entries: String(seg.entries),
      first_prev_hash: seg.firstPrevHash,
      last_hash: seg.lastHash,
    },
  });
}

export async function commitSegment(
  db: D1Database,
  seg: Segment,
  sha256: string,
  head: ArchiveHead,
  atMs: number,
): Promise<ArchiveHead> {
  const totals = addSums(head.totals, seg.sums);
  await db.batch(commitStatements(db, seg, sha256, totals, atMs));
  return { seq: seg.lastSeq, hash: seg.lastHash, totals };
}

export interface AccountArchival {
  segments: number;
  entries: number;
  bytes: number;
  /** Segments remain past the cutoff (the budget ran out). */
  more: boolean;
}

/**
 * Archives up to `budget.segments` segments of the account (decremented as
 * they commit), each of at most `maxEntries` entries.
 */
export async function archiveAccount(
  t: ArchiveTarget,
  accountId: string,
  cutoffMs: number,
  budget: { segments: number },
  maxEntries = SEGMENT_MAX_ENTRIES,
): Promise<AccountArchival> {
  let head = await archiveHead(t.db, accountId);
  const done: AccountArchival = { segments: 0, entries: 0, bytes: 0, more: false };
  while (budget.segments > 0) {
    const seg = await nextSegment(t, accountId, head, cutoffMs, maxEntries);
    if (seg === null) return done;
    budget.segments--;
    const sha256 = await segmentSha256(seg);
    await putSegment(t.bucket, seg, sha256, t.shard);
    head = await commitSegment(t.db, seg, sha256, head, Date.now());
    done.segments++;
    done.entries += seg.entries;
    done.bytes += seg.body.byteLength;
  }
  done.more = true;
  return done;
}
