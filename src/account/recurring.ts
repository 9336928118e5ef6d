/**
 * An account's recurring grants (allowances): its schedules, and the
 * catch-up that issues every period that has started and settles every
 * period that has ended, in time order, each step through core.commit with
 * the schedule's cursor written in the same transaction. That, and the lot
 * id `<recurring_id>.<n>` being unique among the account's lots, is what
 * makes a period issued exactly once whoever runs the catch-up (the alarm,
 * an operation's sweepDue, the cron's poke), however late.
 */
import { type EntryDraft, iso, type Lot } from "../ledger";
import {
  nextStep,
  periodExists,
  periodGrantId,
  periodIndexAt,
  periodStartMs,
  planIssue,
  planSettle,
  type RecurringCursor,
  type RecurringSpec,
  type RecurringStep,
  rolloverGrantId,
} from "../ledger/recurring";
import { log } from "../log";
import type { AccountCore } from "./core";
import type { Json, OpContext, Outcome } from "./types";
import { answer, missingAccount, refuse } from "./views";

/** Schedules an account may hold, active or cancelled (a cancelled one keeps its id's replay). */
export const RECURRING_MAX_PER_ACCOUNT = 100;
/** Periods a schedule may have begun when it is created (a back-dated starts_at): they are issued at once. */
export const RECURRING_MAX_BACKFILL = 12;
/** Steps (a period issued or a period's end settled) one catch-up takes; the rest wait for the next call. */
export const RECURRING_CATCHUP_MAX = 64;

export type RecurringStatus = "active" | "cancelled";

/** The shape of the lot ids a schedule issues: `<recurring_id>.<n>` and `<recurring_id>.<n>.rollover`. */
const RESERVED = /^(.+)\.[1-9][0-9]*(?:\.rollover)?$/;

/** A schedule as the gateway sends it: `startsAtMs` null starts it now (the account's clock). */
export type RecurringInput = Omit<RecurringSpec, "startsAtMs"> & { startsAtMs: number | null };

interface Schedule {
  spec: RecurringSpec;
  cursor: RecurringCursor;
  status: RecurringStatus;
  bodyHash: string;
  createdAtMs: number;
  cancelledAtMs: number | null;
}

/** A schedule as served; `periods_issued` and `next_period_at` say how far it has got. */
export function scheduleView(accountId: string, s: Schedule) {
  const { spec } = s;
  const nextAt = nextIssueAt(s);
  return {
    recurring_id: spec.recurringId,
    account_id: accountId,
    amount: spec.amount,
    unit: spec.unit,
    type: spec.type,
    interval: spec.interval,
    starts_at: iso(spec.startsAtMs),
    ends_at: spec.endsAtMs === null ? null : iso(spec.endsAtMs),
    priority: spec.priority,
    source: spec.source,
    reason: spec.reason,
    expires: spec.expires,
    rollover:
      spec.rollover === null ? null : { max_amount: spec.rollover.maxAmount, max_periods: spec.rollover.maxPeriods },
    status: s.status,
    periods_issued: s.cursor.nextIssue,
    next_period_at: nextAt === null ? null : iso(nextAt),
    created_at: iso(s.createdAtMs),
    cancelled_at: s.cancelledAtMs === null ? null : iso(s.cancelledAtMs),
  };
}

/** When the next period starts (null: none will: cancelled, or past ends_at). */
function nextIssueAt(s: Schedule): number | null {
  if (s.status !== "active" || !periodExists(s.spec, s.cursor.nextIssue)) return null;
  return periodStartMs(s.spec.startsAtMs, s.spec.interval, s.cursor.nextIssue);
}

export class RecurringDesk {
  private readonly schedules = new Map<string, Schedule>();
  /** The earliest step of any schedule (DO clock); null: nothing will ever fall due. A cheap "nothing to do". */
  private nextDueMs: number | null = null;

  constructor(
    private readonly core: AccountCore,
    private readonly transact: (write: () => void) => void,
    /** Makes the alarm fire at this DO-clock time. */
    private readonly wake: (atMs: number) => void,
  ) {
    for (const r of core.sql.exec("SELECT * FROM recurring_grants ORDER BY created_at_ms, recurring_id")) {
      this.schedules.set(String(r.recurring_id), {
        spec: JSON.parse(String(r.spec)) as RecurringSpec,
        cursor: { nextIssue: Number(r.next_issue), nextSettle: Number(r.next_settle) },
        status: String(r.status) as RecurringStatus,
        bodyHash: String(r.body_hash),
        createdAtMs: Number(r.created_at_ms),
        cancelledAtMs: r.cancelled_at_ms === null ? null : Number(r.cancelled_at_ms),
      });
    }
    this.refreshDue();
  }

