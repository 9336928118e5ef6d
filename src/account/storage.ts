/**
 * The AccountLedger's queries, and the one write path of a change: state,
 * entries, lot marks, the debit record, outbox rows and the idempotency
 * record, run by the caller inside one transactionSync.
 */
import {
  type Applied,
  assert,
  canonicalJson,
  type Entry,
  type Hold,
  type JournalRow,
  type Lot,
  type RaisedAlerts,
} from "../ledger";
import type { Outbox } from "./outbox";
import { packResponse, unpackResponse } from "./packed";
import { type DebitRecord, type InvoiceRecord, writeDebit, writeInvoice } from "./record-tables";
import { entryFromRow, holdFromRow, lotFromRow, writeEntry, writeHold, writeLot } from "./rows";

export { type DebitRecord, type InvoiceRecord, readDebit, readInvoice, readInvoiceAllocations } from "./record-tables";

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

/** Whether a refund id was used: its grant.refunded entry, or the id kept when the entry left the window. */
export function refundApplied(sql: SqlStorage, refundId: string): boolean {
  const inWindow = sql.exec("SELECT 1 FROM entries WHERE ref = ? AND kind = 'grant.refunded' LIMIT 1", refundId);
  if (inWindow.toArray().length > 0) return true;
  return sql.exec("SELECT 1 FROM compacted_refunds WHERE refund_id = ?", refundId).toArray().length > 0;
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
  if (!row) return null;
  return {
    bodyHash: String(row.body_hash),
    status: Number(row.status),
    response: unpackResponse(row.response ?? null),
  };
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
    packResponse(JSON.stringify(r.body)),
    nowMs,
  );
}
