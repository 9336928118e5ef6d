/**
 * Recurring grants refused: every bad body, id, role and state answers an
 * RFC 9457 problem and changes nothing (no schedule, no entry, no D1 row,
 * no audit row).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RECURRING_MAX_PER_ACCOUNT } from "../../src/account/recurring";
import { keyOf } from "./bulk-helpers";
import { call, expectProblem, iso, ledgerEntries, uid } from "./helpers";

const FUTURE = Date.now() + 400 * 86_400_000;
const valid = () => ({
  recurring_id: uid("r"),
  amount: 100,
  type: "purchased",
  interval: "month",
  starts_at: iso(FUTURE),
  expires: "end_of_period",
  rollover: { max_amount: 10, max_periods: 2 },
});

async function account(): Promise<string> {
  const a = uid("rec-err");
  expect((await call("PUT", `/v1/accounts/${a}`, { name: "x" })).status).toBe(201);
  return a;
}

/** What a refused request must leave as it was. */
async function state(a: string) {
  const list = await call("GET", `/v1/accounts/${a}/recurring-grants`);
  const d1 = await env.DB.prepare("SELECT COUNT(*) AS n FROM recurring_grants WHERE account_id = ?").bind(a).first();
  const audit = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE target LIKE ?")
    .bind(`${a}:%`)
    .first();
  return { list: list.json, entries: (await ledgerEntries(a)).length, d1, audit };
}

describe("bad bodies: 400 and nothing written", () => {
  const BAD: [string, (b: Record<string, unknown>) => unknown, string][] = [
    ["interval fortnight", (b) => ({ ...b, interval: "fortnight" }), "invalid_request"],
    ["interval missing", ({ interval: _, ...b }) => b, "invalid_request"],
    ["expires missing", ({ expires: _, ...b }) => b, "invalid_request"],
    ["expires sometimes", (b) => ({ ...b, expires: "sometimes" }), "invalid_request"],
    ["ends_at before starts_at", (b) => ({ ...b, ends_at: iso(FUTURE - 1000) }), "invalid_request"],
    ["ends_at equal to starts_at", (b) => ({ ...b, ends_at: iso(FUTURE) }), "invalid_request"],
    ["ends_at not a time", (b) => ({ ...b, ends_at: "next year" }), "invalid_request"],
    ["starts_at impossible date", (b) => ({ ...b, starts_at: "2027-02-30T00:00:00Z" }), "invalid_request"],
    ["starts_at before 1970", (b) => ({ ...b, starts_at: "1969-12-31T00:00:00Z" }), "invalid_request"],
    ["rollover with expires never", (b) => ({ ...b, expires: "never" }), "invalid_request"],
    ["rollover max_amount 0", (b) => ({ ...b, rollover: { max_amount: 0 } }), "invalid_request"],
    ["rollover max_amount fractional", (b) => ({ ...b, rollover: { max_amount: 1.5 } }), "invalid_request"],
    ["rollover max_periods 0", (b) => ({ ...b, rollover: { max_periods: 0 } }), "invalid_request"],
    ["rollover max_periods 13", (b) => ({ ...b, rollover: { max_periods: 13 } }), "invalid_request"],
    ["rollover unknown field", (b) => ({ ...b, rollover: { max_amount: 1, cap: 2 } }), "invalid_request"],
    ["unknown top-level field", (b) => ({ ...b, colour: "blue" }), "invalid_request"],
    [
      "cost_basis (none on recurring grants)",
      (b) => ({ ...b, cost_basis: { amount: 1, currency: "USD" } }),
      "invalid_request",
    ],
    ["amount 0", (b) => ({ ...b, amount: 0 }), "invalid_amount"],
    ["amount negative", (b) => ({ ...b, amount: -5 }), "invalid_amount"],
    ["amount fractional", (b) => ({ ...b, amount: 2.5 }), "invalid_amount"],
    ["amount a string", (b) => ({ ...b, amount: "100" }), "invalid_amount"],
    ["amount above 10^15", (b) => ({ ...b, amount: 1e15 + 1 }), "invalid_amount"],
    ["amount missing", ({ amount: _, ...b }) => b, "invalid_request"],
    ["type unknown", (b) => ({ ...b, type: "free" }), "invalid_request"],
    ["compensatory without reason", (b) => ({ ...b, type: "compensatory" }), "invalid_request"],
    ["priority above 1 000 000", (b) => ({ ...b, priority: 1_000_001 }), "invalid_request"],
    ["unit with capitals", (b) => ({ ...b, unit: "Credits" }), "invalid_request"],
    ["recurring_id with a slash", (b) => ({ ...b, recurring_id: "a/b" }), "invalid_request"],
    ["recurring_id too long", (b) => ({ ...b, recurring_id: "x".repeat(129) }), "invalid_request"],
    ["no recurring_id and no Idempotency-Key", ({ recurring_id: _, ...b }) => b, "invalid_request"],
    ["source too long", (b) => ({ ...b, source: "s".repeat(257) }), "invalid_request"],
    ["body an array", () => [1, 2], "invalid_request"],
  ];

  it.each(BAD)("%s", async (_name, mutate, code) => {
    const a = await account();
    const before = await state(a);
    const res = await call("POST", `/v1/accounts/${a}/recurring-grants`, mutate(valid()));
    expectProblem(res, 400, code);
    expect(await state(a)).toEqual(before);
  });

  it("malformed JSON, wrong content type: 400 invalid_json, 415", async () => {
    const a = await account();
    const before = await state(a);
    expectProblem(
      await call("POST", `/v1/accounts/${a}/recurring-grants`, undefined, { raw: '{"amount": 1,' }),
      400,
      "invalid_json",
    );
    expectProblem(
      await call("POST", `/v1/accounts/${a}/recurring-grants`, undefined, {
        raw: JSON.stringify(valid()),
        headers: { "content-type": "text/plain" },
      }),
      415,
      "unsupported_media_type",
    );
    expect(await state(a)).toEqual(before);
  });
});

