/**
 * The commands of the model-based suite: each one acts on the real gate
 * through the HTTP API and on the reference model, checks the answer the
 * model predicts (status, what was drawn), then lets time's due work run
 * (the account's alarm) and compares the two (model-real.ts).
 */
import type fc from "fast-check";
import type { CreditType, LedgerModel, MAlloc, MHold, SortKey } from "../support/ledger-model";
import { call, iso, type Res } from "./helpers";
import {
  advanceAll,
  alarmAll,
  compareFull,
  compareStep,
  expectStatus,
  FULL_CHECK_EVERY,
  nextId,
  type Real,
  restart,
  totals,
  want,
} from "./model-real";

const at = (m: LedgerModel, tick: number) => iso(m.baseMs + tick * 3_600_000);
export const acctPath = (r: Real, i: number) => `/v1/accounts/${r.ids[i]}`;
export const applied = (allocs: MAlloc[]) =>
  allocs.map((a) => ({ type: a.lot.type, amount: a.amount, ...(a.lot.id ? { grant_id: a.lot.id } : {}) }));
export const servedApplied = (res: Res, allocs: MAlloc[]) =>
  (res.json.applied as { type: string; amount: number; grant_id: string }[]).map((x, k) => ({
    type: x.type,
    amount: x.amount,
    ...(allocs[k]?.lot.id ? { grant_id: x.grant_id } : {}),
  }));

export abstract class Step implements fc.AsyncCommand<LedgerModel, Real> {
  check(_m: Readonly<LedgerModel>): boolean {
    return true;
  }
  abstract act(m: LedgerModel, r: Real): Promise<void>;
  async run(m: LedgerModel, r: Real): Promise<void> {
    r.commands += 1;
    totals.commands += 1;
    r.label = this.toString();
    await this.act(m, r);
    m.settle();
    await alarmAll(r);
    await compareStep(r, m);
    if (r.commands % FULL_CHECK_EVERY === 0) await compareFull(r, m);
  }
  abstract toString(): string;
}

export class Grant extends Step {
  constructor(
    readonly acct: number,
    readonly unit: string,
    readonly type: CreditType,
    readonly amount: number,
    readonly priority: number,
    readonly effOff: number,
    readonly life: number | null,
    readonly cost: number,
  ) {
    super();
  }
  async act(m: LedgerModel, r: Real) {
    const eff = m.tick + this.effOff;
    const exp = this.life === null ? null : Math.max(eff, m.tick) + this.life;
    const id = nextId(r, "g");
    const purchased = this.type === "purchased";
    const res = await call("POST", `${acctPath(r, this.acct)}/grants`, {
      grant_id: id,
      amount: this.amount,
      unit: this.unit,
      type: this.type,
      priority: this.priority,
      reason: "model",
      effective_at: at(m, eff),
      expires_at: exp === null ? null : at(m, exp),
      ...(purchased ? { cost_basis: { amount: this.cost, currency: "USD" } } : {}),
    });
    expectStatus(r, res, 201);
    const a = m.accounts[this.acct];
    if (!a) return;
    m.addLot(a, {
      id,
      unit: this.unit,
      type: this.type,
      priority: this.priority,
      eff: m.grid(eff),
      exp: exp === null ? null : m.grid(exp),
      amount: this.amount,
      cost: purchased ? this.cost : null,
    });
    a.entries += 1;
    want(r, "grant status", res.json.grant.status, eff > m.tick ? "pending" : "active");
  }
  toString() {
    return `Grant(${this.acct},${this.unit},${this.type},${this.amount},p${this.priority},eff${this.effOff},life${this.life},$${this.cost})`;
  }
}

export class Debit extends Step {
  constructor(
    readonly acct: number,
    readonly unit: string,
    readonly amount: number,
  ) {
    super();
  }
  async act(m: LedgerModel, r: Real) {
    const reach = m.reach(this.acct, this.unit);
    const res = await call("POST", `${acctPath(r, this.acct)}/debits`, {
      debit_id: nextId(r, "d"),
      amount: this.amount,
      unit: this.unit,
    });
    const out = m.debit(this.acct, this.unit, this.amount);
    expectStatus(r, res, out.status);
    if (out.status === 402) want(r, "402 members", [res.json.available, res.json.requested], [reach, this.amount]);
    else want(r, "applied", servedApplied(res, out.drawn), applied(out.drawn));
  }
  toString() {
    return `Debit(${this.acct},${this.unit},${this.amount})`;
  }
}

