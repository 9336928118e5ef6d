/**
 * The AccountLedger's queries, and the one write path of a change: state,
 * entries, lot marks, the debit record, outbox rows and the idempotency
 * record, run by the caller inside one transactionSync.
 */
import {
  type Applied,
  assert,
  type CoveredLine,
  canonicalJson,
  type Entry,
  type Hold,
  type JournalRow,
  type Lot,
  type RaisedAlerts,
} from "../ledger";
import type { Outbox } from "./outbox";
import { entryFromRow, holdFromRow, lotFromRow, writeEntry, writeHold, writeLot } from "./rows";
import type { AccountRecord } from "./types";

export function readMeta<T>(sql: SqlStorage, key: string): T | null {
  const row = sql.exec("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
  return row ? (JSON.parse(String(row.value)) as T) : null;
}

export function writeMeta(sql: SqlStorage, key: string, value: unknown): void {
  sql.exec(
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    key,
    JSON.stringify(value),
  );
}

/** Canonical JSON, so a row shipped twice is byte-for-byte the same payload. */
export function enqueue(sql: SqlStorage, item: Outbox, txnId: string): void {
  sql.exec("INSERT INTO outbox (topic, payload, txn) VALUES (?, ?, ?)", item.topic, canonicalJson(item.payload), txnId);
}

/** The last entry: where the next transaction's chain starts (null: no entries yet). */
export function readHead(sql: SqlStorage): { seq: number; hash: string; recordedAtMs: number } | null {
  const head = sql.exec("SELECT seq, hash, recorded_at_ms FROM entries ORDER BY seq DESC LIMIT 1").toArray()[0];
  return head ? { seq: Number(head.seq), hash: String(head.hash), recordedAtMs: Number(head.recorded_at_ms) } : null;
}

export function readEntriesAfter(sql: SqlStorage, accountId: string, afterSeq: number, limit: number): Entry[] {
  const rows = sql.exec("SELECT * FROM entries WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, limit);
  return rows.toArray().map((r) => entryFromRow(accountId, r));
}

export function readEntryRange(sql: SqlStorage, accountId: string, fromSeq: number, toSeq: number): Entry[] {
  const rows = sql.exec("SELECT * FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq", fromSeq, toSeq);
  return rows.toArray().map((r) => entryFromRow(accountId, r));
}

/**
 * A lot's remaining and held after the last transaction recorded at or
 * before `asOfMs` (null: the lot had no entry yet). One index probe.
 */
export function readMark(sql: SqlStorage, grantId: string, asOfMs: number): { remaining: number; held: number } | null {
  const row = sql
    .exec(
      `SELECT remaining, held FROM lot_marks WHERE grant_id = ? AND recorded_at_ms <= ?
       ORDER BY recorded_at_ms DESC, seq DESC LIMIT 1`,
      grantId,
      asOfMs,
    )
    .toArray()[0];
  return row ? { remaining: Number(row.remaining), held: Number(row.held) } : null;
}

/** Every lot, in creation order (the order lists page through). */
export function readLots(sql: SqlStorage): Lot[] {
  return sql
    .exec("SELECT * FROM lots ORDER BY created_order")
    .toArray()
    .map((r) => lotFromRow(r));
}

export function readOpenHolds(sql: SqlStorage): Hold[] {
  return sql
    .exec("SELECT * FROM holds WHERE status = 'open'")
    .toArray()
    .map((r) => holdFromRow(sql, r));
}

/** Open holds oldest first, after the keyset position `after` (created_at_ms, hold_id). */
export function readOpenHoldsPage(sql: SqlStorage, after: { atMs: number; id: string } | null, limit: number): Hold[] {
  const rows = after
    ? sql.exec(
        `SELECT * FROM holds WHERE status = 'open' AND (created_at_ms > ? OR (created_at_ms = ? AND hold_id > ?))
         ORDER BY created_at_ms, hold_id LIMIT ?`,
        after.atMs,
        after.atMs,
        after.id,
        limit,
      )
    : sql.exec("SELECT * FROM holds WHERE status = 'open' ORDER BY created_at_ms, hold_id LIMIT ?", limit);
  return rows.toArray().map((r) => holdFromRow(sql, r));
}

export function readHold(sql: SqlStorage, holdId: string): Hold | null {
  const row = sql.exec("SELECT * FROM holds WHERE hold_id = ?", holdId).toArray()[0];
  return row ? holdFromRow(sql, row) : null;
}

export function holdRecorded(sql: SqlStorage, holdId: string): boolean {
  return sql.exec("SELECT 1 FROM holds WHERE hold_id = ?", holdId).toArray().length > 0;
}

/** A debit as recorded: what it was asked with and the seq range of its entries. */
export interface DebitRecord {
  debitId: string;
  unit: string;
  amount: number;
  metadata: Record<string, string> | null;
  txnId: string;
  firstSeq: number;
  lastSeq: number;
  actor: string;
  createdAtMs: number;
}

export function readDebit(sql: SqlStorage, debitId: string): DebitRecord | null {
  const r = sql.exec("SELECT * FROM debits WHERE debit_id = ?", debitId).toArray()[0];
  if (!r) return null;
  return {
    debitId: String(r.debit_id),
    unit: String(r.unit),
    amount: Number(r.amount),
    metadata: r.metadata === null ? null : (JSON.parse(String(r.metadata)) as Record<string, string>),
    txnId: String(r.txn_id),
    firstSeq: Number(r.first_seq),
    lastSeq: Number(r.last_seq),
    actor: String(r.actor),
    createdAtMs: Number(r.created_at_ms),
  };
}

/** An invoice as recorded: its covered lines, and what it took from each lot (in draw order). */
export interface InvoiceRecord {
  invoiceId: string;
  unit: string;
  lines: CoveredLine[];
  status: "finalized" | "voided";
  txnId: string;
  createdAtMs: number;
  voidedAtMs: number | null;
  voidReason: string | null;
}

export function readInvoice(sql: SqlStorage, invoiceId: string): InvoiceRecord | null {
  const r = sql.exec("SELECT * FROM invoices WHERE invoice_id = ?", invoiceId).toArray()[0];
  if (!r) return null;
  return {
    invoiceId: String(r.invoice_id),
    unit: String(r.unit),
    lines: JSON.parse(String(r.lines)) as CoveredLine[],
    status: String(r.status) as InvoiceRecord["status"],
    txnId: String(r.txn_id),
    createdAtMs: Number(r.created_at_ms),
    voidedAtMs: r.voided_at_ms === null ? null : Number(r.voided_at_ms),
    voidReason: r.void_reason === null ? null : String(r.void_reason),
  };
}

/** What an invoice took from each lot, in draw order: at most `limit` rows from `offset`. */
export function readInvoiceAllocations(sql: SqlStorage, invoiceId: string, limit: number, offset = 0): Applied[] {
  return sql
    .exec(
      "SELECT grant_id, type, amount FROM invoice_allocations WHERE invoice_id = ? ORDER BY idx LIMIT ? OFFSET ?",
      invoiceId,
      limit,
      offset,
    )
    .toArray()
    .map((a) => ({ grantId: String(a.grant_id), type: String(a.type) as Applied["type"], amount: Number(a.amount) }));
}

/** The idempotency record for a key within a scope: the first body's hash and the answer it got. */
export interface Remembered {
  bodyHash: string;
  status: number;
  response: string;
}

export function readIdempotency(sql: SqlStorage, scope: string, key: string): Remembered | null {
  const row = sql
    .exec("SELECT body_hash, status, response FROM idempotency WHERE scope = ? AND key = ?", scope, key)
    .toArray()[0];
  return row ? { bodyHash: String(row.body_hash), status: Number(row.status), response: String(row.response) } : null;
}

/**
 * Deletes up to `limit` idempotency records created before `beforeMs` (the
 * retention); returns how many went. Entries are never touched.
 */
export function pruneIdempotency(sql: SqlStorage, beforeMs: number, limit: number): number {
  return sql.exec(
    "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency WHERE created_at_ms < ? LIMIT ?)",
    beforeMs,
    limit,
  ).rowsWritten;
}

/** Everything one mutation writes; what it leaves out it does not touch. */
export interface Change {
  /** The DO transaction: every outbox row it queues carries it. */
  txnId: string;
  /** A new or updated account row (kept in meta, shipped to the D1 directory). */
  account?: AccountRecord | null;
  lots?: readonly Lot[];
  holds?: readonly Hold[];
  entries?: readonly Entry[];
  debit?: Omit<DebitRecord, "txnId" | "firstSeq" | "lastSeq"> | null;
  /** A new invoice with what it took (`applied`), or a status change of one (`applied` left out). */
  invoice?: { record: Omit<InvoiceRecord, "txnId">; applied?: readonly Applied[] } | null;
  /** What reports need of each entry that moved credits, shipped to D1's journal. */
  journal?: readonly JournalRow[];
  /** Test seam: runs inside the transaction just before the operation's record is written. */
  beforeRecord?: (() => void) | undefined;
  raised?: RaisedAlerts;
  /** Rows for D1's grant index: only lots whose indexed facts changed. */
  grantRows?: readonly object[];
  idempotency?: { scope: string; key: string; bodyHash: string; status: number; body: unknown } | null;
}

/**
 * Writes a change and queues what D1 must learn of it. The caller runs this
 * inside one transactionSync; outbox rows are queued in the order D1 should
 * apply them (the account before the entries that reference it).
 */
export function writeChange(sql: SqlStorage, c: Change, nowMs: number): void {
  if (c.account) {
    writeMeta(sql, "account", c.account);
    enqueue(sql, { topic: "account", payload: c.account }, c.txnId);
  }
  for (const lot of c.lots ?? []) writeLot(sql, lot);
  for (const hold of c.holds ?? []) writeHold(sql, hold);
  const entries = c.entries ?? [];
  for (const entry of entries) {
    writeEntry(sql, entry);
    enqueue(sql, { topic: "entry", payload: entry }, c.txnId);
  }
  writeMarks(sql, entries, c.lots ?? []);
  c.beforeRecord?.();
  if (c.debit) writeDebit(sql, { ...c.debit, txnId: c.txnId }, entries);
  if (c.invoice) writeInvoice(sql, c.invoice.record, c.invoice.applied ?? null, c.txnId);
  for (const row of c.journal ?? []) enqueue(sql, { topic: "journal", payload: row }, c.txnId);
  for (const alert of c.raised?.alerts ?? []) enqueue(sql, { topic: "alert", payload: alert }, c.txnId);
  if (c.raised?.lowChanged) writeMeta(sql, "low_balance_state", c.raised.lowBalance);
  for (const row of c.grantRows ?? []) enqueue(sql, { topic: "grant", payload: row }, c.txnId);
  if (c.idempotency) writeIdempotency(sql, c.idempotency, nowMs);
}

/** One mark per lot the transaction touched, at the seq of its last entry there. */
function writeMarks(sql: SqlStorage, entries: readonly Entry[], lots: readonly Lot[]): void {
  const lastSeq = new Map<string, Entry>();
  for (const e of entries) if (e.grant_id !== null) lastSeq.set(e.grant_id, e);
  const byId = new Map(lots.map((l) => [l.grantId, l]));
  for (const [grantId, e] of lastSeq) {
    const lot = byId.get(grantId);
    assert(lot !== undefined, `entry ${e.entry_id} touches lot ${grantId}, which the change does not write`);
    sql.exec(
      "INSERT INTO lot_marks (seq, grant_id, remaining, held, recorded_at_ms) VALUES (?, ?, ?, ?, ?)",
      e.seq,
      grantId,
      lot.remaining,
      lot.held,
      Date.parse(e.recorded_at),
    );
  }
}

function writeDebit(sql: SqlStorage, d: Omit<DebitRecord, "firstSeq" | "lastSeq">, entries: readonly Entry[]): void {
  const first = entries[0];
  const last = entries[entries.length - 1];
  assert(first !== undefined && last !== undefined, `debit ${d.debitId} wrote no entries`);
  sql.exec(
    `INSERT INTO debits (debit_id, unit, amount, metadata, txn_id, first_seq, last_seq, actor, created_at_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    d.debitId,
    d.unit,
    d.amount,
    d.metadata === null ? null : JSON.stringify(d.metadata),
    d.txnId,
    first.seq,
    last.seq,
    d.actor,
    d.createdAtMs,
  );
}

function writeInvoice(
  sql: SqlStorage,
  r: Omit<InvoiceRecord, "txnId">,
  applied: readonly Applied[] | null,
  txnId: string,
): void {
  sql.exec(
    `INSERT INTO invoices (invoice_id, unit, lines, status, txn_id, created_at_ms, voided_at_ms, void_reason)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (invoice_id) DO UPDATE SET status = excluded.status, voided_at_ms = excluded.voided_at_ms,
      void_reason = excluded.void_reason`,
    r.invoiceId,
    r.unit,
    JSON.stringify(r.lines),
    r.status,
    txnId,
    r.createdAtMs,
    r.voidedAtMs,
    r.voidReason,
  );
  applied?.forEach((a, idx) => {
    sql.exec(
      "INSERT INTO invoice_allocations (invoice_id, idx, grant_id, type, amount) VALUES (?, ?, ?, ?, ?)",
      r.invoiceId,
      idx,
      a.grantId,
      a.type,
      a.amount,
    );
  });
}

function writeIdempotency(
  sql: SqlStorage,
  r: { scope: string; key: string; bodyHash: string; status: number; body: unknown },
  nowMs: number,
): void {
  sql.exec(
    "INSERT INTO idempotency (scope, key, body_hash, status, response, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
    r.scope,
    r.key,
    r.bodyHash,
    r.status,
    JSON.stringify(r.body),
    nowMs,
  );
}
