/** Transfers and budgets under account-scoped keys: other trees are invisible and untouched. */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { balance, call, expectProblem, grant, ledgerStubFor, uid } from "./helpers";

async function org() {
  const root = uid("org");
  const dept = uid("dept");
  expect((await call("PUT", `/v1/accounts/${root}`, {})).status).toBe(201);
  expect((await call("PUT", `/v1/accounts/${dept}`, { parent_id: root })).status).toBe(201);
  // Scope follows the D1 directory, which the outbox feeds: ship it now.
  for (const id of [root, dept]) await runInDurableObject(ledgerStubFor(id), (inst: AccountLedger) => inst.drain());
  return { root, dept };
}

describe("scoped keys and transfers", () => {
  it("moves inside the key's tree, refuses accounts outside it with 404, moving nothing", async () => {
    const mine = await org();
    const theirs = await org();
    await grant(mine.root, { amount: 50 });
    await grant(theirs.root, { amount: 50 });
    const key = await call("POST", "/v1/api-keys", { name: uid("k"), role: "finance", account_scope: mine.root });
    expect(key.status).toBe(201);
    const token = key.json.key as string;
    const send = (from: string, to: string) =>
      call(
        "POST",
        "/v1/transfers",
        { transfer_id: uid("t"), from_account: from, to_account: to, amount: 5 },
        { token },
      );
    const inside = await send(mine.root, mine.dept);
    expect(inside.status).toBe(201);
    expectProblem(await send(mine.root, theirs.dept), 404, "account_not_found");
    expectProblem(await send(theirs.root, mine.dept), 404, "account_not_found");
    // A transfer between the other tree's accounts, made by an unscoped admin, stays invisible to the key.
    const other = await call("POST", "/v1/transfers", {
      transfer_id: uid("t"),
      from_account: theirs.root,
      to_account: theirs.dept,
      amount: 1,
    });
    expect(other.status).toBe(201);
    expectProblem(
      await call("GET", `/v1/transfers/${other.json.transfer_id}`, undefined, { token }),
      404,
      "transfer_not_found",
    );
    expect((await call("GET", `/v1/transfers/${inside.json.transfer_id}`, undefined, { token })).status).toBe(200);
    expect((await balance(mine.root)).available).toBe(45);
    expect((await balance(theirs.root)).available).toBe(49);
    expect((await balance(theirs.dept)).available).toBe(1);
  });

  it("a transfer the guardrails refuse is refused at once, even above the approval threshold: nothing waits", async () => {
    const { root, dept } = await org();
    await grant(root, { amount: 100 });
    expect((await call("PUT", `/v1/accounts/${root}/policy`, { approval_threshold: { transfer: 10 } })).status).toBe(
      200,
    );
    const key = await call("POST", "/v1/api-keys", { name: uid("k"), role: "finance", max_transfer_amount: 20 });
    const token = key.json.key as string;
    const body = { transfer_id: uid("t"), from_account: root, to_account: dept, amount: 30 };
    expectProblem(await call("POST", "/v1/transfers", body, { token }), 403, "grant_limit_exceeded");
    const missing = { ...body, transfer_id: uid("t"), to_account: uid("nobody"), amount: 15 };
    expectProblem(await call("POST", "/v1/transfers", missing, { token }), 404, "account_not_found");
    const pending = await call("GET", "/v1/approvals?status=pending&limit=100");
    expect(pending.status).toBe(200);
    const asked = JSON.stringify(pending.json);
    expect(asked).not.toContain(body.transfer_id);
    expect(asked).not.toContain(missing.transfer_id);
    // Within the key's limit but above the threshold: this one does wait.
    const waits = await call("POST", "/v1/transfers", { ...body, transfer_id: uid("t"), amount: 15 }, { token });
    expect(waits.status).toBe(202);
    expect((await balance(root)).available).toBe(100);
    expect((await balance(dept)).available).toBe(0);
  });

  it("a transfer between two trees is an admin or finance act, and it works for them", async () => {
    const a = await org();
    const b = await org();
    await grant(a.dept, { amount: 10 });
    const finance = (await call("POST", "/v1/api-keys", { name: uid("k"), role: "finance" })).json.key;
    const res = await call(
      "POST",
      "/v1/transfers",
      { transfer_id: uid("t"), from_account: a.dept, to_account: b.dept, amount: 3 },
      { token: finance },
    );
    expect(res.status).toBe(201);
    for (const role of ["support", "marketing", "gateway", "viewer"]) {
      const token = (await call("POST", "/v1/api-keys", { name: uid("k"), role })).json.key;
      const refused = await call(
        "POST",
        "/v1/transfers",
        { transfer_id: uid("t"), from_account: a.dept, to_account: b.dept, amount: 1 },
        { token },
      );
      expectProblem(refused, 403, "forbidden");
    }
    expect([(await balance(a.dept)).available, (await balance(b.dept)).available]).toEqual([7, 3]);
  });

  it("API keys carry max_transfer_amount and show it", async () => {
    const res = await call("POST", "/v1/api-keys", { name: uid("k"), role: "finance", max_transfer_amount: 25 });
    expect(res.status).toBe(201);
    expect(res.json.max_transfer_amount).toBe(25);
    const listed = (await call("GET", "/v1/api-keys")).json.api_keys.find((k: any) => k.id === res.json.id);
    expect(listed.max_transfer_amount).toBe(25);
    for (const bad of [0, -1, 1.5, "5", 10 ** 16]) {
      const r = await call("POST", "/v1/api-keys", { name: uid("k"), role: "finance", max_transfer_amount: bad });
      expect(r.status).toBe(400);
    }
  });
});

