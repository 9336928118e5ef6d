/**
 * The liability report: credits outstanding (not yet consumed, expired,
 * voided, refunded or transferred out) by type, and the deferred revenue
 * they carry per currency, exactly as the journal stood at `as_of`.
 *
 * "At `as_of`" means every journal row recorded at or before it. Days before
 * as_of's UTC day come whole from the daily rollups; the rest of that day
 * comes from the raw journal, rows recorded in [day start, as_of], by the
 * journal_recorded index (journal_account with an account filter). The
 * rollups key each row by the UTC day of its recorded_at, so the two parts
 * never overlap and never miss a row.
 */
import type { D1Reader } from "../db/replica";
import { CREDIT_TYPES, type CreditType } from "../ledger";
import { exact } from "./figures";
import { utcDay } from "./periods";
import {
  bounded,
  dayColumn,
  filtered,
  KNOWN_CATEGORIES,
  MAX_REPORT_ROWS,
  open,
  type ReportScope,
  type Sql,
} from "./scope";

export interface LiabilityReport {
  as_of: string;
  unit: string;
  outstanding: Record<CreditType, number>;
  deferred: { currency: string; amount: number }[];
  accounts: number;
}

export interface LiabilityQuery {
  asOfMs: number;
  unit: string;
  scope: ReportScope;
}

/**
 * The rows recorded at or before as_of, summed per account, type and
 * currency, as a common table expression `per` that SQLite materializes once
 * for the three answers read from it. `day` is `day_ms` or `+day_ms`
 * (dayColumn): the read usually covers nearly the whole history, so a scan.
 */
function perAccount(asOfMs: number, scope: ReportScope, day: string): (q: Sql) => void {
  const dayMs = utcDay(asOfMs);
  return (q) => {
    q.add(
      "moved AS (SELECT account_id, credit_type, category, currency, amount, cost_minor FROM journal_daily " +
        `WHERE ${day} < ?`,
      dayMs,
    );
    filtered(q, scope);
    q.add(
      " UNION ALL SELECT account_id, credit_type, category, COALESCE(currency, '') AS currency, amount, cost_minor " +
        "FROM journal WHERE recorded_at_ms >= ? AND recorded_at_ms <= ?",
      dayMs,
      asOfMs,
    );
    filtered(q, scope);
    q.add(
      "), per AS MATERIALIZED (SELECT account_id, credit_type, currency, SUM(amount) AS amount, " +
        `SUM(CASE WHEN category = 'issued' THEN cost_minor WHEN ${KNOWN_CATEGORIES} THEN -cost_minor ELSE 0 END) ` +
        "AS deferred FROM moved GROUP BY account_id, credit_type, currency)",
    );
  };
}

interface Answer {
  what: "type" | "currency" | "accounts";
  name: string | null;
  value: number | null;
}

/**
 * One statement, one pass over the rows: outstanding by type (Σ amount, any
 * category: amounts are signed), deferred per currency (+ issued cost, −
 * every other category's; lots without a cost basis have no currency and
 * carry none; currencies with nothing deferred are left out), and the
 * accounts whose credits of the unit do not sum to 0.
 */
export async function liabilityReport(db: D1Reader, q: LiabilityQuery): Promise<LiabilityReport> {
  const scope = { ...q.scope, unit: q.unit };
  const day = await dayColumn(db, scope, null, utcDay(q.asOfMs));
  const stmt = open(scope, perAccount(q.asOfMs, scope, day)).add(
    "SELECT 'type' AS what, credit_type AS name, SUM(amount) AS value FROM per GROUP BY credit_type " +
      "UNION ALL SELECT 'currency', currency, SUM(deferred) FROM per WHERE currency <> '' GROUP BY currency " +
      "HAVING SUM(deferred) <> 0 " +
      "UNION ALL SELECT 'accounts', NULL, COUNT(*) FROM " +
      "(SELECT account_id FROM per GROUP BY account_id HAVING SUM(amount) <> 0) LIMIT ?",
    // Three credit types and the count, then the currencies.
    MAX_REPORT_ROWS + CREDIT_TYPES.length + 2,
  );
  const rows = (await stmt.statement(db).all<Answer>()).results;
  const outstanding = Object.fromEntries(CREDIT_TYPES.map((type) => [type, 0])) as Record<CreditType, number>;
  const deferred: { currency: string; amount: number }[] = [];
  let accounts = 0;
  for (const r of rows) {
    const name = r.name ?? "";
    if (r.what === "accounts") accounts = exact(r.value, "accounts");
    else if (r.what === "currency") deferred.push({ currency: name, amount: exact(r.value, `deferred ${name}`) });
    // A type this version does not know is not served (its credits are in no member).
    else if ((CREDIT_TYPES as readonly string[]).includes(name)) {
      outstanding[name as CreditType] = exact(r.value, `outstanding ${name}`);
    }
  }
  deferred.sort((x, y) => (x.currency < y.currency ? -1 : 1));
  return {
    as_of: new Date(q.asOfMs).toISOString(),
    unit: q.unit,
    outstanding,
    deferred: bounded(deferred, "deferred currencies"),
    accounts,
  };
}
