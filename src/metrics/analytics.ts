/**
 * Workers Analytics Engine data points: one per counted event (a group of a
 * commit's entries with the same kind and unit, a denial, a gateway error),
 * written when the METRICS binding is present. AE is the per-minute view for
 * dashboards (`SELECT ... GROUP BY toStartOfMinute(timestamp)`); D1's
 * counters (src/metrics/store.ts) are the exact ones. Writing a point never
 * blocks or fails the request: writeDataPoint is fire-and-forget, and a throw
 * from it is logged once per isolate and otherwise ignored.
 *
 * Layout of every point: blob1 = metric name, blob2 and blob3 = its label
 * values (see docs/runbook.md, "Analytics Engine"), blob4 = account id ("" for
 * gateway points), double1 = the value, index1 = the account id (or the
 * metric name for gateway points), cut to AE_INDEX_MAX_BYTES.
 */
import { log } from "../log";

/** Analytics Engine refuses an index longer than 96 bytes. */
export const AE_INDEX_MAX_BYTES = 96;

export interface DataPoint {
  blobs: string[];
  doubles: number[];
  indexes: string[];
}

/** Ids are ASCII ([A-Za-z0-9._:-]), so characters are bytes; anything longer keeps its first 96. */
const indexOf = (key: string): string => (key.length <= AE_INDEX_MAX_BYTES ? key : key.slice(0, AE_INDEX_MAX_BYTES));

/**
 * The point for one counted event.
 * @example point("creditgate_entries_total", ["debit", "credits"], 3, "acct-1")
 *   // { blobs: ["creditgate_entries_total", "debit", "credits", "acct-1"], doubles: [3], indexes: ["acct-1"] }
 */
export function point(
  name: string,
  labelValues: readonly string[],
  value: number,
  accountId: string | null,
): DataPoint {
  return {
    blobs: [name, labelValues[0] ?? "", labelValues[1] ?? "", accountId ?? ""],
    doubles: [value],
    indexes: [indexOf(accountId ?? name)],
  };
}

let warned = false;

/** Writes the points when the binding is there; never throws. */
export function writePoints(dataset: AnalyticsEngineDataset | undefined, points: readonly DataPoint[]): void {
  if (dataset === undefined || points.length === 0) return;
  try {
    for (const p of points) dataset.writeDataPoint(p);
  } catch (e) {
    if (!warned) {
      warned = true;
      log({ event: "metrics.ae_error", error: e instanceof Error ? e.message : String(e) });
    }
  }
}

/**
 * The gateway's point for a request it answered with an error (any code, the
 * ones refused before a Durable Object was asked included: 400, 401, 403,
 * 413, …). Analytics Engine only: counting those in D1 would let a flood of
 * bad requests write to D1. blob2 = code, blob3 = HTTP status.
 */
export function recordHttpError(
  dataset: AnalyticsEngineDataset | undefined,
  code: string | null,
  status: number,
): void {
  writePoints(dataset, [point("creditgate_http_errors", [code ?? "", String(status)], 1, null)]);
}
