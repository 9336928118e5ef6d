/**
 * "Touched since the last run": accounts whose `account_heads` row changed
 * after a job's watermark, oldest first. Shared by reconciliation and the
 * spike scan.
 *
 * The shipper stamps `updated_at_ms` with its clock before D1 commits the
 * batch, so a slow commit can become visible with a stamp below rows a job
 * has already read. The stored watermark therefore never passes `read time −
 * TOUCH_OVERLAP_MS`: rows stamped within that minute of a read are read again
 * by the next run (both jobs are idempotent), and a late row is still found.
 */
import { readCronState, writeCronState } from "../db/cron-state";

/** How long after its `updated_at_ms` a shipped batch may still become visible in D1. */
export const TOUCH_OVERLAP_MS = 60_000;

/** A keyset position over account_heads (updated_at_ms, account_id). */
export type Watermark = { ms: number; id: string };

export interface TouchedRow {
  account_id: string;
  updated_at_ms: number;
}

const before = (a: Watermark, b: Watermark) => a.ms < b.ms || (a.ms === b.ms && a.id < b.id);

/**
 * The watermark to store after handling everything read up to `last`: the
 * last row read, but never later than `readAtMs − overlapMs` (rows stamped
 * after that may still be joined by slower commits stamped before them), and
 * never earlier than the current mark.
 * @example nextWatermark({ms: 0, id: ""}, {ms: 100, id: "a"}, 1_000_000, 60_000) // {ms: 100, id: "a"}: old rows
 * @example nextWatermark({ms: 0, id: ""}, {ms: 999_000, id: "a"}, 1_000_000, 60_000) // {ms: 940_000, id: ""}
 */
export function nextWatermark(mark: Watermark, last: Watermark | null, readAtMs: number, overlapMs: number): Watermark {
  if (last === null) return mark;
  const safe: Watermark = { ms: readAtMs - overlapMs, id: "" };
  const next = before(last, safe) ? last : safe;
  return before(mark, next) ? next : mark;
}

/**
 * Up to `limit` accounts touched after the watermark stored under `key`, and
 * the statement that stores the next one; run it only once those accounts
 * have been handled, so a failure leaves them for the next run.
 */
export async function touchedSince(
  db: D1Database,
  key: string,
  limit: number,
): Promise<{ rows: TouchedRow[]; commit: D1PreparedStatement | null }> {
  const mark = (await readCronState<Watermark>(db, key)) ?? { ms: 0, id: "" };
  if (limit <= 0) return { rows: [], commit: null };
  const readAtMs = Date.now();
  const { results } = await db
    .prepare(
      `SELECT account_id, updated_at_ms FROM account_heads
       WHERE updated_at_ms > ? OR (updated_at_ms = ? AND account_id > ?)
       ORDER BY updated_at_ms, account_id LIMIT ?`,
    )
    .bind(mark.ms, mark.ms, mark.id, limit)
    .all<TouchedRow>();
  const lastRow = results[results.length - 1];
  const last = lastRow ? { ms: lastRow.updated_at_ms, id: lastRow.account_id } : null;
  const next = nextWatermark(mark, last, readAtMs, TOUCH_OVERLAP_MS);
  const moved = next.ms !== mark.ms || next.id !== mark.id;
  return { rows: results, commit: moved ? writeCronState(db, key, next) : null };
}
