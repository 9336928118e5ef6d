/**
 * The account's own jobs: the expiry and hold sweep, and the alarm's steps
 * (expire and sweep, ship the outbox, prune idempotency records, recover
 * transfers and budget draws, then the lifecycle features' jobs), each in
 * its own try so no step's failure stops another. The Durable Object hands
 * its parts in (account-do.ts); nothing here keeps state of its own.
 */
import { type Lot, type Policy, planExpire } from "../ledger";
import { log } from "../log";
import type { AccountCore } from "./core";
import { OUTBOX_DELAY_MS, type OutboxCourier } from "./outbox";
import { nextDeadline } from "./records";
import { pruneIdempotency } from "./storage";
import type { OpContext } from "./types";

/** Idempotency records are kept this long (docs/api.md: at least 30 days), then pruned by the alarm. */
export const IDEMPOTENCY_RETENTION_MS = 30 * 86_400_000;
/** Records pruned per alarm run; more wait for the next run, a second later. */
export const IDEMPOTENCY_PRUNE_BATCH = 1000;
/** After a step of the alarm threw, the alarm runs again this soon. */
export const ALARM_RETRY_MS = 5_000;

/** A lifecycle feature's alarm work: returns when it next wants to run (DO clock), null when nothing is left. */
export interface AlarmJob {
  name: string;
  run: () => Promise<number | null>;
}

/** The lots no feature settles itself: what the generic expiry pass may expire. */
function* unsettled(lots: Iterable<Lot>, settles: readonly ((lot: Lot) => boolean)[]): Generator<Lot> {
  for (const lot of lots) if (!settles.some((settlesLater) => settlesLater(lot))) yield lot;
}

/**
 * Writes `grant.expired` entries for lots past expiry and closes holds past
 * their deadline (receipts are captured in full; holds per policy; holds
 * wait when the policy is unknown). Idempotent: a second call writes nothing.
 */
export function expireAndSweep(core: AccountCore, globalPolicy: Policy | null): { expired: number; swept: number } {
  const nowMs = core.now();
  if (core.account === null) return { expired: 0, swept: 0 };
  const ctx: OpContext = {
    accountId: core.account.account_id,
    actor: "system:expiry",
    requestId: "alarm",
    globalPolicy,
  };
  // Due work first (a recurring period's rollover moves its remainder before the rest expires).
  for (const work of core.dueWork) work(ctx, nowMs);
  // Lots a feature settles itself (a period's rollover still to come) are left to it.
  const expired = planExpire(unsettled(core.lots.openLots(), core.settlesExpiry), nowMs);
  if (expired.entries.length > 0) core.commit({ ctx, lots: expired.lots, entries: expired.entries }, nowMs, () => null);
  const swept = core.sweepDue({ ...ctx, actor: "system:sweep" }) ?? 0;
  return { expired: expired.entries.length, swept };
}

/** What the alarm's steps need from the Durable Object. */
export interface AlarmParts {
  core: AccountCore;
  courier: OutboxCourier;
  sql: SqlStorage;
  loadPolicy: () => Promise<Policy | null>;
  /** Transfers and budget draws left mid-way: each returns when it next wants to run. */
  recover: (ctx: OpContext) => Promise<(number | null)[]>;
  jobs: readonly AlarmJob[];
}

/**
 * Runs every step of the alarm and answers when the alarm should fire next
 * (DO clock; null: no work left). Never throws: a failed step is logged and
 * asks to run again in ALARM_RETRY_MS.
 */
export async function runAlarmSteps(p: AlarmParts): Promise<number | null> {
  const { core, courier } = p;
  const wants: (number | null)[] = [];
  const step = async (name: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      log({ event: "alarm.error", step: name, account_id: core.account?.account_id ?? null, error });
      wants.push(core.now() + ALARM_RETRY_MS);
    }
  };
  await step("expire_sweep", async () => {
    expireAndSweep(core, await p.loadPolicy());
  });
  await step("ship", async () => {
    const shipped = await courier.shipForAlarm();
    if (!shipped.ok) wants.push(core.now() + shipped.retryInMs);
    else if (shipped.more) wants.push(core.now());
  });
  await step("prune", async () => {
    const pruned = pruneIdempotency(p.sql, core.now() - IDEMPOTENCY_RETENTION_MS, IDEMPOTENCY_PRUNE_BATCH);
    if (pruned === IDEMPOTENCY_PRUNE_BATCH) wants.push(core.now() + 1000);
  });
  await step("transfers", async () => {
    const accountId = core.account?.account_id;
    if (accountId === undefined) return;
    wants.push(...(await p.recover({ accountId, actor: "system:transfer", requestId: "alarm", globalPolicy: null })));
  });
  for (const job of p.jobs) {
    await step(job.name, async () => {
      wants.push(await job.run());
    });
  }
  const nowMs = core.now();
  wants.push(nextDeadline(core.lots.openLots(), core.openHolds.values(), nowMs));
  if (courier.pending() > 0) wants.push(nowMs + OUTBOX_DELAY_MS);
  return wants.reduce<number | null>((a, b) => (b === null ? a : a === null ? b : Math.min(a, b)), null);
}
