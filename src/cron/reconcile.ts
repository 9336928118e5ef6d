/**
 * Reconciliation: proves D1 equal to each Durable Object, account by account.
 * Accounts come from three places, together at most RECONCILE_BATCH +
 * AUDIT_BATCH per run:
 *   - retries first: checkpoints marked `behind` (chain verification or the
 *     audit part way, or the last check failed or lagged), least recently
 *     checked first, up to RETRY_BATCH;
 *   - touched since the last run: account_heads rows after the watermark
 *     (updated_at_ms, account_id), i.e. every account that shipped entries,
 *     filling the rest of RECONCILE_BATCH; the watermark keeps a one-minute
 *     overlap for slow commits (./touched.ts);
 *   - a rolling audit over every account, so a D1 change nobody shipped is
 *     still found: it also re-verifies the account's D1 chain from seq 1 up to
 *     its checkpoint, one page per run, continued by the next run.
 * For each: the DO's head seq, hash and lots summed per unit and type are
 * compared with D1's replay up to the same seq, and the D1 chain after the
 * last checkpoint is re-verified (src/ledger/reconcile.ts). An account with
 * unshipped outbox rows is drained first; if rows remain it is "lagging", not
 * drifted, and is retried. Every run and every drift is recorded in D1; a
 * drift raises a reconciliation.drift alert and is never repaired here.
 */
import { recordAlerts } from "../db/alerts";
import { readCronState, writeCronState } from "../db/cron-state";
import { type Checkpoint, loadCheckpoints, type RunRecord, readReplay, runStatements } from "../db/reconciliation";
import { ledgerDb } from "../db/shards";
import {
  type AlertRecord,
  type AuditPosition,
  auditStep,
  chainDrift,
  compareAccount,
  type Drift,
  GENESIS_HASH,
  sha256Hex,
} from "../ledger";
import { dispatchAlerts } from "../webhooks/dispatch";
import { accountStub, type JobContext, mapLimit, PARALLEL } from "./job";
import { touchedSince } from "./touched";

/** Retried plus touched accounts per run (see docs/jobs.md for the measurement behind it). */
export const RECONCILE_BATCH = 200;
/** Of those, at most this many retries, so touched accounts keep moving while some cannot be checked. */
export const RETRY_BATCH = 50;
export const AUDIT_BATCH = 20;
/** D1 entries whose hashes one run re-verifies per account (after the checkpoint, and again per audit page). */
export const VERIFY_LIMIT = 1000;
const WATERMARK = "reconcile.watermark";
const AUDIT_CURSOR = "reconcile.audit_cursor";

type AccountResult =
  | { status: "ok" | "drift"; drifts: Drift[]; checkpoint: Checkpoint; verified: number }
  | { status: "lagging" | "failed"; error?: string };

/** The audit page to read: from the account's audit position (or seq 0) up to where verification starts. */
function auditFrom(checkpoint: Checkpoint | undefined, start: number): AuditPosition | null {
  if (start === 0) return null; // nothing below the checkpoint: the forward pass verifies from genesis
  const seq = checkpoint?.audit_seq ?? 0;
  const hash = checkpoint?.audit_hash ?? null;
  // A position at or past the target, or without its hash, cannot be continued: start the pass again.
  if (seq === 0 || seq >= start || hash === null) return { seq: 0, hash: GENESIS_HASH };
  return { seq, hash };
}

