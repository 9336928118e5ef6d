/**
 * A child account's department budget, and the draws that cover a debit,
 * hold or receipt its own lots cannot. The child coordinates each draw:
 *
 *   1. it records the draw (pending) and counts it against the period's
 *      budget, in one transaction, before asking anyone;
 *   2. the parent gives the credits (`transfer.out`), idempotent by draw id
 *      (transfers.ts giveDraw), or refuses and remembers the refusal;
 *   3. the child turns the slices into lots (`transfer.in`) and marks the
 *      draw completed, or cancels it and gives the budget back.
 *
 * A draw interrupted between 1 and 3 stays pending and the child's alarm
 * asks the parent again with the same id (recoverDraws). Only accounts with
 * a budget ever get here: the plain debit path stays synchronous.
 */
import type { Problem } from "../errors";
import { type Budget, budgetRemaining, periodStart, planDrawAmount } from "../ledger/budget";
import { BUDGET_DRAW_SOURCE, planTransferIn, planTransferOut, type TransferSlice } from "../ledger/transfer";
import { log } from "../log";
import type { AccountCore } from "./core";
import { readMeta, writeMeta } from "./storage";
import { type InboundAnswer, insertOut, type OutRecord, readOut, type TransferPeer } from "./transfer-records";
import {
  cancelledProblem,
  commitTransferEntries,
  TRANSFER_RECOVER_AFTER_MS,
  TRANSFER_RECOVER_BATCH,
} from "./transfers";
import type { OpContext, Outcome } from "./types";
import { answer, fromLedgerError, missingAccount, refuse } from "./views";

/** Draws one operation may make: a concurrent debit can spend a draw before its own retry. */
export const MAX_DRAW_ROUNDS = 3;

const BUDGET_META = "budget";

type DrawState = "pending" | "completed" | "cancelled";

interface DrawRecord {
  transferId: string;
  parentId: string;
  unit: string;
  amount: number;
  state: DrawState;
  periodStartMs: number;
}

export class BudgetDesk {
  private budget: Budget | null;
  /** Test seam (runInDurableObject only): a throw after the parent gave, before the child applies. */
  readonly faults: { afterGive?: () => void } = {};

  constructor(
    private readonly core: AccountCore,
    private readonly transact: (write: () => void) => void,
    private readonly peer: (accountId: string) => TransferPeer,
    private readonly wake: (atMs: number) => void,
  ) {
    this.budget = readMeta<Budget>(core.sql, BUDGET_META);
  }

  private get sql(): SqlStorage {
    return this.core.sql;
  }

  /** True when `out` is a shortfall this account's budget may cover by drawing from its parent. */
  covers(out: Outcome, unit: string): boolean {
    return (
      !out.ok &&
      out.problem.code === "insufficient_credits" &&
      this.budget !== null &&
      this.budget.unit === unit &&
      (this.core.account?.parent_id ?? null) !== null
    );
  }

  // ── the budget ──────────────────────────────────────────────────────────

  put(accountId: string, budget: Budget): Outcome {
    const account = this.core.account;
    if (account === null) return missingAccount(accountId);
    // A budget on an account without a parent is kept but draws nothing until the account has one.
    this.transact(() => writeMeta(this.sql, BUDGET_META, budget));
    this.budget = budget;
    log({ event: "budget.put", account_id: accountId, ...budget });
    return answer(this.view(budget));
  }

  get(accountId: string): Outcome {
    if (this.core.account === null) return missingAccount(accountId);
    if (this.budget === null) return refuse({ code: "not_found", detail: `account ${accountId} has no budget` });
    return answer(this.view(this.budget));
  }

  remove(accountId: string): Outcome {
    if (this.core.account === null) return missingAccount(accountId);
    const was = this.budget;
    if (was === null) return refuse({ code: "not_found", detail: `account ${accountId} has no budget` });
    this.transact(() => this.sql.exec("DELETE FROM meta WHERE key = ?", BUDGET_META));
    this.budget = null;
    log({ event: "budget.deleted", account_id: accountId });
    return answer({ ...this.view(was), deleted: true });
  }

  private view(b: Budget) {
    const startMs = periodStart(b.period, this.core.now());
    const used = this.used(b.unit, startMs);
    return {
      unit: b.unit,
      period: b.period,
      limit: b.limit,
      used,
      remaining: budgetRemaining(b, used),
      period_start: new Date(startMs).toISOString(),
    };
  }

  private used(unit: string, startMs: number): number {
    const row = this.sql
      .exec("SELECT used FROM budget_usage WHERE unit = ? AND period_start_ms = ?", unit, startMs)
      .toArray()[0];
    return row ? Number(row.used) : 0;
  }

  private addUsed(unit: string, startMs: number, delta: number): void {
    this.sql.exec(
      `INSERT INTO budget_usage (unit, period_start_ms, used) VALUES (?, ?, ?)
       ON CONFLICT (unit, period_start_ms) DO UPDATE SET used = used + excluded.used`,
      unit,
      startMs,
      delta,
    );
  }

