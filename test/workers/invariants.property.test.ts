/**
 * DESIGN.md invariants 1-5 and 8, checked against the real Durable Object and
 * local D1 after random sequences of grants, debits, holds, voids and time
 * moves. The hash chain is re-verified with an independent JCS implementation
 * (the `canonicalize` package) and WebCrypto, not src/ledger/hash.ts.
 */

import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import canonicalize from "canonicalize";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { ledgerDb } from "../../src/db/shards";
import { advanceClock, call, iso, ledgerEntries, ledgerStubFor, uid } from "./helpers";

const TYPES = ["promotional", "compensatory", "purchased"] as const;
const UNITS = ["credits", "tokens"] as const;

type Cmd =
  | {
      op: "grant";
      amount: number;
      type: (typeof TYPES)[number];
      unit: string;
      priority: number;
      startMin: number;
      lifeMin: number | null;
    }
  | { op: "debit"; amount: number; unit: string }
  | { op: "hold"; amount: number; unit: string; ttlMin: number }
  | { op: "receipt"; amount: number; unit: string }
  | { op: "settle"; index: number; used: number }
  | { op: "alarm" }
  | { op: "close"; index: number; capture: number | null }
  | { op: "void"; index: number }
  | { op: "advance"; minutes: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    op: fc.constant("grant" as const),
    amount: fc.integer({ min: 1, max: 500 }),
    type: fc.constantFrom(...TYPES),
    unit: fc.constantFrom(...UNITS),
    priority: fc.integer({ min: 0, max: 3 }),
    startMin: fc.integer({ min: -30, max: 60 }),
    lifeMin: fc.option(fc.integer({ min: 61, max: 240 }), { nil: null }),
  }),
  fc.record({
    op: fc.constant("debit" as const),
    amount: fc.integer({ min: 1, max: 400 }),
    unit: fc.constantFrom(...UNITS),
  }),
  fc.record({
    op: fc.constant("hold" as const),
    amount: fc.integer({ min: 1, max: 300 }),
    unit: fc.constantFrom(...UNITS),
    ttlMin: fc.integer({ min: 1, max: 180 }),
  }),
  fc.record({
    op: fc.constant("receipt" as const),
    amount: fc.integer({ min: 1, max: 200 }),
    unit: fc.constantFrom(...UNITS),
  }),
  fc.record({ op: fc.constant("settle" as const), index: fc.nat(), used: fc.nat({ max: 200 }) }),
  fc.constant({ op: "alarm" as const }),
  fc.record({
    op: fc.constant("close" as const),
    index: fc.nat(),
    capture: fc.option(fc.nat({ max: 300 }), { nil: null }),
  }),
  fc.record({ op: fc.constant("void" as const), index: fc.nat() }),
  fc.record({ op: fc.constant("advance" as const), minutes: fc.integer({ min: 1, max: 120 }) }),
);

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function doNow(accountId: string): Promise<number> {
  return runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => Date.now() + inst.clock.offsetMs);
}

interface Issued {
  grants: string[];
  holds: { id: string; amount: number }[];
  receipts: { token: string; amount: number; settledWith: number | null }[];
}

