/**
 * Automatic top-up on one account (rules: src/ledger/topup.ts). Rules live in
 * the `topup_rules` table, one per unit, with what the rule requested this
 * month. A commit hook looks at every change that writes entries: for each
 * rule whose unit the change touched, it reads `available` on the staged
 * lots and, when a top-up is due, adds to that same transaction one grant
 * awaiting payment (`topup.<n>`) and a `topup.requested` alert.
 *
 * A rule set while the account is already below `below` requests nothing
 * until the next operation with entries in its unit (PUT writes no entry).
 *
 * DELETE keeps the unit's row, marked deleted, with its month tally and
 * revision: a PUT after a DELETE carries on from the same tally, so deleting
 * and setting a rule again never lets a month request past max_per_month.
 * Every PUT and DELETE moves the row's `revision` on; an approval of a rule
 * (src/api/topup.ts) names the revision it replaces.
 */
import type { AlertDraft, CostBasis, LotBook } from "../ledger";
import { AWAITING_OPEN_MAX, type AwaitingGrant } from "../ledger/awaiting";
import {
  addRequest,
  decideTopUp,
  monthStartUtc,
  requestedThisMonth,
  ruleHash,
  type TopUpMonth,
  type TopUpRule,
  takeBack,
} from "../ledger/topup";
import { log } from "../log";
import type { AwaitingDesk } from "./awaiting";
import type { AccountCore, HookEffect, Mutation } from "./core";
import { readMeta, writeMeta } from "./storage";
import type { Outcome } from "./types";
import { answer, missingAccount, refuse } from "./views";

/** An account keeps at most this many top-up rules, one per unit (a deleted rule's row counts: it keeps its month). */
export const TOPUP_RULES_MAX = 32;
/** Ids tried for a new top-up grant past ones already taken (a client may have used `topup.<n>` itself). */
export const TOPUP_ID_PROBES = 100;
/** The priority of a top-up grant's lot (the grants' default). */
const TOPUP_PRIORITY = 100;

export interface TopUpInput {
  unit: string;
  below: number;
  amount: number;
  max_per_month?: number | null;
  grant: { type: "purchased"; cost_basis?: CostBasis | null; expires_in_days?: number | null };
  /**
   * Set by an approved request (src/api/topup.ts): the revision of the rule
   * it was asked to replace. When the rule has moved on since (and is not
   * already this one), the PUT is refused, so an old approval never
   * overwrites a newer rule.
   */
  expect_revision?: number;
}

/** A rule as stored (`topup_rules.rule`): its terms and times, its terms' hash, revision, and whether it was deleted. */
interface StoredRule extends TopUpRule {
  hash?: string;
  revision?: number;
  deleted?: boolean;
}

interface RuleState {
  rule: TopUpRule;
  month: TopUpMonth | null;
  /** ruleHash of the terms. */
  hash: string;
  /** Moves on with every PUT and DELETE of the unit (0: never set). */
  revision: number;
  /** DELETE: no more requests; the row stays for its month and revision. */
  deleted: boolean;
}

/** No live rule for `unit`: 404, with the unit row's revision (0: never set) for the route's approval key. */
const noRule = (unit: string, revision: number): Outcome =>
  refuse({ code: "not_found", detail: `no top-up rule for unit ${unit}`, extra: { revision } });

export class TopUpDesk {
  private readonly rules = new Map<string, RuleState>();
  /** The last n used (or found taken) for `topup.<n>` (meta `topup_counter`). */
  private counter: number;
  /** Whether `topup.skipped` (open records full) was logged since the last request: logged once per state change. */
  private fullLogged = false;

  constructor(
    private readonly core: AccountCore,
    private readonly awaiting: AwaitingDesk,
  ) {
    const rows = core.sql.exec("SELECT rule, month FROM topup_rules ORDER BY unit LIMIT ?", TOPUP_RULES_MAX).toArray();
    for (const row of rows) {
      const { hash, revision, deleted, ...rule } = JSON.parse(String(row.rule)) as StoredRule;
      const month = row.month === null ? null : (JSON.parse(String(row.month)) as TopUpMonth);
      this.rules.set(rule.unit, {
        rule,
        month,
        hash: hash ?? ruleHash(rule),
        revision: revision ?? 1,
        deleted: deleted ?? false,
      });
    }
    this.counter = readMeta<number>(core.sql, "topup_counter") ?? 0;
    awaiting.onClosed.push((closed) => this.cancelled(closed));
  }

