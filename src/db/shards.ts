/**
 * The ledger history is spread over LEDGER_SHARDS D1 databases by a hash of
 * the account id: shard 0 is the binding DB, shard i > 0 the binding
 * LEDGER_DB_<i>. A shard holds its accounts' `ledger_entries` and
 * `archive_segments` (the tables that grow with history); everything else
 * (directory, `account_heads`, keys, journal, reports' rollups) stays in DB,
 * one row per account or per day at most. The count is fixed for a
 * deployment: raising it moves accounts between shards, which docs/scale.md
 * describes as a migration, not a setting to flip.
 */

/** At most this many shards (each a D1 binding). */
export const LEDGER_SHARDS_MAX = 64;

type ShardEnv = { DB: D1Database; LEDGER_SHARDS?: string };

/** FNV-1a (32-bit) of the account id's UTF-16 code units: stable, cheap, synchronous. */
export function accountHash(accountId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < accountId.length; i++) {
    h ^= accountId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function shardOf(accountId: string, shards: number): number {
  return shards <= 1 ? 0 : accountHash(accountId) % shards;
}

/** LEDGER_SHARDS as a number; a value that is not an integer in 1..LEDGER_SHARDS_MAX is a deployment error. */
export function ledgerShardCount(env: ShardEnv): number {
  const raw = env.LEDGER_SHARDS ?? "1";
  const n = /^\d{1,2}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > LEDGER_SHARDS_MAX) {
    throw new Error(`LEDGER_SHARDS must be an integer from 1 to ${LEDGER_SHARDS_MAX}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** Shard i's database. */
export function shardDb(env: ShardEnv, index: number): D1Database {
  if (index === 0) return env.DB;
  const db = (env as unknown as Record<string, unknown>)[`LEDGER_DB_${index}`];
  if (db === undefined || db === null || typeof (db as D1Database).prepare !== "function") {
    throw new Error(`LEDGER_SHARDS is ${env.LEDGER_SHARDS} but the D1 binding LEDGER_DB_${index} is missing`);
  }
  return db as D1Database;
}

/** The D1 database that holds this account's ledger history. */
export function ledgerDb(env: ShardEnv, accountId: string): D1Database {
  return shardDb(env, shardOf(accountId, ledgerShardCount(env)));
}

/** Every shard's database, shard 0 first: what a report over the ledger history fans out to. */
export function ledgerDbs(env: ShardEnv): D1Database[] {
  const n = ledgerShardCount(env);
  return Array.from({ length: n }, (_, i) => shardDb(env, i));
}