describe("found in review", () => {
  it("a key scoped to a child may not give it a budget on the parent it cannot see", async () => {
    const { root, dept } = await org();
    await grant(root, { amount: 1000 });
    const key = await call("POST", "/v1/api-keys", { name: uid("k"), role: "admin", account_scope: dept });
    const token = key.json.key as string;
    expectProblem(await call("GET", `/v1/accounts/${root}/balance`, undefined, { token }), 404, "account_not_found");
    const put = await call("PUT", `/v1/accounts/${dept}/budget`, { period: "month", limit: 900 }, { token });
    expectProblem(put, 403, "forbidden");
    expectProblem(await call("DELETE", `/v1/accounts/${dept}/budget`, undefined, { token }), 403, "forbidden");
    const d = await call("POST", `/v1/accounts/${dept}/debits`, { debit_id: uid("d"), amount: 900 }, { token });
    expectProblem(d, 402, "insufficient_credits");
    expect((await balance(root)).available).toBe(1000);
  });

  it("a cancelled transfer whose return lot id is taken still gives the credits back, and does not stall recovery", async () => {
    const src = uid("src");
    const dst = uid("dst");
    const t = uid("t");
    for (const id of [src, dst]) expect((await call("PUT", `/v1/accounts/${id}`, {})).status).toBe(201);
    await grant(src, { grant_id: "g1", amount: 500 });
    await grant(src, { grant_id: `${t}.r0`, amount: 1 });
    // The destination already has the lot id the transfer would create: it refuses, so the source cancels.
    await grant(dst, { grant_id: `${t}.0`, amount: 1 });
    const res = await call("POST", "/v1/transfers", {
      transfer_id: t,
      from_account: src,
      to_account: dst,
      amount: 400,
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((await call("GET", `/v1/transfers/${t}`)).json.status).toBe("cancelled");
    expect((await balance(src)).available).toBe(501);
    expect((await balance(dst)).available).toBe(1);
    const lots = (await call("GET", `/v1/accounts/${src}/grants?limit=100`)).json.grants;
    const returned = lots.filter((g: any) => g.source === "transfer");
    expect(returned.map((g: any) => g.amount)).toEqual([400]);
    expect(returned[0].grant_id).not.toBe(`${t}.r0`);
  });
});
