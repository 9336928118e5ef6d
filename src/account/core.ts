/**
 * An account's state in memory (a cache of its SQLite tables, rebuilt on
 * wake) and the one way it changes: `commit`, which seals entries onto the
 * chain and writes everything in one transactionSync. Operations live in
 * writes.ts, hold-ops.ts and reads.ts; the Durable Object only routes to them.
 */
import {
  type AlertDraft,
  type CreditType,
  canonicalJson,
  type EntryDraft,
  effectivePolicy,
  GENESIS_HASH,
  grantView,
  type Hold,
  journalRows,
  type Lot,
  LotBook,
  type LowBalanceState,
  type Policy,
  type PolicyOverrides,
  planCloseHold,
  type RaisedAlerts,
  raiseAlerts,
  sealEntries,
} from "../ledger";
import type { AwaitingGrant } from "../ledger/awaiting";
import type { VelocityTally } from "../ledger/velocity";
import { log } from "../log";
import { accountRecord, earliestDeadline, indexChanged } from "./records";
import * as store from "./storage";
import type { AccountRecord, Idempotency, Json, OpContext, Outcome } from "./types";
import { VelocityBook } from "./velocity";
import { answer, refuse } from "./views";

export type Scope =
  | "grant"
  | "debit"
  | "hold"
  | "receipt"
  | "void"
  | "hold.capture"
  | "hold.release"
  | "receipt.settle"
  | "invoice"
  | "invoice.void"
  | "refund";

export interface Mutation {
  ctx: OpContext;
  lots?: Lot[];
  holds?: Hold[];
  entries: EntryDraft[];
  debit?: store.Change["debit"];
  invoice?: store.Change["invoice"];
  /** What this draw adds to the velocity windows (velocity.ts); written in the same transaction. */
  velocity?: VelocityTally | undefined;
  /** Alerts the operation raises itself (e.g. grant.activated), shipped with the change. */
  alerts?: AlertDraft[];
  /** The operation's own rows (e.g. a recurring schedule's cursor), written inside the same transaction. */
  write?: () => void;
  /** Runs after the transaction committed: the operation's memory catches up with what `write` stored. */
  applied?: () => void;
}

/**
 * What a commit hook adds to a change it looked at: alerts, rows written in
 * the same transaction, and memory updated once it commits. Hooks see every
 * change that writes entries (after the operation planned it, before it is
 * written): automatic top-up (topup.ts) and referral rewards use them.
 */
export interface HookEffect {
  alerts?: AlertDraft[];
  write?: () => void;
  applied?: () => void;
}
export type CommitHook = (m: Mutation, staged: LotBook, nowMs: number) => HookEffect | null;

/** What a commit's transaction wrote, for memory to catch up with once it committed. */
interface Committed {
  sealed: ReturnType<typeof sealEntries>;
  recordedMs: number;
  raised: RaisedAlerts;
  created: AccountRecord | null;
  effects: readonly HookEffect[];
  body: Json;
}

export interface Remember {
  scope: Scope;
  idem: Idempotency;
  status: number;
}

/** The refusal when neither the caller nor this account knows the global policy. */
export const POLICY_UNKNOWN = refuse({
  code: "overloaded",
  detail: "the global policy cannot be read right now and this account has not seen it yet; retry",
});

export class AccountCore {
  /** Every lot, indexed per unit for draws and balances (src/ledger/lot-book.ts). */
  readonly lots = new LotBook();
  readonly openHolds = new Map<string, Hold>();
  account: AccountRecord | null = null;
  overrides: PolicyOverrides = {};
  /** Units whose balance.low alert has fired and not re-armed yet. */
  private lowBalance: LowBalanceState = {};
  headSeq = 0;
  headHash = GENESIS_HASH;
  /** recorded_at of the last entry: recording never goes back in time along the chain. */
  private headRecordedMs = 0;
  /** The earliest deadline among open holds (null: none open). */
  private holdDeadlineMs: number | null = null;
  /** The last global policy a caller brought, kept so a D1 outage never falls back to defaults. */
  private lastGlobal: { policy: Policy; json: string } | null = null;
  /** The object the last caller brought, already compared with `lastGlobal`. */
  private lastSeen: Policy | null = null;
  private lastSeenJson: string | null = null; // its JSON.stringify text (see globalPolicy)
  /** Test seam: tests move this account's clock with runInDurableObject. */
  readonly clock = { offsetMs: 0 };
  /** Test seam (reachable only through runInDurableObject): a throw injected inside a commit's transaction. */
  readonly faults: { beforeRecord?: () => void } = {};
  /** Velocity buckets of the units with a limit (velocity.ts). */
  readonly velocity: VelocityBook;
  /** Called by every commit that writes entries, in order (see CommitHook); registered at construction. */
  readonly hooks: CommitHook[] = [];
  /**
   * Work that falls due with time and must be done before an operation draws
   * or reads (a recurring grant's new period, its rollover): run first by
   * sweepDue, so the outcome never depends on when the alarm fires.
   */
  readonly dueWork: ((ctx: OpContext, nowMs: number) => void)[] = [];
  /** Lot ids a feature will issue itself (a recurring grant's `<recurring_id>.<n>`): no other grant may take them. */
  readonly reservedIds: ((grantId: string) => boolean)[] = [];
  /** Lots whose expiry a feature settles itself (a period's rollover): the generic expiry pass leaves them. */
  readonly settlesExpiry: ((lot: Lot) => boolean)[] = [];
  /**
   * Grants awaiting payment still open, in creation order (at most
   * AWAITING_OPEN_MAX; kept by awaiting.ts, rebuilt on wake): every balance
   * body lists them, so its callers pass them to balanceJson.
   */
  readonly awaitingOpen = new Map<string, AwaitingGrant>();

