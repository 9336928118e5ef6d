/**
 * Grants awaiting payment, refused: bad input, wrong roles, unknown grants
 * and accounts, the other transition after either, an id already taken, an
 * expiry passed by activation, bulk grants. Every refusal is problem+json
 * and changes nothing (checked by reading the records back).
 */
import { describe, expect, it } from "vitest";
import { keyOf } from "./bulk-helpers";
import { call, debit, expectProblem, grant, ledgerEntries, uid } from "./helpers";
import { doNow, setDoClock } from "./jobs-helpers";

const post = (a: string, body: Record<string, unknown>, token?: string) =>
  call("POST", `/v1/accounts/${a}/grants`, { type: "purchased", awaiting_payment: true, ...body }, { token });
const awaitingIds = async (a: string) =>
  (await call("GET", `/v1/accounts/${a}/grants?status=awaiting_payment`)).json.grants.map((g: any) => g.grant_id);

async function accountWithAwaiting(grantId = "aw") {
  const a = uid();
  await grant(a, { amount: 10 });
  expect((await post(a, { grant_id: grantId, amount: 100 })).status).toBe(201);
  return a;
}

describe("creating a grant awaiting payment, refused", () => {
  it("bad bodies are 400 and record nothing", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const cases: [Record<string, unknown>, string][] = [
      [{ grant_id: "x1", amount: 0 }, "invalid_amount"],
      [{ grant_id: "x2", amount: 1.5 }, "invalid_amount"],
      [{ grant_id: "x3", amount: 10, awaiting_payment: "yes" }, "invalid_request"],
      [{ grant_id: "x4", amount: 10, awaiting_payment: 1 }, "invalid_request"],
      [{ grant_id: "x5", amount: 10, type: "compensatory" }, "invalid_request"],
      [
        { grant_id: "x6", amount: 10, type: "promotional", cost_basis: { amount: 1, currency: "USD" } },
        "invalid_request",
      ],
      [{ grant_id: "x7", amount: 10, expires_at: "2001-01-01T00:00:00Z" }, "invalid_request"],
      [{ grant_id: "bad id!", amount: 10 }, "invalid_request"],
      [{ grant_id: "x8", amount: 10, surprise: true }, "invalid_request"],
    ];
    for (const [body, code] of cases) expectProblem(await post(a, body), 400, code);
    expectProblem(await call("POST", `/v1/accounts/${a}/grants`, undefined, { raw: "{not json" }), 400, "invalid_json");
    expectProblem(await post(a, { amount: 10 }), 400, "invalid_request"); // no id
    expect(await awaitingIds(a)).toEqual([]);
    expect((await call("GET", `/v1/accounts/${a}/balance`)).json.awaiting_payment).toEqual([]);
  });

  it("an id taken by a lot or another awaiting grant is 409; the same id with another body is 409", async () => {
    const a = uid();
    const lot = await grant(a, { amount: 10 });
    expectProblem(await post(a, { grant_id: lot.grant.grant_id, amount: 5 }), 409, "idempotency_conflict");
    expect((await post(a, { grant_id: "aw", amount: 5 })).status).toBe(201);
    expectProblem(await post(a, { grant_id: "aw", amount: 6 }), 409, "idempotency_conflict");
    // A plain grant may not take an awaiting grant's id either.
    expectProblem(
      await call("POST", `/v1/accounts/${a}/grants`, { grant_id: "aw", type: "purchased", amount: 5 }),
      409,
      "idempotency_conflict",
    );
    expect(await awaitingIds(a)).toEqual(["aw"]);
    expect((await call("GET", `/v1/accounts/${a}/balance`)).json.available).toBe(10);
  });

  it("roles and limits are a grant's: support may not ask for purchased credits, nor above its limit", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const support = await keyOf("support", 50);
    const gateway = await keyOf("gateway");
    expectProblem(await post(a, { grant_id: "s1", amount: 10 }, support.token), 403, "forbidden");
    expectProblem(
      await post(a, { grant_id: "s2", amount: 60, type: "compensatory", reason: "outage" }, support.token),
      403,
      "grant_limit_exceeded",
    );
    expectProblem(await post(a, { grant_id: "s3", amount: 10 }, gateway.token), 403, "forbidden");
    expect(await awaitingIds(a)).toEqual([]);
  });

  it("above the account's approval threshold it is 202 pending and records nothing until approved", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    expect((await call("PUT", `/v1/accounts/${a}/policy`, { approval_threshold: { grant: 1000 } })).status).toBe(200);
    const asker = await keyOf("finance");
    const approver = await keyOf("finance");
    const asked = await post(a, { grant_id: "big", amount: 5000 }, asker.token);
    expect(asked.status).toBe(202);
    expect(await awaitingIds(a)).toEqual([]);
    const approved = await call("POST", `/v1/approvals/${asked.json.approval_id}/approve`, undefined, {
      token: approver.token,
    });
    expect(approved.status, approved.text).toBe(201);
    expect(approved.json.grant).toMatchObject({ grant_id: "big", status: "awaiting_payment" });
    expect(await awaitingIds(a)).toEqual(["big"]);
    expect((await call("GET", `/v1/accounts/${a}/balance`)).json.available).toBe(10);
  });

  it("a bulk grant refuses awaiting_payment (400 invalid_request): bulk grants are issued at once", async () => {
    const res = await call("POST", "/v1/grants/bulk", {
      bulk_id: uid("bulk"),
      account_ids: [uid()],
      grant: { amount: 10, type: "purchased", awaiting_payment: true },
    });
    expectProblem(res, 400, "invalid_request");
    expect(res.json.detail).toContain("awaiting_payment");
  });
});

