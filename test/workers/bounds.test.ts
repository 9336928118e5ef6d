/**
 * Issue 7, defect 2: what a write stores and answers is bounded whatever the
 * account holds. Thousands of expiring lots used to make every debit store
 * its whole `expiring` list in its idempotency record (SQLITE_TOOBIG at ~30 000).
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { DEFAULT_POLICY } from "../../src/ledger";
import { grantCmd } from "../unit/fixtures";
import { call, debit, grant, ledgerStubFor, runAlarm, uid } from "./helpers";

const DAY = 86_400_000;

/** Issues `n` lots of 1 credit, each expiring at its own time, straight through the DO (no HTTP per lot). */
async function manyExpiringLots(accountId: string, n: number): Promise<void> {
  await grant(accountId, { amount: 1, expires_at: new Date(Date.now() + 400 * DAY).toISOString() });
  await runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => {
    const ctx = { accountId, actor: "test:admin", requestId: "seed", globalPolicy: DEFAULT_POLICY };
    for (let i = 0; i < n; i++) {
      const cmd = grantCmd({
        grantId: `lot-${i}`,
        type: "promotional",
        amount: 1,
        expiresAtMs: Date.now() + DAY + i * 60_000,
      });
      const out = inst.grant(ctx, cmd, { key: cmd.grantId, bodyHash: `seed-${i}` });
      if (!out.ok) throw new Error(out.problem.detail);
    }
  });
}

async function recordSizes(accountId: string): Promise<Map<string, number>> {
  return runInDurableObject(ledgerStubFor(accountId), (_inst: AccountLedger, state) => {
    const rows = state.storage.sql
      .exec("SELECT scope || ':' || key AS k, length(response) AS n FROM idempotency")
      .toArray();
    return new Map(rows.map((r) => [String(r.k), Number(r.n)]));
  });
}

describe("an account with thousands of expiring lots keeps working", () => {
  const LOTS = 2500;

  it("debits, holds and voids store small records and answer bounded balances", async () => {
    const a = uid();
    await manyExpiringLots(a, LOTS);

    const d = await debit(a, 3, { debit_id: "d-big" });
    expect(d.status).toBe(200);
    expect(d.json.balance.expiring).toHaveLength(10);
    expect(d.json.balance.expiring_more).toBe(true);
    expect(d.json.balance.pending_more).toBe(false);
    // The soonest first: lot-0 expires first and was drawn, so lot-3 leads.
    expect(d.json.balance.expiring[0].grant_id).toBe("lot-3");

    const h = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h-big", amount: 2 });
    expect(h.status).toBe(201);
    const v = await call("POST", `/v1/accounts/${a}/grants/lot-2000/void`, { reason: "test" });
    expect(v.status).toBe(200);
    expect(v.json.balance.expiring).toHaveLength(10);

    const sizes = await recordSizes(a);
    for (const key of ["debit:d-big", "hold:h-big", "void:lot-2000"]) {
      expect(sizes.get(key), key).toBeGreaterThan(0);
      expect(sizes.get(key), key).toBeLessThan(4096);
    }

    // A balance read lists 1 000 at most and says the rest exist.
    const b = await call("GET", `/v1/accounts/${a}/balance`);
    expect(b.json.expiring).toHaveLength(1000);
    expect(b.json.expiring_more).toBe(true);
    expect(b.json.available).toBe(LOTS + 1 - 3 - 2 - 1);

    // A replay returns the first answer, byte for byte.
    const again = await debit(a, 3, { debit_id: "d-big" });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.text).toBe(d.text);
  });

  it("a debit drawing from more lots than a response lists says so, and GET …/debits/{id} lists them", async () => {
    const a = uid();
    await manyExpiringLots(a, 150);
    const d = await debit(a, 150, { debit_id: "d-wide", metadata: { request: "r-1" } });
    expect(d.status).toBe(200);
    expect(d.json.applied).toHaveLength(100);
    expect(d.json.applied_more).toBe(true);
    const sum = (xs: { amount: number }[]) => xs.reduce((s, x) => s + x.amount, 0);
    const read = await call("GET", `/v1/accounts/${a}/debits/d-wide`);
    expect(read.status).toBe(200);
    expect(read.json.applied).toHaveLength(150);
    expect(read.json.applied_more).toBe(false);
    expect(sum(read.json.applied)).toBe(150);
    expect(read.json.applied.slice(0, 100)).toEqual(d.json.applied);
    expect(read.json.metadata).toEqual({ request: "r-1" });
    expect((await recordSizes(a)).get("debit:d-wide")).toBeLessThan(8192);
  });
});