  /** Creates a schedule, idempotent by recurring_id: the same body replays the first answer, another is a conflict. */
  create(ctx: OpContext, input: RecurringInput, bodyHash: string): Outcome {
    const core = this.core;
    if (core.account === null) return missingAccount(ctx.accountId);
    const id = input.recurringId;
    const first = core.sql
      .exec("SELECT body_hash, response FROM recurring_grants WHERE recurring_id = ?", id)
      .toArray()[0];
    if (first) {
      if (String(first.body_hash) !== bodyHash) {
        return refuse({
          code: "idempotency_conflict",
          detail: `recurring grant ${id} was first sent with a different body`,
        });
      }
      return answer(JSON.parse(String(first.response)) as Json, 201, true);
    }
    if (this.schedules.size >= RECURRING_MAX_PER_ACCOUNT) {
      return refuse({
        code: "invalid_request",
        detail: `an account holds at most ${RECURRING_MAX_PER_ACCOUNT} recurring grants (cancelled ones count)`,
      });
    }
    const typeRefusal = core.grantTypeRefusal(ctx, input.type);
    if (typeRefusal) return typeRefusal;
    const nowMs = core.now();
    const spec: RecurringSpec = { ...input, startsAtMs: input.startsAtMs ?? nowMs };
    if (spec.endsAtMs !== null && spec.endsAtMs <= spec.startsAtMs) {
      return refuse({ code: "invalid_request", detail: "ends_at must be after starts_at" });
    }
    // A back-dated schedule issues its missed periods at once: bounded, so one request cannot mint years of lots.
    if (spec.startsAtMs <= nowMs && periodIndexAt(spec.startsAtMs, spec.interval, nowMs) >= RECURRING_MAX_BACKFILL) {
      return refuse({
        code: "invalid_request",
        detail: `starts_at: at most ${RECURRING_MAX_BACKFILL} periods may have begun already`,
      });
    }
    // The ids its periods will take must be free (a lot made before would be skipped, or written off).
    for (const grantId of core.lots.keys()) {
      if (grantId.startsWith(`${id}.`) && RESERVED.exec(grantId)?.[1] === id) {
        return refuse({
          code: "idempotency_conflict",
          detail: `lot ${grantId} already has an id this schedule's periods would take`,
        });
      }
    }
    const s: Schedule = {
      spec,
      cursor: { nextIssue: 0, nextSettle: 0 },
      status: "active",
      bodyHash,
      createdAtMs: nowMs,
      cancelledAtMs: null,
    };
    const body = scheduleView(ctx.accountId, s);
    this.transact(() => {
      core.sql.exec(
        `INSERT INTO recurring_grants (recurring_id, spec, body_hash, response, status, next_issue, next_settle,
         created_at_ms, cancelled_at_ms) VALUES (?, ?, ?, ?, 'active', 0, 0, ?, NULL)`,
        id,
        JSON.stringify(spec),
        bodyHash,
        JSON.stringify(body),
        nowMs,
      );
    });
    this.schedules.set(id, s);
    this.refreshDue();
    log({ event: "recurring.created", request_id: ctx.requestId, account_id: ctx.accountId, recurring_id: id });
    // A first period already started (starts_at now or in the past) is issued before the answer;
    // otherwise the alarm is armed for the first period's start.
    this.catchUp(ctx, nowMs);
    if (this.nextDueMs !== null) this.wake(this.nextDueMs);
    return answer(body, 201);
  }

  /** Every schedule, in creation order (at most RECURRING_MAX_PER_ACCOUNT). */
  list(ctx: OpContext): Outcome {
    if (this.core.account === null) return missingAccount(ctx.accountId);
    this.catchUp(ctx, this.core.now());
    return answer({ recurring_grants: [...this.schedules.values()].map((s) => scheduleView(ctx.accountId, s)) });
  }

  /**
   * Stops new periods; issued lots stay, and the end of each one issued is
   * still settled (rollover, breakage). What fell due before the cancel is
   * issued first. Cancelling again answers the same, marked replayed.
   */
  cancel(ctx: OpContext, recurringId: string): Outcome {
    if (this.core.account === null) return missingAccount(ctx.accountId);
    const s = this.schedules.get(recurringId);
    if (!s) return refuse({ code: "not_found", detail: `recurring grant ${recurringId} does not exist` });
    if (s.status === "cancelled") return answer(scheduleView(ctx.accountId, s), 200, true);
    const nowMs = this.core.now();
    this.catchUp(ctx, nowMs);
    this.transact(() => {
      this.core.sql.exec(
        "UPDATE recurring_grants SET status = 'cancelled', cancelled_at_ms = ? WHERE recurring_id = ?",
        nowMs,
        recurringId,
      );
    });
    s.status = "cancelled";
    s.cancelledAtMs = nowMs;
    this.refreshDue();
    log({
      event: "recurring.cancelled",
      request_id: ctx.requestId,
      account_id: ctx.accountId,
      recurring_id: recurringId,
    });
    return answer(scheduleView(ctx.accountId, s), 200);
  }

  /**
   * Whether `grantId` is one this account's schedules issue themselves
   * (`<recurring_id>.<n>` or `<recurring_id>.<n>.rollover`): no other grant
   * may take it, or a period would be skipped and its settlement would write
   * off someone else's lot.
   */
  reserves(grantId: string): boolean {
    const m = RESERVED.exec(grantId);
    return m !== null && this.schedules.has(m[1] ?? "");
  }

