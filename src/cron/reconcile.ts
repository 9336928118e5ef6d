/**
 * Reconciliation: proves D1 equal to each Durable Object, account by account.
 * Accounts come from three places, together at most RECONCILE_BATCH +
 * AUDIT_BATCH per run:
 *   - touched since the last run: account_heads rows after the watermark
 *     (updated_at_ms, account_id), i.e. every account that shipped entries;
 *   - accounts whose chain verification is behind (more new entries than one
 *     run verifies);
 *   - a rolling audit over every account, so a D1 change nobody shipped is
 *     still found.
 * For each: the DO's head seq, hash and lots summed per unit and type are
 * compared with D1's replay up to the same seq, and the D1 chain after the
 * last checkpoint is re-verified (src/ledger/reconcile.ts). An account with
 * unshipped outbox rows is drained first; if rows remain it is "lagging", not
 * drifted. Every run and every drift is recorded in D1; a drift raises a
 * reconciliation.drift alert and is never repaired here.
 */
import { recordAlerts } from "../db/alerts";
import { readCronState, writeCronState } from "../db/cron-state";
import { type Checkpoint, loadCheckpoints, type RunRecord, readReplay, runStatements } from "../db/reconciliation";
import { type AlertRecord, chainDrift, compareAccount, type Drift, GENESIS_HASH, sha256Hex } from "../ledger";
import { dispatchAlerts } from "../webhooks/dispatch";
import { accountStub, type JobContext, mapLimit, PARALLEL } from "./job";

/** Touched accounts per run (see docs/jobs.md for the measurement behind it). */
export const RECONCILE_BATCH = 200;
export const AUDIT_BATCH = 20;
/** D1 entries whose hashes one run re-verifies per account. */
export const VERIFY_LIMIT = 1000;
const WATERMARK = "reconcile.watermark";
const AUDIT_CURSOR = "reconcile.audit_cursor";

type Watermark = { ms: number; id: string };

type AccountResult =
  | { status: "ok" | "drift"; drifts: Drift[]; checkpoint: Checkpoint; verified: number }
  | { status: "lagging" | "failed"; error?: string };

async function reconcileAccount(
  ctx: JobContext,
  accountId: string,
  checkpoint: Checkpoint | undefined,
): Promise<AccountResult> {
  const stub = accountStub(ctx.env, accountId);
  let snap = await stub.reconcileState();
  if (snap.pending > 0) {
    await stub.drain();
    snap = await stub.reconcileState();
    if (snap.pending > 0) return { status: "lagging" };
  }
  const fromSeq = Math.min(checkpoint?.verified_seq ?? 0, snap.seq);
  const fromHash = fromSeq === (checkpoint?.verified_seq ?? 0) ? (checkpoint?.verified_hash ?? GENESIS_HASH) : null;
  // A checkpoint beyond the DO's head cannot be continued: verify from the start.
  const start = fromHash === null ? 0 : fromSeq;
  const replay = await readReplay(ctx.env.DB, accountId, snap.seq, start, VERIFY_LIMIT);
  // D1 rows above the snapshot may be entries written since; only the DO's head read afterwards can tell.
  const laterHead = replay.maxSeq > snap.seq ? (await stub.head()).seq : snap.seq;
  const drifts = compareAccount(snap, replay, laterHead);
  const chain = chainDrift(replay.slice, start, fromHash ?? GENESIS_HASH);
  if (chain) drifts.push(chain);
  const last = replay.slice[replay.slice.length - 1];
  const verifiedSeq = chain || !last ? start : last.seq;
  const verifiedHash = chain || !last ? (fromHash ?? GENESIS_HASH) : last.hash;
  return {
    status: drifts.length > 0 ? "drift" : "ok",
    drifts,
    verified: chain ? 0 : replay.slice.length,
    checkpoint: {
      account_id: accountId,
      verified_seq: verifiedSeq,
      verified_hash: verifiedHash,
      behind: !chain && verifiedSeq < snap.seq ? 1 : 0,
    },
  };
}

