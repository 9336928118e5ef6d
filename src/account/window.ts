/**
 * The account's bounded window of entries. The alarm (after shipping) takes
 * a checkpoint every CHECKPOINT_EVERY entries: the chain head at a
 * transaction boundary, the totals then, and the state of each lot that
 * changed since the previous checkpoint. Once the object holds more than
 * ENTRY_WINDOW + WINDOW_SLACK entries, the floor moves to the newest
 * checkpoint that D1 verifiably holds and that leaves ENTRY_WINDOW entries
 * above it, and the entries and lot marks at or below the floor leave the
 * object, COMPACT_BATCH rows per run. Triggers (window-schema.ts) refuse
 * any other delete. Reads below the floor go through the tiers
 * (src/archive/read.ts readHistory), so every read answers as before.
 */
import { HISTORY_READ_MAX, readHistory } from "../archive/read";
import { assert, canonicalJson, type Entry, totalsOf } from "../ledger";
import { log } from "../log";
import type { AccountCore } from "./core";
import type { AlarmJob } from "./jobs";
import * as store from "./storage";
import { floorSeq } from "./window-schema";

/** Entries the object keeps at least (once it holds more than ENTRY_WINDOW + WINDOW_SLACK). */
export const ENTRY_WINDOW = 10_000;
/** A checkpoint is taken once the head is this many entries past the last one. */
export const CHECKPOINT_EVERY = 1_000;
/** Entries past the window the object may hold before compaction starts: one checkpoint interval. */
export const WINDOW_SLACK = CHECKPOINT_EVERY;
/** Entries (and at most as many lot marks) one alarm run deletes. */
export const COMPACT_BATCH = 2_000;
/** While rows at or below the floor remain, the alarm comes back this soon. */
export const COMPACT_AGAIN_MS = 1_000;
/** Tier reads one `entries` call makes at most (each ≤ HISTORY_READ_MAX entries), floor moves included. */
const TIER_STEPS_MAX = 1_000;

export interface WindowSettings {
  window: number;
  checkpointEvery: number;
  slack: number;
}

/** What one run did: the floor after it, the entries the object holds, the checkpoint taken, rows deleted. */
export interface WindowReport {
  floor: number;
  held: number;
  checkpoint: number | null;
  deleted: number;
  more: boolean;
}

/** readHistory's env: the Worker's Env (its bindings are what it reads; Env has no index signature). */
type HistoryEnv = Parameters<typeof readHistory>[0];

export class AccountWindow {
  /** One compaction at a time: the alarm's and a test's compactNow share it. */
  private running: Promise<WindowReport> | null = null;
  private readonly env: HistoryEnv;

  constructor(
    private readonly core: AccountCore,
    env: Env,
    private readonly transact: (write: () => void) => void,
  ) {
    this.env = env as unknown as HistoryEnv;
  }

  /** The alarm's step: checkpoint if due, compact a batch; back soon while rows below the floor remain. */
  get job(): AlarmJob {
    return {
      name: "window",
      run: async () => ((await this.run()).more ? this.core.now() + COMPACT_AGAIN_MS : null),
    };
  }

  /** The production defaults, or what `configure` stored (tests shrink the window to a few entries). */
  settings(): WindowSettings {
    const s = store.readMeta<{ window: number; checkpointEvery: number }>(this.core.sql, "window_settings");
    if (s === null) return { window: ENTRY_WINDOW, checkpointEvery: CHECKPOINT_EVERY, slack: WINDOW_SLACK };
    return { ...s, slack: s.checkpointEvery };
  }

  /** Test seam (the DO's compactNow): another window and interval, kept in meta; each ≥ 1. */
  configure(s: { window: number; checkpointEvery: number }): void {
    const ok = (n: number) => Number.isSafeInteger(n) && n >= 1;
    assert(ok(s.window) && ok(s.checkpointEvery), "window and checkpointEvery must be integers ≥ 1");
    store.writeMeta(this.core.sql, "window_settings", { window: s.window, checkpointEvery: s.checkpointEvery });
  }

