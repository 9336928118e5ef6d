/**
 * The rest of /v1/metrics: gauges read from D1 (outbox lag, reconciliation
 * drift, cron health), the webhook failure counters, denials of usage events,
 * Analytics Engine points, and the bounds (pruning, stale rows refused).
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { METRIC_DO_SCHEMA } from "../../src/metrics/counter";
import { labelsOf } from "../../src/metrics/names";
import {
  METRIC_ACCEPT_MS,
  METRIC_DELTA_RETENTION_MS,
  METRIC_MINUTES_RETENTION_MS,
  pruneMetrics,
  shipStatements,
  webhookAttemptStatements,
} from "../../src/metrics/store";
import { advanceClock, call, debit, grant, ledgerStubFor, runAlarm, uid } from "./helpers";
import { runCron } from "./jobs-helpers";
import { parseExposition, sampleOf } from "./metrics-helpers";

const MINUTE = 60_000;

async function scrape() {
  const res = await call("GET", "/v1/metrics");
  expect(res.status).toBe(200);
  return parseExposition(res.text);
}

describe("gauges", () => {
  it("outbox lag sums known_seq - shipped_seq over lagging heads", async () => {
    const before = await scrape();
    const lag = sampleOf(before, "creditgate_outbox_lag_entries");
    const lagging = sampleOf(before, "creditgate_outbox_lagging_accounts");
    const nowMs = Date.now();
    const head = `INSERT INTO account_heads (account_id, shipped_seq, head_hash, updated_at_ms, known_seq, next_hold_deadline_ms)
      VALUES (?, ?, 'h', ?, ?, NULL)`;
    await env.DB.batch([
      env.DB.prepare(head).bind(uid(), 3, nowMs, 7), // 4 behind
      env.DB.prepare(head).bind(uid(), 10, nowMs, 12), // 2 behind
      env.DB.prepare(head).bind(uid(), 5, nowMs, 5), // shipped
    ]);
    const after = await scrape();
    expect(sampleOf(after, "creditgate_outbox_lag_entries")).toBe(lag + 6);
    expect(sampleOf(after, "creditgate_outbox_lagging_accounts")).toBe(lagging + 2);
  });

  it("reconciliation drift counts the distinct accounts of the latest run", async () => {
    const runId = uid("run");
    const startedMs = Date.now() + 86_400_000; // later than any real run of this file
    await env.DB.batch([
      env.DB.prepare(
        `INSERT INTO reconciliation_runs (id, started_at_ms, finished_at_ms, accounts_checked, accounts_lagging,
          accounts_failed, drifts, entries_verified, duration_ms) VALUES (?, ?, ?, 5, 2, 1, 3, 10, 7)`,
      ).bind(runId, startedMs, startedMs + 7),
      ...["x", "x", "y"].map((acct) =>
        env.DB.prepare(
          `INSERT INTO reconciliation_drifts (run_id, account_id, kind, unit, credit_type, expected, actual, detail, detected_at_ms)
           VALUES (?, ?, 'balance', 'credits', NULL, '1', '2', 'planted', ?)`,
        ).bind(runId, `${runId}-${acct}`, startedMs),
      ),
    ]);
    const p = await scrape();
    expect(sampleOf(p, "creditgate_reconciliation_drift_accounts")).toBe(2);
    expect(sampleOf(p, "creditgate_reconciliation_lagging_accounts")).toBe(2);
    expect(sampleOf(p, "creditgate_reconciliation_failed_accounts")).toBe(1);
    expect(sampleOf(p, "creditgate_reconciliation_last_run_timestamp_seconds")).toBe(
      Math.floor((startedMs + 7) / 1000),
    );
  });

  it("every cron job's last run and last success are gauges after a cron run", async () => {
    const before = Math.floor(Date.now() / 1000);
    await runCron(Date.now());
    const p = await scrape();
    for (const job of ["expirations", "reconcile", "dispatch", "metrics"]) {
      expect(sampleOf(p, "creditgate_cron_last_run_timestamp_seconds", { job })).toBeGreaterThanOrEqual(before);
      expect(sampleOf(p, "creditgate_cron_last_success_timestamp_seconds", { job })).toBeGreaterThanOrEqual(before);
    }
  });
});

describe("counters outside the account objects", () => {
  it("webhook attempts: a retry and a final failure count as failed attempts, the final one as a failed delivery", async () => {
    const before = await scrape();
    const nowMs = Date.now();
    await env.DB.batch([
      ...webhookAttemptStatements(env.DB, "retrying", nowMs),
      ...webhookAttemptStatements(env.DB, "failed", nowMs),
      ...webhookAttemptStatements(env.DB, "delivered", nowMs),
    ]);
    const after = await scrape();
    const moved = (name: string) => sampleOf(after, name) - sampleOf(before, name);
    expect(moved("creditgate_webhook_attempt_failures_total")).toBe(2);
    expect(moved("creditgate_webhook_deliveries_failed_total")).toBe(1);
  });

  it("usage events refused for clock skew count as denials by code", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const before = sampleOf(await scrape(), "creditgate_denials_total", { code: "clock_skew" });
    const ahead = new Date(Date.now() + 3_600_000).toISOString();
    const res = await call("POST", "/v1/usage", {
      events: [
        { event_id: uid("ev"), account_id: a, amount: 1, occurred_at: ahead },
        { event_id: uid("ev"), account_id: a, amount: 1, occurred_at: ahead },
        { event_id: uid("ev"), account_id: a, amount: 1 },
      ],
    });
    expect(res.status).toBeLessThan(300);
    await advanceClock(a, MINUTE + 1000);
    await runAlarm(a);
    expect(sampleOf(await scrape(), "creditgate_denials_total", { code: "clock_skew" })).toBe(before + 2);
  });
});

describe("Analytics Engine", () => {
  it("writes one point per (kind, unit) of a commit and one per denial when the binding is there", async () => {
    const a = uid();
    await grant(a, { amount: 5 });
    const points: AnalyticsEngineDataPoint[] = [];
    const fake: AnalyticsEngineDataset = { writeDataPoint: (p) => void points.push(p ?? {}) };
    await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
      inst.metrics.dataset = fake;
    });
    expect((await debit(a, 2)).status).toBe(200);
    expect((await debit(a, 100)).status).toBe(402);
    expect(points).toEqual([
      { blobs: ["creditgate_entries_total", "debit", "credits", a], doubles: [1], indexes: [a] },
      { blobs: ["creditgate_entry_amount_total", "debit", "credits", a], doubles: [2], indexes: [a] },
      { blobs: ["creditgate_denials_total", "insufficient_credits", "", a], doubles: [1], indexes: [a] },
    ]);
  });

  it("a dataset that throws never fails the write, and no binding means no points", async () => {
    const a = uid();
    await grant(a, { amount: 5 });
    await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
      inst.metrics.dataset = {
        writeDataPoint: () => {
          throw new Error("AE down");
        },
      };
    });
    expect((await debit(a, 1)).status).toBe(200);
    await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
      inst.metrics.dataset = undefined;
    });
    expect((await debit(a, 1)).status).toBe(200);
  });
});

describe("bounds", () => {
  it("prunes delta rows past METRIC_DELTA_RETENTION_MS and series minutes past METRIC_MINUTES_RETENTION_MS", async () => {
    const nowMs = Date.now();
    const acct = uid();
    const old = Math.floor((nowMs - METRIC_DELTA_RETENTION_MS - MINUTE) / MINUTE) * MINUTE;
    const recent = Math.floor((nowMs - MINUTE) / MINUTE) * MINUTE;
    const oldMinute = Math.floor((nowMs - METRIC_MINUTES_RETENTION_MS - MINUTE) / MINUTE) * MINUTE;
    const delta =
      "INSERT INTO metric_deltas (account_id, minute_ms, name, labels, value, recorded_at_ms) VALUES (?, ?, 'x', '', 1, ?)";
    const minute = "INSERT INTO metric_minutes (minute_ms, name, labels, value) VALUES (?, ?, '', 1)";
    const name = uid("series");
    await env.DB.batch([
      env.DB.prepare(delta).bind(acct, old, nowMs),
      env.DB.prepare(delta).bind(acct, recent, nowMs),
      env.DB.prepare(minute).bind(oldMinute, name),
      env.DB.prepare(minute).bind(recent, name),
    ]);
    const pruned = await pruneMetrics(env.DB, nowMs);
    expect(pruned.deltas).toBeGreaterThanOrEqual(1);
    expect(pruned.minutes).toBeGreaterThanOrEqual(1);
    const deltas = await env.DB.prepare("SELECT minute_ms FROM metric_deltas WHERE account_id = ?").bind(acct).all();
    expect(deltas.results.map((r) => r.minute_ms)).toEqual([recent]);
    const minutes = await env.DB.prepare("SELECT minute_ms FROM metric_minutes WHERE name = ?").bind(name).all();
    expect(minutes.results.map((r) => r.minute_ms)).toEqual([recent]);
  });

  it("a row older than METRIC_ACCEPT_MS is refused on arrival, so a pruned delta can never count again", async () => {
    const nowMs = Date.now();
    const acct = uid();
    const name = "creditgate_entries_total";
    const labels = labelsOf({ kind: "grant", unit: `m${Math.random().toString(36).slice(2, 9)}` });
    const stale = Math.floor((nowMs - METRIC_ACCEPT_MS - MINUTE) / MINUTE) * MINUTE;
    const fresh = Math.floor((nowMs - MINUTE) / MINUTE) * MINUTE;
    await env.DB.batch(
      shipStatements(
        env.DB,
        [
          [acct, stale, name, labels, 5],
          [acct, fresh, name, labels, 2],
        ],
        nowMs,
      ),
    );
    const total = await env.DB.prepare("SELECT value FROM metric_totals WHERE name = ? AND labels = ?")
      .bind(name, labels)
      .first<{ value: number }>();
    expect(total?.value).toBe(2);
  });

  it("the Durable Object's tables are the ones the schema declares", async () => {
    const a = uid();
    await grant(a, { amount: 1 });
    await runInDurableObject(ledgerStubFor(a), (_inst: AccountLedger, state) => {
      const tables = state.storage.sql
        .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'metric_%' ORDER BY name")
        .toArray()
        .map((r) => r.name);
      expect(tables).toEqual(["metric_counts", "metric_state"]);
      expect(METRIC_DO_SCHEMA.length).toBe(2);
    });
  });
});
