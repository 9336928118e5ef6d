/**
 * Reconciliation through the real scheduled handler: a clean system reports
 * no drift; an entry removed from D1 (the append-only trigger dropped in this
 * test database only) and a forged extra row are both found, recorded,
 * listed at /v1/reconciliation/runs and alerted — and never repaired. An
 * account that could not be checked is retried by the next run; a heads row
 * that commits late is still read; the rolling audit re-verifies the chain
 * below the checkpoint.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { ledgerDb } from "../../src/db/shards";
import { call, debit, grant, ledgerEntries, ledgerStubFor, uid } from "./helpers";
import { alertsFor, drain, runCron } from "./jobs-helpers";

/** Runs `tamper` on this test database with one of its ledger triggers dropped, then puts the trigger back as it was. */
async function withoutTrigger(db: D1Database, name: string, tamper: (db: D1Database) => Promise<unknown>) {
  const sql = await db
    .prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?")
    .bind(name)
    .first<string>("sql");
  if (!sql) throw new Error(`no trigger ${name}`);
  await db.prepare(`DROP TRIGGER ${name}`).run();
  try {
    await tamper(db);
  } finally {
    await db.prepare(sql).run();
  }
}

async function latestRun() {
  const list = await call("GET", "/v1/reconciliation/runs?limit=1");
  expect(list.status).toBe(200);
  const run = list.json.runs[0];
  const detail = await call("GET", `/v1/reconciliation/runs/${run.id}`);
  expect(detail.status).toBe(200);
  return detail.json as { run: any; drifts: any[] };
}

