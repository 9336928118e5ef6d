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
 */
import { type AlertDraft, type CostBasis, type Lot, spendable } from "../ledger";
import { AWAITING_OPEN_MAX, type AwaitingGrant } from "../ledger/awaiting";
import {
  addRequest,
  decideTopUp,
  monthStartUtc,
  requestedThisMonth,
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

/** An account keeps at most this many top-up rules (one per unit). */
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
}

interface RuleState {
  rule: TopUpRule;
  month: TopUpMonth | null;
}

export class TopUpDesk {
  private readonly rules = new Map<string, RuleState>();
  /** The last n used for `topup.<n>` (meta `topup_counter`). */
  private counter: number;

  constructor(
    private readonly core: AccountCore,
    private readonly awaiting: AwaitingDesk,
  ) {
    const rows = core.sql.exec("SELECT rule, month FROM topup_rules ORDER BY unit LIMIT ?", TOPUP_RULES_MAX).toArray();
    for (const row of rows) {
      const rule = JSON.parse(String(row.rule)) as TopUpRule;
      const month = row.month === null ? null : (JSON.parse(String(row.month)) as TopUpMonth);
      this.rules.set(rule.unit, { rule, month });
    }
    this.counter = readMeta<number>(core.sql, "topup_counter") ?? 0;
    awaiting.onClosed.push((closed) => this.cancelled(closed));
  }

  /** PUT /v1/accounts/{id}/top-up: sets (or replaces) the rule of `input.unit`; the month's tally is kept. */
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
    const rule: TopUpRule = {
      unit: input.unit,
      below: input.below,
      amount: input.amount,
      maxPerMonth,
      grant: {
        type: "purchased",
        costBasis: input.grant.cost_basis ?? null,
        expiresInDays: input.grant.expires_in_days ?? null,
      },
      createdAtMs: before?.rule.createdAtMs ?? nowMs,
      updatedAtMs: nowMs,
    };
    const state = { rule, month: before?.month ?? null };
    this.writeRule(state);
    this.rules.set(rule.unit, state);
    return answer(this.view(state, nowMs));
  }

  get(accountId: string, unit: string): Outcome {
    if (this.core.account === null) return missingAccount(accountId);
    const state = this.rules.get(unit);
    if (!state) return refuse({ code: "not_found", detail: `no top-up rule for unit ${unit}` });
    return answer(this.view(state, this.core.now()));
  }

  /** DELETE: no more requests in `unit`; a request outstanding stays for the payment system to settle. */
  remove(accountId: string, unit: string): Outcome {
    if (this.core.account === null) return missingAccount(accountId);
    const state = this.rules.get(unit);
    if (!state) return refuse({ code: "not_found", detail: `no top-up rule for unit ${unit}` });
    this.core.sql.exec("DELETE FROM topup_rules WHERE unit = ?", unit);
    this.rules.delete(unit);
    return answer({ ...this.view(state, this.core.now()), deleted: true });
  }

  /** The commit hook (core.hooks): requests a top-up for each rule the change left below its threshold. */
  readonly hook = (m: Mutation, staged: ReadonlyMap<string, Lot>, nowMs: number): HookEffect | null => {
    if (this.rules.size === 0) return null;
    const units = new Set(m.entries.map((e) => e.unit));
    const effects: HookEffect[] = [];
    let counter = this.counter;
    for (const state of this.rules.values()) {
      if (!units.has(state.rule.unit)) continue;
      const effect = this.request(m.ctx.accountId, state, staged, nowMs, counter);
      if (effect) {
        counter = effect.n;
        effects.push(effect.effect);
      }
    }
    if (effects.length === 0) return null;
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
    staged: ReadonlyMap<string, Lot>,
    nowMs: number,
    counter: number,
  ): { n: number; effect: HookEffect } | null {
    const { rule } = state;
    let available = 0;
    for (const lot of staged.values()) if (lot.unit === rule.unit) available += spendable(lot, nowMs);
    const outstanding = this.outstanding(rule.unit) !== null;
    const decision = decideTopUp(rule, available, outstanding, state.month, nowMs);
    if (!decision.request) return null;
    if (this.awaiting.openRecords.size >= AWAITING_OPEN_MAX) {
      log({ event: "topup.skipped", account_id: accountId, unit: rule.unit, why: "awaiting_open_max" });
      return null;
    }
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
      log({ event: "topup.skipped", account_id: accountId, unit: rule.unit, why: "ids_taken", after: counter });
      return null;
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
    const next: RuleState = { rule, month: addRequest(state.month, decision.amount, nowMs) };
    const staging = this.awaiting.stage(accountId, record);
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
      JSON.stringify(state.rule),
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
      created_at: new Date(rule.createdAtMs).toISOString(),
      updated_at: new Date(rule.updatedAtMs).toISOString(),
    };
  }
}