describe("activating and cancelling, refused", () => {
  it("unknown grants and accounts are 404; a lot that never awaited payment is 409 grant_closed", async () => {
    const a = await accountWithAwaiting();
    expectProblem(await call("POST", `/v1/accounts/${a}/grants/nope/activate`, {}), 404, "grant_not_found");
    expectProblem(await call("POST", `/v1/accounts/${a}/grants/nope/cancel`, { reason: "x" }), 404, "grant_not_found");
    expectProblem(await call("POST", `/v1/accounts/${uid()}/grants/aw/activate`, {}), 404, "account_not_found");
    const lot = (await call("GET", `/v1/accounts/${a}/grants`)).json.grants[0].grant_id;
    expectProblem(await call("POST", `/v1/accounts/${a}/grants/${lot}/activate`, {}), 409, "grant_closed");
    expectProblem(await call("POST", `/v1/accounts/${a}/grants/bad id!/activate`, {}), 400, "invalid_request");
    expect(await awaitingIds(a)).toEqual(["aw"]);
  });

  it("the other transition after either is 409 grant_closed and changes nothing", async () => {
    const a = await accountWithAwaiting("one");
    expect((await post(a, { grant_id: "two", amount: 50 })).status).toBe(201);
    expect((await call("POST", `/v1/accounts/${a}/grants/one/activate`, {})).status).toBe(200);
    expect((await call("POST", `/v1/accounts/${a}/grants/two/cancel`, { reason: "unpaid" })).status).toBe(200);
    expectProblem(await call("POST", `/v1/accounts/${a}/grants/one/cancel`, { reason: "late" }), 409, "grant_closed");
    expectProblem(await call("POST", `/v1/accounts/${a}/grants/two/activate`, {}), 409, "grant_closed");
    const bal = (await call("GET", `/v1/accounts/${a}/balance`)).json;
    expect(bal).toMatchObject({ available: 110, awaiting_payment: [] });
    expect((await ledgerEntries(a)).filter((e) => e.kind === "grant").map((e) => e.grant_id)).toEqual([
      expect.any(String),
      "one",
    ]);
  });

  it("bad bodies and roles are refused; the grant still awaits payment", async () => {
    const a = await accountWithAwaiting();
    const support = await keyOf("support", 1000);
    const viewer = await keyOf("viewer");
    const act = `/v1/accounts/${a}/grants/aw/activate`;
    const cancel = `/v1/accounts/${a}/grants/aw/cancel`;
    expectProblem(await call("POST", act, { payment_ref: 42 }), 400, "invalid_request");
    expectProblem(await call("POST", act, { payment_ref: "x".repeat(257) }), 400, "invalid_request");
    expectProblem(await call("POST", act, { paid: true }), 400, "invalid_request");
    expectProblem(await call("POST", act, undefined, { raw: "[" }), 400, "invalid_json");
    expectProblem(await call("POST", cancel, {}), 400, "invalid_request");
    expectProblem(await call("POST", cancel, { reason: "" }), 400, "invalid_request");
    expectProblem(await call("POST", act, {}, { token: support.token }), 403, "forbidden");
    expectProblem(await call("POST", cancel, { reason: "x" }, { token: viewer.token }), 403, "forbidden");
    expectProblem(await call("POST", act, {}, { token: null }), 401, "unauthorized");
    expect(await awaitingIds(a)).toEqual(["aw"]);
  });

  it("an explicit expires_at passed by activation is 409 grant_closed; the grant stays awaiting and can be cancelled", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const now = await doNow(a);
    const expiresAt = new Date(now + 3_600_000).toISOString();
    expect((await post(a, { grant_id: "short", amount: 30, expires_at: expiresAt })).status).toBe(201);
    await setDoClock(a, now + 2 * 3_600_000);
    const res = await call("POST", `/v1/accounts/${a}/grants/short/activate`, {});
    expectProblem(res, 409, "grant_closed");
    expect(res.json.detail).toContain("expires_at");
    expect(await awaitingIds(a)).toEqual(["short"]);
    expect((await debit(a, 11)).status).toBe(402);
    expect((await call("POST", `/v1/accounts/${a}/grants/short/cancel`, { reason: "expired" })).status).toBe(200);
    expect(await awaitingIds(a)).toEqual([]);
  });
});