export class Reserve extends Step {
  constructor(
    readonly acct: number,
    readonly unit: string,
    readonly amount: number,
    readonly kind: "hold" | "receipt",
    /** Holds: ticks until the deadline; receipts: ttl 60 s (0) or 3600 s (1). */
    readonly ttl: number,
  ) {
    super();
  }
  async act(m: LedgerModel, r: Real) {
    const id = nextId(r, this.kind === "hold" ? "h" : "r");
    const ttlSeconds = this.kind === "hold" ? this.ttl * 3600 : this.ttl === 0 ? 60 : 3600;
    const res = await call("POST", `${acctPath(r, this.acct)}/${this.kind}s`, {
      [`${this.kind}_id`]: id,
      amount: this.amount,
      unit: this.unit,
      ttl_seconds: ttlSeconds,
    });
    // A receipt's deadline (ttl + 300 s grace) runs on the account's clock, like a hold's: 360 s passes
    // within the next tick (an hour), 3 900 s within the second.
    const deadlineTick = m.tick + (this.kind === "hold" ? this.ttl : this.ttl === 0 ? 1 : 2);
    const hold = m.reserve(this.acct, {
      id,
      kind: this.kind,
      unit: this.unit,
      amount: this.amount,
      deadlineTick,
      token: res.json?.receipt ?? null,
    });
    expectStatus(r, res, hold ? 201 : 402);
    if (hold) want(r, "applied", servedApplied(res, hold.allocs), applied(hold.allocs));
  }
  toString() {
    return `Reserve(${this.acct},${this.unit},${this.amount},${this.kind},ttl${this.ttl})`;
  }
}

export function pick<T>(list: T[], index: number): T | undefined {
  return list.length === 0 ? undefined : list[index % list.length];
}

export class Close extends Step {
  constructor(
    readonly acct: number,
    readonly index: number,
    /** null: release; -1: capture all (no body); else capture min(n, amount). */
    readonly capture: number | null,
  ) {
    super();
  }
  override check(m: Readonly<LedgerModel>) {
    return (m.accounts[this.acct]?.holds.length ?? 0) > 0;
  }
  async act(m: LedgerModel, r: Real) {
    const a = m.accounts[this.acct];
    const h = a && pick(a.holds, this.index);
    if (!a || !h) return;
    const release = this.capture === null;
    const amount = this.capture === null || this.capture < 0 ? h.amount : Math.min(this.capture, h.amount);
    const path = `${acctPath(r, this.acct)}/holds/${h.id}/${release ? "release" : "capture"}`;
    const res = await call("POST", path, release || this.capture === -1 ? undefined : { amount });
    if (h.kind === "receipt") return expectStatus(r, res, 404);
    if (h.status === "open") {
      expectStatus(r, res, 200);
      m.close(a, h, release ? 0 : amount, false);
      return;
    }
    // A closed hold: the same close replays; the other close, or another capture, is refused.
    const same = release ? h.status === "released" : h.status === "captured" && h.captured === amount;
    expectStatus(r, res, same ? 200 : 409);
    if (same) want(r, "replayed", res.headers.get("idempotent-replayed"), "true");
  }
  toString() {
    return `Close(${this.acct},#${this.index},${this.capture === null ? "release" : this.capture})`;
  }
}

export class Settle extends Step {
  constructor(
    readonly acct: number,
    readonly index: number,
    readonly used: number,
  ) {
    super();
  }
  override check(m: Readonly<LedgerModel>) {
    return m.accounts[this.acct]?.holds.some((h) => h.kind === "receipt") ?? false;
  }
  async act(m: LedgerModel, r: Real) {
    const a = m.accounts[this.acct];
    const h = a && pick(a.holds.filter((x) => x.kind === "receipt") as MHold[], this.index);
    if (!a || !h || h.token === null) return;
    const used = Math.min(this.used, h.amount);
    const res = await call("POST", "/v1/receipts/settle", { receipt: h.token, used });
    if (h.status === "open") {
      expectStatus(r, res, 200);
      m.close(a, h, used, false);
      want(r, "settled", [res.json.used, res.json.released], [used, h.amount - used]);
      return;
    }
    expectStatus(r, res, h.captured === used ? 200 : 409);
  }
  toString() {
    return `Settle(${this.acct},#${this.index},${this.used})`;
  }
}

