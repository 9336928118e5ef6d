/** Helpers for the archive suites: a history spread over past months, the archival job run to its end. */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { readHistory } from "../../src/archive/read";
import type { SegmentRow } from "../../src/archive/segments";
import { type ArchiveOptions, runArchive } from "../../src/cron/archive";
import { ledgerDb } from "../../src/db/shards";
import { call, debit, grant, ledgerStubFor, uid } from "./helpers";
import { DAY, drain, setDoClock } from "./jobs-helpers";

/** Months of history `historyAt` writes, 30 days apart, the first 200 days ago. */
export const STEPS = 6;

/**
 * An account whose entries were recorded over the last 200 days, a batch
 * every 30 days (grants of two types and units, debits, a hold and its
 * capture, a release), shipped to D1. With ARCHIVE_AFTER_DAYS 90 and now,
 * the first four batches are past the cutoff and the last two are not.
 */
export async function historyAt(perStep = 4, checkpoints = false): Promise<{ accountId: string; head: number }> {
  const a = uid("arch");
  const start = Date.now() - 200 * DAY;
  for (let step = 0; step < STEPS; step++) {
    await setDoClock(a, start + step * 30 * DAY);
    await grant(a, { amount: 1000, expires_at: new Date(Date.now() + 3650 * DAY).toISOString() });
    await grant(a, { amount: 50, type: "promotional", unit: "tokens" });
    for (let i = 0; i < perStep; i++) expect((await debit(a, 3 + i)).status).toBe(200);
    const h = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: uid("h"), amount: 20 });
    expect(h.status).toBe(201);
    const cap = await call("POST", `/v1/accounts/${a}/holds/${h.json.hold_id}/capture`, { amount: 12 });
    expect(cap.status).toBe(200);
    // A checkpoint at each step's head, so the object's window can later move its floor onto one.
    if (checkpoints) {
      await drain(a);
      await ledgerStubFor(a).compactNow({ window: 2, checkpointEvery: 1 });
    }
  }
  await drain(a);
  const { results } = await ledgerDb(env, a)
    .prepare("SELECT MAX(seq) AS m FROM ledger_entries WHERE account_id = ?")
    .bind(a)
    .all<{ m: number }>();
  return { accountId: a, head: Number(results[0]?.m ?? 0) };
}

/** Runs the archival job at `nowMs` until a run writes nothing (bounded); returns the runs' counts. */
export async function archiveAll(nowMs = Date.now(), opts: ArchiveOptions = {}) {
  const runs = [];
  for (let i = 0; i < 50; i++) {
    const counts = await runArchive({ env, nowMs }, opts);
    runs.push(counts);
    if (counts.segments === 0) return runs;
  }
  throw new Error("archival did not finish in 50 runs");
}

export async function segmentsOf(accountId: string): Promise<SegmentRow[]> {
  const { results } = await ledgerDb(env, accountId)
    .prepare("SELECT * FROM archive_segments WHERE account_id = ? ORDER BY first_seq")
    .bind(accountId)
    .all<SegmentRow>();
  return results;
}

export async function d1Seqs(accountId: string): Promise<number[]> {
  const { results } = await ledgerDb(env, accountId)
    .prepare("SELECT seq FROM ledger_entries WHERE account_id = ? ORDER BY seq")
    .bind(accountId)
    .all<{ seq: number }>();
  return results.map((r) => r.seq);
}

/** Every page readHistory gives from `after` to `head` in steps of `limit`. */
export async function historyPages(accountId: string, head: number, limit: number) {
  const pages = [];
  let after = 0;
  for (let i = 0; i <= head; i++) {
    const page = await readHistory(env, accountId, after, head, limit);
    if (page.length === 0) break;
    pages.push(page);
    after = page[page.length - 1]?.seq ?? head;
  }
  return pages;
}

/** The API's JSON pages of the whole ledger, `limit` each. */
export async function apiPages(accountId: string, limit: number) {
  const pages = [];
  let after: number | null = 0;
  for (let i = 0; i < 1000 && after !== null; i++) {
    const res = await call("GET", `/v1/accounts/${accountId}/ledger?after_seq=${after}&limit=${limit}`);
    expect(res.status).toBe(200);
    pages.push(res.json);
    after = res.json.next_after_seq;
  }
  return pages;
}

export async function apiCsv(accountId: string, extra = "") {
  const res = await call("GET", `/v1/accounts/${accountId}/ledger?format=csv${extra}`);
  expect(res.status).toBe(200);
  return res.text;
}

/**
 * Lets the account's Durable Object drop every entry but its last few (its
 * window, helper A's account/window.ts): reads below the floor then go to
 * D1 and R2 through readHistory. Returns the floor.
 */
export async function compactObject(accountId: string): Promise<number> {
  const stub = ledgerStubFor(accountId);
  for (let i = 0; i < 20; i++) {
    const report = await stub.compactNow({ window: 2, checkpointEvery: 1 });
    if (!report.more) return report.floor;
  }
  throw new Error("compaction did not finish");
}