  /**
   * PUT /v1/accounts/{id}/top-up: sets (or replaces) the rule of `input.unit`;
   * the month's tally is kept, also across a DELETE. With `expect_revision`
   * (an approved request): refused when the rule moved on since it was asked,
   * answered as it stands (replayed, nothing written) when it is already this rule.
   */
  put(accountId: string, input: TopUpInput): Outcome {
    if (this.core.account === null) return missingAccount(accountId);
    const maxPerMonth = input.max_per_month ?? null;
    if (maxPerMonth !== null && input.amount > maxPerMonth) {
      return refuse({ code: "invalid_request", detail: "amount may not exceed max_per_month: no top-up could fit" });
    }
    const before = this.rules.get(input.unit);
    if (!before && this.rules.size >= TOPUP_RULES_MAX) {
      return refuse({ code: "invalid_request", detail: `an account has at most ${TOPUP_RULES_MAX} top-up rules` });
    }
    const nowMs = this.core.now();
    const terms = {
      unit: input.unit,
      below: input.below,
      amount: input.amount,
      maxPerMonth,
      grant: {
        type: "purchased" as const,
        costBasis: input.grant.cost_basis ?? null,
        expiresInDays: input.grant.expires_in_days ?? null,
      },
    };
    const hash = ruleHash(terms);
    const revision = before?.revision ?? 0;
    if (input.expect_revision !== undefined && input.expect_revision !== revision) {
      if (before && !before.deleted && before.hash === hash) return answer(this.view(before, nowMs), 200, true);
      return refuse({
        code: "idempotency_conflict",
        detail: `the top-up rule of ${input.unit} changed since this was asked (revision ${input.expect_revision}, now ${revision}); ask again`,
      });
    }
    const live = before && !before.deleted ? before : undefined;
    const rule: TopUpRule = { ...terms, createdAtMs: live?.rule.createdAtMs ?? nowMs, updatedAtMs: nowMs };
    const state: RuleState = { rule, month: before?.month ?? null, hash, revision: revision + 1, deleted: false };
    this.writeRule(state);
    this.rules.set(rule.unit, state);
    return answer(this.view(state, nowMs));
  }

  /**
   * The rule of `unit`. A deleted rule answers 404 like one never set, but
   * with `revision` in the problem (the route keys an approval by it).
   */
  get(accountId: string, unit: string): Outcome {
    if (this.core.account === null) return missingAccount(accountId);
    const state = this.rules.get(unit);
    if (!state || state.deleted) return noRule(unit, state?.revision ?? 0);
    return answer(this.view(state, this.core.now()));
  }

  /** DELETE: no more requests in `unit`; a request outstanding stays for the payment system to settle. */
  remove(accountId: string, unit: string): Outcome {
    if (this.core.account === null) return missingAccount(accountId);
    const state = this.rules.get(unit);
    if (!state || state.deleted) return noRule(unit, state?.revision ?? 0);
    // The row stays, marked deleted, with its month: a PUT again carries on from the same tally.
    const next: RuleState = { ...state, revision: state.revision + 1, deleted: true };
    this.writeRule(next);
    this.rules.set(unit, next);
    return answer({ ...this.view(next, this.core.now()), deleted: true });
  }

  /** The commit hook (core.hooks): requests a top-up for each rule the change left below its threshold. */
  readonly hook = (m: Mutation, staged: LotBook, nowMs: number): HookEffect | null => {
    if (this.rules.size === 0) return null;
    const units = new Set(m.entries.map((e) => e.unit));
    const effects: HookEffect[] = [];
    let counter = this.counter;
    // Records this call stages count towards AWAITING_OPEN_MAX with the open ones.
    let added = 0;
    for (const state of this.rules.values()) {
      if (state.deleted || !units.has(state.rule.unit)) continue;
      const out = this.request(m.ctx.accountId, state, staged, nowMs, counter, added);
      counter = out.n;
      if (out.effect) {
        added++;
        effects.push(out.effect);
      }
    }
    if (effects.length === 0 && counter === this.counter) return null;
    return {
      alerts: effects.flatMap((e) => e.alerts ?? []),
      write: () => {
        for (const e of effects) e.write?.();
        writeMeta(this.core.sql, "topup_counter", counter);
      },
      applied: () => {
        for (const e of effects) e.applied?.();
        this.counter = counter;
      },
    };
  };

