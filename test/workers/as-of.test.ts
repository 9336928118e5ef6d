/**
 * Issue 7, defect 9: `balance?as_of` (gateway keys may call it) answers from
 * lot marks, one probe per lot, instead of replaying the whole history; and
 * it answers exactly what the entries recorded by then replay to.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import type { Outcome } from "../../src/account/types";
import { DEFAULT_POLICY } from "../../src/ledger";
import { advanceClock, call, grant, ledgerStubFor, uid } from "./helpers";

/** Σ amount − Σ held_delta of the export's entries recorded at or before `t`, per lot: what `available` was. */
function replayAvailable(entries: any[], t: number, lots: Map<string, { effective: number; expires: number | null }>) {
  const sums = new Map<string, { remaining: number; held: number }>();
  for (const e of entries) {
    if (Date.parse(e.recorded_at) > t || e.grant_id === null) continue;
    const s = sums.get(e.grant_id) ?? { remaining: 0, held: 0 };
    s.remaining += e.amount;
    s.held += e.held_delta;
    sums.set(e.grant_id, s);
  }
  let available = 0;
  let held = 0;
  for (const [id, s] of sums) {
    const lot = lots.get(id);
    held += s.held;
    if (lot && lot.effective <= t && (lot.expires === null || t < lot.expires)) available += s.remaining - s.held;
  }
  return { available, held };
}

async function exportAll(accountId: string): Promise<any[]> {
  const out: any[] = [];
  let after = 0;
  for (let page = 0; page < 100; page++) {
    const res = await call("GET", `/v1/accounts/${accountId}/ledger?after_seq=${after}&limit=1000`);
    out.push(...res.json.entries);
    if (res.json.next_after_seq === null) return out;
    after = res.json.next_after_seq;
  }
  throw new Error("export did not end");
}

describe("balance as_of", () => {
  it("reads a number of rows that follows the lots, not the history", async () => {
    const a = uid();
    await grant(a, { grant_id: "g1", amount: 5_000 });
    await grant(a, { grant_id: "g2", amount: 5_000, type: "promotional" });
    const stub = ledgerStubFor(a);
    const middle = await runInDurableObject(stub, (inst: AccountLedger) => {
      const ctx = { accountId: a, actor: "test:gateway", requestId: "seed", globalPolicy: DEFAULT_POLICY };
      let mid = 0;
      for (let i = 0; i < 3_000; i++) {
        if (i === 1_500) {
          inst.clock.offsetMs += 60_000;
          mid = Date.now() + inst.clock.offsetMs - 30_000;
        }
        const req = { id: `d${i}`, unit: "credits", amount: 1, metadata: null };
        // An account without a budget debits synchronously (budget.ts draws only for budgeted children).
        const out = inst.debit(ctx, req, { key: req.id, bodyHash: req.id }) as Outcome;
        if (!out.ok) throw new Error(out.problem.detail);
      }
      inst.clock.offsetMs += 60_000;
      return mid;
    });

    const rowsRead = await runInDurableObject(stub, async (inst: AccountLedger) => {
      const sql = (inst as unknown as { core: { sql: SqlStorage } }).core.sql;
      const exec = sql.exec.bind(sql);
      const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
      sql.exec = ((query: string, ...bindings: unknown[]) => {
        const cursor = exec(query, ...bindings);
        cursors.push(cursor);
        return cursor;
      }) as typeof sql.exec;
      try {
        const ctx = { accountId: a, actor: "test:gateway", requestId: "r", globalPolicy: DEFAULT_POLICY };
        const out = await inst.balance(ctx, "credits", middle);
        if (!out.ok) throw new Error(out.problem.detail);
        expect((out.body as { available: number }).available).toBe(10_000 - 1_500);
      } finally {
        sql.exec = exec;
      }
      return cursors.reduce((n, c) => n + c.rowsRead, 0);
    });
    // Two lots: a few rows per lot, whatever the 3 002 entries behind them.
    expect(rowsRead).toBeGreaterThan(0);
    expect(rowsRead).toBeLessThan(50);
  });

  it("answers what the export's entries replay to, at every point in time", async () => {
    const a = uid();
    const day = 86_400_000;
    const now = Date.now();
    await grant(a, { grant_id: "p1", amount: 100, type: "purchased" });
    await grant(a, { grant_id: "x1", amount: 50, type: "promotional", expires_at: new Date(now + day).toISOString() });
    const times: number[] = [];
    const step = async (ms: number) => {
      await advanceClock(a, ms);
      const res = await call("GET", `/v1/accounts/${a}/balance`);
      times.push(Date.parse(res.json.as_of));
    };
    await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 30 });
    await step(1_000);
    await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h1", amount: 40, ttl_seconds: 600 });
    await step(1_000);
    await call("POST", `/v1/accounts/${a}/holds/h1/capture`, { amount: 15 });
    await step(1_000);
    await grant(a, { grant_id: "c1", amount: 7, type: "compensatory", reason: "outage" });
    await call("POST", `/v1/accounts/${a}/grants/p1/void`, { reason: "refund" });
    await step(2 * day);
    await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d2", amount: 2 });
    await step(1_000);

    const entries = await exportAll(a);
    const grants = (await call("GET", `/v1/accounts/${a}/grants?limit=1000`)).json.grants as any[];
    const lots = new Map(
      grants.map((g) => [
        g.grant_id,
        { effective: Date.parse(g.effective_at), expires: g.expires_at ? Date.parse(g.expires_at) : null },
      ]),
    );
    const first = Date.parse(entries[0].recorded_at);
    const probes = [first - 1, first, ...times, ...entries.map((e) => Date.parse(e.recorded_at) + 1)];
    for (const t of probes) {
      const res = await call("GET", `/v1/accounts/${a}/balance?as_of=${new Date(t).toISOString()}`);
      expect(res.status).toBe(200);
      const want = replayAvailable(entries, t, lots);
      expect({ t, available: res.json.available, held: res.json.held }).toEqual({ t, ...want });
    }
  });
});
