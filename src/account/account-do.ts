/**
 * AccountLedger: one Durable Object per account, the source of truth for its
 * balance. A thin RPC shell: each method hands the account's state (core.ts)
 * to an operation (writes.ts, hold-ops.ts, reads.ts), which asks the pure
 * rules in src/ledger and commits state, entries, outbox rows and the
 * idempotency record in ONE transactionSync with no await in between.
 * Its state and wiring are in ledger-base.ts.
 */
import { loadGlobalPolicy } from "../db/settings";
import { type DoSnapshot, type InvoiceLine, type Policy, totalsOf } from "../ledger";
import type { Budget } from "../ledger/budget";
import * as billing from "./billing";
import * as holdOps from "./hold-ops";
import { type ImportDone, type ImportLot, importLots } from "./imports";
import { expireAndSweep, runAlarmSteps } from "./jobs";
import { AccountLedgerBase } from "./ledger-base";
import * as reads from "./reads";
import type { RecurringInput } from "./recurring";
import { type RedeemInfo, redeem, withdraw } from "./redemption";
import type { ReferralView } from "./referral";
import { replaySource, type SourceQuery } from "./replay-source";
import * as rollup from "./rollup";
import * as statements from "./statement";
import type { TopUpInput } from "./topup";
import type { InboundAnswer, InboundRequest, SendCommand, TransferFaults } from "./transfer-records";
import type {
  AccountInput,
  AccountRecord,
  DebitRequest,
  GrantRequest,
  HoldRequest,
  Idempotency,
  OpContext,
  Outcome,
  PolicyPatch,
} from "./types";
import * as usage from "./usage";
import type { WindowReport } from "./window";
import * as writes from "./writes";

export class AccountLedger extends AccountLedgerBase {
  // ── accounts and policy ─────────────────────────────────────────────────

  getAccount(): AccountRecord | null {
    return this.core.account;
  }

  upsertAccount(accountId: string, input: AccountInput): Outcome {
    return writes.upsertAccount(this.core, accountId, input);
  }

  getPolicy(accountId: string, globalPolicy: Policy | null): Outcome {
    return reads.getPolicy(this.core, accountId, globalPolicy);
  }

  putPolicy(accountId: string, patch: PolicyPatch, globalPolicy: Policy | null): Outcome {
    return reads.putPolicy(this.core, accountId, patch, globalPolicy);
  }

  // ── reads ───────────────────────────────────────────────────────────────

  balance(ctx: OpContext, unit: string, asOfMs: null): Outcome;
  balance(ctx: OpContext, unit: string, asOfMs: number | null): Outcome | Promise<Outcome>;
  balance(ctx: OpContext, unit: string, asOfMs: number | null): Outcome | Promise<Outcome> {
    return reads.balance(this.core, ctx, unit, asOfMs, (u, atMs) => this.life.awaiting.asOf(u, atMs), this.past);
  }

  listGrants(accountId: string, q: reads.GrantsQuery): Promise<Outcome> {
    return reads.listGrantsAsOf(this.core, this.past, accountId, q);
  }

  getGrant(accountId: string, grantId: string): Outcome {
    return reads.getGrant(this.core, accountId, grantId);
  }

  grantRemainders(grantIds: string[]): ReturnType<typeof reads.grantRemainders> {
    return reads.grantRemainders(this.core, grantIds);
  }

  listHolds(ctx: OpContext, after: { atMs: number; id: string } | null, limit: number): Outcome {
    return reads.listHolds(this.core, ctx, after, limit);
  }

  holdStatus(ctx: OpContext, holdId: string): Outcome {
    return reads.holdStatus(this.core, ctx, holdId);
  }

  getDebit(accountId: string, debitId: string): Promise<Outcome> {
    return reads.getDebit(this.core, this.past.window, accountId, debitId);
  }

