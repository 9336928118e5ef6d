/**
 * D1: the global, append-only history and reporting store. drizzle-kit
 * generates migrations/ from this file; the immutability triggers on
 * ledger_entries live in a hand-written migration after it.
 */
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** One row per entry, shipped from each account's outbox (INSERT OR IGNORE by entry_id). */
export const ledgerEntries = sqliteTable(
  "ledger_entries",
  {
    entryId: text("entry_id").primaryKey(),
    accountId: text("account_id").notNull(),
    seq: integer("seq").notNull(),
    txnId: text("txn_id").notNull(),
    kind: text("kind").notNull(),
    unit: text("unit").notNull(),
    amount: integer("amount").notNull(),
    heldDelta: integer("held_delta").notNull(),
    grantId: text("grant_id"),
    creditType: text("credit_type"),
    ref: text("ref"),
    actor: text("actor").notNull(),
    reason: text("reason"),
    effectiveAtMs: integer("effective_at_ms").notNull(),
    recordedAtMs: integer("recorded_at_ms").notNull(),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
  },
  (t) => [
    uniqueIndex("ledger_entries_account_seq").on(t.accountId, t.seq),
    index("ledger_entries_recorded").on(t.recordedAtMs),
  ],
);

/** Account directory (mirrored from each DO). */
export const accounts = sqliteTable("accounts", {
  accountId: text("account_id").primaryKey(),
  name: text("name"),
  parentId: text("parent_id"),
  verified: integer("verified", { mode: "boolean" }).notNull(),
  metadata: text("metadata"),
  lowBalance: text("low_balance"),
  createdAtMs: integer("created_at_ms").notNull(),
  updatedAtMs: integer("updated_at_ms").notNull(),
});

/** Grant index: lets the cron find lots expiring without waking every DO. */
export const grants = sqliteTable(
  "grants",
  {
    accountId: text("account_id").notNull(),
    grantId: text("grant_id").notNull(),
    unit: text("unit").notNull(),
    type: text("type").notNull(),
    amount: integer("amount").notNull(),
    remaining: integer("remaining").notNull(),
    held: integer("held").notNull(),
    priority: integer("priority").notNull(),
    effectiveAtMs: integer("effective_at_ms").notNull(),
    expiresAtMs: integer("expires_at_ms"),
    source: text("source"),
    campaign: text("campaign"),
    incidentId: text("incident_id"),
    costBasisAmount: integer("cost_basis_amount"),
    costBasisCurrency: text("cost_basis_currency"),
    status: text("status").notNull(),
    createdAtMs: integer("created_at_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.grantId] }), index("grants_expiry").on(t.expiresAtMs)],
);

/** What each account's outbox has shipped: the cron finds laggards here. */
export const accountHeads = sqliteTable("account_heads", {
  accountId: text("account_id").primaryKey(),
  shippedSeq: integer("shipped_seq").notNull(),
  headHash: text("head_hash").notNull(),
  updatedAtMs: integer("updated_at_ms").notNull(),
});

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    role: text("role").notNull(),
    maxGrantAmount: integer("max_grant_amount"),
    keyHash: text("key_hash").notNull(),
    createdAtMs: integer("created_at_ms").notNull(),
    revokedAtMs: integer("revoked_at_ms"),
  },
  (t) => [uniqueIndex("api_keys_hash").on(t.keyHash)],
);

/** Global settings, e.g. the consumption policy. */
export const settings = sqliteTable("settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  updatedAtMs: integer("updated_at_ms").notNull(),
});
