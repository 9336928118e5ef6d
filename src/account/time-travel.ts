/**
 * The account as it stood at a past time T ("the entries recorded at or
 * before T", recorded_at never decreasing along the chain: core.commit
 * clamps it to the head's). Inside the window a lot's state is its last
 * mark at or before T, one index probe per lot. Below the window floor it
 * is the last checkpoint at or before T plus the entries after it up to T,
 * read from the tiers: at most one checkpoint interval of entries, never a
 * replay from seq 1.
 */
import { HISTORY_READ_MAX } from "../archive/read";
import { assert, type Lot, lotsAsOf } from "../ledger";
import { firstSeqAtOrAfter } from "../ledger/statement";
import type { AccountCore } from "./core";
import type { AccountWindow } from "./window";

type State = { remaining: number; held: number };

/** Pages of HISTORY_READ_MAX one checkpoint interval may take at most (a burst between two alarm runs). */
const INTERVAL_PAGES_MAX = 1_000;

export class TimeTravel {
  constructor(
    private readonly core: AccountCore,
    readonly window: AccountWindow,
  ) {}

  private terms(unit: string | null): Lot[] {
    const all = [...this.core.lots.values()];
    return unit === null ? all : all.filter((lot) => lot.unit === unit);
  }

  /** A lot's state at checkpoint `seq` (its last checkpoint mark at or before it; null: no entry by then). */
  private checkpointMark(grantId: string, seq: number): State | null {
    const row = this.core.sql
      .exec(
        "SELECT remaining, held FROM checkpoint_marks WHERE grant_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
        grantId,
        seq,
      )
      .toArray()[0];
    return row ? { remaining: Number(row.remaining), held: Number(row.held) } : null;
  }

  /** A lot's last mark recorded at or before `asOfMs` among those above seq `aboveSeq`. */
  private windowMark(grantId: string, asOfMs: number, aboveSeq: number): State | null {
    const row = this.core.sql
      .exec(
        `SELECT remaining, held FROM lot_marks WHERE grant_id = ? AND recorded_at_ms <= ? AND seq > ?
         ORDER BY recorded_at_ms DESC, seq DESC LIMIT 1`,
        grantId,
        asOfMs,
        aboveSeq,
      )
      .toArray()[0];
    return row ? { remaining: Number(row.remaining), held: Number(row.held) } : null;
  }

  /**
   * Lots (of `unit`, or all) as they stood at `asOfMs` when the object can
   * answer alone: nothing compacted, or T at or after the floor's checkpoint.
   * Null: T is below the floor (lotStatesAt reads the tiers).
   */
  statesInWindow(asOfMs: number, unit: string | null): Lot[] | null {
    const floor = this.window.floor();
    const floorSeq = floor?.seq ?? 0;
    if (floor !== null && asOfMs < floor.recordedAtMs) return null;
    // At or after the floor's recorded_at, every entry ≤ floor counts: a lot untouched since has its checkpoint state.
    const markAt = (grantId: string) =>
      this.windowMark(grantId, asOfMs, floorSeq) ?? (floor === null ? null : this.checkpointMark(grantId, floorSeq));
    return lotsAsOf(this.terms(unit), markAt, asOfMs);
  }

