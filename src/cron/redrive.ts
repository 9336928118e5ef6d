/**
 * Outbox re-drive. Each DO ships its own outbox from its alarm (retrying with
 * backoff while D1 is down); this finds the ones that stopped:
 *   1. lagging heads: `known_seq > shipped_seq` in account_heads — found by a
 *      partial index, no DO woken. A shipped batch reports the DO's head, and
 *      a failed one marks it too (inserting the row if the account never
 *      shipped anything), so every account whose entries D1 has not taken is
 *      here once one small D1 write got through. Walked with a cursor
 *      (REDRIVE_BATCH per run, wrapping around), so accounts that stay stuck
 *      cannot keep the others out;
 *   2. a rolling probe over every account (PROBE_BATCH per run, cursor in
 *      cron_state), for an outbox that stopped with nothing reported to D1
 *      or with only non-entry rows waiting.
 * Each found account with unshipped rows is drained (idempotent: entries
 * conflict only on their entry id).
 */
import { readCronState, writeCronState } from "../db/cron-state";
import { accountStub, type JobContext, mapLimit, PARALLEL } from "./job";

export const REDRIVE_BATCH = 50;
export const PROBE_BATCH = 25;
const PROBE_CURSOR = "redrive.probe_cursor";
const LAGGING_CURSOR = "redrive.lagging_cursor";

/**
 * Up to REDRIVE_BATCH lagging accounts after the cursor, then from the start
 * when that runs short; the next cursor is the last one taken, or "" once a
 * run has seen them all.
 */
async function laggingAccounts(db: D1Database): Promise<{ ids: string[]; next: string }> {
  const cursor = (await readCronState<string>(db, LAGGING_CURSOR)) ?? "";
  const page = (op: ">" | "<=", bound: string, limit: number) =>
    db
      .prepare(
        `SELECT account_id FROM account_heads WHERE known_seq > shipped_seq AND account_id ${op} ?
         ORDER BY account_id LIMIT ?`,
      )
      .bind(bound, limit)
      .all<{ account_id: string }>();
  const ids = (await page(">", cursor, REDRIVE_BATCH)).results.map((r) => r.account_id);
  if (ids.length < REDRIVE_BATCH && cursor !== "") {
    ids.push(...(await page("<=", cursor, REDRIVE_BATCH - ids.length)).results.map((r) => r.account_id));
  }
  return { ids, next: ids.length < REDRIVE_BATCH ? "" : (ids[ids.length - 1] ?? "") };
}

export async function runRedrive(ctx: JobContext) {
  const db = ctx.env.DB;
  const lagging = await laggingAccounts(db);
  const cursor = (await readCronState<string>(db, PROBE_CURSOR)) ?? "";
  const probe = await db
    .prepare("SELECT account_id FROM account_heads WHERE account_id > ? ORDER BY account_id LIMIT ?")
    .bind(cursor, PROBE_BATCH)
    .all<{ account_id: string }>();
  const last = probe.results[probe.results.length - 1]?.account_id;
  // Both cursors move before any drain, so a run that fails part way does not stall them.
  await db.batch([
    writeCronState(db, LAGGING_CURSOR, lagging.next),
    // Wrap around once the probe reaches the end.
    writeCronState(db, PROBE_CURSOR, probe.results.length < PROBE_BATCH ? "" : (last ?? "")),
  ]);

  const accounts = [...new Set([...lagging.ids, ...probe.results.map((r) => r.account_id)])];
  const counts = {
    lagging: lagging.ids.length,
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
