/** src/db/shards.ts: the account hash and shard choice, worked out by hand. */
import { describe, expect, it } from "vitest";
import { accountHash, ledgerShardCount, shardOf } from "../../src/db/shards";

describe("account hash and shard", () => {
  it("is FNV-1a 32 of the id's code units", () => {
    // FNV-1a: h = 2166136261; per unit h = (h XOR c) * 16777619 mod 2^32.
    expect(accountHash("")).toBe(2_166_136_261);
    // "a" (97): (2166136261 XOR 97) = 2166136228; × 16777619 mod 2^32 = 3826002220 (0xe40c292c).
    expect(accountHash("a")).toBe(0xe40c292c);
    expect(accountHash("foobar")).toBe(0xbf9cf968); // the published FNV-1a test vector
  });

  it("one shard is always 0; N shards spread ids evenly", () => {
    expect(shardOf("anything", 1)).toBe(0);
    expect(shardOf("a", 2)).toBe(0xe40c292c % 2);
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8_000; i++) counts[shardOf(`acct-${i}`, 8)]++;
    for (const n of counts) expect(n).toBeGreaterThan(800); // each of 8 within ±20% of 1 000
    for (const n of counts) expect(n).toBeLessThan(1_200);
  });

  it("LEDGER_SHARDS must be an integer from 1 to 64", () => {
    const db = {} as D1Database;
    expect(ledgerShardCount({ DB: db })).toBe(1);
    expect(ledgerShardCount({ DB: db, LEDGER_SHARDS: "64" })).toBe(64);
    for (const bad of ["0", "65", "1.5", "", " 2", "two"]) {
      expect(() => ledgerShardCount({ DB: db, LEDGER_SHARDS: bad })).toThrow(/LEDGER_SHARDS/);
    }
  });
});
