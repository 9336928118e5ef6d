/**
 * Gauges read from D1 at scrape time. Each query is bounded: the lag scan
 * reads at most GAUGE_SCAN_MAX rows of the partial index of lagging heads per
 * shard, the reconciliation gauges one run and its drifts (at most
 * RECONCILE_BATCH + AUDIT_BATCH accounts), the alert scan at most
 * GAUGE_SCAN_MAX rows of the undispatched index.
 */
import { ledgerDbs } from "../db/shards";
import type { Sample } from "./names";
import { readStoredGauges } from "./store";

/** Rows a gauge query reads at most (per shard for the lag): past it the gauge reports the capped count. */
export const GAUGE_SCAN_MAX = 10_000;

const sample = (name: string, value: number, labels = ""): Sample => ({ name, labels, value });

/**
 * Outbox lag from account_heads (written by each shipment, and by a failed
 * one through markUnshipped): known_seq is the DO's head when it last tried
 * to ship, shipped_seq the last seq D1 committed. Their difference summed is
 * the entries written in Durable Objects that D1 does not hold, as of each
 * account's last shipment attempt (a write since then is not seen until its
 * shipment runs or fails, OUTBOX_DELAY_MS later). Every shard is read, so the
 * gauge is right wherever the heads live.
 */
async function outboxLag(env: Env): Promise<Sample[]> {
  let entries = 0;
  let accounts = 0;
  for (const db of new Set(ledgerDbs(env))) {
    const row = await db
      .prepare(
        `SELECT count(*) AS accounts, coalesce(sum(lag), 0) AS entries FROM
          (SELECT known_seq - shipped_seq AS lag FROM account_heads WHERE known_seq > shipped_seq LIMIT ?)`,
      )
      .bind(GAUGE_SCAN_MAX)
      .first<{ accounts: number; entries: number }>();
    entries += Number(row?.entries ?? 0);
    accounts += Number(row?.accounts ?? 0);
  }
  return [sample("creditgate_outbox_lag_entries", entries), sample("creditgate_outbox_lagging_accounts", accounts)];
}

/** The latest reconciliation run: accounts drifted, lagging, failed, and when it finished (all 0 before any run). */
async function reconciliation(db: D1Database): Promise<Sample[]> {
  const run = await db
    .prepare(
      `SELECT id, finished_at_ms, accounts_lagging, accounts_failed FROM reconciliation_runs
       ORDER BY started_at_ms DESC LIMIT 1`,
    )
    .first<{ id: string; finished_at_ms: number; accounts_lagging: number; accounts_failed: number }>();
  const drifted = run
    ? await db
        .prepare("SELECT count(DISTINCT account_id) AS n FROM reconciliation_drifts WHERE run_id = ?")
        .bind(run.id)
        .first<{ n: number }>()
    : null;
  return [
    sample("creditgate_reconciliation_drift_accounts", Number(drifted?.n ?? 0)),
    sample("creditgate_reconciliation_lagging_accounts", run?.accounts_lagging ?? 0),
    sample("creditgate_reconciliation_failed_accounts", run?.accounts_failed ?? 0),
    sample("creditgate_reconciliation_last_run_timestamp_seconds", run ? Math.floor(run.finished_at_ms / 1000) : 0),
  ];
}

async function undispatched(db: D1Database): Promise<Sample> {
  const row = await db
    .prepare(
      "SELECT count(*) AS n FROM (SELECT 1 FROM alerts WHERE dispatched_at_ms IS NULL ORDER BY recorded_at_ms LIMIT ?)",
    )
    .bind(GAUGE_SCAN_MAX)
    .first<{ n: number }>();
  return sample("creditgate_alerts_undispatched", Number(row?.n ?? 0));
}

/** Every gauge but the two about the scrape itself (the route adds those). */
export async function readGauges(env: Env): Promise<Sample[]> {
  const [lag, recon, alerts, stored] = await Promise.all([
    outboxLag(env),
    reconciliation(env.DB),
    undispatched(env.DB),
    readStoredGauges(env.DB),
  ]);
  return [...lag, ...recon, alerts, ...stored];
}
