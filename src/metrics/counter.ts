/**
 * An account's counters, kept in its own SQLite (metric_counts: one row per
 * minute, name and labels) and shipped to D1 once their minute has closed.
 *
 * - Entries are counted by a commit hook, in the SAME transactionSync that
 *   writes them: a commit that rolls back counts nothing, one that commits
 *   counts once, whatever happens to its outbox rows later.
 * - Denials are counted when a debit, hold, receipt or usage event is refused
 *   (the final answer, after a budget draw had its chance).
 * - The alarm job seals every minute before the current one and ships it to
 *   D1 (store.ts shipStatements) as delta rows keyed by (account, minute,
 *   name, labels); D1 counts a key once, so a shipment retried after a crash
 *   counts once. Rows leave SQLite only after D1 committed.
 * - Counting never lands in a minute already handed to a shipment: the
 *   `floor_ms` kept in metric_state moves to the first open minute before a
 *   shipment starts, and counts go to max(now's minute, floor_ms).
 *
 * Bounds: a commit upserts one row per distinct (kind, unit) it writes; an
 * account holds one row per series per minute until shipped (D1 down for a
 * day on a busy account: ~1 440 × its series); one shipment carries at most
 * METRIC_SHIP_BATCH rows.
 */
import { log } from "../log";
import { type DataPoint, point, writePoints } from "./analytics";
import { labelsOf, MINUTE_MS, minuteOf } from "./names";
import { type DeltaRow, METRIC_ACCEPT_MS, shipStatements } from "./store";

/** Sealed rows one D1 batch ships; more ship on the next alarm, a second later. */
export const METRIC_SHIP_BATCH = 500;
/** After a failed shipment, the metrics job asks to run again this soon. */
export const METRIC_RETRY_MS = 30_000;
/** A closed minute ships this long after it ends (the alarm fires then). */
export const METRIC_SEAL_DELAY_MS = 1_000;

/** The DO SQLite tables (added to src/account/schema.ts SCHEMA). */
export const METRIC_DO_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS metric_counts (
    minute_ms INTEGER NOT NULL, name TEXT NOT NULL, labels TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (minute_ms, name, labels)) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS metric_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
];

/** What the book reads of a refused or answered operation (src/account/types.ts Outcome). */
type Answer = { ok: true } | { ok: false; problem: { code: string } };
/** A usage batch's results (src/account/usage.ts). */
type UsageAnswer = { results: readonly { code?: string }[] };
/** An entry draft as a commit hook sees it (src/ledger EntryDraft). */
type Drafted = { kind: string; unit: string; amount: number };

/** What the book reads of its account (src/account/core.ts AccountCore has both). */
export interface MetricsClock {
  /** The account's clock (DO clock, test offset included). */
  now(): number;
  /** Null before the account exists: nothing is counted or shipped then. */
  readonly account: { account_id: string } | null;
}

const UPSERT = `INSERT INTO metric_counts (minute_ms, name, labels, value) VALUES (?, ?, ?, ?)
  ON CONFLICT (minute_ms, name, labels) DO UPDATE SET value = value + excluded.value`;

export class MetricsBook {
  /** Test seam: the Analytics Engine dataset (env.METRICS; undefined: not bound, no points). */
  dataset: AnalyticsEngineDataset | undefined;
  private floorMs: number;
  /** The minute whose close the alarm was last asked to wake for. */
  private wakeFor = -1;
  private shipping = false;

  /** The alarm job (src/account/jobs.ts AlarmJob). */
  readonly job = { name: "metrics", run: () => this.ship() };

  /**
   * @param db where sealed minutes ship (the DO's D1, env.DB)
   * @param wake asks the alarm to fire at a DO-clock time
   * @param dataset env.METRICS, undefined when not bound
   */
  constructor(
    private readonly sql: SqlStorage,
    private readonly clock: MetricsClock,
    private readonly db: () => D1Database,
    private readonly wake: (atMs: number) => void,
    dataset: AnalyticsEngineDataset | undefined,
  ) {
    this.dataset = dataset;
    const row = sql.exec("SELECT value FROM metric_state WHERE key = 'floor_ms'").toArray()[0];
    this.floorMs = row === undefined ? 0 : Number(row.value);
  }

  private bucket(nowMs: number): number {
    return Math.max(minuteOf(nowMs), this.floorMs);
  }

  /** The alarm must fire once this minute has closed; asked once per minute. */
  private armFor(minuteMs: number): void {
    if (this.wakeFor === minuteMs) return;
    this.wakeFor = minuteMs;
    this.wake(minuteMs + MINUTE_MS + METRIC_SEAL_DELAY_MS);
  }

