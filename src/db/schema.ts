/**
 * D1: the global, append-only history and reporting store. drizzle-kit
 * generates migrations/ from this file; the immutability triggers on
 * ledger_entries live in a hand-written migration after it.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** One row per entry, shipped from each account's outbox (ON CONFLICT (entry_id) DO NOTHING; any other clash fails the shipment). */
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
    // The entry's `rating` member (metered debits, holds, receipts; migrations/0009): null when absent.
    ratingMeter: text("rating_meter"),
    ratingQuantity: integer("rating_quantity"),
    ratingPriceVersion: integer("rating_price_version"),
    // The entry's `conversion` member (converting debits; migrations/0009): null when absent.
    conversionToUnit: text("conversion_to_unit"),
    conversionNumerator: integer("conversion_numerator"),
    conversionDenominator: integer("conversion_denominator"),
  },
  (t) => [
    uniqueIndex("ledger_entries_account_seq").on(t.accountId, t.seq),
    index("ledger_entries_recorded").on(t.recordedAtMs),
    index("ledger_entries_account_recorded").on(t.accountId, t.recordedAtMs),
  ],
);

/** Account directory (mirrored from each DO). */
export const accounts = sqliteTable(
  "accounts",
  {
    accountId: text("account_id").primaryKey(),
    name: text("name"),
    parentId: text("parent_id"),
    verified: integer("verified", { mode: "boolean" }).notNull(),
    metadata: text("metadata"),
    lowBalance: text("low_balance"),
    createdAtMs: integer("created_at_ms").notNull(),
    updatedAtMs: integer("updated_at_ms").notNull(),
  },
  // GET /v1/accounts?parent_id= pages through one parent's children without walking every account.
  (t) => [index("accounts_by_parent").on(t.parentId, t.accountId)],
);

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
    /** Written by the cron only (the outbox upsert leaves it alone): the smallest credits.expiring window sent. */
    expiringNotifiedDays: integer("expiring_notified_days"),
  },
  (t) => [
    primaryKey({ columns: [t.accountId, t.grantId] }),
    index("grants_expiry").on(t.expiresAtMs),
    // Only lots with an unheld remainder: the expirations and expiring-soon jobs never scan old, settled lots.
    index("grants_expiry_open").on(t.expiresAtMs).where(sql`remaining > held AND status != 'voided'`),
  ],
);

/**
 * What each account's outbox has shipped: the cron finds laggards here. Each
 * shipped batch also reports the DO's head at that moment (`known_seq`; above
 * `shipped_seq` means more was waiting) and its earliest open hold deadline,
 * so the cron can find stuck outboxes and overdue holds without waking DOs.
 */
export const accountHeads = sqliteTable(
  "account_heads",
  {
    accountId: text("account_id").primaryKey(),
    shippedSeq: integer("shipped_seq").notNull(),
    headHash: text("head_hash").notNull(),
    updatedAtMs: integer("updated_at_ms").notNull(),
    knownSeq: integer("known_seq").notNull().default(0),
    nextHoldDeadlineMs: integer("next_hold_deadline_ms"),
  },
  (t) => [
    index("account_heads_touched").on(t.updatedAtMs, t.accountId),
    index("account_heads_hold_deadline").on(t.nextHoldDeadlineMs),
    index("account_heads_lagging").on(t.accountId).where(sql`known_seq > shipped_seq`),
  ],
);

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    role: text("role").notNull(),
    maxGrantAmount: integer("max_grant_amount"),
    /** Account-scoped keys act only on this account and its descendants (migration 0007). */
    accountScope: text("account_scope"),
    /** A transfer above it is refused, 403 grant_limit_exceeded (migration 0008). */
    maxTransferAmount: integer("max_transfer_amount"),
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

// ── scheduled jobs, alerts, webhooks (issue 4) ─────────────────────────────

/** Small key/value progress markers of the cron jobs (cursors, watermarks). */
export const cronState = sqliteTable("cron_state", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  updatedAtMs: integer("updated_at_ms").notNull(),
});

/**
 * Alerts: written by the DO outbox (balance.low, credits.expired) and by the
 * cron (credits.expiring, usage.spike, reconciliation.drift); ids are
 * deterministic or per transaction, so a repeat is INSERT OR IGNORE'd.
 * `dispatched_at_ms` is set once every matching webhook has a delivery queued.
 */
export const alerts = sqliteTable(
  "alerts",
  {
    id: text("id").primaryKey(),
    type: text("type").notNull(),
    accountId: text("account_id"),
    unit: text("unit"),
    data: text("data").notNull(),
    createdAtMs: integer("created_at_ms").notNull(),
    recordedAtMs: integer("recorded_at_ms").notNull(),
    dispatchedAtMs: integer("dispatched_at_ms"),
  },
  (t) => [
    index("alerts_created").on(t.createdAtMs, t.id),
    index("alerts_account").on(t.accountId, t.createdAtMs),
    index("alerts_undispatched").on(t.dispatchedAtMs, t.recordedAtMs),
  ],
);

