/**
 * The account's bounded window (src/account/window.ts): checkpoints, the
 * floor, compaction, and every read answering the same before and after it.
 * Real Durable Object SQLite and local D1; the window shrunk to a few
 * entries through the compactNow test seam.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import type { Outcome } from "../../src/account/types";
import { DEFAULT_POLICY } from "../../src/ledger";
import { advanceClock, call, grant, iso, ledgerStubFor, uid } from "./helpers";
import { compactAll, doNow, exportAll, noCompaction, type Settings, settle, storageCounts } from "./window-helpers";

const TINY: Settings = { window: 5, checkpointEvery: 3 };

/** Everything the account answers about its past at `times`: balance, grants and statements as of each. */
async function pastAnswers(a: string, times: number[]) {
  const out: unknown[] = [];
  for (const t of times) {
    out.push((await call("GET", `/v1/accounts/${a}/balance?as_of=${iso(t)}`)).json);
    out.push((await call("GET", `/v1/accounts/${a}/grants?as_of=${iso(t)}`)).json);
  }
  for (let i = 0; i + 1 < times.length; i++) {
    const res = await call("GET", `/v1/accounts/${a}/statement?from=${iso(times[i]!)}&to=${iso(times[i + 1]! + 1)}`);
    expect(res.status).toBe(200);
    const { signature: _signature, ...unsigned } = res.json;
    out.push(unsigned);
  }
  return out;
}

/** A history of 2 grants and 24 debits with holds, the clock moving 1 s per step; returns the step times. */
async function history(a: string, s: Settings): Promise<number[]> {
  const day = 86_400_000;
  await grant(a, { grant_id: "p1", amount: 1000, type: "purchased", cost_basis: { amount: 1000, currency: "USD" } });
  await grant(a, { grant_id: "x1", amount: 300, type: "promotional", expires_at: iso(Date.now() + day) });
  const times: number[] = [];
  for (let i = 0; i < 24; i++) {
    expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: `d${i}`, amount: 7 + i })).status).toBe(200);
    if (i % 6 === 2) {
      expect(
        (await call("POST", `/v1/accounts/${a}/holds`, { hold_id: `h${i}`, amount: 20, ttl_seconds: 600 })).status,
      ).toBe(201);
      await advanceClock(a, 500);
      expect((await call("POST", `/v1/accounts/${a}/holds/h${i}/capture`, { amount: 5 })).status).toBe(200);
    }
    await advanceClock(a, 1000);
    times.push(await doNow(a));
    await settle(a, s);
  }
  return times;
}

