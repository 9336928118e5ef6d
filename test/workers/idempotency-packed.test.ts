/**
 * Issue 11: an idempotency record keeps its response packed (raw DEFLATE,
 * src/account/packed.ts) once it is long enough, and a replay answers the
 * very bytes of the first response, whether the record was packed or written
 * as JSON text before packing existed.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { PACK_MIN_BYTES, packResponse } from "../../src/account/packed";
import { canonicalJson, sha256Hex } from "../../src/ledger";
import { call, debit, grant, ledgerStubFor, uid } from "./helpers";

const DAY = 86_400_000;

async function record(accountId: string, scope: string, key: string) {
  return runInDurableObject(ledgerStubFor(accountId), (_inst: AccountLedger, state) => {
    const row = state.storage.sql
      .exec(
        "SELECT typeof(response) AS t, length(response) AS n FROM idempotency WHERE scope = ? AND key = ?",
        scope,
        key,
      )
      .toArray()[0];
    return row ? { type: String(row.t), bytes: Number(row.n) } : null;
  });
}

describe("idempotency records are packed and replay byte for byte", () => {
  it("a debit's record is a blob much smaller than its response; a replay returns the same body", async () => {
    const a = uid();
    // Twelve dated lots: the debit's balance lists ten of them, so its response is long.
    for (let i = 0; i < 12; i++) {
      await grant(a, {
        grant_id: `g${i}`,
        amount: 100,
        expires_at: new Date(Date.now() + (30 + i) * DAY).toISOString(),
      });
    }
    const first = await debit(a, 5, { debit_id: "d-packed" });
    expect(first.status).toBe(200);
    const sent = JSON.stringify(first.json);
    expect(sent.length).toBeGreaterThan(PACK_MIN_BYTES);
    const stored = await record(a, "debit", "d-packed");
    expect(stored?.type).toBe("blob");
    // Keys repeat in every listed lot: deflate keeps well under half.
    expect(stored?.bytes).toBeLessThan(sent.length / 2);

    const again = await debit(a, 5, { debit_id: "d-packed" });
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);
    const bal = await call("GET", `/v1/accounts/${a}/balance`);
    expect(bal.json.available).toBe(1200 - 5);
  });

  it("a short response stays text, and a record written as text before packing replays as it was", async () => {
    expect(packResponse("{}")).toBe("{}");
    const a = uid();
    await grant(a, { grant_id: "g-old", amount: 10 });
    // A record in the old form: the response as JSON text, however long, under the hash of the body below.
    const body = { debit_id: "d-old", amount: 1 };
    const old = JSON.stringify({ debit_id: "d-old", note: "x".repeat(2 * PACK_MIN_BYTES) });
    await runInDurableObject(ledgerStubFor(a), (_inst: AccountLedger, state) => {
      state.storage.sql.exec(
        "INSERT INTO idempotency (scope, key, body_hash, status, response, created_at_ms) VALUES ('debit', 'd-old', ?, 200, ?, ?)",
        sha256Hex(canonicalJson(body)),
        old,
        Date.now(),
      );
    });
    expect((await record(a, "debit", "d-old"))?.type).toBe("text");
    const replay = await call("POST", `/v1/accounts/${a}/debits`, body);
    expect(replay.status).toBe(200);
    expect(replay.json).toEqual(JSON.parse(old));
    // Replayed, not applied: nothing was drawn.
    expect((await call("GET", `/v1/accounts/${a}/balance`)).json.available).toBe(10);
  });
});
