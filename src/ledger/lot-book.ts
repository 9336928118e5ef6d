/**
 * Every lot of one account, indexed for the hot path (issue 11). A debit used
 * to filter and sort every lot the account ever held, then rescan them all for
 * the balance it answers with; at 100 000 lots that was most of its cost. The
 * book keeps, per unit, only the lots that can still matter (open: something
 * remaining or held), with:
 *
 * - the open lots in the policy's consumption order (built once per order,
 *   then updated in place), so a draw walks from the front and stops as soon
 *   as it is covered;
 * - running totals (live unheld credits and held credits by type), so the
 *   balance is O(types) and a short account is refused without a walk;
 * - the pending lots by effective time and the live dated lots by expiry, so
 *   moving the clock forward moves only the lots whose time came, and the
 *   balance's expiring and pending lists are read from the front.
 *
 * It answers exactly what the plain functions answer over every lot
 * (`pickLots`, `balanceOf`): test/unit/lot-book.property.test.ts checks that
 * against them for random lots, changes, policies and clocks. Pure: no
 * Cloudflare import; the account's core owns one and rebuilds it on wake.
 *
 * Bounds: memory is one slot per lot ever held (lots are never deleted; the
 * account's own lot bound applies); a change costs O(log n) plus an array
 * splice when a lot opens, closes or changes its place; a draw walks the
 * order until covered (lots skipped on the way are pending, expired or fully
 * held); moving the clock backwards (tests do) re-sorts the unit once.
 */
import type { BalanceView } from "./lots";
import { lotComparator, type Policy } from "./policy";
import { CREDIT_TYPES, type CreditType, err, type LedgerError, type Lot, ok, type Result } from "./types";

type State = "pending" | "live" | "dead";

interface Slot {
  lot: Lot;
  /** The lot's place in the book's insertion order: the tie-break a stable sort over the map would use. */
  readonly seq: number;
  state: State;
}

export interface BookTake {
  lot: Lot;
  amount: number;
}

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** Soonest last, so the next lot whose time comes is popped from the end. */
const effectiveDesc = (a: Slot, b: Slot) =>
  b.lot.effectiveAtMs - a.lot.effectiveAtMs || byId(b.lot.grantId, a.lot.grantId);
const expiryDesc = (a: Slot, b: Slot) =>
  (b.lot.expiresAtMs ?? 0) - (a.lot.expiresAtMs ?? 0) || byId(b.lot.grantId, a.lot.grantId);

const zeroByType = () => Object.fromEntries(CREDIT_TYPES.map((t) => [t, 0])) as Record<CreditType, number>;

function isOpen(lot: Lot): boolean {
  return lot.remaining > 0 || lot.held > 0;
}

function stateAt(lot: Lot, nowMs: number): State {
  if (lot.voidedAtMs !== null) return "dead";
  if (nowMs < lot.effectiveAtMs) return "pending";
  if (lot.expiresAtMs !== null && lot.expiresAtMs <= nowMs) return "dead";
  return "live";
}

/** What decides a lot's place among the others (its amounts do not). */
function placeChanged(a: Lot, b: Lot): boolean {
  return (
    a.priority !== b.priority ||
    a.expiresAtMs !== b.expiresAtMs ||
    a.effectiveAtMs !== b.effectiveAtMs ||
    a.type !== b.type ||
    a.createdOrder !== b.createdOrder ||
    a.voidedAtMs !== b.voidedAtMs
  );
}

