/**
 * Issue 7, defect 4: a shipment never splits a DO transaction. Whole
 * transactions fill a shipment up to OUTBOX_BATCH rows; a larger one ships
 * alone, in one D1 batch. Each D1 batch is observed right after it commits,
 * so a transaction half in D1 at any moment is caught.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { OUTBOX_BATCH, SHIP_CHUNK_BYTES } from "../../src/account/outbox";
import { ledgerDb } from "../../src/db/shards";
import { debit, grant, ledgerStubFor, uid } from "./helpers";
import { drain } from "./jobs-helpers";
import { drainVia, failingD1, interceptBatch, outboxTxns, recordingD1, shipTo, uidOnShard } from "./outbox-helpers";

/** `n` lots of one credit each, shipped: a debit of k credits then writes k entries and k grant rows. */
async function unitLots(accountId: string, n: number, unit = "credits") {
  for (let i = 0; i < n; i++) await grant(accountId, { amount: 1, unit, priority: 10 });
}

/** Debit entries per transaction in D1 for the account. */
async function d1DebitsByTxn(accountId: string): Promise<Map<string, number>> {
  const rows = await ledgerDb(env, accountId)
    .prepare("SELECT txn_id, count(*) AS n FROM ledger_entries WHERE account_id = ? AND kind = 'debit' GROUP BY txn_id")
    .bind(accountId)
    .all<{ txn_id: string; n: number }>();
  return new Map(rows.results.map((r) => [r.txn_id, Number(r.n)]));
}

/** Depleted lots per unit in D1's grant index (a debit's grant rows ship with its entries). */
async function d1Depleted(accountId: string, unit: string): Promise<number> {
  const row = await env.DB.prepare(
    "SELECT count(*) AS n FROM grants WHERE account_id = ? AND unit = ? AND status = 'depleted'",
  )
    .bind(accountId, unit)
    .first<{ n: number }>();
  return Number(row?.n ?? 0);
}

/** What D1 held after each committed batch; `fail(call)` makes that call (1-based) fail instead. */
function observed<T>(look: () => Promise<T>, fail: (call: number) => boolean = () => false) {
  const seen: T[] = [];
  let calls = 0;
  const db = (real: D1Database) =>
    interceptBatch(real, async (statements, batch) => {
      calls++;
      if (fail(calls)) throw new Error("D1_ERROR: injected outage");
      const results = await batch(statements);
      seen.push(await look());
      return results;
    });
  return { db, seen, calls: () => calls };
}

