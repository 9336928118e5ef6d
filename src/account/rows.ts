/**
 * Row mapping for the AccountLedger's tables: SQLite rows to domain values
 * and back. No queries beyond one row's insert or upsert.
 */
import { type Entry, type Hold, iso, type Lot } from "../ledger";

export type Row = Record<string, SqlStorageValue>;

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
    costBasis: costAmount === null ? null : costBasisFromRow(costAmount, r),
    metadata: r.metadata === null || r.metadata === undefined ? null : JSON.parse(str(r.metadata)),
    sourceGrantId: strOrNull(r.source_grant_id ?? null),
    createdAtMs: int(r.created_at_ms ?? null),
    createdOrder: int(r.created_order ?? null),
    remaining: int(r.remaining ?? null),
    held: int(r.held ?? null),
    voidedAtMs: intOrNull(r.voided_at_ms ?? null),
  };
}

function costBasisFromRow(amount: number, r: Row): NonNullable<Lot["costBasis"]> {
  const currency = str(r.cost_basis_currency ?? null);
  const taxAmount = intOrNull(r.cost_basis_tax_amount ?? null);
  if (taxAmount === null) return { amount, currency };
  return { amount, currency, tax: { amount: taxAmount, jurisdiction: str(r.cost_basis_tax_jurisdiction ?? null) } };
}

export function writeLot(sql: SqlStorage, lot: Lot): void {
  sql.exec(
    `INSERT INTO lots (grant_id, unit, type, amount, priority, effective_at_ms, expires_at_ms, source,
      reason, campaign, incident_id, cost_basis_amount, cost_basis_currency, metadata, source_grant_id,
      created_at_ms, created_order, remaining, held, voided_at_ms, cost_basis_tax_amount, cost_basis_tax_jurisdiction)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
    lot.costBasis?.tax?.amount ?? null,
    lot.costBasis?.tax?.jurisdiction ?? null,
  );
}

/**
 * A hold's allocations (one per lot it drew from) live inline as JSON up to
 * this many bytes; a larger list (a hold over tens of thousands of lots would
 * pass SQLite's 2 MB value limit) goes to `hold_allocations`, a row per lot.
 */
export const HOLD_ALLOCATIONS_INLINE_MAX = 16_384;
/** What the `allocations` column holds when the list lives in `hold_allocations`. */
const SPILLED = '"spilled"';

type Allocation = Hold["allocations"][number];

function readSpilled(sql: SqlStorage, holdId: string): Allocation[] {
  return sql
    .exec(
      `SELECT grant_id, amount, conversion_unit, conversion_numerator, conversion_denominator
       FROM hold_allocations WHERE hold_id = ? ORDER BY idx`,
      holdId,
    )
    .toArray()
    .map((a) => {
      const unit = strOrNull(a.conversion_unit ?? null);
      const alloc: Allocation = { grantId: String(a.grant_id), amount: Number(a.amount) };
      if (unit === null) return alloc;
      const conversion = {
        unit,
        numerator: int(a.conversion_numerator ?? null),
        denominator: int(a.conversion_denominator ?? null),
      };
      return { ...alloc, conversion };
    });
}

export function holdFromRow(sql: SqlStorage, r: Row): Hold {
  const inline = str(r.allocations ?? null);
  const holdId = str(r.hold_id ?? null);
  return {
    holdId,
    kind: str(r.kind ?? null) as Hold["kind"],
    unit: str(r.unit ?? null),
    amount: int(r.amount ?? null),
    allocations: inline === SPILLED ? readSpilled(sql, holdId) : (JSON.parse(inline) as Allocation[]),
    status: str(r.status ?? null) as Hold["status"],
    expiresAtMs: int(r.expires_at_ms ?? null),
    captured: int(r.captured ?? null),
    released: int(r.released ?? null),
    createdAtMs: int(r.created_at_ms ?? null),
    closedAtMs: intOrNull(r.closed_at_ms ?? null),
  };
}

export function writeHold(sql: SqlStorage, h: Hold): void {
  let allocations = JSON.stringify(h.allocations);
  // Allocations never change after the hold opens: only its first write spills them.
  if (allocations.length > HOLD_ALLOCATIONS_INLINE_MAX && h.status === "open") {
    h.allocations.forEach((a, idx) => {
      sql.exec(
        `INSERT OR IGNORE INTO hold_allocations (hold_id, idx, grant_id, amount,
          conversion_unit, conversion_numerator, conversion_denominator) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        h.holdId,
        idx,
        a.grantId,
        a.amount,
        a.conversion?.unit ?? null,
        a.conversion?.numerator ?? null,
        a.conversion?.denominator ?? null,
      );
    });
  }
  if (allocations.length > HOLD_ALLOCATIONS_INLINE_MAX) allocations = SPILLED;
  sql.exec(
    `INSERT INTO holds (hold_id, kind, unit, amount, allocations, status, expires_at_ms, captured,
      released, created_at_ms, closed_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (hold_id) DO UPDATE SET status = excluded.status, captured = excluded.captured,
      released = excluded.released, closed_at_ms = excluded.closed_at_ms`,
    h.holdId,
    h.kind,
    h.unit,
    h.amount,
    allocations,
    h.status,
    h.expiresAtMs,
    h.captured,
    h.released,
    h.createdAtMs,
    h.closedAtMs,
  );
}

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
    ...ratingFromRow(r),
    ...conversionFromRow(r),
  };
}

/** The `conversion` member when a converting debit drew this entry from another unit's lot; else nothing. */
function conversionFromRow(r: Row): Pick<Entry, "conversion"> {
  const toUnit = strOrNull(r.conversion_to_unit ?? null);
  if (toUnit === null) return {};
  return {
    conversion: {
      to_unit: toUnit,
      numerator: int(r.conversion_numerator ?? null),
      denominator: int(r.conversion_denominator ?? null),
    },
  };
}

/** The `rating` member when the entry was metered; nothing at all otherwise (it is hashed only when present). */
function ratingFromRow(r: Row): Pick<Entry, "rating"> {
  const meter = strOrNull(r.rating_meter ?? null);
  if (meter === null) return {};
  return {
    rating: { meter, quantity: int(r.rating_quantity ?? null), price_version: int(r.rating_price_version ?? null) },
  };
}

export function writeEntry(sql: SqlStorage, e: Entry): void {
  sql.exec(
    `INSERT INTO entries (seq, entry_id, txn_id, kind, unit, amount, held_delta, grant_id, credit_type,
      ref, actor, reason, effective_at_ms, recorded_at_ms, prev_hash, hash,
      rating_meter, rating_quantity, rating_price_version,
      conversion_to_unit, conversion_numerator, conversion_denominator)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
    e.rating?.meter ?? null,
    e.rating?.quantity ?? null,
    e.rating?.price_version ?? null,
    e.conversion?.to_unit ?? null,
    e.conversion?.numerator ?? null,
    e.conversion?.denominator ?? null,
  );
}
