/**
 * Faults while the outbox ships, through the plan's hook on the courier's D1
 * (src/faults.ts shipFaults): random D1 errors and slow batches over many
 * writes; D1 committing a shipment whose answer is lost; the Durable Object
 * reset after D1 committed and before the rows were marked shipped; and
 * resets between operations. After each, with the faults cleared: every
 * entry shipped exactly once (D1 = DO by ids, seqs and hashes; the journal
 * and its rollups count each row once), the invariants hold, and
 * reconciliation reports zero drift.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { faultCounters, setFaultPlan } from "../../src/faults";
import { checkAccount, printReliability, reconcileClean, resetObject, scenarioDone, settle } from "./faults-helpers";
import { call, debit, grant, ledgerStubFor, runAlarm, uid } from "./helpers";
import { d1Entries } from "./outbox-helpers";

afterEach(() => setFaultPlan({}));
afterAll(() => printReliability("outbox"));

/** Ships through the DO's own courier (the faulted D1); a failure is expected, a reset rejects the call. */
const shipNow = (a: string) =>
  runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => inst.drain()).catch(() => ({ ok: false, pending: -1 }));
const pending = (a: string) => runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => inst.pendingOutbox());

/**
 * Sends like a client that retries: a reset can break a call in flight (500),
 * and the same request again must land once. Returns the last answer.
 */
async function send(method: string, path: string, body: Record<string, unknown>) {
  let res = await call(method, path, body);
  for (let i = 0; i < 3 && res.status === 500; i++) res = await call(method, path, body);
  return res;
}

/** What a sequence of writes did: the debits that answered 200, by id and amount. */
type Done = { debits: Map<string, number>; holds: string[] };

/** One write of a small mix, chosen by `i`: debits, grants, holds, captures and releases. */
async function write(a: string, i: number, done: Done): Promise<void> {
  const base = `/v1/accounts/${a}`;
  switch (i % 4) {
    case 0: {
      const id = uid("d");
      const res = await send("POST", `${base}/debits`, { debit_id: id, amount: 1 + (i % 7) });
      expect([200, 402]).toContain(res.status);
      if (res.status === 200) done.debits.set(id, 1 + (i % 7));
      return;
    }
    case 1: {
      const type = i % 2 ? "promotional" : "purchased";
      const res = await send("POST", `${base}/grants`, { grant_id: uid("g"), amount: 5 + (i % 11), type });
      expect(res.status).toBe(201);
      return;
    }
    case 2: {
      const id = uid("h");
      const res = await send("POST", `${base}/holds`, { hold_id: id, amount: 1 + (i % 5) });
      expect([201, 402]).toContain(res.status);
      if (res.status === 201) done.holds.push(id);
      return;
    }
    default: {
      const id = done.holds.shift();
      if (id === undefined) return;
      const res =
        i % 8 === 3
          ? await send("POST", `${base}/holds/${id}/capture`, { amount: 1 })
          : await send("POST", `${base}/holds/${id}/release`, {});
      // 409: a retry after a reset found the hold already closed by the first try.
      expect([200, 409]).toContain(res.status);
    }
  }
}

/** Each debit that answered 200 is in the ledger once: one transaction, its amount, never doubled. */
function debitedOnce(entries: any[], debits: Map<string, number>): void {
  for (const [id, amount] of debits) {
    const own = entries.filter((e) => e.ref === id);
    expect(new Set(own.map((e) => e.txn_id)).size).toBe(1);
    expect(own.reduce((s, e) => s + e.amount, 0)).toBe(-amount);
  }
}

