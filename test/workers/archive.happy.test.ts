/**
 * Archival through the real job, D1 shards and local R2: entries past
 * ARCHIVE_AFTER_DAYS leave D1 for NDJSON segments, every read across the
 * D1/R2 boundary answers exactly as before (readHistory pages, the API's JSON
 * pages and CSV), the job run twice archives once, and each shard's manifest
 * lists every segment with its checksum.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { entriesCsv } from "../../src/api/ledger";
import { readHistory } from "../../src/archive/read";
import { ARCHIVE_PREFIX, SEGMENT_MAX_ENTRIES } from "../../src/archive/segment-core";
import { ARCHIVE_SEGMENTS_PER_RUN, archiveAfterDays, runArchive } from "../../src/cron/archive";
import { shardOf } from "../../src/db/shards";
import {
  apiCsv,
  apiPages,
  archiveAll,
  compactObject,
  d1Seqs,
  historyAt,
  historyPages,
  segmentsOf,
} from "./archive-helpers";
import { DAY } from "./jobs-helpers";

const cutoff = () => Date.now() - 90 * DAY;

describe("archival across the D1/R2 boundary", () => {
  it("moves exactly the entries recorded before the cutoff, a month and at most N entries per segment", async () => {
    expect(archiveAfterDays(env)).toBe(90);
    const { accountId: a, head } = await historyAt();
    const before = await readHistory(env, a, 0, head, 10_000);
    expect(before.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    const old = before.filter((e) => Date.parse(e.recorded_at) < cutoff()).map((e) => e.seq);
    expect(old.length).toBeGreaterThan(0);
    expect(old.length).toBeLessThan(head);

    await archiveAll(Date.now(), { segmentMaxEntries: 5 });

    const segs = await segmentsOf(a);
    // A prefix by seq: 1..A archived, A+1..head still in D1, never both.
    const archivedThrough = segs[segs.length - 1]?.last_seq ?? 0;
    expect(archivedThrough).toBe(old[old.length - 1]);
    expect(await d1Seqs(a)).toEqual(before.slice(archivedThrough).map((e) => e.seq));
    let next = 1;
    for (const s of segs) {
      expect(s.first_seq).toBe(next);
      expect(s.entries).toBe(s.last_seq - s.first_seq + 1);
      expect(s.entries).toBeLessThanOrEqual(5);
      next = s.last_seq + 1;
      const inSeg = before.slice(s.first_seq - 1, s.last_seq);
      expect(new Set(inSeg.map((e) => e.recorded_at.slice(0, 7)))).toEqual(new Set([s.month]));
      expect(s.first_prev_hash).toBe(inSeg[0]?.prev_hash);
      expect(s.last_hash).toBe(inSeg[inSeg.length - 1]?.hash);
      const shard = shardOf(a, Number(env.LEDGER_SHARDS));
      const first = String(s.first_seq).padStart(12, "0");
      expect(s.r2_key).toBe(`${ARCHIVE_PREFIX}/shard=${shard}/month=${s.month}/${a}/${first}-${s.last_seq}.ndjson`);
      const object = await env.LEDGER_ARCHIVE.head(s.r2_key);
      expect(object?.size).toBe(s.bytes);
      expect(object?.customMetadata).toMatchObject({ account_id: a, first_seq: String(s.first_seq) });
    }
    expect(SEGMENT_MAX_ENTRIES).toBe(10_000);
  });

  it("readHistory pages, the API's JSON pages and its CSV are the same before and after archival", async () => {
    const { accountId: a, head } = await historyAt(4, true);
    const pagesBefore = { 1: await historyPages(a, head, 1), 7: await historyPages(a, head, 7) };
    const apiBefore = { 5: await apiPages(a, 5), 100: await apiPages(a, 100) };
    const csvBefore = await apiCsv(a);
    const csvRatingBefore = await apiCsv(a, "&rating_columns=true&after_seq=3&limit=17");
    const whole = await readHistory(env, a, 0, head, 10_000);
    expect(entriesCsv(whole)).toBe(csvBefore);

    // The object keeps only its last entries: the API now reads the rest through D1, then D1 and R2.
    const floor = await compactObject(a);
    expect(floor).toBeGreaterThan(head - 10);
    expect(await apiPages(a, 5)).toEqual(apiBefore[5]);

    await archiveAll(Date.now(), { segmentMaxEntries: 4 });
    const segs = await segmentsOf(a);
    expect(segs.length).toBeGreaterThan(2);
    expect(segs[segs.length - 1]?.last_seq).toBeLessThan(floor);

    expect(await historyPages(a, head, 1)).toEqual(pagesBefore[1]);
    expect(await historyPages(a, head, 7)).toEqual(pagesBefore[7]);
    // Every start and every window, including ones that begin or end inside a segment or at the boundary.
    for (let after = 0; after < head; after += 3) {
      for (const through of [after + 1, after + 5, head]) {
        const t = Math.min(through, head);
        expect(await readHistory(env, a, after, t, 9)).toEqual(whole.slice(after, Math.min(t, after + 9)));
      }
    }
    const after = await readHistory(env, a, 0, head, 10_000);
    expect(after).toEqual(whole);
    // Member order too: a re-served archived entry is byte-identical JSON.
    expect(JSON.stringify(after)).toBe(JSON.stringify(whole));
    expect(entriesCsv(after)).toBe(csvBefore);
    expect(await apiPages(a, 5)).toEqual(apiBefore[5]);
    expect(await apiPages(a, 100)).toEqual(apiBefore[100]);
    expect(await apiCsv(a)).toBe(csvBefore);
    expect(await apiCsv(a, "&rating_columns=true&after_seq=3&limit=17")).toBe(csvRatingBefore);
  });

  it("the job twice at the same time archives once; a later run only adds what has since passed the cutoff", async () => {
    const { accountId: a } = await historyAt();
    const at = Date.now();
    const first = await archiveAll(at);
    const segs = await segmentsOf(a);
    const seqs = await d1Seqs(a);
    const listed = await env.LEDGER_ARCHIVE.list({ prefix: `${ARCHIVE_PREFIX}/` });
    const again = await runArchive({ env, nowMs: at });
    expect(again).toMatchObject({ segments: 0, entries: 0, manifests: 0, failed: 0 });
    expect(await segmentsOf(a)).toEqual(segs);
    expect(await d1Seqs(a)).toEqual(seqs);
    expect((await env.LEDGER_ARCHIVE.list({ prefix: `${ARCHIVE_PREFIX}/` })).objects.map((o) => o.key)).toEqual(
      listed.objects.map((o) => o.key),
    );
    expect(first.reduce((n, r) => n + r.segments, 0)).toBeGreaterThan(0);
    // 60 days later the fifth batch (recorded 80 days ago) has passed the cutoff too.
    await archiveAll(at + 60 * DAY);
    const later = await segmentsOf(a);
    expect(later.slice(0, segs.length)).toEqual(segs);
    expect(later.length).toBeGreaterThan(segs.length);
    expect((await d1Seqs(a)).length).toBeLessThan(seqs.length);
  });

  it("a run is bounded: at most ARCHIVE_SEGMENTS_PER_RUN segments, the rest in later runs", async () => {
    const { accountId: a } = await historyAt(6);
    const runs = await archiveAll(Date.now(), { segmentMaxEntries: 1 });
    for (const r of runs) expect(r.segments).toBeLessThanOrEqual(ARCHIVE_SEGMENTS_PER_RUN);
    expect(runs.length).toBeGreaterThan(2);
    const segs = await segmentsOf(a);
    expect(segs.every((s) => s.entries === 1)).toBe(true);
    expect(segs.length).toBeGreaterThan(ARCHIVE_SEGMENTS_PER_RUN);
  });

  it("each shard's manifests list every segment once with its checksum, readable without D1", async () => {
    const { accountId: a } = await historyAt();
    await archiveAll(Date.now(), { segmentMaxEntries: 6 });
    const segs = await segmentsOf(a);
    const shard = shardOf(a, Number(env.LEDGER_SHARDS));
    const listed = new Map<string, { sha256: string; first_seq: number; last_seq: number }>();
    for (const month of new Set(segs.map((s) => s.month))) {
      const prefix = `${ARCHIVE_PREFIX}/shard=${shard}/month=${month}/manifest/`;
      const objects = await env.LEDGER_ARCHIVE.list({ prefix });
      for (const o of objects.objects) {
        const manifest = (await (await env.LEDGER_ARCHIVE.get(o.key))?.json()) as any;
        expect(manifest).toMatchObject({ format: "credit-gate.ledger-archive.manifest.v1", shard, month });
        for (const s of manifest.segments) if (s.account_id === a) listed.set(s.r2_key, s);
      }
    }
    expect([...listed.keys()].sort()).toEqual(segs.map((s) => s.r2_key).sort());
    for (const s of segs) expect(listed.get(s.r2_key)).toMatchObject({ sha256: s.sha256, first_seq: s.first_seq });
  });
});
