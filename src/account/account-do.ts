/**
 * AccountLedger: one Durable Object per account, the source of truth for its
 * balance. A thin shell: it loads lots from SQLite, asks the pure core in
 * src/ledger what to do, and persists state, entries, outbox rows and the
 * idempotency record in ONE transactionSync with no await in between.
 */
import { DurableObject } from "cloudflare:workers";
import { loadGlobalPolicy } from "../db/settings";
import type { Problem } from "../errors";
import {
  type AlertRecord,
  type Applied,
  alertRecords,
  appliedView,
  balanceOf,
  balanceView,
  canonicalJson,
  type DoSnapshot,
  type Entry,
  type EntryDraft,
  effectivePolicy,
  entryHash,
  expiredAlerts,
  GENESIS_HASH,
  grantView,
  type Hold,
  holdView,
  iso,
  type LedgerError,
  type Lot,
  type LowBalanceState,
  lotStatus,
  lowBalanceCrossings,
  mergeOverrides,
  nextExpiryMs,
  type Policy,
  type PolicyOverrides,
  planCloseHold,
  planDebit,
  planExpire,
  planGrant,
  planReserve,
  planVoid,
  replayLots,
  totalsOf,
} from "../ledger";
import { log } from "../log";
import { dispatchAlerts } from "../webhooks/dispatch";
import { type Outbox, shipOutbox } from "./outbox";
import { entryFromRow, holdFromRow, lotFromRow, SCHEMA, writeEntry, writeHold, writeLot } from "./storage";
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

type Scope = "grant" | "debit" | "hold" | "receipt" | "void" | "hold.capture" | "hold.release" | "receipt.settle";

interface Mutation {
  ctx: OpContext;
  lots?: Lot[];
  holds?: Hold[];
  entries: EntryDraft[];
  idempotency?: { scope: Scope; key: string; bodyHash: string; status: number; body: Json };
}

/**
 * The outbox ships this long after a write, so a busy account sends one D1
 * batch for many writes instead of one per write. D1 history lags by this
 * much; the gate never waits for it.
 */
export const OUTBOX_DELAY_MS = 250;

const refuse = (problem: Problem): Outcome => ({ ok: false, problem });

/**
 * The D1 grant index only needs what the cron searches by: a new lot, a void,
 * and whether anything unheld is left (expiry has work to do). Ordinary draws
 * that leave the lot open do not touch it, which keeps D1 writes per debit low.
 */
function indexChanged(before: Lot | undefined, after: Lot): boolean {
  if (!before) return true;
  if (before.voidedAtMs !== after.voidedAtMs) return true;
  return (before.remaining - before.held === 0) !== (after.remaining - after.held === 0);
}

function earliestDeadline(holds: Iterable<Hold>): number | null {
  let min: number | null = null;
  for (const h of holds) if (min === null || h.expiresAtMs < min) min = h.expiresAtMs;
  return min;
}

