/**
 * The records a debit and an invoice leave beside their entries: what they
 * were asked with and where their entries are. Written inside a change
 * (storage.ts writeChange), read by the reads and billing operations.
 */
import { type Applied, assert, type CoveredLine, type Entry } from "../ledger";

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

export function writeDebit(
  sql: SqlStorage,
  d: Omit<DebitRecord, "firstSeq" | "lastSeq">,
  entries: readonly Entry[],
): void {
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

export function writeInvoice(
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