describe("a hold over thousands of lots", () => {
  it("keeps its allocations out of the hold row, and captures and releases them all", async () => {
    const a = uid();
    await manyExpiringLots(a, 2000);
    const h = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h-wide", amount: 2001 });
    expect(h.status).toBe(201);
    const stored = await runInDurableObject(ledgerStubFor(a), (_inst: AccountLedger, state) => {
      const row = state.storage.sql.exec("SELECT length(allocations) AS n FROM holds WHERE hold_id = 'h-wide'").one();
      const spilled = state.storage.sql
        .exec("SELECT count(*) AS n FROM hold_allocations WHERE hold_id = 'h-wide'")
        .one();
      return { inline: Number(row.n), spilled: Number(spilled.n) };
    });
    expect(stored.inline).toBeLessThan(100);
    expect(stored.spilled).toBe(2001);
    const c = await call("POST", `/v1/accounts/${a}/holds/h-wide/capture`, { amount: 1500 });
    expect(c.status).toBe(200);
    expect(c.json).toMatchObject({ captured: 1500, released: 501 });
    // Read back from SQLite (closed holds are not kept in memory).
    const read = await call("GET", `/v1/accounts/${a}/holds/h-wide`);
    expect(read.json).toMatchObject({ status: "captured", captured: 1500, released: 501 });
    const b = await call("GET", `/v1/accounts/${a}/balance`);
    expect(b.json).toMatchObject({ available: 2001 - 1500, held: 0 });
  });
});

describe("idempotency records are pruned after their retention", () => {
  it("keeps 30 days, prunes older ones from the alarm, and never charges a pruned debit twice", async () => {
    const a = uid();
    await grant(a, { amount: 100, effective_at: new Date(Date.now() - 40 * DAY).toISOString() });
    const stub = ledgerStubFor(a);
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.clock.offsetMs = -31 * DAY;
    });
    const old = await debit(a, 5, { debit_id: "d-old" });
    expect(old.status).toBe(200);
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.clock.offsetMs = -29 * DAY;
    });
    const recent = await debit(a, 7, { debit_id: "d-recent" });
    // Both records exist while the clock is still back; read them in the same turn that moves it to
    // now, so an outbox alarm firing in between cannot prune d-old before it was seen.
    const before = await runInDurableObject(stub, (inst: AccountLedger, state) => {
      const keys = state.storage.sql
        .exec("SELECT scope || ':' || key AS k FROM idempotency")
        .toArray()
        .map((r) => String(r.k));
      inst.clock.offsetMs = 0;
      return keys;
    });
    expect(before).toEqual(expect.arrayContaining(["debit:d-old", "debit:d-recent"]));

    await runAlarm(a);
    const kept = [...(await recordSizes(a)).keys()];
    expect(kept).toContain("debit:d-recent");
    expect(kept).not.toContain("debit:d-old");

    // Within the retention: the first answer. Past it: refused, never applied again.
    const replay = await debit(a, 7, { debit_id: "d-recent" });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.text).toBe(recent.text);
    const pruned = await debit(a, 5, { debit_id: "d-old" });
    expect(pruned.status).toBe(409);
    expect(pruned.json.code).toBe("idempotency_conflict");
    const b = await call("GET", `/v1/accounts/${a}/balance`);
    expect(b.json.available).toBe(100 - 5 - 7);
  });
});