async function candidates(db: D1Database) {
  const mark = (await readCronState<Watermark>(db, WATERMARK)) ?? { ms: 0, id: "" };
  const touched = await db
    .prepare(
      `SELECT account_id, updated_at_ms FROM account_heads
       WHERE updated_at_ms > ? OR (updated_at_ms = ? AND account_id > ?)
       ORDER BY updated_at_ms, account_id LIMIT ?`,
    )
    .bind(mark.ms, mark.ms, mark.id, RECONCILE_BATCH)
    .all<{ account_id: string; updated_at_ms: number }>();
  const behind = await db
    .prepare("SELECT account_id FROM reconciliation_checkpoints WHERE behind = 1 LIMIT ?")
    .bind(AUDIT_BATCH)
    .all<{ account_id: string }>();
  const auditFrom = (await readCronState<string>(db, AUDIT_CURSOR)) ?? "";
  const audit = await db
    .prepare("SELECT account_id FROM account_heads WHERE account_id > ? ORDER BY account_id LIMIT ?")
    .bind(auditFrom, AUDIT_BATCH)
    .all<{ account_id: string }>();
  const lastTouched = touched.results[touched.results.length - 1];
  const lastAudited = audit.results[audit.results.length - 1]?.account_id ?? "";
  return {
    accounts: [...new Set([...touched.results, ...behind.results, ...audit.results].map((r) => r.account_id))],
    touched: touched.results.length,
    cursorUpdates: [
      ...(lastTouched
        ? [writeCronState(db, WATERMARK, { ms: lastTouched.updated_at_ms, id: lastTouched.account_id })]
        : []),
      writeCronState(db, AUDIT_CURSOR, audit.results.length < AUDIT_BATCH ? "" : lastAudited),
    ],
  };
}

/** At most one drift alert per account, set of drift kinds and UTC day while a drift persists. */
function driftAlert(runId: string, accountId: string, drifts: Drift[], nowMs: number): AlertRecord {
  const kinds = [...new Set(drifts.map((d) => d.kind))].sort().join(",");
  const day = new Date(nowMs).toISOString().slice(0, 10);
  return {
    id: `drift_${sha256Hex(`${accountId}\u0000${kinds}\u0000${day}`).slice(0, 32)}`,
    type: "reconciliation.drift",
    account_id: accountId,
    unit: drifts.find((d) => d.unit !== null)?.unit ?? null,
    data: { run_id: runId, kinds, drifts: drifts.length, detail: drifts[0]?.detail ?? "" },
    created_at: new Date(nowMs).toISOString(),
  };
}

export async function runReconciliation(ctx: JobContext) {
  const db = ctx.env.DB;
  const startedAtMs = Date.now();
  const runId = `run_${startedAtMs.toString(36)}_${crypto.randomUUID().slice(0, 8)}`;
  const found = await candidates(db);
  const checkpoints = await loadCheckpoints(db, found.accounts);
  const results = await mapLimit(found.accounts, PARALLEL, async (accountId) => {
    try {
      return { accountId, result: await reconcileAccount(ctx, accountId, checkpoints.get(accountId)) };
    } catch (e) {
      const failed: AccountResult = { status: "failed", error: String(e) };
      return { accountId, result: failed };
    }
  });
  const run: RunRecord = {
    id: runId,
    startedAtMs,
    finishedAtMs: Date.now(),
    accountsChecked: 0,
    accountsLagging: 0,
    accountsFailed: 0,
    entriesVerified: 0,
    drifts: [],
    checkpoints: [],
  };
  const alerts: AlertRecord[] = [];
  for (const { accountId, result } of results) {
    if (result.status === "lagging") run.accountsLagging++;
    else if (result.status === "failed") run.accountsFailed++;
    else if (result.status === "ok" || result.status === "drift") {
      run.accountsChecked++;
      run.entriesVerified += result.verified;
      run.checkpoints.push(result.checkpoint);
      for (const drift of result.drifts) run.drifts.push({ accountId, drift });
      if (result.drifts.length > 0) alerts.push(driftAlert(runId, accountId, result.drifts, ctx.nowMs));
    }
  }
  await db.batch([...runStatements(db, run), ...found.cursorUpdates]);
  const fresh = await recordAlerts(db, alerts);
  if (fresh.length > 0) await dispatchAlerts(db, ctx.env.WEBHOOK_QUEUE, { ids: fresh });
  return {
    run_id: runId,
    accounts: found.accounts.length,
    touched: found.touched,
    checked: run.accountsChecked,
    lagging: run.accountsLagging,
    failed: run.accountsFailed,
    drifts: run.drifts.length,
    entries_verified: run.entriesVerified,
  };
}
