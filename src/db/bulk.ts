/**
 * Bulk grant jobs in D1 (migration 0005): one `bulk_grants` row per job, as
 * first sent, and one `bulk_grant_items` row per (job, account), pending
 * until its grant is applied or refused. Progress is counted from the items
 * (≤ 10 000 per job, index (bulk_id, status)), never kept as a counter that
 * a repeated chunk could bump twice. Lists of ids are bound as one JSON array
 * and read back with json_each, so no statement binds more than 9 of D1's
 * 100 parameters whatever the chunk size.
 */

export const ITEM_STATUSES = ["pending", "granted", "skipped", "failed"] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

/** Items inserted per statement (one JSON array of ≤ 500 ids, ≤ 66 KB); a job of 10 000 is 20 statements in one batch. */
export const ITEM_INSERT_CHUNK = 500;
/** Refused accounts listed in a status; the counts are always complete. */
export const BULK_ERRORS_MAX = 100;
/** Pending accounts read back to enqueue again: every one of the largest job. */
export const PENDING_READ_MAX = 10_000;

export interface BulkRow {
  bulk_id: string;
  body_hash: string;
  /** JSON of BulkGrantSpec (src/bulk/spec.ts). */
  grant: string;
  /** The caller's actor, role and limit: the consumer grants on this authority, checked per grant. */
  actor: string;
  role: string;
  max_grant_amount: number | null;
  total: number;
  created_at_ms: number;
  request_id: string;
}

export interface BulkProgress {
  counts: Record<ItemStatus, number>;
  /** The latest change to any item (its creation, a mark, or a re-enqueue). */
  lastChangeMs: number;
  /** The first BULK_ERRORS_MAX refused accounts, by account id. */
  errors: { account_id: string; code: string }[];
  errorsMore: boolean;
}

export async function getBulk(db: D1Database, bulkId: string): Promise<BulkRow | null> {
  return db.prepare("SELECT * FROM bulk_grants WHERE bulk_id = ?").bind(bulkId).first<BulkRow>();
}

/**
 * Creates the job and its pending items in one D1 batch (one transaction),
 * unless the id is taken: then nothing is written and the row that holds it
 * is returned. Items are written only under a row with this body's hash, so
 * two racing requests with different bodies never mix their accounts.
 */
export async function createBulk(db: D1Database, row: BulkRow, accountIds: readonly string[]): Promise<BulkRow> {
  const statements = [
    db
      .prepare(
        `INSERT INTO bulk_grants (bulk_id, body_hash, "grant", actor, role, max_grant_amount, total, created_at_ms, request_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (bulk_id) DO NOTHING`,
      )
      .bind(
        row.bulk_id,
        row.body_hash,
        row.grant,
        row.actor,
        row.role,
        row.max_grant_amount,
        row.total,
        row.created_at_ms,
        row.request_id,
      ),
  ];
  for (let i = 0; i < accountIds.length; i += ITEM_INSERT_CHUNK) {
    const ids = JSON.stringify(accountIds.slice(i, i + ITEM_INSERT_CHUNK));
    statements.push(
      db
        .prepare(
          `INSERT INTO bulk_grant_items (bulk_id, account_id, status, code, updated_at_ms)
           SELECT ?1, value, 'pending', NULL, ?2 FROM json_each(?3)
           WHERE EXISTS (SELECT 1 FROM bulk_grants WHERE bulk_id = ?1 AND body_hash = ?4)
           ON CONFLICT (bulk_id, account_id) DO NOTHING`,
        )
        .bind(row.bulk_id, row.created_at_ms, ids, row.body_hash),
    );
  }
  await db.batch(statements);
  const stored = await getBulk(db, row.bulk_id);
  if (!stored) throw new Error(`bulk ${row.bulk_id} was not stored`);
  return stored;
}

