/**
 * D1 tables of transfers between accounts (src/transfers/run.ts). A transfer
 * id is global: its row claims the id for one body, whichever accounts it
 * names. `state` is the last state the gateway saw; the source account's
 * Durable Object holds the truth (GET /v1/transfers/{id} asks it).
 */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const transfers = sqliteTable(
  "transfers",
  {
    transferId: text("transfer_id").primaryKey(),
    bodyHash: text("body_hash").notNull(),
    fromAccount: text("from_account").notNull(),
    toAccount: text("to_account").notNull(),
    amount: integer("amount").notNull(),
    unit: text("unit").notNull(),
    /** claimed | completed | cancelled: the last outcome the gateway saw. */
    state: text("state").notNull(),
    createdAtMs: integer("created_at_ms").notNull(),
    updatedAtMs: integer("updated_at_ms").notNull(),
  },
  (t) => [index("transfers_open").on(t.state, t.updatedAtMs)],
);

/**
 * Department budgets as the gateway last set them (the child's Durable
 * Object enforces its own copy): what GET /v1/reports/drawdown reports.
 */
export const budgets = sqliteTable(
  "budgets",
  {
    accountId: text("account_id").primaryKey(),
    parentId: text("parent_id").notNull(),
    unit: text("unit").notNull(),
    period: text("period").notNull(),
    limit: integer("limit").notNull(),
    updatedAtMs: integer("updated_at_ms").notNull(),
  },
  (t) => [index("budgets_by_parent").on(t.parentId, t.accountId)],
);
