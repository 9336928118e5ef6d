/**
 * What a report covers (its filters), as SQL over the journal tables. Every
 * report reads D1 only, never an account's Durable Object: the journal and
 * its daily rollups are fed by each account's outbox.
 */
import type { D1Reader } from "../db/replica";
import { ApiError } from "../errors";
import { type CreditType, JOURNAL_CATEGORIES } from "../ledger";
import { DAY_MS, type Period } from "./periods";

/** Reports count the journal's categories and nothing else, so a category added later cannot break a chain. */
export const KNOWN_CATEGORIES = `category IN (${JOURNAL_CATEGORIES.map((c) => `'${c}'`).join(", ")})`;

/**
 * A report holds at most this many rows of groups (credits: periods × keys;
 * revenue: periods × tax jurisdictions; liability: currencies): sources and
 * campaigns are free text, so their number has no other bound.
 */
export const MAX_REPORT_ROWS = 10_000;

export interface ReportScope {
  accountId: string | null;
  /** This account and every descendant (through the D1 account directory), down to `maxDepth` levels. */
  parent: { id: string; maxDepth: number } | null;
  creditType: CreditType | null;
  source: string | null;
  campaign: string | null;
  /** null: every unit (the revenue report only; the others default to `credits`). */
  unit: string | null;
}

/** SQL text and its bound values, appended together so the order of `?` can never drift from the values. */
export class Sql {
  text = "";
  readonly binds: (string | number)[] = [];

  add(text: string, ...binds: (string | number)[]): this {
    this.text += text;
    this.binds.push(...binds);
    return this;
  }

  statement(db: D1Reader): D1PreparedStatement {
    return db.prepare(this.text).bind(...this.binds);
  }
}

/**
 * Opens a statement: `WITH RECURSIVE tree …` when the scope names a parent
 * (its account and each child, grandchild, … by the accounts_by_parent index,
 * at most `maxDepth` levels down, so even a directory with a cycle ends).
 * `more` adds further common table expressions after it.
 */
export function open(scope: ReportScope, ...more: ((q: Sql) => void)[]): Sql {
  const q = new Sql();
  const ctes: ((q: Sql) => void)[] = [];
  if (scope.parent) {
    const { id, maxDepth } = scope.parent;
    ctes.push((s) =>
      s.add(
        "tree(account_id, depth) AS (SELECT ?, 0 UNION SELECT a.account_id, tree.depth + 1 FROM accounts a " +
          "JOIN tree ON a.parent_id = tree.account_id WHERE tree.depth < ?)",
        id,
        maxDepth,
      ),
    );
  }
  ctes.push(...more);
  ctes.forEach((cte, i) => {
    q.add(i === 0 ? "WITH RECURSIVE " : ", ");
    cte(q);
  });
  if (ctes.length) q.add(" ");
  return q;
}

/**
 * ` AND …` for each filter. Columns are named alike in `journal` and
 * `journal_daily`; where the journal has NULL (no source, campaign) the
 * rollup has '', and a filter value is never empty, so both match the same rows.
 */
export function filtered(q: Sql, scope: ReportScope): Sql {
  if (scope.accountId !== null) q.add(" AND account_id = ?", scope.accountId);
  if (scope.parent) q.add(" AND account_id IN (SELECT account_id FROM tree)");
  if (scope.creditType !== null) q.add(" AND credit_type = ?", scope.creditType);
  if (scope.source !== null) q.add(" AND source = ?", scope.source);
  if (scope.campaign !== null) q.add(" AND campaign = ?", scope.campaign);
  if (scope.unit !== null) q.add(" AND unit = ?", scope.unit);
  return q;
}

/** The start of a rollup row's period: its day, or its calendar month (UTC), in epoch ms. */
export const bucketOf = (period: Period): string =>
  period === "day" ? "day_ms" : "CAST(strftime('%s', day_ms / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000";

/** Refuses a result longer than MAX_REPORT_ROWS. */
export function bounded<T>(rows: T[], what: string): T[] {
  if (rows.length > MAX_REPORT_ROWS) {
    throw new ApiError("invalid_request", `${what} exceeds ${MAX_REPORT_ROWS} rows: narrow the window or the filters`);
  }
  return rows;
}

/** Runs `q` with `tail` and a LIMIT one past MAX_REPORT_ROWS, and refuses a result that reaches it. */
export async function groupedRows<T>(db: D1Reader, q: Sql, tail: string, what: string): Promise<T[]> {
  q.add(`${tail} LIMIT ?`, MAX_REPORT_ROWS + 1);
  return bounded((await q.statement(db).all<T>()).results, what);
}

/**
 * Reading more than this share of the rollups' days, a report scans the
 * table rather than walking the journal_daily_day index: each index hit is a
 * lookup into the table, about 8× the cost of the next row of a scan
 * (measured: a sum over 96 547 rollup rows took 76 ms by the index, 9 ms by
 * a scan, in SQLite 3.40).
 */
export const SCAN_SHARE = 1 / 8;

/**
 * `day_ms`, or `+day_ms` so SQLite scans instead of using the day index, for
 * a read of the rollup days in [fromMs, toMs) (null: from the first). D1
 * keeps no planner statistics for these tables, so without this SQLite takes
 * the index even for a window that covers the whole history. One probe of
 * the index's two ends (O(log n)) tells how much of the history the window
 * covers, assuming days are about equally full. With an account or parent
 * filter no probe is made: journal_daily_account (account_id, day_ms) reads
 * just those accounts' days in the window.
 */
export async function dayColumn(
  db: D1Reader,
  scope: ReportScope,
  fromMs: number | null,
  toMs: number,
): Promise<string> {
  if (scope.accountId !== null || scope.parent !== null) return "day_ms";
  const span = await db
    .prepare("SELECT MIN(day_ms) AS first, MAX(day_ms) AS last FROM journal_daily")
    .first<{ first: number | null; last: number | null }>();
  if (span?.first == null || span.last == null) return "day_ms";
  const end = span.last + DAY_MS;
  const read = Math.min(toMs, end) - Math.max(fromMs ?? span.first, span.first);
  return read > (end - span.first) * SCAN_SHARE ? "+day_ms" : "day_ms";
}