async function reconcileAccount(
  ctx: JobContext,
  accountId: string,
  checkpoint: Checkpoint | undefined,
  audit: boolean,
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
  const startHash = fromHash ?? GENESIS_HASH;
  // The audit runs when the rolling cursor reaches the account, and continues a pass under way.
  const auditAt = audit || (checkpoint?.audit_seq ?? 0) > 0 ? auditFrom(checkpoint, start) : null;
  const replay = await readReplay(
    ledgerDb(ctx.env, accountId),
    accountId,
    snap.seq,
    start,
    VERIFY_LIMIT,
    auditAt ? { afterSeq: auditAt.seq, upToSeq: start } : null,
  );
  // D1 rows above the snapshot may be entries written since; only the DO's head read afterwards can tell.
  const laterHead = replay.maxSeq > snap.seq ? (await stub.head()).seq : snap.seq;
  const drifts = compareAccount(snap, replay, laterHead);
  // Entries archived to R2 were re-verified as they left D1 (src/archive/export.ts) and D1 no longer holds
  // them: verification and the audit continue from the archive's last seq and hash.
  const arch = replay.archived !== null && replay.archived.seq > start ? replay.archived : null;
  const vStart = arch?.seq ?? start;
  const vHash = arch?.hash ?? startHash;
  // An audit position below the archive (a pass from genesis, or one the archive overtook) continues from
  // the archive's end, whether or not the archive reaches past where verification starts: D1 holds nothing below it.
  const archived = replay.archived;
  const auditPos = auditAt && archived && auditAt.seq < archived.seq ? archived : auditAt;
  const chain = chainDrift(replay.slice, vStart, vHash);
  if (chain) drifts.push(chain);
  const step = auditPos
    ? auditStep(replay.auditPage, auditPos, { seq: vStart, hash: vHash }, VERIFY_LIMIT)
    : { drift: null, verified: 0, next: null };
  if (step.drift) drifts.push(step.drift);
  const last = replay.slice[replay.slice.length - 1];
  const verifiedSeq = chain || !last ? vStart : last.seq;
  const verifiedHash = chain || !last ? vHash : last.hash;
  return {
    status: drifts.length > 0 ? "drift" : "ok",
    drifts,
    verified: (chain ? 0 : replay.slice.length) + step.verified,
    checkpoint: {
      account_id: accountId,
      verified_seq: verifiedSeq,
      verified_hash: verifiedHash,
      behind: (!chain && verifiedSeq < snap.seq) || step.next !== null ? 1 : 0,
      audit_seq: step.next?.seq ?? 0,
      audit_hash: step.next?.hash ?? null,
    },
  };
}

async function candidates(db: D1Database) {
  const retry = await db
    .prepare("SELECT account_id FROM reconciliation_checkpoints WHERE behind = 1 ORDER BY checked_at_ms LIMIT ?")
    .bind(RETRY_BATCH)
    .all<{ account_id: string }>();
  const touched = await touchedSince(db, WATERMARK, RECONCILE_BATCH - retry.results.length);
  const auditCursor = (await readCronState<string>(db, AUDIT_CURSOR)) ?? "";
  const audit = await db
    .prepare("SELECT account_id FROM account_heads WHERE account_id > ? ORDER BY account_id LIMIT ?")
    .bind(auditCursor, AUDIT_BATCH)
    .all<{ account_id: string }>();
  const lastAudited = audit.results[audit.results.length - 1]?.account_id ?? "";
  return {
    accounts: [...new Set([...retry.results, ...touched.rows, ...audit.results].map((r) => r.account_id))],
    audited: new Set(audit.results.map((r) => r.account_id)),
    touched: touched.rows.length,
    retried: retry.results.length,
    cursorUpdates: [
      ...(touched.commit ? [touched.commit] : []),
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
      const audit = found.audited.has(accountId);
      return { accountId, result: await reconcileAccount(ctx, accountId, checkpoints.get(accountId), audit) };
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
    retries: [],
  };
  const alerts: AlertRecord[] = [];
  for (const { accountId, result } of results) {
    if (result.status === "lagging") {
      run.accountsLagging++;
      run.retries.push(accountId);
    } else if (result.status === "failed") {
      run.accountsFailed++;
      run.retries.push(accountId);
    } else if (result.status === "ok" || result.status === "drift") {
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
    retried: found.retried,
    checked: run.accountsChecked,
    lagging: run.accountsLagging,
    failed: run.accountsFailed,
    drifts: run.drifts.length,
    entries_verified: run.entriesVerified,
  };
}
