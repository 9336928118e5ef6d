/**
 * The ledger history on two D1 shards (the suites run LEDGER_SHARDS = 2): an
 * account's entries ship to its shard, everything else to DB, and a shipment
 * that lands on one database but not the other is finished by the retry,
 * nothing counted twice.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ledgerDb, ledgerDbs, shardDb } from "../../src/db/shards";
import { debit, grant, ledgerEntries } from "./helpers";
import { drainVia, interceptBatch, shipTo, uidOnShard } from "./outbox-helpers";

const count = async (db: D1Database, sql: string, accountId: string) =>
  Number((await db.prepare(sql).bind(accountId).first<{ n: number }>())?.n ?? 0);

const entriesIn = (db: D1Database, a: string) =>
  count(db, "SELECT count(*) AS n FROM ledger_entries WHERE account_id = ?", a);

describe("ledger shards", () => {
  it("an account on shard 1 keeps its entries there, and its directory, grants, journal and head in DB", async () => {
    const a = uidOnShard(1);
    expect(ledgerDb(env, a)).toBe(env.LEDGER_DB_1);
    await grant(a, { amount: 100, cost_basis: { amount: 1_000, currency: "USD" } });
    expect((await debit(a, 30)).status).toBe(200);
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    const served = await ledgerEntries(a);
    expect(served).toHaveLength(2);
    expect(await entriesIn(env.LEDGER_DB_1, a)).toBe(2);
    expect(await entriesIn(env.DB, a)).toBe(0);
    expect(await count(env.DB, "SELECT count(*) AS n FROM accounts WHERE account_id = ?", a)).toBe(1);
    expect(await count(env.DB, "SELECT count(*) AS n FROM grants WHERE account_id = ?", a)).toBe(1);
    expect(await count(env.DB, "SELECT count(*) AS n FROM journal WHERE account_id = ?", a)).toBe(2);
    const head = await env.DB.prepare("SELECT shipped_seq, head_hash FROM account_heads WHERE account_id = ?")
      .bind(a)
      .first<{ shipped_seq: number; head_hash: string }>();
    expect(head).toEqual({ shipped_seq: 2, head_hash: served[1].hash });
  });

  it("an account on shard 0 ships everything to DB", async () => {
    const a = uidOnShard(0);
    expect(ledgerDb(env, a)).toBe(env.DB);
    await grant(a, { amount: 10 });
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    expect(await entriesIn(env.DB, a)).toBe(1);
    expect(await entriesIn(env.LEDGER_DB_1, a)).toBe(0);
  });

  it("the shard commits, DB refuses: the outbox stays, shipped_seq waits, and the retry adds nothing twice", async () => {
    const a = uidOnShard(1);
    await grant(a, { amount: 100, cost_basis: { amount: 1_000, currency: "USD" } });
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    // DB fails every batch; the shard (a different database) still takes its entries.
    await shipTo(a, (real) =>
      real === env.DB
        ? interceptBatch(real, async () => {
            throw new Error("D1_ERROR: injected outage of DB");
          })
        : real,
    );
    expect((await debit(a, 40)).status).toBe(200);
    expect((await drainVia(a)).ok).toBe(false);
    expect(await entriesIn(env.LEDGER_DB_1, a)).toBe(2); // the debit's entry landed on the shard
    const shipped = () => count(env.DB, "SELECT shipped_seq AS n FROM account_heads WHERE account_id = ?", a);
    expect(await shipped()).toBe(1);
    expect(await count(env.DB, "SELECT count(*) AS n FROM journal WHERE account_id = ?", a)).toBe(1);

    await shipTo(a, (real) => real);
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    expect(await entriesIn(env.LEDGER_DB_1, a)).toBe(2);
    expect(await shipped()).toBe(2);
    // The journal and its daily rollup count the debit once: 40 of 100 credits bought for 1 000 → 400.
    expect(await count(env.DB, "SELECT count(*) AS n FROM journal WHERE account_id = ?", a)).toBe(2);
    const consumed = await env.DB.prepare(
      "SELECT SUM(amount) AS units, SUM(cost_minor) AS cost FROM journal_daily WHERE account_id = ? AND category = 'consumed'",
    )
      .bind(a)
      .first<{ units: number; cost: number }>();
    expect(consumed).toEqual({ units: -40, cost: 400 });
  });

  it("every shard's database is listed once, shard 0 first; a missing binding is a deployment error", () => {
    expect(ledgerDbs(env)).toEqual([env.DB, env.LEDGER_DB_1]);
    expect(() => shardDb({ DB: env.DB, LEDGER_SHARDS: "3" }, 2)).toThrow(/LEDGER_DB_2 is missing/);
    expect(() => ledgerDbs({ DB: env.DB, LEDGER_SHARDS: "0" })).toThrow(/integer from 1 to 64/);
  });
});
