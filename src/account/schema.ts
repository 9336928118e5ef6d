/**
 * The AccountLedger's SQLite tables (docs/storage.md describes each one).
 * Lots and holds are the materialized state; entries are the ledger
 * (immutable: triggers refuse UPDATE and DELETE); lot marks let a past
 * balance be read without replaying history; outbox rows wait for the alarm.
 */

import { METRIC_DO_SCHEMA } from "../metrics/counter";
import { floorSeq, migrateWindow, WINDOW_SCHEMA } from "./window-schema";

export const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS lots (
    grant_id TEXT PRIMARY KEY, unit TEXT NOT NULL, type TEXT NOT NULL, amount INTEGER NOT NULL,
    priority INTEGER NOT NULL, effective_at_ms INTEGER NOT NULL, expires_at_ms INTEGER,
    source TEXT, reason TEXT, campaign TEXT, incident_id TEXT,
    cost_basis_amount INTEGER, cost_basis_currency TEXT, metadata TEXT, source_grant_id TEXT,
    created_at_ms INTEGER NOT NULL, created_order INTEGER NOT NULL,
    remaining INTEGER NOT NULL, held INTEGER NOT NULL, voided_at_ms INTEGER,
    cost_basis_tax_amount INTEGER, cost_basis_tax_jurisdiction TEXT,
    CHECK (remaining >= held AND held >= 0))`,
  `CREATE TABLE IF NOT EXISTS holds (
    hold_id TEXT PRIMARY KEY, kind TEXT NOT NULL, unit TEXT NOT NULL, amount INTEGER NOT NULL,
    allocations TEXT NOT NULL, status TEXT NOT NULL, expires_at_ms INTEGER NOT NULL,
    captured INTEGER NOT NULL, released INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER)`,
  `CREATE INDEX IF NOT EXISTS holds_open ON holds (status, expires_at_ms)`,
  // Allocations of a hold over more lots than fit inline (rows.ts, HOLD_ALLOCATIONS_INLINE_MAX).
  `CREATE TABLE IF NOT EXISTS hold_allocations (
    hold_id TEXT NOT NULL, idx INTEGER NOT NULL, grant_id TEXT NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (hold_id, idx))`,
  `CREATE INDEX IF NOT EXISTS holds_by_created ON holds (status, created_at_ms, hold_id)`,
  `CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY, entry_id TEXT NOT NULL UNIQUE, txn_id TEXT NOT NULL, kind TEXT NOT NULL,
    unit TEXT NOT NULL, amount INTEGER NOT NULL, held_delta INTEGER NOT NULL, grant_id TEXT,
    credit_type TEXT, ref TEXT, actor TEXT NOT NULL, reason TEXT, effective_at_ms INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)`,
  // Entries by what they refer to (debit, hold, invoice, refund id): a refund id is refused once used.
  `CREATE INDEX IF NOT EXISTS entries_by_ref ON entries (ref, kind)`,
  `CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END`,
  // An entry may leave the object only at or below the window floor: shipped to D1 and checkpointed
  // (account/window.ts). Objects written before the window have the unconditional trigger: migrate() swaps it.
  `CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    WHEN OLD.seq > COALESCE((SELECT seq FROM window_floor WHERE id = 1), 0)
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END`,
  // One row per (transaction, lot touched): the lot's remaining and held after
  // that transaction. A balance as of T reads each lot's last mark at or before
  // T, so its cost follows the number of lots, never the length of the history.
  `CREATE TABLE IF NOT EXISTS lot_marks (
    seq INTEGER PRIMARY KEY, grant_id TEXT NOT NULL, remaining INTEGER NOT NULL, held INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS lot_marks_by_grant ON lot_marks (grant_id, recorded_at_ms, seq)`,
  // What a debit was asked with (metadata included) and where its entries are.
  `CREATE TABLE IF NOT EXISTS debits (
    debit_id TEXT PRIMARY KEY, unit TEXT NOT NULL, amount INTEGER NOT NULL, metadata TEXT,
    txn_id TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, actor TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL)`,
  // An invoice as finalized (its lines with what credits covered) and what it took from each lot.
  `CREATE TABLE IF NOT EXISTS invoices (
    invoice_id TEXT PRIMARY KEY, unit TEXT NOT NULL, lines TEXT NOT NULL, status TEXT NOT NULL,
    txn_id TEXT NOT NULL, created_at_ms INTEGER NOT NULL, voided_at_ms INTEGER, void_reason TEXT)`,
  `CREATE TABLE IF NOT EXISTS invoice_allocations (
    invoice_id TEXT NOT NULL, idx INTEGER NOT NULL, grant_id TEXT NOT NULL, type TEXT NOT NULL,
    amount INTEGER NOT NULL, PRIMARY KEY (invoice_id, idx))`,
  // `txn`: the DO transaction that queued the row; a shipment never splits one (outbox.ts).
  `CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload TEXT NOT NULL, txn TEXT NOT NULL DEFAULT '')`,
  `CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL, status INTEGER NOT NULL,
    response TEXT NOT NULL, created_at_ms INTEGER NOT NULL, PRIMARY KEY (scope, key))`,
  `CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (created_at_ms)`,
  // Velocity: credits consumed or reserved per unit and minute (account/velocity.ts); at most
  // VELOCITY_BUCKETS_KEPT (1 440) rows per unit with a limit, older ones pruned by the next count.
  `CREATE TABLE IF NOT EXISTS velocity_buckets (
    unit TEXT NOT NULL, minute INTEGER NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (unit, minute)) WITHOUT ROWID`,
  // Transfers: what this account sent (kind transfer, it coordinates) or gave a child's budget draw
  // (kind draw), with the slices (≤ MAX_TRANSFER_SLICES) that left its lots (account/transfers.ts).
  `CREATE TABLE IF NOT EXISTS transfers_out (
    transfer_id TEXT PRIMARY KEY, kind TEXT NOT NULL, to_account TEXT NOT NULL, unit TEXT NOT NULL,
    amount INTEGER NOT NULL, body_hash TEXT NOT NULL, state TEXT NOT NULL, slices TEXT NOT NULL, reason TEXT,
    actor TEXT NOT NULL, response TEXT, problem TEXT, created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS transfers_out_open ON transfers_out (state, updated_at_ms)`,
  // Transfers received: applied, or refused for good (a refusal recovery asked for is never undone).
  `CREATE TABLE IF NOT EXISTS transfers_in (
    transfer_id TEXT PRIMARY KEY, from_account TEXT NOT NULL, state TEXT NOT NULL, unit TEXT NOT NULL,
    amount INTEGER NOT NULL, problem TEXT, created_at_ms INTEGER NOT NULL)`,
  // A child's draws from its parent (account/budget.ts) and what they used of each budget period.
  `CREATE TABLE IF NOT EXISTS budget_draws (
    transfer_id TEXT PRIMARY KEY, parent_id TEXT NOT NULL, unit TEXT NOT NULL, amount INTEGER NOT NULL,
    state TEXT NOT NULL, period_start_ms INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS budget_draws_open ON budget_draws (state, updated_at_ms)`,
  `CREATE TABLE IF NOT EXISTS budget_usage (
    unit TEXT NOT NULL, period_start_ms INTEGER NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (unit, period_start_ms))`,
  // Grants awaiting payment (account/awaiting.ts): the grant as asked (`command`, JSON), its status
  // (awaiting_payment → activated | cancelled), and the first answer of the transition that closed it.
  `CREATE TABLE IF NOT EXISTS awaiting_grants (
    grant_id TEXT PRIMARY KEY, unit TEXT NOT NULL, command TEXT NOT NULL, expires_in_days INTEGER,
    topup INTEGER NOT NULL, status TEXT NOT NULL, created_at_ms INTEGER NOT NULL, closed_at_ms INTEGER,
    payment_ref TEXT, cancel_reason TEXT, response TEXT)`,
  `CREATE INDEX IF NOT EXISTS awaiting_grants_by_status ON awaiting_grants (status, created_at_ms, grant_id)`,
  `CREATE INDEX IF NOT EXISTS awaiting_grants_by_unit ON awaiting_grants (unit, created_at_ms)`,
  // A balance as_of reads the records closed after it in closing order (account/awaiting.ts asOf, bounded scan).
  `CREATE INDEX IF NOT EXISTS awaiting_grants_by_close ON awaiting_grants (unit, closed_at_ms)`,
  // Automatic top-up rules (account/topup.ts), one per unit, with what each requested this month.
  `CREATE TABLE IF NOT EXISTS topup_rules (unit TEXT PRIMARY KEY, rule TEXT NOT NULL, month TEXT)`,
  // Referrals (account/referral.ts): this account redeemed a referral code of campaign_id; the referrer's
  // reward (`terms`, as the campaign said at redemption) is pending → due (this account's first purchased
  // grant) → rewarded, or failed after REFERRAL_MAX_ATTEMPTS. One row per campaign redeemed.
  `CREATE TABLE IF NOT EXISTS referrals (
    campaign_id TEXT PRIMARY KEY, referrer_account_id TEXT NOT NULL, terms TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL, next_at_ms INTEGER, last_error TEXT, created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS referrals_by_status ON referrals (status, next_at_ms)`,
  // Withdrawn redemption reservations (account/redemption.ts): a reservation the gateway released after a
  // refusal; a request still carrying its nonce is refused, so a release never undoes a grant made since.
  // Pruned after REDEMPTION_FENCE_RETENTION_MS (reservation nonces are random and never reused).
  `CREATE TABLE IF NOT EXISTS redemption_fences (
    campaign_id TEXT NOT NULL, reservation TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, reservation))`,
  `CREATE INDEX IF NOT EXISTS redemption_fences_by_age ON redemption_fences (created_at_ms)`,
  // Recurring grants (account/recurring.ts): one row per schedule (≤ RECURRING_MAX_PER_ACCOUNT), its terms as
  // JSON, the first answer (replayed by recurring_id), and the cursor: next period to issue, next period to settle.
  `CREATE TABLE IF NOT EXISTS recurring_grants (
    recurring_id TEXT PRIMARY KEY, spec TEXT NOT NULL, body_hash TEXT NOT NULL, response TEXT NOT NULL,
    status TEXT NOT NULL, next_issue INTEGER NOT NULL, next_settle INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL, cancelled_at_ms INTEGER)`,
  // Legacy imports (account/imports.ts): one row per lot POST /v1/imports created here, with its terms as sent
  // (canonical JSON): a repeat with the same terms is `unchanged`, other terms a `conflict`. Never pruned.
  `CREATE TABLE IF NOT EXISTS legacy_imports (
    legacy_id TEXT PRIMARY KEY, terms TEXT NOT NULL, line INTEGER NOT NULL, request_id TEXT NOT NULL,
    imported_at_ms INTEGER NOT NULL)`,
  ...WINDOW_SCHEMA,
  // Metrics (src/metrics/counter.ts): counts per minute, name and labels until their minute ships to D1.
  ...METRIC_DO_SCHEMA,
];

/** Entries read per step of the one-time lot-mark backfill. */
const BACKFILL_PAGE = 10_000;

/**
 * Creates the tables, and brings a database written by an older version up
 * to date: the outbox's `txn` column, the lots' tax columns, and lot marks for entries written
 * before marks existed (a one-time pass over the history, a page at a time).
 */
export function migrate(sql: SqlStorage): void {
  for (const stmt of SCHEMA) sql.exec(stmt);
  addColumn(sql, "outbox", "txn", "TEXT NOT NULL DEFAULT ''");
  addColumn(sql, "lots", "cost_basis_tax_amount", "INTEGER");
  addColumn(sql, "lots", "cost_basis_tax_jurisdiction", "TEXT");
  // An entry's `rating` member (metered draws, src/ledger/meter.ts): all three null when absent.
  addColumn(sql, "entries", "rating_meter", "TEXT");
  addColumn(sql, "entries", "rating_quantity", "INTEGER");
  addColumn(sql, "entries", "rating_price_version", "INTEGER");
  // An entry's `conversion` member (drawn from another unit's lot, src/ledger/convert.ts): null when absent.
  addColumn(sql, "entries", "conversion_to_unit", "TEXT");
  addColumn(sql, "entries", "conversion_numerator", "INTEGER");
  addColumn(sql, "entries", "conversion_denominator", "INTEGER");
  // A spilled allocation of a converting hold: its lot's unit and rate (HoldAllocation.conversion); null when absent.
  addColumn(sql, "hold_allocations", "conversion_unit", "TEXT");
  addColumn(sql, "hold_allocations", "conversion_numerator", "INTEGER");
  addColumn(sql, "hold_allocations", "conversion_denominator", "INTEGER");
  migrateWindow(sql);
  const marked = sql.exec("SELECT 1 FROM lot_marks LIMIT 1").toArray().length > 0;
  const entries = sql.exec("SELECT 1 FROM entries WHERE grant_id IS NOT NULL LIMIT 1").toArray().length > 0;
  // Once compacted, the entries left start past the floor: a backfill from them would mark wrong sums.
  if (!marked && entries && floorSeq(sql) === 0) backfillMarks(sql);
}

function addColumn(sql: SqlStorage, table: string, column: string, type: string): void {
  const columns = sql
    .exec(`PRAGMA table_info(${table})`)
    .toArray()
    .map((r) => String(r.name));
  if (!columns.includes(column)) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
}

function backfillMarks(sql: SqlStorage): void {
  const sums = new Map<string, { remaining: number; held: number }>();
  let after = 0;
  for (;;) {
    const rows = sql
      .exec(
        `SELECT seq, grant_id, amount, held_delta, recorded_at_ms FROM entries
         WHERE seq > ? AND grant_id IS NOT NULL ORDER BY seq LIMIT ?`,
        after,
        BACKFILL_PAGE,
      )
      .toArray();
    for (const r of rows) {
      const grantId = String(r.grant_id);
      const s = sums.get(grantId) ?? { remaining: 0, held: 0 };
      s.remaining += Number(r.amount);
      s.held += Number(r.held_delta);
      sums.set(grantId, s);
      sql.exec(
        "INSERT INTO lot_marks (seq, grant_id, remaining, held, recorded_at_ms) VALUES (?, ?, ?, ?, ?)",
        Number(r.seq),
        grantId,
        s.remaining,
        s.held,
        Number(r.recorded_at_ms),
      );
      after = Number(r.seq);
    }
    if (rows.length < BACKFILL_PAGE) return;
  }
}