  /**
   * Lots (of `unit`, or every unit) as they stood at `asOfMs`, with
   * remaining/held from the entries recorded at or before it; lots with no
   * entry by then are left out (src/ledger/replay.ts lotsAsOf). The one
   * function replay comparisons call.
   */
  async lotStatesAt(asOfMs: number, unit: string | null = null): Promise<Lot[]> {
    const inWindow = this.statesInWindow(asOfMs, unit);
    if (inWindow !== null) return inWindow;
    const sql = this.core.sql;
    // The last checkpoint recorded at or before T (0: T is before the first), and the next one (≤ the floor).
    const base = sql
      .exec(
        "SELECT seq FROM checkpoints WHERE recorded_at_ms <= ? ORDER BY recorded_at_ms DESC, seq DESC LIMIT 1",
        asOfMs,
      )
      .toArray()[0];
    const baseSeq = base === undefined ? 0 : Number(base.seq);
    const next = sql.exec("SELECT seq FROM checkpoints WHERE seq > ? ORDER BY seq LIMIT 1", baseSeq).toArray()[0];
    assert(next !== undefined, `no checkpoint after seq ${baseSeq} below the floor`);
    const nextSeq = Number(next.seq);
    // Entries (base, next): those recorded by T move their lots; the next checkpoint's entry is after T.
    const moved = new Map<string, State>();
    let after = baseSeq;
    for (let page = 0; after < nextSeq; page++) {
      assert(page < INTERVAL_PAGES_MAX, `checkpoint interval after seq ${baseSeq} is too long`);
      const entries = await this.window.entries(after, Math.min(nextSeq, after + HISTORY_READ_MAX));
      let passedT = false;
      for (const e of entries) {
        if (Date.parse(e.recorded_at) > asOfMs) {
          passedT = true;
          break;
        }
        after = e.seq;
        if (e.grant_id === null) continue;
        const s = moved.get(e.grant_id) ?? { remaining: 0, held: 0 };
        s.remaining += e.amount;
        s.held += e.held_delta;
        moved.set(e.grant_id, s);
      }
      if (passedT || entries.length === 0) break;
    }
    const markAt = (grantId: string): State | null => {
      const at = baseSeq === 0 ? null : this.checkpointMark(grantId, baseSeq);
      const d = moved.get(grantId);
      if (at === null && d === undefined) return null;
      return { remaining: (at?.remaining ?? 0) + (d?.remaining ?? 0), held: (at?.held ?? 0) + (d?.held ?? 0) };
    };
    return lotsAsOf(this.terms(unit), markAt, asOfMs);
  }

  /** The recorded_at of the entry at `seq`, above the floor from the object, below it from the tiers. */
  private probe(): (seq: number) => number {
    const seen = new Map<number, number>();
    return (seq) => {
      const known = seen.get(seq);
      if (known !== undefined) return known;
      const row = this.core.sql.exec("SELECT recorded_at_ms FROM entries WHERE seq = ?", seq).toArray()[0];
      assert(row !== undefined, `seq ${seq} is missing from the object's window`);
      seen.set(seq, Number(row.recorded_at_ms));
      return Number(row.recorded_at_ms);
    };
  }

  /**
   * The first seq in 1..head recorded at or after `atMs` (head + 1 when
   * none is). Above the floor: a binary search over the object's entries.
   * Below it: the checkpoints bracket it (their recorded_at is their
   * entry's), then one interval of entries is read from the tiers.
   */
  async firstSeqAtOrAfter(atMs: number): Promise<number> {
    const floor = this.window.floor();
    const head = this.core.headSeq;
    if (floor === null || atMs > floor.recordedAtMs) {
      const probe = this.probe();
      const floorSeq = floor?.seq ?? 0;
      return firstSeqAtOrAfter(head, (seq) => (seq <= floorSeq ? Number.NEGATIVE_INFINITY : probe(seq)), atMs);
    }
    const sql = this.core.sql;
    const before = sql
      .exec("SELECT seq FROM checkpoints WHERE recorded_at_ms < ? ORDER BY recorded_at_ms DESC, seq DESC LIMIT 1", atMs)
      .toArray()[0];
    const lo = before === undefined ? 0 : Number(before.seq);
    // The floor's checkpoint qualifies (atMs ≤ its recorded_at), so one is found.
    const hiRow = sql.exec("SELECT seq FROM checkpoints WHERE seq > ? ORDER BY seq LIMIT 1", lo).one();
    const hi = Number(hiRow.seq);
    let after = lo;
    for (let page = 0; after < hi; page++) {
      assert(page < INTERVAL_PAGES_MAX, `checkpoint interval after seq ${lo} is too long`);
      const entries = await this.window.entries(after, Math.min(hi, after + HISTORY_READ_MAX));
      for (const e of entries) {
        if (Date.parse(e.recorded_at) >= atMs) return e.seq;
        after = e.seq;
      }
    }
    return hi;
  }

  /** recorded_at (ms) of the entry at `seq`. */
  async recordedAt(seq: number): Promise<number> {
    const floor = this.window.floor();
    if (floor === null || seq > floor.seq) return this.probe()(seq);
    return Date.parse((await this.window.entryAt(seq)).recorded_at);
  }
}
