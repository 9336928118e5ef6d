/**
 * Issue 7, defect 8: a cold isolate during a D1 outage never falls back to
 * the default policy. Each account's Durable Object keeps the last global
 * policy it saw; an account that never saw one refuses with 503.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { forgetGlobalPolicy } from "../../src/db/settings";
import worker from "../../src/index";
import { ADMIN, advanceClock, call, expectProblem, grant, read, uid } from "./helpers";

/** D1 as the gateway sees it during an outage: every query fails. */
const downD1 = new Proxy(env.DB, {
  get(target, prop, receiver) {
    if (prop === "prepare" || prop === "batch" || prop === "exec") {
      return () => {
        throw new Error("D1_ERROR: network connection lost");
      };
    }
    return Reflect.get(target, prop, receiver);
  },
});

/** A request to a cold isolate whose D1 is down (the admin token needs no D1). */
async function coldDuringOutage(method: string, path: string, body?: unknown) {
  forgetGlobalPolicy();
  const req = new Request(`http://gate.test${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return read(await worker.fetch(req, { ...env, DB: downD1 }, createExecutionContext()));
}

afterEach(async () => {
  forgetGlobalPolicy();
  await call("PUT", "/v1/policy", { hold_on_expiry: "release", order: ["priority", "expires_at", "type", "created"] });
});

describe("the global policy during a D1 outage", () => {
  it("an account keeps using the last global policy it saw, not the defaults", async () => {
    const put = await call("PUT", "/v1/policy", { hold_on_expiry: "capture", order: ["created"] });
    expect(put.status).toBe(200);
    forgetGlobalPolicy();
    const a = uid();
    // Two lots: the default order would draw the sooner-expiring one (g-late was created first).
    await grant(a, {
      grant_id: "g-first",
      amount: 10,
      expires_at: new Date(Date.now() + 86_400_000 * 30).toISOString(),
    });
    await grant(a, { grant_id: "g-soon", amount: 10, expires_at: new Date(Date.now() + 86_400_000).toISOString() });

    const hold = await coldDuringOutage("POST", `/v1/accounts/${a}/holds`, {
      hold_id: "h1",
      amount: 4,
      ttl_seconds: 1,
    });
    expect(hold.status).toBe(201);
    // order ["created"] draws g-first; the defaults would have drawn g-soon.
    expect(hold.json.applied).toEqual([{ grant_id: "g-first", type: "purchased", amount: 4 }]);

    await advanceClock(a, 2_000);
    const b = await coldDuringOutage("GET", `/v1/accounts/${a}/balance`);
    expect(b.status).toBe(200);
    // hold_on_expiry capture: the 4 held were captured at the deadline; release would give them back.
    expect(b.json.available).toBe(16);
    expect(b.json.held).toBe(0);
  });

  it("an account that never saw the global policy refuses with 503 overloaded instead of guessing", async () => {
    const a = uid();
    const created = await coldDuringOutage("PUT", `/v1/accounts/${a}`, { name: "cold" });
    expect(created.status).toBe(201);
    // Four eyes fails closed: without the global policy nobody can say whether this grant needs approval.
    const refused = await coldDuringOutage("POST", `/v1/accounts/${a}/grants`, {
      grant_id: "g1",
      amount: 10,
      type: "purchased",
    });
    expectProblem(refused, 503, "overloaded");
    expect(refused.headers.get("retry-after")).not.toBeNull();
    const d = await coldDuringOutage("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 1 });
    expectProblem(d, 503, "overloaded");
    expect(d.headers.get("retry-after")).not.toBeNull();
    expect(d.text).not.toContain("D1_ERROR");
    const policy = await coldDuringOutage("GET", "/v1/policy");
    expectProblem(policy, 503, "overloaded");
    // Once D1 answers, the same grant and debit go through: the refusals wrote nothing.
    expect((await call("GET", `/v1/accounts/${a}/grants`)).json.grants).toEqual([]);
    const granted = await call("POST", `/v1/accounts/${a}/grants`, { grant_id: "g1", amount: 10, type: "purchased" });
    expect(granted.status).toBe(201);
    const ok = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 1 });
    expect(ok.status).toBe(200);
    expect(ok.json.balance.available).toBe(9);
  });
});
