/**
 * AccountLedger: one Durable Object per account, the source of truth for its
 * balance. A thin shell: it loads lots from SQLite, asks the pure core in
 * src/ledger what to do, and persists state, entries, outbox rows and the
 * idempotency record in ONE transactionSync with no await in between.
 */
import { DurableObject } from "cloudflare:workers";
import { loadGlobalPolicy } from "../db/settings";
import {
  type DoSnapshot,
  type EntryDraft,
  effectivePolicy,
  GENESIS_HASH,
  grantView,
  type Hold,
  holdView,
  type Lot,
  type LowBalanceState,
  lotStatus,
  mergeOverrides,
  type Policy,
  type PolicyOverrides,
  planCloseHold,
  planDebit,
  planExpire,
  planGrant,
  planReserve,
  planVoid,
  type RaisedAlerts,
  raiseAlerts,
  replayLots,
  sealEntries,
  totalsOf,
} from "../ledger";
import { log } from "../log";
import { dispatchAlerts } from "../webhooks/dispatch";
import { OUTBOX_DELAY_MS, OutboxCourier } from "./outbox";
import { accountRecord, earliestDeadline, indexChanged, nextDeadline, openHold } from "./records";
import * as store from "./storage";
import type {
  AccountInput,
  AccountRecord,
  DrawRequest,
  GrantRequest,
  HoldRequest,
  Idempotency,
  Json,
  OpContext,
  Outcome,
  PolicyPatch,
} from "./types";
import {
  answer,
  balanceJson,
  closeView,
  debitBody,
  fromLedgerError,
  grantBody,
  missingAccount,
  refuse,
  reserveBody,
  settleBody,
} from "./views";

type Scope = "grant" | "debit" | "hold" | "receipt" | "void" | "hold.capture" | "hold.release" | "receipt.settle";

interface Mutation {
  ctx: OpContext;
  lots?: Lot[];
  holds?: Hold[];
  entries: EntryDraft[];
}

