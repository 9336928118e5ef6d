/**
 * The AccountLedger's SQLite tables and row mapping. Lots and holds are the
 * materialized state; entries are the ledger (immutable: triggers refuse
 * UPDATE and DELETE); outbox rows wait for the alarm to ship them to D1.
 */
import type { Entry, Hold, Lot } from "../ledger";

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
  `CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL, status INTEGER NOT NULL,
    response TEXT NOT NULL, created_at_ms INTEGER NOT NULL, PRIMARY KEY (scope, key))`,
];

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