  ledger(accountId: string, afterSeq: number, limit: number): Promise<Outcome> {
    return reads.ledger(this.core, this.past.window, accountId, afterSeq, limit);
  }

  /** A statement of `unit` over [fromMs, toMs), unsigned: the gateway signs it. */
  statement(accountId: string, unit: string, fromMs: number, toMs: number): Promise<Outcome> {
    return statements.statement(this.core, this.past, this.past.window, accountId, unit, fromMs, toMs);
  }

  // ── writes ──────────────────────────────────────────────────────────────

  grant(ctx: OpContext, cmd: GrantRequest, idem: Idempotency): Outcome {
    return writes.grant(this.core, ctx, cmd, idem);
  }

  voidGrant(ctx: OpContext, grantId: string, reason: string | null): Outcome {
    return writes.voidGrant(this.core, ctx, grantId, reason);
  }

  debit(ctx: OpContext, req: DebitRequest, idem: Idempotency): Outcome | Promise<Outcome> {
    const out = writes.debit(this.core, ctx, req, idem);
    // A budgeted child short of credits draws from its parent (budget.ts); every other debit stays synchronous.
    if (!this.budgets.covers(out, req.unit)) return this.metrics.refused(out);
    return this.budgets
      .cover(ctx, req.unit, req.amount, out, () => writes.debit(this.core, ctx, req, idem))
      .then(this.metrics.refused);
  }

  hold(ctx: OpContext, req: HoldRequest, idem: Idempotency, kind: "hold" | "receipt"): Outcome | Promise<Outcome> {
    const out = holdOps.reserve(this.core, ctx, req, idem, kind);
    if (!this.budgets.covers(out, req.unit)) return this.metrics.refused(out);
    return this.budgets
      .cover(ctx, req.unit, req.amount, out, () => holdOps.reserve(this.core, ctx, req, idem, kind))
      .then(this.metrics.refused);
  }

  settleReceipt(ctx: OpContext, receiptId: string, used: number): Outcome {
    return holdOps.settleReceipt(this.core, ctx, receiptId, used);
  }

  closeHold(ctx: OpContext, holdId: string, action: "capture" | "release", capture: number | null): Outcome {
    return holdOps.closeHold(this.core, ctx, holdId, action, capture);
  }

  // ── billing ─────────────────────────────────────────────────────────────

  createInvoice(ctx: OpContext, invoiceId: string, lines: InvoiceLine[], idem: Idempotency): Outcome {
    return billing.createInvoice(this.core, ctx, invoiceId, lines, idem);
  }

  getInvoice(accountId: string, invoiceId: string): Outcome {
    return billing.getInvoice(this.core, accountId, invoiceId);
  }

  voidInvoice(ctx: OpContext, invoiceId: string, reason: string | null): Outcome {
    return billing.voidInvoice(this.core, ctx, invoiceId, reason);
  }

  refund(ctx: OpContext, req: billing.RefundRequest, idem: Idempotency): Outcome {
    return billing.refund(this.core, ctx, req, idem);
  }

  /** Test seam: a throw injected inside a commit's transaction (runInDurableObject only). */
  get faults(): { beforeRecord?: () => void } {
    return this.core.faults;
  }

  // ── enterprise ──────────────────────────────────────────────────────────

  /** This account's totals for a parent's roll-up balance (no lists). */
  rollupPart(ctx: OpContext, unit: string): Outcome {
    return rollup.rollupPart(this.core, ctx, unit);
  }

  // ── usage ───────────────────────────────────────────────────────────────

  /** This account's events of a usage batch, in order: one debit each, one result each. */
  recordUsage(ctx: OpContext, events: usage.UsageEvent[], maxSkewMs: number): ReturnType<typeof usage.applyUsage> {
    // An event a budgeted child cannot cover draws from its parent, as a debit does.
    return usage
      .applyUsage(this.core, ctx, events, maxSkewMs, (refused, unit, amount, retry) =>
        this.budgets.covers(refused, unit) ? this.budgets.cover(ctx, unit, amount, refused, retry) : refused,
      )
      .then(this.metrics.usageRefused);
  }