  // ── draws ───────────────────────────────────────────────────────────────

  /**
   * Covers a shortfall of `requested` by drawing from the parent, then runs
   * the operation again (`retry`, synchronous). At most MAX_DRAW_ROUNDS draws.
   * Short of budget or of the parent's credits: 402 with `available` = own +
   * what could be drawn.
   */
  async cover(ctx: OpContext, unit: string, requested: number, first: Outcome, retry: () => Outcome): Promise<Outcome> {
    let out = first;
    for (let round = 0; round < MAX_DRAW_ROUNDS && this.covers(out, unit); round++) {
      const budget = this.budget;
      const parentId = this.core.account?.parent_id ?? null;
      if (budget === null || parentId === null) return out;
      const nowMs = this.core.now();
      const own = this.core.lots.available(unit, nowMs);
      const startMs = periodStart(budget.period, nowMs);
      const remaining = budgetRemaining(budget, this.used(unit, startMs));
      const plan = planDrawAmount(requested - own, remaining, null);
      if (!("draw" in plan)) return this.short(ctx, parentId, unit, own, remaining, requested);
      const draw: DrawRecord = {
        transferId: `draw_${crypto.randomUUID()}`,
        parentId,
        unit,
        amount: plan.draw,
        state: "pending",
        periodStartMs: startMs,
      };
      this.transact(() => {
        this.sql.exec(
          `INSERT INTO budget_draws (transfer_id, parent_id, unit, amount, state, period_start_ms, created_at_ms, updated_at_ms)
           VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)`,
          draw.transferId,
          parentId,
          unit,
          draw.amount,
          startMs,
          nowMs,
          nowMs,
        );
        this.addUsed(unit, startMs, draw.amount);
      });
      this.wake(nowMs + TRANSFER_RECOVER_AFTER_MS);
      let reply: InboundAnswer;
      try {
        reply = await this.peer(parentId).giveDraw(this.parentCtx(ctx, parentId), {
          transferId: draw.transferId,
          to: ctx.accountId,
          unit,
          amount: draw.amount,
        });
      } catch (e) {
        log({ event: "budget.draw_failed", account_id: ctx.accountId, transfer_id: draw.transferId, error: String(e) });
        return refuse({ code: "overloaded", detail: "the parent account cannot be reached right now; retry" });
      }
      this.faults.afterGive?.();
      const finished = this.finish(ctx, draw.transferId, reply);
      if (finished === "refused" && reply.state === "refused") {
        const parentAvailable = reply.problem.extra?.available;
        const drawable = typeof parentAvailable === "number" ? Math.min(remaining, parentAvailable) : 0;
        return insufficient(own + drawable, requested);
      }
      if (finished === "pending")
        return refuse({ code: "overloaded", detail: "the parent cannot decide right now; retry" });
      out = retry();
    }
    return out;
  }

  private parentCtx(ctx: OpContext, parentId: string): OpContext {
    return { ...ctx, accountId: parentId };
  }

  /** 402 with what could be had: own credits plus min(budget remaining, parent's available). */
  private async short(
    ctx: OpContext,
    parentId: string,
    unit: string,
    own: number,
    remaining: number,
    requested: number,
  ): Promise<Outcome> {
    let parentAvailable = 0;
    try {
      const b = await this.peer(parentId).balance(this.parentCtx(ctx, parentId), unit, null);
      if (b.ok && typeof b.body === "object" && b.body !== null && !Array.isArray(b.body)) {
        const available = b.body.available;
        if (typeof available === "number") parentAvailable = available;
      }
    } catch {
      // The parent's figure only refines the refusal; without it the budget alone is reported.
      parentAvailable = remaining;
    }
    return insufficient(own + Math.min(remaining, parentAvailable), requested);
  }

  /** Applies the parent's answer to a pending draw; the same answer twice changes nothing. */
  private finish(ctx: OpContext, transferId: string, reply: InboundAnswer): "applied" | "refused" | "pending" {
    const draw = readDraw(this.sql, transferId);
    if (draw === null || draw.state !== "pending") {
      return draw?.state === "completed" ? "applied" : draw === null ? "pending" : "refused";
    }
    const nowMs = this.core.now();
    if (reply.state === "unavailable") return "pending";
    if (reply.state === "refused") {
      this.transact(() => {
        setDrawState(this.sql, transferId, "cancelled", nowMs);
        this.addUsed(draw.unit, draw.periodStartMs, -draw.amount);
      });
      return "refused";
    }
    const slices: TransferSlice[] = reply.slices ?? [];
    const core = this.core;
    const reason = `budget draw from ${draw.parentId}`;
    const planned = planTransferIn(
      core.lots,
      { ref: transferId, reason, slices, source: BUDGET_DRAW_SOURCE },
      core.lots.size + 1,
      nowMs,
    );
    // The parent already gave: a child that cannot hold the credits is a broken invariant, not a refusal.
    if (!planned.ok) throw new Error(`draw ${transferId} cannot be applied: ${planned.error.code}`);
    this.transact(() => {
      setDrawState(this.sql, transferId, "completed", nowMs);
      const facts = { op: "budget.draw", transfer_id: transferId, from_account: draw.parentId, amount: draw.amount };
      commitTransferEntries(core, ctx, planned.value, nowMs, facts);
    });
    return "applied";
  }