  private request(
    accountId: string,
    state: RuleState,
    staged: LotBook,
    nowMs: number,
    counter: number,
    added: number,
  ): { n: number; effect: HookEffect | null } {
    const { rule } = state;
    const available = staged.available(rule.unit, nowMs);
    const outstanding = this.outstanding(rule.unit) !== null;
    const decision = decideTopUp(rule, available, outstanding, state.month, nowMs);
    if (!decision.request) return { n: counter, effect: null };
    if (this.awaiting.openRecords.size + added >= AWAITING_OPEN_MAX) {
      // Logged once until a request goes through again, not on every commit while full.
      if (!this.fullLogged) {
        log({ event: "topup.skipped", account_id: accountId, unit: rule.unit, why: "awaiting_open_max" });
        this.fullLogged = true;
      }
      return { n: counter, effect: null };
    }
    // Taken ids are passed for good: the counter moves past them (stored with this commit), so each is probed once.
    let n = counter;
    let grantId = "";
    for (let probe = 0; probe < TOPUP_ID_PROBES; probe++) {
      n++;
      if (!this.awaiting.taken(`topup.${n}`)) {
        grantId = `topup.${n}`;
        break;
      }
    }
    if (grantId === "") {
      log({
        event: "topup.skipped",
        account_id: accountId,
        unit: rule.unit,
        why: "ids_taken",
        after: counter,
        next: n,
      });
      return { n, effect: null };
    }
    const record: AwaitingGrant = {
      grantId,
      command: {
        grantId,
        unit: rule.unit,
        type: "purchased",
        amount: decision.amount,
        priority: TOPUP_PRIORITY,
        effectiveAtMs: null,
        expiresAtMs: null,
        source: "top-up",
        reason: "automatic top-up",
        campaign: null,
        incidentId: null,
        costBasis: rule.grant.costBasis,
        metadata: null,
        sourceGrantId: null,
      },
      expiresInDays: rule.grant.expiresInDays,
      topup: true,
      status: "awaiting_payment",
      createdAtMs: nowMs,
      closedAtMs: null,
      paymentRef: null,
      cancelReason: null,
    };
    const alert: AlertDraft = {
      type: "topup.requested",
      unit: rule.unit,
      data: {
        grant_id: grantId,
        unit: rule.unit,
        amount: decision.amount,
        available,
        below: rule.below,
        month_total: decision.monthTotal,
        max_per_month: rule.maxPerMonth,
        cost_basis_amount: rule.grant.costBasis?.amount ?? null,
        cost_basis_currency: rule.grant.costBasis?.currency ?? null,
      },
      atMs: nowMs,
    };
    const next: RuleState = { ...state, month: addRequest(state.month, decision.amount, nowMs) };
    const staging = this.awaiting.stage(record);
    return {
      n,
      effect: {
        alerts: [alert],
        write: () => {
          staging.write();
          this.writeRule(next);
        },
        applied: () => {
          staging.applied();
          this.rules.set(rule.unit, next);
          this.fullLogged = false;
          log({
            event: "topup.requested",
            account_id: accountId,
            grant_id: grantId,
            unit: rule.unit,
            amount: rule.amount,
          });
        },
      },
    };
  }

  /** A cancelled top-up no longer counts towards its month. */
  private cancelled(closed: AwaitingGrant): HookEffect | null {
    if (!closed.topup || closed.status !== "cancelled") return null;
    const state = this.rules.get(closed.command.unit);
    if (!state) return null;
    const next: RuleState = { ...state, month: takeBack(state.month, closed.command.amount, closed.createdAtMs) };
    return {
      write: () => this.writeRule(next),
      applied: () => this.rules.set(closed.command.unit, next),
    };
  }

  /** The top-up request of `unit` awaiting payment, if any (one at a time). */
  private outstanding(unit: string): string | null {
    for (const r of this.awaiting.openRecords.values()) if (r.topup && r.command.unit === unit) return r.grantId;
    return null;
  }

  private writeRule(state: RuleState): void {
    this.core.sql.exec(
      `INSERT INTO topup_rules (unit, rule, month) VALUES (?, ?, ?)
       ON CONFLICT (unit) DO UPDATE SET rule = excluded.rule, month = excluded.month`,
      state.rule.unit,
      JSON.stringify({
        ...state.rule,
        hash: state.hash,
        revision: state.revision,
        deleted: state.deleted,
      } as StoredRule),
      state.month === null ? null : JSON.stringify(state.month),
    );
  }

  private view(state: RuleState, nowMs: number) {
    const { rule } = state;
    return {
      unit: rule.unit,
      below: rule.below,
      amount: rule.amount,
      max_per_month: rule.maxPerMonth,
      grant: { type: rule.grant.type, cost_basis: rule.grant.costBasis, expires_in_days: rule.grant.expiresInDays },
      month_start: new Date(monthStartUtc(nowMs)).toISOString(),
      requested_this_month: requestedThisMonth(state.month, nowMs),
      outstanding: this.outstanding(rule.unit),
      revision: state.revision,
      created_at: new Date(rule.createdAtMs).toISOString(),
      updated_at: new Date(rule.updatedAtMs).toISOString(),
    };
  }
}
