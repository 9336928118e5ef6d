/**
 * The archive's guarantees under failure and tampering, in workerd with
 * local D1 and R2: a crash between the R2 put and the D1 batch loses nothing
 * and the next run writes identical bytes; the triggers of
 * migrations/0014_archive.sql refuse every delete of an unarchived entry and
 * every segment that does not continue the archive; what the job wrote
 * verifies with the independent verifier (scripts/verify-archive.mjs) and a
 * tampered object is refused by it and by every read; reconciliation reports
 * no drift after archival.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script without types
import { verifyArchive, verifyEntries } from "../../scripts/verify-archive.mjs";
import { nextSegment, putSegment, segmentSha256 } from "../../src/archive/export";
import { readHistory } from "../../src/archive/read";
import { ARCHIVE_PREFIX } from "../../src/archive/segment-core";
import { archiveHead } from "../../src/archive/segments";
import { runArchive } from "../../src/cron/archive";
import { runReconciliation } from "../../src/cron/reconcile";
import { writeCronState } from "../../src/db/cron-state";
import { ledgerDb, shardOf } from "../../src/db/shards";
import { archiveAll, d1Seqs, historyAt, segmentsOf } from "./archive-helpers";
import { debit } from "./helpers";
import { DAY, drain } from "./jobs-helpers";

/** The env with every ledger shard's `batch` failing: the job dies between the R2 put and the D1 commit. */
function envWithFailingBatch(): Env {
  const failing = (db: D1Database) =>
    new Proxy(db, {
      get(target, prop, receiver) {
        if (prop === "batch") return async () => Promise.reject(new Error("D1_ERROR: injected crash"));
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  return { ...env, DB: failing(env.DB), LEDGER_DB_1: failing(env.LEDGER_DB_1) } as Env;
}

async function objectBytes(key: string): Promise<Uint8Array | null> {
  const o = await env.LEDGER_ARCHIVE.get(key);
  return o ? new Uint8Array(await o.arrayBuffer()) : null;
}

describe("archive recovery, triggers and verification", () => {
  it("a crash between the R2 put and the D1 batch loses nothing; the next run rewrites the same bytes and commits", async () => {
    const { accountId: a, head } = await historyAt();
    const whole = await readHistory(env, a, 0, head, 10_000);
    const crashed = await runArchive({ env: envWithFailingBatch(), nowMs: Date.now() }, { segmentMaxEntries: 8 });
    expect(crashed.failed).toBeGreaterThan(0);
    expect(crashed.segments).toBe(0);
    // The orphan object is there, nothing in D1 names it, every entry is still in D1 and reads the same.
    const shard = shardOf(a, Number(env.LEDGER_SHARDS));
    const orphans = await env.LEDGER_ARCHIVE.list({ prefix: `${ARCHIVE_PREFIX}/shard=${shard}/` });
    const orphan = orphans.objects.find((o) => o.key.includes(`/${a}/`));
    expect(orphan).toBeDefined();
    const orphanBytes = await objectBytes(orphan?.key ?? "");
    expect(await segmentsOf(a)).toEqual([]);
    expect((await d1Seqs(a)).length).toBe(head);
    expect(await readHistory(env, a, 0, head, 10_000)).toEqual(whole);

    // The same, step by step as the job does it: a put without its batch.
    const t = { bucket: env.LEDGER_ARCHIVE, db: ledgerDb(env, a), shard };
    const seg = await nextSegment(t, a, await archiveHead(t.db, a), Date.now() - 90 * DAY, 8);
    expect(seg?.key).toBe(orphan?.key);
    if (seg) await putSegment(t.bucket, seg, await segmentSha256(seg), shard);

    await archiveAll(Date.now(), { segmentMaxEntries: 8 });
    const segs = await segmentsOf(a);
    expect(segs[0]?.r2_key).toBe(orphan?.key);
    expect(await objectBytes(segs[0]?.r2_key ?? "")).toEqual(orphanBytes);
    expect(await readHistory(env, a, 0, head, 10_000)).toEqual(whole);
  });

  it("the triggers: only archived entries leave D1, entries and segments never change, segments must chain", async () => {
    const { accountId: a } = await historyAt();
    const db = ledgerDb(env, a);
    const refused = async (sql: string, ...args: unknown[]) => {
      await expect(
        db
          .prepare(sql)
          .bind(...args)
          .run(),
      ).rejects.toThrow();
    };
    await refused("DELETE FROM ledger_entries WHERE account_id = ? AND seq = 1", a);
    await refused("UPDATE ledger_entries SET amount = amount + 1 WHERE account_id = ? AND seq = 1", a);
    const insert = `INSERT INTO archive_segments (account_id, first_seq, last_seq, month, r2_key, sha256, bytes, entries,
      first_prev_hash, last_hash, sums, totals, archived_at_ms) VALUES (?, ?, ?, '2026-01', ?, 'x', 1, ?, ?, 'h', '[]', '[]', 0)`;
    const zeros = "0".repeat(64);
    await refused(insert, a, 2, 3, `k-${a}-a`, 2, zeros); // does not start at seq 1
    await refused(insert, a, 1, 3, `k-${a}-b`, 3, "f".repeat(64)); // first prev_hash is not genesis
    await refused(insert, a, 1, 3, `k-${a}-c`, 2, zeros); // count does not match its range
    expect(await d1Seqs(a)).toContain(1);

    await archiveAll(Date.now());
    const segs = await segmentsOf(a);
    const last = segs[segs.length - 1];
    expect(last).toBeDefined();
    await refused("UPDATE archive_segments SET sha256 = 'x' WHERE account_id = ?", a);
    await refused("DELETE FROM archive_segments WHERE account_id = ?", a);
    await refused(insert, a, (last?.last_seq ?? 0) + 1, (last?.last_seq ?? 0) + 1, `k-${a}-d`, 1, zeros); // not linked
    const firstLeft = (await d1Seqs(a))[0] ?? 0;
    await refused("DELETE FROM ledger_entries WHERE account_id = ? AND seq = ?", a, firstLeft);
    // An archived entry shipped again (a re-sent shipment) writes nothing.
    const again = await db
      .prepare(
        `INSERT INTO ledger_entries (entry_id, account_id, seq, txn_id, kind, unit, amount, held_delta, actor,
          effective_at_ms, recorded_at_ms, prev_hash, hash) VALUES (?, ?, 1, 't', 'grant', 'credits', 1, 0, 'x', 0, 0, ?, 'h')`,
      )
      .bind(`again-${a}`, a, zeros)
      .run();
    expect(again.meta.changes).toBe(0);
    expect((await d1Seqs(a))[0]).toBe(firstLeft);
    const triggers = await db
      .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?) ORDER BY name")
      .bind("archive_segments_chain", "ledger_entries_no_delete")
      .all<{ name: string; sql: string }>();
    expect(triggers.results.map((r) => r.name)).toEqual(["archive_segments_chain", "ledger_entries_no_delete"]);
    expect(triggers.results[1]?.sql).toMatch(/archive_segments[\s\S]*first_seq <= OLD\.seq[\s\S]*< OLD\.seq/);
  });

  it("what the job wrote verifies with the independent verifier, and continues into D1's chain", async () => {
    const { accountId: a, head } = await historyAt();
    await archiveAll(Date.now(), { segmentMaxEntries: 5 });
    const segs = await segmentsOf(a);
    const shard = shardOf(a, Number(env.LEDGER_SHARDS));
    const manifests: string[] = [];
    for (const month of new Set(segs.map((s) => s.month))) {
      const listed = await env.LEDGER_ARCHIVE.list({
        prefix: `${ARCHIVE_PREFIX}/shard=${shard}/month=${month}/manifest/`,
      });
      for (const o of listed.objects) manifests.push((await (await env.LEDGER_ARCHIVE.get(o.key))?.text()) ?? "");
    }
    // Only this account's segments (the bucket holds the other tests' accounts too).
    const mine = manifests.map((m) => {
      const parsed = JSON.parse(m);
      return JSON.stringify({ ...parsed, segments: parsed.segments.filter((s: any) => s.account_id === a) });
    });
    const result = await verifyArchive(mine, objectBytes);
    expect(result.errors).toEqual([]);
    expect(result).toMatchObject({ ok: true, accounts: 1, segments: segs.length });
    // R2's own checksum is the recorded one.
    for (const s of segs) {
      const o = await env.LEDGER_ARCHIVE.head(s.r2_key);
      const sum = o?.checksums.sha256;
      expect(sum ? [...new Uint8Array(sum)].map((b) => b.toString(16).padStart(2, "0")).join("") : null).toBe(s.sha256);
    }
    // One byte changed in one object (before any read of it): the verifier and the read refuse it.
    const victim = segs[1] ?? segs[0];
    const bytes = (await objectBytes(victim?.r2_key ?? "")) as Uint8Array;
    const tampered = bytes.slice();
    const at = tampered.indexOf(0x2d); // a '-' of a debit's amount
    tampered[at] = 0x30;
    await env.LEDGER_ARCHIVE.put(victim?.r2_key ?? "", tampered);
    const bad = await verifyArchive(mine, objectBytes);
    expect(bad.ok).toBe(false);
    expect(bad.errors.join("\n")).toContain("SHA-256 differs");
    await expect(readHistory(env, a, (victim?.first_seq ?? 1) - 1, head, 3)).rejects.toThrow(/SHA-256/);
    await env.LEDGER_ARCHIVE.put(victim?.r2_key ?? "", bytes);
    expect((await verifyArchive(mine, objectBytes)).ok).toBe(true);
    // The whole history, archive then D1, is one unbroken chain.
    expect(verifyEntries(await readHistory(env, a, 0, head, 10_000))).toEqual([]);
  });

  it("the rolling audit of an archived account starts where the archive ends: no false chain drift", async () => {
    const { accountId: a } = await historyAt();
    // Verified first, so the checkpoint is past what the archive will take.
    await runReconciliation({ env, nowMs: Date.now() });
    await archiveAll(Date.now(), { segmentMaxEntries: 5 });
    expect((await segmentsOf(a)).length).toBeGreaterThan(0);
    expect((await debit(a, 1)).status).toBe(200);
    await drain(a);
    // The audit cursor reaches this account (its id is the first after this one).
    await writeCronState(env.DB, "reconcile.audit_cursor", a.slice(0, -1)).run();
    const run = await runReconciliation({ env, nowMs: Date.now() });
    expect(run.failed).toBe(0);
    const drifts = await env.DB.prepare("SELECT kind, detail FROM reconciliation_drifts WHERE account_id = ?")
      .bind(a)
      .all();
    expect(drifts.results).toEqual([]);
  });

  it("reconciliation reports no drift after archival, checking counts, sums and the head across the tiers", async () => {
    const { accountId: a, head } = await historyAt();
    await archiveAll(Date.now(), { segmentMaxEntries: 5 });
    expect((await segmentsOf(a)).length).toBeGreaterThan(0);
    // Touch the account so the run checks it, and forget its checkpoint so it verifies from seq 0.
    expect((await debit(a, 1)).status).toBe(200);
    await drain(a);
    await env.DB.prepare("DELETE FROM reconciliation_checkpoints WHERE account_id = ?").bind(a).run();
    const run = await runReconciliation({ env, nowMs: Date.now() });
    expect(run.failed).toBe(0);
    const drifts = await env.DB.prepare("SELECT kind, detail FROM reconciliation_drifts WHERE account_id = ?")
      .bind(a)
      .all();
    expect(drifts.results).toEqual([]);
    const cp = await env.DB.prepare("SELECT verified_seq, behind FROM reconciliation_checkpoints WHERE account_id = ?")
      .bind(a)
      .first<{ verified_seq: number; behind: number }>();
    expect(cp).toEqual({ verified_seq: head + 1, behind: 0 });

    // A D1 row of the account changed behind the archive's back is still found: the tiers are compared, not trusted.
    await ledgerDb(env, a).prepare("DROP TRIGGER ledger_entries_no_update").run();
    try {
      await ledgerDb(env, a)
        .prepare("UPDATE ledger_entries SET amount = amount - 1 WHERE account_id = ? AND seq = ?")
        .bind(a, head + 1)
        .run();
      expect((await debit(a, 1)).status).toBe(200);
      await drain(a);
      await env.DB.prepare("DELETE FROM reconciliation_checkpoints WHERE account_id = ?").bind(a).run();
      await runReconciliation({ env, nowMs: Date.now() });
      const found = await env.DB.prepare("SELECT kind FROM reconciliation_drifts WHERE account_id = ?").bind(a).all();
      expect(found.results.map((r) => r.kind)).toContain("balance");
    } finally {
      await ledgerDb(env, a)
        .prepare(
          "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END",
        )
        .run();
    }
  });
});
