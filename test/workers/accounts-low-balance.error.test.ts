/**
 * PUT /v1/accounts/{id}: `low_balance` names at most MAX_LOW_BALANCE_UNITS
 * units (each is checked against the balance on every write); one more is
 * 400 invalid_request and changes nothing.
 */
import { describe, expect, it } from "vitest";
import { MAX_LOW_BALANCE_UNITS } from "../../src/api/accounts";
import { call, expectProblem, uid } from "./helpers";

const thresholds = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`unit_${i}`, 10 + i]));

describe("low_balance is bounded", () => {
  it("accepts MAX_LOW_BALANCE_UNITS units and refuses one more; a refusal moves nothing", async () => {
    expect(MAX_LOW_BALANCE_UNITS).toBe(16);
    const a = uid("lowbal");
    const created = await call("PUT", `/v1/accounts/${a}`, { low_balance: thresholds(MAX_LOW_BALANCE_UNITS) });
    expect(created.status, created.text).toBe(201);
    expect(created.json.low_balance).toEqual(thresholds(MAX_LOW_BALANCE_UNITS));
    const before = await call("GET", `/v1/accounts/${a}`);

    const refused = await call("PUT", `/v1/accounts/${a}`, {
      name: "must not land",
      low_balance: thresholds(MAX_LOW_BALANCE_UNITS + 1),
    });
    expectProblem(refused, 400, "invalid_request");
    expect(refused.json.detail).toContain("low_balance");
    expect(refused.json.detail).toContain(String(MAX_LOW_BALANCE_UNITS));
    expect((await call("GET", `/v1/accounts/${a}`)).text).toBe(before.text);

    // Fewer units and null still replace the thresholds.
    expect((await call("PUT", `/v1/accounts/${a}`, { low_balance: { credits: 5 } })).json.low_balance).toEqual({
      credits: 5,
    });
    expect((await call("PUT", `/v1/accounts/${a}`, { low_balance: null })).json.low_balance).toBeNull();
  });

  it("a new account with too many units is not created", async () => {
    const a = uid("lowbal");
    const refused = await call("PUT", `/v1/accounts/${a}`, { low_balance: thresholds(100) });
    expectProblem(refused, 400, "invalid_request");
    expectProblem(await call("GET", `/v1/accounts/${a}`), 404, "account_not_found");
  });
});
