/**
 * The AccountLedger's SQLite tables and row mapping. Lots and holds are the
 * materialized state; entries are the ledger (immutable: triggers refuse
 * UPDATE and DELETE); outbox rows wait for the alarm to ship them to D1.
 */
import { canonicalJson, type Entry, type Hold, type Lot, type RaisedAlerts, type ReplayEntry } from "../ledger";
import type { Outbox } from "./outbox";
import type { AccountRecord } from "./types";

export const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS lots (
    grant_id TEXT PRIMARY KEY, unit TEXT NOT NULL, type TEXT NOT NULL, amount INTEGER NOT NULL,
    priority INTEGER NOT NULL, effective_at_ms INTEGER NOT NULL, expires_at_ms INTEGER,
    source TEXT, reason TEXT, campaign TEXT, incident_id TEXT,
    cost_basis_amount INTEGER, cost_basis_currency TEXT, metadata TEXT, source_grant_id TEXT,
    created_at_ms INTEGER NOT NULL, created_order INTEGER NOT NULL,
    remaining INTEGER NOT NULL, held INTEGER NOT NULL, voided_at_ms INTEGER,
    CHECK (remaining >= held AND held >= 0))`,
  `CREATE TABLE IF NOT EXISTS holds (
    hold_id TEXT PRIMARY KEY, kind TEXT NOT NULL, unit TEXT NOT NULL, amount INTEGER NOT NULL,
    allocations TEXT NOT NULL, status TEXT NOT NULL, expires_at_ms INTEGER NOT NULL,
    captured INTEGER NOT NULL, released INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER)`,
  `CREATE INDEX IF NOT EXISTS holds_open ON holds (status, expires_at_ms)`,
  `CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY, entry_id TEXT NOT NULL UNIQUE, txn_id TEXT NOT NULL, kind TEXT NOT NULL,
    unit TEXT NOT NULL, amount INTEGER NOT NULL, held_delta INTEGER NOT NULL, grant_id TEXT,
    credit_type TEXT, ref TEXT, actor TEXT NOT NULL, reason TEXT, effective_at_ms INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`,
  `CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END`,
  `CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END`,
  // `txn`: the DO transaction that queued the row; a shipment never splits one (outbox.ts).
  `CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload TEXT NOT NULL, txn TEXT NOT NULL DEFAULT '')`,
  `CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL, status INTEGER NOT NULL,
    response TEXT NOT NULL, created_at_ms INTEGER NOT NULL, PRIMARY KEY (scope, key))`,
];

/** Creates the tables, and adds the columns a table created by an older version lacks. */
export function migrate(sql: SqlStorage): void {
  for (const stmt of SCHEMA) sql.exec(stmt);
  const outboxColumns = sql
    .exec("PRAGMA table_info(outbox)")
    .toArray()
    .map((r) => String(r.name));
  if (!outboxColumns.includes("txn")) sql.exec("ALTER TABLE outbox ADD COLUMN txn TEXT NOT NULL DEFAULT ''");
}

type Row = Record<string, SqlStorageValue>;

const int = (v: SqlStorageValue): number => Number(v);
const intOrNull = (v: SqlStorageValue): number | null => (v === null ? null : Number(v));
const str = (v: SqlStorageValue): string => String(v);
const strOrNull = (v: SqlStorageValue): string | null => (v === null ? null : String(v));

export function lotFromRow(r: Row): Lot {
  const costAmount = intOrNull(r.cost_basis_amount ?? null);
  return {
    grantId: str(r.grant_id ?? null),
    unit: str(r.unit ?? null),
    type: str(r.type ?? null) as Lot["type"],
    amount: int(r.amount ?? null),
    priority: int(r.priority ?? null),
    effectiveAtMs: int(r.effective_at_ms ?? null),
    expiresAtMs: intOrNull(r.expires_at_ms ?? null),
    source: strOrNull(r.source ?? null),
    reason: strOrNull(r.reason ?? null),
    campaign: strOrNull(r.campaign ?? null),
    incidentId: strOrNull(r.incident_id ?? null),
    costBasis: costAmount === null ? null : { amount: costAmount, currency: str(r.cost_basis_currency ?? null) },
    metadata: r.metadata === null || r.metadata === undefined ? null : JSON.parse(str(r.metadata)),
    sourceGrantId: strOrNull(r.source_grant_id ?? null),
    createdAtMs: int(r.created_at_ms ?? null),
    createdOrder: int(r.created_order ?? null),
    remaining: int(r.remaining ?? null),
    held: int(r.held ?? null),
    voidedAtMs: intOrNull(r.voided_at_ms ?? null),
  };
}

export function writeLot(sql: SqlStorage, lot: Lot): void {
  sql.exec(
    `INSERT INTO lots (grant_id, unit, type, amount, priority, effective_at_ms, expires_at_ms, source,
      reason, campaign, incident_id, cost_basis_amount, cost_basis_currency, metadata, source_grant_id,
      created_at_ms, created_order, remaining, held, voided_at_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (grant_id) DO UPDATE SET remaining = excluded.remaining, held = excluded.held,
      voided_at_ms = excluded.voided_at_ms`,
    lot.grantId,
    lot.unit,
    lot.type,
    lot.amount,
    lot.priority,
    lot.effectiveAtMs,
    lot.expiresAtMs,
    lot.source,
    lot.reason,
    lot.campaign,
    lot.incidentId,
    lot.costBasis?.amount ?? null,
    lot.costBasis?.currency ?? null,
    lot.metadata === null ? null : JSON.stringify(lot.metadata),
    lot.sourceGrantId,
    lot.createdAtMs,
    lot.createdOrder,
    lot.remaining,
    lot.held,
    lot.voidedAtMs,
  );
}

export function holdFromRow(r: Row): Hold {
  return {
    holdId: str(r.hold_id ?? null),
    kind: str(r.kind ?? null) as Hold["kind"],
    unit: str(r.unit ?? null),
    amount: int(r.amount ?? null),
    allocations: JSON.parse(str(r.allocations ?? null)),
    status: str(r.status ?? null) as Hold["status"],
    expiresAtMs: int(r.expires_at_ms ?? null),
    captured: int(r.captured ?? null),
    released: int(r.released ?? null),
    createdAtMs: int(r.created_at_ms ?? null),
    closedAtMs: intOrNull(r.closed_at_ms ?? null),
  };
}

export function writeHold(sql: SqlStorage, h: Hold): void {
  sql.exec(
    `INSERT INTO holds (hold_id, kind, unit, amount, allocations, status, expires_at_ms, captured,
      released, created_at_ms, closed_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (hold_id) DO UPDATE SET status = excluded.status, captured = excluded.captured,
      released = excluded.released, closed_at_ms = excluded.closed_at_ms`,
    h.holdId,
    h.kind,
    h.unit,
    h.amount,
    JSON.stringify(h.allocations),
    h.status,
    h.expiresAtMs,
    h.captured,
    h.released,
    h.createdAtMs,
    h.closedAtMs,
  );
}

const iso = (ms: number): string => new Date(ms).toISOString();

export function entryFromRow(accountId: string, r: Row): Entry {
  return {
    account_id: accountId,
    seq: int(r.seq ?? null),
    entry_id: str(r.entry_id ?? null),
    txn_id: str(r.txn_id ?? null),
    kind: str(r.kind ?? null) as Entry["kind"],
    unit: str(r.unit ?? null),
    amount: int(r.amount ?? null),
    held_delta: int(r.held_delta ?? null),
    grant_id: strOrNull(r.grant_id ?? null),
    credit_type: strOrNull(r.credit_type ?? null) as Entry["credit_type"],
    ref: strOrNull(r.ref ?? null),
    actor: str(r.actor ?? null),
    reason: strOrNull(r.reason ?? null),
    effective_at: iso(int(r.effective_at_ms ?? null)),
    recorded_at: iso(int(r.recorded_at_ms ?? null)),
    prev_hash: str(r.prev_hash ?? null),
    hash: str(r.hash ?? null),
  };
}

export function writeEntry(sql: SqlStorage, e: Entry): void {
  sql.exec(
    `INSERT INTO entries (seq, entry_id, txn_id, kind, unit, amount, held_delta, grant_id, credit_type,
      ref, actor, reason, effective_at_ms, recorded_at_ms, prev_hash, hash)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    e.seq,
    e.entry_id,
    e.txn_id,
    e.kind,
    e.unit,
    e.amount,
    e.held_delta,
    e.grant_id,
    e.credit_type,
    e.ref,
    e.actor,
    e.reason,
    Date.parse(e.effective_at),
    Date.parse(e.recorded_at),
    e.prev_hash,
    e.hash,
  );
}

