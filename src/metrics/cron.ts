/**
 * The metrics' cron work: the `metrics` job prunes D1's per-minute rows
 * (store.ts pruneMetrics), and every cron run records each job's health as
 * gauges and a failure counter (src/cron/scheduled.ts calls recordCronRuns).
 */
import { log } from "../log";
import { bumpStatements, gaugeStatement, pruneMetrics } from "./store";

export interface CronRun {
  job: string;
  ok: boolean;
  atMs: number;
}

/** The cron job: prunes metric_deltas and metric_minutes past their retention. */
export async function runMetricsJob(ctx: { env: Env; nowMs: number }): Promise<Record<string, number>> {
  const pruned = await pruneMetrics(ctx.env.DB, ctx.nowMs);
  return { deltas_pruned: pruned.deltas, minutes_pruned: pruned.minutes };
}

/**
 * One D1 batch: per job its last run, its last success when it succeeded,
 * and a failure counted when it threw. Never throws: health that cannot be
 * written is logged and the cron carries on.
 */
export async function recordCronRuns(db: D1Database, runs: readonly CronRun[]): Promise<void> {
  if (runs.length === 0) return;
  const statements: D1PreparedStatement[] = [];
  for (const r of runs) {
    const seconds = Math.floor(r.atMs / 1000);
    statements.push(gaugeStatement(db, "creditgate_cron_last_run_timestamp_seconds", { job: r.job }, seconds, r.atMs));
    if (r.ok) {
      statements.push(
        gaugeStatement(db, "creditgate_cron_last_success_timestamp_seconds", { job: r.job }, seconds, r.atMs),
      );
    } else {
      statements.push(...bumpStatements(db, "creditgate_cron_job_failures_total", { job: r.job }, 1, r.atMs));
    }
  }
  try {
    await db.batch(statements);
  } catch (e) {
    log({ event: "metrics.cron_health_failed", jobs: runs.length, error: e instanceof Error ? e.message : String(e) });
  }
}
