/**
 * The revenue report: per period, deferred revenue in one currency opening,
 * what moved it, and closing; tax collected apart by jurisdiction; promotional
 * and compensatory consumption in credits. From the daily rollups only.
 */
import type { D1Reader } from "../db/replica";
import type { JournalCategory } from "../ledger";
import { exact } from "./figures";
import type { Period, Span } from "./periods";
import { bucketOf, dayColumn, filtered, groupedRows, KNOWN_CATEGORIES, open, type ReportScope } from "./scope";

export interface TaxLine {
  jurisdiction: string;
  amount: number;
}

export interface RevenuePeriod {
  start: string;
  end: string;
  deferred_opening: number;
  purchased: number;
  recognized: number;
  breakage: number;
  refunded: number;
  transferred: number;
  deferred_closing: number;
  contra_units: number;
  compensatory_units: number;
  tax: TaxLine[];
}

export interface RevenueReport {
  currency: string;
  periods: RevenuePeriod[];
}

/** A row of the one statement: a period (null: before the first) × category × tax jurisdiction. */
interface FlowRow {
  start_ms: number | null;
  category: JournalCategory;
  /** '' but for purchases of the currency. */
  jurisdiction: string;
  cost: number | null;
  tax: number | null;
  promotional: number | null;
  compensatory: number | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Chains the periods: each one's opening is the one before's closing, and
 * closing = opening + purchased − recognized − breakage − refunded −
 * transferred, so the identity holds by construction and every figure is an
 * exact integer (or the whole report is refused).
 */
export function revenuePeriods(spans: readonly Span[], flows: readonly FlowRow[]): RevenuePeriod[] {
  const cost = new Map<string, number>();
  const units = new Map<number, { promotional: number; compensatory: number }>();
  const taxBy = new Map<number, TaxLine[]>();
  let opening = 0;
  const add = (key: string, n: number, what: string) => cost.set(key, exact((cost.get(key) ?? 0) + n, what));
  for (const f of flows) {
    const c = exact(f.cost, `${f.category} cost`);
    if (f.start_ms === null) {
      // Before the window: only the deferred balance it leaves matters.
      opening = exact(opening + (f.category === "issued" ? c : -c), "deferred_opening");
      continue;
    }
    add(`${f.start_ms}:${f.category}`, c, `${f.category} cost`);
    const u = units.get(f.start_ms) ?? { promotional: 0, compensatory: 0 };
    u.promotional = exact(u.promotional - exact(f.promotional, "contra_units"), "contra_units");
    u.compensatory = exact(u.compensatory - exact(f.compensatory, "compensatory_units"), "compensatory_units");
    units.set(f.start_ms, u);
    const tax = exact(f.tax, "tax");
    if (tax !== 0) {
      const list = taxBy.get(f.start_ms) ?? [];
      list.push({ jurisdiction: f.jurisdiction, amount: tax });
      taxBy.set(f.start_ms, list);
    }
  }
  for (const list of taxBy.values()) list.sort((x, y) => (x.jurisdiction < y.jurisdiction ? -1 : 1));
  let running = exact(opening, "deferred_opening");
  return spans.map(({ startMs, endMs }) => {
    const of = (c: JournalCategory) => cost.get(`${startMs}:${c}`) ?? 0;
    const purchased = of("issued");
    const recognized = of("consumed");
    const breakage = exact(of("expired") + of("voided"), "breakage");
    const refunded = of("refunded");
    const transferred = of("transferred");
    const deferred_opening = running;
    running = exact(deferred_opening + purchased - recognized - breakage - refunded - transferred, "deferred_closing");
    const u = units.get(startMs) ?? { promotional: 0, compensatory: 0 };
    return {
      start: iso(startMs),
      end: iso(endMs),
      deferred_opening,
      purchased,
      recognized,
      breakage,
      refunded,
      transferred,
      deferred_closing: running,
      contra_units: u.promotional,
      compensatory_units: u.compensatory,
      tax: taxBy.get(startMs) ?? [],
    };
  });
}

export interface RevenueQuery {
  currency: string;
  period: Period;
  spans: readonly Span[];
  scope: ReportScope;
}

/**
 * One statement, one pass over the rollups before `to`: the rows before the
 * window leave the opening balance (it has to read them all anyway, so the
 * window's rows come at no extra pass), the window's rows are grouped by
 * period, category and, for purchases, tax jurisdiction. Promotional and
 * compensatory lots have no cost basis (currency ''), so their credits are
 * counted whatever the currency: every currency's report shows the same
 * `*_units` for the same filters. Tax is summed from purchases only.
 */
export async function revenueReport(db: D1Reader, q: RevenueQuery): Promise<RevenueReport> {
  const first = q.spans[0];
  const last = q.spans[q.spans.length - 1];
  if (!first || !last) return { currency: q.currency, periods: [] };
  const fromMs = first.startMs;
  const day = await dayColumn(db, q.scope, null, last.endMs);
  const stmt = open(q.scope).add(
    `SELECT CASE WHEN day_ms < ? THEN NULL ELSE ${bucketOf(q.period)} END AS start_ms, category, ` +
      "CASE WHEN category = 'issued' AND currency = ? THEN tax_jurisdiction ELSE '' END AS jurisdiction, " +
      "SUM(CASE WHEN currency = ? THEN cost_minor ELSE 0 END) AS cost, " +
      "SUM(CASE WHEN category = 'issued' AND currency = ? THEN tax_minor ELSE 0 END) AS tax, " +
      "SUM(CASE WHEN category = 'consumed' AND credit_type = 'promotional' THEN amount ELSE 0 END) AS promotional, " +
      "SUM(CASE WHEN category = 'consumed' AND credit_type = 'compensatory' THEN amount ELSE 0 END) AS compensatory " +
      `FROM journal_daily WHERE ${day} < ? ` +
      `AND (currency = ? OR credit_type IN ('promotional', 'compensatory')) AND ${KNOWN_CATEGORIES}`,
    fromMs,
    q.currency,
    q.currency,
    q.currency,
    last.endMs,
    q.currency,
  );
  filtered(stmt, q.scope);
  const rows = await groupedRows<FlowRow>(
    db,
    stmt,
    " GROUP BY start_ms, category, jurisdiction",
    "rows by period, category and tax jurisdiction",
  );
  return { currency: q.currency, periods: revenuePeriods(q.spans, rows) };
}