/** Webhook endpoints registered by admins; deleting keeps the row (deliveries refer to it). */
export const webhooks = sqliteTable("webhooks", {
  id: text("id").primaryKey(),
  url: text("url").notNull(),
  eventTypes: text("event_types").notNull(),
  secret: text("secret").notNull(),
  description: text("description"),
  createdAtMs: integer("created_at_ms").notNull(),
  deletedAtMs: integer("deleted_at_ms"),
});

/** One delivery per (alert, webhook); its id is the Standard Webhooks `webhook-id`, stable across retries. */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    webhookId: text("webhook_id").notNull(),
    alertId: text("alert_id").notNull(),
    eventType: text("event_type").notNull(),
    status: text("status").notNull(),
    attempts: integer("attempts").notNull(),
    lastStatusCode: integer("last_status_code"),
    lastError: text("last_error"),
    createdAtMs: integer("created_at_ms").notNull(),
    updatedAtMs: integer("updated_at_ms").notNull(),
    deliveredAtMs: integer("delivered_at_ms"),
  },
  (t) => [
    index("webhook_deliveries_webhook").on(t.webhookId, t.createdAtMs),
    uniqueIndex("webhook_deliveries_pair").on(t.alertId, t.webhookId),
  ],
);

/** Every delivery attempt, successful or not. */
export const webhookAttempts = sqliteTable(
  "webhook_attempts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    deliveryId: text("delivery_id").notNull(),
    webhookId: text("webhook_id").notNull(),
    attempt: integer("attempt").notNull(),
    statusCode: integer("status_code"),
    error: text("error"),
    durationMs: integer("duration_ms").notNull(),
    atMs: integer("at_ms").notNull(),
  },
  (t) => [index("webhook_attempts_delivery").on(t.deliveryId, t.attempt)],
);

/** One row per reconciliation run. */
export const reconciliationRuns = sqliteTable(
  "reconciliation_runs",
  {
    id: text("id").primaryKey(),
    startedAtMs: integer("started_at_ms").notNull(),
    finishedAtMs: integer("finished_at_ms").notNull(),
    accountsChecked: integer("accounts_checked").notNull(),
    accountsLagging: integer("accounts_lagging").notNull(),
    accountsFailed: integer("accounts_failed").notNull(),
    drifts: integer("drifts").notNull(),
    entriesVerified: integer("entries_verified").notNull(),
    durationMs: integer("duration_ms").notNull(),
  },
  (t) => [index("reconciliation_runs_started").on(t.startedAtMs)],
);

/** Each difference a run found between a DO and what D1 replays to. Never fixed silently. */
export const reconciliationDrifts = sqliteTable(
  "reconciliation_drifts",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: text("run_id").notNull(),
    accountId: text("account_id").notNull(),
    kind: text("kind").notNull(),
    unit: text("unit"),
    creditType: text("credit_type"),
    expected: text("expected"),
    actual: text("actual"),
    detail: text("detail").notNull(),
    detectedAtMs: integer("detected_at_ms").notNull(),
  },
  (t) => [index("reconciliation_drifts_run").on(t.runId), index("reconciliation_drifts_account").on(t.accountId)],
);

/**
 * How far each account's D1 hash chain has been re-verified, so each run
 * checks only new entries, and how far the rolling audit has re-verified it
 * again from seq 1.
 */
export const reconciliationCheckpoints = sqliteTable(
  "reconciliation_checkpoints",
  {
    accountId: text("account_id").primaryKey(),
    verifiedSeq: integer("verified_seq").notNull(),
    verifiedHash: text("verified_hash").notNull(),
    /**
     * 1 while the next run must come back: the chain has more shipped entries
     * than one run verifies, the audit below the checkpoint is part way, or
     * the last check could not finish (the DO failed or its outbox lagged).
     */
    behind: integer("behind").notNull(),
    checkedAtMs: integer("checked_at_ms").notNull(),
    /** The rolling audit's position: D1's chain from seq 1 is re-verified up to here (0: no pass under way). */
    auditSeq: integer("audit_seq").notNull().default(0),
    /** The hash at `audit_seq` (null at 0: the genesis hash). */
    auditHash: text("audit_hash"),
  },
  // Retries come back least recently checked first.
  (t) => [index("reconciliation_checkpoints_behind").on(t.behind, t.checkedAtMs)],
);

export * from "./schema-approvals";
export * from "./schema-archive";
export * from "./schema-campaigns";
// The finance tables (audit log, bulk grants, journal) are in schema-finance.ts.
export * from "./schema-finance";
export * from "./schema-meters";
export * from "./schema-metrics";
export * from "./schema-recurring";
export * from "./schema-transfers";
