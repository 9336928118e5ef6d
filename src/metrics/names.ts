/**
 * The metrics Credit Gate keeps (docs/runbook.md names each one and what to do
 * when it moves), how a series' labels are written, and the Prometheus text
 * exposition format (version 0.0.4) they are served in. Pure: no I/O.
 */

/** Counters kept exactly in D1 (metric_totals); each has a per-minute series (metric_minutes). */
export const COUNTERS = {
  creditgate_entries_total: "Ledger entries written by the account Durable Objects, by entry kind and unit.",
  creditgate_entry_amount_total:
    "Sum of |amount| over the entries written, by entry kind and unit (hold entries move held_delta only and add 0).",
  creditgate_denials_total:
    "Debits, holds, receipts and usage events an account refused, by error code (insufficient_credits, velocity_limit, ...).",
  creditgate_webhook_attempt_failures_total: "Webhook delivery attempts that got no 2xx answer in time.",
  creditgate_webhook_deliveries_failed_total: "Webhook deliveries given up after MAX_ATTEMPTS failed attempts.",
  creditgate_cron_job_failures_total: "Cron job runs that threw, by job.",
} as const;
export type CounterName = keyof typeof COUNTERS;

/** Gauges computed from D1 when /v1/metrics is scraped (src/metrics/gauges.ts). */
export const GAUGES = {
  creditgate_outbox_lag_entries:
    "Entries the Durable Objects last reported writing that D1 does not hold yet: sum of account_heads.known_seq - shipped_seq.",
  creditgate_outbox_lagging_accounts: "Accounts whose account_heads row has known_seq > shipped_seq.",
  creditgate_reconciliation_drift_accounts: "Accounts with at least one drift in the latest reconciliation run.",
  creditgate_reconciliation_lagging_accounts:
    "Accounts the latest reconciliation run could not check: outbox still lagging.",
  creditgate_reconciliation_failed_accounts: "Accounts the latest reconciliation run failed to check (an error).",
  creditgate_reconciliation_last_run_timestamp_seconds: "When the latest reconciliation run finished (Unix seconds).",
  creditgate_alerts_undispatched: "Alerts in D1 not yet fanned out to webhooks (capped at GAUGE_SCAN_MAX).",
  creditgate_cron_last_run_timestamp_seconds: "When each cron job last ran (Unix seconds), by job.",
  creditgate_cron_last_success_timestamp_seconds:
    "When each cron job last finished without throwing (Unix seconds), by job.",
  creditgate_metrics_series: "Counter series served in this scrape.",
  creditgate_metrics_truncated:
    "1 when metric_totals holds more than METRICS_SERIES_MAX series and some were left out.",
} as const;
export type GaugeName = keyof typeof GAUGES;

/** One sample: a metric name, its label pairs, a value. */
export interface Sample {
  name: string;
  labels: string;
  value: number;
}

/** Escapes a label value as the exposition format requires: backslash, double quote, newline. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/**
 * A series' labels in canonical form, the key stored in D1: keys sorted,
 * values escaped, exactly as they appear between the braces of a sample line.
 * @example labelsOf({ unit: "credits", kind: "debit" }) // 'kind="debit",unit="credits"'
 */
export function labelsOf(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k] ?? "")}"`)
    .join(",");
}

const HELP: Record<string, string> = { ...COUNTERS, ...GAUGES };

/** A HELP text's escaping: backslash and newline only. */
const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

const formatValue = (v: number): string => (Number.isFinite(v) ? String(v) : v > 0 ? "+Inf" : v < 0 ? "-Inf" : "NaN");

/**
 * The text exposition: one HELP and one TYPE line per metric family (every
 * known family, even with no samples yet), then its samples. Families appear
 * in COUNTERS then GAUGES order; samples keep the order given.
 */
export function exposition(counters: readonly Sample[], gauges: readonly Sample[]): string {
  const lines: string[] = [];
  const family = (name: string, type: "counter" | "gauge", samples: readonly Sample[]) => {
    lines.push(`# HELP ${name} ${escapeHelp(HELP[name] ?? name)}`, `# TYPE ${name} ${type}`);
    for (const s of samples) {
      if (s.name === name) lines.push(`${name}${s.labels ? `{${s.labels}}` : ""} ${formatValue(s.value)}`);
    }
  };
  for (const name of Object.keys(COUNTERS)) family(name, "counter", counters);
  for (const name of Object.keys(GAUGES)) family(name, "gauge", gauges);
  return `${lines.join("\n")}\n`;
}

export const MINUTE_MS = 60_000;
/** The start of the UTC minute `ms` falls in. */
export const minuteOf = (ms: number): number => Math.floor(ms / MINUTE_MS) * MINUTE_MS;
