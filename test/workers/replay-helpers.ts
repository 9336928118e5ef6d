/** Shared by the replay suites: a mixed history, the live object's whole storage, and a replay call. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { AccountLedger } from "../../src/account/account-do";
import { ledgerDb } from "../../src/db/shards";
import { DEFAULT_POLICY } from "../../src/ledger";
import { advanceClock, type CallOptions, call, grant, iso, ledgerStubFor, type Res, uid } from "./helpers";

export const replay = (a: string, body?: Record<string, unknown>, opts?: CallOptions): Promise<Res> =>
  call("POST", `/v1/accounts/${a}/replay`, body, opts);

async function ok(res: Promise<Res>, what: string): Promise<Res> {
  const r = await res;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`);
  return r;
}

/** Every entry of the account, through the JSON export. */
export async function exportAll(accountId: string): Promise<any[]> {
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

/** Every row of every table of the account's Durable Object, as sorted JSON lines per table. */
export async function dumpLive(accountId: string): Promise<Record<string, string[]>> {
  return runInDurableObject(ledgerStubFor(accountId), (_inst: AccountLedger, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf%' AND name NOT LIKE 'sqlite%'")
      .toArray()
      .map((r) => String(r.name));
    const out: Record<string, string[]> = {};
    for (const t of tables) {
      out[t] = sql
        .exec(`SELECT * FROM "${t}"`)
        .toArray()
        .map((r) => JSON.stringify(r))
        .sort();
    }
    return out;
  });
}

/** The account's rows in its D1 shard. */
export async function d1Rows(accountId: string): Promise<unknown[]> {
  const db = ledgerDb(env as unknown as Parameters<typeof ledgerDb>[0], accountId);
  const entries = await db
    .prepare("SELECT seq, hash FROM ledger_entries WHERE account_id = ? ORDER BY seq")
    .bind(accountId)
    .all();
  const heads = await db.prepare("SELECT * FROM account_heads WHERE account_id = ?").bind(accountId).all();
  return [entries.results, heads.results];
}

/** Runs the object's expiry job (what the alarm and the cron do). */
export async function expireNow(accountId: string): Promise<void> {
  await runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => {
    inst.expireAndSweep(DEFAULT_POLICY);
  });
}

/**
 * A history with every kind a replay folds: grants (one expiring, one
 * promotional), debits, a hold captured in part, a hold released, a void of
 * a partly held lot, an expiry and a transfer out and in. Returns the account
 * and the times between steps (the account's clock).
 */
export async function mixedHistory(): Promise<{ a: string; b: string; times: number[] }> {
  const a = uid("rp");
  const b = uid("rp-peer");
  const times: number[] = [];
  const mark = async () => {
    await advanceClock(a, 1_000);
    const now = await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => Date.now() + inst.clock.offsetMs);
    times.push(now);
  };
  await grant(a, { grant_id: "g-buy", amount: 1_000 });
  await grant(a, { grant_id: "g-promo", amount: 300, type: "promotional", expires_at: iso(Date.now() + 3_000) });
  await grant(a, { grant_id: "g-void", amount: 200, priority: 999 });
  await mark();
  await ok(call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("d"), amount: 120 }), "debit");
  await ok(call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h-cap", amount: 400, ttl_seconds: 3_600 }), "hold");
  await mark();
  await ok(call("POST", `/v1/accounts/${a}/holds/h-cap/capture`, { amount: 150 }), "capture");
  await ok(call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h-rel", amount: 900, ttl_seconds: 3_600 }), "hold 2");
  await mark();
  await ok(call("POST", `/v1/accounts/${a}/holds/h-rel/release`), "release");
  await ok(call("POST", `/v1/accounts/${a}/grants/g-void/void`, { reason: "test" }), "void");
  await advanceClock(a, 5_000); // g-promo's expiry passes
  await expireNow(a);
  await mark();
  await grant(b, { grant_id: "g-b", amount: 50 });
  await ok(
    call("POST", "/v1/transfers", { transfer_id: uid("t"), from_account: a, to_account: b, amount: 70 }),
    "transfer",
  );
  await ok(
    call("POST", "/v1/transfers", { transfer_id: uid("t"), from_account: b, to_account: a, amount: 20 }),
    "transfer back",
  );
  await mark();
  return { a, b, times };
}
