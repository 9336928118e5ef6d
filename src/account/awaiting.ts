/**
 * Grants awaiting payment on one account (rules: src/ledger/awaiting.ts).
 * The records live in the `awaiting_grants` table; the open ones (at most
 * AWAITING_OPEN_MAX) are also kept in memory, rebuilt on wake, because every
 * balance lists them. Creating one writes no entry; activating one issues its
 * lot with planGrant in the same transaction as the record's new status and
 * a `grant.activated` alert; cancelling one drops it.
 */
import {
  type AlertDraft,
  BALANCE_LIST_MAX,
  type EntryDraft,
  type GrantCommand,
  grantView,
  type Lot,
  type LotBook,
  planGrant,
  WRITE_RESPONSE_LIST_MAX,
} from "../ledger";
import {
  AWAITING_OPEN_MAX,
  type AwaitingGrant,
  activationCommand,
  planTransition,
  type Transition,
} from "../ledger/awaiting";
import { awaitingFacts, awaitingView, rowOf, writeAwaiting } from "./awaiting-rows";
import { type AccountCore, type HookEffect, POLICY_UNKNOWN } from "./core";
import type { Idempotency, Json, OpContext, Outcome } from "./types";
import { answer, balanceJson, fromLedgerError, missingAccount, refuse } from "./views";

/** A page of `GET …/grants?status=awaiting_payment` lists at most this many (all of them: AWAITING_OPEN_MAX). */
export const AWAITING_PAGE_MAX = AWAITING_OPEN_MAX;
/**
 * A balance as_of reads at most this many records closed after as_of (the
 * oldest closings first); when there are more, its list may miss some and
 * says so with `awaiting_payment_more: true`.
 */
export const AWAITING_AS_OF_SCAN_MAX = 5000;

/** Records awaiting payment on one account, and their three operations. */
export class AwaitingDesk {
  /** Open records in creation order (at most AWAITING_OPEN_MAX): the core's, which every balance lists. */
  private readonly open: Map<string, AwaitingGrant>;
  /** Called when a record closes, in the same transaction (the top-up rule takes a cancelled request back). */
  readonly onClosed: ((closed: AwaitingGrant) => HookEffect | null)[] = [];

  constructor(private readonly core: AccountCore) {
    this.open = core.awaitingOpen;
    this.open.clear();
    const rows = core.sql
      .exec(
        "SELECT * FROM awaiting_grants WHERE status = 'awaiting_payment' ORDER BY created_at_ms, grant_id LIMIT ?",
        AWAITING_OPEN_MAX,
      )
      .toArray();
    for (const row of rows) {
      const r = rowOf(row);
      this.open.set(r.grantId, r);
    }
  }

  get openRecords(): ReadonlyMap<string, AwaitingGrant> {
    return this.open;
  }

  /** Any record, open or closed, from the table. */
  read(grantId: string): AwaitingGrant | null {
    const row = this.core.sql.exec("SELECT * FROM awaiting_grants WHERE grant_id = ?", grantId).toArray()[0];
    return row ? rowOf(row) : null;
  }

  /** Whether a new grant may take `grantId`: no lot, no reserved id and no record, open or closed, has it. */
  taken(grantId: string): boolean {
    return this.core.idTaken(grantId) || this.hasRecord(grantId);
  }

  /** Whether a record, open or closed, has `grantId` (core.reservedIds: no plain grant may take it, ever). */
  hasRecord(grantId: string): boolean {
    if (this.open.has(grantId)) return true;
    return this.core.sql.exec("SELECT 1 FROM awaiting_grants WHERE grant_id = ?", grantId).toArray().length > 0;
  }

  /** The row write and memory update of a new record: joined to a commit's transaction. */
  stage(r: AwaitingGrant): { write: () => void; applied: () => void } {
    return {
      write: () => writeAwaiting(this.core.sql, r, null),
      applied: () => {
        this.open.set(r.grantId, r);
      },
    };
  }

  /** POST …/grants with awaiting_payment: the same rules as a grant, no entry, 201 `{grant, balance}`. */
  create(ctx: OpContext, cmd: GrantCommand, idem: Idempotency): Outcome {
    const core = this.core;
    const first = core.recall("grant", idem);
    if (first) return first;
    if (this.taken(cmd.grantId)) {
      return refuse({ code: "idempotency_conflict", detail: `grant ${cmd.grantId} already exists` });
    }
    if (this.open.size >= AWAITING_OPEN_MAX) {
      return refuse({
        code: "invalid_request",
        detail: `an account holds at most ${AWAITING_OPEN_MAX} grants awaiting payment; activate or cancel some first`,
      });
    }
    const nowMs = core.now();
    const verified = this.core.grantTypeRefusal(ctx, cmd.type);
    if (verified) return verified;
    // Checked as the grant would be now (amounts, times, reason, cost basis); checked again at activation.
    const planned = planGrant(core.lots.openLots(), cmd, core.lots.size + 1, nowMs);
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    const record: AwaitingGrant = {
      grantId: cmd.grantId,
      command: cmd,
      expiresInDays: null,
      topup: false,
      status: "awaiting_payment",
      createdAtMs: nowMs,
      closedAtMs: null,
      paymentRef: null,
      cancelReason: null,
    };
    const open = [...this.open.values(), record];
    return core.commit(
      { ctx, entries: [], ...this.stage(record) },
      nowMs,
      (lots) => this.body(ctx.accountId, awaitingView(record), cmd.unit, nowMs, lots, open),
      { scope: "grant", idem, status: 201 },
      true,
    );
  }

