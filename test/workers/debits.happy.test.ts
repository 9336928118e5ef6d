import { describe, expect, it } from "vitest";
import { balance, call, debit, grant, uid } from "./helpers";

describe("debits happy path", () => {
  it("grants then debits, drawing the lowest priority first", async () => {
    const a = uid();
    await grant(a, { grant_id: "g-low", amount: 100, priority: 10 });
    await grant(a, { grant_id: "g-high", amount: 100, priority: 200 });
    const res = await debit(a, 150);
    expect(res.status).toBe(200);
    expect(res.json.applied).toEqual([
      { grant_id: "g-low", type: "purchased", amount: 100 },
      { grant_id: "g-high", type: "purchased", amount: 50 },
    ]);
    expect(res.json.balance.available).toBe(50);
    expect((await balance(a)).available).toBe(50);
    const refused = await debit(a, 51);
    expect(refused.status).toBe(402);
    expect(refused.json).toMatchObject({ code: "insufficient_credits", available: 50, requested: 51 });
    expect(refused.headers.get("content-type")).toContain("application/problem+json");
    const health = await call("GET", "/v1/health", undefined, { token: null });
    expect(health.json).toEqual({ ok: true });
  });
});
