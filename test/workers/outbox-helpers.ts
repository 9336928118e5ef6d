/** D1 stand-ins for the outbox suites: the real local D1 with its batch() intercepted. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { AccountLedger } from "../../src/account/account-do";
import { ledgerDb, ledgerShardCount, shardOf } from "../../src/db/shards";
import { ledgerStubFor, uid } from "./helpers";

type Batch = (statements: D1PreparedStatement[]) => Promise<D1Result[]>;

/** The real D1, except that batch() (every shipment) goes through `batch`, which may call the real one. */
export function interceptBatch(
  real: D1Database,
  batch: (statements: D1PreparedStatement[], real: Batch) => Promise<D1Result[]>,
) {
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === "batch") return (statements: D1PreparedStatement[]) => batch(statements, (s) => target.batch(s));
      return Reflect.get(target, prop, receiver);
    },
  });
}

/** A statement as the shipper bound it: its SQL and parameters. */
export interface Bound {
  sql: string;
  params: unknown[];
}

/**
 * The real D1, recording every statement bound through it and the size of
 * every batch(), so a test can hold what was sent against D1's limits.
 */
export function recordingD1(real: D1Database) {
  const bound: Bound[] = [];
  const batches: number[] = [];
  const db = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === "prepare") {
        return (sql: string) => {
          const stmt = target.prepare(sql);
          return new Proxy(stmt, {
            get(s, p, r) {
              if (p === "bind") {
                return (...params: unknown[]) => {
                  bound.push({ sql, params });
                  return s.bind(...params);
                };
              }
              return Reflect.get(s, p, r);
            },
          });
        };
      }
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) => {
          batches.push(statements.length);
          return target.batch(statements);
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
  return { db, bound, batches };
}

/** A D1 whose writes fail: batch() and exec() throw as during an outage; single statements still run. */
export function failingD1(real: D1Database): D1Database {
  const failing = interceptBatch(real, async () => {
    throw new Error("D1_ERROR: injected outage");
  });
  return new Proxy(failing, {
    get(target, prop, receiver) {
      if (prop === "exec") {
        return async () => {
          throw new Error("D1_ERROR: injected outage");
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
}

/** Points the account's DO at `db` (built from the real D1) and drops its alarm, so only the test ships. */
export async function shipTo(accountId: string, db: (real: D1Database) => D1Database): Promise<void> {
  await runInDurableObject(ledgerStubFor(accountId), async (inst: AccountLedger, state) => {
    inst.shipVia = db;
    await state.storage.deleteAlarm();
  });
}

/** Drains the account's outbox through whatever D1 its DO points at. */
export async function drainVia(accountId: string): Promise<{ ok: boolean; pending: number }> {
  return runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => inst.drain());
}

/** The account's rows in D1 ledger_entries, by seq. */
export async function d1Entries(accountId: string) {
  const rows = await ledgerDb(env, accountId)
    .prepare(
      "SELECT entry_id, seq, txn_id, kind, amount, held_delta, prev_hash, hash FROM ledger_entries WHERE account_id = ? ORDER BY seq",
    )
    .bind(accountId)
    .all<{
      entry_id: string;
      seq: number;
      txn_id: string;
      kind: string;
      amount: number;
      held_delta: number;
      prev_hash: string;
      hash: string;
    }>();
  return rows.results;
}

/** Outbox rows waiting in the account's DO, per transaction in shipping order. */
export async function outboxTxns(accountId: string): Promise<{ txn: string; n: number }[]> {
  return runInDurableObject(ledgerStubFor(accountId), (_inst: AccountLedger, state) =>
    state.storage.sql
      .exec("SELECT txn, count(*) AS n FROM outbox GROUP BY txn ORDER BY MIN(id)")
      .toArray()
      .map((r) => ({ txn: String(r.txn), n: Number(r.n) })),
  );
}

/** The JSON log lines of one event that a console.log spy saw (other output is skipped). */
export function logLines(spy: { mock: { calls: unknown[][] } }, event: string): Record<string, unknown>[] {
  return spy.mock.calls.flatMap((call) => {
    try {
      const line = JSON.parse(String(call[0])) as Record<string, unknown> | null;
      return line?.event === event ? [line] : [];
    } catch {
      return [];
    }
  });
}

/**
 * A fresh account id whose ledger history lives on `shard` (the suites run two). Tests of how one
 * D1 batch carries a shipment use shard 0, where entries and the rest share DB; shards.test.ts
 * covers an account on another shard.
 */
export function uidOnShard(shard: number, prefix = "acct"): string {
  const shards = ledgerShardCount(env);
  for (let i = 0; i < 1000; i++) {
    const id = uid(prefix);
    if (shardOf(id, shards) === shard) return id;
  }
  throw new Error(`no id on shard ${shard} of ${shards} in 1000 tries`);
}