// ── queries the AccountLedger runs ─────────────────────────────────────────

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

/** The last entry's seq and hash: where the next transaction's chain starts (null: no entries yet). */
export function readHead(sql: SqlStorage): { seq: number; hash: string } | null {
  const head = sql.exec("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").toArray()[0];
  return head ? { seq: Number(head.seq), hash: String(head.hash) } : null;
}

export function readEntriesAfter(sql: SqlStorage, accountId: string, afterSeq: number, limit: number): Entry[] {
  const rows = sql.exec("SELECT * FROM entries WHERE seq > ? ORDER BY seq LIMIT ?", afterSeq, limit);
  return rows.toArray().map((r) => entryFromRow(accountId, r));
}

/** What replaying a unit's balance at `asOfMs` needs from the entries recorded by then. */
export function replayEntries(sql: SqlStorage, asOfMs: number, unit: string): ReplayEntry[] {
  return sql
    .exec(
      "SELECT grant_id, amount, held_delta, recorded_at_ms FROM entries WHERE recorded_at_ms <= ? AND unit = ?",
      asOfMs,
      unit,
    )
    .toArray()
    .map((r) => ({
      grantId: r.grant_id === null ? null : String(r.grant_id),
      amount: Number(r.amount),
      heldDelta: Number(r.held_delta),
      recordedAtMs: Number(r.recorded_at_ms),
    }));
}

