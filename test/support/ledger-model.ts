/**
 * A plain reference model of the ledger for the model-based suite
 * (test/workers/model.commands.test.ts), written from docs/api.md and
 * DESIGN.md alone: arrays, brute-force sums, its own consumption order and
 * cost rule. It imports nothing from src/ledger.
 *
 * Time is counted in ticks of TICK_MS on a grid shared by every account: a
 * model time is `tick * 1000 + sub`, where grid instants (effective_at,
 * expires_at sent by the suite) have sub 0 and "now" instants (a hold, a
 * transfer, an activation) have sub 1…998 in the order they happened. "Now" at
 * tick t is t·1000 + 999, so a lot expiring at grid tick e is live exactly
 * while t < e, whatever milliseconds the run itself takes.
 */

export const TICK_MS = 3_600_000;
export const CREDIT_TYPES = ["promotional", "compensatory", "purchased"] as const;
export type CreditType = (typeof CREDIT_TYPES)[number];
export type SortKey = "priority" | "expires_at" | "type" | "effective_at" | "created";
export const ALL_SORT_KEYS: readonly SortKey[] = ["priority", "expires_at", "type", "effective_at", "created"];

export interface MPolicy {
  order: SortKey[];
  type_order: CreditType[];
}
export const DEFAULT_ORDER: MPolicy = {
  order: ["priority", "expires_at", "type", "created"],
  type_order: ["promotional", "compensatory", "purchased"],
};

export interface MLot {
  /** The id the gate knows it by; null when the gate picks it (a budget draw's `draw_<uuid>.<i>`). */
  id: string | null;
  unit: string;
  type: CreditType;
  priority: number;
  eff: number;
  exp: number | null;
  amount: number;
  remaining: number;
  held: number;
  voided: boolean;
  /** Cost basis paid for `amount` (USD minor units); null: none. */
  cost: number | null;
  created: number;
}

export interface MAlloc {
  lot: MLot;
  amount: number;
}

export interface MHold {
  id: string;
  kind: "hold" | "receipt";
  unit: string;
  amount: number;
  allocs: MAlloc[];
  /** Swept (released, or captured in full for a receipt) at the first settle pass at or after this tick. */
  deadlineTick: number;
  status: "open" | "captured" | "released";
  captured: number;
  bySweep: boolean;
  token: string | null;
}

export interface MAwaiting {
  id: string;
  unit: string;
  amount: number;
  type: CreditType;
  priority: number;
  effTick: number | null;
  expTick: number | null;
  cost: number | null;
  status: "open" | "activated" | "cancelled";
}

export interface MRecurring {
  id: string;
  unit: string;
  amount: number;
  type: CreditType;
  priority: number;
  startTick: number;
  periodTicks: number;
  endOfPeriod: boolean;
  issued: number;
}

export interface MAccount {
  id: string;
  lots: MLot[];
  holds: MHold[];
  entries: number;
  policy: MPolicy;
  awaiting: MAwaiting[];
  invoices: Map<string, { allocs: MAlloc[]; voided: boolean }>;
  recurring: MRecurring[];
  /** Index of the parent account in the model, for budget draws. */
  parent: number | null;
  budget: { unit: string; limit: number; used: number; periodStart: number } | null;
}

export class LedgerModel {
  tick = 0;
  private sub = 0;
  private createdSeq = 0;
  readonly accounts: MAccount[];

  /** `baseMs`: the real instant of tick 0 (read from an account's clock before anything ran). */
  constructor(
    ids: string[],
    readonly baseMs: number,
  ) {
    this.accounts = ids.map((id) => ({
      id,
      lots: [],
      holds: [],
      entries: 0,
      policy: { order: [...DEFAULT_ORDER.order], type_order: [...DEFAULT_ORDER.type_order] },
      awaiting: [],
      invoices: new Map(),
      recurring: [],
      parent: null,
      budget: null,
    }));
  }

  nowM(): number {
    return this.tick * 1000 + 999;
  }
  /** A "now" instant, later than every earlier one in this tick. */
  stamp(): number {
    this.sub = Math.min(this.sub + 1, 998);
    return this.tick * 1000 + this.sub;
  }
  grid(tick: number): number {
    return tick * 1000;
  }
  nextCreated(): number {
    return ++this.createdSeq;
  }

  live(l: MLot, at = this.nowM()): boolean {
    return !l.voided && l.eff <= at && (l.exp === null || at < l.exp);
  }
  dead(l: MLot, at = this.nowM()): boolean {
    return l.voided || (l.exp !== null && l.exp <= at);
  }