  constructor(
    readonly sql: SqlStorage,
    private readonly transact: (write: () => void) => void,
    /** Called after every commit with the time the outbox should ship. */
    private readonly committed: (shipAtMs: number) => void,
  ) {
    this.velocity = new VelocityBook(sql);
    this.lots.load(store.readLots(sql));
    for (const hold of store.readOpenHolds(sql)) this.openHolds.set(hold.holdId, hold);
    this.holdDeadlineMs = earliestDeadline(this.openHolds.values());
    const head = store.readHead(sql);
    if (head) {
      this.headSeq = head.seq;
      this.headHash = head.hash;
      this.headRecordedMs = head.recordedAtMs;
    }
    this.account = store.readMeta<AccountRecord>(sql, "account");
    this.overrides = store.readMeta<PolicyOverrides>(sql, "policy") ?? {};
    this.lowBalance = store.readMeta<LowBalanceState>(sql, "low_balance_state") ?? {};
    const global = store.readMeta<Policy>(sql, "global_policy");
    if (global) this.lastGlobal = { policy: global, json: canonicalJson(global) };
  }

  /** Whether `grantId` is taken: by a lot, or reserved by a feature for a lot it will issue. */
  idTaken(grantId: string): boolean {
    return this.lots.has(grantId) || this.reservedIds.some((reserved) => reserved(grantId));
  }

  now(): number {
    return Date.now() + this.clock.offsetMs;
  }

  /**
   * The global policy for this operation: the caller's (remembered when it
   * changed), else the last one this account saw; null when neither exists.
   */
  globalPolicy(seen: Policy | null): Policy | null {
    if (seen === null) return this.lastGlobal?.policy ?? null;
    // One operation asks with the same object more than once (its policy, then its commit).
    if (seen === this.lastSeen) return seen;
    this.lastSeen = seen;
    // Every RPC brings a fresh copy of the same policy: the same plain JSON is the
    // same policy, so the canonical form is computed only when that text changes.
    const plain = JSON.stringify(seen);
    if (plain === this.lastSeenJson) return seen;
    this.lastSeenJson = plain;
    const json = canonicalJson(seen);
    if (this.lastGlobal?.json !== json) {
      store.writeMeta(this.sql, "global_policy", seen);
      this.lastGlobal = { policy: seen, json };
    }
    return seen;
  }

  /** The effective policy (global merged with this account's overrides); null: unknown. */
  policy(ctx: OpContext): Policy | null {
    const global = this.globalPolicy(ctx.globalPolicy);
    return global === null ? null : effectivePolicy(global, this.overrides);
  }

  /**
   * Why a grant of `type` may not be issued to this account now: the policy
   * requires a verified account for promotional credits and this one is not
   * (403 account_not_verified), or the policy is unknown; null when it may.
   * Every path that issues a lot asks this one question.
   */
  grantTypeRefusal(ctx: OpContext, type: CreditType): Outcome | null {
    if (type !== "promotional") return null;
    const policy = this.policy(ctx);
    if (policy === null) return POLICY_UNKNOWN;
    if (policy.require_verified_for_promotional && !this.account?.verified) {
      return refuse({
        code: "account_not_verified",
        detail: "promotional grants need a verified account under the current policy",
      });
    }
    return null;
  }

