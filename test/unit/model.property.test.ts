/**
 * The domain core against a plain reference model, over random sequences of
 * grants, debits, voids, holds, captures/releases, expiry sweeps and time.
 *
 * The model is written from API.md and DESIGN.md alone: arrays, brute-force
 * sums, its own consumption order. It shares no helper with src/ledger.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  balanceOf,
  CREDIT_TYPES,
  type CreditType,
  DEFAULT_POLICY,
  type EntryDraft,
  type Hold,
  type Lot,
  type Policy,
  planCloseHold,
  planDebit,
  planExpire,
  planGrant,
  planReserve,
  planVoid,
  replayLots,
  SORT_KEYS,
  type SortKey,
  verifyChain,
} from "../../src/ledger";
import { deepFreeze, grantCmd, serveChain, T0 } from "./fixtures";

const UNITS = ["credits", "gpu_seconds"] as const;
type Unit = (typeof UNITS)[number];

// ---------------------------------------------------------------- commands

type Cmd =
  | {
      k: "grant";
      amount: number;
      type: CreditType;
      priority: number;
      effOffset: number;
      /** Expiry relative to the effective time; ≤ 0 or in the past is refused. */
      lifeMs: number | null;
      unit: Unit;
      withReason: boolean;
      withCostBasis: boolean;
    }
  | { k: "debit"; amount: number; unit: Unit }
  | { k: "void"; index: number }
  | { k: "hold"; amount: number; unit: Unit; kind: "hold" | "receipt" }
  | { k: "close"; index: number; capture: number | "all" | "release" }
  | { k: "advance"; ms: number }
  | { k: "expire" };

const arbUnit = fc.constantFrom(...UNITS);
/** Mostly small draws, so most succeed; now and then a large one that is refused. */
const arbDraw = (max: number) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 1, max: 12 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max }) },
  );
const arbCmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("grant" as const),
      amount: fc.integer({ min: 1, max: 50 }),
      type: fc.constantFrom(...CREDIT_TYPES),
      priority: fc.constantFrom(0, 1, 100),
      effOffset: fc.integer({ min: -30, max: 30 }),
      lifeMs: fc.option(fc.integer({ min: -3, max: 300 }), { nil: null, freq: 3 }),
      unit: arbUnit,
      withReason: fc.integer({ min: 0, max: 4 }).map((n) => n > 0),
      withCostBasis: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ k: fc.constant("debit" as const), amount: arbDraw(60), unit: arbUnit }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("void" as const), index: fc.nat(40) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("hold" as const),
      amount: arbDraw(40),
      unit: arbUnit,
      kind: fc.constantFrom("hold" as const, "receipt" as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("close" as const),
      index: fc.nat(20),
      capture: fc.oneof(fc.constant("all" as const), fc.constant("release" as const), fc.integer({ min: 0, max: 45 })),
    }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 40 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: "expire" as const }) },
);

const arbPolicy: fc.Arbitrary<Policy> = fc.oneof(
  fc.constant(DEFAULT_POLICY),
  fc.record({
    order: fc.shuffledSubarray([...SORT_KEYS]),
    type_order: fc.shuffledSubarray([...CREDIT_TYPES], { minLength: 3, maxLength: 3 }),
    require_verified_for_promotional: fc.constant(false),
    hold_on_expiry: fc.constant("release" as const),
  }),
);

// ---------------------------------------------------------------- reference model

interface MLot {
  id: string;
  unit: Unit;
  type: CreditType;
  priority: number;
  eff: number;
  exp: number | null;
  created: number;
  amount: number;
  remaining: number;
  held: number;
  voidedAt: number | null;
}

interface MHold {
  id: string;
  unit: Unit;
  amount: number;
  allocs: { id: string; n: number }[];
  open: boolean;
}

type Outcome = "ok" | "insufficient_credits" | "invalid_request" | "grant_closed" | "hold_closed" | "invalid_amount";

class Model {
  now = T0;
  lots: MLot[] = [];
  holds: MHold[] = [];

  constructor(private readonly policy: Policy) {}

  private live(l: MLot): boolean {
    return l.voidedAt === null && l.eff <= this.now && (l.exp === null || this.now < l.exp);
  }

  private dead(l: MLot): boolean {
    return l.voidedAt !== null || (l.exp !== null && l.exp <= this.now);
  }

  available(unit: Unit): number {
    let sum = 0;
    for (const l of this.lots) if (l.unit === unit && this.live(l)) sum += l.remaining - l.held;
    return sum;
  }

  held(unit: Unit): number {
    let sum = 0;
    for (const l of this.lots) if (l.unit === unit) sum += l.held;
    return sum;
  }

