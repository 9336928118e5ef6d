/**
 * Lifecycle commands of the model-based suite: grants awaiting payment (then
 * activated or cancelled) and recurring grants (a daily allowance whose
 * periods the account's alarm issues as the clock moves).
 */
import type { CreditType, LedgerModel } from "../support/ledger-model";
import { call, iso } from "./helpers";
import { Step } from "./model-commands";
import { expectStatus, nextId, type Real, want } from "./model-real";

const at = (m: LedgerModel, tick: number) => iso(m.baseMs + tick * 3_600_000);

export class AwaitGrant extends Step {
  constructor(
    readonly acct: number,
    readonly amount: number,
    /** Ticks ahead for a future effective_at; null: none sent. */
    readonly effOff: number | null,
    readonly life: number | null,
    readonly cost: number,
  ) {
    super();
  }
  async act(m: LedgerModel, r: Real) {
    const a = m.accounts[this.acct];
    if (!a) return;
    const id = nextId(r, "aw");
    const effTick = this.effOff === null ? null : m.tick + this.effOff;
    const expTick = this.life === null ? null : (effTick ?? m.tick) + this.life;
    const res = await call("POST", `/v1/accounts/${r.ids[this.acct]}/grants`, {
      grant_id: id,
      amount: this.amount,
      type: "purchased",
      cost_basis: { amount: this.cost, currency: "USD" },
      awaiting_payment: true,
      ...(effTick === null ? {} : { effective_at: at(m, effTick) }),
      ...(expTick === null ? {} : { expires_at: at(m, expTick) }),
    });
    expectStatus(r, res, 201);
    want(r, "awaiting status", res.json.grant.status, "awaiting_payment");
    a.awaiting.push({
      id,
      unit: "credits",
      amount: this.amount,
      type: "purchased",
      priority: 100,
      effTick,
      expTick,
      cost: this.cost,
      status: "open",
    });
  }
  toString() {
    return `AwaitGrant(${this.acct},${this.amount},eff+${this.effOff},life${this.life},$${this.cost})`;
  }
}

export class Activate extends Step {
  constructor(
    readonly acct: number,
    readonly index: number,
    readonly cancel: boolean,
  ) {
    super();
  }
  override check(m: Readonly<LedgerModel>) {
    return (m.accounts[this.acct]?.awaiting.length ?? 0) > 0;
  }
  async act(m: LedgerModel, r: Real) {
    const a = m.accounts[this.acct];
    const w = a && a.awaiting.length > 0 ? a.awaiting[this.index % a.awaiting.length] : undefined;
    if (!a || !w) return;
    const path = `/v1/accounts/${r.ids[this.acct]}/grants/${w.id}/${this.cancel ? "cancel" : "activate"}`;
    const res = await call("POST", path, this.cancel ? { reason: "model" } : { payment_ref: "pi_model" });
    if (w.status !== "open") {
      // The same transition replays its first answer; the other one is refused.
      const same = this.cancel ? w.status === "cancelled" : w.status === "activated";
      return expectStatus(r, res, same ? 200 : 409);
    }
    if (this.cancel) {
      expectStatus(r, res, 200);
      w.status = "cancelled";
      return;
    }
    // An explicit expires_at that has passed by activation is refused; the record stays open.
    if (w.expTick !== null && w.expTick <= m.tick) return expectStatus(r, res, 409);
    expectStatus(r, res, 200);
    w.status = "activated";
    m.addLot(a, {
      id: w.id,
      unit: w.unit,
      type: w.type,
      priority: w.priority,
      eff: w.effTick !== null && w.effTick > m.tick ? m.grid(w.effTick) : m.stamp(),
      exp: w.expTick === null ? null : m.grid(w.expTick),
      amount: w.amount,
      cost: w.cost,
    });
    a.entries += 1;
  }
  toString() {
    return `Activate(${this.acct},#${this.index},${this.cancel ? "cancel" : "activate"})`;
  }
}

export class Recurring extends Step {
  constructor(
    readonly acct: number,
    readonly amount: number,
    readonly type: CreditType,
    readonly startOff: number,
    readonly endOfPeriod: boolean,
  ) {
    super();
  }
  async act(m: LedgerModel, r: Real) {
    const a = m.accounts[this.acct];
    if (!a) return;
    const id = nextId(r, "rec");
    const res = await call("POST", `/v1/accounts/${r.ids[this.acct]}/recurring-grants`, {
      recurring_id: id,
      amount: this.amount,
      type: this.type,
      interval: "day",
      starts_at: at(m, m.tick + this.startOff),
      expires: this.endOfPeriod ? "end_of_period" : "never",
      reason: "model",
    });
    expectStatus(r, res, 201);
    a.recurring.push({
      id,
      unit: "credits",
      amount: this.amount,
      type: this.type,
      priority: 100,
      startTick: m.tick + this.startOff,
      periodTicks: 24,
      endOfPeriod: this.endOfPeriod,
      issued: 0,
    });
  }
  toString() {
    return `Recurring(${this.acct},${this.amount},${this.type},start+${this.startOff},${this.endOfPeriod ? "eop" : "never"})`;
  }
}
