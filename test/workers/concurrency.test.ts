import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ledgerDb } from "../../src/db/shards";
import { verifyChain } from "../../src/ledger";
import { balance, call, grant, ledgerEntries, ledgerStubFor, uid } from "./helpers";

describe("no overspend under concurrency", () => {
  it("500 concurrent 1-credit debits against 300 available: exactly 300 succeed", async () => {
    const a = uid();
    await grant(a, { grant_id: "g1", amount: 120, type: "promotional" });
    await grant(a, { grant_id: "g2", amount: 180, type: "purchased" });
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        call("POST", `/v1/accounts/${a}/debits`, { debit_id: `d-${i}`, amount: 1 }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(300);
    expect(statuses.filter((s) => s === 402)).toHaveLength(200);
    for (const r of results.filter((x) => x.status === 402)) {
      expect(r.json).toMatchObject({ code: "insufficient_credits", available: 0, requested: 1 });
    }
    const b = await balance(a);
    expect(b.available).toBe(0);
    expect(b.held).toBe(0);

    // The ledger is consistent: 2 grants + 300 debit entries, gapless, chained, summing to 0.
    const entries = await ledgerEntries(a);
    expect(entries).toHaveLength(302);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 302 }, (_, i) => i + 1));
    expect(verifyChain(entries)).toBeNull();
    expect(entries.reduce((s, e) => s + e.amount, 0)).toBe(0);
    const debitedRefs = new Set(entries.filter((e) => e.kind === "debit").map((e) => e.ref));
    const okIds = results.flatMap((r, i) => (r.status === 200 ? [`d-${i}`] : []));
    expect(debitedRefs).toEqual(new Set(okIds));

    // And D1, once drained, holds exactly the same entries.
    await runDurableObjectAlarm(ledgerStubFor(a));
    const stub = ledgerStubFor(a) as any;
    expect((await stub.drain()).pending).toBe(0);
    const rows = await ledgerDb(env, a)
      .prepare("SELECT seq, hash FROM ledger_entries WHERE account_id = ? ORDER BY seq")
      .bind(a)
      .all();
    expect(rows.results.map((r: any) => [r.seq, r.hash])).toEqual(entries.map((e) => [e.seq, e.hash]));
  });

  it("duplicate debit ids in flight are serialized: one effect, every caller sees the first result", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const same = await Promise.all(
      Array.from({ length: 20 }, () => call("POST", `/v1/accounts/${a}/debits`, { debit_id: "dup", amount: 3 })),
    );
    expect(same.every((r) => r.status === 200)).toBe(true);
    expect(new Set(same.map((r) => r.text)).size).toBe(1);
    expect(same.filter((r) => r.headers.get("idempotent-replayed") === "true")).toHaveLength(19);
    expect((await balance(a)).available).toBe(7);
  });
});
