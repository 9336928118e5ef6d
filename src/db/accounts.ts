/**
 * The D1 account directory: a copy of each account's record, written only by
 * its Durable Object's outbox (src/account/outbox.ts). It lets support list
 * accounts without waking one DO per account, at the price of lagging each
 * DO by the outbox delay (longer while D1 is unreachable).
 */
import { and, asc, eq, gt, type SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { AccountRecord } from "../account/types";
import { accounts } from "./schema";

export interface AccountListQuery {
  /** Only the direct children of this account; null: every account. */
  parentId: string | null;
  /** Keyset cursor: only accounts whose id sorts after this one. */
  after: string | null;
  limit: number;
}

/** A directory row in the shape GET /v1/accounts/{id} serves from the DO. */
export function accountFromRow(row: typeof accounts.$inferSelect): AccountRecord {
  return {
    account_id: row.accountId,
    name: row.name,
    parent_id: row.parentId,
    verified: row.verified,
    // The outbox stores both as JSON text (null when the DO has none).
    metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as Record<string, string>),
    low_balance: row.lowBalance === null ? null : (JSON.parse(row.lowBalance) as Record<string, number>),
    created_at: new Date(row.createdAtMs).toISOString(),
    updated_at: new Date(row.updatedAtMs).toISOString(),
  };
}

/**
 * Accounts by id, ascending, keyset-paginated by account_id (the primary key),
 * so a page costs the same however deep the cursor is. Reads one row past
 * `limit` to tell whether another page exists.
 */
export async function listAccounts(
  d1: D1Database,
  q: AccountListQuery,
): Promise<{ accounts: AccountRecord[]; more: boolean }> {
  const where: SQL[] = [];
  if (q.parentId !== null) where.push(eq(accounts.parentId, q.parentId));
  if (q.after !== null) where.push(gt(accounts.accountId, q.after));
  const rows = await drizzle(d1)
    .select()
    .from(accounts)
    .where(and(...where))
    .orderBy(asc(accounts.accountId))
    .limit(q.limit + 1);
  return { accounts: rows.slice(0, q.limit).map(accountFromRow), more: rows.length > q.limit };
}
