/**
 * Duplicate and out-of-order cron runs (the scheduled handler twice at once,
 * then an older scheduledTime after a newer one), and receipts settled while
 * their deadline passes (settle racing the account's sweep and the cron):
 * every lot expires once, every receipt is captured exactly once and never
 * past its amount; afterwards every invariant holds and reconciliation
 * reports zero drift.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterAll, describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { checkAccount, countFaults, printReliability, reconcileClean, scenarioDone } from "./faults-helpers";
import { advanceClock, call, debit, grant, ledgerStubFor, runAlarm, uid } from "./helpers";
import { HOUR, MINUTE, runCron } from "./jobs-helpers";

afterAll(() => printReliability("cron"));

describe("duplicate and out-of-order cron runs", () => {
  it("two runs at once, then an older one after a newer: each lot expires once, each hold closes once", async () => {
    const accounts = [uid("fc"), uid("fc"), uid("fc")];
    for (const a of accounts) {
      await grant(a, { amount: 40, expires_at: new Date(Date.now() + HOUR).toISOString() });
      await grant(a, { amount: 10, type: "promotional" });
      expect((await debit(a, 5)).status).toBe(200);
      const hold = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: uid("h"), amount: 7, ttl_seconds: 60 });
      expect(hold.status).toBe(201);
      // Past the lot's expiry and the hold's deadline, on the account's clock.
      await advanceClock(a, 2 * HOUR);
    }
    const now = Date.now() + 2 * HOUR;
    await Promise.all([runCron(now), runCron(now)]);
    await runCron(now + 5 * MINUTE);
    await runCron(now - 5 * MINUTE);
    await Promise.all([runCron(now + 5 * MINUTE), runCron(now - 10 * MINUTE), ...accounts.map((a) => runAlarm(a))]);
    // A duplicate at once, an older run after a newer, then both again racing the accounts' alarms.
    countFaults(4);
    for (const a of accounts) {
      const entries = await checkAccount(a);
      // By hand: the dated lot (drawn first: it expires first) had 40, gave 5 to the debit and held 7. Whatever
      // ran twice, its 35 left once: expired, plus the held 7 expiring when released (or captured), never more.
      const dated = entries.find((e) => e.kind === "grant" && e.amount === 40)?.grant_id;
      const fromDated = entries.filter((e) => e.grant_id === dated && e.kind !== "grant" && e.kind !== "debit");
      expect(fromDated.reduce((s, e) => s + e.amount, 0)).toBe(-35);
      expect(entries.filter((e) => e.kind.startsWith("hold.")).length).toBe(1);
      const b = (await call("GET", `/v1/accounts/${a}/balance`)).json;
      expect(b.held).toBe(0);
      expect(b.available).toBe(10);
    }
    await reconcileClean(accounts);
    scenarioDone();
  });
});

/** Moves the account's clock to just past `atMs` (real time), where the sweep may act. */
async function clockTo(a: string, atMs: number) {
  await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
    inst.clock.offsetMs = atMs + 1 - Date.now();
  });
}

describe("a receipt settled while its deadline passes", () => {
  it("settle racing the sweep and the cron: captured exactly once, never past its amount", async () => {
    const a = uid("fc");
    await grant(a, { amount: 500 });
    const receipts: { id: string; jwt: string; used: number; expiresMs: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await call("POST", `/v1/accounts/${a}/receipts`, {
        receipt_id: uid("r"),
        amount: 40,
        ttl_seconds: 60,
      });
      expect(res.status).toBe(201);
      receipts.push({
        id: res.json.receipt_id,
        jwt: res.json.receipt,
        used: 5 * i,
        expiresMs: Date.parse(res.json.expires_at),
      });
    }
    // exp + 300 s is the settle grace; the sweep may capture from then on. The account counts each
    // deadline on its own clock from the moment it reserved (at or up to a second after the token's
    // second-floored exp): 2 s past the last one, every receipt is due.
    await clockTo(a, Math.max(...receipts.map((r) => r.expiresMs)) + 300_000 + 2_000);
    const outcomes = await Promise.all(
      receipts.map(async (r, i) => {
        const settle = () => call("POST", "/v1/receipts/settle", { receipt: r.jwt, used: r.used });
        const sweep = () => runAlarm(a);
        const cron = () => runCron(Date.now() + 10 * MINUTE);
        const order =
          i % 3 === 0 ? [settle(), sweep()] : i % 3 === 1 ? [sweep(), settle()] : [cron(), settle(), sweep()];
        const results = await Promise.all(order);
        return results.find((x): x is Awaited<ReturnType<typeof settle>> => typeof x === "object" && x !== null);
      }),
    );
    countFaults(receipts.length);
    const entries = await checkAccount(a);
    let captured = 0;
    for (const [i, r] of receipts.entries()) {
      const res = outcomes[i];
      const own = entries.filter((e) => e.ref === r.id && e.kind === "receipt.settled");
      // One closing transaction per receipt, whoever won.
      expect(new Set(own.map((e) => e.txn_id)).size).toBe(1);
      const took = own.reduce((s, e) => s - e.amount, 0);
      expect(own.reduce((s, e) => s + e.held_delta, 0)).toBe(-40);
      if (res?.status === 200) expect(took).toBe(r.used);
      else {
        expect(res?.json.code).toBe("receipt_settled");
        expect(took).toBe(40);
      }
      expect(took).toBeLessThanOrEqual(40);
      captured += took;
    }
    const b = (await call("GET", `/v1/accounts/${a}/balance`)).json;
    expect([b.available, b.held]).toEqual([500 - captured, 0]);
    await reconcileClean([a]);
    scenarioDone();
  });
});