  /** API.md: keys left to right, created last; a missing expiry sorts after every date. */
  private key(l: MLot): number[] {
    const k: Record<SortKey, number> = {
      priority: l.priority,
      expires_at: l.exp === null ? Number.POSITIVE_INFINITY : l.exp,
      type: this.policy.type_order.indexOf(l.type),
      effective_at: l.eff,
      created: l.created,
    };
    return [...this.policy.order.map((name) => k[name]), l.created];
  }

  /** What a draw of `amount` takes, lot by lot, or null when short. */
  draw(unit: Unit, amount: number): { id: string; n: number }[] | null {
    if (this.available(unit) < amount) return null;
    const candidates = this.lots.filter((l) => l.unit === unit && this.live(l) && l.remaining - l.held > 0);
    candidates.sort((a, b) => {
      const ka = this.key(a);
      const kb = this.key(b);
      for (let i = 0; i < ka.length; i++) {
        if ((ka[i] as number) < (kb[i] as number)) return -1;
        if ((ka[i] as number) > (kb[i] as number)) return 1;
      }
      return 0;
    });
    const takes: { id: string; n: number }[] = [];
    let left = amount;
    for (const l of candidates) {
      if (left === 0) break;
      const n = Math.min(left, l.remaining - l.held);
      takes.push({ id: l.id, n });
      left -= n;
    }
    return takes;
  }

  lot(id: string): MLot {
    const l = this.lots.find((x) => x.id === id);
    if (!l) throw new Error(`model: no lot ${id}`);
    return l;
  }

  grant(id: string, c: Extract<Cmd, { k: "grant" }>, created: number): Outcome {
    const eff = this.now + c.effOffset;
    const exp = c.lifeMs === null ? null : eff + c.lifeMs;
    if (exp !== null && (exp <= eff || exp <= this.now)) return "invalid_request";
    if (c.type === "compensatory" && !c.withReason) return "invalid_request";
    if (c.withCostBasis && c.type !== "purchased") return "invalid_request";
    this.lots.push({
      id,
      unit: c.unit,
      type: c.type,
      priority: c.priority,
      eff,
      exp,
      created,
      amount: c.amount,
      remaining: c.amount,
      held: 0,
      voidedAt: null,
    });
    return "ok";
  }

  debit(takes: { id: string; n: number }[]): void {
    for (const t of takes) this.lot(t.id).remaining -= t.n;
  }

  hold(id: string, unit: Unit, amount: number, takes: { id: string; n: number }[]): void {
    for (const t of takes) this.lot(t.id).held += t.n;
    this.holds.push({ id, unit, amount, allocs: takes, open: true });
  }

  voidLot(l: MLot): Outcome {
    if (l.voidedAt !== null || (l.exp !== null && l.exp <= this.now) || l.remaining === 0) return "grant_closed";
    l.remaining = l.held;
    l.voidedAt = this.now;
    return "ok";
  }

  close(h: MHold, capture: number): Outcome {
    if (!h.open) return "hold_closed";
    if (capture < 0 || capture > h.amount) return "invalid_amount";
    let left = capture;
    for (const a of h.allocs) {
      const l = this.lot(a.id);
      const c = Math.min(left, a.n);
      left -= c;
      l.remaining -= c;
      l.held -= a.n;
      // Released credits that land in a dead lot leave with it.
      if (this.dead(l)) l.remaining -= a.n - c;
    }
    h.open = false;
    return "ok";
  }

  expire(): string[] {
    const gone: string[] = [];
    for (const l of this.lots) {
      if (l.voidedAt === null && l.exp !== null && l.exp <= this.now && l.remaining > l.held) {
        l.remaining = l.held;
        gone.push(l.id);
      }
    }
    return gone;
  }
}

// ---------------------------------------------------------------- the real core, driven like the DO drives it

type Recorded = EntryDraft & { recordedAtMs: number };

interface Snapshot {
  lots: Map<string, { remaining: number; held: number; voidedAtMs: number | null }>;
  available: Record<Unit, number>;
}