  /** The alarm's step: pending draws older than TRANSFER_RECOVER_AFTER_MS ask the parent again. */
  async recover(ctx: OpContext): Promise<number | null> {
    const cutoff = this.core.now() - TRANSFER_RECOVER_AFTER_MS;
    const due = this.sql
      .exec(
        `SELECT * FROM budget_draws WHERE state = 'pending' AND updated_at_ms <= ? ORDER BY updated_at_ms LIMIT ?`,
        cutoff,
        TRANSFER_RECOVER_BATCH,
      )
      .toArray()
      .map(drawFromRow);
    for (const d of due) {
      const sweep = { ...ctx, requestId: `recover:${d.transferId}` };
      const reply = await this.peer(d.parentId).giveDraw(this.parentCtx(sweep, d.parentId), {
        transferId: d.transferId,
        to: ctx.accountId,
        unit: d.unit,
        amount: d.amount,
      });
      this.finish(sweep, d.transferId, reply);
    }
    const row = this.sql.exec("SELECT MIN(updated_at_ms) AS at FROM budget_draws WHERE state = 'pending'").toArray()[0];
    return row?.at === null || row?.at === undefined ? null : Number(row.at) + TRANSFER_RECOVER_AFTER_MS;
  }

  // ── the parent's side of a draw ───────────────────────────────────────

  /** A child's draw: the credits leave this account's lots at once; asked again, the same answer. */
  giveDraw(ctx: OpContext, req: { transferId: string; to: string; unit: string; amount: number }): InboundAnswer {
    const core = this.core;
    const known = readOut(this.sql, req.transferId);
    if (known) {
      if (known.kind !== "draw" || known.to !== req.to || known.amount !== req.amount) {
        return { state: "refused", problem: { code: "idempotency_conflict", detail: `id ${req.transferId} is taken` } };
      }
      if (known.state === "completed") return { state: "applied", slices: known.slices };
      return { state: "refused", problem: known.problem ?? cancelledProblem(req.transferId) };
    }
    if (core.account === null) {
      return { state: "refused", problem: { code: "account_not_found", detail: "the parent account does not exist" } };
    }
    const policy = core.policy(ctx);
    if (policy === null || core.sweepDue(ctx) === null) return { state: "unavailable" };
    const nowMs = core.now();
    const reason = `budget draw by ${req.to}`;
    const planned = planTransferOut(
      core.lots,
      { ref: req.transferId, unit: req.unit, amount: req.amount, reason },
      policy,
      nowMs,
    );
    const record: OutRecord = {
      transferId: req.transferId,
      kind: "draw",
      to: req.to,
      unit: req.unit,
      amount: req.amount,
      bodyHash: "",
      state: planned.ok ? "completed" : "refused",
      slices: planned.ok ? planned.value.slices : [],
      reason,
      actor: ctx.actor,
      response: null,
      problem: planned.ok ? null : fromLedgerError(planned.error),
      createdAtMs: nowMs,
      updatedAtMs: nowMs,
    };
    this.transact(() => {
      insertOut(this.sql, record);
      if (planned.ok) {
        const facts = { op: "budget.give", transfer_id: req.transferId, to_account: req.to, amount: req.amount };
        commitTransferEntries(core, ctx, planned.value, nowMs, facts);
      }
    });
    if (!planned.ok) return { state: "refused", problem: record.problem ?? cancelledProblem(req.transferId) };
    return { state: "applied", slices: record.slices };
  }
}

function insufficient(available: number, requested: number): Outcome {
  const problem: Problem = {
    code: "insufficient_credits",
    detail: `available ${available} (own credits and what the budget may draw) is less than requested ${requested}`,
    extra: { available, requested },
  };
  return refuse(problem);
}

function drawFromRow(r: Record<string, SqlStorageValue>): DrawRecord {
  return {
    transferId: String(r.transfer_id),
    parentId: String(r.parent_id),
    unit: String(r.unit),
    amount: Number(r.amount),
    state: String(r.state) as DrawState,
    periodStartMs: Number(r.period_start_ms),
  };
}

function readDraw(sql: SqlStorage, transferId: string): DrawRecord | null {
  const row = sql.exec("SELECT * FROM budget_draws WHERE transfer_id = ?", transferId).toArray()[0];
  return row ? drawFromRow(row) : null;
}

function setDrawState(sql: SqlStorage, transferId: string, state: DrawState, nowMs: number): void {
  sql.exec("UPDATE budget_draws SET state = ?, updated_at_ms = ? WHERE transfer_id = ?", state, nowMs, transferId);
}
