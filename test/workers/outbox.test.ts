import { createExecutionContext, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { ledgerDb } from "../../src/db/shards";
import worker from "../../src/index";
import { balance, call, debit, grant, ledgerEntries, ledgerStubFor, uid } from "./helpers";
import { d1Entries, failingD1 } from "./outbox-helpers";

/** A D1 that is down: every query fails. */
function downD1(real: D1Database): D1Database {
  const fail = async () => {
    throw new Error("D1_ERROR: injected outage");
  };
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === "prepare") {
        return () => ({
          bind: () => ({ first: fail, all: fail, run: fail, raw: fail }),
          first: fail,
          all: fail,
          run: fail,
          raw: fail,
        });
      }
      if (prop === "batch" || prop === "exec") return fail;
      return Reflect.get(target, prop, receiver);
    },
  });
}

describe("outbox to D1", () => {
  it("debits succeed while D1 writes fail; once D1 recovers it holds exactly the DO's entries", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const stub = ledgerStubFor(a);
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.shipVia = failingD1;
    });
    for (let i = 0; i < 30; i++) expect((await debit(a, 2)).status).toBe(200);
    // The alarm tries, fails, and keeps everything for the next try.
    await runDurableObjectAlarm(stub);
    const during = await runInDurableObject(stub, (inst: AccountLedger) => inst.pendingOutbox());
    expect(during).toBeGreaterThanOrEqual(31);
    expect((await balance(a)).available).toBe(40);
    const shippedDuring = await d1Entries(a);
    expect(shippedDuring.length).toBeLessThan(31);

    // D1 recovers: the outbox drains and D1 equals the DO, entry for entry.
    await runInDurableObject(stub, async (inst: AccountLedger) => {
      inst.shipVia = null;
      await inst.drain();
    });
    const doEntries = await ledgerEntries(a);
    const shipped = await d1Entries(a);
    expect(shipped.map((r: any) => [r.entry_id, r.seq, r.kind, r.amount, r.held_delta, r.prev_hash, r.hash])).toEqual(
      doEntries.map((e) => [e.entry_id, e.seq, e.kind, e.amount, e.held_delta, e.prev_hash, e.hash]),
    );
    const head = await env.DB.prepare("SELECT shipped_seq, head_hash FROM account_heads WHERE account_id = ?")
      .bind(a)
      .first();
    expect(head).toEqual({ shipped_seq: 31, head_hash: doEntries[30].hash });
  });

  it("shipping the same batch twice writes nothing twice (entries conflict on their entry id)", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    await debit(a, 1);
    const stub = ledgerStubFor(a);
    await runInDurableObject(stub, async (inst: AccountLedger) => {
      await inst.drain();
    });
    const first = await d1Entries(a);
    // Re-ship every entry as if the outbox rows had survived a crash after D1 committed.
    const entries = await ledgerEntries(a);
    await runInDurableObject(stub, async (inst: AccountLedger, state) => {
      for (const e of entries) {
        state.storage.sql.exec("INSERT INTO outbox (topic, payload) VALUES ('entry', ?)", JSON.stringify(e));
      }
      await inst.drain();
    });
    expect(await d1Entries(a)).toEqual(first);
  });

  it("D1 refuses UPDATE and DELETE on ledger_entries; the DO refuses them on its entries", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const stub = ledgerStubFor(a);
    await runInDurableObject(stub, async (inst: AccountLedger) => {
      await inst.drain();
    });
    await expect(
      ledgerDb(env, a).prepare("UPDATE ledger_entries SET amount = 1 WHERE account_id = ?").bind(a).run(),
    ).rejects.toThrow(/append-only/);
    // A delete is refused unless an archive segment in R2 covers the row (migrations/0014_archive.sql).
    await expect(
      ledgerDb(env, a).prepare("DELETE FROM ledger_entries WHERE account_id = ?").bind(a).run(),
    ).rejects.toThrow(/only an archived entry leaves D1/);
    await runInDurableObject(stub, (_inst: AccountLedger, state) => {
      expect(() => state.storage.sql.exec("UPDATE entries SET amount = 1")).toThrow(/immutable/);
      expect(() => state.storage.sql.exec("DELETE FROM entries")).toThrow(/immutable/);
    });
    expect((await d1Entries(a)).length).toBe(1);
  });
});

describe("a D1 outage never blocks the gate", () => {
  it("a gateway key seen before keeps debiting while D1 is down; an unseen key gets 503 with retry-after", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const seen = (await call("POST", "/v1/api-keys", { name: "gw seen", role: "gateway" })).json.key;
    const unseen = (await call("POST", "/v1/api-keys", { name: "gw unseen", role: "gateway" })).json.key;
    const warm = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "warm", amount: 1 }, { token: seen });
    expect(warm.status).toBe(200);
    const outage = { ...env, DB: downD1(env.DB) };
    const send = (token: string, id: string) =>
      worker.fetch(
        new Request(`http://gate.test/v1/accounts/${a}/debits`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ debit_id: id, amount: 2 }),
        }),
        outage,
        createExecutionContext(),
      );
    const during = await send(seen, "during-outage");
    expect(during.status).toBe(200);
    expect(((await during.json()) as any).balance.available).toBe(7);
    const refused = await send(unseen, "unseen-key");
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(((await refused.json()) as any).code).toBe("overloaded");
    expect((await balance(a)).available).toBe(7);
  });
});
