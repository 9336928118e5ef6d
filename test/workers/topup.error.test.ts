/**
 * Top-up rules, refused: bad bodies, wrong roles, unknown accounts and
 * rules. Every refusal is problem+json and leaves the rule as it was.
 */
import { describe, expect, it } from "vitest";
import { keyOf } from "./bulk-helpers";
import { call, expectProblem, grant, uid } from "./helpers";

const path = (a: string) => `/v1/accounts/${a}/top-up`;
const valid = { below: 100, amount: 500, max_per_month: 1000 };

describe("top-up rules, refused", () => {
  it("bad bodies are 400 and set nothing", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const cases: [Record<string, unknown>, string][] = [
      [{ ...valid, amount: 0 }, "invalid_amount"],
      [{ ...valid, amount: "500" }, "invalid_amount"],
      [{ ...valid, amount: 10 ** 16 }, "invalid_amount"],
      [{ ...valid, below: -1 }, "invalid_request"],
      [{ ...valid, below: 1.5 }, "invalid_request"],
      [{ amount: 500 }, "invalid_request"],
      [{ ...valid, max_per_month: 400 }, "invalid_request"], // amount above the cap: nothing could ever fit
      [{ ...valid, unit: "Credits!" }, "invalid_request"],
      [{ ...valid, grant: { type: "promotional" } }, "invalid_request"],
      [{ ...valid, grant: { type: "purchased", expires_in_days: 0 } }, "invalid_request"],
      [{ ...valid, grant: { type: "purchased", expires_in_days: 4000 } }, "invalid_request"],
      [{ ...valid, grant: { type: "purchased", cost_basis: { amount: 1, currency: "usd" } } }, "invalid_request"],
      [{ ...valid, grant: { type: "purchased", priority: 1 } }, "invalid_request"],
      [{ ...valid, surprise: 1 }, "invalid_request"],
    ];
    for (const [body, code] of cases) expectProblem(await call("PUT", path(a), body), 400, code);
    expectProblem(await call("PUT", path(a), undefined, { raw: "{" }), 400, "invalid_json");
    expectProblem(
      await call("PUT", path(a), valid, { headers: { "content-type": "text/plain" } }),
      415,
      "unsupported_media_type",
    );
    expectProblem(await call("GET", path(a)), 404, "not_found");
  });

  it("roles: admin and finance write; readers read; gateway and support may not write", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const finance = await keyOf("finance");
    const support = await keyOf("support");
    const viewer = await keyOf("viewer");
    const gateway = await keyOf("gateway");
    expectProblem(await call("PUT", path(a), valid, { token: support.token }), 403, "forbidden");
    expectProblem(await call("PUT", path(a), valid, { token: gateway.token }), 403, "forbidden");
    expectProblem(await call("GET", path(a), undefined, { token: null }), 401, "unauthorized");
    expect((await call("PUT", path(a), valid, { token: finance.token })).status).toBe(200);
    expect((await call("GET", path(a), undefined, { token: viewer.token })).json).toMatchObject(valid);
    expectProblem(await call("GET", path(a), undefined, { token: gateway.token }), 403, "forbidden");
    expectProblem(await call("DELETE", path(a), undefined, { token: viewer.token }), 403, "forbidden");
    expect((await call("GET", path(a))).json).toMatchObject(valid);
  });

  it("unknown accounts are 404 account_not_found; an unknown rule is 404 not_found; bad queries are 400", async () => {
    const nobody = uid();
    expectProblem(await call("PUT", path(nobody), valid), 404, "account_not_found");
    expectProblem(await call("GET", path(nobody)), 404, "account_not_found");
    const a = uid();
    await grant(a, { amount: 10 });
    expect((await call("PUT", path(a), valid)).status).toBe(200);
    expectProblem(await call("GET", `${path(a)}?unit=tokens`), 404, "not_found");
    expectProblem(await call("DELETE", `${path(a)}?unit=tokens`), 404, "not_found");
    expectProblem(await call("GET", `${path(a)}?unit=BAD`), 400, "invalid_request");
    expectProblem(await call("GET", `${path(a)}?unit=credits&x=1`), 400, "invalid_request");
    expectProblem(await call("GET", `/v1/accounts/bad id!/top-up`), 400, "invalid_request");
    // A refused replacement leaves the rule as it was.
    expectProblem(await call("PUT", path(a), { ...valid, amount: 2000 }), 400, "invalid_request");
    expect((await call("GET", path(a))).json).toMatchObject(valid);
  });
});
