/**
 * D1 tables of the finance features: the audit log, bulk grant jobs, and the
 * journal with its daily rollups. Part of the schema drizzle-kit generates
 * migrations from (drizzle.config.ts reads both schema files).
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The audit log: one append-only row for every change that is not a ledger
 * entry (API keys, policies, accounts, alert settings, webhooks, …). Triggers
 * refuse UPDATE and DELETE. `before`/`after` are JSON with secrets removed.
 */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    atMs: integer("at_ms").notNull(),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    target: text("target").notNull(),
    before: text("before"),
    after: text("after"),
    requestId: text("request_id").notNull(),
  },
  (t) => [
    index("audit_events_actor").on(t.actor, t.id),
    index("audit_events_action").on(t.action, t.id),
    index("audit_events_target").on(t.target, t.id),
  ],
);

/** A bulk grant job: the request as first sent, and who sent it (roles and limits are checked per grant). */
export const bulkGrants = sqliteTable("bulk_grants", {
  bulkId: text("bulk_id").primaryKey(),
  bodyHash: text("body_hash").notNull(),
  /** The grant body (without grant_id) every account gets. */
  grant: text("grant").notNull(),
  actor: text("actor").notNull(),
  role: text("role").notNull(),
  maxGrantAmount: integer("max_grant_amount"),
  total: integer("total").notNull(),
  createdAtMs: integer("created_at_ms").notNull(),
  requestId: text("request_id").notNull(),
});

/** One row per (bulk, account): pending until its grant is applied or refused; counts are derived from these. */
export const bulkGrantItems = sqliteTable(
  "bulk_grant_items",
  {
    bulkId: text("bulk_id").notNull(),
    accountId: text("account_id").notNull(),
    /** pending | granted | skipped | failed */
    status: text("status").notNull(),
    code: text("code"),
    updatedAtMs: integer("updated_at_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.bulkId, t.accountId] }), index("bulk_grant_items_status").on(t.bulkId, t.status)],
);

/**
 * The journal: one row per ledger entry that moved credits of a lot
 * (amount ≠ 0), with what reports need and the entry does not carry: the
 * lot's source and campaign, the cost that moved with the credits (by the
 * cumulative rule, signed: + when it leaves deferred revenue, − when it
 * comes back), tax collected on a purchase, and the lot's age. Written by the
 * account's DO in the same transaction as the entry, shipped through the
 * outbox; derived, never typed in.
 */
export const journal = sqliteTable(
  "journal",
  {
    entryId: text("entry_id").primaryKey(),
    accountId: text("account_id").notNull(),
    seq: integer("seq").notNull(),
    unit: text("unit").notNull(),
    kind: text("kind").notNull(),
    /** issued | consumed | expired | voided | refunded | transferred */
    category: text("category").notNull(),
    /** Signed change of the account's credits, as on the entry. */
    amount: integer("amount").notNull(),
    creditType: text("credit_type").notNull(),
    grantId: text("grant_id").notNull(),
    source: text("source"),
    campaign: text("campaign"),
    /** issued: the cost basis paid; otherwise the cost that left (− when it came back). 0 without a cost basis. */
    costMinor: integer("cost_minor").notNull(),
    currency: text("currency"),
    taxMinor: integer("tax_minor").notNull(),
    taxJurisdiction: text("tax_jurisdiction"),
    /** consumed: credits × (recorded − lot created), for the average time to consumption. */
    ageWeightMs: integer("age_weight_ms").notNull(),
    recordedAtMs: integer("recorded_at_ms").notNull(),
  },
  (t) => [
    index("journal_recorded").on(t.recordedAtMs),
    index("journal_account").on(t.accountId, t.recordedAtMs),
    // A lot's rows (the campaign report reads just the redeemed lots, however long the account's history).
    index("journal_lot").on(t.accountId, t.grantId),
    // An account's purchases (the campaign report's conversions), without its debits.
    index("journal_purchases")
      .on(t.accountId, t.recordedAtMs)
      .where(sql`${t.kind} = 'grant' AND ${t.creditType} = 'purchased'`),
  ],
);

/**
 * Daily rollups of the journal, maintained idempotently as rows arrive (a
 * re-shipped row is not counted twice): reports read these, so their cost
 * follows days × groups, not entries. `day_ms` is the UTC midnight.
 */
export const journalDaily = sqliteTable(
  "journal_daily",
  {
    dayMs: integer("day_ms").notNull(),
    accountId: text("account_id").notNull(),
    unit: text("unit").notNull(),
    category: text("category").notNull(),
    creditType: text("credit_type").notNull(),
    /** '' when the lot had none (part of the key, so not null). */
    source: text("source").notNull(),
    campaign: text("campaign").notNull(),
    currency: text("currency").notNull(),
    taxJurisdiction: text("tax_jurisdiction").notNull(),
    amount: integer("amount").notNull(),
    costMinor: integer("cost_minor").notNull(),
    taxMinor: integer("tax_minor").notNull(),
    ageWeightMs: integer("age_weight_ms").notNull(),
    rows: integer("rows").notNull(),
  },
  (t) => [
    primaryKey({
      columns: [
        t.dayMs,
        t.accountId,
        t.unit,
        t.category,
        t.creditType,
        t.source,
        t.campaign,
        t.currency,
        t.taxJurisdiction,
      ],
    }),
    index("journal_daily_day").on(t.dayMs),
    index("journal_daily_account").on(t.accountId, t.dayMs),
  ],
);