/** Kind-by-kind sign rules of API.md "Ledger and exports". */
function checkEntryShape(e: EntryDraft): void {
  expect(Number.isSafeInteger(e.amount) && Number.isSafeInteger(e.heldDelta)).toBe(true);
  expect(Object.is(e.amount, -0) || Object.is(e.heldDelta, -0), `-0 in ${e.kind}`).toBe(false);
  const sign = [Math.sign(e.amount), Math.sign(e.heldDelta)];
  switch (e.kind) {
    case "grant":
      expect(sign).toEqual([1, 0]);
      break;
    case "debit":
    case "grant.voided":
    case "grant.expired":
      expect(sign).toEqual([-1, 0]);
      break;
    case "hold":
    case "receipt":
      expect(sign).toEqual([0, 1]);
      break;
    case "hold.captured":
      expect(e.heldDelta).toBe(e.amount);
      expect(sign).toEqual([-1, -1]);
      break;
    case "hold.released":
      expect(sign).toEqual([0, -1]);
      break;
    case "receipt.settled":
      expect(e.heldDelta).toBeLessThan(0);
      expect(e.amount).toBeLessThanOrEqual(0);
      expect(e.amount).toBeGreaterThanOrEqual(e.heldDelta);
      break;
    default:
      throw new Error(`unexpected kind ${e.kind}`);
  }
}

/** Runs one sequence against both sides, asserting after every command; returns the entries written. */
function runScenario(policy: Policy, cmds: Cmd[], tamperAt: number): Recorded[] {
  const model = new Model(policy);
  const lots = new Map<string, Lot>();
  const holds: Hold[] = [];
  const entries: Recorded[] = [];
  const snapshots = new Map<number, Snapshot>();
  let now = T0;
  let created = 0;

  const record = (drafts: EntryDraft[]) => {
    for (const d of drafts) {
      checkEntryShape(d);
      // API.md: grant.expired is dated at the lot's expiry; every other non-grant entry at the operation.
      if (d.kind === "grant.expired") expect(d.effectiveAtMs).toBe(lots.get(d.grantId as string)?.expiresAtMs);
      else if (d.kind !== "grant") expect(d.effectiveAtMs, d.kind).toBe(now);
      entries.push({ ...d, recordedAtMs: now });
    }
  };
  const putLots = (next: Lot[], fresh = false) => {
    for (const l of next) {
      expect(lots.has(l.grantId), `lot ${l.grantId} exists`).toBe(!fresh);
      lots.set(l.grantId, deepFreeze(l));
    }
  };
  const outcome = (r: { ok: true } | { ok: false; error: { code: string } }) => (r.ok ? "ok" : r.error.code);

  cmds.forEach((cmd, step) => {
    switch (cmd.k) {
      case "grant": {
        created += 1;
        const id = `g${created}`;
        const r = planGrant(
          lots.values(),
          grantCmd({
            grantId: id,
            unit: cmd.unit,
            type: cmd.type,
            amount: cmd.amount,
            priority: cmd.priority,
            effectiveAtMs: now + cmd.effOffset,
            expiresAtMs: cmd.lifeMs === null ? null : now + cmd.effOffset + cmd.lifeMs,
            reason: cmd.withReason ? "model" : null,
            costBasis: cmd.withCostBasis ? { amount: cmd.amount * 3, currency: "USD" } : null,
          }),
          created,
          now,
        );
        expect(outcome(r)).toBe(model.grant(id, cmd, created));
        if (r.ok) {
          putLots([r.value.lot], true);
          record(r.value.entries);
        }
        break;
      }
      case "debit": {
        const expected = model.draw(cmd.unit, cmd.amount);
        const available = model.available(cmd.unit);
        const r = planDebit(lots.values(), { ref: `d${step}`, unit: cmd.unit, amount: cmd.amount }, policy, now);
        if (expected === null) {
          expect(r).toEqual({
            ok: false,
            error: { code: "insufficient_credits", available, requested: cmd.amount },
          });
          break;
        }
        if (!r.ok) throw new Error(`debit refused but the model has ${available} ≥ ${cmd.amount}`);
        expect(r.value.applied.map((a) => ({ id: a.grantId, n: a.amount }))).toEqual(expected);
        putLots(r.value.lots);
        record(r.value.entries);
        model.debit(expected);
        break;
      }
      case "void": {
        if (model.lots.length === 0) break;
        const ml = model.lots[cmd.index % model.lots.length] as MLot;
        const r = planVoid(lots.get(ml.id) as Lot, "model", now);
        expect(outcome(r)).toBe(model.voidLot(ml));
        if (r.ok) {
          putLots([r.value.lot]);
          record(r.value.entries);
        }
        break;
      }
      case "hold": {
        const id = `h${step}`;
        const expected = model.draw(cmd.unit, cmd.amount);
        const r = planReserve(lots.values(), { ref: id, unit: cmd.unit, amount: cmd.amount }, policy, now, cmd.kind);
        expect(r.ok).toBe(expected !== null);
        if (!r.ok || expected === null) break;
        expect(r.value.applied.map((a) => ({ id: a.grantId, n: a.amount }))).toEqual(expected);
        putLots(r.value.lots);
        record(r.value.entries);
        holds.push(
          deepFreeze({
            holdId: id,
            kind: cmd.kind,
            unit: cmd.unit,
            amount: cmd.amount,
            allocations: r.value.applied.map((a) => ({ grantId: a.grantId, amount: a.amount })),
            status: "open",
            expiresAtMs: now + 300_000,
            captured: 0,
            released: 0,
            createdAtMs: now,
            closedAtMs: null,
          }),
        );
        model.hold(id, cmd.unit, cmd.amount, expected);
        break;
      }
      case "close": {
        if (holds.length === 0) break;
        const i = cmd.index % holds.length;
        const hold = holds[i] as Hold;
        const capture = cmd.capture === "all" ? hold.amount : cmd.capture === "release" ? 0 : cmd.capture;
        const r = planCloseHold(lots, hold, capture, now);
        expect(outcome(r)).toBe(model.close(model.holds[i] as MHold, capture));
        if (!r.ok) break;
        expect(r.value.hold.captured + r.value.hold.released).toBe(hold.amount);
        expect(r.value.hold.captured).toBe(capture);
        putLots(r.value.lots);
        record(r.value.entries);
        holds[i] = deepFreeze(r.value.hold);
        break;
      }
      case "advance":
        now += cmd.ms;
        model.now = now;
        break;
      case "expire": {
        const plan = planExpire(lots.values(), now);
        expect(plan.lots.map((l) => l.grantId).sort()).toEqual(model.expire().sort());
        putLots(plan.lots);
        record(plan.entries);
        // Idempotent: a second sweep at the same time finds nothing.
        expect(planExpire(lots.values(), now)).toEqual({ lots: [], entries: [] });
        break;
      }
    }
    checkState(model, lots, holds, entries, now);
    snapshots.set(now, {
      lots: new Map(model.lots.map((l) => [l.id, { remaining: l.remaining, held: l.held, voidedAtMs: l.voidedAt }])),
      available: { credits: model.available("credits"), gpu_seconds: model.available("gpu_seconds") },
    });
  });

  // as_of: replaying only the entries recorded by T gives the state after the last command at T.
  for (const [t, snap] of snapshots) {
    const replayed = replayLots(lots.values(), entries, t);
    expect(
      new Map(replayed.map((l) => [l.grantId, { remaining: l.remaining, held: l.held, voidedAtMs: l.voidedAtMs }])),
    ).toEqual(snap.lots);
    for (const unit of UNITS) expect(balanceOf(replayed, unit, t).available).toBe(snap.available[unit]);
  }

  // Invariant 8: the served chain re-verifies, and any changed amount breaks it.
  const chain = serveChain("acct-model", entries);
  expect(verifyChain(chain)).toBeNull();
  if (chain.length > 0) {
    const at = tamperAt % chain.length;
    const tampered = chain.map((e, j) => (j === at ? { ...e, amount: e.amount + 1 } : e));
    expect(verifyChain(tampered)?.seq).toBe(at + 1);
  }
  return entries;
}