describe("bad ids and unknown things", () => {
  it("a bad account id or recurring id in the path: 400; unknown account: 404; unknown schedule: 404", async () => {
    expectProblem(await call("POST", "/v1/accounts/bad%20id/recurring-grants", valid()), 400, "invalid_request");
    expectProblem(await call("GET", "/v1/accounts/bad%20id/recurring-grants"), 400, "invalid_request");
    const a = await account();
    expectProblem(await call("DELETE", `/v1/accounts/${a}/recurring-grants/bad%20id`), 400, "invalid_request");
    expectProblem(await call("DELETE", `/v1/accounts/${a}/recurring-grants/nope`), 404, "not_found");
    const ghost = uid("ghost");
    expectProblem(await call("POST", `/v1/accounts/${ghost}/recurring-grants`, valid()), 404, "account_not_found");
    expectProblem(await call("GET", `/v1/accounts/${ghost}/recurring-grants`), 404, "account_not_found");
    expectProblem(await call("DELETE", `/v1/accounts/${ghost}/recurring-grants/x`), 404, "account_not_found");
    // The unknown account was not created on the way.
    expectProblem(await call("GET", `/v1/accounts/${ghost}`), 404, "account_not_found");
    const d1 = await env.DB.prepare("SELECT COUNT(*) AS n FROM recurring_grants WHERE account_id = ?")
      .bind(ghost)
      .first();
    expect(d1).toEqual({ n: 0 });
  });

  it(`an account holds at most ${RECURRING_MAX_PER_ACCOUNT} schedules, cancelled ones included`, async () => {
    const a = await account();
    for (let i = 0; i < RECURRING_MAX_PER_ACCOUNT; i++) {
      const res = await call("POST", `/v1/accounts/${a}/recurring-grants`, { ...valid(), recurring_id: `r${i}` });
      expect(res.status, res.text).toBe(201);
    }
    expect((await call("DELETE", `/v1/accounts/${a}/recurring-grants/r0`)).status).toBe(200);
    const before = await state(a);
    expectProblem(await call("POST", `/v1/accounts/${a}/recurring-grants`, valid()), 400, "invalid_request");
    expect(await state(a)).toEqual(before);
    // A replay of an existing one still answers.
    const replay = await call("GET", `/v1/accounts/${a}/recurring-grants`);
    expect(replay.json.recurring_grants).toHaveLength(RECURRING_MAX_PER_ACCOUNT);
  });
});

describe("roles", () => {
  it("gateway, support, marketing and viewer may not create or cancel; gateway may not read", async () => {
    const a = await account();
    const created = await call("POST", `/v1/accounts/${a}/recurring-grants`, valid());
    expect(created.status).toBe(201);
    const id = created.json.recurring_id;
    const before = await state(a);
    for (const role of ["gateway", "support", "marketing", "viewer"]) {
      const { token } = await keyOf(role);
      expectProblem(await call("POST", `/v1/accounts/${a}/recurring-grants`, valid(), { token }), 403, "forbidden");
      expectProblem(
        await call("DELETE", `/v1/accounts/${a}/recurring-grants/${id}`, undefined, { token }),
        403,
        "forbidden",
      );
      const read = await call("GET", `/v1/accounts/${a}/recurring-grants`, undefined, { token });
      if (role === "gateway") expectProblem(read, 403, "forbidden");
      else expect(read.status).toBe(200);
    }
    expectProblem(
      await call("POST", `/v1/accounts/${a}/recurring-grants`, valid(), { token: "nope" }),
      401,
      "unauthorized",
    );
    expect(await state(a)).toEqual(before);
    // finance may.
    const { token } = await keyOf("finance");
    expect((await call("POST", `/v1/accounts/${a}/recurring-grants`, valid(), { token })).status).toBe(201);
  });
});
