/**
 * credits.expiring: N days before a lot expires (N from the alert settings,
 * default 7 and 1), once per window. Lots come from the D1 grant index;
 * the amount is read from the owning DO (the index does not follow every
 * draw). `grants.expiring_notified_days` records the smallest window told
 * (the UPDATE only ever lowers it), so each lot leaves the query once told and
 * the backlog always moves.
 */

import type { LedgerRpc } from "../account/stub";
import { loadAlertSettings } from "../db/alert-settings";
import { recordAlerts } from "../db/alerts";
import { type AlertRecord, expiringWindowDue, sha256Hex } from "../ledger";
import { dispatchAlerts } from "../webhooks/dispatch";
import { accountStub, type JobContext, mapLimit, PARALLEL } from "./job";

export const EXPIRING_BATCH = 200;
const DAY_MS = 86_400_000;

interface Candidate {
  account_id: string;
  grant_id: string;
  unit: string;
  expires_at_ms: number;
  expiring_notified_days: number | null;
}

/**
 * One alert per lot and window, whatever the length of the ids (each up to
 * 128 characters): hashed like the drift and spike alert ids, so no suffix is
 * ever cut off and the 1-day alert never collides with the 7-day one.
 */
export const expiringAlertId = (accountId: string, grantId: string, days: number): string =>
  `expiring_${sha256Hex(`${accountId}\u0000${grantId}\u0000${days}`).slice(0, 32)}`;

type Remainder = Awaited<ReturnType<LedgerRpc["grantRemainders"]>>[number];

/** The unheld remainder of the candidate lots, from the DO (null: the account could not answer). */
async function remainders(env: Env, accountId: string, grantIds: string[]): Promise<Map<string, Remainder> | null> {
  const grants = await accountStub(env, accountId).grantRemainders(grantIds);
  return new Map(grants.map((g) => [g.grant_id, g]));
}

export async function runExpiring(ctx: JobContext) {
  const db = ctx.env.DB;
  const settings = await loadAlertSettings(db);
  const windows = [...settings.expiring_days].sort((a, b) => a - b);
  const widest = windows[windows.length - 1] ?? 0;
  if (widest === 0) return { candidates: 0, due: 0, alerts: 0 };
  // The smallest window each lot is in, computed in SQL so lots already told drop out of the query.
  const windowOf = `CASE ${windows.map(() => "WHEN expires_at_ms <= ? THEN ?").join(" ")} END`;
  const windowArgs = windows.flatMap((n) => [ctx.nowMs + n * DAY_MS, n]);
  const { results } = await db
    .prepare(
      `SELECT account_id, grant_id, unit, expires_at_ms, expiring_notified_days FROM grants
       WHERE expires_at_ms > ? AND expires_at_ms <= ? AND remaining > held AND status != 'voided'
         AND (expiring_notified_days IS NULL OR expiring_notified_days > ${windowOf})
       ORDER BY expires_at_ms LIMIT ?`,
    )
    .bind(ctx.nowMs, ctx.nowMs + widest * DAY_MS, ...windowArgs, EXPIRING_BATCH)
    .all<Candidate>();
  const due = results
    .map((c) => ({ c, window: expiringWindowDue(c.expires_at_ms, ctx.nowMs, windows, c.expiring_notified_days) }))
    .filter((d): d is { c: Candidate; window: number } => d.window !== null);
  const wanted = new Map<string, string[]>();
  for (const { c } of due) wanted.set(c.account_id, [...(wanted.get(c.account_id) ?? []), c.grant_id]);
  const lots = new Map(
    await mapLimit(
      [...wanted],
      PARALLEL,
      async ([a, ids]) => [a, await remainders(ctx.env, a, ids).catch(() => null)] as const,
    ),
  );
  const alerts: AlertRecord[] = [];
  const marks: D1PreparedStatement[] = [];
  for (const { c, window } of due) {
    const byGrant = lots.get(c.account_id);
    if (!byGrant) continue; // the DO did not answer: try again next run
    const g = byGrant.get(c.grant_id);
    const amount = g ? g.remaining - g.held : 0;
    if (amount > 0 && g?.status !== "voided") {
      alerts.push({
        id: expiringAlertId(c.account_id, c.grant_id, window),
        type: "credits.expiring",
        account_id: c.account_id,
        unit: c.unit,
        data: {
          grant_id: c.grant_id,
          unit: c.unit,
          credit_type: g?.type ?? null,
          amount,
          expires_at: new Date(c.expires_at_ms).toISOString(),
          days: window,
        },
        created_at: new Date(ctx.nowMs).toISOString(),
      });
    }
    // Only ever lowers: an overlapping run that already told a smaller window is not undone.
    marks.push(
      db
        .prepare(
          `UPDATE grants SET expiring_notified_days = ? WHERE account_id = ? AND grant_id = ?
           AND (expiring_notified_days IS NULL OR expiring_notified_days > ?)`,
        )
        .bind(window, c.account_id, c.grant_id, window),
    );
  }
  const fresh = await recordAlerts(db, alerts);
  if (marks.length > 0) await db.batch(marks);
  if (fresh.length > 0) await dispatchAlerts(db, ctx.env.WEBHOOK_QUEUE, { ids: fresh });
  return { candidates: results.length, due: due.length, alerts: fresh.length };
}