describe("window compaction", () => {
  it("keeps a bounded window, and ledger pages, balances, grants and statements answer as before", async () => {
    const a = uid();
    const times = await history(a, noCompaction(TINY.checkpointEvery));
    const early = [times[0]! - 1500, ...times];
    const before = { pages: await exportAll(a, 7), answers: await pastAnswers(a, early) };
    const debit = (await call("GET", `/v1/accounts/${a}/debits/d1`)).json;
    const counted = await storageCounts(a);
    expect(counted.floor).toBe(0);
    expect(counted.entries).toBe(before.pages.entries.length);

    const done = await compactAll(a, TINY);
    const after = await storageCounts(a);
    // The floor is a checkpoint at least `window` entries below the head; everything at or below it left.
    expect(after.floor).toBeGreaterThan(before.pages.entries.length - TINY.window - 2 * TINY.checkpointEvery);
    expect(after.floor).toBeLessThanOrEqual(before.pages.entries.length - TINY.window);
    expect(after.minSeq).toBe(after.floor + 1);
    expect(after.entries).toBe(before.pages.entries.length - after.floor);
    expect(done.held).toBe(after.entries);

    expect(await exportAll(a, 7)).toEqual(before.pages);
    expect(await pastAnswers(a, early)).toEqual(before.answers);
    expect((await call("GET", `/v1/accounts/${a}/debits/d1`)).json).toEqual(debit);
    // D1's copy is what the reads below the floor served: the same chain, hash for hash.
    const d1 = await ledgerD1(a);
    expect(d1.map((e) => e.hash)).toEqual(before.pages.entries.map((e: any) => e.hash));
  });

  it("holds at most window + slack + one step's entries after every write", async () => {
    const a = uid();
    await grant(a, { grant_id: "p1", amount: 100_000 });
    let maxHeld = 0;
    for (let i = 0; i < 40; i++) {
      // Steps of one or two entries (a debit over two lots writes two).
      if (i % 5 === 0) await grant(a, { grant_id: `g${i}`, amount: 3, priority: 0 });
      expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: `d${i}`, amount: 2 })).status).toBe(200);
      const r = await settle(a, TINY);
      maxHeld = Math.max(maxHeld, r.held);
      expect(r.held).toBeLessThanOrEqual(TINY.window + TINY.checkpointEvery + 2);
    }
    const { entries } = await exportAll(a);
    expect(entries.length).toBeGreaterThan(40);
    expect((await storageCounts(a)).entries).toBeLessThanOrEqual(TINY.window + TINY.checkpointEvery + 2);
    expect(maxHeld).toBeGreaterThan(TINY.window);
    expect(entries.map((e: any) => e.seq)).toEqual(entries.map((_: unknown, i: number) => i + 1));
  });

  it("never forgets a refund id whose entry left the window", async () => {
    const a = uid();
    await grant(a, { grant_id: "p1", amount: 1000, type: "purchased", cost_basis: { amount: 1000, currency: "USD" } });
    const body = { refund_id: "rf1", amount: 10, reason: "customer asked" };
    expect((await call("POST", `/v1/accounts/${a}/grants/p1/refund`, body)).status).toBe(200);
    for (let i = 0; i < 12; i++) {
      expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: `d${i}`, amount: 1 })).status).toBe(200);
      await settle(a, TINY);
    }
    await compactAll(a, TINY);
    const refunded = await runInDurableObject(ledgerStubFor(a), (_i: AccountLedger, state) => {
      const sql = state.storage.sql;
      // Past the idempotency retention its record is pruned: only the ledger remembers the id.
      sql.exec("DELETE FROM idempotency WHERE scope = 'refund'");
      return {
        inWindow: sql.exec("SELECT count(*) AS n FROM entries WHERE kind = 'grant.refunded'").one().n,
        kept: sql.exec("SELECT count(*) AS n FROM compacted_refunds WHERE refund_id = 'rf1'").one().n,
      };
    });
    expect(refunded).toEqual({ inWindow: 0, kept: 1 });
    const again = await call("POST", `/v1/accounts/${a}/grants/p1/refund`, body);
    expect({ status: again.status, code: again.json.code }).toEqual({ status: 409, code: "idempotency_conflict" });
  });
});