export function readLots(sql: SqlStorage): Lot[] {
  return sql
    .exec("SELECT * FROM lots")
    .toArray()
    .map((r) => lotFromRow(r));
}

export function readOpenHolds(sql: SqlStorage): Hold[] {
  return sql
    .exec("SELECT * FROM holds WHERE status = 'open'")
    .toArray()
    .map((r) => holdFromRow(r));
}

export function readHold(sql: SqlStorage, holdId: string): Hold | null {
  const row = sql.exec("SELECT * FROM holds WHERE hold_id = ?", holdId).toArray()[0];
  return row ? holdFromRow(row) : null;
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
  return row ? { bodyHash: String(row.body_hash), status: Number(row.status), response: String(row.response) } : null;
}

export function writeIdempotency(
  sql: SqlStorage,
  scope: string,
  key: string,
  first: { bodyHash: string; status: number; body: unknown },
  nowMs: number,
): void {
  sql.exec(
    "INSERT INTO idempotency (scope, key, body_hash, status, response, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
    scope,
    key,
    first.bodyHash,
    first.status,
    JSON.stringify(first.body),
    nowMs,
  );
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
  for (const entry of c.entries ?? []) {
    writeEntry(sql, entry);
    enqueue(sql, { topic: "entry", payload: entry }, c.txnId);
  }
  for (const alert of c.raised?.alerts ?? []) enqueue(sql, { topic: "alert", payload: alert }, c.txnId);
  if (c.raised?.lowChanged) writeMeta(sql, "low_balance_state", c.raised.lowBalance);
  for (const row of c.grantRows ?? []) enqueue(sql, { topic: "grant", payload: row }, c.txnId);
  if (c.idempotency) writeIdempotency(sql, c.idempotency.scope, c.idempotency.key, c.idempotency, nowMs);
}
