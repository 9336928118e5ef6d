/**
 * Alerts end to end in workerd: balance.low once per crossing (re-armed above
 * the threshold), credits.expiring per window, usage.spike on a history built
 * by moving the DO clock, all listed at GET /v1/alerts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { runExpiring } from "../../src/cron/expiring";
import { advanceClock, call, debit, expectProblem, grant, uid } from "./helpers";
import { alertsFor, DAY, doNow, drain, HOUR, MINUTE, runCron, setDoClock } from "./jobs-helpers";

async function setCronState(key: string, value: unknown) {
  await env.DB.prepare(
    `INSERT INTO cron_state (key, value, updated_at_ms) VALUES (?, ?, 0)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  )
    .bind(key, JSON.stringify(value))
    .run();
}

describe("balance.low", () => {
  it("fires once per crossing below the threshold and re-arms when the balance goes back above", async () => {
    const a = uid();
    await grant(a, { amount: 150 });
    expect((await call("PUT", `/v1/accounts/${a}`, { low_balance: { credits: 100 } })).status).toBe(200);
    expect((await debit(a, 60)).status).toBe(200); // 90: crosses below
    expect((await debit(a, 10)).status).toBe(200); // 80: still below, no second alert
    await grant(a, { amount: 50 }); // 130: re-armed
    expect((await debit(a, 40)).status).toBe(200); // 90: crosses again
    expect((await debit(a, 5)).status).toBe(200); // 85
    await drain(a);
    const low = await alertsFor(a, "balance.low");
    expect(low.map((x) => x.data)).toEqual([
      { unit: "credits", available: 90, threshold: 100 },
      { unit: "credits", available: 90, threshold: 100 },
    ]);
    const listed = await call("GET", `/v1/alerts?account_id=${a}&type=balance.low`);
    expect(listed.status).toBe(200);
    expect(listed.json.alerts).toHaveLength(2);
    expect(listed.json.alerts[0]).toMatchObject({ type: "balance.low", account_id: a, unit: "credits" });
  });

  it("a threshold set above the current balance is a crossing too", async () => {
    const a = uid();
    await grant(a, { amount: 20 });
    await call("PUT", `/v1/accounts/${a}`, { low_balance: { credits: 50 } });
    await call("PUT", `/v1/accounts/${a}`, { name: "still low" });
    await drain(a);
    expect(await alertsFor(a, "balance.low")).toHaveLength(1);
  });
});

describe("credits.expiring", () => {
  it("tells 7 days and 1 day before, once each, with the unheld amount", async () => {
    const a = uid();
    const now = await doNow(a);
    const expiresAt = now + 3 * DAY;
    const g = await grant(a, { amount: 500, expires_at: new Date(expiresAt).toISOString() });
    expect((await debit(a, 120)).status).toBe(200);
    await drain(a);

    await runCron(now + MINUTE);
    await runCron(now + 6 * MINUTE);
    let told = await alertsFor(a, "credits.expiring");
    expect(told.map((x) => x.data)).toEqual([
      {
        grant_id: g.grant.grant_id,
        unit: "credits",
        credit_type: "purchased",
        amount: 380,
        expires_at: new Date(expiresAt).toISOString(),
        days: 7,
      },
    ]);

    await setDoClock(a, expiresAt - 12 * HOUR);
    await runCron(expiresAt - 12 * HOUR);
    await runCron(expiresAt - 11 * HOUR);
    told = await alertsFor(a, "credits.expiring");
    expect(told.map((x) => x.data.days)).toEqual([7, 1]);
  });

  it("tells both windows for a lot whose account and grant ids are the longest allowed (128 characters)", async () => {
    const a = uid().padEnd(128, "x");
    const grantId = uid("g").padEnd(128, "y");
    const now = await doNow(a);
    const expiresAt = now + 3 * DAY;
    await grant(a, { grant_id: grantId, amount: 100, expires_at: new Date(expiresAt).toISOString() });
    await drain(a);
    await runCron(now + MINUTE);
    await setDoClock(a, expiresAt - 12 * HOUR);
    await runCron(expiresAt - 12 * HOUR);
    const told = await alertsFor(a, "credits.expiring");
    expect(told.map((x) => [x.data.grant_id, x.data.days])).toEqual([
      [grantId, 7],
      [grantId, 1],
    ]);
    expect(new Set(told.map((x) => x.id)).size).toBe(2);
    for (const x of told) expect(x.id).toMatch(/^expiring_[0-9a-f]{32}$/);
  });

  it("the told-window marker only ever lowers: a run that read the lot before a 1-day notice landed keeps it", async () => {
    const a = uid();
    const now = await doNow(a);
    await grant(a, { amount: 100, expires_at: new Date(now + 3 * DAY).toISOString() });
    await drain(a);
    // This run finds the lot in its 7-day window; an overlapping run tells the 1-day window (and marks it)
    // between this run's read and its own writes (its first batch).
    let overlapping = true;
    const overlapped = new Proxy(env.DB, {
      get(target, prop, receiver) {
        if (prop === "batch") {
          return async (statements: D1PreparedStatement[]) => {
            if (overlapping) {
              overlapping = false;
              await target.prepare("UPDATE grants SET expiring_notified_days = 1 WHERE account_id = ?").bind(a).run();
            }
            return target.batch(statements);
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    const counts = await runExpiring({ env: { ...env, DB: overlapped }, nowMs: now + MINUTE });
    expect(counts.due).toBeGreaterThanOrEqual(1);
    const marker = await env.DB.prepare("SELECT expiring_notified_days AS d FROM grants WHERE account_id = ?")
      .bind(a)
      .first<number>("d");
    expect(marker).toBe(1);
  });
});

describe("alert settings", () => {
  it("expiring_days may not be empty, and a PUT that leaves it out keeps it", async () => {
    expectProblem(await call("PUT", "/v1/alert-settings", { expiring_days: [] }), 400, "invalid_request");
    const other = await call("PUT", "/v1/alert-settings", { spike_trailing_hours: 24 });
    expect(other.status).toBe(200);
    expect(other.json.expiring_days).toEqual([7, 1]);
    expect((await call("GET", "/v1/alert-settings")).json.expiring_days).toEqual([7, 1]);
  });
});

describe("usage.spike", () => {
  /** 24 hours of 1 credit an hour, then `burst` within the last hour; returns the DO's now. */
  async function history(a: string, burst: number) {
    await grant(a, { amount: 10_000 });
    for (let h = 0; h < 24; h++) {
      await advanceClock(a, HOUR);
      expect((await debit(a, 1)).status).toBe(200);
    }
    await advanceClock(a, 30 * MINUTE);
    expect((await debit(a, burst)).status).toBe(200);
    await drain(a);
    return doNow(a);
  }

  it("flags an hour ≥ 10× the trailing hourly average, once per hour, and leaves a steady account alone", async () => {
    const spiky = uid();
    const steady = uid();
    const now = await history(spiky, 12); // last hour 13 vs 23 over the 23 covered hours before: 13×23 ≥ 10×23
    await history(steady, 3); // last hour 4: 4 × 23 < 10 × 23, no spike
    await runCron(now + MINUTE);
    const spikes = await alertsFor(spiky, "usage.spike");
    expect(spikes).toHaveLength(1);
    // The history starts with the grant 24.5 h ago: 23 whole hours before the last one.
    expect(spikes[0]!.data).toEqual({
      unit: "credits",
      last_hour: 13,
      trailing_total: 23,
      trailing_hours: 24,
      covered_hours: 23,
      factor: 10,
    });
    expect(await alertsFor(steady, "usage.spike")).toEqual([]);
    // More use in the same hour: still one alert.
    expect((await debit(spiky, 5)).status).toBe(200);
    await drain(spiky);
    // In the same clock hour as the first scan (the DO clock may sit a minute before the hour turns).
    const first = now + MINUTE;
    await runCron(Math.min(first + MINUTE, Math.floor(first / HOUR) * HOUR + HOUR - 1));
    expect(await alertsFor(spiky, "usage.spike")).toHaveLength(1);
  });

  it("the factor is configurable", async () => {
    const put = await call("PUT", "/v1/alert-settings", { spike_factor: 2 });
    expect(put.status).toBe(200);
    expect(put.json).toEqual({ expiring_days: [7, 1], spike_factor: 2, spike_trailing_hours: 24 });
    const a = uid();
    const now = await history(a, 3); // 4×23 = 92 ≥ 2×23
    await runCron(now + MINUTE);
    expect(await alertsFor(a, "usage.spike")).toHaveLength(1);
    await call("PUT", "/v1/alert-settings", { spike_factor: 10 });
  });

  it("a new account consuming steadily is not a spike in its first hours", async () => {
    const a = uid();
    await grant(a, { amount: 1000 });
    // One an hour from the grant on; 2.5 h later the last hour holds 2 and the hour before it 1.
    for (const step of [HOUR, HOUR, 30 * MINUTE]) {
      await advanceClock(a, step);
      expect((await debit(a, 1)).status).toBe(200);
    }
    await drain(a);
    await runCron((await doNow(a)) + MINUTE);
    expect(await alertsFor(a, "usage.spike")).toEqual([]);
  });

  it("a scan whose alerts fail to record leaves its watermark, so the next run raises them", async () => {
    const a = uid();
    const now = await history(a, 12);
    // Touched 10 minutes ago, just after the watermark: only the watermark can bring it back, not the overlap.
    const stamped = Date.now() - 10 * MINUTE;
    await env.DB.prepare("UPDATE account_heads SET updated_at_ms = ? WHERE account_id = ?").bind(stamped, a).run();
    await setCronState("spikes.watermark", { ms: stamped - 1, id: "" });
    await env.DB.exec(
      "CREATE TRIGGER test_no_spikes BEFORE INSERT ON alerts WHEN NEW.type = 'usage.spike' BEGIN SELECT RAISE(ABORT, 'injected'); END",
    );
    try {
      await runCron(now + MINUTE);
    } finally {
      await env.DB.exec("DROP TRIGGER test_no_spikes");
    }
    expect(await alertsFor(a, "usage.spike")).toEqual([]);
    await runCron(now + 2 * MINUTE);
    expect(await alertsFor(a, "usage.spike")).toHaveLength(1);
  });
});