export class Void extends Step {
  constructor(
    readonly acct: number,
    readonly index: number,
  ) {
    super();
  }
  override check(m: Readonly<LedgerModel>) {
    return m.accounts[this.acct]?.lots.some((l) => l.id !== null) ?? false;
  }
  async act(m: LedgerModel, r: Real) {
    const a = m.accounts[this.acct];
    const lot =
      a &&
      pick(
        a.lots.filter((l) => l.id !== null),
        this.index,
      );
    if (!a || !lot) return;
    const res = await call("POST", `${acctPath(r, this.acct)}/grants/${lot.id}/void`, { reason: "model" });
    if (lot.voided) return expectStatus(r, res, 200);
    if (m.dead(lot) || lot.remaining === 0) return expectStatus(r, res, 409);
    expectStatus(r, res, 200);
    if (lot.remaining > lot.held) a.entries += 1;
    lot.remaining = lot.held;
    lot.voided = true;
  }
  toString() {
    return `Void(${this.acct},#${this.index})`;
  }
}

export class Refund extends Step {
  constructor(
    readonly acct: number,
    readonly index: number,
    readonly amount: number | null,
  ) {
    super();
  }
  override check(m: Readonly<LedgerModel>) {
    return m.accounts[this.acct]?.lots.some((l) => l.id !== null && l.type === "purchased") ?? false;
  }
  async act(m: LedgerModel, r: Real) {
    const a = m.accounts[this.acct];
    const lot =
      a &&
      pick(
        a.lots.filter((l) => l.id !== null && l.type === "purchased"),
        this.index,
      );
    if (!a || !lot) return;
    const free = m.dead(lot) ? 0 : lot.remaining - lot.held;
    const body = {
      refund_id: nextId(r, "rf"),
      reason: "model",
      ...(this.amount === null ? {} : { amount: this.amount }),
    };
    const res = await call("POST", `${acctPath(r, this.acct)}/grants/${lot.id}/refund`, body);
    if (free === 0) return expectStatus(r, res, 409);
    const n = this.amount ?? free;
    if (n > free) return expectStatus(r, res, 400);
    expectStatus(r, res, 200);
    const [slice] = m.takeOut([{ lot, amount: n }]);
    a.entries += 1;
    want(r, "refund cost", res.json.refund.cost?.amount ?? null, slice?.cost ?? null);
  }
  toString() {
    return `Refund(${this.acct},#${this.index},${this.amount})`;
  }
}

export class SetPolicy extends Step {
  constructor(
    readonly acct: number,
    readonly order: SortKey[],
    readonly typeOrder: CreditType[],
  ) {
    super();
  }
  async act(m: LedgerModel, r: Real) {
    const a = m.accounts[this.acct];
    if (!a) return;
    const res = await call("PUT", `${acctPath(r, this.acct)}/policy`, {
      order: this.order,
      type_order: this.typeOrder,
    });
    expectStatus(r, res, 200);
    a.policy = { order: [...this.order], type_order: [...this.typeOrder] };
  }
  toString() {
    return `SetPolicy(${this.acct},[${this.order}],[${this.typeOrder}])`;
  }
}

export class Advance extends Step {
  constructor(readonly ticks: number) {
    super();
  }
  async act(m: LedgerModel, r: Real) {
    await advanceAll(r, m, this.ticks);
  }
  toString() {
    return `Advance(${this.ticks}h)`;
  }
}

export class Restart extends Step {
  constructor(readonly acct: number) {
    super();
  }
  async act(m: LedgerModel, r: Real) {
    await restart(r.ids[this.acct] as string, m.tick * 3_600_000);
    r.restarts += 1;
    totals.restarts += 1;
  }
  toString() {
    return `Restart(${this.acct})`;
  }
}

export { compareFull };
