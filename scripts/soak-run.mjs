/**
 * Which operation the soak runs next, on which accounts (scripts/soak.mjs).
 * An account is picked at random among those free (no operation of the
 * soak's own in flight, no request set aside); the operation is drawn by
 * OP_WEIGHTS among those that apply to it; a transfer, a usage batch or a
 * replay that names other accounts takes them too, only if they are free.
 * The caller marks every picked account busy before its first await, so two
 * workers never pick the same account.
 */
import { account, closeAwaiting, closeHold, debit, grant, hold, read, receipt, settle } from "./soak-ops.mjs";
import { invoice, invoiceVoid, refund, replay, transfer, usage, voidGrant } from "./soak-ops-more.mjs";

/** Relative weights of the operations (debits dominate, as on a gateway). */
export const OP_WEIGHTS = {
  grant: 12,
  debit: 26,
  hold: 6,
  capture: 4,
  release: 2,
  receipt: 4,
  settle: 4,
  usage: 5,
  transfer: 5,
  void: 1.5,
  refund: 2,
  invoice: 3,
  invoiceVoid: 1,
  activate: 2,
  cancel: 1,
  account: 2,
  read: 4,
  replay: 8,
};
/** Tries to find a free account before giving the worker a short rest. */
const PICK_TRIES = 24;
/** Accounts in one usage batch at most. */
const USAGE_ACCOUNTS_MAX = 4;

const free = (a) => !a.busy && a.unresolved === null;

function pickFree(ctx, ok) {
  for (let i = 0; i < PICK_TRIES; i++) {
    const a = ctx.models[ctx.rng.int(0, ctx.models.length - 1)];
    if (free(a) && ok(a)) return a;
  }
  return null;
}

const some = (map, pred) => {
  for (const v of map.values()) if (pred(v)) return true;
  return false;
};

/** Which operations apply to account `a` now. */
function applicable(a) {
  const now = Date.now();
  return {
    capture: some(a.holds, (h) => h.open),
    release: some(a.holds, (h) => h.open),
    settle: some(a.receipts, (r) => r.open),
    void: some(a.lots, (l) => !l.voided),
    refund: some(a.lots, (l) => l.type === "purchased" && !l.voided && l.effMs < now - 5_000),
    invoiceVoid: some(a.invoices, (x) => !x.voided),
    activate: some(a.awaiting, (g) => g.open),
    cancel: some(a.awaiting, (g) => g.open),
    replay: a.history.length > 0,
  };
}

/** {op, accts, rec?} or null when no free account was found. */
export function pickOperation(ctx) {
  const a = pickFree(ctx, () => true);
  if (!a) return null;
  if (!a.exists) return { op: "grant", accts: [a] };
  const can = applicable(a);
  const weights = Object.fromEntries(Object.entries(OP_WEIGHTS).map(([k, w]) => [k, can[k] === false ? 0 : w]));
  const op = ctx.rng.weighted(weights);
  if (op === "transfer") {
    const b = pickFree(ctx, (x) => x.exists && x !== a);
    return b ? { op, accts: [a, b] } : { op: "debit", accts: [a] };
  }
  if (op === "usage") {
    const accts = [a];
    for (let n = ctx.rng.int(0, USAGE_ACCOUNTS_MAX - 1); n > 0; n--) {
      const b = pickFree(ctx, (x) => x.exists && !accts.includes(x));
      if (b) accts.push(b);
    }
    return { op, accts };
  }
  if (op === "replay") {
    const rec = ctx.rng.pick(a.history);
    const others = rec.accounts.filter((id) => id !== a.id).map((id) => ctx.byId.get(id));
    if (others.some((x) => !x || !free(x))) return { op: "read", accts: [a] };
    return { op, accts: [a, ...others], rec };
  }
  return { op, accts: [a] };
}

const RUN = {
  grant,
  debit,
  hold,
  capture: (ctx, accts) => closeHold(ctx, accts, "capture"),
  release: (ctx, accts) => closeHold(ctx, accts, "release"),
  receipt,
  settle,
  usage,
  transfer,
  void: voidGrant,
  refund,
  invoice,
  invoiceVoid,
  activate: (ctx, accts) => closeAwaiting(ctx, accts, "activate"),
  cancel: (ctx, accts) => closeAwaiting(ctx, accts, "cancel"),
  account,
  read,
  replay: (ctx, accts, rec) => replay(ctx, accts, rec),
};

export function runOperation(ctx, { op, accts, rec }) {
  return RUN[op](ctx, accts, rec);
}