  /**
   * The commit hook (core.ts CommitHook): counts the change's entries inside
   * its transaction, writes AE points once it committed.
   */
  readonly hook = (m: { ctx: { accountId: string }; entries: readonly Drafted[] }, _staged: unknown, nowMs: number) => {
    // The first grant creates the account in this very commit: the change names it.
    const accountId = m.ctx.accountId;
    if (m.entries.length === 0) return null;
    const groups = new Map<string, { kind: string; unit: string; count: number; amount: number }>();
    for (const e of m.entries) {
      const key = `${e.kind}\u0000${e.unit}`;
      const g = groups.get(key) ?? { kind: e.kind, unit: e.unit, count: 0, amount: 0 };
      g.count++;
      g.amount += Math.abs(e.amount);
      groups.set(key, g);
    }
    const minuteMs = this.bucket(nowMs);
    return {
      write: () => {
        for (const g of groups.values()) {
          const labels = labelsOf({ kind: g.kind, unit: g.unit });
          this.sql.exec(UPSERT, minuteMs, "creditgate_entries_total", labels, g.count);
          if (g.amount > 0) this.sql.exec(UPSERT, minuteMs, "creditgate_entry_amount_total", labels, g.amount);
        }
      },
      applied: () => {
        const points: DataPoint[] = [];
        for (const g of groups.values()) {
          points.push(point("creditgate_entries_total", [g.kind, g.unit], g.count, accountId));
          if (g.amount > 0) points.push(point("creditgate_entry_amount_total", [g.kind, g.unit], g.amount, accountId));
        }
        writePoints(this.dataset, points);
        this.armFor(minuteMs);
      },
    };
  };

  private deny(codes: readonly string[]): void {
    const accountId = this.clock.account?.account_id ?? null;
    if (accountId === null || codes.length === 0) return;
    const counts = new Map<string, number>();
    for (const code of codes) counts.set(code, (counts.get(code) ?? 0) + 1);
    const minuteMs = this.bucket(this.clock.now());
    const points: DataPoint[] = [];
    for (const [code, n] of counts) {
      this.sql.exec(UPSERT, minuteMs, "creditgate_denials_total", labelsOf({ code }), n);
      points.push(point("creditgate_denials_total", [code], n, accountId));
    }
    writePoints(this.dataset, points);
    this.armFor(minuteMs);
  }

  /** Counts a refused debit, hold or receipt; returns the answer unchanged (for `.then`). */
  readonly refused = <T extends Answer>(out: T): T => {
    if (!out.ok) this.deny([out.problem.code]);
    return out;
  };

  /** Counts a usage batch's refused events; returns it unchanged. */
  readonly usageRefused = <T extends UsageAnswer>(batch: T): T => {
    this.deny(batch.results.flatMap((r) => (r.code === undefined ? [] : [r.code])));
    return batch;
  };

  /** Rows not yet shipped (tests and the runbook's DO checks). */
  pending(): number {
    return Number(this.sql.exec("SELECT count(*) AS n FROM metric_counts").one().n);
  }

  /**
   * The alarm job: ships up to METRIC_SHIP_BATCH rows of closed minutes and
   * answers when to run next (DO clock): soon when more closed rows wait,
   * after the open minute closes when it holds rows, null when nothing is left.
   */
  async ship(): Promise<number | null> {
    const nowMs = this.clock.now();
    const accountId = this.clock.account?.account_id ?? null;
    if (accountId === null) return null;
    if (this.shipping) return nowMs + METRIC_SEAL_DELAY_MS;
    const openMs = minuteOf(nowMs);
    if (openMs > this.floorMs) {
      this.floorMs = openMs;
      this.sql.exec(
        "INSERT INTO metric_state (key, value) VALUES ('floor_ms', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        openMs,
      );
    }
    const sealed = this.sql
      .exec(
        "SELECT minute_ms, name, labels, value FROM metric_counts WHERE minute_ms < ? ORDER BY minute_ms, name, labels LIMIT ?",
        this.floorMs,
        METRIC_SHIP_BATCH,
      )
      .toArray()
      .map((r): DeltaRow => [accountId, Number(r.minute_ms), String(r.name), String(r.labels), Number(r.value)]);
    if (sealed.length > 0) {
      const stale = sealed.filter((r) => r[1] < nowMs - METRIC_ACCEPT_MS).length;
      // D1 refuses them (see store.ts): a re-shipment could otherwise find its delta pruned and count twice.
      if (stale > 0) log({ event: "metrics.stale_dropped", account_id: accountId, rows: stale });
      this.shipping = true;
      try {
        const db = this.db();
        await db.batch(shipStatements(db, sealed, nowMs));
      } catch (e) {
        log({ event: "metrics.ship_failed", account_id: accountId, rows: sealed.length, error: String(e) });
        return this.clock.now() + METRIC_RETRY_MS;
      } finally {
        this.shipping = false;
      }
      // Nothing can have been counted into these minutes meanwhile: counts go to floor_ms or later.
      for (const [, minuteMs, name, labels] of sealed) {
        this.sql.exec(
          "DELETE FROM metric_counts WHERE minute_ms = ? AND name = ? AND labels = ?",
          minuteMs,
          name,
          labels,
        );
      }
      if (sealed.length === METRIC_SHIP_BATCH) return this.clock.now() + METRIC_SEAL_DELAY_MS;
    }
    const open = this.sql.exec("SELECT min(minute_ms) AS m FROM metric_counts").one().m;
    return open === null ? null : Number(open) + MINUTE_MS + METRIC_SEAL_DELAY_MS;
  }
}
