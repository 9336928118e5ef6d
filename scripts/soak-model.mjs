/**
 * The soak's own model of every account (scripts/soak.mjs), kept from the
 * gate's answers and from nothing else: a grant answered 201 adds its amount,
 * an admitted debit takes its amount, a hold moves credits to `held`, and so
 * on. Each answer that carries a balance is checked against the model at
 * once (see `checkBalance`), and the end compares the model with the ledger.
 *
 * The model is exact because the soak never has two operations of its own on
 * one account in flight (a lock per account; a transfer or a usage batch
 * locks every account it names), apart from the concurrent duplicates it
 * sends on purpose (same id, same body: one effect). Time enters only through
 * grants effective in the future: the Durable Object's clock is somewhere
 * between the request's send and its answer, so `availRange` gives the
 * lowest and highest `available` the gate may see, and a debit is expected to
 * pass when it fits the lowest and to be refused (402) above the highest.
 *
 * Three effects are not knowable from the account's totals alone, so their
 * size is read from the answer and bounded: a void (the lot's unheld
 * remainder), and, on an account that had a void since, what a hold's
 * release or an invoice void brings back into a voided lot (it leaves again
 * at once by a `grant.voided` entry).
 */

/** Slack on the Durable Object's clock either side of a request, for grants that become effective. */
export const CLOCK_SLACK_MS = 1_500;
/** Successful requests remembered per account, for replays (bounded). */
export const HISTORY_MAX = 12;
/** Grants effective in the future an account may have pending at once (the write answer lists ≤ 10). */
export const PENDING_MAX = 4;
/** Mismatches kept with their details (all are counted). */
export const MISMATCH_DETAILS_MAX = 50;

export class AccountModel {
  constructor(id) {
    this.id = id;
    this.exists = false;
    /** Σ remaining of every lot, held or not, effective or not: what Σ entry amount must be. */
    this.total = 0;
    this.held = 0;
    /** Lots not yet effective when granted: {grant_id, amount, effMs}. */
    this.pend = [];
    /** Lots granted here: grant_id → {type, amount, voided}. */
    this.lots = new Map();
    /** hold_id → {amount, open, voids}. */
    this.holds = new Map();
    /** receipt_id → {amount, token, open, voids}. */
    this.receipts = new Map();
    /** invoice_id → {applied, voided, voids}. */
    this.invoices = new Map();
    /** Grants awaiting payment: grant_id → {amount, open}. */
    this.awaiting = new Map();
    /** Usage events answered 200: event_id → the event. */
    this.events = new Map();
    /** Voids so far: an effect that began before one may partly leave again (see the file's comment). */
    this.voids = 0;
    /** Recent successful requests: {method, path, body, status, json, kind, accounts}. */
    this.history = [];
    this.busy = false;
    /** The request that never got a definitive answer, while the account is set aside. */
    this.unresolved = null;
    this.counter = 0;
  }

  nextId(prefix) {
    return `${prefix}-${this.counter++}`;
  }

  /** Σ amount of the pending lots still pending at `t`. */
  pendingAfter(t) {
    let s = 0;
    for (const p of this.pend) if (p.effMs > t) s += p.amount;
    return s;
  }

  /** [lowest, highest] `available` the gate may have seen during a request sent at t0 and answered at t1. */
  availRange(t0, t1) {
    const base = this.total - this.held;
    return [base - this.pendingAfter(t0 - CLOCK_SLACK_MS), base - this.pendingAfter(t1 + CLOCK_SLACK_MS)];
  }

  remember(rec) {
    this.history.push(rec);
    if (this.history.length > HISTORY_MAX) this.history.shift();
  }
}

/** Mismatches between the gate and the model (or between two answers that must be equal). */
export class Checker {
  constructor() {
    this.count = 0;
    this.details = [];
    this.checks = 0;
  }

  /** Records a mismatch when `ok` is false; returns `ok`. */
  expect(ok, account, what) {
    this.checks++;
    if (!ok) {
      this.count++;
      if (this.details.length < MISMATCH_DETAILS_MAX) this.details.push(`${account}: ${what}`);
    }
    return ok;
  }
}

const sumPending = (bal) => (bal.pending ?? []).reduce((s, p) => s + p.amount, 0);

/** What the balance says the account's total is: available + held + Σ pending. */
export const balanceTotal = (bal) => bal.available + bal.held + sumPending(bal);

/**
 * Checks a balance the gate served (in a write answer or a read) against the
 * model: the same total and held exactly, `available` within the clock's
 * range, and every list complete (the soak keeps them short).
 */
export function checkBalance(check, a, bal, t0, t1, label) {
  if (!check.expect(bal && typeof bal.available === "number", a.id, `${label}: no balance in the answer`)) return;
  const [lo, hi] = a.availRange(t0, t1);
  check.expect(bal.held === a.held, a.id, `${label}: held ${bal.held}, model ${a.held}`);
  check.expect(balanceTotal(bal) === a.total, a.id, `${label}: total ${balanceTotal(bal)}, model ${a.total}`);
  check.expect(
    bal.available >= lo && bal.available <= hi,
    a.id,
    `${label}: available ${bal.available}, model ${lo}..${hi}`,
  );
  check.expect(bal.pending_more === false, a.id, `${label}: pending list cut short`);
}

/**
 * An effect whose size the answer decides (see the file's comment): the
 * change of total the balance shows, which must lie in [lo, hi].
 */
export function observedChange(check, a, bal, lo, hi, label) {
  if (!bal || typeof bal.available !== "number") return 0;
  const change = balanceTotal(bal) - a.total;
  check.expect(change >= lo && change <= hi, a.id, `${label}: total moved by ${change}, allowed ${lo}..${hi}`);
  return change;
}
