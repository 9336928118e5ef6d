/**
 * Each report as a table: a header and rows of the report's members, for the
 * CSV form. One row per period (revenue), per period and group (credits), or
 * one row (liability). Lists keyed by a name (tax by jurisdiction, deferred
 * by currency) become one column per name, `tax_DE`, `deferred_USD`, over
 * every name the report holds (0 where a period has none), so a spreadsheet
 * sums a column without parsing a cell.
 */
import { CREDIT_TYPES } from "../ledger";
import type { CreditsReport } from "./credits";
import type { LiabilityReport } from "./liability";
import type { RevenueReport } from "./revenue";

export type Cell = string | number | null;
export interface Table {
  header: string[];
  rows: Cell[][];
}

const REVENUE_MEMBERS = [
  "start",
  "end",
  "deferred_opening",
  "purchased",
  "recognized",
  "breakage",
  "refunded",
  "transferred",
  "deferred_closing",
  "contra_units",
  "compensatory_units",
] as const;

export function revenueTable(r: RevenueReport): Table {
  const jurisdictions = [...new Set(r.periods.flatMap((p) => p.tax.map((t) => t.jurisdiction)))].sort();
  return {
    header: ["currency", ...REVENUE_MEMBERS, ...jurisdictions.map((j) => `tax_${j}`)],
    rows: r.periods.map((p) => {
      const tax = new Map(p.tax.map((t) => [t.jurisdiction, t.amount]));
      return [r.currency, ...REVENUE_MEMBERS.map((m) => p[m]), ...jurisdictions.map((j) => tax.get(j) ?? 0)];
    }),
  };
}

const GROUP_MEMBERS = [
  "key",
  "issued",
  "consumed",
  "expired",
  "voided",
  "refunded",
  "transferred",
  "breakage_bps",
  "accounts",
  "avg_seconds_to_consume",
] as const;

export function creditsTable(r: CreditsReport): Table {
  return {
    header: ["unit", "group_by", "start", "end", ...GROUP_MEMBERS],
    rows: r.periods.flatMap((p) =>
      p.groups.map((g) => [r.unit, r.group_by, p.start, p.end, ...GROUP_MEMBERS.map((m) => g[m])]),
    ),
  };
}

export function liabilityTable(r: LiabilityReport): Table {
  return {
    header: [
      "as_of",
      "unit",
      ...CREDIT_TYPES.map((t) => `outstanding_${t}`),
      ...r.deferred.map((d) => `deferred_${d.currency}`),
      "accounts",
    ],
    rows: [
      [r.as_of, r.unit, ...CREDIT_TYPES.map((t) => r.outstanding[t]), ...r.deferred.map((d) => d.amount), r.accounts],
    ],
  };
}