  // ── transfers and budgets ───────────────────────────────────────────────

  /** POST /v1/transfers from this account: prepare, apply on the destination, commit (transfers.ts). */
  sendTransfer(ctx: OpContext, cmd: SendCommand): Promise<Outcome> {
    return this.transfers.send(ctx, cmd);
  }

  getTransfer(transferId: string): Outcome {
    return this.transfers.view(transferId);
  }

  /** The destination's step, idempotent by transfer id. */
  applyTransfer(req: InboundRequest): InboundAnswer {
    return this.transfers.applyInbound(req);
  }

  /** Recovery's question to the destination: applied, or refused for good from now on. */
  settleInbound(transferId: string, from: string): InboundAnswer {
    return this.transfers.settleInbound(transferId, from);
  }

  /** The cron's backstop (cron/transfers.ts): settles one open transfer now; "none" when never prepared here. */
  async recoverTransfer(transferId: string): Promise<string> {
    const accountId = this.core.account?.account_id;
    if (accountId === undefined) return "none";
    const ctx: OpContext = { accountId, actor: "system:transfer", requestId: "cron", globalPolicy: null };
    return this.transfers.recoverOne(ctx, transferId);
  }

  /** A child's budget draw on this (parent) account, idempotent by draw id. */
  giveDraw(ctx: OpContext, req: { transferId: string; to: string; unit: string; amount: number }): InboundAnswer {
    return this.budgets.giveDraw(ctx, req);
  }

  putBudget(accountId: string, budget: Budget): Outcome {
    return this.budgets.put(accountId, budget);
  }

  getBudget(accountId: string): Outcome {
    return this.budgets.get(accountId);
  }

  deleteBudget(accountId: string): Outcome {
    return this.budgets.remove(accountId);
  }

  /** Test seam: a throw after a parent gave a draw, before this child applied it. */
  get budgetFaults(): { afterGive?: () => void } {
    return this.budgets.faults;
  }

  /** Test seam: throws injected at each step of a transfer (runInDurableObject only). */
  get transferFaults(): TransferFaults {
    return this.transfers.faults;
  }

  // ── recurring grants ────────────────────────────────────────────────────

  createRecurring(ctx: OpContext, input: RecurringInput, bodyHash: string): Outcome {
    return this.life.recurring.create(ctx, input, bodyHash);
  }

  listRecurring(ctx: OpContext): Outcome {
    return this.life.recurring.list(ctx);
  }

  cancelRecurring(ctx: OpContext, recurringId: string): Outcome {
    return this.life.recurring.cancel(ctx, recurringId);
  }

  /** Takes the recurring steps due now (the alarm's job and the cron's poke); returns when the next one falls due. */
  runRecurring(): number | null {
    return this.life.runRecurring();
  }

  // ── awaiting payment and top-up ─────────────────────────────────────────

  /** A grant with awaiting_payment: recorded, no entry, never spendable (awaiting.ts). */
  createAwaiting(ctx: OpContext, cmd: GrantRequest, idem: Idempotency): Outcome {
    return this.life.awaiting.create(ctx, cmd, idem);
  }

  activateGrant(ctx: OpContext, grantId: string, paymentRef: string | null): Outcome {
    return this.life.awaiting.activate(ctx, grantId, paymentRef);
  }

  cancelGrant(ctx: OpContext, grantId: string, reason: string): Outcome {
    return this.life.awaiting.cancel(ctx, grantId, reason);
  }

  listAwaiting(accountId: string, cursor: string | null, limit: number): Outcome {
    return this.life.awaiting.list(accountId, cursor, limit);
  }

  getAwaiting(accountId: string, grantId: string): Outcome {
    return this.life.awaiting.get(accountId, grantId);
  }

