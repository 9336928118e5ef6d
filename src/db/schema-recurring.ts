/**
 * D1 table of recurring grants (migrations/0011_recurring.sql): one row per
 * schedule, written by the route after the account's Durable Object accepted
 * it. Not the authority (the DO is): the cron's backstop (src/cron/recurring.ts)
 * reads it to find accounts with a period boundary it has not checked yet.
 */
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const recurringGrants = sqliteTable(
  "recurring_grants",
  {
    accountId: text("account_id").notNull(),
    recurringId: text("recurring_id").notNull(),
    interval: text("interval").notNull(),
    startsAtMs: integer("starts_at_ms").notNull(),
    endsAtMs: integer("ends_at_ms"),
    expires: text("expires").notNull(),
    /** active | cancelled */
    status: text("status").notNull(),
    /** The last boundary with a step to take; null: the schedule has no end. */
    lastBoundaryMs: integer("last_boundary_ms"),
    /** Cron-owned: boundaries up to here have been poked. */
    checkedThroughMs: integer("checked_through_ms").notNull(),
    /** The first boundary after checked_through_ms (null: none left): what the cron selects by. */
    nextBoundaryMs: integer("next_boundary_ms"),
    createdAtMs: integer("created_at_ms").notNull(),
    updatedAtMs: integer("updated_at_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.recurringId] }), index("recurring_grants_next").on(t.nextBoundaryMs)],
);