async function run(accountId: string, c: Cmd, issued: Issued) {
  const { grants, holds, receipts } = issued;
  const base = `/v1/accounts/${accountId}`;
  switch (c.op) {
    case "grant": {
      const now = await doNow(accountId);
      const start = now + c.startMin * 60_000;
      const id = uid("g");
      const res = await call("POST", `${base}/grants`, {
        grant_id: id,
        amount: c.amount,
        type: c.type,
        unit: c.unit,
        priority: c.priority,
        reason: "property test",
        effective_at: iso(start),
        expires_at: c.lifeMin === null ? null : iso(start + c.lifeMin * 60_000),
      });
      expect(res.status).toBe(201);
      grants.push(id);
      return;
    }
    case "debit":
    case "hold": {
      const before = (await call("GET", `${base}/balance?unit=${c.unit}`)).json.available;
      const path = c.op === "debit" ? "debits" : "holds";
      const id = uid(c.op);
      const ttl = c.op === "hold" ? { ttl_seconds: c.ttlMin * 60 } : {};
      const res = await call("POST", `${base}/${path}`, { [`${c.op}_id`]: id, amount: c.amount, unit: c.unit, ...ttl });
      // All or nothing, exactly when available covers the amount (invariant 1's "never negative").
      expect(res.status).toBe(before >= c.amount ? (c.op === "debit" ? 200 : 201) : 402);
      if (res.status === 402) expect(res.json).toMatchObject({ available: before, requested: c.amount });
      if (c.op === "hold" && res.status === 201) holds.push({ id, amount: c.amount });
      return;
    }
    case "close": {
      const h = holds[c.index % Math.max(1, holds.length)];
      if (!h) return;
      const action = c.capture === null ? "release" : "capture";
      const body = c.capture === null ? undefined : { amount: Math.min(c.capture, h.amount) };
      const res = await call("POST", `${base}/holds/${h.id}/${action}`, body);
      expect([200, 409]).toContain(res.status);
      return;
    }
    case "void": {
      const g = grants[c.index % Math.max(1, grants.length)];
      if (!g) return;
      const res = await call("POST", `${base}/grants/${g}/void`, { reason: "property test" });
      expect([200, 409]).toContain(res.status);
      return;
    }
    case "receipt": {
      const before = (await call("GET", `${base}/balance?unit=${c.unit}`)).json.available;
      const res = await call("POST", `${base}/receipts`, { receipt_id: uid("r"), amount: c.amount, unit: c.unit });
      expect(res.status).toBe(before >= c.amount ? 201 : 402);
      if (res.status === 201) receipts.push({ token: res.json.receipt, amount: c.amount, settledWith: null });
      return;
    }
    case "settle": {
      const r = receipts[c.index % Math.max(1, receipts.length)];
      if (!r) return;
      const used = Math.min(c.used, r.amount);
      const res = await call("POST", "/v1/receipts/settle", { receipt: r.token, used });
      // 7. Settled once: the same use replays, another is refused; use never exceeds amt.
      if (r.settledWith !== null) expect(res.status).toBe(used === r.settledWith ? 200 : 409);
      else if (res.status === 200) r.settledWith = used;
      else expect(res.json.code).toBe("receipt_settled"); // captured in full by the sweep
      if (res.status === 200) expect(res.json.used).toBeLessThanOrEqual(r.amount);
      return;
    }
    case "alarm":
      // The alarm (expiry, sweep, shipping) overlapping a drain: one shipper at a time.
      await Promise.all([
        runDurableObjectAlarm(ledgerStubFor(accountId)),
        runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => inst.drain()),
      ]);
      return;
    case "advance":
      await advanceClock(accountId, c.minutes * 60_000);
      return;
  }
}