/** Index of `slot` in `arr` (sorted by `cmp`, a total order over distinct slots), or where it would go. */
function search(arr: readonly Slot[], slot: Slot, cmp: (a: Slot, b: Slot) => number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(arr[mid] as Slot, slot) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(arr: Slot[], slot: Slot, cmp: (a: Slot, b: Slot) => number): void {
  arr.splice(search(arr, slot, cmp), 0, slot);
}

function removeSorted(arr: Slot[], slot: Slot, cmp: (a: Slot, b: Slot) => number): void {
  const i = search(arr, slot, cmp);
  if (arr[i] === slot) arr.splice(i, 1);
  else {
    // Not where its keys say (it cannot happen while keys are read from the stored slot); find it anyway.
    const j = arr.indexOf(slot);
    if (j >= 0) arr.splice(j, 1);
  }
}

/** The open lots of one unit. */
class Shelf {
  readonly slots = new Map<string, Slot>();
  /** Null until the first read, and after the clock moved back: the next read classifies every slot. */
  private clockMs: number | null = null;
  private pendingQ: Slot[] = [];
  private expiryQ: Slot[] = [];
  private liveFree = zeroByType();
  private heldBy = zeroByType();
  private orderKey: string | null = null;
  private orderCmp: ((a: Slot, b: Slot) => number) | null = null;
  private ordered: Slot[] = [];

  /** Forgets the indexes (not the lots): the next read rebuilds them at once, as on wake. */
  invalidate(): void {
    this.clockMs = null;
    this.orderKey = null;
    this.orderCmp = null;
    this.ordered = [];
  }

  /** Adds, replaces or closes the slot of `slot.lot`. */
  put(slot: Slot): void {
    const old = this.slots.get(slot.lot.grantId);
    if (old) {
      if (isOpen(slot.lot) && !placeChanged(old.lot, slot.lot)) {
        // Only amounts moved (a draw, a hold, a capture): the lot keeps its place.
        this.count(old, -1);
        old.lot = slot.lot;
        this.count(old, 1);
        return;
      }
      this.remove(old);
    }
    if (!isOpen(slot.lot)) return;
    this.slots.set(slot.lot.grantId, slot);
    if (this.clockMs === null) return;
    slot.state = stateAt(slot.lot, this.clockMs);
    this.enqueue(slot);
    this.count(slot, 1);
    if (this.orderCmp) insertSorted(this.ordered, slot, this.orderCmp);
  }

  private remove(slot: Slot): void {
    this.slots.delete(slot.lot.grantId);
    if (this.clockMs === null) return;
    this.count(slot, -1);
    if (slot.state === "pending") removeSorted(this.pendingQ, slot, effectiveDesc);
    if (slot.state === "live" && slot.lot.expiresAtMs !== null) removeSorted(this.expiryQ, slot, expiryDesc);
    if (this.orderCmp) removeSorted(this.ordered, slot, this.orderCmp);
  }

  private enqueue(slot: Slot): void {
    if (slot.state === "pending") insertSorted(this.pendingQ, slot, effectiveDesc);
    else if (slot.state === "live" && slot.lot.expiresAtMs !== null) insertSorted(this.expiryQ, slot, expiryDesc);
  }

  /** Adds (or takes back) what one slot counts for in the running totals. */
  private count(slot: Slot, sign: 1 | -1): void {
    this.heldBy[slot.lot.type] += sign * slot.lot.held;
    if (slot.state === "live") this.countLive(slot, sign);
  }

  private countLive(slot: Slot, sign: 1 | -1): void {
    this.liveFree[slot.lot.type] += sign * (slot.lot.remaining - slot.lot.held);
  }

  /** Brings every slot to `nowMs`: forward moves only the lots whose time came; backward re-classifies all. */
  private advance(nowMs: number): void {
    if (this.clockMs === null || nowMs < this.clockMs) {
      this.classify(nowMs);
      return;
    }
    this.clockMs = nowMs;
    for (let next = this.pendingQ.at(-1); next && next.lot.effectiveAtMs <= nowMs; next = this.pendingQ.at(-1)) {
      this.pendingQ.pop();
      next.state = stateAt(next.lot, nowMs);
      if (next.state === "live") {
        this.countLive(next, 1);
        if (next.lot.expiresAtMs !== null) insertSorted(this.expiryQ, next, expiryDesc);
      }
    }
    for (let next = this.expiryQ.at(-1); next && (next.lot.expiresAtMs ?? 0) <= nowMs; next = this.expiryQ.at(-1)) {
      this.expiryQ.pop();
      this.countLive(next, -1);
      next.state = "dead";
    }
  }

  private classify(nowMs: number): void {
    this.clockMs = nowMs;
    this.liveFree = zeroByType();
    this.heldBy = zeroByType();
    this.pendingQ = [];
    this.expiryQ = [];
    for (const slot of this.slots.values()) {
      slot.state = stateAt(slot.lot, nowMs);
      this.count(slot, 1);
      if (slot.state === "pending") this.pendingQ.push(slot);
      else if (slot.state === "live" && slot.lot.expiresAtMs !== null) this.expiryQ.push(slot);
    }
    this.pendingQ.sort(effectiveDesc);
    this.expiryQ.sort(expiryDesc);
    if (this.orderCmp) this.ordered = [...this.slots.values()].sort(this.orderCmp);
  }

  private orderFor(policy: Policy): Slot[] {
    const key = `${policy.order.join(",")}|${policy.type_order.join(",")}`;
    if (key !== this.orderKey) {
      const lotCmp = lotComparator(policy);
      this.orderKey = key;
      this.orderCmp = (a, b) => lotCmp(a.lot, b.lot) || a.seq - b.seq;
      this.ordered = [...this.slots.values()].sort(this.orderCmp);
    }
    return this.ordered;
  }

  available(nowMs: number): number {
    this.advance(nowMs);
    let total = 0;
    for (const t of CREDIT_TYPES) total += this.liveFree[t];
    return total;
  }

  pick(amount: number, policy: Policy, nowMs: number): Result<BookTake[], LedgerError> {
    const available = this.available(nowMs);
    if (available < amount) return err({ code: "insufficient_credits", available, requested: amount });
    const takes: BookTake[] = [];
    let left = amount;
    for (const slot of this.orderFor(policy)) {
      if (left === 0) break;
      if (slot.state !== "live") continue;
      const free = slot.lot.remaining - slot.lot.held;
      if (free <= 0) continue;
      const n = Math.min(left, free);
      takes.push({ lot: slot.lot, amount: n });
      left -= n;
    }
    if (left !== 0) throw new Error("LotBook.pick: the running total covered the amount but the lots fell short");
    return ok(takes);
  }

  balance(unit: string, nowMs: number, listMax: number): BalanceView {
    this.advance(nowMs);
    const byType = zeroByType();
    let available = 0;
    let held = 0;
    for (const t of CREDIT_TYPES) {
      byType[t] = this.liveFree[t] + this.heldBy[t];
      available += this.liveFree[t];
      held += this.heldBy[t];
    }
    const expiring: BalanceView["expiring"] = [];
    for (let i = this.expiryQ.length - 1; i >= 0 && expiring.length <= listMax; i--) {
      const { lot } = this.expiryQ[i] as Slot;
      const free = lot.remaining - lot.held;
      if (free > 0) expiring.push({ grantId: lot.grantId, amount: free, expiresAtMs: lot.expiresAtMs ?? 0 });
    }
    const pending: BalanceView["pending"] = [];
    for (let i = this.pendingQ.length - 1; i >= 0 && pending.length <= listMax; i--) {
      const { lot } = this.pendingQ[i] as Slot;
      if (lot.remaining > 0)
        pending.push({ grantId: lot.grantId, amount: lot.remaining, effectiveAtMs: lot.effectiveAtMs });
    }
    return { unit, available, held, byType, expiring, pending };
  }
}

/**
 * The account's lots by grant id (a ReadonlyMap, in the order they were first
 * seen) with each unit's shelf of open lots. `set` is the only way in.
 */
export class LotBook implements ReadonlyMap<string, Lot> {
  private readonly byGrant = new Map<string, Lot>();
  private readonly seqs = new Map<string, number>();
  private readonly shelves = new Map<string, Shelf>();
  private nextSeq = 0;

  constructor(lots: Iterable<Lot> = []) {
    this.load(lots);
  }

  /** Adds or replaces many lots at once: the shelves they touch re-index on their next read (O(n log n) once). */
  load(lots: Iterable<Lot>): void {
    const touched = new Set<string>();
    for (const lot of lots) {
      if (!touched.has(lot.unit)) {
        touched.add(lot.unit);
        this.shelf(lot.unit).invalidate();
      }
      this.set(lot);
    }
  }

  /** Adds or replaces one lot. */
  set(lot: Lot): void {
    let seq = this.seqs.get(lot.grantId);
    if (seq === undefined) {
      seq = this.nextSeq++;
      this.seqs.set(lot.grantId, seq);
    }
    this.byGrant.set(lot.grantId, lot);
    this.shelf(lot.unit).put({ lot, seq, state: "pending" });
  }

  private shelf(unit: string): Shelf {
    let shelf = this.shelves.get(unit);
    if (!shelf) {
      shelf = new Shelf();
      this.shelves.set(unit, shelf);
    }
    return shelf;
  }

  /**
   * Puts back what `set` replaced: each of `lots` returns to its version in
   * `before` (same order), or leaves the book when it had none. For a commit
   * whose transaction threw after the book took its lots.
   */
  restore(lots: readonly Lot[], before: readonly (Lot | undefined)[]): void {
    for (let i = lots.length - 1; i >= 0; i--) {
      const lot = lots[i] as Lot;
      const prior = before[i];
      if (prior) this.set(prior);
      else this.forget(lot);
    }
  }

  /** Drops a lot the book should never have had (its seq too, so the order stays the map's). */
  private forget(lot: Lot): void {
    const seq = this.seqs.get(lot.grantId);
    if (seq === undefined) return;
    this.shelf(lot.unit).put({ lot: { ...lot, remaining: 0, held: 0 }, seq, state: "dead" });
    this.byGrant.delete(lot.grantId);
    this.seqs.delete(lot.grantId);
    if (seq === this.nextSeq - 1) this.nextSeq--;
  }

  /** Live unheld credits of `unit` at `nowMs` (what a draw may take in all). */
  available(unit: string, nowMs: number): number {
    return this.shelves.get(unit)?.available(nowMs) ?? 0;
  }

  /** What `pickLots` answers over every lot: the takes in the policy's order, all or nothing. */
  pick(unit: string, amount: number, policy: Policy, nowMs: number): Result<BookTake[], LedgerError> {
    return this.shelf(unit).pick(amount, policy, nowMs);
  }

  /** What `balanceOf` answers over every lot, with the expiring and pending lists cut at `listMax + 1`. */
  balance(unit: string, nowMs: number, listMax: number): BalanceView {
    return this.shelf(unit).balance(unit, nowMs, listMax);
  }

  /** The lots with something remaining or held, every unit (what expiry and deadlines look at). */
  *openLots(): Generator<Lot> {
    for (const shelf of this.shelves.values()) for (const slot of shelf.slots.values()) yield slot.lot;
  }

  // ReadonlyMap<string, Lot>, over the lots by grant id.
  get size(): number {
    return this.byGrant.size;
  }
  get(grantId: string): Lot | undefined {
    return this.byGrant.get(grantId);
  }
  has(grantId: string): boolean {
    return this.byGrant.has(grantId);
  }
  values(): MapIterator<Lot> {
    return this.byGrant.values();
  }
  keys(): MapIterator<string> {
    return this.byGrant.keys();
  }
  entries(): MapIterator<[string, Lot]> {
    return this.byGrant.entries();
  }
  [Symbol.iterator](): MapIterator<[string, Lot]> {
    return this.byGrant.entries();
  }
  forEach(fn: (lot: Lot, grantId: string, map: ReadonlyMap<string, Lot>) => void): void {
    for (const [id, lot] of this.byGrant) fn(lot, id, this);
  }
}
