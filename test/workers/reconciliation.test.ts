/**
 * Reconciliation through the real scheduled handler: a clean system reports
 * no drift; an entry removed from D1 (the append-only trigger dropped in this
 * test database only) and a forged extra row are both found, recorded,
 * listed at /v1/reconciliation/runs and alerted — and never repaired.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { call, debit, grant, ledgerEntries, ledgerStubFor, uid } from "./helpers";
import { alertsFor, drain, runCron } from "./jobs-helpers";

async function latestRun() {
  const list = await call("GET", "/v1/reconciliation/runs?limit=1");
  expect(list.status).toBe(200);
  const run = list.json.runs[0];
  const detail = await call("GET", `/v1/reconciliation/runs/${run.id}`);
  expect(detail.status).toBe(200);
  return detail.json as { run: any; drifts: any[] };
}

async function busyAccount() {
  const a = uid();
  await grant(a, { amount: 1000 });
  await grant(a, { amount: 300, type: "promotional", unit: "tokens" });
  for (let i = 0; i < 4; i++) expect((await debit(a, 7)).status).toBe(200);
  const hold = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: uid("h"), amount: 50 });
  expect(hold.status).toBe(201);
  await drain(a);
  return a;
}

describe("reconciliation", () => {
  it("a clean system reports no drift", async () => {
    const accounts = [await busyAccount(), await busyAccount(), await busyAccount()];
    await runCron(Date.now());
    const { run, drifts } = await latestRun();
    expect(run.accounts_checked).toBeGreaterThanOrEqual(3);
    expect(run.drifts).toBe(0);
    expect(run.entries_verified).toBeGreaterThanOrEqual(3 * 7);
    expect(drifts).toEqual([]);
    for (const a of accounts) expect(await alertsFor(a, "reconciliation.drift")).toEqual([]);
    // Nothing new since: the next run has nothing touched to check but still records itself.
    await runCron(Date.now());
    const again = await latestRun();
    expect(again.run.id).not.toBe(run.id);
    expect(again.run.drifts).toBe(0);
  });

  it("finds an entry removed from D1 and a forged row, reports them, and repairs nothing", async () => {
    const removed = await busyAccount();
    const forged = await busyAccount();
    const clean = await busyAccount();

    // Tamper with this test database only: remove seq 3 of one account.
    await env.DB.exec("DROP TRIGGER ledger_entries_no_delete");
    await env.DB.prepare("DELETE FROM ledger_entries WHERE account_id = ? AND seq = 3").bind(removed).run();
    await env.DB.exec(
      "CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END",
    );
    // And forge a row after another account's head, with a hash that is not the chain's.
    const head = await env.DB.prepare(
      "SELECT seq, hash, unit, grant_id FROM ledger_entries WHERE account_id = ? ORDER BY seq DESC LIMIT 1",
    )
      .bind(forged)
      .first<{ seq: number; hash: string; unit: string; grant_id: string }>();
    await env.DB.prepare(
      `INSERT INTO ledger_entries (entry_id, account_id, seq, txn_id, kind, unit, amount, held_delta, grant_id,
        credit_type, ref, actor, reason, effective_at_ms, recorded_at_ms, prev_hash, hash)
       VALUES (?, ?, ?, 'txn_forged', 'debit', ?, -1, 0, ?, 'purchased', 'forged', 'nobody', NULL, ?, ?, ?, ?)`,
    )
      .bind(
        `forged-${forged}`,
        forged,
        head!.seq + 1,
        head!.unit,
        head!.grant_id,
        Date.now(),
        Date.now(),
        head!.hash,
        "f".repeat(64),
      )
      .run();

    await runCron(Date.now());
    const { run, drifts } = await latestRun();
    expect(run.drifts).toBeGreaterThan(0);
    const byAccount = (a: string) =>
      drifts
        .filter((d) => d.account_id === a)
        .map((d) => d.kind)
        .sort();
    expect(byAccount(removed)).toEqual(["balance", "chain", "seq_gap"]);
    expect(byAccount(forged)).toEqual(["d1_ahead"]);
    expect(byAccount(clean)).toEqual([]);
    const gap = drifts.find((d) => d.account_id === removed && d.kind === "seq_gap");
    expect(gap).toMatchObject({ expected: "7", actual: "6" });

    // Each drifted account raised one reconciliation.drift alert, listed at /v1/alerts.
    const listed = await call("GET", "/v1/alerts?type=reconciliation.drift");
    expect(listed.json.alerts.map((x: any) => x.account_id).sort()).toEqual([forged, removed].sort());
    expect((await alertsFor(removed, "reconciliation.drift"))[0]!.data).toMatchObject({
      kinds: "balance,chain,seq_gap",
    });

    // Never a silent fix: D1 still lacks the row, the DO still has it, and the forged row is still there.
    const d1Seqs = await env.DB.prepare("SELECT seq FROM ledger_entries WHERE account_id = ? ORDER BY seq")
      .bind(removed)
      .all<{ seq: number }>();
    expect(d1Seqs.results.map((r) => r.seq)).toEqual([1, 2, 4, 5, 6, 7]);
    expect((await ledgerEntries(removed)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);

    // A persisting drift is reported by the next run that checks the account, and alerted once a day.
    await call("POST", `/v1/accounts/${removed}/debits`, { debit_id: uid("d"), amount: 1 });
    await drain(removed);
    await runCron(Date.now());
    const next = await latestRun();
    expect(next.drifts.filter((d) => d.account_id === removed).length).toBeGreaterThan(0);
    expect(await alertsFor(removed, "reconciliation.drift")).toHaveLength(1);
  });

  it("an account whose outbox cannot ship is lagging, not drifted", async () => {
    const a = await busyAccount();
    const stub = ledgerStubFor(a);
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.d1 = new Proxy(env.DB, {
        get(target, prop, receiver) {
          if (prop === "batch") return async () => Promise.reject(new Error("D1_ERROR: injected outage"));
          return Reflect.get(target, prop, receiver);
        },
      });
    });
    expect((await debit(a, 1)).status).toBe(200);
    // Touch the account in D1's heads so the next run picks it up, as a partial ship would.
    await env.DB.prepare("UPDATE account_heads SET updated_at_ms = ? WHERE account_id = ?")
      .bind(Date.now() + 1, a)
      .run();
    await runCron(Date.now());
    const { run, drifts } = await latestRun();
    expect(run.accounts_lagging).toBeGreaterThanOrEqual(1);
    expect(drifts.filter((d) => d.account_id === a)).toEqual([]);
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.d1 = env.DB;
    });
  });
});