describe("shipping never splits a transaction", () => {
  it("a 60-entry debit ships whole or not at all", async () => {
    const a = uidOnShard(0); // one database: a shipment is one D1 batch
    await unitLots(a, 60);
    await drain(a);
    await shipTo(a, failingD1);
    const res = await debit(a, 60);
    expect(res.status).toBe(200);
    expect(res.json.applied).toHaveLength(60);
    const [txn] = await outboxTxns(a);
    expect(txn?.n).toBeGreaterThan(OUTBOX_BATCH); // 60 entries and 60 grant rows

    // The first D1 batch fails, the next ones succeed.
    const watch = observed(
      async () => ({ entries: [...(await d1DebitsByTxn(a)).values()], depleted: await d1Depleted(a, "credits") }),
      (n) => n === 1,
    );
    await shipTo(a, watch.db);
    expect((await drainVia(a)).ok).toBe(false);
    expect(await d1DebitsByTxn(a)).toEqual(new Map());
    expect(await d1Depleted(a, "credits")).toBe(0);
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    // Every committed batch left all of it or none of it in D1, and one batch carried it.
    for (const s of watch.seen) expect([[], [60]]).toContainEqual(s.entries);
    for (const s of watch.seen) expect([0, 60]).toContain(s.depleted);
    expect(watch.seen).toEqual([{ entries: [60], depleted: 60 }]);
    expect(watch.calls()).toBe(2);
  });

  it("small transactions fill shipments of at most OUTBOX_BATCH rows without splitting any", async () => {
    const a = uidOnShard(0); // one database: a shipment is one D1 batch
    await unitLots(a, 80);
    await drain(a);
    await shipTo(a, failingD1);
    // Ten debits of 8 credits: 8 entries, 8 journal rows and 8 grant rows each, 240 rows in all.
    for (let i = 0; i < 10; i++) expect((await debit(a, 8)).status).toBe(200);
    const txns = await outboxTxns(a);
    expect(txns.map((t) => t.n)).toEqual(Array(10).fill(24));

    const watch = observed(async () => ({
      byTxn: await d1DebitsByTxn(a),
      depleted: await d1Depleted(a, "credits"),
    }));
    await shipTo(a, watch.db);
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    const whole = watch.seen.map((s) => {
      for (const n of s.byTxn.values()) expect(n).toBe(8);
      expect(s.depleted).toBe(s.byTxn.size * 8);
      return s.byTxn.size;
    });
    // Two transactions (48 rows) per shipment: a third would pass OUTBOX_BATCH.
    expect(whole).toEqual([2, 4, 6, 8, 10]);
  });

  it("a transaction larger than a batch ships alone, in one D1 batch, between its neighbours", async () => {
    const a = uidOnShard(0); // one database: a shipment is one D1 batch
    await unitLots(a, 60);
    await grant(a, { amount: 100, unit: "tokens" });
    await drain(a);
    await shipTo(a, failingD1);
    expect((await debit(a, 1, { unit: "tokens" })).status).toBe(200);
    const big = await debit(a, 60);
    expect(big.status).toBe(200);
    expect((await debit(a, 1, { unit: "tokens" })).status).toBe(200);
    const txns = await outboxTxns(a);
    // An entry and its journal row for each small one; 60 entries, 60 journal and 60 grant rows for the big one.
    expect(txns.map((t) => t.n)).toEqual([2, 180, 2]);

    const watch = observed(async () => ({
      tokens: [...(await d1DebitsByTxn(a)).entries()].filter(([, n]) => n === 1).length,
      big: [...(await d1DebitsByTxn(a)).values()].filter((n) => n !== 1),
    }));
    await shipTo(a, watch.db);
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    // The small one before it ships first (together they would pass a batch), then the big one alone, then the last.
    expect(watch.seen).toEqual([
      { tokens: 1, big: [] },
      { tokens: 1, big: [60] },
      { tokens: 2, big: [60] },
    ]);
  });
});

describe("a very large transaction stays inside D1's limits", () => {
  it("20 000 entries of one transaction ship in one D1 batch of statements D1 accepts", async () => {
    const a = uidOnShard(0); // one database: a shipment is one D1 batch
    await grant(a, { amount: 10 });
    await drain(a);
    const n = 20_000;
    const txnId = uid("txn_big");
    // Synthetic entries at seqs the DO never wrote (D1 only checks shape and uniqueness), queued as one transaction.
    await runInDurableObject(ledgerStubFor(a), (_inst: AccountLedger, state) => {
      state.storage.sql.exec(
        `WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
         INSERT INTO outbox (topic, payload, txn)
         SELECT 'entry', json_object('account_id', ?2, 'seq', 1000 + i, 'entry_id', ?3 || '.' || i, 'txn_id', ?3,
           'kind', 'debit', 'unit', 'credits', 'amount', -1, 'held_delta', 0, 'grant_id', 'lot-' || i,
           'credit_type', 'purchased', 'ref', 'bulk', 'actor', 'admin-token:admin', 'reason', 'a long enough reason ' || i,
           'effective_at', '2026-11-25T08:26:19.269Z', 'recorded_at', '2026-11-25T08:26:19.269Z',
           'prev_hash', printf('%064d', i - 1), 'hash', printf('%064d', i)), ?3
         FROM k`,
        n,
        a,
        txnId,
      );
    });
    const rec = recordingD1(env.DB);
    await shipTo(a, () => rec.db);
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    expect(rec.batches).toHaveLength(1);
    const shipped = rec.bound.filter((b) => b.sql.includes("json_each"));
    expect(shipped.length).toBeGreaterThan(1); // chunked
    expect(rec.batches[0]).toBeLessThanOrEqual(100);
    const encoder = new TextEncoder();
    for (const b of rec.bound) {
      expect(encoder.encode(b.sql).byteLength).toBeLessThan(100_000);
      expect(b.params.length).toBeLessThanOrEqual(100);
      for (const p of b.params) {
        if (typeof p === "string") expect(encoder.encode(p).byteLength).toBeLessThanOrEqual(SHIP_CHUNK_BYTES);
      }
    }
    const count = await env.DB.prepare("SELECT count(*) AS n FROM ledger_entries WHERE txn_id = ?")
      .bind(txnId)
      .first<{ n: number }>();
    expect(count?.n).toBe(n);
  });
});
