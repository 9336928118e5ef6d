/** GET /v1/metrics: the counters and gauges of docs/runbook.md in Prometheus text exposition 0.0.4. */
import { z } from "@hono/zod-openapi";
import { readGauges } from "../metrics/gauges";
import { exposition, type Sample } from "../metrics/names";
import { readTotals } from "../metrics/store";
import { requireRole, validQuery } from "./context";
import { resource, route } from "./route";
import { problems } from "./schemas";
import { requireUnscoped } from "./scope";

/** The exposition format's content type (Prometheus text format 0.0.4). */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4";

const MetricsQuery = z.strictObject({});

export const metrics = resource();

route(
  metrics,
  {
    method: "get",
    path: "/v1/metrics",
    summary: "Operational metrics in Prometheus text exposition format (admin, viewer)",
    description:
      "Counters (exact, from D1's metric_totals: creditgate_entries_total{kind,unit}, creditgate_denials_total{code}, …) " +
      "and gauges read at scrape time (creditgate_outbox_lag_entries, creditgate_reconciliation_drift_accounts, …). " +
      "docs/runbook.md says what each one means and what to do when it moves.",
    request: { query: MetricsQuery },
    responses: {
      200: { description: "Prometheus text exposition", content: { [METRICS_CONTENT_TYPE]: { schema: z.string() } } },
      ...problems(400, 401, 403),
    },
  },
  async (c) => {
    requireRole(c, ["admin", "viewer"]);
    requireUnscoped(c);
    validQuery(c, MetricsQuery);
    const [totals, gauges] = await Promise.all([readTotals(c.env.DB), readGauges(c.env)]);
    const counters: Sample[] = totals.rows;
    const scrape: Sample[] = [
      { name: "creditgate_metrics_series", labels: "", value: totals.rows.length },
      { name: "creditgate_metrics_truncated", labels: "", value: totals.truncated ? 1 : 0 },
    ];
    return c.body(exposition(counters, [...gauges, ...scrape]), 200, { "content-type": METRICS_CONTENT_TYPE });
  },
);
