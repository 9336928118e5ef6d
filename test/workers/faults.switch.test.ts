/**
 * The fault switch (src/faults.ts): production configuration refuses it
 * (every request 500 misconfigured, one log line each), /__faults exists only
 * while faults are allowed and only for the ADMIN_TOKEN, is not in
 * /openapi.json, validates its plan, and with the plan empty every hook hands
 * back the real thing.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { faultsAllowed, setFaultPlan, shipFaults, webhookFetch } from "../../src/faults";
import worker from "../../src/index";
import { call, expectProblem, read, uid } from "./helpers";
import { logLines } from "./outbox-helpers";

const req = (method: string, path: string, body?: unknown, token = "test-admin-token") =>
  new Request(`http://gate.test${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const withEnv = async (vars: Record<string, string | undefined>, r: Request) =>
  read(await worker.fetch(r, { ...env, ...vars } as Env, createExecutionContext()));

afterEach(() => {
  setFaultPlan({});
  vi.restoreAllMocks();
});

describe("the switch", () => {
  it("is on only with FAULT_INJECTION=1 outside production", () => {
    expect(faultsAllowed({ FAULT_INJECTION: "1" })).toBe(true);
    expect(faultsAllowed({ FAULT_INJECTION: "1", ENVIRONMENT: "staging" })).toBe(true);
    expect(faultsAllowed({ FAULT_INJECTION: "1", ENVIRONMENT: "production" })).toBe(false);
    expect(faultsAllowed({ FAULT_INJECTION: "true" })).toBe(false);
    expect(faultsAllowed({})).toBe(false);
  });

  it("production with FAULT_INJECTION answers every request 500 misconfigured and logs one line each", async () => {
    const spy = vi.spyOn(console, "log");
    const prod = { ENVIRONMENT: "production", FAULT_INJECTION: "1" };
    for (const r of [
      req("GET", "/v1/health"),
      req("GET", `/v1/accounts/${uid()}/balance`),
      req("POST", "/__faults", { d1_ship_error: 1 }),
      req("GET", "/openapi.json"),
    ]) {
      const res = await withEnv(prod, r);
      expect(res.status).toBe(500);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      expect(res.json).toMatchObject({ status: 500, code: "misconfigured", title: expect.any(String) });
    }
    expect(logLines(spy, "config.misconfigured")).toHaveLength(4);
    // Even "0" is refused: production never carries the variable at all.
    expect((await withEnv({ ENVIRONMENT: "production", FAULT_INJECTION: "0" }, req("GET", "/v1/health"))).status).toBe(
      500,
    );
    // Production without it serves as usual, and /__faults does not exist there.
    expect(
      (await withEnv({ ENVIRONMENT: "production", FAULT_INJECTION: undefined }, req("GET", "/v1/health"))).status,
    ).toBe(200);
    const hidden = await withEnv({ ENVIRONMENT: "production", FAULT_INJECTION: undefined }, req("GET", "/__faults"));
    expectProblem(hidden, 404, "not_found");
  });

  it("/__faults is 404 when faults are not allowed, and the plan stays empty", async () => {
    const res = await withEnv({ FAULT_INJECTION: undefined }, req("POST", "/__faults", { d1_ship_error: 1 }));
    expectProblem(res, 404, "not_found");
    expect((await call("GET", "/__faults")).json.plan.d1_ship_error).toBe(0);
  });
});

describe("/__faults", () => {
  it("sets the whole plan and reads it back with the counters", async () => {
    const set = await call("POST", "/__faults", { d1_ship_error: 0.25, webhook_hang: 1, seed: 7 });
    expect(set.status).toBe(200);
    expect(set.json).toEqual({
      allowed: true,
      plan: {
        d1_ship_error: 0.25,
        d1_ship_error_after_commit: 0,
        d1_ship_delay_ms: 0,
        do_reset_mid_ship: 0,
        webhook_fail: 0,
        webhook_hang: 1,
        seed: 7,
      },
      counters: {
        d1_ship_error: expect.any(Number),
        d1_ship_error_after_commit: expect.any(Number),
        d1_ship_delay: expect.any(Number),
        do_reset_mid_ship: expect.any(Number),
        webhook_fail: expect.any(Number),
        webhook_hang: expect.any(Number),
      },
      injected_total: expect.any(Number),
    });
    const got = await call("GET", "/__faults");
    expect(got.json).toEqual(set.json);
    // A new plan replaces the old one whole; {} turns everything off.
    expect((await call("POST", "/__faults", { webhook_fail: 0.5 })).json.plan).toMatchObject({
      d1_ship_error: 0,
      webhook_hang: 0,
      webhook_fail: 0.5,
    });
    const off = (await call("POST", "/__faults", {})).json.plan;
    expect(Object.entries(off).filter(([k, v]) => k !== "seed" && v !== 0)).toEqual([]);
  });

  it("is for the ADMIN_TOKEN only", async () => {
    expectProblem(await call("GET", "/__faults", undefined, { token: null }), 401, "unauthorized");
    expectProblem(await call("GET", "/__faults", undefined, { token: "nope" }), 401, "unauthorized");
    const key = await call("POST", "/v1/api-keys", { name: "ops", role: "admin" });
    expect(key.status).toBe(201);
    expectProblem(await call("POST", "/__faults", { d1_ship_error: 1 }, { token: key.json.key }), 403, "forbidden");
    expect((await call("GET", "/__faults")).json.plan.d1_ship_error).toBe(0);
  });

  it("refuses a bad plan with problem+json and changes nothing", async () => {
    await call("POST", "/__faults", { webhook_fail: 0.5, seed: 1 });
    for (const [body, code] of [
      [{ d1_ship_error: 1.5 }, "invalid_request"],
      [{ d1_ship_error: "1" }, "invalid_request"],
      [{ d1_ship_delay_ms: 30_001 }, "invalid_request"],
      [{ d1_ship_delay_ms: 1.5 }, "invalid_request"],
      [{ seed: -1 }, "invalid_request"],
      [{ explode: 1 }, "invalid_request"],
      [[1], "invalid_request"],
    ] as const) {
      expectProblem(await call("POST", "/__faults", body), 400, code);
    }
    expectProblem(await call("POST", "/__faults", undefined, { raw: "{" }), 400, "invalid_json");
    expect((await call("GET", "/__faults")).json.plan).toMatchObject({ webhook_fail: 0.5, d1_ship_error: 0 });
  });

  it("is not part of the served contract", async () => {
    const doc = (await call("GET", "/openapi.json")).json;
    expect(Object.keys(doc.paths).filter((p) => p.includes("fault"))).toEqual([]);
  });
});

describe("hooks with an empty plan", () => {
  it("hand back the real D1 and a plain fetch", async () => {
    setFaultPlan({});
    expect(shipFaults(env.DB, env, () => undefined)).toBe(env.DB);
    setFaultPlan({ d1ShipError: 1 });
    expect(shipFaults(env.DB, { FAULT_INJECTION: undefined }, () => undefined)).toBe(env.DB);
    expect(shipFaults(env.DB, env, () => undefined)).not.toBe(env.DB);
    setFaultPlan({ webhookFail: 1 });
    const faulty = await webhookFetch(env)("http://receiver.test/hooks/x", { method: "POST" });
    expect(faulty.status).toBe(500);
    const off = await webhookFetch({ FAULT_INJECTION: undefined })("http://receiver.test/hooks/switch-off", {
      method: "POST",
    });
    expect(off.status).toBe(204);
  });
});
