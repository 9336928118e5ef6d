/**
 * An account's side of transfers between accounts. The source account's
 * Durable Object coordinates a transfer in three steps:
 *
 *   prepare (source): the credits leave its lots (`transfer.out` entries,
 *     cost fixed by the cumulative rule) into a durable transfer record,
 *     state `preparing`: nobody else can spend them any more.
 *   apply (destination): idempotent by transfer id, the slices become lots
 *     (`transfer.in`), recorded as applied in the same transaction.
 *   commit (source): `applied`, then `completed` with the response kept.
 *
 * A transfer interrupted between steps is finished or undone by the source's
 * alarm (recoverTransfers): it asks the destination to settle the transfer,
 * and the destination answers "applied" or records a refusal in the same
 * synchronous step, so an apply that arrives later is refused too. Undone,
 * the credits come back to the source as new lots with the terms of the ones
 * they left (`transfer.in`, source_grant_id = the lot they left).
 *
 * A parent's side of a budget draw (BudgetDesk.giveDraw, budget.ts) is the
 * prepare step alone, idempotent by draw id: the child coordinates draws.
 */
import type { Problem } from "../errors";
import type { EntryDraft, Lot } from "../ledger";
import { planTransferIn, planTransferOut } from "../ledger/transfer";
import { log } from "../log";
import { type AccountCore, POLICY_UNKNOWN } from "./core";
import {
  completedBody,
  type InboundAnswer,
  type InboundRequest,
  insertIn,
  insertOut,
  type OutRecord,
  type OutState,
  readIn,
  readOut,
  type SendCommand,
  setOutState,
  type TransferFaults,
  type TransferPeer,
  transferView,
} from "./transfer-records";
import type { Json, OpContext, Outcome } from "./types";
import { answer, fromLedgerError, missingAccount, refuse } from "./views";

/** A transfer still open this long after its last step is recovered by the alarm. */
export const TRANSFER_RECOVER_AFTER_MS = 30_000;
/** Open transfers recovered per alarm run; more wait for the next run. */
export const TRANSFER_RECOVER_BATCH = 50;

/**
 * Commits a transfer's entries inside the caller's transaction and logs the
 * ledger write (the gateway logs only the request; this says what each
 * account wrote, with its chain head).
 */
export function commitTransferEntries(
  core: AccountCore,
  ctx: OpContext,
  plan: { lots: Lot[]; entries: EntryDraft[] },
  nowMs: number,
  facts: Record<string, string | number>,
): void {
  const out = core.commit({ ctx, lots: plan.lots, entries: plan.entries }, nowMs, () => null);
  log({
    event: "ledger.write",
    request_id: ctx.requestId,
    account_id: ctx.accountId,
    actor: ctx.actor,
    ...(out.ok ? out.write : {}),
    ...facts,
  });
}

export const cancelledProblem = (id: string): Problem => ({
  code: "idempotency_conflict",
  detail: `transfer ${id} was cancelled and moved nothing; send the transfer again with a new transfer_id`,
});

export class TransferDesk {
  readonly faults: TransferFaults = {};

  constructor(
    private readonly core: AccountCore,
    private readonly transact: (write: () => void) => void,
    private readonly peer: (accountId: string) => TransferPeer,
    /** Asks for an alarm at this time (the account's clock). */
    private readonly wake: (atMs: number) => void,
  ) {}

  private get sql(): SqlStorage {
    return this.core.sql;
  }

  // ── source ──────────────────────────────────────────────────────────────

  /** Runs a transfer from this account, or resumes the one already recorded under its id. */
  async send(ctx: OpContext, cmd: SendCommand): Promise<Outcome> {
    const known = readOut(this.sql, cmd.transferId);
    if (known) {
      if (known.kind !== "transfer" || known.bodyHash !== cmd.bodyHash || known.to !== cmd.to) {
        return refuse({
          code: "idempotency_conflict",
          detail: `transfer ${cmd.transferId} was first sent with a different body`,
        });
      }
      return this.drive(ctx, known, known.state === "completed");
    }
    const prepared = this.prepare(ctx, cmd);
    if (!("transferId" in prepared)) return prepared;
    return this.drive(ctx, prepared, false);
  }

