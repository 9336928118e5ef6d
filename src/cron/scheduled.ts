/**
 * The cron trigger (wrangler.toml [triggers]): each job small, idempotent and
 * bounded, run one after the other; a failing job is logged and the next one
 * runs. "Now" is the controller's scheduledTime, so a late or repeated run
 * acts as of the time it was meant for (and tests can choose it).
 */
import { log } from "../log";
import { type CronRun, recordCronRuns, runMetricsJob } from "../metrics/cron";
import { runArchive } from "./archive";
import { runDispatch } from "./dispatch";
import { runExpirations } from "./expirations";
import { runExpiring } from "./expiring";
import { type JobContext, type JobCounts, runJob } from "./job";
import { runReconciliation } from "./reconcile";
import { runRecurringCron } from "./recurring";
import { runRedrive } from "./redrive";
import { runSpikes } from "./spikes";
import { runSweeps } from "./sweeps";
import { runTransferSweep } from "./transfers";

export async function runScheduled(controller: ScheduledController, env: Env, _ctx: ExecutionContext): Promise<void> {
  const started = Date.now();
  const ctx: JobContext = { env, nowMs: controller.scheduledTime };
  const jobs: [string, (c: JobContext) => Promise<JobCounts>][] = [
    ["recurring", runRecurringCron],
    ["expirations", runExpirations],
    ["sweeps", runSweeps],
    ["transfers", runTransferSweep],
    ["redrive", runRedrive],
    ["reconcile", runReconciliation],
    ["archive", runArchive],
    ["expiring", runExpiring],
    ["spikes", runSpikes],
    ["dispatch", runDispatch],
    ["metrics", runMetricsJob],
  ];
  let failed = 0;
  const runs: CronRun[] = [];
  for (const [name, job] of jobs) {
    const counts = await runJob(name, () => job(ctx));
    if (counts === null) failed++;
    runs.push({ job: name, ok: counts !== null, atMs: Date.now() });
  }
  await recordCronRuns(env.DB, runs); // job health as metrics (src/metrics/cron.ts); never throws
  log({
    event: "cron",
    cron: controller.cron,
    scheduled_at: new Date(controller.scheduledTime).toISOString(),
    jobs: jobs.length,
    failed,
    duration_ms: Date.now() - started,
  });
}
