/**
 * The credits report: per period and group (credit type, source or
 * campaign), the credits issued and what became of them, breakage in basis
 * points and the average time to consumption. From the daily rollups only.
 */
import type { D1Reader } from "../db/replica";
import { avgSecondsToConsume, breakageBps, exact } from "./figures";
import type { Period, Span } from "./periods";
import { bucketOf, dayColumn, filtered, groupedRows, KNOWN_CATEGORIES, open, type ReportScope } from "./scope";

export const GROUP_BY = ["type", "source", "campaign"] as const;
export type GroupBy = (typeof GROUP_BY)[number];

/** The rollup column each grouping reads ('' in it: the lot had no source or campaign). */
const KEY_COLUMN: Record<GroupBy, string> = { type: "credit_type", source: "source", campaign: "campaign" };

export interface CreditGroup {
  /** The credit type, source or campaign; null for lots without a source or campaign. */
  key: string | null;
  issued: number;
  consumed: number;
  expired: number;
  voided: number;
  refunded: number;
  transferred: number;
  breakage_bps: number;
  accounts: number;
  avg_seconds_to_consume: number | null;
}

export interface CreditsPeriod {
  start: string;
  end: string;
  groups: CreditGroup[];
}

export interface CreditsReport {
  unit: string;
  group_by: GroupBy;
  periods: CreditsPeriod[];
}

interface GroupRow {
  start_ms: number;
  group_key: string;
  issued: number | null;
  consumed: number | null;
  expired: number | null;
  voided: number | null;
  refunded: number | null;
  transferred: number | null;
  age: number | null;
  accounts: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A group's figures from its summed row: outflows are served positive (−Σ amount). */
export function creditGroup(r: GroupRow): CreditGroup {
  const issued = exact(r.issued, "issued");
  const consumed = exact(-(r.consumed ?? 0), "consumed");
  const expired = exact(-(r.expired ?? 0), "expired");
  return {
    key: r.group_key === "" ? null : r.group_key,
    issued,
    consumed,
    expired,
    voided: exact(-(r.voided ?? 0), "voided"),
    refunded: exact(-(r.refunded ?? 0), "refunded"),
    transferred: exact(-(r.transferred ?? 0), "transferred"),
    breakage_bps: breakageBps(expired, issued),
    accounts: r.accounts,
    avg_seconds_to_consume: avgSecondsToConsume(r.age ?? 0, consumed),
  };
}

export interface CreditsQuery {
  unit: string;
  groupBy: GroupBy;
  period: Period;
  spans: readonly Span[];
  scope: ReportScope;
}

const sumOf = (category: string) => `SUM(CASE WHEN category = '${category}' THEN amount ELSE 0 END) AS ${category}`;

/**
 * One statement (after the plan probe, dayColumn): a row per period and key with every category summed and the
 * accounts counted (COUNT DISTINCT over the period's rollup rows). At most
 * MAX_REPORT_ROWS rows, else the report is refused.
 */
export async function creditsReport(db: D1Reader, q: CreditsQuery): Promise<CreditsReport> {
  const first = q.spans[0];
  const last = q.spans[q.spans.length - 1];
  const out: CreditsReport = { unit: q.unit, group_by: q.groupBy, periods: [] };
  if (!first || !last) return out;
  const day = await dayColumn(db, q.scope, first.startMs, last.endMs);
  const stmt = open(q.scope).add(
    `SELECT ${bucketOf(q.period)} AS start_ms, ${KEY_COLUMN[q.groupBy]} AS group_key, ${sumOf("issued")}, ` +
      `${sumOf("consumed")}, ${sumOf("expired")}, ${sumOf("voided")}, ${sumOf("refunded")}, ${sumOf("transferred")}, ` +
      "TOTAL(CASE WHEN category = 'consumed' THEN age_weight_ms ELSE 0 END) AS age, " +
      "COUNT(DISTINCT account_id) AS accounts " +
      `FROM journal_daily WHERE ${day} >= ? AND ${day} < ? AND ${KNOWN_CATEGORIES}`,
    first.startMs,
    last.endMs,
  );
  filtered(stmt, q.scope);
  const rows = await groupedRows<GroupRow>(
    db,
    stmt,
    " GROUP BY start_ms, group_key ORDER BY start_ms, group_key",
    "groups by period",
  );
  const byStart = new Map<number, CreditGroup[]>();
  for (const r of rows) {
    const list = byStart.get(r.start_ms) ?? [];
    list.push(creditGroup(r));
    byStart.set(r.start_ms, list);
  }
  out.periods = q.spans.map(({ startMs, endMs }) => ({
    start: iso(startMs),
    end: iso(endMs),
    groups: byStart.get(startMs) ?? [],
  }));
  return out;
}