  /** The first result for this id, or a conflict; null when the id is new. */
  recall(scope: Scope, idem: Idempotency): Outcome | null {
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

  /**
   * Closes every open hold past its deadline: receipts are captured in full,
   * holds per the policy's hold_on_expiry. Runs before any operation that
   * closes holds or draws credits, so the outcome never depends on when the
   * alarm fires. Returns how many it closed, or null when a hold is due and
   * the policy that decides its fate is unknown.
   */
  sweepDue(ctx: OpContext): number | null {
    const nowMs = this.now();
    for (const work of this.dueWork) work(ctx, nowMs);
    if (this.holdDeadlineMs === null || this.holdDeadlineMs > nowMs) return 0;
    const policy = this.policy(ctx);
    if (policy === null) return null;
    const sweep: OpContext = { ...ctx, actor: "system:sweep" };
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

  /** Writes the account row on its own (an upsert), with the alerts a new threshold raises. */
  saveAccount(next: AccountRecord, nowMs: number): void {
    const txnId = `txn_${crypto.randomUUID()}`;
    const raised = this.raise(next.account_id, next.low_balance, [], this.lots, nowMs, `alert_${txnId}`);
    this.transact(() => store.writeChange(this.sql, { txnId, account: next, raised }, nowMs));
    this.account = next;
    this.lowBalance = raised.lowBalance;
    this.committed(nowMs);
  }

  /**
   * Seals the drafts onto the chain, then writes state + entries + outbox rows
   * + the idempotency record in one transaction. Memory changes only after
   * the transaction commits, so a throw inside it leaves the cache true to SQLite.
   */
  commit(
    m: Mutation,
    nowMs: number,
    respond: (lots: LotBook) => unknown,
    remember?: Remember,
    createsAccount = false,
  ): Outcome {
    const { accountId, actor } = m.ctx;
    // Remember the global policy whenever a caller brings one, so a later D1 outage never guesses.
    this.globalPolicy(m.ctx.globalPolicy);
    const txnId = `txn_${crypto.randomUUID()}`;
    const recordedMs = Math.max(nowMs, this.headRecordedMs);
    const head = { headSeq: this.headSeq, headHash: this.headHash };
    const sealed = sealEntries(m.entries, { accountId, actor, txnId, ...head, nowMs: recordedMs });
    const lots = m.lots ?? [];
    // The response reflects the state after the change: the book takes the lots
    // now (no copy of it), and gives them back if anything below throws.
    const before = lots.map((lot) => this.lots.get(lot.grantId));
    const prior = new Map(lots.map((lot, i) => [lot.grantId, before[i]]));
    for (const lot of lots) this.lots.set(lot);
    const staged = this.lots;
    let done: Committed;
    try {
      const body = respond(staged) as Json;
      const effects: HookEffect[] = [{ alerts: m.alerts, write: m.write, applied: m.applied }];
      if (m.entries.length > 0) {
        for (const hook of this.hooks) {
          const effect = hook(m, staged, nowMs);
          if (effect) effects.push(effect);
        }
      }
      const extra = effects.flatMap((e) => e.alerts ?? []);
      const thresholds = this.account?.low_balance ?? null;
      const raised = this.raise(accountId, thresholds, m.entries, staged, nowMs, `alert_${txnId}`, extra);
      const created = createsAccount && this.account === null ? accountRecord(null, accountId, {}, nowMs) : null;
      const change: store.Change = {
        txnId,
        account: created,
        lots,
        holds: m.holds ?? [],
        entries: sealed.entries,
        journal: journalRows(
          sealed.entries,
          (id) => (prior.has(id) ? prior.get(id) : staged.get(id)),
          (id) => staged.get(id),
        ),
        debit: m.debit ?? null,
        invoice: m.invoice ?? null,
        beforeRecord: this.faults.beforeRecord,
        raised,
        grantRows: lots
          .filter((lot) => indexChanged(prior.get(lot.grantId), lot))
          .map((lot) => ({ account_id: accountId, ...grantView(lot, nowMs) })),
        idempotency: remember ? { ...remember.idem, scope: remember.scope, status: remember.status, body } : null,
      };
      this.transact(() => {
        store.writeChange(this.sql, change, nowMs);
        if (m.velocity) this.velocity.write(m.velocity);
        for (const e of effects) e.write?.();
      });
      done = { sealed, recordedMs, raised, created, effects, body };
    } catch (e) {
      this.lots.restore(lots, before);
      throw e;
    }
    return this.afterCommit(m, nowMs, done, remember);
  }

  /** Memory catches up with what the transaction wrote. */
  private afterCommit(m: Mutation, nowMs: number, done: Committed, remember: Remember | undefined): Outcome {
    const { accountId, actor } = m.ctx;
    const { sealed, recordedMs, raised, created, effects, body } = done;
    if (m.velocity) this.velocity.applied(m.velocity);
    for (const e of effects) e.applied?.();
    if (created) this.account = created;
    if (m.holds?.length) {
      for (const hold of m.holds) {
        if (hold.status === "open") this.openHolds.set(hold.holdId, hold);
        else this.openHolds.delete(hold.holdId);
      }
      this.holdDeadlineMs = earliestDeadline(this.openHolds.values());
    }
    this.headSeq = sealed.headSeq;
    this.headHash = sealed.headHash;
    if (sealed.entries.length > 0) this.headRecordedMs = recordedMs;
    this.lowBalance = raised.lowBalance;
    this.committed(nowMs);
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
    lots: LotBook,
    nowMs: number,
    idPrefix: string,
    extra: readonly AlertDraft[] = [],
  ): RaisedAlerts {
    const lowBalance = this.lowBalance;
    const lotOf = (id: string) => lots.get(id);
    return raiseAlerts({
      accountId,
      thresholds,
      lowBalance,
      drafts,
      lots,
      nowMs,
      idPrefix,
      extra,
      lotOf,
    });
  }
}
