/**
 * Commands of the model-based suite that move credits by invoice or between
 * accounts: invoices and their voids, transfers, usage batches.
 */
import type { LedgerModel } from "../support/ledger-model";
import { call } from "./helpers";
import { acctPath, applied, pick, Step, servedApplied } from "./model-commands";
import { expectStatus, nextId, type Real, want } from "./model-real";

export class Invoice extends Step {
  constructor(
    readonly acct: number,
    readonly unit: string,
    readonly lines: number[],
  ) {
    super();
  }
  async act(m: LedgerModel, r: Real) {
    const a = m.accounts[this.acct];
    if (!a) return;
    const id = nextId(r, "inv");
    const lines = this.lines.map((amount, k) => ({ description: `line ${k}`, unit: this.unit, amount }));
    const res = await call("POST", `${acctPath(r, this.acct)}/invoices`, { invoice_id: id, lines });
    expectStatus(r, res, 201);
    const total = this.lines.reduce((s, x) => s + x, 0);
    const take = Math.min(total, m.available(a, this.unit));
    const allocs = (m.plan(a, this.unit, take) ?? []).map((x) => ({ ...x }));
    for (const al of allocs) al.lot.remaining -= al.amount;
    a.entries += allocs.length;
    a.invoices.set(id, { allocs, voided: false });
    want(r, "invoice", [res.json.credits_applied, res.json.amount_due], [take, total - take]);
    want(r, "applied", servedApplied(res, allocs), applied(allocs));
  }
  toString() {
    return `Invoice(${this.acct},${this.unit},[${this.lines}])`;
  }
}

export class InvoiceVoid extends Step {
  constructor(
    readonly acct: number,
    readonly index: number,
  ) {
    super();
  }
  override check(m: Readonly<LedgerModel>) {
    return (m.accounts[this.acct]?.invoices.size ?? 0) > 0;
  }
  async act(m: LedgerModel, r: Real) {
    const a = m.accounts[this.acct];
    const id = a && pick([...a.invoices.keys()], this.index);
    const inv = id && a?.invoices.get(id);
    if (!a || !inv) return;
    const res = await call("POST", `${acctPath(r, this.acct)}/invoices/${id}/void`, { reason: "model" });
    expectStatus(r, res, 200);
    if (inv.voided) return;
    inv.voided = true;
    for (const al of inv.allocs) {
      al.lot.remaining += al.amount;
      a.entries += 1;
      // What lands in a lot that has since expired or been voided leaves again at once.
      if (m.dead(al.lot)) {
        al.lot.remaining -= al.amount;
        a.entries += 1;
      }
    }
  }
  toString() {
    return `InvoiceVoid(${this.acct},#${this.index})`;
  }
}

export class Transfer extends Step {
  constructor(
    readonly from: number,
    readonly to: number,
    readonly unit: string,
    readonly amount: number,
  ) {
    super();
  }
  override check() {
    return this.from !== this.to;
  }
  async act(m: LedgerModel, r: Real) {
    const src = m.accounts[this.from];
    const dst = m.accounts[this.to];
    if (!src || !dst) return;
    const id = nextId(r, "t");
    const res = await call("POST", "/v1/transfers", {
      transfer_id: id,
      from_account: r.ids[this.from],
      to_account: r.ids[this.to],
      amount: this.amount,
      unit: this.unit,
      reason: "model",
    });
    const allocs = m.plan(src, this.unit, this.amount);
    if (allocs === null) {
      expectStatus(r, res, 402);
      want(r, "402 members", [res.json.available, res.json.requested], [m.available(src, this.unit), this.amount]);
      return;
    }
    expectStatus(r, res, 201);
    want(r, "applied", servedApplied(res, allocs), applied(allocs));
    src.entries += allocs.length;
    m.bringIn(dst, m.takeOut(allocs), (i) => `${id}.${i}`);
  }
  toString() {
    return `Transfer(${this.from}->${this.to},${this.unit},${this.amount})`;
  }
}

export class Usage extends Step {
  constructor(readonly events: { acct: number; amount: number }[]) {
    super();
  }
  async act(m: LedgerModel, r: Real) {
    const ids = this.events.map(() => nextId(r, "evt"));
    const events = this.events.map((e, k) => ({ event_id: ids[k], account_id: r.ids[e.acct], amount: e.amount }));
    const res = await call("POST", "/v1/usage", { events });
    expectStatus(r, res, 200);
    // Events are applied per account in the order sent; accounts do not share lots
    // except through a child's draw on its parent, so the model takes them in order.
    const expected = this.events.map((e) => m.debit(e.acct, "credits", e.amount).status);
    want(
      r,
      "event statuses",
      (res.json.results as { status: number }[]).map((x) => x.status),
      expected,
    );
  }
  toString() {
    return `Usage(${this.events.map((e) => `${e.acct}:${e.amount}`).join(",")})`;
  }
}