  /** The consumption order of docs/api.md "Consumption order". */
  sorted(a: MAccount, lots: MLot[]): MLot[] {
    const typeRank = (t: CreditType) => {
      // Types missing from type_order come after the listed ones; docs/api.md is silent on their
      // order among themselves, and the gate takes the canonical order (CREDIT_TYPES).
      const i = a.policy.type_order.indexOf(t);
      return i < 0 ? a.policy.type_order.length + CREDIT_TYPES.indexOf(t) : i;
    };
    const cmp = (x: MLot, y: MLot): number => {
      for (const key of a.policy.order) {
        let d = 0;
        if (key === "priority") d = x.priority - y.priority;
        else if (key === "expires_at") d = (x.exp ?? Number.MAX_SAFE_INTEGER) - (y.exp ?? Number.MAX_SAFE_INTEGER);
        else if (key === "type") d = typeRank(x.type) - typeRank(y.type);
        else if (key === "effective_at") d = x.eff - y.eff;
        else d = x.created - y.created;
        if (d !== 0) return d;
      }
      return x.created - y.created;
    };
    return [...lots].sort(cmp);
  }

  available(a: MAccount, unit: string): number {
    return a.lots.filter((l) => l.unit === unit && this.live(l)).reduce((s, l) => s + l.remaining - l.held, 0);
  }

  balance(a: MAccount, unit: string) {
    const mine = a.lots.filter((l) => l.unit === unit);
    const by_type: Record<CreditType, number> = { promotional: 0, compensatory: 0, purchased: 0 };
    let available = 0;
    let held = 0;
    for (const l of mine) {
      const free = this.live(l) ? l.remaining - l.held : 0;
      available += free;
      held += l.held;
      by_type[l.type] += free + l.held;
    }
    const awaiting = a.awaiting.filter((w) => w.unit === unit && w.status === "open").length;
    return { available, held, by_type, awaiting };
  }

  /** Deferred cost left on the account's lots: per lot C − floor(C·x/A), x = credits that left it. */
  deferred(a: MAccount): number {
    return a.lots.reduce((s, l) => s + (l.cost === null ? 0 : l.cost - costLeft(l, l.amount - l.remaining)), 0);
  }

  /** The live unheld lots an amount would be drawn from, or null when they are short. */
  plan(a: MAccount, unit: string, amount: number): MAlloc[] | null {
    if (this.available(a, unit) < amount) return null;
    const out: MAlloc[] = [];
    let left = amount;
    for (const lot of this.sorted(
      a,
      a.lots.filter((l) => l.unit === unit && this.live(l) && l.remaining > l.held),
    )) {
      if (left === 0) break;
      const n = Math.min(left, lot.remaining - lot.held);
      out.push({ lot, amount: n });
      left -= n;
    }
    return out;
  }

  addLot(a: MAccount, lot: Omit<MLot, "created" | "remaining" | "held" | "voided">): MLot {
    const full: MLot = { ...lot, remaining: lot.amount, held: 0, voided: false, created: this.nextCreated() };
    a.lots.push(full);
    return full;
  }

  /** Credits leaving lots for another account: returns the slices with their cost (the cumulative rule). */
  takeOut(allocs: MAlloc[]): { lot: MLot; amount: number; cost: number | null }[] {
    return allocs.map(({ lot, amount }) => {
      const before = lot.amount - lot.remaining;
      const cost = lot.cost === null ? null : costLeft(lot, before + amount) - costLeft(lot, before);
      lot.remaining -= amount;
      return { lot, amount, cost };
    });
  }

  /** Slices arriving as new lots with the source lots' terms. */
  bringIn(
    a: MAccount,
    slices: { lot: MLot; amount: number; cost: number | null }[],
    ids: (i: number) => string | null,
  ) {
    slices.forEach((s, i) => {
      this.addLot(a, {
        id: ids(i),
        unit: s.lot.unit,
        type: s.lot.type,
        priority: s.lot.priority,
        eff: s.lot.eff,
        exp: s.lot.exp,
        amount: s.amount,
        cost: s.cost,
      });
    });
    a.entries += slices.length;
  }

  /** Closes a hold: capture fills the allocations in draw order; the rest is released. */
  close(a: MAccount, h: MHold, capture: number, bySweep: boolean): void {
    let left = capture;
    for (const al of h.allocs) {
      const c = Math.min(left, al.amount);
      left -= c;
      const r = al.amount - c;
      al.lot.remaining -= c;
      al.lot.held -= al.amount;
      if (h.kind === "receipt") a.entries += 1;
      else a.entries += (c > 0 ? 1 : 0) + (r > 0 ? 1 : 0);
      // What is released into a dead lot leaves at once by its own entry.
      if (r > 0 && this.dead(al.lot)) {
        al.lot.remaining -= r;
        a.entries += 1;
      }
    }
    h.status = capture > 0 || h.kind === "receipt" ? "captured" : "released";
    h.captured = capture;
    h.bySweep = bySweep;
  }