async function checkInvariants(accountId: string) {
  const base = `/v1/accounts/${accountId}`;
  // A balance read first closes holds past their deadline; every read below then sees one state.
  await call("GET", `${base}/balance`);
  const lots = (await call("GET", `${base}/grants`)).json.grants as any[];
  const entries = await ledgerEntries(accountId);
  for (const unit of UNITS) {
    const b = (await call("GET", `${base}/balance?unit=${unit}`)).json;
    const mine = lots.filter((l) => l.unit === unit);
    // 1. available = Σ live lots (remaining − held) ≥ 0.
    const live = mine.filter((l) => l.status === "active" || l.status === "depleted");
    expect(b.available).toBe(live.reduce((s, l) => s + l.remaining - l.held, 0));
    expect(b.available).toBeGreaterThanOrEqual(0);
    expect(b.held).toBe(mine.reduce((s, l) => s + l.held, 0));
    for (const l of mine) expect(0 <= l.held && l.held <= l.remaining && l.remaining <= l.amount).toBe(true);
    // 2. The ledger replays to the state: Σ amount = remaining, Σ held_delta = held, per lot.
    const inUnit = entries.filter((e) => e.unit === unit);
    expect(inUnit.reduce((s, e) => s + e.amount, 0)).toBe(mine.reduce((s, l) => s + l.remaining, 0));
    expect(inUnit.reduce((s, e) => s + e.held_delta, 0)).toBe(b.held);
    for (const l of mine) {
      const own = entries.filter((e) => e.grant_id === l.grant_id);
      expect(own.reduce((s, e) => s + e.amount, 0)).toBe(l.remaining);
      expect(own.reduce((s, e) => s + e.held_delta, 0)).toBe(l.held);
    }
  }
  // 3. Seqs gapless and increasing; D1, once drained, holds exactly the DO's entries.
  expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
  await runInDurableObject(ledgerStubFor(accountId), async (inst: AccountLedger) => {
    expect((await inst.drain()).pending).toBe(0);
  });
  const d1 = await ledgerDb(env, accountId)
    .prepare("SELECT entry_id, seq, hash FROM ledger_entries WHERE account_id = ? ORDER BY seq")
    .bind(accountId)
    .all();
  expect(d1.results.map((r: any) => [r.entry_id, r.seq, r.hash])).toEqual(
    entries.map((e) => [e.entry_id, e.seq, e.hash]),
  );
  // 8. An unbroken hash chain, re-verified independently.
  let prev = "0".repeat(64);
  for (const e of entries) {
    expect(e.prev_hash).toBe(prev);
    const { hash, ...rest } = e;
    expect(await sha256Hex(canonicalize(rest) as string)).toBe(hash);
    prev = hash;
  }
}

describe("ledger invariants against the real Durable Object", () => {
  it("hold after random grant/debit/hold/close/void/time sequences", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 3, maxLength: 14 }), async (cmds) => {
        const accountId = uid("prop");
        const issued: Issued = { grants: [], holds: [], receipts: [] };
        await run(
          accountId,
          { op: "grant", amount: 100, type: "purchased", unit: "credits", priority: 1, startMin: 0, lifeMin: null },
          issued,
        );
        for (const c of cmds) await run(accountId, c, issued);
        await checkInvariants(accountId);
      }),
      { numRuns: 60 },
    );
  });

  it("4. the same idempotency key with the same body moves nothing; another body is refused", async () => {
    const a = uid();
    await call("POST", `/v1/accounts/${a}/grants`, { grant_id: "g", amount: 50, type: "purchased" });
    const first = await call(
      "POST",
      `/v1/accounts/${a}/debits`,
      { amount: 5 },
      { headers: { "idempotency-key": "k1" } },
    );
    const entriesAfterFirst = await ledgerEntries(a);
    // Same parsed JSON, other key order and spacing: a replay.
    const again = await call("POST", `/v1/accounts/${a}/debits`, undefined, {
      headers: { "idempotency-key": "k1" },
      raw: '{ "amount" : 5 }',
    });
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const changed = await call(
      "POST",
      `/v1/accounts/${a}/debits`,
      { amount: 6 },
      { headers: { "idempotency-key": "k1" } },
    );
    expect(changed.status).toBe(409);
    expect(changed.json.code).toBe("idempotency_conflict");
    expect(await ledgerEntries(a)).toEqual(entriesAfterFirst);
  });

  it("balance as_of replays the ledger to a past moment", async () => {
    const a = uid();
    const g = await call("POST", `/v1/accounts/${a}/grants`, { grant_id: "g", amount: 50, type: "purchased" });
    await advanceClock(a, 1000);
    const d = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 20 });
    await advanceClock(a, 1000);
    await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d2", amount: 5 });
    const atGrant = await call("GET", `/v1/accounts/${a}/balance?as_of=${g.json.balance.as_of}`);
    expect(atGrant.json.available).toBe(50);
    const atDebit = await call("GET", `/v1/accounts/${a}/balance?as_of=${d.json.balance.as_of}`);
    expect(atDebit.json.available).toBe(30);
    const before = await call("GET", `/v1/accounts/${a}/balance?as_of=2020-01-01T00:00:00Z`);
    expect(before.json).toMatchObject({
      available: 0,
      held: 0,
      by_type: { promotional: 0, compensatory: 0, purchased: 0 },
    });
  });
});
