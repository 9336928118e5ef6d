/**
 * Expirations and sweeps: on time through each DO's alarm, and through the
 * cron backstop when the alarm did not fire; repeated runs write nothing twice.
 * No sleeping: the DO clock is moved and the alarm / scheduled handler is run.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { loadGlobalPolicy } from "../../src/db/settings";
import { ledgerDb } from "../../src/db/shards";
import { call, grant, ledgerEntries, ledgerStubFor, uid } from "./helpers";
import { alertsFor, doNow, drain, dropAlarm, HOUR, MINUTE, runCron, setDoClock } from "./jobs-helpers";

const expiredEntries = async (a: string) => (await ledgerEntries(a)).filter((e) => e.kind === "grant.expired");

describe("expirations", () => {
  it("the alarm writes one grant.expired at the exact expiry, dated expires_at, and a credits.expired alert", async () => {
    const a = uid();
    const now = await doNow(a);
    const expiresAt = Math.ceil((now + HOUR) / 1000) * 1000;
    const g = await grant(a, { amount: 300, type: "promotional", expires_at: new Date(expiresAt).toISOString() });
    expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("d"), amount: 100 })).status).toBe(200);
    await drain(a);

    await setDoClock(a, expiresAt);
    expect(await runDurableObjectAlarm(ledgerStubFor(a))).toBe(true);
    const expired = await expiredEntries(a);
    expect(expired).toHaveLength(1);
    expect(expired[0]).toMatchObject({
      grant_id: g.grant.grant_id,
      amount: -200,
      held_delta: 0,
      effective_at: new Date(expiresAt).toISOString(),
      actor: "system:expiry",
    });
    const delayMs = Date.parse(expired[0].recorded_at) - expiresAt;
    expect(delayMs).toBeGreaterThanOrEqual(0);
    expect(delayMs).toBeLessThan(1000);

    // The alarm again, and the cron backstop: nothing more is written.
    await runDurableObjectAlarm(ledgerStubFor(a));
    await runCron(expiresAt + 5 * MINUTE);
    expect(await expiredEntries(a)).toHaveLength(1);

    await drain(a);
    const lost = await alertsFor(a, "credits.expired");
    expect(lost).toHaveLength(1);
    expect(lost[0]!.data).toMatchObject({ grant_id: g.grant.grant_id, amount_lost: 200, credit_type: "promotional" });
  });

  it("the cron expires a lot whose alarm did not fire, once, however often it runs", async () => {
    const a = uid();
    const now = await doNow(a);
    const expiresAt = now + HOUR;
    const g = await grant(a, { amount: 50, expires_at: new Date(expiresAt).toISOString() });
    await drain(a);
    const indexed = await env.DB.prepare("SELECT expires_at_ms, remaining, held FROM grants WHERE account_id = ?")
      .bind(a)
      .first();
    expect(indexed).toEqual({ expires_at_ms: expiresAt, remaining: 50, held: 0 });

    await dropAlarm(a);
    // The next */5 tick after expiry, as the cron trigger would run it.
    const tick = Math.ceil((expiresAt + 1) / (5 * MINUTE)) * 5 * MINUTE;
    await setDoClock(a, tick);
    await runCron(tick);
    const expired = await expiredEntries(a);
    expect(expired).toHaveLength(1);
    expect(expired[0]).toMatchObject({
      grant_id: g.grant.grant_id,
      amount: -50,
      effective_at: new Date(expiresAt).toISOString(),
      actor: "system:expiry",
    });
    // Written by that tick: the expiry-to-entry delay with cron only is up to one interval.
    const recordedAt = Date.parse(expired[0].recorded_at);
    expect(recordedAt - tick).toBeGreaterThanOrEqual(0);
    expect(recordedAt - tick).toBeLessThan(1000);
    expect(recordedAt - expiresAt).toBeLessThanOrEqual(5 * MINUTE + 1000);

    // Twice more, and the DO's own alarm: still one entry. (These find nothing in the index; the next test
    // overlaps runs that do.)
    await Promise.all([runCron(tick + 1), runCron(tick + 5 * MINUTE)]);
    await runDurableObjectAlarm(ledgerStubFor(a));
    expect(await expiredEntries(a)).toHaveLength(1);
    // The index no longer shows an unheld remainder, so the cron stops asking.
    const after = await env.DB.prepare("SELECT remaining, held FROM grants WHERE account_id = ?").bind(a).first();
    expect(after).toEqual({ remaining: 0, held: 0 });
    expect((await call("GET", `/v1/accounts/${a}/balance`)).json.available).toBe(0);
  });
});