function checkState(model: Model, lots: Map<string, Lot>, holds: Hold[], entries: Recorded[], now: number): void {
  expect(lots.size).toBe(model.lots.length);

  // Every lot agrees with the model and keeps 0 ≤ held ≤ remaining ≤ amount.
  for (const ml of model.lots) {
    const l = lots.get(ml.id) as Lot;
    expect({ id: l.grantId, remaining: l.remaining, held: l.held, voidedAtMs: l.voidedAtMs }).toEqual({
      id: ml.id,
      remaining: ml.remaining,
      held: ml.held,
      voidedAtMs: ml.voidedAt,
    });
    expect(0 <= l.held && l.held <= l.remaining && l.remaining <= l.amount, `lot ${l.grantId}`).toBe(true);
  }

  // A lot's held part is exactly what open holds reserved in it.
  const reserved = new Map<string, number>();
  for (const h of holds) {
    if (h.status !== "open") continue;
    for (const a of h.allocations) reserved.set(a.grantId, (reserved.get(a.grantId) ?? 0) + a.amount);
  }
  for (const l of lots.values()) expect(l.held, `held of ${l.grantId}`).toBe(reserved.get(l.grantId) ?? 0);

  // Invariant 1: available per unit is the brute-force sum, never negative; held ≥ 0.
  for (const unit of UNITS) {
    const b = balanceOf(lots.values(), unit, now);
    expect(b.available).toBe(model.available(unit));
    expect(b.held).toBe(model.held(unit));
    expect(b.available).toBeGreaterThanOrEqual(0);
    expect(b.held).toBeGreaterThanOrEqual(0);
  }

  // Invariant 2: the entries sum to the state, per unit and per grant (one pass over the entries).
  const sums = new Map<string, { amount: number; held: number }>();
  const add = (key: string, e: Recorded) => {
    const s = sums.get(key) ?? { amount: 0, held: 0 };
    s.amount += e.amount;
    s.held += e.heldDelta;
    sums.set(key, s);
  };
  for (const e of entries) {
    add(`unit:${e.unit}`, e);
    if (e.grantId !== null) {
      expect(e.unit).toBe(lots.get(e.grantId)?.unit);
      add(`grant:${e.grantId}`, e);
    }
  }
  const zero = { amount: 0, held: 0 };
  for (const unit of UNITS) {
    const state = { amount: 0, held: 0 };
    for (const l of lots.values()) {
      if (l.unit !== unit) continue;
      state.amount += l.remaining;
      state.held += l.held;
    }
    expect(sums.get(`unit:${unit}`) ?? zero, unit).toEqual(state);
  }
  for (const l of lots.values()) {
    expect(sums.get(`grant:${l.grantId}`) ?? zero, l.grantId).toEqual({ amount: l.remaining, held: l.held });
  }

  // The ledger replays to the state.
  const replayed = replayLots(lots.values(), entries, now);
  expect(replayed.length).toBe(lots.size);
  for (const r of replayed) {
    const l = lots.get(r.grantId) as Lot;
    expect([r.remaining, r.held, r.voidedAtMs]).toEqual([l.remaining, l.held, l.voidedAtMs]);
  }
}

