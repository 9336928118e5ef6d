/**
 * Manifests: the archive describes itself without D1. After each run, every
 * segment committed in a shard since the last manifest (by archive_segments
 * rowid, which only grows: rows are never deleted) is listed in one manifest
 * object per month, `…/shard=<n>/month=<YYYY-MM>/manifest/<run_id>.json`.
 * The shard's watermark (cron_state `archive.manifest_rowid`, in the shard)
 * moves only after the manifests are written, so a crash in between lists
 * those segments again in the next run's manifest: a segment may appear in
 * two manifests (with the same checksum), never in none.
 */
import { readCronState, writeCronState } from "../db/cron-state";
import { manifestKey, type Sum } from "./segment-core";
import type { SegmentRow } from "./segments";

/** Segments one manifest pass lists per shard at most (more than a run commits: ARCHIVE_SEGMENTS_PER_RUN). */
export const MANIFEST_MAX_SEGMENTS = 1000;
export const MANIFEST_FORMAT = "credit-gate.ledger-archive.manifest.v1";
const WATERMARK = "archive.manifest_rowid";

export interface ManifestSegment {
  account_id: string;
  first_seq: number;
  last_seq: number;
  r2_key: string;
  sha256: string;
  bytes: number;
  entries: number;
  first_prev_hash: string;
  last_hash: string;
  sums: Sum[];
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  shard: number;
  month: string;
  run_id: string;
  created_at: string;
  segments: ManifestSegment[];
}

/** Writes the manifests of segments committed since the last pass; returns how many objects it wrote. */
export async function writeManifests(
  t: { bucket: R2Bucket; db: D1Database; shard: number },
  runId: string,
  nowMs: number,
): Promise<number> {
  const after = (await readCronState<number>(t.db, WATERMARK)) ?? 0;
  const { results } = await t.db
    .prepare("SELECT rowid AS rid, * FROM archive_segments WHERE rowid > ? ORDER BY rowid LIMIT ?")
    .bind(after, MANIFEST_MAX_SEGMENTS)
    .all<SegmentRow & { rid: number }>();
  const last = results[results.length - 1];
  if (last === undefined) return 0;
  const byMonth = new Map<string, ManifestSegment[]>();
  for (const r of results) {
    const list = byMonth.get(r.month) ?? [];
    list.push({
      account_id: r.account_id,
      first_seq: r.first_seq,
      last_seq: r.last_seq,
      r2_key: r.r2_key,
      sha256: r.sha256,
      bytes: r.bytes,
      entries: r.entries,
      first_prev_hash: r.first_prev_hash,
      last_hash: r.last_hash,
      sums: JSON.parse(r.sums) as Sum[],
    });
    byMonth.set(r.month, list);
  }
  for (const [month, segments] of byMonth) {
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      shard: t.shard,
      month,
      run_id: runId,
      created_at: new Date(nowMs).toISOString(),
      segments,
    };
    await t.bucket.put(manifestKey(t.shard, month, runId), JSON.stringify(manifest, null, 1), {
      httpMetadata: { contentType: "application/json" },
    });
  }
  await writeCronState(t.db, WATERMARK, Number(last.rid)).run();
  return byMonth.size;
}