describe("overlapping expirations", () => {
  afterEach(() => vi.restoreAllMocks());

  it("runs that all find the lot in the D1 index before it updates, and concurrent DO calls, write one entry", async () => {
    const a = uid();
    const now = await doNow(a);
    const expiresAt = now + HOUR;
    const g = await grant(a, { amount: 70, expires_at: new Date(expiresAt).toISOString() });
    await drain(a);
    await dropAlarm(a);
    // Hold the D1 index where it is: the DO cannot ship, so every run still finds the unheld remainder
    // and asks the DO, as overlapping runs do before the first one's entries land.
    const stub = ledgerStubFor(a);
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.shipVia = (real) =>
        new Proxy(real, {
          get(target, prop, receiver) {
            if (prop === "batch") return async () => Promise.reject(new Error("D1_ERROR: injected outage"));
            return Reflect.get(target, prop, receiver);
          },
        });
    });
    const tick = Math.ceil((expiresAt + 1) / (5 * MINUTE)) * 5 * MINUTE;
    await setDoClock(a, tick);
    const log = vi.spyOn(console, "log");
    await Promise.all([runCron(tick), runCron(tick), runCron(tick + 1)]);
    await runCron(tick + 5 * MINUTE);
    const policy = await loadGlobalPolicy(env.DB);
    const direct = await Promise.all([stub.expireAndSweep(policy), stub.expireAndSweep(policy)]);
    expect(direct.map((d) => d.expired)).toEqual([0, 0]);

    const runs = log.mock.calls
      .map((c) => {
        try {
          return JSON.parse(String(c[0])) as Record<string, unknown>;
        } catch {
          return null;
        }
      })
      .filter((l): l is Record<string, unknown> => l?.event === "cron.job" && l.job === "expirations");
    expect(runs).toHaveLength(4);
    // Every run found the lot through the index and reached the DO; one of them expired it.
    for (const r of runs) expect(r).toMatchObject({ ok: true, failed: 0, candidates: expect.any(Number) });
    for (const r of runs) expect(r.candidates).toBeGreaterThanOrEqual(1);
    expect(runs.reduce((n, r) => n + Number(r.expired), 0)).toBe(1);
    const indexed = await env.DB.prepare("SELECT remaining FROM grants WHERE account_id = ?").bind(a).first();
    expect(indexed).toEqual({ remaining: 70 });
    expect(await expiredEntries(a)).toHaveLength(1);

    // Once D1 is back, one entry ships and the index stops pointing at the lot.
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.shipVia = null;
    });
    await drain(a);
    const shipped = await ledgerDb(env, a)
      .prepare("SELECT grant_id, amount FROM ledger_entries WHERE account_id = ? AND kind = 'grant.expired'")
      .bind(a)
      .all();
    expect(shipped.results).toEqual([{ grant_id: g.grant.grant_id, amount: -70 }]);
    expect(await env.DB.prepare("SELECT remaining FROM grants WHERE account_id = ?").bind(a).first()).toEqual({
      remaining: 0,
    });
  });
});

describe("sweeps", () => {
  it("the cron closes a hold past its deadline when the alarm did not fire", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const hold = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: uid("h"), amount: 40, ttl_seconds: 60 });
    expect(hold.status).toBe(201);
    await drain(a);
    const deadline = Date.parse(hold.json.expires_at);
    const head = await env.DB.prepare("SELECT next_hold_deadline_ms FROM account_heads WHERE account_id = ?")
      .bind(a)
      .first();
    expect(head).toEqual({ next_hold_deadline_ms: deadline });

    await dropAlarm(a);
    await setDoClock(a, deadline + MINUTE);
    await runCron(deadline + MINUTE);
    const status = await call("GET", `/v1/accounts/${a}/holds/${hold.json.hold_id}`);
    expect(status.json.status).toBe("released");
    const released = (await ledgerEntries(a)).filter((e) => e.kind === "hold.released");
    expect(released).toHaveLength(1);
    expect(released[0].actor).toBe("system:sweep");
    await runCron(deadline + 6 * MINUTE);
    expect((await ledgerEntries(a)).filter((e) => e.kind === "hold.released")).toHaveLength(1);
    const after = await env.DB.prepare("SELECT next_hold_deadline_ms FROM account_heads WHERE account_id = ?")
      .bind(a)
      .first();
    expect(after).toEqual({ next_hold_deadline_ms: null });
  });
});