describe("the ledger core against a reference model", () => {
  it("agrees on every command and keeps invariants 1, 2 and 8", () => {
    fc.assert(
      fc.property(
        arbPolicy,
        fc.array(arbCmd, { minLength: 1, maxLength: 60, size: "max" }),
        fc.nat(),
        (policy, cmds, tamperAt) => {
          runScenario(policy, cmds, tamperAt);
        },
      ),
      { numRuns: 300 },
    );
  }, 60_000);

  it("covers the interesting paths (the generator is not vacuous)", () => {
    // A fixed script through each branch, so a generator change cannot silently stop reaching them.
    const g = (over: Partial<Extract<Cmd, { k: "grant" }>>): Cmd => ({
      k: "grant",
      amount: 10,
      type: "purchased",
      priority: 100,
      effOffset: 0,
      lifeMs: null,
      unit: "credits",
      withReason: true,
      withCostBasis: false,
      ...over,
    });
    const entries = runScenario(
      DEFAULT_POLICY,
      [
        g({ lifeMs: 20, type: "promotional" }), // g1 expires at +20
        g({ effOffset: 5 }), // g2 pending until +5
        g({ unit: "gpu_seconds", amount: 7 }), // g3 other unit
        { k: "hold", amount: 8, unit: "credits", kind: "hold" }, // h3: 8 of g1
        { k: "debit", amount: 3, unit: "credits" }, // refused: only 2 of g1 are free
        { k: "debit", amount: 2, unit: "credits" }, // g1 drained of free credits
        { k: "advance", ms: 5 }, // g2 effective
        { k: "hold", amount: 4, unit: "credits", kind: "receipt" }, // h8: 4 of g2
        { k: "void", index: 1 }, // void g2: 6 leave, 4 stay held
        { k: "advance", ms: 15 }, // g1 expired while held
        { k: "expire" },
        { k: "close", index: 0, capture: 3 }, // capture 3 from expired g1, release 5 → leaves
        { k: "close", index: 1, capture: 1 }, // settle receipt on voided g2: 3 leave
        { k: "close", index: 1, capture: "release" }, // hold_closed
        { k: "debit", amount: 7, unit: "gpu_seconds" },
        { k: "debit", amount: 1, unit: "gpu_seconds" }, // refused
        { k: "expire" },
      ],
      3,
    );
    expect(entries.map((e) => `${e.kind} ${e.grantId} ${e.amount}/${e.heldDelta}`)).toEqual([
      "grant g1 10/0",
      "grant g2 10/0",
      "grant g3 7/0",
      "hold g1 0/8",
      "debit g1 -2/0",
      "receipt g2 0/4",
      "grant.voided g2 -6/0",
      "hold.captured g1 -3/-3",
      "hold.released g1 0/-5",
      "grant.expired g1 -5/0",
      "receipt.settled g2 -1/-4",
      "grant.voided g2 -3/0",
      "debit g3 -7/0",
    ]);
  });
});
