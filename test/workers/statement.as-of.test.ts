/** Issue 14: a statement `as_of` a time is the statement of the entries recorded at or before it. */
import { describe, expect, it } from "vitest";
import { advanceClock, call, debit, expectProblem, grant, iso, uid } from "./helpers";

const HOUR = 3_600_000;
const unsigned = (body: Record<string, unknown>) => {
  const { signature: _signature, ...rest } = body;
  return rest;
};

describe("statement as_of", () => {
  it("equals the window ending just after as_of, and leaves out what was recorded later", async () => {
    const a = uid("stmt-asof");
    await grant(a, { grant_id: "g1", amount: 100 });
    const start = Date.parse((await call("GET", `/v1/accounts/${a}/balance`)).json.as_of);
    await advanceClock(a, HOUR);
    expect((await debit(a, 30)).status).toBe(200);
    const between = Date.parse((await call("GET", `/v1/accounts/${a}/balance`)).json.as_of);
    await advanceClock(a, HOUR);
    expect((await debit(a, 20)).status).toBe(200);

    const from = iso(start - HOUR);
    const asOf = await call("GET", `/v1/accounts/${a}/statement?from=${from}&as_of=${iso(between)}`);
    expect(asOf.status).toBe(200);
    const window = await call("GET", `/v1/accounts/${a}/statement?from=${from}&to=${iso(between + 1)}`);
    expect(unsigned(asOf.json)).toEqual(unsigned(window.json));
    // Worked by hand: the grant (100) and the first debit (30) were recorded by then; the second was not.
    expect(asOf.json.opening).toBe(0);
    expect(asOf.json.closing).toBe(70);
    expect(asOf.json.entries.map((e: { amount: number }) => e.amount)).toEqual([100, -30]);

    // as_of with an earlier `to`: the window [from, to) as it stood at as_of, which is the window itself
    // (here up to just after the grant, before the first debit an hour later).
    const both = await call(
      "GET",
      `/v1/accounts/${a}/statement?from=${from}&to=${iso(start + 1)}&as_of=${iso(between)}`,
    );
    expect(both.status).toBe(200);
    expect(both.json.closing).toBe(100);
  });

  it("refuses to after as_of, neither to nor as_of, and an as_of in the future", async () => {
    const a = uid("stmt-asof-bad");
    await grant(a, { grant_id: "g1", amount: 100 });
    const now = Date.parse((await call("GET", `/v1/accounts/${a}/balance`)).json.as_of);
    const from = iso(now - HOUR);
    const later = await call("GET", `/v1/accounts/${a}/statement?from=${from}&to=${iso(now)}&as_of=${iso(now - 1)}`);
    expectProblem(later, 400, "invalid_request");
    expect(later.json.detail).toMatch(/to may not be later than as_of/);
    expectProblem(await call("GET", `/v1/accounts/${a}/statement?from=${from}`), 400, "invalid_request");
    const future = await call("GET", `/v1/accounts/${a}/statement?from=${from}&as_of=${iso(now + 10 * HOUR)}`);
    expectProblem(future, 400, "invalid_request");
  });
});