  /** Budget period start (UTC month of the account's clock). */
  monthStart(): number {
    const d = new Date(this.baseMs + this.tick * TICK_MS);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }

  budgetLeft(a: MAccount): number {
    if (a.budget === null) return 0;
    if (a.budget.periodStart !== this.monthStart()) {
      a.budget.periodStart = this.monthStart();
      a.budget.used = 0;
    }
    return a.budget.limit - a.budget.used;
  }

  /**
   * A budgeted child short of `amount` draws the shortfall from its parent.
   * Returns false (a 402) when the draw cannot cover it; nothing moves then.
   */
  drawIfShort(ai: number, unit: string, amount: number): boolean {
    const a = this.accounts[ai] as MAccount;
    const own = this.available(a, unit);
    if (own >= amount) return true;
    if (a.parent === null || a.budget === null || a.budget.unit !== unit) return false;
    const parent = this.accounts[a.parent] as MAccount;
    const short = amount - own;
    if (short > this.budgetLeft(a)) return false;
    const allocs = this.plan(parent, unit, short);
    if (allocs === null) return false;
    a.budget.used += short;
    parent.entries += allocs.length;
    this.bringIn(a, this.takeOut(allocs), () => null);
    return true;
  }

  /** What a draw on `ai` could reach: own available plus what its budget may draw. */
  reach(ai: number, unit: string): number {
    const a = this.accounts[ai] as MAccount;
    const own = this.available(a, unit);
    if (a.parent === null || a.budget === null || a.budget.unit !== unit) return own;
    const parent = this.accounts[a.parent] as MAccount;
    return own + Math.min(this.budgetLeft(a), this.available(parent, unit));
  }

  /** A debit (or usage event): status and what it drew. */
  debit(ai: number, unit: string, amount: number): { status: 200 | 402; drawn: MAlloc[] } {
    if (!this.drawIfShort(ai, unit, amount)) return { status: 402, drawn: [] };
    const a = this.accounts[ai] as MAccount;
    const allocs = this.plan(a, unit, amount) as MAlloc[];
    for (const al of allocs) al.lot.remaining -= al.amount;
    a.entries += allocs.length;
    return { status: 200, drawn: allocs };
  }

  /** A hold or a receipt: 201 with the hold, or 402. */
  reserve(ai: number, h: Omit<MHold, "allocs" | "status" | "captured" | "bySweep">): MHold | null {
    if (!this.drawIfShort(ai, h.unit, h.amount)) return null;
    const a = this.accounts[ai] as MAccount;
    const allocs = (this.plan(a, h.unit, h.amount) as MAlloc[]).map((x) => ({ ...x }));
    for (const al of allocs) al.lot.held += al.amount;
    a.entries += allocs.length;
    const hold: MHold = { ...h, allocs, status: "open", captured: 0, bySweep: false };
    a.holds.push(hold);
    return hold;
  }

  /**
   * What falls due with time, in the order the account's alarm takes it:
   * recurring periods, then expiry of lots past their end, then holds past
   * their deadline (released; receipts captured in full).
   */
  settle(): void {
    const now = this.nowM();
    for (const a of this.accounts) {
      for (const r of a.recurring) {
        while (r.startTick + r.issued * r.periodTicks <= this.tick) {
          const start = r.startTick + r.issued * r.periodTicks;
          r.issued += 1;
          this.addLot(a, {
            id: `${r.id}.${r.issued}`,
            unit: r.unit,
            type: r.type,
            priority: r.priority,
            eff: this.grid(start),
            exp: r.endOfPeriod ? this.grid(start + r.periodTicks) : null,
            amount: r.amount,
            cost: null,
          });
          a.entries += 1;
        }
      }
      for (const l of a.lots) {
        if (!l.voided && l.exp !== null && l.exp <= now && l.remaining > l.held) {
          l.remaining = l.held;
          a.entries += 1;
        }
      }
      for (const h of a.holds) {
        if (h.status === "open" && h.deadlineTick <= this.tick)
          this.close(a, h, h.kind === "receipt" ? h.amount : 0, true);
      }
    }
  }
}

/** floor(C·x / A): the cost that has left a lot once x of its A credits have. */
export function costLeft(l: MLot, x: number): number {
  if (l.cost === null) return 0;
  return Number((BigInt(l.cost) * BigInt(x)) / BigInt(l.amount));
}