describe("D1 errors and timeouts while shipping", () => {
  it("a random error rate over many writes, then cleared: every entry shipped exactly once", async () => {
    const accounts = [uid("fo"), uid("fo"), uid("fo")];
    for (const a of accounts) await grant(a, { amount: 200 });
    const before = faultCounters();
    // 40% of batches fail before D1, 20% fail after D1 committed, each batch 15 ms slow (a timeout is both).
    setFaultPlan({ d1ShipError: 0.4, d1ShipErrorAfterCommit: 0.2, d1ShipDelayMs: 15, seed: 1313 });
    const done = new Map<string, Done>(accounts.map((a) => [a, { debits: new Map(), holds: [] }]));
    for (let i = 0; i < 60; i++) {
      const a = accounts[i % accounts.length] as string;
      await write(a, i, done.get(a) as Done);
      if (i % 3 === 2) await shipNow(a);
    }
    for (const a of accounts) for (let k = 0; k < 4; k++) await shipNow(a);
    const after = faultCounters();
    expect(after.d1_ship_error).toBeGreaterThan(before.d1_ship_error);
    expect(after.d1_ship_error_after_commit).toBeGreaterThan(before.d1_ship_error_after_commit);
    expect(after.d1_ship_delay).toBeGreaterThan(before.d1_ship_delay);
    for (const a of accounts) debitedOnce(await checkAccount(a), (done.get(a) as Done).debits);
    await reconcileClean(accounts);
    scenarioDone();
  });

  it("D1 committed but the answer was lost: the re-sent shipment writes nothing twice", async () => {
    const a = uid("fo");
    await grant(a, { amount: 50, cost_basis: { amount: 500, currency: "USD" } });
    await settle(a);
    setFaultPlan({ d1ShipErrorAfterCommit: 1 });
    expect((await debit(a, 7)).status).toBe(200);
    expect((await shipNow(a)).ok).toBe(false);
    // D1 took it (2 entries), the DO still holds the rows: to it, nothing shipped.
    expect((await d1Entries(a)).length).toBe(2);
    expect(await pending(a)).toBeGreaterThan(0);
    expect((await shipNow(a)).ok).toBe(false);
    const entries = await checkAccount(a);
    expect(entries.map((e) => e.kind)).toEqual(["grant", "debit"]);
    await reconcileClean([a]);
    scenarioDone();
  });
});

describe("a Durable Object reset", () => {
  it("in the middle of a shipment, after D1 committed: nothing lost, nothing doubled", async () => {
    const a = uid("fo");
    await grant(a, { amount: 40 });
    await settle(a);
    setFaultPlan({ doResetMidShip: 1 });
    expect((await debit(a, 4)).status).toBe(200);
    await expect(runAlarm(a)).rejects.toThrow();
    expect((await d1Entries(a)).map((e) => e.kind)).toEqual(["grant", "debit"]);
    setFaultPlan({});
    // A fresh instance rebuilt from SQLite: the balance is whole and the rows still wait.
    expect(await pending(a)).toBeGreaterThan(0);
    expect((await call("GET", `/v1/accounts/${a}/balance`)).json.available).toBe(36);
    // The alarm ships what waited (again: D1 ignores the repeat) and carries on.
    await runAlarm(a);
    expect(await pending(a)).toBe(0);
    expect((await debit(a, 6)).status).toBe(200);
    const entries = await checkAccount(a);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ["grant", 40],
      ["debit", -4],
      ["debit", -6],
    ]);
    await reconcileClean([a]);
    scenarioDone();
  });

  it("at random mid-shipment and between operations over many writes", async () => {
    const accounts = [uid("fo"), uid("fo")];
    for (const a of accounts) await grant(a, { amount: 120 });
    setFaultPlan({ doResetMidShip: 0.35, d1ShipError: 0.15, seed: 99 });
    const done = new Map<string, Done>(accounts.map((a) => [a, { debits: new Map(), holds: [] }]));
    const resetsBefore = faultCounters().do_reset_mid_ship;
    for (let i = 0; i < 32; i++) {
      const a = accounts[i % 2] as string;
      await write(a, i, done.get(a) as Done);
      if (i % 2 === 1) await shipNow(a);
      if (i % 5 === 4) await resetObject(a);
    }
    expect(faultCounters().do_reset_mid_ship).toBeGreaterThan(resetsBefore);
    for (const a of accounts) debitedOnce(await checkAccount(a), (done.get(a) as Done).debits);
    await reconcileClean(accounts);
    scenarioDone();
  });

  it("between operations with rows still waiting: the stored alarm ships them after the restart", async () => {
    const a = uid("fo");
    await grant(a, { amount: 30 });
    expect((await debit(a, 5)).status).toBe(200);
    await resetObject(a);
    // No drain by the test: the alarm storage kept fires and ships.
    await runAlarm(a);
    expect(await pending(a)).toBe(0);
    expect((await d1Entries(a)).length).toBe(2);
    await resetObject(a);
    expect((await debit(a, 25)).status).toBe(200);
    expect((await debit(a, 1)).status).toBe(402);
    await checkAccount(a);
    await reconcileClean([a]);
    scenarioDone();
  });
});