  /** The floor and its checkpoint's recorded_at (null: nothing has left the object). */
  floor(): { seq: number; recordedAtMs: number } | null {
    const seq = floorSeq(this.core.sql);
    if (seq === 0) return null;
    const row = this.core.sql.exec("SELECT recorded_at_ms FROM checkpoints WHERE seq = ?", seq).one();
    return { seq, recordedAtMs: Number(row.recorded_at_ms) };
  }

  run(): Promise<WindowReport> {
    if (this.running === null) {
      this.running = this.step().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  private async step(): Promise<WindowReport> {
    const checkpoint = this.checkpointIfDue();
    await this.moveFloor();
    const { deleted, more } = this.deleteBelowFloor();
    const held = this.held();
    return { floor: floorSeq(this.core.sql), held, checkpoint, deleted, more };
  }

  /** Entries the object holds now (the chain is gapless: head − lowest seq + 1). */
  held(): number {
    const min = this.core.sql.exec("SELECT MIN(seq) AS m FROM entries").one().m;
    return min === null ? 0 : this.core.headSeq - Number(min) + 1;
  }

  /**
   * A checkpoint at the head when it is checkpointEvery entries past the last
   * one. Reads only the lot marks since the previous checkpoint (each lot's
   * last one): bounded by the entries written since; the first one reads the
   * lots (bounded by the account's lots).
   */
  checkpointIfDue(): number | null {
    const sql = this.core.sql;
    const head = store.readHead(sql);
    const lastSeq = Number(sql.exec("SELECT COALESCE(MAX(seq), 0) AS s FROM checkpoints").one().s);
    if (head === null || head.seq - lastSeq < this.settings().checkpointEvery) return null;
    const states = new Map<string, { remaining: number; held: number }>();
    // The first checkpoint of an object (whose history may be long) takes every lot's state from the lots
    // table, written in the same transactions as the head: one row per lot, never a pass over the history.
    const rows =
      lastSeq === 0
        ? sql.exec("SELECT grant_id, remaining, held FROM lots")
        : sql.exec(
            "SELECT grant_id, remaining, held FROM lot_marks WHERE seq > ? AND seq <= ? ORDER BY seq",
            lastSeq,
            head.seq,
          );
    for (const r of rows) {
      states.set(String(r.grant_id), { remaining: Number(r.remaining), held: Number(r.held) });
    }
    const accountId = this.core.account?.account_id ?? null;
    // Two routes to the same state: the marks and the lots in memory (both at the head).
    for (const [grantId, s] of states) {
      const lot = this.core.lots.get(grantId);
      if (lot === undefined || lot.remaining !== s.remaining || lot.held !== s.held) {
        log({ event: "window.checkpoint_mismatch", account_id: accountId, grant_id: grantId, seq: head.seq });
      }
    }
    const totals = canonicalJson(totalsOf(this.core.lots.values()));
    this.transact(() => {
      sql.exec(
        "INSERT INTO checkpoints (seq, recorded_at_ms, head_hash, totals, created_at_ms) VALUES (?, ?, ?, ?, ?)",
        head.seq,
        head.recordedAtMs,
        head.hash,
        totals,
        this.core.now(),
      );
      for (const [grantId, s] of states) {
        sql.exec(
          "INSERT INTO checkpoint_marks (grant_id, seq, remaining, held) VALUES (?, ?, ?, ?)",
          grantId,
          head.seq,
          s.remaining,
          s.held,
        );
      }
    });
    log({ event: "window.checkpoint", account_id: accountId, seq: head.seq, lots: states.size });
    return head.seq;
  }

  /** Entries up to here are in D1: the outbox ships in seq order and deletes rows only after D1 committed. */
  private shippedSeq(): number {
    const row = this.core.sql.exec("SELECT payload FROM outbox WHERE topic = 'entry' ORDER BY id LIMIT 1").toArray()[0];
    if (row === undefined) return this.core.headSeq;
    return (JSON.parse(String(row.payload)) as { seq: number }).seq - 1;
  }

  /**
   * Moves the floor to the newest checkpoint ≤ the shipped seq and ≤ head −
   * window, once the object holds more than window + slack entries, after
   * D1 answered with that checkpoint's entry (same hash).
   */
  private async moveFloor(): Promise<void> {
    const sql = this.core.sql;
    const accountId = this.core.account?.account_id;
    const s = this.settings();
    const floor = floorSeq(sql);
    if (accountId === undefined || this.core.headSeq - floor <= s.window + s.slack) return;
    const bound = Math.min(this.shippedSeq(), this.core.headSeq - s.window);
    const cp = sql
      .exec("SELECT seq, head_hash FROM checkpoints WHERE seq > ? AND seq <= ? ORDER BY seq DESC LIMIT 1", floor, bound)
      .toArray()[0];
    if (cp === undefined) return;
    const seq = Number(cp.seq);
    const [there] = await readHistory(this.env, accountId, seq - 1, seq, 1);
    if (there === undefined || there.hash !== String(cp.head_hash)) {
      log({ event: "window.unverified", account_id: accountId, seq, found: there?.hash ?? null });
      return;
    }
    // The window_floor_rules trigger checks it again: forward, onto a checkpoint, nothing unshipped.
    sql.exec("UPDATE window_floor SET seq = ? WHERE id = 1 AND seq < ?", seq, seq);
    log({ event: "window.floor", account_id: accountId, floor: seq, head_seq: this.core.headSeq });
  }

  /** Deletes the lowest rows at or below the floor, at most COMPACT_BATCH entries and their marks. */
  private deleteBelowFloor(): { deleted: number; more: boolean } {
    const sql = this.core.sql;
    const floor = floorSeq(sql);
    const minRaw = sql.exec("SELECT MIN(seq) AS m FROM entries").one().m;
    if (minRaw === null || Number(minRaw) > floor) return { deleted: 0, more: false };
    const min = Number(minRaw);
    const upTo = Math.min(floor, min + COMPACT_BATCH - 1);
    this.transact(() => {
      sql.exec("DELETE FROM lot_marks WHERE seq <= ?", upTo);
      sql.exec("DELETE FROM entries WHERE seq <= ?", upTo);
    });
    return { deleted: upTo - min + 1, more: upTo < floor };
  }

  /**
   * The entries with seq in (afterSeq, throughSeq], ascending and gapless:
   * those at or below the floor from the tiers, the rest from the object.
   * The caller bounds throughSeq − afterSeq.
   */
  async entries(afterSeq: number, throughSeq: number): Promise<Entry[]> {
    const sql = this.core.sql;
    const accountId = this.core.account?.account_id ?? "";
    const out: Entry[] = [];
    let after = Math.max(0, afterSeq);
    for (let step = 0; after < throughSeq; step++) {
      assert(step < TIER_STEPS_MAX, `reading entries of ${accountId} after ${afterSeq} took too many steps`);
      // Read synchronously right before the object's rows: nothing above it can be deleted meanwhile.
      const floor = floorSeq(sql);
      if (after >= floor) {
        for (const e of store.readEntryRange(sql, accountId, after + 1, throughSeq)) {
          assert(e.seq === after + 1, `the object's chain of ${accountId} has a gap after seq ${after}`);
          out.push(e);
          after = e.seq;
        }
        assert(after === throughSeq, `the object's chain of ${accountId} ends at ${after}, not ${throughSeq}`);
        break;
      }
      const page = await readHistory(this.env, accountId, after, Math.min(floor, throughSeq), HISTORY_READ_MAX);
      assert(page.length > 0, `the tiers hold no entry of ${accountId} after seq ${after}`);
      for (const e of page) {
        assert(e.seq === after + 1, `the tiers' history of ${accountId} has a gap after seq ${after}`);
        out.push(e);
        after = e.seq;
      }
    }
    return out;
  }

  /** One entry by seq, from whichever tier holds it. */
  async entryAt(seq: number): Promise<Entry> {
    const [e] = await this.entries(seq - 1, seq);
    assert(e !== undefined, `no entry at seq ${seq}`);
    return e;
  }
}