/** Counts by status and the first refused accounts: two indexed reads over ≤ 10 000 items. */
export async function bulkProgress(db: D1Database, bulkId: string): Promise<BulkProgress> {
  const [byStatus, failed] = await db.batch([
    db
      .prepare(
        `SELECT status, COUNT(*) AS n, MAX(updated_at_ms) AS last_ms FROM bulk_grant_items
         WHERE bulk_id = ? GROUP BY status`,
      )
      .bind(bulkId),
    db
      .prepare(
        `SELECT account_id, code FROM bulk_grant_items WHERE bulk_id = ? AND status = 'failed'
         ORDER BY account_id LIMIT ?`,
      )
      .bind(bulkId, BULK_ERRORS_MAX + 1),
  ]);
  const counts: Record<ItemStatus, number> = { pending: 0, granted: 0, skipped: 0, failed: 0 };
  let lastChangeMs = 0;
  for (const r of (byStatus?.results ?? []) as { status: ItemStatus; n: number; last_ms: number }[]) {
    counts[r.status] = r.n;
    lastChangeMs = Math.max(lastChangeMs, r.last_ms);
  }
  const rows = (failed?.results ?? []) as { account_id: string; code: string | null }[];
  return {
    counts,
    lastChangeMs,
    errors: rows.slice(0, BULK_ERRORS_MAX).map((r) => ({ account_id: r.account_id, code: r.code ?? "internal_error" })),
    errorsMore: rows.length > BULK_ERRORS_MAX,
  };
}

/** The accounts still pending: among `accountIds` (a chunk), or all of the job's (≤ PENDING_READ_MAX). */
export async function pendingAccounts(
  db: D1Database,
  bulkId: string,
  accountIds?: readonly string[],
): Promise<string[]> {
  const statement =
    accountIds === undefined
      ? db
          .prepare(
            `SELECT account_id FROM bulk_grant_items WHERE bulk_id = ? AND status = 'pending'
             ORDER BY account_id LIMIT ?`,
          )
          .bind(bulkId, PENDING_READ_MAX)
      : db
          .prepare(
            `SELECT account_id FROM bulk_grant_items WHERE bulk_id = ? AND status = 'pending'
             AND account_id IN (SELECT value FROM json_each(?))`,
          )
          .bind(bulkId, JSON.stringify(accountIds));
  const { results } = await statement.all<{ account_id: string }>();
  return results.map((r) => r.account_id);
}

/** Marks the job's pending items as touched now (they were enqueued again). */
export async function touchPending(db: D1Database, bulkId: string, nowMs: number): Promise<void> {
  await db
    .prepare("UPDATE bulk_grant_items SET updated_at_ms = ? WHERE bulk_id = ? AND status = 'pending'")
    .bind(nowMs, bulkId)
    .run();
}

export interface ItemResult {
  accountId: string;
  status: Exclude<ItemStatus, "pending">;
  code: string | null;
}

/**
 * Records what each account's grant did, in one batch: one UPDATE per
 * (status, code). Only pending items change, so the first mark stands and a
 * repeated chunk never rewrites a result.
 */
export async function markItems(
  db: D1Database,
  bulkId: string,
  results: readonly ItemResult[],
  nowMs: number,
): Promise<void> {
  const groups = new Map<string, { status: string; code: string | null; ids: string[] }>();
  for (const r of results) {
    const key = `${r.status}:${r.code ?? ""}`;
    const group = groups.get(key) ?? { status: r.status, code: r.code, ids: [] };
    group.ids.push(r.accountId);
    groups.set(key, group);
  }
  if (groups.size === 0) return;
  await db.batch(
    [...groups.values()].map((g) =>
      db
        .prepare(
          `UPDATE bulk_grant_items SET status = ?, code = ?, updated_at_ms = ?
           WHERE bulk_id = ? AND status = 'pending' AND account_id IN (SELECT value FROM json_each(?))`,
        )
        .bind(g.status, g.code, nowMs, bulkId, JSON.stringify(g.ids)),
    ),
  );
}