  /** POST …/grants/{grant_id}/activate: issues the lot, dated now, with a grant.activated alert. */
  activate(ctx: OpContext, grantId: string, paymentRef: string | null): Outcome {
    const core = this.core;
    const found = this.find(ctx, grantId);
    if (!found.ok) return found.outcome;
    // One instant: the record's closed_at and the lot's grant entry are the same time.
    const nowMs = core.now();
    const planned = this.transition(found.record, "activate", { paymentRef }, nowMs);
    if (planned.kind === "done") return planned.outcome;
    const closed = planned.record;
    if (core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
    const cmd = activationCommand(found.record, nowMs);
    if (!cmd.ok) return refuse(fromLedgerError(cmd.error));
    if (core.lots.has(grantId)) {
      return refuse({ code: "idempotency_conflict", detail: `a lot ${grantId} already exists; cancel this one` });
    }
    const verified = this.core.grantTypeRefusal(ctx, cmd.value.type);
    if (verified) return verified;
    const issued = planGrant(core.lots.openLots(), cmd.value, core.lots.size + 1, nowMs);
    if (!issued.ok) return refuse(fromLedgerError(issued.error));
    const { lot, entries } = issued.value;
    const alert: AlertDraft = {
      type: "grant.activated",
      unit: lot.unit,
      data: {
        grant_id: grantId,
        unit: lot.unit,
        amount: lot.amount,
        credit_type: lot.type,
        payment_ref: paymentRef,
        topup: closed.topup,
      },
      atMs: nowMs,
    };
    const view = { ...grantView(lot, nowMs), ...awaitingFacts(closed) };
    return this.close(ctx, closed, nowMs, { lots: [lot], entries, alerts: [alert] }, lot.unit, view);
  }

  /** POST …/grants/{grant_id}/cancel: drops the record; no entry. */
  cancel(ctx: OpContext, grantId: string, reason: string): Outcome {
    const found = this.find(ctx, grantId);
    if (!found.ok) return found.outcome;
    const nowMs = this.core.now();
    const planned = this.transition(found.record, "cancel", { reason }, nowMs);
    if (planned.kind === "done") return planned.outcome;
    const closed = planned.record;
    return this.close(ctx, closed, nowMs, { entries: [] }, closed.command.unit, awaitingView(closed));
  }

  /**
   * GET …/grants?status=awaiting_payment: open records by (created_at, grant_id), after `cursor` (a
   * grant_id). The cursor positions the page by its record's creation, so a record activated or
   * cancelled since (it stays in the table) still does; an id no record ever had is refused.
   */
  list(accountId: string, cursor: string | null, limit: number): Outcome {
    if (this.core.account === null) return missingAccount(accountId);
    let after = { createdAtMs: -1, grantId: "" };
    if (cursor !== null) {
      const at = this.read(cursor);
      if (at === null) return refuse({ code: "invalid_request", detail: "cursor: no such grant awaiting payment" });
      after = { createdAtMs: at.createdAtMs, grantId: at.grantId };
    }
    const size = Math.min(limit, AWAITING_PAGE_MAX);
    // The index (status, created_at_ms, grant_id) serves it: rows read ≤ size + 1.
    const rows = this.core.sql
      .exec(
        `SELECT * FROM awaiting_grants WHERE status = 'awaiting_payment'
           AND (created_at_ms > ? OR (created_at_ms = ? AND grant_id > ?))
         ORDER BY created_at_ms, grant_id LIMIT ?`,
        after.createdAtMs,
        after.createdAtMs,
        after.grantId,
        size + 1,
      )
      .toArray()
      .map(rowOf);
    const page = rows.slice(0, size);
    const last = page[page.length - 1];
    return answer({
      grants: page.map(awaitingView),
      next_cursor: rows.length > size && last ? last.grantId : null,
    });
  }

  /** GET …/grants/{grant_id} of a record that is not a lot (awaiting payment or cancelled). */
  get(accountId: string, grantId: string): Outcome {
    if (this.core.account === null) return missingAccount(accountId);
    const r = this.read(grantId);
    if (r === null || r.status === "activated") {
      return refuse({ code: "grant_not_found", detail: `grant ${grantId} does not exist` });
    }
    return answer(awaitingView(r));
  }

  /**
   * The records awaiting at `asOfMs` (for a balance as of a past time): created by then, not closed
   * by then, in creation order. Two bounded reads: those still open now (index by status: at most
   * AWAITING_OPEN_MAX rows read), and those closed after `asOfMs`, oldest closing first (index
   * (unit, closed_at_ms): at most AWAITING_AS_OF_SCAN_MAX rows read). `more` when the list was cut
   * at BALANCE_LIST_MAX or the second read hit its bound (then some may be missing).
   */
  asOf(unit: string, asOfMs: number): { records: AwaitingGrant[]; more: boolean } {
    const stillOpen = this.core.sql
      .exec(
        `SELECT * FROM awaiting_grants WHERE status = 'awaiting_payment' AND created_at_ms <= ? AND unit = ?
         ORDER BY created_at_ms, grant_id LIMIT ?`,
        asOfMs,
        unit,
        AWAITING_OPEN_MAX,
      )
      .toArray();
    const closedLater = this.core.sql
      .exec(
        `SELECT * FROM awaiting_grants WHERE unit = ? AND closed_at_ms > ? ORDER BY closed_at_ms LIMIT ?`,
        unit,
        asOfMs,
        AWAITING_AS_OF_SCAN_MAX,
      )
      .toArray();
    const records = [...stillOpen, ...closedLater.filter((row) => Number(row.created_at_ms) <= asOfMs)]
      .map(rowOf)
      .sort((x, y) => x.createdAtMs - y.createdAtMs || (x.grantId < y.grantId ? -1 : x.grantId > y.grantId ? 1 : 0));
    const cut = closedLater.length === AWAITING_AS_OF_SCAN_MAX;
    return { records: records.slice(0, BALANCE_LIST_MAX), more: cut || records.length > BALANCE_LIST_MAX };
  }

  private find(ctx: OpContext, grantId: string): { ok: true; record: AwaitingGrant } | { ok: false; outcome: Outcome } {
    if (this.core.account === null) return { ok: false, outcome: missingAccount(ctx.accountId) };
    const record = this.open.get(grantId) ?? this.read(grantId);
    if (record === null) {
      const detail = this.core.lots.has(grantId)
        ? `grant ${grantId} was not awaiting payment`
        : `no grant ${grantId} awaiting payment`;
      const code = this.core.lots.has(grantId) ? "grant_closed" : "grant_not_found";
      return { ok: false, outcome: refuse({ code, detail }) };
    }
    return { ok: true, record };
  }

  /** The transition's plan; a repeat serves the first answer as stored. */
  private transition(
    record: AwaitingGrant,
    t: Transition,
    detail: { paymentRef?: string | null; reason?: string | null },
    nowMs: number,
  ): { kind: "apply"; record: AwaitingGrant } | { kind: "done"; outcome: Outcome } {
    const planned = planTransition(record, t, detail, nowMs);
    if (!planned.ok) return { kind: "done", outcome: refuse(fromLedgerError(planned.error)) };
    if (planned.value.kind === "apply") return { kind: "apply", record: planned.value.record };
    const row = this.core.sql.exec("SELECT response FROM awaiting_grants WHERE grant_id = ?", record.grantId).one();
    return { kind: "done", outcome: answer(JSON.parse(String(row.response)) as Json, 200, true) };
  }

  /** Commits a record's close with what it moves; the answer is stored with it, for a repeat. */
  private close(
    ctx: OpContext,
    closed: AwaitingGrant,
    nowMs: number,
    change: { lots?: Lot[]; entries: EntryDraft[]; alerts?: AlertDraft[] },
    unit: string,
    view: Record<string, unknown>,
  ): Outcome {
    let body: Json = null;
    const open = [...this.open.values()].filter((r) => r.grantId !== closed.grantId);
    const effects = this.onClosed.map((f) => f(closed)).filter((e): e is HookEffect => e !== null);
    const alerts = [...(change.alerts ?? []), ...effects.flatMap((e) => e.alerts ?? [])];
    return this.core.commit(
      {
        ctx,
        ...change,
        alerts,
        write: () => {
          writeAwaiting(this.core.sql, closed, body);
          for (const e of effects) e.write?.();
        },
        applied: () => {
          this.open.delete(closed.grantId);
          for (const e of effects) e.applied?.();
        },
      },
      nowMs,
      (lots) => {
        body = this.body(ctx.accountId, view, unit, nowMs, lots, open);
        return body;
      },
    );
  }

  private body(
    accountId: string,
    grant: Record<string, unknown>,
    unit: string,
    nowMs: number,
    lots: LotBook,
    open: Iterable<AwaitingGrant>,
  ): Json {
    return {
      grant: grant as Json,
      balance: balanceJson(accountId, unit, nowMs, lots, open, WRITE_RESPONSE_LIST_MAX),
    };
  }
}