describe("window triggers", () => {
  it("refuse deleting an entry above the floor, updating any, and moving the floor wrongly", async () => {
    const a = uid();
    await grant(a, { grant_id: "p1", amount: 1000 });
    for (let i = 0; i < 10; i++) {
      await call("POST", `/v1/accounts/${a}/debits`, { debit_id: `d${i}`, amount: 1 });
      await settle(a, TINY);
    }
    await compactAll(a, TINY);
    const results = await runInDurableObject(ledgerStubFor(a), async (inst: AccountLedger, state) => {
      const sql = state.storage.sql;
      // Written and checkpointed but not shipped: no await until the attempts below, so no alarm ships them.
      const ctx = { accountId: a, actor: "test:gateway", requestId: "t", globalPolicy: DEFAULT_POLICY };
      for (let i = 10; i < 14; i++) {
        const req = { id: `d${i}`, unit: "credits", amount: 1, metadata: null };
        const out = inst.debit(ctx, req, { key: req.id, bodyHash: req.id }) as Outcome;
        if (!out.ok) throw new Error(out.problem.detail);
      }
      const run = inst.compactNow(TINY); // its checkpoint is taken before its first await
      const attempt = (q: string, ...b: unknown[]) => {
        try {
          sql.exec(q, ...b);
          return "allowed";
        } catch (e) {
          return String(e).includes("immutable") || String(e).includes("floor") ? "refused" : String(e);
        }
      };
      const floor = Number(sql.exec("SELECT seq FROM window_floor").one().seq);
      const head = Number(sql.exec("SELECT MAX(seq) AS s FROM entries").one().s);
      const unshippedCp = Number(sql.exec("SELECT MAX(seq) AS s FROM checkpoints").one().s);
      const notCp = Number(
        sql
          .exec("SELECT MIN(seq) AS s FROM entries WHERE seq > ? AND seq NOT IN (SELECT seq FROM checkpoints)", floor)
          .one().s,
      );
      return {
        floorBelowHead: floor > 0 && floor < head,
        unshippedCheckpoint: unshippedCp === head,
        deleteAboveFloor: attempt("DELETE FROM entries WHERE seq = ?", floor + 1),
        deleteHead: attempt("DELETE FROM entries WHERE seq = ?", head),
        deleteAll: attempt("DELETE FROM entries"),
        update: attempt("UPDATE entries SET amount = 0 WHERE seq = ?", head),
        deleteMarkAbove: attempt("DELETE FROM lot_marks WHERE seq > ?", floor),
        floorBack: attempt("UPDATE window_floor SET seq = ?", floor - 1),
        floorNotCheckpoint: attempt("UPDATE window_floor SET seq = ?", notCp),
        floorUnshipped: attempt("UPDATE window_floor SET seq = ?", unshippedCp),
        deleteCheckpoint: attempt("DELETE FROM checkpoints"),
        entriesLeft: Number(sql.exec("SELECT count(*) AS n FROM entries").one().n) === head - floor,
        ran: (await run).checkpoint === head,
      };
    });
    expect(results).toEqual({
      floorBelowHead: true,
      unshippedCheckpoint: true,
      deleteAboveFloor: "refused",
      deleteHead: "refused",
      deleteAll: "refused",
      update: "refused",
      deleteMarkAbove: "refused",
      floorBack: "refused",
      floorNotCheckpoint: "refused",
      floorUnshipped: "refused",
      deleteCheckpoint: "refused",
      entriesLeft: true,
      ran: true,
    });
  });

  it("an object from before the window gets the floor-aware trigger, and it still refuses", async () => {
    const a = uid();
    await grant(a, { grant_id: "p1", amount: 10 });
    const out = await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TRIGGER entries_no_delete");
      sql.exec(`CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END`);
      new (inst.constructor as new (s: DurableObjectState, e: Env) => AccountLedger)(state, env);
      const text = String(sql.exec("SELECT sql FROM sqlite_master WHERE name = 'entries_no_delete'").one().sql);
      let refused = false;
      try {
        sql.exec("DELETE FROM entries WHERE seq = 1");
      } catch {
        refused = true;
      }
      return { floorAware: text.includes("window_floor"), refused };
    });
    expect(out).toEqual({ floorAware: true, refused: true });
  });
});

async function ledgerD1(a: string): Promise<any[]> {
  const { ledgerDb } = await import("../../src/db/shards");
  const { results } = await ledgerDb(env, a)
    .prepare("SELECT seq, hash FROM ledger_entries WHERE account_id = ? ORDER BY seq")
    .bind(a)
    .all();
  return results;
}

describe("grants as_of", () => {
  it("lists each grant as it stood, and refuses a future, malformed or awaiting_payment as_of", async () => {
    const a = uid();
    await grant(a, { grant_id: "g1", amount: 100 });
    const t1 = await doNow(a);
    await advanceClock(a, 1000);
    expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 30 })).status).toBe(200);
    await grant(a, { grant_id: "g2", amount: 5 });
    const then = await call("GET", `/v1/accounts/${a}/grants?as_of=${iso(t1)}`);
    expect(then.status).toBe(200);
    // Worked by hand: at t1 only g1 existed, untouched; g2 came later.
    expect(then.json.grants.map((g: any) => [g.grant_id, g.remaining, g.held, g.status])).toEqual([
      ["g1", 100, 0, "active"],
    ]);
    const now = await call("GET", `/v1/accounts/${a}/grants`);
    expect(now.json.grants.map((g: any) => [g.grant_id, g.remaining])).toEqual([
      ["g1", 70],
      ["g2", 5],
    ]);
    const future = await call("GET", `/v1/accounts/${a}/grants?as_of=${iso(Date.now() + 86_400_000)}`);
    expect({ status: future.status, code: future.json.code }).toEqual({ status: 400, code: "invalid_request" });
    const bad = await call("GET", `/v1/accounts/${a}/grants?as_of=yesterday`);
    expect({ status: bad.status, code: bad.json.code }).toEqual({ status: 400, code: "invalid_request" });
    const awaiting = await call("GET", `/v1/accounts/${a}/grants?status=awaiting_payment&as_of=${iso(t1)}`);
    expect({ status: awaiting.status, code: awaiting.json.code }).toEqual({ status: 400, code: "invalid_request" });
  });
});
