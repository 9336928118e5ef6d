/**
 * The global claim of a transfer id in D1 (schema-transfers.ts): the first
 * body sent under an id owns it, so the same id sent with another body, or
 * from another account, is a conflict wherever it is sent from.
 */
import { and, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { apiKeys, budgets, transfers } from "./schema";

export type TransferRow = typeof transfers.$inferSelect;

export interface TransferClaim {
  transferId: string;
  bodyHash: string;
  fromAccount: string;
  toAccount: string;
  amount: number;
  unit: string;
}

/** Claims the id (a no-op when it is taken) and returns the row that owns it: ours or the first one. */
export async function claimTransfer(d1: D1Database, claim: TransferClaim, nowMs: number): Promise<TransferRow> {
  const db = drizzle(d1);
  await db
    .insert(transfers)
    .values({ ...claim, state: "claimed", createdAtMs: nowMs, updatedAtMs: nowMs })
    .onConflictDoNothing();
  // A claim the cron closed as refused (nothing moved) is open again when the same body comes back.
  await db
    .update(transfers)
    .set({ state: "claimed", updatedAtMs: nowMs })
    .where(
      and(
        eq(transfers.transferId, claim.transferId),
        eq(transfers.bodyHash, claim.bodyHash),
        eq(transfers.state, "refused"),
      ),
    );
  const row = await readTransfer(d1, claim.transferId);
  if (row === null) throw new Error(`transfer ${claim.transferId} was claimed but cannot be read back`);
  return row;
}

export async function readTransfer(d1: D1Database, transferId: string): Promise<TransferRow | null> {
  const row = await drizzle(d1).select().from(transfers).where(eq(transfers.transferId, transferId)).get();
  return row ?? null;
}

/** Records the outcome the gateway saw (the source's Durable Object stays the truth). */
export async function markTransfer(
  d1: D1Database,
  transferId: string,
  state: "completed" | "cancelled" | "refused",
  nowMs: number,
): Promise<void> {
  await drizzle(d1)
    .update(transfers)
    .set({ state, updatedAtMs: nowMs })
    .where(and(eq(transfers.transferId, transferId), eq(transfers.state, "claimed")));
}

/** The key's max_transfer_amount (null: no limit, or not an API key). */
export async function transferLimitOf(d1: D1Database, keyId: string): Promise<number | null> {
  const row = await drizzle(d1)
    .select({ max: apiKeys.maxTransferAmount })
    .from(apiKeys)
    .where(eq(apiKeys.id, keyId))
    .get();
  return row?.max ?? null;
}

/** Mirrors a child's budget into D1 (null: removed) for the drawdown report. */
export async function saveBudget(
  d1: D1Database,
  accountId: string,
  parentId: string,
  budget: { unit: string; period: string; limit: number } | null,
  nowMs: number,
): Promise<void> {
  const db = drizzle(d1);
  if (budget === null) {
    await db.delete(budgets).where(eq(budgets.accountId, accountId));
    return;
  }
  const row = { accountId, parentId, ...budget, updatedAtMs: nowMs };
  await db.insert(budgets).values(row).onConflictDoUpdate({ target: budgets.accountId, set: row });
}

/** Children of one parent read by one drawdown report, at most. */
export const MAX_DRAWDOWN_CHILDREN = 100;

export interface DrawdownRow {
  account_id: string;
  day_ms: number;
  drawn: number;
  consumed: number;
}

/**
 * Per child and UTC day in [fromMs, toMs): credits drawn from the parent
 * (budget_draw lots issued) and credits consumed, from D1's daily journal
 * rollups. At most MAX_DRAWDOWN_CHILDREN children (in id order) are read.
 */
export async function drawdownRows(
  d1: D1Database,
  parentId: string,
  unit: string,
  fromMs: number,
  toMs: number,
): Promise<{ children: string[]; more: boolean; rows: DrawdownRow[]; budgets: (typeof budgets.$inferSelect)[] }> {
  const kids = await d1
    .prepare("SELECT account_id FROM accounts WHERE parent_id = ?1 ORDER BY account_id LIMIT ?2")
    .bind(parentId, MAX_DRAWDOWN_CHILDREN + 1)
    .all<{ account_id: string }>();
  const children = kids.results.slice(0, MAX_DRAWDOWN_CHILDREN).map((r) => r.account_id);
  if (children.length === 0) return { children, more: false, rows: [], budgets: [] };
  const { results } = await d1
    .prepare(
      `SELECT account_id, day_ms,
         SUM(CASE WHEN category = 'issued' AND source = ?4 THEN amount ELSE 0 END) AS drawn,
         -SUM(CASE WHEN category = 'consumed' THEN amount ELSE 0 END) AS consumed
       FROM journal_daily WHERE unit = ?1 AND day_ms >= ?2 AND day_ms < ?3
         AND account_id IN (SELECT account_id FROM accounts WHERE parent_id = ?5 ORDER BY account_id LIMIT ?6)
       GROUP BY account_id, day_ms`,
    )
    .bind(unit, fromMs, toMs, "budget_draw", parentId, MAX_DRAWDOWN_CHILDREN)
    .all<DrawdownRow>();
  const set = await drizzle(d1)
    .select()
    .from(budgets)
    // By the children the directory lists now, not budgets.parent_id: a child moved since its budget was set is here.
    .where(
      sql`${budgets.accountId} IN (SELECT account_id FROM accounts WHERE parent_id = ${parentId} ORDER BY account_id LIMIT ${MAX_DRAWDOWN_CHILDREN})`,
    )
    .orderBy(budgets.accountId)
    .limit(MAX_DRAWDOWN_CHILDREN);
  return { children, more: kids.results.length > MAX_DRAWDOWN_CHILDREN, rows: results, budgets: set };
}
