/**
 * Contract points that cross resources: ledger pagination and CSV paging,
 * settling a receipt the sweep already captured, and PUT /v1/policy merging
 * into what is stored rather than into a cached copy.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_POLICY } from "../../src/ledger";
import { ADMIN, advanceClock, call, expectProblem, fetchWorker, grant, ledgerEntries, uid } from "./helpers";

describe("ledger pages", () => {
  it("next_after_seq is the page's last seq until the last page, then null; CSV streams every page", async () => {
    const a = uid();
    await grant(a, { grant_id: "g", amount: 5000 });
    const debits = Array.from({ length: 1050 }, (_, i) =>
      call("POST", `/v1/accounts/${a}/debits`, { debit_id: `d${i}`, amount: 1 }),
    );
    for (const r of await Promise.all(debits)) expect(r.status).toBe(200);
    const p1 = await call("GET", `/v1/accounts/${a}/ledger?limit=400`);
    expect(p1.json.entries.map((e: any) => e.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    expect(p1.json.next_after_seq).toBe(400);
    const p3 = await call("GET", `/v1/accounts/${a}/ledger?after_seq=800&limit=400`);
    expect(p3.json.entries).toHaveLength(251);
    expect(p3.json.next_after_seq).toBeNull();
    const csv = await call("GET", `/v1/accounts/${a}/ledger?format=csv&after_seq=10`);
    expect(csv.headers.get("content-type")).toContain("text/csv");
    const rows = csv.text.trimEnd().split("\r\n");
    expect(rows[0]?.startsWith("account_id,seq,entry_id")).toBe(true);
    expect(rows).toHaveLength(1 + 1041); // one header, then seqs 11..1051 across two internal pages
    expect(rows[1]?.split(",")[1]).toBe("11");
    expect(rows.at(-1)?.split(",")[1]).toBe("1051");
  });
});

describe("receipts closed by the sweep", () => {
  it("settling with what the sweep captured answers it; another use is receipt_settled", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const created = await call("POST", `/v1/accounts/${a}/receipts`, { receipt_id: "r1", amount: 40 });
    expect(created.status).toBe(201);
    // Past exp + the settle grace on the account's clock: the next touch captures it in full.
    await advanceClock(a, 61_000 + 301_000);
    const less = await call("POST", "/v1/receipts/settle", { receipt: created.json.receipt, used: 10 });
    expect(less.status).toBe(409);
    expect(less.json.code).toBe("receipt_settled");
    const entries = await ledgerEntries(a);
    expect(entries.at(-1)).toMatchObject({ kind: "receipt.settled", amount: -40, actor: "system:sweep" });
    const full = await call("POST", "/v1/receipts/settle", { receipt: created.json.receipt, used: 40 });
    expect(full.status).toBe(200);
    expect(full.json).toMatchObject({ receipt_id: "r1", used: 40, released: 0, balance: { available: 60, held: 0 } });
    expect(await ledgerEntries(a)).toEqual(entries);
  });
});

describe("PUT /v1/policy", () => {
  afterEach(async () => {
    await call("PUT", "/v1/policy", DEFAULT_POLICY);
  });

  it("merges into the stored policy, not into this isolate's cached copy", async () => {
    expect((await call("GET", "/v1/policy")).json).toEqual(DEFAULT_POLICY); // warms the cache
    // Another isolate's PUT lands in D1 meanwhile.
    await env.DB.prepare("INSERT OR REPLACE INTO settings (key, value, updated_at_ms) VALUES ('policy', ?, ?)")
      .bind(JSON.stringify({ ...DEFAULT_POLICY, hold_on_expiry: "capture" }), Date.now())
      .run();
    const put = await call("PUT", "/v1/policy", { order: ["created"] });
    expect(put.json).toEqual({ ...DEFAULT_POLICY, hold_on_expiry: "capture", order: ["created"] });
    expect((await call("GET", "/v1/policy")).json).toEqual(put.json);
  });
});

describe("body size", () => {
  it("a streamed body without content-length is refused once it passes 64 KiB; nothing moves", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const before = await ledgerEntries(a);
    let sent = 0;
    const chunk = new TextEncoder().encode(" ".repeat(8192));
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // JSON that would be valid if it were read whole: spaces, then a debit.
        if (sent >= 9) {
          controller.enqueue(new TextEncoder().encode('{"debit_id":"big","amount":1}'));
          controller.close();
          return;
        }
        sent++;
        controller.enqueue(chunk);
      },
    });
    const res = await fetchWorker(
      new Request(`http://gate.test/v1/accounts/${a}/debits`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body,
      }),
    );
    expectProblem(res, 413, "payload_too_large");
    expect(await ledgerEntries(a)).toEqual(before);
  });
});