async function setCronState(key: string, value: unknown) {
  await env.DB.prepare(
    `INSERT INTO cron_state (key, value, updated_at_ms) VALUES (?, ?, 0)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  )
    .bind(key, JSON.stringify(value))
    .run();
}

/**
 * Keeps the next run's rolling passes (the audit, and the re-drive probe that
 * drains and so re-touches accounts) away from every account, or starts the
 * audit at `auditAfter`: an account is then checked only for the reason a test gives it.
 */
async function pinRollingCursors(auditAfter = "~") {
  await setCronState("reconcile.audit_cursor", auditAfter);
  await setCronState("redrive.probe_cursor", "~");
}

async function checkpointOf(accountId: string) {
  return env.DB.prepare(
    "SELECT verified_seq, behind, audit_seq, checked_at_ms FROM reconciliation_checkpoints WHERE account_id = ?",
  )
    .bind(accountId)
    .first<{ verified_seq: number; behind: number; audit_seq: number; checked_at_ms: number }>();
}

/** Makes the account's DO unable to ship (its D1 batches fail) until `heal` is called. */
async function breakOutbox(accountId: string) {
  const stub = ledgerStubFor(accountId);
  await runInDurableObject(stub, (inst: AccountLedger) => {
    inst.shipVia = (real) =>
      new Proxy(real, {
        get(target, prop, receiver) {
          if (prop === "batch") return async () => Promise.reject(new Error("D1_ERROR: injected outage"));
          return Reflect.get(target, prop, receiver);
        },
      });
  });
  return {
    /** Restores D1 and drops the retry alarm, so nothing ships until the cron asks. */
    heal: () =>
      runInDurableObject(stub, async (inst: AccountLedger, state) => {
        inst.shipVia = null;
        await state.storage.deleteAlarm();
      }),
  };
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
    await withoutTrigger(ledgerDb(env, removed), "ledger_entries_no_delete", (db) =>
      db.prepare("DELETE FROM ledger_entries WHERE account_id = ? AND seq = 3").bind(removed).run(),
    );
    // And forge a row after another account's head, with a hash that is not the chain's.
    const head = await ledgerDb(env, forged)
      .prepare("SELECT seq, hash, unit, grant_id FROM ledger_entries WHERE account_id = ? ORDER BY seq DESC LIMIT 1")
      .bind(forged)
      .first<{ seq: number; hash: string; unit: string; grant_id: string }>();
    await ledgerDb(env, forged)
      .prepare(
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
    const d1Seqs = await ledgerDb(env, removed)
      .prepare("SELECT seq FROM ledger_entries WHERE account_id = ? ORDER BY seq")
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
      inst.shipVia = (real) =>
        new Proxy(real, {
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
      inst.shipVia = null;
    });
  });

  it("an account that lagged is retried by the next run, even if nothing touches it again", async () => {
    const a = await busyAccount();
    const outage = await breakOutbox(a);
    expect((await debit(a, 1)).status).toBe(200);
    // Its heads row was last touched 10 minutes ago, just after the watermark: this run reads it, later ones would not.
    const stamped = Date.now() - 10 * 60_000;
    await env.DB.prepare("UPDATE account_heads SET updated_at_ms = ? WHERE account_id = ?").bind(stamped, a).run();
    await setCronState("reconcile.watermark", { ms: stamped - 1, id: "" });
    await pinRollingCursors();
    await runCron(Date.now());
    const first = await latestRun();
    expect(first.run.accounts_lagging).toBeGreaterThanOrEqual(1);
    expect(await checkpointOf(a)).toMatchObject({ behind: 1 });

    await outage.heal();
    await pinRollingCursors();
    await runCron(Date.now());
    const second = await latestRun();
    expect(second.drifts.filter((d) => d.account_id === a)).toEqual([]);
    // Drained and checked up to the DO's head (7 entries, then the debit made during the outage).
    expect(await checkpointOf(a)).toMatchObject({ verified_seq: 8, behind: 0 });
    expect(await alertsFor(a, "reconciliation.drift")).toEqual([]);
  });

  it("a heads row that commits late, stamped before rows a run already read, is still checked", async () => {
    const late = await busyAccount();
    // Hide its heads row, as if the shipper's D1 commit had not landed yet.
    const row = await env.DB.prepare("SELECT * FROM account_heads WHERE account_id = ?")
      .bind(late)
      .first<Record<string, string | number | null>>();
    await env.DB.prepare("DELETE FROM account_heads WHERE account_id = ?").bind(late).run();
    const other = await busyAccount();
    await pinRollingCursors();
    await runCron(Date.now());
    expect(await checkpointOf(other)).toMatchObject({ verified_seq: 7 });
    expect(await checkpointOf(late)).toBeNull();

    // The slow commit lands, stamped before the row the run read last.
    const otherAt = await env.DB.prepare("SELECT updated_at_ms FROM account_heads WHERE account_id = ?")
      .bind(other)
      .first<number>("updated_at_ms");
    await env.DB.prepare(
      `INSERT INTO account_heads (account_id, shipped_seq, head_hash, updated_at_ms, known_seq, next_hold_deadline_ms)
       VALUES (?, ?, ?, ?, ?, ?)`,
    )
      .bind(late, row!.shipped_seq, row!.head_hash, Number(otherAt) - 1, row!.known_seq, row!.next_hold_deadline_ms)
      .run();
    await pinRollingCursors();
    await runCron(Date.now());
    expect(await checkpointOf(late)).toMatchObject({ verified_seq: 7, behind: 0 });
  });

  it("the rolling audit re-verifies the D1 chain from seq 1 and finds an edit below the checkpoint", async () => {
    const a = await busyAccount();
    await pinRollingCursors();
    await runCron(Date.now());
    expect(await checkpointOf(a)).toMatchObject({ verified_seq: 7, behind: 0 });

    // Tamper with this test database only: change seq 2's reason. Sums, count and head are all unchanged.
    await withoutTrigger(ledgerDb(env, a), "ledger_entries_no_update", (db) =>
      db.prepare("UPDATE ledger_entries SET reason = 'edited' WHERE account_id = ? AND seq = 2").bind(a).run(),
    );

    // The audit cursor reaches the account (its id is the first after this one).
    await pinRollingCursors(a.slice(0, -1));
    await runCron(Date.now());
    const { drifts } = await latestRun();
    const found = drifts.filter((d) => d.account_id === a);
    expect(found.map((d) => d.kind)).toEqual(["chain"]);
    expect(found[0].detail).toMatch(/^audit: D1 chain breaks at seq 2: hash does not match/);
    expect((await alertsFor(a, "reconciliation.drift"))[0]!.data).toMatchObject({ kinds: "chain" });
    // Reported, never repaired: D1 still holds the edit; the pass starts again next time.
    const reason = await ledgerDb(env, a)
      .prepare("SELECT reason FROM ledger_entries WHERE account_id = ? AND seq = 2")
      .bind(a)
      .first<string>("reason");
    expect(reason).toBe("edited");
    expect(await checkpointOf(a)).toMatchObject({ verified_seq: 7, audit_seq: 0, behind: 0 });
  });
});
