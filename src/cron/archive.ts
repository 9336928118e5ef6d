/**
 * Archival: entries recorded more than ARCHIVE_AFTER_DAYS ago leave their D1
 * shard for R2 (LEDGER_ARCHIVE) as NDJSON segments (src/archive/export.ts),
 * then each shard gets this run's manifests (src/archive/manifest.ts).
 *
 * Accounts are found by a rotating cursor over account_heads (in DB; cron_state
 * `archive.cursor`): ARCHIVE_PROBE_ACCOUNTS per run, then one query per shard
 * reads each probed account's first D1 entry time by the (account_id, seq)
 * index; those whose first entry is past the cutoff are archived, at most
 * ARCHIVE_ACCOUNTS_PER_RUN accounts and ARCHIVE_SEGMENTS_PER_RUN segments per
 * run. An account the budget cut short is probed again next run; a full
 * rotation takes (accounts / ARCHIVE_PROBE_ACCOUNTS) runs. Idempotent: running twice at the same time archives once (the second
 * run finds nothing past the cutoff).
 */

import { type AccountArchival, archiveAccount } from "../archive/export";
import { writeManifests } from "../archive/manifest";
import { SEGMENT_MAX_ENTRIES } from "../archive/segment-core";
import { readCronState, writeCronState } from "../db/cron-state";
import { ledgerShardCount, shardDb, shardOf } from "../db/shards";
import { log } from "../log";
import { type JobContext, mapLimit, PARALLEL } from "./job";

/** Accounts probed per run (one D1 query on DB, one per shard). */
export const ARCHIVE_PROBE_ACCOUNTS = 500;
/** Accounts archived per run. */
export const ARCHIVE_ACCOUNTS_PER_RUN = 50;
/** Segments written per run (each ≤ SEGMENT_MAX_ENTRIES entries). */
export const ARCHIVE_SEGMENTS_PER_RUN = 20;
export const DEFAULT_ARCHIVE_AFTER_DAYS = 90;
const DAY_MS = 86_400_000;
const CURSOR = "archive.cursor";

/** ARCHIVE_AFTER_DAYS as a number of days (default 90); anything but a whole number of days is a deployment error. */
export function archiveAfterDays(env: { ARCHIVE_AFTER_DAYS?: string }): number {
  const raw = env.ARCHIVE_AFTER_DAYS;
  if (raw === undefined || raw === "") return DEFAULT_ARCHIVE_AFTER_DAYS;
  if (!/^\d{1,5}$/.test(raw))
    throw new Error(`ARCHIVE_AFTER_DAYS must be a whole number of days, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

export interface ArchiveOptions {
  /** Entries per segment (tests use a few to get many segments); at most SEGMENT_MAX_ENTRIES. */
  segmentMaxEntries?: number;
}

interface Budget {
  segments: number;
}

type Outcome = { accountId: string; result: AccountArchival | null; error?: string };

/** Of the probed accounts, those whose first D1 entry was recorded before the cutoff, in account order. */
async function eligibleOf(ctx: JobContext, accountIds: readonly string[], cutoffMs: number): Promise<string[]> {
  const shards = ledgerShardCount(ctx.env);
  const byShard = new Map<number, string[]>();
  for (const id of accountIds) byShard.set(shardOf(id, shards), [...(byShard.get(shardOf(id, shards)) ?? []), id]);
  const old = new Set<string>();
  for (const [shard, ids] of byShard) {
    const { results } = await shardDb(ctx.env, shard)
      .prepare(
        `SELECT j.value AS account_id,
           (SELECT e.recorded_at_ms FROM ledger_entries e WHERE e.account_id = j.value ORDER BY e.seq LIMIT 1) AS first_ms
         FROM json_each(?) AS j`,
      )
      .bind(JSON.stringify(ids))
      .all<{ account_id: string; first_ms: number | null }>();
    for (const r of results) if (r.first_ms !== null && Number(r.first_ms) < cutoffMs) old.add(r.account_id);
  }
  return accountIds.filter((id) => old.has(id));
}

/**
 * One page of the rotating cursor over account_heads (in DB): archives the
 * eligible accounts within the budget and moves the cursor to the first
 * account left unfinished (cut short, or not reached), else past the page.
 */
async function archivePage(ctx: JobContext, cutoffMs: number, budget: Budget, maxEntries: number) {
  const db = ctx.env.DB;
  const cursor = (await readCronState<string>(db, CURSOR)) ?? "";
  const { results } = await db
    .prepare("SELECT account_id FROM account_heads WHERE account_id > ? ORDER BY account_id LIMIT ?")
    .bind(cursor, ARCHIVE_PROBE_ACCOUNTS)
    .all<{ account_id: string }>();
  const probe = results.map((r) => r.account_id);
  const eligible = await eligibleOf(ctx, probe, cutoffMs);
  const taken = eligible.slice(0, ARCHIVE_ACCOUNTS_PER_RUN);
  const shards = ledgerShardCount(ctx.env);
  const outcomes = await mapLimit(taken, PARALLEL, async (accountId): Promise<Outcome> => {
    if (budget.segments <= 0) return { accountId, result: null };
    const shard = shardOf(accountId, shards);
    const target = { bucket: ctx.env.LEDGER_ARCHIVE, db: shardDb(ctx.env, shard), shard };
    try {
      return { accountId, result: await archiveAccount(target, accountId, cutoffMs, budget, maxEntries) };
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      log({ event: "archive.failed", account_id: accountId, shard, error });
      return { accountId, result: { segments: 0, entries: 0, bytes: 0, more: false }, error };
    }
  });
  const unfinished = [
    ...outcomes.filter((o) => o.result === null || o.result.more).map((o) => o.accountId),
    ...eligible.slice(taken.length),
  ].sort()[0];
  const at = unfinished === undefined ? -1 : probe.indexOf(unfinished);
  const next = at >= 0 ? (probe[at - 1] ?? cursor) : probe.length < ARCHIVE_PROBE_ACCOUNTS ? "" : (probe.at(-1) ?? "");
  await writeCronState(db, CURSOR, next).run();
  return outcomes;
}

export async function runArchive(ctx: JobContext, opts: ArchiveOptions = {}) {
  const maxEntries = Math.min(opts.segmentMaxEntries ?? SEGMENT_MAX_ENTRIES, SEGMENT_MAX_ENTRIES);
  const cutoffMs = ctx.nowMs - archiveAfterDays(ctx.env) * DAY_MS;
  const runId = `arch_${ctx.nowMs.toString(36)}_${crypto.randomUUID().slice(0, 8)}`;
  const budget = { segments: ARCHIVE_SEGMENTS_PER_RUN };
  const counts = { run_id: runId, accounts: 0, segments: 0, entries: 0, bytes: 0, failed: 0, manifests: 0 };
  for (const o of await archivePage(ctx, cutoffMs, budget, maxEntries)) {
    if (o.error !== undefined) counts.failed++;
    if (!o.result || o.result.segments === 0) continue;
    counts.accounts++;
    counts.segments += o.result.segments;
    counts.entries += o.result.entries;
    counts.bytes += o.result.bytes;
    log({ event: "archive.account", account_id: o.accountId, ...o.result });
  }
  // Every shard's manifest pass: one indexed read each when nothing is new.
  const shards = ledgerShardCount(ctx.env);
  for (let shard = 0; shard < shards; shard++) {
    const target = { bucket: ctx.env.LEDGER_ARCHIVE, db: shardDb(ctx.env, shard), shard };
    counts.manifests += await writeManifests(target, runId, ctx.nowMs);
  }
  return counts;
}
