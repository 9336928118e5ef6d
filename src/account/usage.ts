/**
 * Usage events on one account: the gateway's batch, cut to this account's
 * events in their order, each one a debit through the debit path (scope
 * `debit`, so an event and a debit with the same id are the same operation).
 * One RPC answers them all; each event keeps its own result.
 */
import { type ErrorCode, type Problem, statusOf } from "../errors";
import { type EntryRating, iso } from "../ledger";
import type { AccountCore } from "./core";
import type { Json, OpContext, Outcome } from "./types";
import * as writes from "./writes";

/** Events in one batch (POST /v1/usage), and so at most in one account's call. */
export const MAX_USAGE_EVENTS = 1000;
/**
 * Lots listed in each event's `applied` (more: `applied_more`). A batch answers
 * up to MAX_USAGE_EVENTS results, so each keeps few; GET …/debits/{event_id}
 * lists up to 1 000.
 */
export const USAGE_APPLIED_MAX = 10;

/** One event as the gateway hands it over: validated, with the hash its debit is remembered by. */
export interface UsageEvent {
  eventId: string;
  unit: string;
  amount: number;
  /** The client's time of use (null: now); written as the entries' effective_at. */
  occurredAtMs: number | null;
  /** Canonical hash of the debit this event is: {debit_id, amount | meter+quantity, unit?, occurred_at?} as sent. */
  bodyHash: string;
  /** Metered events: what priced `amount` (the gateway rated it). */
  rating?: EntryRating;
}

/** What a usage batch answers for one event. */
export interface UsageResult {
  event_id: string | null;
  status: number;
  code?: ErrorCode;
  detail?: string;
  amount?: number;
  unit?: string;
  applied?: Json;
  applied_more?: boolean;
  replayed?: boolean;
  [member: string]: Json | undefined;
}

/** What one account's call wrote, for the gateway's log line. */
export interface UsageWrites {
  applied: number;
  entries: number;
  headSeq: number;
}

export const refusedEvent = (eventId: string | null, p: Problem): UsageResult => ({
  event_id: eventId,
  status: statusOf(p.code),
  code: p.code,
  detail: p.detail,
  ...p.extra,
});

/**
 * Given an event's refused debit, what a budgeted child does about it (draw
 * the shortfall from its parent, then `retry`), or that refusal as it is.
 */
export type Cover = (
  refused: Outcome,
  unit: string,
  amount: number,
  retry: () => Outcome,
) => Outcome | Promise<Outcome>;

/**
 * Applies this account's events in order. An event dated more than
 * `maxSkewMs` ahead of this account's clock is 400 clock_skew and moves
 * nothing. An event its own lots cannot cover goes to `cover` (a budgeted
 * child's draw, as a debit's); the next event waits for it, so order holds.
 */
export async function applyUsage(
  core: AccountCore,
  ctx: OpContext,
  events: readonly UsageEvent[],
  maxSkewMs: number,
  cover: Cover = (refused) => refused,
): Promise<{ results: UsageResult[]; writes: UsageWrites }> {
  const done: UsageWrites = { applied: 0, entries: 0, headSeq: core.headSeq };
  if (core.account === null) {
    const missing: Problem = { code: "account_not_found", detail: `account ${ctx.accountId} does not exist` };
    return { results: events.map((e) => refusedEvent(e.eventId, missing)), writes: done };
  }
  const results: UsageResult[] = [];
  for (const e of events.slice(0, MAX_USAGE_EVENTS)) {
    const nowMs = core.now();
    if (e.occurredAtMs !== null && e.occurredAtMs > nowMs + maxSkewMs) {
      results.push(
        refusedEvent(e.eventId, {
          code: "clock_skew",
          detail: `occurred_at ${iso(e.occurredAtMs)} is more than ${maxSkewMs} ms ahead of the account's clock (${iso(nowMs)})`,
        }),
      );
      continue;
    }
    const req = { id: e.eventId, unit: e.unit, amount: e.amount, metadata: null };
    const at = e.occurredAtMs === null ? {} : { occurredAtMs: e.occurredAtMs };
    const rated = e.rating ? { rating: e.rating } : {};
    const run = () => writes.debit(core, ctx, { ...req, ...at, ...rated }, { key: e.eventId, bodyHash: e.bodyHash });
    let outcome = run();
    if (!outcome.ok && outcome.problem.code === "insufficient_credits")
      outcome = await cover(outcome, e.unit, e.amount, run);
    if (outcome.ok && outcome.write) {
      done.applied++;
      done.entries += outcome.write.entries;
    }
    results.push(resultOf(e.eventId, outcome));
  }
  done.headSeq = core.headSeq;
  return { results, writes: done };
}

/** The debit's answer, cut to what a batch result carries. */
function resultOf(eventId: string, outcome: Outcome): UsageResult {
  if (!outcome.ok) return refusedEvent(eventId, outcome.problem);
  const body = outcome.body as Record<string, Json | undefined>;
  const applied = Array.isArray(body.applied) ? body.applied : [];
  const result: UsageResult = {
    event_id: eventId,
    status: 200,
    amount: Number(body.amount),
    unit: String(body.unit),
    applied: applied.slice(0, USAGE_APPLIED_MAX),
    applied_more: applied.length > USAGE_APPLIED_MAX || body.applied_more === true,
  };
  for (const k of ["meter", "quantity", "price_version"]) if (body[k] !== undefined) result[k] = body[k];
  if (outcome.replayed) result.replayed = true;
  return result;
}