  /**
   * Whether `lot` is a period's lot whose end this desk has still to settle:
   * the generic expiry pass leaves it, so a catch-up cut short by
   * RECURRING_CATCHUP_MAX never lets its rollover be written off as breakage.
   */
  settlesLater(lot: Lot): boolean {
    const s = this.ownerOf(lot);
    if (s === null || lot.metadata?.rollover === "true" || s.spec.expires !== "end_of_period") return false;
    return Number(lot.metadata?.period) - 1 >= s.cursor.nextSettle;
  }

  /** The schedule that issued `lot` (by its metadata and id), null for any other lot. */
  private ownerOf(lot: Lot): Schedule | null {
    const id = lot.metadata?.recurring_id;
    const period = Number(lot.metadata?.period);
    if (id === undefined || !Number.isSafeInteger(period) || period < 1) return null;
    const s = this.schedules.get(id);
    if (!s) return null;
    const own = lot.metadata?.rollover === "true" ? rolloverGrantId(id, period - 1) : periodGrantId(id, period - 1);
    return own === lot.grantId ? s : null;
  }

  /** When the next step of any schedule falls due (DO clock), null: none will. */
  dueAt(): number | null {
    return this.nextDueMs;
  }

  /**
   * Takes every step due at `nowMs`, oldest first, at most
   * RECURRING_CATCHUP_MAX of them; returns how many it took. Cheap when
   * nothing is due. Makes the alarm fire at the next step still to come.
   */
  catchUp(ctx: OpContext, nowMs: number): number {
    if (this.nextDueMs === null || this.nextDueMs > nowMs) return 0;
    const sys: OpContext = { ...ctx, actor: "system:recurring" };
    let steps = 0;
    while (steps < RECURRING_CATCHUP_MAX) {
      const due = this.earliest(nowMs);
      if (due === null) break;
      this.take(sys, due.schedule, due.step, nowMs);
      steps++;
    }
    this.refreshDue();
    if (this.nextDueMs !== null) this.wake(this.nextDueMs);
    return steps;
  }

  private earliest(nowMs: number): { schedule: Schedule; step: RecurringStep } | null {
    let best: { schedule: Schedule; step: RecurringStep } | null = null;
    for (const schedule of this.schedules.values()) {
      const step = nextStep(schedule.spec, schedule.cursor, schedule.status === "active");
      if (step === null || step.atMs > nowMs) continue;
      if (best === null || step.atMs < best.step.atMs) best = { schedule, step };
    }
    return best;
  }

  /** One step in one transaction: its entries (if any) and the advanced cursor. */
  private take(ctx: OpContext, s: Schedule, step: RecurringStep, nowMs: number): void {
    const core = this.core;
    const id = s.spec.recurringId;
    const cursor: RecurringCursor =
      step.kind === "issue" ? { ...s.cursor, nextIssue: step.index + 1 } : { ...s.cursor, nextSettle: step.index + 1 };
    const write = () =>
      core.sql.exec(
        "UPDATE recurring_grants SET next_issue = ?, next_settle = ? WHERE recurring_id = ?",
        cursor.nextIssue,
        cursor.nextSettle,
        id,
      );
    const applied = () => {
      s.cursor = cursor;
    };
    let plan: { lots: Lot[]; entries: EntryDraft[] } | null;
    const periodId = periodGrantId(id, step.index);
    const existing = core.lots.get(periodId);
    // A lot with the period's id that this schedule did not issue (one made before
    // the id was reserved) is never treated as the period's.
    const own = existing !== undefined && this.ownerOf(existing) === s ? existing : undefined;
    if (step.kind === "issue") {
      // The lot id is the period: a lot already there was issued (never twice).
      plan = existing ? null : planIssue(s.spec, step.index, core.lots.openLots(), core.lots.size + 1, nowMs);
      if (plan === null && own === undefined) {
        log({
          event: "recurring.skipped",
          account_id: ctx.accountId,
          recurring_id: id,
          period: step.index + 1,
          detail: existing
            ? `lot ${periodId} exists and was not issued by this schedule`
            : "the account's total in this unit would pass 9*10^15",
        });
      }
    } else {
      plan = planSettle(
        s.spec,
        step.index,
        own,
        core.lots.has(rolloverGrantId(id, step.index)),
        core.lots.size + 1,
        nowMs,
      );
    }
    if (plan === null || plan.entries.length === 0) {
      this.transact(write);
      applied();
      return;
    }
    core.commit({ ctx, lots: plan.lots, entries: plan.entries, write, applied }, nowMs, () => null);
    log({
      event: "recurring.step",
      account_id: ctx.accountId,
      recurring_id: id,
      step: step.kind,
      period: step.index + 1,
      period_start: iso(periodStartMs(s.spec.startsAtMs, s.spec.interval, step.index)),
    });
  }

  private refreshDue(): void {
    let next: number | null = null;
    for (const s of this.schedules.values()) {
      const step = nextStep(s.spec, s.cursor, s.status === "active");
      if (step !== null && (next === null || step.atMs < next)) next = step.atMs;
    }
    this.nextDueMs = next;
  }
}
