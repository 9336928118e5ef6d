/** What every cron job shares: its inputs, one log line per run, bounded parallelism. */
import { ledgerStub } from "../account/stub";
import { log } from "../log";

export interface JobContext {
  env: Env;
  /** The cron's notion of now: the controller's scheduledTime. */
  nowMs: number;
}

export type JobCounts = Record<string, number | string>;

/**
 * Runs one job, never throws: a failing job is logged and the next one runs.
 * Logs `{"event":"cron.job","job":…, …counts, "duration_ms":…}` once.
 */
export async function runJob(name: string, fn: () => Promise<JobCounts>): Promise<JobCounts | null> {
  const started = Date.now();
  try {
    const counts = await fn();
    log({ event: "cron.job", job: name, ok: true, ...counts, duration_ms: Date.now() - started });
    return counts;
  } catch (e) {
    log({
      event: "cron.job",
      job: name,
      ok: false,
      error: e instanceof Error ? e.message : String(e),
      duration_ms: Date.now() - started,
    });
    return null;
  }
}

/** Maps with at most `limit` calls in flight (Workers allow 6 open connections). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export const PARALLEL = 6;

/** The account's Durable Object over RPC. */
export const accountStub = (env: Env, accountId: string) => ledgerStub(env, accountId);
