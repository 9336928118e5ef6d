/**
 * Alerts end to end in workerd: balance.low once per crossing (re-armed above
 * the threshold), credits.expiring per window, usage.spike on a history built
 * by moving the DO clock, all listed at GET /v1/alerts.
 */
import { describe, expect, it } from "vitest";
import { advanceClock, call, debit, grant, uid } from "./helpers";
import { alertsFor, DAY, doNow, drain, HOUR, MINUTE, runCron, setDoClock } from "./jobs-helpers";

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
    const now = await history(spiky, 12); // last hour 13 vs 23 over the 24 before: 13×24 ≥ 10×23
    await history(steady, 3); // last hour 4: no spike
    await runCron(now + MINUTE);
    const spikes = await alertsFor(spiky, "usage.spike");
    expect(spikes).toHaveLength(1);
    expect(spikes[0]!.data).toEqual({
      unit: "credits",
      last_hour: 13,
      trailing_total: 23,
      trailing_hours: 24,
      factor: 10,
    });
    expect(await alertsFor(steady, "usage.spike")).toEqual([]);
    // More use in the same hour: still one alert.
    expect((await debit(spiky, 5)).status).toBe(200);
    await drain(spiky);
    await runCron(now + 2 * MINUTE);
    expect(await alertsFor(spiky, "usage.spike")).toHaveLength(1);
  });

  it("the factor is configurable", async () => {
    const put = await call("PUT", "/v1/alert-settings", { spike_factor: 2 });
    expect(put.status).toBe(200);
    expect(put.json).toEqual({ expiring_days: [7, 1], spike_factor: 2, spike_trailing_hours: 24 });
    const a = uid();
    const now = await history(a, 3); // 4×24 = 96 ≥ 2×23
    await runCron(now + MINUTE);
    expect(await alertsFor(a, "usage.spike")).toHaveLength(1);
    await call("PUT", "/v1/alert-settings", { spike_factor: 10 });
  });
});