function fromLedgerError(e: LedgerError): Problem {
  if (e.code === "insufficient_credits") {
    return {
      code: e.code,
      detail: `available ${e.available} is less than requested ${e.requested}`,
      extra: { available: e.available, requested: e.requested },
    };
  }
  return { code: e.code, detail: e.detail };
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
  private shipFailures = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.d1 = env.DB;
    for (const stmt of SCHEMA) this.sql.exec(stmt);
    this.load();
  }

  private load(): void {
    for (const row of this.sql.exec("SELECT * FROM lots")) {
      const lot = lotFromRow(row);
      this.lots.set(lot.grantId, lot);
    }
    for (const row of this.sql.exec("SELECT * FROM holds WHERE status = 'open'")) {
      const hold = holdFromRow(row);
      this.openHolds.set(hold.holdId, hold);
    }
    this.holdDeadlineMs = earliestDeadline(this.openHolds.values());
    const head = this.sql.exec("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").toArray()[0];
    if (head) {
      this.headSeq = Number(head.seq);
      this.headHash = String(head.hash);
    }
    this.account = this.readMeta<AccountRecord>("account");
    this.overrides = this.readMeta<PolicyOverrides>("policy") ?? {};
    this.lowBalance = this.readMeta<LowBalanceState>("low_balance_state") ?? {};
  }

  private readMeta<T>(key: string): T | null {
    const row = this.sql.exec("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
    return row ? (JSON.parse(String(row.value)) as T) : null;
  }

  private writeMeta(key: string, value: unknown): void {
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      JSON.stringify(value),
    );
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
    const prev = this.account;
    const next: AccountRecord = {
      account_id: accountId,
      name: input.name !== undefined ? input.name : (prev?.name ?? null),
      parent_id: input.parent_id !== undefined ? input.parent_id : (prev?.parent_id ?? null),
      verified: input.verified ?? prev?.verified ?? false,
      metadata: input.metadata !== undefined ? input.metadata : (prev?.metadata ?? null),
      low_balance: input.low_balance !== undefined ? input.low_balance : (prev?.low_balance ?? null),
      created_at: prev?.created_at ?? iso(nowMs),
      updated_at: iso(nowMs),
    };
    // A new threshold above the balance is a crossing too; one below re-arms.
    const raised = this.alertsFor(accountId, next.low_balance, [], this.lots, nowMs, `alert_${crypto.randomUUID()}`);
    this.ctx.storage.transactionSync(() => {
      this.writeMeta("account", next);
      this.enqueue({ topic: "account", payload: next });
      this.writeAlerts(raised);
    });
    this.account = next;
    this.lowBalance = raised.lowBalance;
    this.scheduleAlarm(nowMs + OUTBOX_DELAY_MS);
    return { ok: true, status: created ? 201 : 200, body: next as unknown as Json, replayed: false };
  }

  /** Makes the account exist (a grant to an unknown account creates it). */
  /** Inside a transaction: writes the account a grant creates; memory follows after commit. */
  private ensureAccount(accountId: string, nowMs: number): AccountRecord | null {
    if (this.account !== null) return null;
    const record: AccountRecord = {
      account_id: accountId,
      name: null,
      parent_id: null,
      verified: false,
      metadata: null,
      low_balance: null,
      created_at: iso(nowMs),
      updated_at: iso(nowMs),
    };
    this.writeMeta("account", record);
    this.enqueue({ topic: "account", payload: record });
    return record;
  }

  private missingAccount(accountId: string): Outcome | null {
    return this.account === null
      ? refuse({ code: "account_not_found", detail: `account ${accountId} does not exist` })
      : null;
  }

  // ── policy ──────────────────────────────────────────────────────────────

  private policy(ctx: OpContext): Policy {
    return effectivePolicy(ctx.globalPolicy, this.overrides);
  }

  getPolicy(accountId: string, globalPolicy: Policy): Outcome {
    const missing = this.missingAccount(accountId);
    if (missing) return missing;
    return {
      ok: true,
      status: 200,
      body: effectivePolicy(globalPolicy, this.overrides) as unknown as Json,
      replayed: false,
    };
  }

  putPolicy(accountId: string, patch: PolicyPatch, globalPolicy: Policy): Outcome {
    const missing = this.missingAccount(accountId);
    if (missing) return missing;
    const next = mergeOverrides(this.overrides, patch);
    this.writeMeta("policy", next);
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
    const missing = this.missingAccount(accountId);
    if (missing) return missing;
    if (asOfMs === null) this.sweepDue(ctx);
    const nowMs = this.now();
    if (asOfMs === null) {
      return { ok: true, status: 200, body: this.balanceJson(accountId, unit, nowMs), replayed: false };
    }
    if (asOfMs > nowMs) return refuse({ code: "invalid_request", detail: "as_of may not be in the future" });
    const entries = this.sql
      .exec(
        "SELECT grant_id, amount, held_delta, recorded_at_ms FROM entries WHERE recorded_at_ms <= ? AND unit = ?",
        asOfMs,
        unit,
      )
      .toArray()
      .map((r) => ({
        grantId: r.grant_id === null ? null : String(r.grant_id),
        amount: Number(r.amount),
        heldDelta: Number(r.held_delta),
        recordedAtMs: Number(r.recorded_at_ms),
      }));
    const lots = replayLots(this.lots.values(), entries, asOfMs);
    const body = balanceView(this.account?.account_id ?? accountId, balanceOf(lots, unit, asOfMs), asOfMs);
    return { ok: true, status: 200, body: body as unknown as Json, replayed: false };
  }

  private balanceJson(
    accountId: string,
    unit: string,
    nowMs: number,
    lots: ReadonlyMap<string, Lot> = this.lots,
  ): Json {
    return balanceView(accountId, balanceOf(lots.values(), unit, nowMs), nowMs) as unknown as Json;
  }

  listGrants(accountId: string, status: string | null): Outcome {
    const missing = this.missingAccount(accountId);
    if (missing) return missing;
    const nowMs = this.now();
    const grants = [...this.lots.values()]
      .sort((a, b) => a.createdOrder - b.createdOrder)
      .filter((lot) => status === null || lotStatus(lot, nowMs) === status)
      .map((lot) => grantView(lot, nowMs));
    return { ok: true, status: 200, body: { grants } as unknown as Json, replayed: false };
  }

  /** Entries after `afterSeq`, oldest first, at most `limit` (the caller bounds it). */
  ledger(accountId: string, afterSeq: number, limit: number): Outcome {
    const missing = this.missingAccount(accountId);
    if (missing) return missing;
    const rows = this.sql.exec("SELECT * FROM entries WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, limit + 1);
    const entries = rows.toArray().map((r) => entryFromRow(accountId, r));
    const more = entries.length > limit;
    const page = more ? entries.slice(0, limit) : entries;
    const next = more ? (page[page.length - 1]?.seq ?? null) : null;
    return { ok: true, status: 200, body: { entries: page, next_after_seq: next } as unknown as Json, replayed: false };
  }

  // ── idempotency ─────────────────────────────────────────────────────────

  /** The first result for this id, or a conflict; null when the id is new. */
  private recall(scope: Scope, idem: Idempotency): Outcome | null {
    const row = this.sql
      .exec("SELECT body_hash, status, response FROM idempotency WHERE scope = ? AND key = ?", scope, idem.key)
      .toArray()[0];
    if (!row) return null;
    if (String(row.body_hash) !== idem.bodyHash && scope !== "void") {
      return refuse({
        code: "idempotency_conflict",
        detail: `${scope} ${idem.key} was first sent with a different body`,
      });
    }
    return { ok: true, status: Number(row.status), body: JSON.parse(String(row.response)) as Json, replayed: true };
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
      (lots) => ({
        grant: grantView(lot, nowMs) as unknown as Json,
        balance: this.balanceJson(ctx.accountId, lot.unit, nowMs, lots),
      }),
      { scope: "grant", idem, status: 201 },
      true,
    );
  }

  voidGrant(ctx: OpContext, grantId: string, reason: string | null): Outcome {
    const missing = this.missingAccount(ctx.accountId);
    if (missing) return missing;
    const first = this.recall("void", { key: grantId, bodyHash: "" });
    if (first) return first;
    this.sweepDue(ctx);
    const lot = this.lots.get(grantId);
    if (!lot) return refuse({ code: "grant_not_found", detail: `grant ${grantId} does not exist` });
    const nowMs = this.now();
    const planned = planVoid(lot, reason, nowMs);
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    return this.commit(
      { ctx, lots: [planned.value.lot], entries: planned.value.entries },
      nowMs,
      (lots) => ({
        grant: grantView(planned.value.lot, nowMs) as unknown as Json,
        balance: this.balanceJson(ctx.accountId, lot.unit, nowMs, lots),
      }),
      { scope: "void", idem: { key: grantId, bodyHash: "" }, status: 200 },
    );
  }

  debit(ctx: OpContext, req: DrawRequest, idem: Idempotency): Outcome {
    const missing = this.missingAccount(ctx.accountId);
    if (missing) return missing;
    const first = this.recall("debit", idem);
    if (first) return first;
    this.sweepDue(ctx);
    const nowMs = this.now();
    const planned = planDebit(
      this.lots.values(),
      { ref: req.id, unit: req.unit, amount: req.amount },
      this.policy(ctx),
      nowMs,
    );
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    return this.commit(
      { ctx, lots: planned.value.lots, entries: planned.value.entries },
      nowMs,
      (lots) => ({
        debit_id: req.id,
        amount: req.amount,
        unit: req.unit,
        applied: appliedView(planned.value.applied),
        balance: this.balanceJson(ctx.accountId, req.unit, nowMs, lots),
      }),
      { scope: "debit", idem, status: 200 },
    );
  }

  /** A hold or a receipt: lots reserved in policy order until capture, release or deadline. */
  hold(ctx: OpContext, req: HoldRequest, idem: Idempotency, kind: "hold" | "receipt"): Outcome {
    const missing = this.missingAccount(ctx.accountId);
    if (missing) return missing;
    const first = this.recall(kind, idem);
    if (first) return first;
    this.sweepDue(ctx);
    if (this.holdExists(req.id)) {
      return refuse({ code: "idempotency_conflict", detail: `hold ${req.id} already exists` });
    }
    const nowMs = this.now();
    const planned = planReserve(
      this.lots.values(),
      { ref: req.id, unit: req.unit, amount: req.amount },
      this.policy(ctx),
      nowMs,
      kind,
    );
    if (!planned.ok) return refuse(fromLedgerError(planned.error));
    const hold: Hold = {
      holdId: req.id,
      kind,
      unit: req.unit,
      amount: req.amount,
      allocations: planned.value.applied.map((a: Applied) => ({ grantId: a.grantId, amount: a.amount })),
      status: "open",
      // A receipt stays held until its settle grace ends; then the sweep captures it in full.
      expiresAtMs: req.receipt ? req.receipt.expiresAtMs + req.receipt.settleGraceMs : nowMs + req.ttlSeconds * 1000,
      captured: 0,
      released: 0,
      createdAtMs: nowMs,
      closedAtMs: null,
    };
    return this.commit(
      { ctx, lots: planned.value.lots, holds: [hold], entries: planned.value.entries },
      nowMs,
      (lots) => {
        const balance = this.balanceJson(ctx.accountId, req.unit, nowMs, lots);
        const applied = appliedView(planned.value.applied);
        return req.receipt
          ? {
              receipt_id: req.id,
              receipt: req.receipt.token,
              amount: req.amount,
              unit: req.unit,
              expires_at: iso(req.receipt.expiresAtMs),
              applied,
              balance,
            }
          : {
              hold_id: req.id,
              amount: req.amount,
              unit: req.unit,
              status: "open",
              expires_at: iso(hold.expiresAtMs),
              applied,
              balance,
            };
      },
      { scope: kind, idem, status: 201 },
    );
  }

  /**
   * Settles a receipt: captures `used` and releases the rest. Settling again
   * with the same `used` answers the first result; with another, 409.
   */
  settleReceipt(ctx: OpContext, receiptId: string, used: number): Outcome {
    const missing = this.missingAccount(ctx.accountId);
    if (missing) return missing;
    const idem = { key: receiptId, bodyHash: String(used) };
    const row = this.sql
      .exec("SELECT body_hash FROM idempotency WHERE scope = 'receipt.settle' AND key = ?", receiptId)
      .toArray()[0];
    if (row && String(row.body_hash) !== idem.bodyHash) {
      return refuse({
        code: "receipt_settled",
        detail: `receipt ${receiptId} was already settled with used=${String(row.body_hash)}`,
      });
    }
    const first = this.recall("receipt.settle", idem);
    if (first) return first;
    if (this.getHold(receiptId)?.kind !== "receipt") {
      return refuse({ code: "receipt_not_found", detail: `receipt ${receiptId} does not exist` });
    }
    this.sweepDue(ctx);
    const hold = this.getHold(receiptId);
    if (hold?.kind !== "receipt") {
      return refuse({ code: "receipt_not_found", detail: `receipt ${receiptId} does not exist` });
    }
    if (hold.status !== "open") {
      // Captured in full by the sweep: settling with that same use answers as a replay.
      if (used === hold.captured) {
        const nowMs = this.now();
        const body = {
          receipt_id: receiptId,
          used,
          released: hold.released,
          balance: this.balanceJson(ctx.accountId, hold.unit, nowMs),
        };
        return { ok: true, status: 200, body, replayed: true };
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
      (lots) => ({
        receipt_id: receiptId,
        used: closed.captured,
        released: closed.released,
        balance: this.balanceJson(ctx.accountId, hold.unit, nowMs, lots),
      }),
      { scope: "receipt.settle", idem, status: 200 },
    );
  }

  private holdExists(holdId: string): boolean {
    return (
      this.openHolds.has(holdId) || this.sql.exec("SELECT 1 FROM holds WHERE hold_id = ?", holdId).toArray().length > 0
    );
  }

  getHold(holdId: string): Hold | null {
    const open = this.openHolds.get(holdId);
    if (open) return open;
    const row = this.sql.exec("SELECT * FROM holds WHERE hold_id = ?", holdId).toArray()[0];
    return row ? holdFromRow(row) : null;
  }

  /**
   * Captures `capture` of an open hold (null: all of it) and releases the rest,
   * or releases it all. Repeating the same close answers the first result.
   */
  closeHold(ctx: OpContext, holdId: string, action: "capture" | "release", capture: number | null): Outcome {
    const missing = this.missingAccount(ctx.accountId);
    if (missing) return missing;
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
      return { ok: true, status: 200, body: this.closeView(ctx.accountId, hold, action, this.now()), replayed: true };
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
      (lots) => this.closeView(ctx.accountId, closed, action, nowMs, lots),
      { scope, idem, status: 200 },
    );
  }

  private closeView(
    accountId: string,
    hold: Hold,
    action: "capture" | "release",
    nowMs: number,
    lots: ReadonlyMap<string, Lot> = this.lots,
  ): Json {
    const balance = this.balanceJson(accountId, hold.unit, nowMs, lots);
    return action === "capture"
      ? { hold_id: hold.holdId, status: hold.status, captured: hold.captured, released: hold.released, balance }
      : { hold_id: hold.holdId, status: hold.status, released: hold.released, balance };
  }

  holdStatus(accountId: string, holdId: string): Outcome {
    const missing = this.missingAccount(accountId);
    if (missing) return missing;
    const hold = this.getHold(holdId);
    if (!hold) return refuse({ code: "hold_not_found", detail: `hold ${holdId} does not exist` });
    return { ok: true, status: 200, body: holdView(hold) as unknown as Json, replayed: false };
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
      const planned = planCloseHold(
        this.lots,
        hold,
        capture ? hold.amount : 0,
        nowMs,
        capture ? "captured" : "released",
      );
      if (!planned.ok) continue;
      const { lots, hold: closed, entries } = planned.value;
      this.commit({ ctx: sweep, lots, holds: [closed], entries }, nowMs, () => null);
      swept++;
    }
    return swept;
  }

  /**
   * Assigns seqs, ids and hashes, then writes state + entries + outbox rows +
   * the idempotency record in one transaction. Memory changes only after the
   * transaction commits.
   */
  private commit(
    m: Mutation,
    nowMs: number,
    respond: (lots: ReadonlyMap<string, Lot>) => unknown,
    remember?: { scope: Scope; idem: Idempotency; status: number },
    createsAccount = false,
  ): Outcome {
    const txnId = `txn_${crypto.randomUUID()}`;
    let prevHash = this.headHash;
    let seq = this.headSeq;
    const entries: Entry[] = m.entries.map((d, i) => {
      seq++;
      const unhashed: Omit<Entry, "hash"> = {
        account_id: m.ctx.accountId,
        seq,
        entry_id: `${txnId}.${i}`,
        txn_id: txnId,
        kind: d.kind,
        unit: d.unit,
        amount: d.amount,
        held_delta: d.heldDelta,
        grant_id: d.grantId,
        credit_type: d.creditType,
        ref: d.ref,
        actor: m.ctx.actor,
        reason: d.reason,
        effective_at: iso(d.effectiveAtMs),
        recorded_at: iso(nowMs),
        prev_hash: prevHash,
      };
      const entry: Entry = { ...unhashed, hash: entryHash(unhashed) };
      prevHash = entry.hash;
      return entry;
    });
    // The response reflects the state after the change: compute it on a staged view.
    const staged = new Map(this.lots);
    for (const lot of m.lots ?? []) staged.set(lot.grantId, lot);
    const body = respond(staged) as Json;
    let created: AccountRecord | null = null;
    const raised = this.alertsFor(
      m.ctx.accountId,
      this.account?.low_balance ?? null,
      m.entries,
      staged,
      nowMs,
      `alert_${txnId}`,
    );
    this.ctx.storage.transactionSync(() => {
      if (createsAccount) created = this.ensureAccount(m.ctx.accountId, nowMs);
      for (const lot of m.lots ?? []) writeLot(this.sql, lot);
      for (const hold of m.holds ?? []) writeHold(this.sql, hold);
      for (const entry of entries) {
        writeEntry(this.sql, entry);
        this.enqueue({ topic: "entry", payload: entry });
      }
      this.writeAlerts(raised);
      for (const lot of m.lots ?? []) {
        if (indexChanged(this.lots.get(lot.grantId), lot)) {
          this.enqueue({ topic: "grant", payload: { account_id: m.ctx.accountId, ...grantView(lot, nowMs) } });
        }
      }
      if (remember) {
        this.sql.exec(
          "INSERT INTO idempotency (scope, key, body_hash, status, response, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
          remember.scope,
          remember.idem.key,
          remember.idem.bodyHash,
          remember.status,
          JSON.stringify(body),
          nowMs,
        );
      }
    });
    if (created) this.account = created;
    for (const lot of m.lots ?? []) this.lots.set(lot.grantId, lot);
    if (m.holds?.length) {
      for (const hold of m.holds) {
        if (hold.status === "open") this.openHolds.set(hold.holdId, hold);
        else this.openHolds.delete(hold.holdId);
      }
      this.holdDeadlineMs = earliestDeadline(this.openHolds.values());
    }
    this.headSeq = seq;
    this.headHash = prevHash;
    this.lowBalance = raised.lowBalance;
    this.scheduleAlarm(nowMs + OUTBOX_DELAY_MS);
    const write = { op: remember?.scope ?? m.ctx.actor, entries: entries.length, head_seq: seq };
    // A write a request asked for is logged once, in that request's line at the
    // gateway (with its latency); writes of the DO's own jobs are logged here.
    if (m.ctx.actor.startsWith("system:")) {
      log({
        event: "ledger.write",
        request_id: m.ctx.requestId,
        account_id: m.ctx.accountId,
        actor: m.ctx.actor,
        ...write,
      });
    }
    return { ok: true, status: remember?.status ?? 200, body, replayed: false, write };
  }

  /** The alerts a change raises (balance.low crossings, credits.expired): rules in src/ledger/alerts.ts. */
  private alertsFor(
    accountId: string,
    thresholds: Record<string, number> | null,
    drafts: readonly EntryDraft[],
    lots: ReadonlyMap<string, Lot>,
    nowMs: number,
    idPrefix: string,
  ): { alerts: AlertRecord[]; lowBalance: LowBalanceState; lowChanged: boolean } {
    const low = lowBalanceCrossings(
      thresholds,
      this.lowBalance,
      (unit) => balanceOf(lots.values(), unit, nowMs).available,
      nowMs,
    );
    const alerts = alertRecords([...low.alerts, ...expiredAlerts(drafts, nowMs)], accountId, idPrefix);
    return { alerts, lowBalance: low.state, lowChanged: low.changed };
  }

  /** Inside a transaction: alerts ride the outbox to D1 like entries. */
  private writeAlerts(raised: { alerts: AlertRecord[]; lowBalance: LowBalanceState; lowChanged: boolean }): void {
    for (const alert of raised.alerts) this.enqueue({ topic: "alert", payload: alert });
    if (raised.lowChanged) this.writeMeta("low_balance_state", raised.lowBalance);
  }

  private enqueue(item: Outbox): void {
    this.sql.exec("INSERT INTO outbox (topic, payload) VALUES (?, ?)", item.topic, canonicalJson(item.payload));
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
    const shipped = await this.shipOnce();
    if (!shipped.ok) {
      this.shipFailures++;
      const backoffMs = Math.min(300_000, 1000 * 2 ** Math.min(this.shipFailures, 9));
      log({
        event: "outbox.retry",
        account_id: this.account?.account_id ?? null,
        attempt: this.shipFailures,
        backoff_ms: backoffMs,
        code: "d1_unavailable",
        error: shipped.error,
      });
      this.scheduleAlarm(this.now() + backoffMs);
      return;
    }
    this.shipFailures = 0;
    if (shipped.more) this.scheduleAlarm(this.now());
    const next = this.nextDeadline();
    if (next !== null) this.scheduleAlarm(next);
  }

  private shipping: ReturnType<typeof shipOutbox> | null = null;

  /**
   * One shipper at a time. The DO takes other calls while a batch awaits D1,
   * so without this the alarm and drain() could ship the same rows and an
   * older account/grant upsert could land after a newer one.
   */
  private shipOnce(): ReturnType<typeof shipOutbox> {
    this.shipping ??= shipOutbox(this.sql, this.d1, this.account?.account_id ?? null, this.onAlerts).finally(() => {
      this.shipping = null;
    });
    return this.shipping;
  }

  /** Drains the outbox now (tests and the cron re-drive call this). */
  async drain(): Promise<{ ok: boolean; pending: number }> {
    for (let i = 0; i < 100; i++) {
      const shipped = await this.shipOnce();
      if (!shipped.ok) return { ok: false, pending: this.pendingOutbox() };
      if (!shipped.more) break;
    }
    return { ok: true, pending: this.pendingOutbox() };
  }

  pendingOutbox(): number {
    return Number(this.sql.exec("SELECT count(*) AS n FROM outbox").one().n);
  }

  /** Shipped alerts fan out to webhooks at once; the cron's dispatch job catches any this misses. */
  private readonly onAlerts = (ids: string[]) => dispatchAlerts(this.d1, this.env.WEBHOOK_QUEUE, { ids });

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

  private nextDeadline(): number | null {
    const nowMs = this.now();
    let next = nextExpiryMs(this.lots.values(), nowMs);
    for (const h of this.openHolds.values()) if (next === null || h.expiresAtMs < next) next = h.expiresAtMs;
    return next;
  }
}
