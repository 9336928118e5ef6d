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
 * A parent's side of a budget draw (giveDraw) is the prepare step alone,
 * idempotent by draw id: the child coordinates draws (budget.ts).
 */
import type { Problem } from "../errors";
import { appliedView, type EntryDraft, iso, type Lot, WRITE_APPLIED_MAX } from "../ledger";
import { planTransferIn, planTransferOut, type TransferSlice } from "../ledger/transfer";
import { log } from "../log";
import { type AccountCore, POLICY_UNKNOWN } from "./core";
import type { Json, OpContext, Outcome } from "./types";
import { answer, fromLedgerError, missingAccount, refuse } from "./views";

/** A transfer still open this long after its last step is recovered by the alarm. */
export const TRANSFER_RECOVER_AFTER_MS = 30_000;
/** Open transfers recovered per alarm run; more wait for the next run. */
export const TRANSFER_RECOVER_BATCH = 50;

export type OutState = "preparing" | "applied" | "completed" | "cancelled" | "refused";

/** A transfer this account sends (kind transfer) or a draw it gave a child (kind draw). */
export interface OutRecord {
  transferId: string;
  kind: "transfer" | "draw";
  to: string;
  unit: string;
  amount: number;
  bodyHash: string;
  state: OutState;
  slices: TransferSlice[];
  reason: string | null;
  actor: string;
  response: Json | null;
  /** Why a draw was refused (kind draw, state refused). */
  problem: Problem | null;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface SendCommand {
  transferId: string;
  to: string;
  unit: string;
  amount: number;
  reason: string | null;
  bodyHash: string;
}

/** What the receiving side says about a transfer or draw. */
export type InboundAnswer =
  | { state: "applied"; slices?: TransferSlice[] }
  | { state: "refused"; problem: Problem }
  /** The parent cannot decide now (its global policy unknown): ask again later. */
  | { state: "unavailable" };

export interface InboundRequest {
  transferId: string;
  from: string;
  unit: string;
  amount: number;
  reason: string | null;
  slices: TransferSlice[];
  actor: string;
  requestId: string;
}

/** The RPC methods one account calls on another for transfers and draws. */
export interface TransferPeer {
  applyTransfer(req: InboundRequest): Promise<InboundAnswer>;
  settleInbound(transferId: string, from: string): Promise<InboundAnswer>;
  giveDraw(
    ctx: OpContext,
    req: { transferId: string; to: string; unit: string; amount: number },
  ): Promise<InboundAnswer>;
  balance(ctx: OpContext, unit: string, asOfMs: number | null): Promise<Outcome>;
}

/**
 * Test seams (reachable only through runInDurableObject): a throw injected
 * before the destination is asked, after it applied but before the source
 * records it, and inside the commit's transaction.
 */
export interface TransferFaults {
  beforeApply?: () => void;
  afterApply?: () => void;
  duringCommit?: () => void;
}

type Row = Record<string, SqlStorageValue>;

function outFromRow(r: Row): OutRecord {
  return {
    transferId: String(r.transfer_id),
    kind: String(r.kind) as OutRecord["kind"],
    to: String(r.to_account),
    unit: String(r.unit),
    amount: Number(r.amount),
    bodyHash: String(r.body_hash),
    state: String(r.state) as OutState,
    slices: JSON.parse(String(r.slices)) as TransferSlice[],
    reason: r.reason === null ? null : String(r.reason),
    actor: String(r.actor),
    response: r.response === null ? null : (JSON.parse(String(r.response)) as Json),
    problem: r.problem === null ? null : (JSON.parse(String(r.problem)) as Problem),
    createdAtMs: Number(r.created_at_ms),
    updatedAtMs: Number(r.updated_at_ms),
  };
}

export function readOut(sql: SqlStorage, transferId: string): OutRecord | null {
  const row = sql.exec("SELECT * FROM transfers_out WHERE transfer_id = ?", transferId).toArray()[0];
  return row ? outFromRow(row) : null;
}

function insertOut(sql: SqlStorage, r: OutRecord): void {
  sql.exec(
    `INSERT INTO transfers_out (transfer_id, kind, to_account, unit, amount, body_hash, state, slices, reason,
       actor, response, problem, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    r.transferId,
    r.kind,
    r.to,
    r.unit,
    r.amount,
    r.bodyHash,
    r.state,
    JSON.stringify(r.slices),
    r.reason,
    r.actor,
    r.response === null ? null : JSON.stringify(r.response),
    r.problem === null ? null : JSON.stringify(r.problem),
    r.createdAtMs,
    r.updatedAtMs,
  );
}

function setOutState(sql: SqlStorage, id: string, state: OutState, response: Json | null, nowMs: number): void {
  sql.exec(
    "UPDATE transfers_out SET state = ?, response = ?, updated_at_ms = ? WHERE transfer_id = ?",
    state,
    response === null ? null : JSON.stringify(response),
    nowMs,
    id,
  );
}

function readIn(sql: SqlStorage, transferId: string): InboundAnswer | null {
  const row = sql.exec("SELECT state, problem FROM transfers_in WHERE transfer_id = ?", transferId).toArray()[0];
  if (!row) return null;
  if (String(row.state) === "applied") return { state: "applied" };
  return { state: "refused", problem: JSON.parse(String(row.problem)) as Problem };
}

function insertIn(
  sql: SqlStorage,
  req: { transferId: string; from: string; unit: string; amount: number },
  answer: InboundAnswer,
  nowMs: number,
): void {
  sql.exec(
    `INSERT INTO transfers_in (transfer_id, from_account, state, unit, amount, problem, created_at_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
    req.transferId,
    req.from,
    answer.state,
    req.unit,
    req.amount,
    answer.state === "refused" ? JSON.stringify(answer.problem) : null,
    nowMs,
  );
}

/** The state GET /v1/transfers/{id} serves. */
export function transferView(accountId: string, r: OutRecord) {
  return {
    transfer_id: r.transferId,
    status: r.state,
    from_account: accountId,
    to_account: r.to,
    amount: r.amount,
    unit: r.unit,
    reason: r.reason,
    created_at: iso(r.createdAtMs),
    updated_at: iso(r.updatedAtMs),
  };
}

/** The first answer of a completed transfer (201). */
function completedBody(accountId: string, r: OutRecord) {
  const applied = r.slices.map((s) => ({ grantId: s.sourceGrantId, type: s.type, amount: s.amount }));
  return {
    transfer_id: r.transferId,
    status: "completed",
    from_account: accountId,
    to_account: r.to,
    amount: r.amount,
    unit: r.unit,
    ...appliedView(applied, WRITE_APPLIED_MAX),
  };
}

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

const cancelledProblem = (id: string): Problem => ({
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
    const planned = planTransferOut(core.lots.values(), { ref: cmd.transferId, ...cmd }, policy, nowMs);
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

  // ── parent of a budget draw ─────────────────────────────────────────────

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
      core.lots.values(),
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
