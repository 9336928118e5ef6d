/** Helpers for the scheduled-jobs suites: the real scheduled handler, draining, DO clocks. */
import {
  createExecutionContext,
  createScheduledController,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { AccountLedger } from "../../src/account/account-do";
import worker from "../../src/index";
import { ledgerStubFor } from "./helpers";

export const CRON = "*/5 * * * *";
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/** Runs the Worker's real `scheduled` export as the cron trigger would, at `scheduledTimeMs`. */
export async function runCron(scheduledTimeMs: number): Promise<void> {
  const controller = createScheduledController({ scheduledTime: new Date(scheduledTimeMs), cron: CRON });
  const ctx = createExecutionContext();
  await worker.scheduled(controller, env, ctx);
  await waitOnExecutionContext(ctx);
}

/** Ships the account's outbox to D1 now. */
export async function drain(accountId: string): Promise<void> {
  await runInDurableObject(ledgerStubFor(accountId), async (inst: AccountLedger) => {
    await inst.drain();
  });
}

/** The account's DO clock (real time + its test offset). */
export async function doNow(accountId: string): Promise<number> {
  return runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => Date.now() + inst.clock.offsetMs);
}

/** Sets the account's DO clock so that its now() is `atMs`. */
export async function setDoClock(accountId: string, atMs: number): Promise<void> {
  await runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => {
    inst.clock.offsetMs = atMs - Date.now();
  });
}

/** Removes the DO's pending alarm: "the alarm did not fire". */
export async function dropAlarm(accountId: string): Promise<void> {
  await runInDurableObject(ledgerStubFor(accountId), async (_inst: AccountLedger, state) => {
    await state.storage.deleteAlarm();
  });
}

export async function alertsFor(accountId: string, type?: string) {
  const rows = await env.DB.prepare(
    `SELECT id, type, unit, data, created_at_ms FROM alerts WHERE account_id = ? ${type ? "AND type = ?" : ""}
     ORDER BY created_at_ms, id`,
  )
    .bind(...(type ? [accountId, type] : [accountId]))
    .all<{ id: string; type: string; unit: string | null; data: string; created_at_ms: number }>();
  return rows.results.map((r) => ({ ...r, data: JSON.parse(r.data) }));
}
