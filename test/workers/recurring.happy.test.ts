/**
 * Recurring grants in workerd with the account's real Durable Object and
 * local D1: a monthly allowance over 13 periods with the DO clock moved (never
 * sleeping), figures worked out by hand; cancellation; and the alarm and the
 * cron racing each other at every boundary.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ledgerDb } from "../../src/db/shards";
import { verifyChain } from "../../src/ledger";
import { periodStartMs } from "../../src/ledger/recurring";
import { balance, call, iso, ledgerEntries, runAlarm, uid } from "./helpers";
import { DAY, doNow, drain, dropAlarm, MINUTE, runCron, setDoClock } from "./jobs-helpers";

const sum = (xs: { amount: number }[]) => xs.reduce((s, e) => s + e.amount, 0);
const of = (entries: any[], kind: string) => entries.filter((e) => e.kind === kind);

async function account(): Promise<string> {
  const a = uid("rec");
  expect((await call("PUT", `/v1/accounts/${a}`, { name: "allowance" })).status).toBe(201);
  return a;
}

async function schedule(a: string, body: Record<string, unknown>) {
  const res = await call("POST", `/v1/accounts/${a}/recurring-grants`, body);
  expect(res.status, res.text).toBe(201);
  return res.json;
}

async function spend(a: string, amount: number) {
  const res = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("d"), amount });
  expect(res.status, res.text).toBe(200);
}

describe("a monthly allowance of 1000 with rollover capped at 300 for one period", () => {
  it("13 periods: one lot each, rollover capped, breakage exact, the ledger replays to the balance", async () => {
    const a = await account();
    // Starts on the 31st, so the calendar clamps: Jan 31 → Feb 28 → Mar 31 …
    const now = await doNow(a);
    const y = new Date(now).getUTCFullYear() + 1;
    const S = Date.UTC(y, 0, 31, 9, 0, 0);
    await setDoClock(a, S - DAY);
    const created = await schedule(a, {
      recurring_id: "allowance",
      amount: 1000,
      type: "promotional",
      interval: "month",
      starts_at: iso(S),
      source: "plan",
      expires: "end_of_period",
      rollover: { max_amount: 300, max_periods: 1 },
    });
    expect(created).toMatchObject({ status: "active", periods_issued: 0, next_period_at: iso(S), interval: "month" });
    const P = (k: number) => periodStartMs(S, "month", k);
    expect(iso(P(1))).toBe(`${y}-02-28T09:00:00.000Z`);
    expect(iso(P(2))).toBe(`${y}-03-31T09:00:00.000Z`);

    // Debits by period (by hand): 600 in period 1, 1200 in 2, none in 3, 1300 in 4, none after.
    const debits: Record<number, number> = { 0: 600, 1: 1200, 3: 1300 };
    for (let k = 0; k <= 12; k++) {
      await setDoClock(a, P(k) + MINUTE);
      await runAlarm(a);
      if (debits[k]) await spend(a, debits[k] as number);
    }
    const entries = await ledgerEntries(a);
    expect(verifyChain(entries)).toBeNull();

    // One lot per period, effective at its start, expiring at the next.
    const grants = of(entries, "grant");
    expect(grants.map((e) => [e.grant_id, e.amount, e.effective_at])).toEqual(
      Array.from({ length: 13 }, (_, k) => [`allowance.${k + 1}`, 1000, iso(P(k))]),
    );
    // Rolled: 300 of r.1's 400, all of r.2's 100, 300 of r.3's 1000, nothing of r.4 (spent), 300 of r.5 … r.12.
    const rolled = of(entries, "grant.rolled_over").map((e) => [e.grant_id, e.amount]);
    expect(rolled).toEqual([
      ["allowance.1", -300],
      ["allowance.2", -100],
      ["allowance.3", -300],
      ...[5, 6, 7, 8, 9, 10, 11, 12].map((n) => [`allowance.${n}`, -300]),
    ]);
    const rollovers = of(entries, "rollover");
    expect(rollovers.map((e) => [e.grant_id, e.amount, e.effective_at])).toEqual(
      [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12].map((n) => [`allowance.${n}.rollover`, n === 2 ? 100 : 300, iso(P(n))]),
    );
    // Breakage: r.1 100, r.3 700, r.5 … r.12 700 each (5 600) = 6 400 from the periods; r.2's rollover 100 and
    // r.5 … r.11's rollovers 300 each (2 100) = 2 200 from rollovers; 8 600 in all.
    const expired = of(entries, "grant.expired");
    expect(sum(expired.filter((e) => !e.grant_id.endsWith(".rollover")))).toBe(-6400);
    expect(sum(expired.filter((e) => e.grant_id.endsWith(".rollover")))).toBe(-2200);
    expect(expired.find((e) => e.grant_id === "allowance.1")).toMatchObject({ amount: -100, effective_at: iso(P(1)) });
    expect(sum(of(entries, "debit"))).toBe(-3100);
    // 13 000 issued − 3 100 spent − 8 600 expired = 1 300: period 13's 1 000 and period 12's rollover 300.
    expect(sum(entries)).toBe(1300);
    const b = await balance(a);
    expect(b.available).toBe(1300);
    expect(b.expiring.map((x: any) => [x.grant_id, x.amount])).toEqual([
      ["allowance.12.rollover", 300],
      ["allowance.13", 1000],
    ]);
    // Written by the account itself, and the schedule says how far it got.
    expect(new Set([...grants, ...rollovers].map((e) => e.actor))).toEqual(new Set(["system:recurring"]));
    const list = await call("GET", `/v1/accounts/${a}/recurring-grants`);
    expect(list.json.recurring_grants).toEqual([
      expect.objectContaining({ recurring_id: "allowance", periods_issued: 13, next_period_at: iso(P(13)) }),
    ]);

    // D1 holds the same entries; rollovers write no journal rows (neither issuance nor expiry).
    await drain(a);
    const d1 = await ledgerDb(env, a)
      .prepare("SELECT COUNT(*) AS n, SUM(amount) AS s FROM ledger_entries WHERE account_id = ?")
      .bind(a)
      .first<{ n: number; s: number }>();
    expect(d1).toEqual({ n: entries.length, s: 1300 });
    const journal = await env.DB.prepare(
      "SELECT category, SUM(amount) AS s FROM journal WHERE account_id = ? GROUP BY category ORDER BY category",
    )
      .bind(a)
      .all<{ category: string; s: number }>();
    expect(journal.results).toEqual([
      { category: "consumed", s: -3100 },
      { category: "expired", s: -8600 },
      { category: "issued", s: 13000 },
    ]);
  });

  it("a replay of the same body answers the first 201; another body is 409; the audit has one row", async () => {
    const a = await account();
    const body = { recurring_id: "r1", amount: 5, type: "purchased", interval: "week", expires: "never" };
    const first = await call("POST", `/v1/accounts/${a}/recurring-grants`, body);
    expect(first.status).toBe(201);
    const again = await call("POST", `/v1/accounts/${a}/recurring-grants`, body);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(first.json);
    const other = await call("POST", `/v1/accounts/${a}/recurring-grants`, { ...body, amount: 6 });
    expect(other.status).toBe(409);
    expect(other.json.code).toBe("idempotency_conflict");
    // starts_at defaulted to now: the first period was issued at once, and only once.
    expect(of(await ledgerEntries(a), "grant").map((e) => e.grant_id)).toEqual(["r1.1"]);
    const audit = await call("GET", `/v1/audit?action=recurring_grant.created&target=${a}:r1`);
    expect(audit.json.events).toHaveLength(1);
  });
});

describe("cancellation", () => {
  it("stops new periods, keeps issued lots, and still settles the last one's end", async () => {
    const a = await account();
    const S = Math.ceil((await doNow(a)) / 1000) * 1000 + DAY;
    await schedule(a, {
      recurring_id: "wk",
      amount: 70,
      type: "purchased",
      interval: "week",
      starts_at: iso(S),
      expires: "end_of_period",
      rollover: { max_amount: 50 },
    });
    const W = (k: number) => S + k * 7 * DAY;
    await setDoClock(a, W(1) + MINUTE);
    await runAlarm(a);
    await spend(a, 30); // from the rollover of week 1 (50), drawn first
    const del = await call("DELETE", `/v1/accounts/${a}/recurring-grants/wk`);
    expect(del.status).toBe(200);
    expect(del.json).toMatchObject({ status: "cancelled", periods_issued: 2, next_period_at: null });
    const again = await call("DELETE", `/v1/accounts/${a}/recurring-grants/wk`);
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");

    for (const k of [2, 3, 4]) {
      await setDoClock(a, W(k) + MINUTE);
      await runAlarm(a);
      await runCron(Date.now() + 10 * DAY * k); // the backstop finds nothing new to issue either
    }
    const entries = await ledgerEntries(a);
    expect(of(entries, "grant").map((e) => e.grant_id)).toEqual(["wk.1", "wk.2"]);
    // Week 2 (70) ended after the cancel: 50 rolled (lasting one more week, then expired), 20 breakage.
    expect(of(entries, "rollover").map((e) => [e.grant_id, e.amount])).toEqual([
      ["wk.1.rollover", 50],
      ["wk.2.rollover", 50],
    ]);
    // Breakage: wk.1 20; at week 2's end wk.2's own 20 (settled first), then wk.1.rollover's 20 (50 − 30 spent);
    // a week later wk.2.rollover's 50.
    expect(of(entries, "grant.expired").map((e) => [e.grant_id, e.amount])).toEqual([
      ["wk.1", -20],
      ["wk.2", -20],
      ["wk.1.rollover", -20],
      ["wk.2.rollover", -50],
    ]);
    expect(sum(entries)).toBe(0);
    const audit = await call("GET", `/v1/audit?action=recurring_grant.cancelled&target=${a}:wk`);
    expect(audit.json.events).toHaveLength(1);
  });
});

describe("the alarm and the cron racing each other", () => {
  it("at every boundary, alarms, cron runs and reads at once still issue each period exactly once", async () => {
    const a = await account();
    const S = Math.ceil((await doNow(a)) / 1000) * 1000 + DAY;
    await schedule(a, {
      recurring_id: "daily",
      amount: 10,
      type: "purchased",
      interval: "day",
      starts_at: iso(S),
      expires: "end_of_period",
      rollover: { max_amount: 4, max_periods: 2 },
    });
    const N = 8;
    for (let k = 0; k < N; k++) {
      const at = S + k * DAY;
      await setDoClock(a, at);
      await Promise.all([
        runAlarm(a),
        runCron(at),
        runAlarm(a),
        runCron(at + 1),
        call("GET", `/v1/accounts/${a}/balance`),
        runAlarm(a),
      ]);
      if (k % 3 === 1) await spend(a, 3);
    }
    const entries = await ledgerEntries(a);
    expect(verifyChain(entries)).toBeNull();
    expect(of(entries, "grant").map((e) => e.grant_id)).toEqual(Array.from({ length: N }, (_, k) => `daily.${k + 1}`));
    expect(of(entries, "grant.rolled_over")).toHaveLength(N - 1);
    expect(new Set(of(entries, "rollover").map((e) => e.grant_id)).size).toBe(N - 1);
    // Σ amount = total remaining (the balance: nothing is held, every live lot is effective).
    expect(sum(entries)).toBe((await balance(a)).available);
  });

  it("the cron alone issues a period when the alarm did not fire", async () => {
    const a = await account();
    const S = Math.ceil((await doNow(a)) / 1000) * 1000 + DAY;
    await schedule(a, {
      recurring_id: "m",
      amount: 9,
      type: "purchased",
      interval: "day",
      starts_at: iso(S),
      expires: "never",
    });
    await setDoClock(a, S + 2 * DAY + MINUTE);
    await dropAlarm(a);
    await runCron(S + 2 * DAY + MINUTE);
    const grants = of(await ledgerEntries(a), "grant");
    expect(grants.map((e) => [e.grant_id, e.effective_at])).toEqual([
      ["m.1", iso(S)],
      ["m.2", iso(S + DAY)],
      ["m.3", iso(S + 2 * DAY)],
    ]);
    const row = await env.DB.prepare(
      "SELECT checked_through_ms, next_boundary_ms FROM recurring_grants WHERE account_id = ? AND recurring_id = 'm'",
    )
      .bind(a)
      .first();
    expect(row).toEqual({ checked_through_ms: S + 2 * DAY + MINUTE, next_boundary_ms: S + 3 * DAY });
  });
});
