/**
 * Ships an account's outbox to D1, one shipment at a time. A shipment is a
 * run of whole DO transactions (outbox `txn`): as many as fit in OUTBOX_BATCH
 * rows, or one transaction alone when it is larger, and it goes to D1 as ONE
 * `db.batch` (one D1 transaction), so D1 never holds part of a transaction.
 * With several ledger shards (src/db/shards.ts) the entries go first, as one
 * batch to the account's shard, then everything else with account_heads as
 * one batch to DB: each database holds whole transactions, and shipped_seq
 * never claims an entry the shard lacks.
 * Rows travel as JSON arrays, many per statement (INSERT … SELECT FROM
 * json_each), so even a 100 000-entry debit stays within D1's per-statement
 * limits. Entries conflict only on entry_id (`ON CONFLICT (entry_id) DO
 * NOTHING`): a shipment sent twice (a crash after D1 committed but before the
 * outbox rows were deleted) writes nothing twice, while any other clash, such
 * as D1 holding the same seq under another entry id, fails the whole
 * shipment, keeps the rows and raises a reconciliation.drift alert.
 */
import { log } from "../log";
import { doHead, ENTRY_CONFLICT, markUnshipped, type OnAlerts, raiseClash } from "./outbox-clash";
import { ShipmentBuilder } from "./outbox-rows";

export type { OnAlerts } from "./outbox-clash";
export { SEQ_CONFLICT } from "./outbox-clash";
export { type Outbox, SHIP_CHUNK_BYTES } from "./outbox-rows";

/** Outbox rows one shipment carries when it holds several transactions; a larger transaction ships alone. */
export const OUTBOX_BATCH = 50;

/**
 * The outbox ships this long after a write, so a busy account sends one D1
 * batch for many writes instead of one per write. D1 history lags by this
 * much; the gate never waits for it.
 */
export const OUTBOX_DELAY_MS = 250;

/** Exponential from 2 s, capped at 5 min: a long D1 outage costs one retry per account every few minutes. */
const retryBackoffMs = (failures: number): number => Math.min(300_000, 1000 * 2 ** Math.min(failures, 9));

/** Why a shipment failed: D1 unreachable or refusing, or D1 already holds a different entry at one of its seqs. */
export type ShipFailure = "d1_unavailable" | "ledger_conflict";

type Shipped =
  | { ok: true; more: boolean; count: number; alertIds: string[] }
  | { ok: false; error: string; code: ShipFailure };

/** The outbox ids one shipment covers, first to last inclusive. */
interface Span {
  firstId: number;
  lastId: number;
  /** Rows after lastId were waiting when the span was chosen. */
  more: boolean;
}

type TxnRow = { id: number; txn: string };

/** Rows written before the `txn` column existed carry '': each ships as a transaction of its own. */
const endsTxn = (row: TxnRow, next: TxnRow): boolean => row.txn === "" || row.txn !== next.txn;

/**
 * The next shipment: the longest run of whole transactions from the head of
 * the outbox that fits in OUTBOX_BATCH rows, or the first transaction alone
 * when it is larger. A transaction's rows are contiguous by id (one
 * transactionSync writes them) and a read never sees part of one.
 */
function nextSpan(sql: SqlStorage): Span | null {
  const head = sql
    .exec("SELECT id, txn FROM outbox ORDER BY id LIMIT ?", OUTBOX_BATCH + 1)
    .toArray()
    .map((r): TxnRow => ({ id: Number(r.id), txn: String(r.txn) }));
  const first = head[0];
  if (first === undefined) return null;
  // Everything waiting fits: it is all whole transactions.
  if (head.length <= OUTBOX_BATCH) {
    return { firstId: first.id, lastId: head[head.length - 1]?.id ?? first.id, more: false };
  }
  // Cut after the last row (within OUTBOX_BATCH) that ends its transaction.
  for (let k = OUTBOX_BATCH; k > 0; k--) {
    const row = head[k - 1];
    const next = head[k];
    if (row !== undefined && next !== undefined && endsTxn(row, next)) {
      return { firstId: first.id, lastId: row.id, more: true };
    }
  }
  // The first transaction has more than OUTBOX_BATCH rows: it ships alone, up to the row before the next one.
  const after = sql
    .exec("SELECT id FROM outbox WHERE id > ? AND txn != ? ORDER BY id LIMIT 1", first.id, first.txn)
    .toArray()[0];
  if (after !== undefined) return { firstId: first.id, lastId: Number(after.id) - 1, more: true };
  return { firstId: first.id, lastId: Number(sql.exec("SELECT MAX(id) AS m FROM outbox").one().m), more: false };
}

/**
 * Ships one shipment (see nextSpan). Deletes its outbox rows only after D1
 * committed; a failure leaves them for the next try.
 */
