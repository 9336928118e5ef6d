import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { loadGlobalPolicy } from "../../src/db/settings";
import { advanceClock, call, grant, iso, ledgerStubFor, uid } from "./helpers";

/** The JSON lines written while `fn` runs. */
async function linesDuring(fn: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const spy = vi.spyOn(console, "log").mockImplementation(() => {});
  try {
    await fn();
    return spy.mock.calls.map((args) => JSON.parse(String(args[0])));
  } finally {
    spy.mockRestore();
  }
}

describe("structured logs", () => {
  afterEach(() => vi.restoreAllMocks());

  it("a debit logs exactly one JSON line with request id, account, operation, latency and code", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const lines = await linesDuring(() =>
      call(
        "POST",
        `/v1/accounts/${a}/debits`,
        { debit_id: "d1", amount: 3 },
        { headers: { "x-request-id": "req-log-1" } },
      ),
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      event: "ledger.write",
      request_id: "req-log-1",
      account_id: a,
      op: "debit",
      entries: 1,
      head_seq: 2,
      status: 200,
      code: null,
      actor: "admin-token:admin",
    });
    expect(typeof lines[0]?.latency_ms).toBe("number");
    expect(typeof lines[0]?.ts).toBe("string");
  });

  it("an error logs one line with its code", async () => {
    const a = uid();
    await grant(a, { amount: 1 });
    const lines = await linesDuring(() => call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 3 }));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ event: "request", account_id: a, status: 402, code: "insufficient_credits" });
  });

  it("a write by the DO's own jobs (expiry) logs its own line", async () => {
    const a = uid();
    await grant(a, { amount: 5, expires_at: iso(Date.now() + 60_000) });
    await advanceClock(a, 61_000);
    const lines = await linesDuring(() =>
      runInDurableObject(ledgerStubFor(a), async (inst: AccountLedger) => {
        inst.expireAndSweep(await loadGlobalPolicy(env.DB));
      }),
    );
    expect(lines.filter((l) => l.event === "ledger.write")).toEqual([
      expect.objectContaining({ account_id: a, actor: "system:expiry", op: "system:expiry", entries: 1 }),
    ]);
  });
});
