/**
 * The daily rollups of journal rows, as the outbox maintains them in D1's
 * journal_daily (src/account/outbox-rows.ts): one row per UTC day of
 * recorded_at and key, '' for no source, campaign, currency or jurisdiction,
 * the amounts, costs, tax and age weights summed, and the rows counted.
 * Shared by the report suites and scripts/measure-reports.mjs, which write
 * rollups straight into D1. Pure: no Cloudflare imports.
 */
import type { JournalRow } from "../../src/ledger";

const DAY_MS = 86_400_000;

/** Each rollup as an array in journal_daily's column order (day_ms … tax_jurisdiction, then the sums and rows). */
export function rollupsOf(rows: readonly JournalRow[]): (string | number)[][] {
  const daily = new Map<string, { key: (string | number)[]; sums: [number, number, number, number, number] }>();
  for (const r of rows) {
    const key = [
      Math.floor(r.recorded_at_ms / DAY_MS) * DAY_MS,
      r.account_id,
      r.unit,
      r.category,
      r.credit_type,
      r.source ?? "",
      r.campaign ?? "",
      r.currency ?? "",
      r.tax_jurisdiction ?? "",
    ];
    const id = JSON.stringify(key);
    const d = daily.get(id) ?? { key, sums: [0, 0, 0, 0, 0] };
    d.sums[0] += r.amount;
    d.sums[1] += r.cost_minor;
    d.sums[2] += r.tax_minor;
    d.sums[3] += r.age_weight_ms;
    d.sums[4] += 1;
    daily.set(id, d);
  }
  return [...daily.values()].map((d) => [...d.key, ...d.sums]);
}
