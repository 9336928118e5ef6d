/**
 * Outbox re-drive. Each DO ships its own outbox from its alarm (retrying with
 * backoff while D1 is down); this finds the ones that stopped:
 *   1. lagging heads: the last shipped batch reported the DO holding more
 *      (`known_seq > shipped_seq`) and nothing shipped since — found by a
 *      partial index, no DO woken;
 *   2. a rolling probe over every account (PROBE_BATCH per run, cursor in
 *      cron_state), for an outbox that stopped with nothing reported to D1.
 * Each found account with unshipped rows is drained (idempotent: INSERT OR
 * IGNORE by entry id).
 */
import { readCronState, writeCronState } from "../db/cron-state";
import { accountStub, type JobContext, mapLimit, PARALLEL } from "./job";

export const REDRIVE_BATCH = 50;
export const PROBE_BATCH = 25;
const PROBE_CURSOR = "redrive.probe_cursor";

export async function runRedrive(ctx: JobContext) {
  const db = ctx.env.DB;
  const lagging = await db
    .prepare("SELECT account_id FROM account_heads WHERE known_seq > shipped_seq LIMIT ?")
    .bind(REDRIVE_BATCH)
    .all<{ account_id: string }>();
  const cursor = (await readCronState<string>(db, PROBE_CURSOR)) ?? "";
  const probe = await db
    .prepare("SELECT account_id FROM account_heads WHERE account_id > ? ORDER BY account_id LIMIT ?")
    .bind(cursor, PROBE_BATCH)
    .all<{ account_id: string }>();
  const last = probe.results[probe.results.length - 1]?.account_id;
  // Wrap around once the probe reaches the end.
  await writeCronState(db, PROBE_CURSOR, probe.results.length < PROBE_BATCH ? "" : (last ?? "")).run();

  const accounts = [...new Set([...lagging.results, ...probe.results].map((r) => r.account_id))];
  const counts = {
    lagging: lagging.results.length,
    probed: probe.results.length,
    drained: 0,
    still_pending: 0,
    failed: 0,
  };
  await mapLimit(accounts, PARALLEL, async (accountId) => {
    try {
      const stub = accountStub(ctx.env, accountId);
      if ((await stub.pendingOutbox()) === 0) return;
      const drained = await stub.drain();
      counts.drained++;
      if (drained.pending > 0) counts.still_pending++;
    } catch {
      counts.failed++;
    }
  });
  return counts;
}