  putTopUp(accountId: string, input: TopUpInput): Outcome {
    return this.life.topups.put(accountId, input);
  }

  getTopUp(accountId: string, unit: string): Outcome {
    return this.life.topups.get(accountId, unit);
  }

  deleteTopUp(accountId: string, unit: string): Outcome {
    return this.life.topups.remove(accountId, unit);
  }

  // ── campaigns ───────────────────────────────────────────────────────────

  /** A campaign redemption: the lot, its entry, grant.redeemed and a referral's pending reward, in one commit. */
  redeem(ctx: OpContext, info: RedeemInfo, idem: Idempotency): Outcome {
    return redeem(this.core, this.life.referrals, ctx, info, idem);
  }

  /** Before the gateway releases a refused reservation: "held" (granted meanwhile) or "withdrawn" (fenced). */
  withdrawRedemption(campaignId: string, reservation: string): "held" | "withdrawn" {
    return withdraw(this.core, campaignId, reservation);
  }

  /** This account's referrals as a referee (pending, due, rewarded, failed). */
  listReferrals(): ReferralView[] {
    return this.life.referrals.list();
  }

  /** Test seam: throws injected around a referral reward's grant on the referrer (runInDurableObject only). */
  get referralFaults(): { beforeGrant?: () => void; afterGrant?: () => void } {
    return this.life.referrals.faults;
  }

  // ── replay ── (read-only: what a scratch rebuild is compared with, replay-source.ts)
  replaySource(accountId: string, q: SourceQuery): Outcome | Promise<Outcome> {
    return replaySource(this.core, this.past, accountId, q);
  }

  // ── imports ── (POST /v1/imports: this account's legacy lots, one transaction, imports.ts)
  importLots(ctx: OpContext, lots: ImportLot[], dryRun: boolean): ImportDone {
    return importLots(this.core, ctx, lots, dryRun);
  }

  // ── window ── (window.ts, time-travel.ts)
  /** Test seam: optionally another window and interval (kept), then one checkpoint-and-compaction run. */
  compactNow(s?: { window: number; checkpointEvery: number }): Promise<WindowReport> {
    if (s) this.past.window.configure(s);
    return this.past.window.run();
  }

  /** The lots (of `unit`, or all) as they stood at `asOfMs`: what a replay is compared with. */
  lotStatesAt(asOfMs: number, unit: string | null = null) {
    return this.past.lotStatesAt(asOfMs, unit);
  }

  // ── jobs ────────────────────────────────────────────────────────────────

  /** Expires lots past expiry and closes holds past their deadline (jobs.ts); idempotent. */
  expireAndSweep(globalPolicy: Policy | null): { expired: number; swept: number } {
    return expireAndSweep(this.core, globalPolicy);
  }

  /**
   * Runs the alarm's steps (jobs.ts) and re-arms for whatever is left. Never
   * throws: a failed handler is retried by the runtime on its own terms, and
   * a retry it gives up on takes the alarm away with it.
   */
  override async alarm(): Promise<void> {
    this.alarms.fired();
    const next = await runAlarmSteps({
      core: this.core,
      courier: this.courier,
      sql: this.ctx.storage.sql,
      loadPolicy: () => loadGlobalPolicy(this.d1),
      recover: async (ctx) => [await this.transfers.recover(ctx), await this.budgets.recover(ctx)],
      jobs: [...this.life.alarmJobs, this.metrics.job, this.past.window.job],
    });
    await this.alarms.settle(next === null ? null : next - this.clock.offsetMs);
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
      seq: this.core.headSeq,
      hash: this.core.headHash,
      pending: this.pendingOutbox(),
      totals: totalsOf(this.core.lots.values()),
    };
  }

  /** Head of the chain: what reconciliation compares with D1. */
  head(): { seq: number; hash: string } {
    return { seq: this.core.headSeq, hash: this.core.headHash };
  }
}
