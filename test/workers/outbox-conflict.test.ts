/**
 * Issue 7, defect 3: D1 must never drop an entry silently. Entries conflict
 * only on entry_id; when D1 holds one of the shipment's seqs under another
 * entry id, the whole shipment fails, the outbox keeps its rows, and one
 * reconciliation.drift alert is recorded and fanned out, however often the
 * shipment is retried.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { ledgerDb } from "../../src/db/shards";
import { call, debit, grant, ledgerEntries, ledgerStubFor, uid } from "./helpers";
import { alertsFor, drain } from "./jobs-helpers";
import { d1Entries, drainVia, failingD1, logLines, shipTo } from "./outbox-helpers";

/** Writes a row into D1 ledger_entries that the DO never wrote: `seq` taken by `entryId`. */
async function plant(accountId: string, seq: number, entryId: string) {
  await ledgerDb(env, accountId)
    .prepare(
      `INSERT INTO ledger_entries (entry_id, account_id, seq, txn_id, kind, unit, amount, held_delta, grant_id,
      credit_type, ref, actor, reason, effective_at_ms, recorded_at_ms, prev_hash, hash)
     VALUES (?, ?, ?, 'txn_forged', 'debit', 'credits', -1, 0, NULL, NULL, NULL, 'forger', NULL, 0, 0, ?, ?)`,
    )
    .bind(entryId, accountId, seq, "0".repeat(64), "f".repeat(64))
    .run();
}

describe("an entry D1 holds under another id at the same seq", () => {
  afterEach(() => vi.restoreAllMocks());

  it("fails the whole shipment, keeps the outbox, and raises one dispatched reconciliation.drift alert", async () => {
    const hook = await call("POST", "/v1/webhooks", {
      url: `https://hooks.example.test/hooks/${uid("hook")}`,
      event_types: ["reconciliation.drift"],
    });
    expect(hook.status).toBe(201);
    const a = uid();
    await grant(a, { amount: 100 });
    await drain(a); // seq 1 is in D1
    // Two debits wait in the outbox (seq 2 and 3, two transactions, one shipment).
    await shipTo(a, failingD1);
    expect((await debit(a, 1)).status).toBe(200);
    expect((await debit(a, 1)).status).toBe(200);
    const forged = uid("forged");
    await plant(a, 3, forged);

    const spy = vi.spyOn(console, "log");
    await shipTo(a, (real) => real);
    const pendingBefore = await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => inst.pendingOutbox());
    const first = await drainVia(a);
    expect(first).toEqual({ ok: false, pending: pendingBefore });
    // No half shipment: seq 2 (which had no clash) is not in D1 either.
    expect((await d1Entries(a)).map((e) => [e.seq, e.entry_id])).toEqual([
      [1, (await ledgerEntries(a))[0].entry_id],
      [3, forged],
    ]);

    const alerts = await alertsFor(a, "reconciliation.drift");
    expect(alerts).toHaveLength(1);
    const doSeq3 = (await ledgerEntries(a)).find((e) => e.seq === 3);
    expect(alerts[0]!.data).toMatchObject({
      kinds: "seq_conflict",
      seq: 3,
      d1_entry_id: forged,
      entry_id: doSeq3.entry_id,
    });
    const fanned = await env.DB.prepare(
      `SELECT a.dispatched_at_ms, d.id AS delivery_id FROM alerts a JOIN webhook_deliveries d ON d.alert_id = a.id
       WHERE a.id = ? AND d.webhook_id = ?`,
    )
      .bind(alerts[0]!.id, hook.json.id)
      .first<{ dispatched_at_ms: number | null; delivery_id: string }>();
    expect(fanned?.dispatched_at_ms).not.toBeNull();
    expect(fanned?.delivery_id).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(logLines(spy, "outbox.conflict")[0]).toMatchObject({
      account_id: a,
      code: "ledger_conflict",
      seq: 3,
      d1_entry_id: forged,
      alert_id: alerts[0]!.id,
    });

    // The alarm retries with backoff; every retry finds the same clash and raises nothing new.
    expect((await debit(a, 1)).status).toBe(200);
    expect(await runDurableObjectAlarm(ledgerStubFor(a))).toBe(true);
    const retry = logLines(spy, "outbox.retry").find((l) => l.account_id === a);
    expect(retry).toMatchObject({ code: "ledger_conflict", backoff_ms: expect.any(Number) });
    const nextAlarm = await runInDurableObject(ledgerStubFor(a), (_i: AccountLedger, state) =>
      state.storage.getAlarm(),
    );
    expect(nextAlarm).not.toBeNull();
    expect((await drainVia(a)).ok).toBe(false);
    expect(await alertsFor(a, "reconciliation.drift")).toHaveLength(1);
    expect((await d1Entries(a)).map((e) => e.seq)).toEqual([1, 3]);
    await call("DELETE", `/v1/webhooks/${hook.json.id}`);
  });

  it("the same entry shipped again is still absorbed by its entry id", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    await debit(a, 1);
    await drain(a);
    const before = await d1Entries(a);
    const entries = await ledgerEntries(a);
    await runInDurableObject(ledgerStubFor(a), async (inst: AccountLedger, state) => {
      for (const e of entries) {
        state.storage.sql.exec(
          "INSERT INTO outbox (topic, payload, txn) VALUES ('entry', ?, 'replay')",
          JSON.stringify(e),
        );
      }
      expect(await inst.drain()).toEqual({ ok: true, pending: 0 });
    });
    expect(await d1Entries(a)).toEqual(before);
    expect(await alertsFor(a, "reconciliation.drift")).toEqual([]);
  });
});