export class AccountLedger extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly lots = new Map<string, Lot>();
  private readonly openHolds = new Map<string, Hold>();
  private account: AccountRecord | null = null;
  private overrides: PolicyOverrides = {};
  /** Units whose balance.low alert has fired and not re-armed yet. */
  private lowBalance: LowBalanceState = {};
  private headSeq = 0;
  private headHash = GENESIS_HASH;
  private alarmAtMs: number | null = null;
  /** The earliest deadline among open holds (null: none open). */
  private holdDeadlineMs: number | null = null;
  /** Test seam: tests move this account's clock with runInDurableObject. */
  readonly clock = { offsetMs: 0 };
  /** Test seam: the outbox ships here; tests swap in a failing D1. */
  d1: D1Database;
  private readonly courier: OutboxCourier;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.d1 = env.DB;
    // Read at each shipment, so a swapped `d1` takes effect on the next batch.
    // Shipped alerts fan out to webhooks straight away; the cron's dispatch job
    // catches any this misses.
    this.courier = new OutboxCourier(this.sql, () => ({
      db: this.d1,
      accountId: this.account?.account_id ?? null,
      onAlerts: (ids) => dispatchAlerts(this.d1, env.WEBHOOK_QUEUE, { ids }),
    }));
    store.migrate(this.sql);
    this.load();
  }

  private load(): void {
    for (const lot of store.readLots(this.sql)) this.lots.set(lot.grantId, lot);
    for (const hold of store.readOpenHolds(this.sql)) this.openHolds.set(hold.holdId, hold);
    this.holdDeadlineMs = earliestDeadline(this.openHolds.values());
    const head = store.readHead(this.sql);
    if (head) {
      this.headSeq = head.seq;
      this.headHash = head.hash;
    }
    this.account = store.readMeta<AccountRecord>(this.sql, "account");
    this.overrides = store.readMeta<PolicyOverrides>(this.sql, "policy") ?? {};
    this.lowBalance = store.readMeta<LowBalanceState>(this.sql, "low_balance_state") ?? {};
  }

  private now(): number {
    return Date.now() + this.clock.offsetMs;
  }

  // ── accounts ────────────────────────────────────────────────────────────

  getAccount(): AccountRecord | null {
    return this.account;
  }

  /** Creates or updates the account; fields given replace, fields omitted are kept. */
  upsertAccount(accountId: string, input: AccountInput): Outcome {
    const nowMs = this.now();
    const created = this.account === null;
    const next = accountRecord(this.account, accountId, input, nowMs);
    // A new threshold above the balance is a crossing too; one below re-arms.
    const raised = this.raise(accountId, next.low_balance, [], this.lots, nowMs, `alert_${crypto.randomUUID()}`);
    const txnId = `txn_${crypto.randomUUID()}`;
    this.ctx.storage.transactionSync(() => store.writeChange(this.sql, { txnId, account: next, raised }, nowMs));
    this.account = next;
    this.lowBalance = raised.lowBalance;
    this.scheduleAlarm(nowMs + OUTBOX_DELAY_MS);
    return answer(next, created ? 201 : 200);
  }

  // ── policy ──────────────────────────────────────────────────────────────

  private policy(ctx: OpContext): Policy {
    return effectivePolicy(ctx.globalPolicy, this.overrides);
  }

  getPolicy(accountId: string, globalPolicy: Policy): Outcome {
    if (this.account === null) return missingAccount(accountId);
    return answer(effectivePolicy(globalPolicy, this.overrides));
  }

  putPolicy(accountId: string, patch: PolicyPatch, globalPolicy: Policy): Outcome {
    if (this.account === null) return missingAccount(accountId);
    const next = mergeOverrides(this.overrides, patch);
    store.writeMeta(this.sql, "policy", next);
    this.overrides = next;
    return this.getPolicy(accountId, globalPolicy);
  }

  // ── reads ───────────────────────────────────────────────────────────────

  /**
   * The balance now (holds past their deadline are closed first, so a read
   * never shows credits a deadline has freed as held), or as of a past time.
   */
  balance(ctx: OpContext, unit: string, asOfMs: number | null): Outcome {
    const { accountId } = ctx;
    if (this.account === null) return missingAccount(accountId);
    if (asOfMs === null) this.sweepDue(ctx);
    const nowMs = this.now();
    if (asOfMs === null) return answer(balanceJson(accountId, unit, nowMs, this.lots.values()));
    if (asOfMs > nowMs) return refuse({ code: "invalid_request", detail: "as_of may not be in the future" });
    const lots = replayLots(this.lots.values(), store.replayEntries(this.sql, asOfMs, unit), asOfMs);
    return answer(balanceJson(this.account?.account_id ?? accountId, unit, asOfMs, lots));
  }

  listGrants(accountId: string, status: string | null): Outcome {
    if (this.account === null) return missingAccount(accountId);
    const nowMs = this.now();
    const grants = [...this.lots.values()]
      .sort((a, b) => a.createdOrder - b.createdOrder)
      .filter((lot) => status === null || lotStatus(lot, nowMs) === status)
      .map((lot) => grantView(lot, nowMs));
    return answer({ grants });
  }

  /** Entries after `afterSeq`, oldest first, at most `limit` (the caller bounds it). */
  ledger(accountId: string, afterSeq: number, limit: number): Outcome {
    if (this.account === null) return missingAccount(accountId);
    const entries = store.readEntriesAfter(this.sql, accountId, afterSeq, limit + 1);
    const more = entries.length > limit;
    const page = more ? entries.slice(0, limit) : entries;
    const next = more ? (page[page.length - 1]?.seq ?? null) : null;
    return answer({ entries: page, next_after_seq: next });
  }

  // ── idempotency ─────────────────────────────────────────────────────────

  /** The first result for this id, or a conflict; null when the id is new. */
  private recall(scope: Scope, idem: Idempotency): Outcome | null {
    const first = store.readIdempotency(this.sql, scope, idem.key);
    if (!first) return null;
    if (first.bodyHash !== idem.bodyHash && scope !== "void") {
      return refuse({
        code: "idempotency_conflict",
        detail: `${scope} ${idem.key} was first sent with a different body`,
      });
    }
    return answer(JSON.parse(first.response) as Json, first.status, true);
  }

  // ── mutations ───────────────────────────────────────────────────────────

  grant(ctx: OpContext, cmd: GrantRequest, idem: Idempotency): Outcome {
    const first = this.recall("grant", idem);
    if (first) return first;
    const nowMs = this.now();
    if (this.lots.has(cmd.grantId)) {
      return refuse({ code: "idempotency_conflict", detail: `grant ${cmd.grantId} already exists` });
    }
    const policy = this.policy(ctx);
    if (cmd.type === "promotional" && policy.require_verified_for_promotional && !this.account?.verified) {
      return refuse({
        code: "account_not_verified",
        detail: "promotional grants need a verified account under the current policy",
      });
    }
    const planned = planGrant(this.lots.values(), cmd, this.lots.size + 1, nowMs);
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    const { lot, entries } = planned.value;
    return this.commit(
      { ctx, lots: [lot], entries },
      nowMs,
      (lots) => grantBody(ctx.accountId, lot, lot.unit, nowMs, lots),
      { scope: "grant", idem, status: 201 },
      true,
    );
  }

  voidGrant(ctx: OpContext, grantId: string, reason: string | null): Outcome {
    if (this.account === null) return missingAccount(ctx.accountId);
    // A void has no body to compare: repeating it for the same grant is the same void.
    const idem = { key: grantId, bodyHash: "" };
    const first = this.recall("void", idem);
    if (first) return first;
    this.sweepDue(ctx);
    const lot = this.lots.get(grantId);
    if (!lot) return refuse({ code: "grant_not_found", detail: `grant ${grantId} does not exist` });
    const nowMs = this.now();
    const planned = planVoid(lot, reason, nowMs);
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    const voided = planned.value.lot;
    return this.commit(
      { ctx, lots: [voided], entries: planned.value.entries },
      nowMs,
      (lots) => grantBody(ctx.accountId, voided, lot.unit, nowMs, lots),
      { scope: "void", idem, status: 200 },
    );
  }

  debit(ctx: OpContext, req: DrawRequest, idem: Idempotency): Outcome {
    if (this.account === null) return missingAccount(ctx.accountId);
    const first = this.recall("debit", idem);
    if (first) return first;
    this.sweepDue(ctx);
    const nowMs = this.now();
    const draw = { ref: req.id, unit: req.unit, amount: req.amount };
    const planned = planDebit(this.lots.values(), draw, this.policy(ctx), nowMs);
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    const { applied } = planned.value;
    return this.commit(
      { ctx, lots: planned.value.lots, entries: planned.value.entries },
      nowMs,
      (lots) => debitBody(ctx.accountId, req, applied, nowMs, lots),
      { scope: "debit", idem, status: 200 },
    );
  }

  /** A hold or a receipt: lots reserved in policy order until capture, release or deadline. */
  hold(ctx: OpContext, req: HoldRequest, idem: Idempotency, kind: "hold" | "receipt"): Outcome {
    if (this.account === null) return missingAccount(ctx.accountId);
    const first = this.recall(kind, idem);
    if (first) return first;
    this.sweepDue(ctx);
    if (this.openHolds.has(req.id) || store.holdRecorded(this.sql, req.id)) {
      return refuse({ code: "idempotency_conflict", detail: `hold ${req.id} already exists` });
    }
    const nowMs = this.now();
    const draw = { ref: req.id, unit: req.unit, amount: req.amount };
    const planned = planReserve(this.lots.values(), draw, this.policy(ctx), nowMs, kind);
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    const { applied } = planned.value;
    const hold = openHold(req, kind, applied, nowMs);
    return this.commit(
      { ctx, lots: planned.value.lots, holds: [hold], entries: planned.value.entries },
      nowMs,
      (lots) => reserveBody(req, hold, applied, balanceJson(ctx.accountId, req.unit, nowMs, lots.values())),
      { scope: kind, idem, status: 201 },
    );
  }

  /**
   * Settles a receipt: captures `used` and releases the rest. Settling again
   * with the same `used` answers the first result; with another, 409.
   */
  settleReceipt(ctx: OpContext, receiptId: string, used: number): Outcome {
    if (this.account === null) return missingAccount(ctx.accountId);
    const idem = { key: receiptId, bodyHash: String(used) };
    const settled = store.readIdempotency(this.sql, "receipt.settle", receiptId);
    if (settled && settled.bodyHash !== idem.bodyHash) {
      return refuse({
        code: "receipt_settled",
        detail: `receipt ${receiptId} was already settled with used=${settled.bodyHash}`,
      });
    }
    const first = this.recall("receipt.settle", idem);
    if (first) return first;
    const notFound = refuse({ code: "receipt_not_found", detail: `receipt ${receiptId} does not exist` });
    if (this.getHold(receiptId)?.kind !== "receipt") return notFound;
    this.sweepDue(ctx);
    const hold = this.getHold(receiptId);
    if (hold?.kind !== "receipt") return notFound;
    if (hold.status !== "open") {
      // Captured in full by the sweep: settling with that same use answers as a replay.
      if (used === hold.captured) {
        const balance = balanceJson(ctx.accountId, hold.unit, this.now(), this.lots.values());
        return answer(settleBody(receiptId, used, hold.released, balance), 200, true);
      }
      return refuse({
        code: "receipt_settled",
        detail: `receipt ${receiptId} was already closed (captured ${hold.captured})`,
      });
    }
    if (used > hold.amount)
      return refuse({ code: "invalid_amount", detail: `used may not exceed the receipt's ${hold.amount}` });
    const nowMs = this.now();
    const planned = planCloseHold(this.lots, hold, used, nowMs, "captured");
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    const closed = planned.value.hold;
    return this.commit(
      { ctx, lots: planned.value.lots, holds: [closed], entries: planned.value.entries },
      nowMs,
      (lots) => {
        const balance = balanceJson(ctx.accountId, hold.unit, nowMs, lots.values());
        return settleBody(receiptId, closed.captured, closed.released, balance);
      },
      { scope: "receipt.settle", idem, status: 200 },
    );
  }

  getHold(holdId: string): Hold | null {
    return this.openHolds.get(holdId) ?? store.readHold(this.sql, holdId);
  }

  /**
   * Captures `capture` of an open hold (null: all of it) and releases the rest,
   * or releases it all. Repeating the same close answers the first result.
   */
  closeHold(ctx: OpContext, holdId: string, action: "capture" | "release", capture: number | null): Outcome {
    if (this.account === null) return missingAccount(ctx.accountId);
    const found = this.getHold(holdId);
    if (found?.kind !== "hold") return refuse({ code: "hold_not_found", detail: `hold ${holdId} does not exist` });
    const amount = action === "release" ? 0 : (capture ?? found.amount);
    // Keyed on what the close means, not on how its body was spelled: no body,
    // {} and {"amount": <held>} are the same capture.
    const scope: Scope = action === "capture" ? "hold.capture" : "hold.release";
    const idem = { key: holdId, bodyHash: action === "release" ? "release" : `capture:${amount}` };
    const first = this.recall(scope, idem);
    if (first) return first;
    // A hold past its deadline is closed by policy first, whatever the alarm's timing.
    this.sweepDue(ctx);
    const hold = this.getHold(holdId) ?? found;
    const closedAs = action === "capture" ? "captured" : "released";
    if (hold.status !== "open") {
      // Closed by the deadline sweep the same way: answer as that close did, moving nothing.
      if (hold.status !== closedAs || (action === "capture" && hold.captured !== amount)) {
        return refuse({ code: "hold_closed", detail: `hold ${holdId} is already ${hold.status}` });
      }
      return answer(closeView(ctx.accountId, hold, action, this.now(), this.lots), 200, true);
    }
    if (amount > hold.amount) {
      return refuse({ code: "invalid_amount", detail: `capture may not exceed the held ${hold.amount}` });
    }
    const nowMs = this.now();
    const planned = planCloseHold(this.lots, hold, amount, nowMs, closedAs);
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    const closed = planned.value.hold;
    return this.commit(
      { ctx, lots: planned.value.lots, holds: [closed], entries: planned.value.entries },
      nowMs,
      (lots) => closeView(ctx.accountId, closed, action, nowMs, lots),
      { scope, idem, status: 200 },
    );
  }

  holdStatus(accountId: string, holdId: string): Outcome {
    if (this.account === null) return missingAccount(accountId);
    const hold = this.getHold(holdId);
    if (!hold) return refuse({ code: "hold_not_found", detail: `hold ${holdId} does not exist` });
    return answer(holdView(hold));
  }

  /**
   * Writes `grant.expired` entries for lots past expiry and closes holds past
   * their deadline (receipts are captured in full; holds per policy).
   * Idempotent: a second call at the same time writes nothing.
   */
  expireAndSweep(globalPolicy: Policy): { expired: number; swept: number } {
    const nowMs = this.now();
    if (this.account === null) return { expired: 0, swept: 0 };
    const ctx: OpContext = {
      accountId: this.account.account_id,
      actor: "system:expiry",
      requestId: "alarm",
      globalPolicy,
    };
    const expired = planExpire(this.lots.values(), nowMs);
    if (expired.entries.length > 0)
      this.commit({ ctx, lots: expired.lots, entries: expired.entries }, nowMs, () => null);
    const swept = this.sweepDue({ ...ctx, actor: "system:sweep" });
    return { expired: expired.entries.length, swept };
  }

  /**
   * Closes every open hold past its deadline: receipts are captured in full,
   * holds per the policy's hold_on_expiry. Runs before any operation that
   * closes holds or draws credits, so the outcome never depends on when the
   * alarm fires. Returns how many it closed.
   */
  private sweepDue(ctx: OpContext): number {
    const nowMs = this.now();
    if (this.holdDeadlineMs === null || this.holdDeadlineMs > nowMs) return 0;
    const sweep: OpContext = { ...ctx, actor: "system:sweep" };
    const policy = this.policy(ctx);
    let swept = 0;
    for (const hold of [...this.openHolds.values()]) {
      if (hold.expiresAtMs > nowMs) continue;
      const capture = hold.kind === "receipt" || policy.hold_on_expiry === "capture";
      const closeAs = capture ? "captured" : "released";
      const planned = planCloseHold(this.lots, hold, capture ? hold.amount : 0, nowMs, closeAs);
      if (!planned.ok) continue;
      const { lots, hold: closed, entries } = planned.value;
      this.commit({ ctx: sweep, lots, holds: [closed], entries }, nowMs, () => null);
      swept++;
    }
    return swept;
  }

  /**
   * Seals the drafts onto the chain, then writes state + entries + outbox rows
   * + the idempotency record in one transaction. Memory changes only after
   * the transaction commits, so a throw inside it leaves the cache true to SQLite.
   */
  private commit(
    m: Mutation,
    nowMs: number,
    respond: (lots: ReadonlyMap<string, Lot>) => unknown,
    remember?: { scope: Scope; idem: Idempotency; status: number },
    createsAccount = false,
  ): Outcome {
    const { accountId, actor } = m.ctx;
    const txnId = `txn_${crypto.randomUUID()}`;
    const head = { headSeq: this.headSeq, headHash: this.headHash };
    const sealed = sealEntries(m.entries, { accountId, actor, txnId, ...head, nowMs });
    const lots = m.lots ?? [];
    // The response reflects the state after the change: compute it on a staged view.
    const staged = new Map(this.lots);
    for (const lot of lots) staged.set(lot.grantId, lot);
    const body = respond(staged) as Json;
    const raised = this.raise(accountId, this.account?.low_balance ?? null, m.entries, staged, nowMs, `alert_${txnId}`);
    const created = createsAccount && this.account === null ? accountRecord(null, accountId, {}, nowMs) : null;
    const change: store.Change = {
      txnId,
      account: created,
      lots,
      holds: m.holds ?? [],
      entries: sealed.entries,
      raised,
      grantRows: lots
        .filter((lot) => indexChanged(this.lots.get(lot.grantId), lot))
        .map((lot) => ({ account_id: accountId, ...grantView(lot, nowMs) })),
      idempotency: remember ? { ...remember.idem, scope: remember.scope, status: remember.status, body } : null,
    };
    this.ctx.storage.transactionSync(() => store.writeChange(this.sql, change, nowMs));
    if (created) this.account = created;
    for (const lot of lots) this.lots.set(lot.grantId, lot);
    if (m.holds?.length) {
      for (const hold of m.holds) {
        if (hold.status === "open") this.openHolds.set(hold.holdId, hold);
        else this.openHolds.delete(hold.holdId);
      }
      this.holdDeadlineMs = earliestDeadline(this.openHolds.values());
    }
    this.headSeq = sealed.headSeq;
    this.headHash = sealed.headHash;
    this.lowBalance = raised.lowBalance;
    this.scheduleAlarm(nowMs + OUTBOX_DELAY_MS);
    const write = { op: remember?.scope ?? actor, entries: sealed.entries.length, head_seq: sealed.headSeq };
    // A write a request asked for is logged once, in that request's line at the
    // gateway (with its latency); writes of the DO's own jobs are logged here.
    if (actor.startsWith("system:")) {
      log({ event: "ledger.write", request_id: m.ctx.requestId, account_id: accountId, actor, ...write });
    }
    return { ok: true, status: remember?.status ?? 200, body, replayed: false, write };
  }

  /** The alerts a change raises against this account's thresholds and balance.low state. */
  private raise(
    accountId: string,
    thresholds: Record<string, number> | null,
    drafts: readonly EntryDraft[],
    lots: ReadonlyMap<string, Lot>,
    nowMs: number,
    idPrefix: string,
  ): RaisedAlerts {
    const lowBalance = this.lowBalance;
    return raiseAlerts({ accountId, thresholds, lowBalance, drafts, lots: lots.values(), nowMs, idPrefix });
  }

  // ── outbox and alarm ────────────────────────────────────────────────────

  private scheduleAlarm(atMs: number): void {
    const realAt = atMs - this.clock.offsetMs;
    if (this.alarmAtMs !== null && this.alarmAtMs <= realAt) return;
    this.alarmAtMs = realAt;
    void this.ctx.storage.setAlarm(realAt);
  }

  override async alarm(): Promise<void> {
    this.alarmAtMs = null;
    this.expireAndSweep(await loadGlobalPolicy(this.d1));
    const shipped = await this.courier.shipForAlarm();
    if (!shipped.ok) {
      this.scheduleAlarm(this.now() + shipped.retryInMs);
      return;
    }
    if (shipped.more) this.scheduleAlarm(this.now());
    const next = nextDeadline(this.lots.values(), this.openHolds.values(), this.now());
    if (next !== null) this.scheduleAlarm(next);
  }

  /** Drains the outbox now (tests and the cron re-drive call this). */
  drain(): Promise<{ ok: boolean; pending: number }> {
    return this.courier.drain();
  }

  pendingOutbox(): number {
    return this.courier.pending();
  }

  /** What reconciliation compares with D1's replay: head, unshipped rows, lots summed per unit and type. */
  reconcileState(): DoSnapshot {
    return {
      seq: this.headSeq,
      hash: this.headHash,
      pending: this.pendingOutbox(),
      totals: totalsOf(this.lots.values()),
    };
  }

  /** Head of the chain: what reconciliation compares with D1. */
  head(): { seq: number; hash: string } {
    return { seq: this.headSeq, hash: this.headHash };
  }
}
