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

/**
 * The chain from `accountId` up towards its root in the directory: the
 * account first, then its parent, and so on, at most `maxLength` ids. One
 * recursive query, bounded by `maxLength` however the directory looks (a
 * lagging copy could briefly hold a cycle). Empty when the directory does
 * not know the account.
 */
export async function ancestorChain(d1: D1Database, accountId: string, maxLength: number): Promise<string[]> {
  const { results } = await d1
    .prepare(
      `WITH RECURSIVE up(id, parent, n) AS (
         SELECT account_id, parent_id, 1 FROM accounts WHERE account_id = ?1
         UNION ALL
         SELECT a.account_id, a.parent_id, up.n + 1 FROM accounts a JOIN up ON a.account_id = up.parent
         WHERE up.n < ?2
       ) SELECT id FROM up ORDER BY n`,
    )
    .bind(accountId, maxLength)
    .all<{ id: string }>();
  return results.map((r) => r.id);
}

export interface Descendants {
  /** Descendant ids with their depth below the root (1: a child), root excluded, each once. */
  accounts: { id: string; depth: number }[];
  /** True when the tree holds more than `limit` descendants within `maxDepth` levels. */
  more: boolean;
}

/**
 * Every descendant of `rootId` in the directory down to `maxDepth` levels, at
 * most `limit` of them (reads one more to tell whether the tree is larger).
 * Walks the accounts_by_parent index one level at a time inside one query.
 */
export async function descendantsOf(
  d1: D1Database,
  rootId: string,
  maxDepth: number,
  limit: number,
): Promise<Descendants> {
  const { results } = await d1
    .prepare(
      `WITH RECURSIVE down(id, depth) AS (
         SELECT ?1, 0
         UNION ALL
         SELECT a.account_id, down.depth + 1 FROM accounts a JOIN down ON a.parent_id = down.id
         WHERE down.depth < ?2
       ) SELECT id, depth FROM down WHERE depth > 0 LIMIT ?3`,
    )
    .bind(rootId, maxDepth, limit + 1)
    .all<{ id: string; depth: number }>();
  const seen = new Set<string>([rootId]);
  const out: { id: string; depth: number }[] = [];
  for (const row of results.slice(0, limit)) {
    // A lagging directory could briefly hold a cycle; each account counts once.
    if (seen.has(row.id)) continue;
    seen.add(row.id);
    out.push(row);
  }
  return { accounts: out, more: results.length > limit };
}