  /** Step 1: the credits leave this account's lots into the transfer record, in one transaction. */
  private prepare(ctx: OpContext, cmd: SendCommand): Outcome | OutRecord {
    const core = this.core;
    if (core.account === null) return missingAccount(ctx.accountId);
    const policy = core.policy(ctx);
    if (policy === null || core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
    const nowMs = core.now();
    const planned = planTransferOut(core.lots, { ref: cmd.transferId, ...cmd }, policy, nowMs);
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    const record: OutRecord = {
      ...cmd,
      kind: "transfer",
      state: "preparing",
      slices: planned.value.slices,
      actor: ctx.actor,
      response: null,
      problem: null,
      createdAtMs: nowMs,
      updatedAtMs: nowMs,
    };
    this.transact(() => {
      insertOut(this.sql, record);
      commitTransferEntries(core, ctx, planned.value, nowMs, {
        op: "transfer.prepare",
        transfer_id: cmd.transferId,
        to_account: cmd.to,
        amount: cmd.amount,
        unit: cmd.unit,
      });
    });
    this.wake(nowMs + TRANSFER_RECOVER_AFTER_MS);
    return record;
  }

  /** Steps 2 and 3 from wherever the record stands; every step is idempotent. */
  private async drive(ctx: OpContext, first: OutRecord, replayed: boolean): Promise<Outcome> {
    let rec = first;
    if (rec.state === "preparing") {
      this.faults.beforeApply?.();
      let reply: InboundAnswer;
      try {
        reply = await this.peer(rec.to).applyTransfer(this.inbound(ctx, rec));
      } catch (e) {
        log({
          event: "transfer.apply_failed",
          request_id: ctx.requestId,
          account_id: ctx.accountId,
          transfer_id: rec.transferId,
          error: e instanceof Error ? e.message : String(e),
        });
        return refuse({
          code: "overloaded",
          detail: `transfer ${rec.transferId} is in progress; retry with the same transfer_id to learn its outcome`,
        });
      }
      rec = this.settle(ctx, rec.transferId, reply);
      if (rec.state === "preparing") {
        return refuse({
          code: "overloaded",
          detail: `transfer ${rec.transferId} is in progress; retry with the same transfer_id`,
        });
      }
      if (rec.state === "cancelled") {
        return refuse(reply.state === "refused" ? reply.problem : cancelledProblem(rec.transferId));
      }
    }
    if (rec.state === "applied") rec = this.complete(ctx, rec);
    if (rec.state === "completed" && rec.response !== null) return answer(rec.response, 201, replayed);
    return refuse(cancelledProblem(rec.transferId));
  }

  private inbound(ctx: OpContext, rec: OutRecord): InboundRequest {
    return {
      transferId: rec.transferId,
      from: ctx.accountId,
      unit: rec.unit,
      amount: rec.amount,
      reason: rec.reason,
      slices: rec.slices,
      actor: rec.actor,
      requestId: ctx.requestId,
    };
  }

  /** What the destination said, applied to the record as it is now (another caller may have moved it on). */
  private settle(ctx: OpContext, id: string, reply: InboundAnswer): OutRecord {
    const rec = readOut(this.sql, id);
    if (rec === null) throw new Error(`transfer ${id} vanished from its source`);
    if (rec.state !== "preparing") return rec;
    if (reply.state === "applied") {
      this.faults.afterApply?.();
      const nowMs = this.core.now();
      this.transact(() => setOutState(this.sql, id, "applied", null, nowMs));
      return { ...rec, state: "applied", updatedAtMs: nowMs };
    }
    if (reply.state === "refused") return this.cancel(ctx, rec);
    return rec;
  }

  /** Step 3: the transfer is done; its first answer is kept with it. */
  private complete(ctx: OpContext, rec: OutRecord): OutRecord {
    const nowMs = this.core.now();
    const response = completedBody(ctx.accountId, rec) as unknown as Json;
    this.transact(() => {
      setOutState(this.sql, rec.transferId, "completed", response, nowMs);
      this.faults.duringCommit?.();
    });
    log({
      event: "transfer.completed",
      request_id: ctx.requestId,
      account_id: ctx.accountId,
      transfer_id: rec.transferId,
    });
    return { ...rec, state: "completed", response, updatedAtMs: nowMs };
  }

  /** Undo: the destination refused; the credits come back as lots with the terms they left. */
  private cancel(ctx: OpContext, rec: OutRecord): OutRecord {
    const core = this.core;
    const nowMs = core.now();
    const plan = (tag: string) =>
      planTransferIn(
        core.lots,
        { ref: rec.transferId, reason: rec.reason, slices: rec.slices, tag },
        core.lots.size + 1,
        nowMs,
      );
    // The credits left this account a moment ago: they always fit back (the total only went down). Only
    // their lot ids can clash, with grants a client named `<transfer_id>.r<n>`: then a fresh tag, never a throw.
    let back = plan("r");
    if (!back.ok) back = plan(`r${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}-`);
    if (!back.ok) throw new Error(`transfer ${rec.transferId} cannot return its credits: ${back.error.code}`);
    this.transact(() => {
      setOutState(this.sql, rec.transferId, "cancelled", null, nowMs);
      commitTransferEntries(core, ctx, back.value, nowMs, { op: "transfer.cancel", transfer_id: rec.transferId });
    });
    return { ...rec, state: "cancelled", updatedAtMs: nowMs };
  }

  /** GET /v1/transfers/{id}: the record as the source holds it. */
  view(transferId: string): Outcome {
    const rec = readOut(this.sql, transferId);
    if (rec === null || rec.kind !== "transfer") {
      return refuse({ code: "transfer_not_found", detail: `transfer ${transferId} does not exist` });
    }
    return answer(transferView(this.core.account?.account_id ?? "", rec));
  }

  /**
   * The alarm's step: every transfer left open past TRANSFER_RECOVER_AFTER_MS
   * is settled with its destination, then completed or cancelled. Returns
   * when the alarm should run next for transfers (null: none open).
   */
  async recover(ctx: OpContext): Promise<number | null> {
    const cutoff = this.core.now() - TRANSFER_RECOVER_AFTER_MS;
    const due = this.sql
      .exec(
        `SELECT transfer_id FROM transfers_out WHERE state IN ('preparing', 'applied') AND kind = 'transfer'
         AND updated_at_ms <= ? ORDER BY updated_at_ms LIMIT ?`,
        cutoff,
        TRANSFER_RECOVER_BATCH,
      )
      .toArray()
      .map((r) => String(r.transfer_id));
    // One transfer's failure never holds up the others (nor the budget draws recovered after them).
    for (const id of due) {
      try {
        await this.recoverOne(ctx, id);
      } catch (e) {
        log({
          event: "transfer.recover_error",
          account_id: ctx.accountId,
          transfer_id: id,
          error: e instanceof Error ? e.message : String(e),
        });
      }
    }
    return this.nextRecoveryMs();
  }

  /**
   * Settles one open transfer with its destination, then completes or
   * cancels it. Returns where it stands: "none" when this account never
   * prepared it (a claim refused before anything moved).
   */
  async recoverOne(ctx: OpContext, id: string): Promise<OutState | "none"> {
    let rec = readOut(this.sql, id);
    if (rec === null || rec.kind !== "transfer") return "none";
    const sweep = { ...ctx, requestId: `recover:${id}` };
    if (rec.state === "preparing") {
      const reply = await this.peer(rec.to).settleInbound(id, ctx.accountId);
      rec = this.settle(sweep, id, reply);
    }
    if (rec.state === "applied") rec = this.complete(sweep, rec);
    return rec.state;
  }

  nextRecoveryMs(): number | null {
    const row = this.sql
      .exec(
        `SELECT MIN(updated_at_ms) AS at FROM transfers_out WHERE state IN ('preparing', 'applied') AND kind = 'transfer'`,
      )
      .toArray()[0];
    return row?.at === null || row?.at === undefined ? null : Number(row.at) + TRANSFER_RECOVER_AFTER_MS;
  }

  // ── destination ─────────────────────────────────────────────────────────

  /** Step 2: the slices become this account's lots, once per transfer id. */
  applyInbound(req: InboundRequest): InboundAnswer {
    const core = this.core;
    const known = readIn(this.sql, req.transferId);
    if (known) return known;
    const nowMs = core.now();
    const accountId = core.account?.account_id ?? null;
    if (accountId === null) {
      return this.refuseInbound(req, { code: "account_not_found", detail: "the destination account does not exist" });
    }
    const cmd = { ref: req.transferId, reason: req.reason, slices: req.slices };
    const planned = planTransferIn(core.lots, cmd, core.lots.size + 1, nowMs);
    if (!planned.ok) return this.refuseInbound(req, fromLedgerError(planned.error));
    const ctx: OpContext = { accountId, actor: req.actor, requestId: req.requestId, globalPolicy: null };
    this.transact(() => {
      insertIn(this.sql, req, { state: "applied" }, nowMs);
      commitTransferEntries(core, ctx, planned.value, nowMs, {
        op: "transfer.apply",
        transfer_id: req.transferId,
        from_account: req.from,
      });
    });
    return { state: "applied" };
  }

  private refuseInbound(req: InboundRequest, problem: Problem): InboundAnswer {
    const refused: InboundAnswer = { state: "refused", problem };
    const nowMs = this.core.now();
    this.transact(() => insertIn(this.sql, req, refused, nowMs));
    return refused;
  }

  /**
   * Recovery asks: did you apply it? Not yet applied, the answer is a refusal
   * recorded in the same synchronous step, so a late apply is refused too.
   */
  settleInbound(transferId: string, from: string): InboundAnswer {
    const known = readIn(this.sql, transferId);
    if (known) return known;
    const refused: InboundAnswer = {
      state: "refused",
      // Final, not "retry later": the source cancels on this answer, so a retry racing it must hear the same.
      problem: {
        code: "idempotency_conflict",
        detail: `transfer ${transferId} did not reach its destination in time and was cancelled; it moved nothing; send it again with a new transfer_id`,
      },
    };
    const nowMs = this.core.now();
    this.transact(() => insertIn(this.sql, { transferId, from, unit: "", amount: 0 }, refused, nowMs));
    return refused;
  }
}