export async function shipOutbox(
  sql: SqlStorage,
  db: D1Database,
  accountId: string | null,
  onAlerts?: OnAlerts,
  entryDb: D1Database = db,
): Promise<Shipped> {
  const span = nextSpan(sql);
  if (span === null) return { ok: true, more: false, count: 0, alertIds: [] };
  const shipment = new ShipmentBuilder(db, entryDb);
  let firstSeq: number | null = null;
  // Bounded by the span: at most OUTBOX_BATCH rows, or one transaction's rows. The cursor streams them.
  for (const row of sql.exec(
    "SELECT topic, payload FROM outbox WHERE id >= ? AND id <= ? ORDER BY id",
    span.firstId,
    span.lastId,
  )) {
    shipment.add(String(row.topic), String(row.payload));
    if (firstSeq === null && shipment.lastEntry !== null) firstSeq = shipment.lastEntry.seq;
  }
  shipment.flush();
  const statements = shipment.statements;
  // The cron compares known_seq with shipped_seq to find stuck outboxes, and sweeps by the deadline.
  const head = doHead(sql);
  const last = shipment.lastEntry;
  if (accountId !== null && last !== null) {
    statements.push(
      db
        .prepare(
          `INSERT INTO account_heads (account_id, shipped_seq, head_hash, updated_at_ms, known_seq, next_hold_deadline_ms)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (account_id) DO UPDATE SET shipped_seq = excluded.shipped_seq, head_hash = excluded.head_hash,
            updated_at_ms = excluded.updated_at_ms, known_seq = excluded.known_seq,
            next_hold_deadline_ms = excluded.next_hold_deadline_ms
           WHERE excluded.shipped_seq > account_heads.shipped_seq`,
        )
        .bind(accountId, last.seq, last.hash, Date.now(), head.knownSeq, head.deadlineMs),
    );
  }
  try {
    if (entryDb === db) {
      const all = [...shipment.entryStatements, ...statements];
      if (all.length > 0) await db.batch(all);
    } else {
      // Two databases, two transactions: the entries first (idempotent by entry_id), then the rest with
      // account_heads, so shipped_seq never runs ahead of the shard. A failure between them re-sends both.
      if (shipment.entryStatements.length > 0) await entryDb.batch(shipment.entryStatements);
      if (statements.length > 0) await db.batch(statements);
    }
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    const code: ShipFailure = ENTRY_CONFLICT.test(error) ? "ledger_conflict" : "d1_unavailable";
    if (accountId !== null) {
      await markUnshipped(db, accountId, head.knownSeq, head.deadlineMs);
      if (code === "ledger_conflict") await raiseClash(db, accountId, shipment, firstSeq, error, onAlerts, entryDb);
    }
    return { ok: false, error, code };
  }
  sql.exec("DELETE FROM outbox WHERE id <= ?", span.lastId);
  if (shipment.alertIds.length > 0 && onAlerts) {
    // Best effort: an alert left undispatched is picked up by the cron's dispatch job.
    await onAlerts(shipment.alertIds).catch(() => undefined);
  }
  return { ok: true, more: span.more, count: shipment.count, alertIds: shipment.alertIds };
}

/** Where a courier ships, read at each shipment: tests swap the DO's D1 while it lives. */
export interface Destination {
  db: D1Database;
  /** The account's ledger shard, where its entries go (DB itself with one shard). */
  entryDb?: D1Database;
  accountId: string | null;
  onAlerts: OnAlerts;
}

/**
 * Delivers one account's outbox: one shipper at a time, and a backoff that
 * grows while D1 keeps failing. The DO takes other calls while a batch awaits
 * D1, so without the single flight the alarm and drain() could ship the same
 * rows and an older account/grant upsert could land after a newer one.
 */
export class OutboxCourier {
  private shipping: Promise<Shipped> | null = null;
  private failures = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly destination: () => Destination,
  ) {}

  shipOnce(): Promise<Shipped> {
    if (this.shipping === null) {
      const { db, accountId, onAlerts, entryDb } = this.destination();
      this.shipping = shipOutbox(this.sql, db, accountId, onAlerts, entryDb ?? db).finally(() => {
        this.shipping = null;
      });
    }
    return this.shipping;
  }

  /** Ships batch after batch until the outbox is empty, D1 fails, or 100 batches went. */
  async drain(): Promise<{ ok: boolean; pending: number }> {
    for (let i = 0; i < 100; i++) {
      const shipped = await this.shipOnce();
      if (!shipped.ok) return { ok: false, pending: this.pending() };
      if (!shipped.more) break;
    }
    return { ok: true, pending: this.pending() };
  }

  pending(): number {
    return Number(this.sql.exec("SELECT count(*) AS n FROM outbox").one().n);
  }

  /** The alarm's batch: on failure, how long to wait before the next try; else whether rows still wait. */
  async shipForAlarm(): Promise<{ ok: false; retryInMs: number } | { ok: true; more: boolean }> {
    const shipped = await this.shipOnce();
    if (!shipped.ok) {
      this.failures++;
      const backoffMs = retryBackoffMs(this.failures);
      log({
        event: "outbox.retry",
        account_id: this.destination().accountId,
        attempt: this.failures,
        backoff_ms: backoffMs,
        code: shipped.code,
        error: shipped.error,
      });
      return { ok: false, retryInMs: backoffMs };
    }
    this.failures = 0;
    return { ok: true, more: shipped.more };
  }
}
