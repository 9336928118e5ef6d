import { afterEach, describe, expect, it } from "vitest";
import { advanceClock, call, debit, grant, iso, uid } from "./helpers";

const DEFAULT_POLICY = {
  order: ["priority", "expires_at", "type", "created"],
  type_order: ["promotional", "compensatory", "purchased"],
  require_verified_for_promotional: false,
  hold_on_expiry: "release",
};

describe("consumption order", () => {
  afterEach(async () => {
    await call("PUT", "/v1/policy", DEFAULT_POLICY);
  });

  it("draws by priority, then soonest expiry (undated last), then type, then creation", async () => {
    const a = uid();
    const soon = iso(Date.now() + 3_600_000);
    const later = iso(Date.now() + 7_200_000);
    await grant(a, { grant_id: "purchased-undated", amount: 10, type: "purchased" });
    await grant(a, { grant_id: "promo-later", amount: 10, type: "promotional", expires_at: later });
    await grant(a, { grant_id: "comp-soon", amount: 10, type: "compensatory", reason: "outage", expires_at: soon });
    await grant(a, { grant_id: "promo-soon", amount: 10, type: "promotional", expires_at: soon });
    await grant(a, { grant_id: "urgent", amount: 10, type: "purchased", priority: 1 });
    const res = await debit(a, 50);
    expect(res.status).toBe(200);
    expect(res.json.applied.map((x: any) => x.grant_id)).toEqual([
      "urgent", // priority 1 before the default 100
      "promo-soon", // same expiry as comp-soon: promotional before compensatory
      "comp-soon",
      "promo-later",
      "purchased-undated", // no expiry: after every dated lot
    ]);
  });

  it("an account override changes the order for that account only, on its next operation", async () => {
    const a = uid();
    const b = uid();
    for (const acct of [a, b]) {
      await grant(acct, { grant_id: "promo", amount: 10, type: "promotional" });
      await grant(acct, { grant_id: "paid", amount: 10, type: "purchased" });
    }
    const put = await call("PUT", `/v1/accounts/${a}/policy`, {
      type_order: ["purchased", "promotional", "compensatory"],
    });
    expect(put.status).toBe(200);
    expect(put.json.type_order).toEqual(["purchased", "promotional", "compensatory"]);
    expect(put.json.order).toEqual(DEFAULT_POLICY.order);
    expect((await debit(a, 1)).json.applied[0].grant_id).toBe("paid");
    expect((await debit(b, 1)).json.applied[0].grant_id).toBe("promo");
    // null drops the override: back to the global order.
    const dropped = await call("PUT", `/v1/accounts/${a}/policy`, { type_order: null });
    expect(dropped.json.type_order).toEqual(DEFAULT_POLICY.type_order);
    expect((await debit(a, 1)).json.applied[0].grant_id).toBe("promo");
  });

  it("a global change takes effect on the next debit", async () => {
    const a = uid();
    await grant(a, { grant_id: "old-undated", amount: 10, type: "purchased" });
    await grant(a, { grant_id: "new-dated", amount: 10, type: "purchased", expires_at: iso(Date.now() + 86_400_000) });
    expect((await debit(a, 1)).json.applied[0].grant_id).toBe("new-dated");
    const put = await call("PUT", "/v1/policy", { order: ["created"] });
    expect(put.status).toBe(200);
    // PUT answers the whole policy: the four fields here plus approval_threshold and convert_from at their defaults.
    expect(put.json).toEqual({ ...DEFAULT_POLICY, approval_threshold: {}, convert_from: [], order: ["created"] });
    expect((await call("GET", "/v1/policy")).json.order).toEqual(["created"]);
    expect((await debit(a, 1)).json.applied[0].grant_id).toBe("old-undated");
  });
});

describe("time decides what is drawable, whether or not a job ran", () => {
  it("a future grant is ignored until effective, then drawn", async () => {
    const a = uid();
    await grant(a, { grant_id: "now", amount: 5 });
    const created = await grant(a, { grant_id: "later", amount: 100, effective_at: iso(Date.now() + 3_600_000) });
    expect(created.grant.status).toBe("pending");
    expect(created.balance.available).toBe(5);
    expect(created.balance.pending).toEqual([
      { grant_id: "later", amount: 100, effective_at: created.grant.effective_at },
    ]);
    const refused = await debit(a, 6);
    expect(refused.status).toBe(402);
    expect(refused.json.available).toBe(5);
    await advanceClock(a, 3_600_000);
    const ok = await debit(a, 6);
    expect(ok.status).toBe(200);
    expect(ok.json.balance.available).toBe(99);
  });

  it("a grant past its expiry is never drawn, before any expiry entry exists", async () => {
    const a = uid();
    await grant(a, { grant_id: "short", amount: 50, expires_at: iso(Date.now() + 60_000) });
    await grant(a, { grant_id: "long", amount: 5 });
    expect((await debit(a, 1)).json.applied[0].grant_id).toBe("short");
    await advanceClock(a, 60_000); // exactly at expires_at: no longer drawable
    const refused = await debit(a, 10);
    expect(refused.status).toBe(402);
    expect(refused.json.available).toBe(5);
    const listed = await call("GET", `/v1/accounts/${a}/grants?status=expired`);
    expect(listed.json.grants.map((g: any) => g.grant_id)).toEqual(["short"]);
  });
});
