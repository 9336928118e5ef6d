/**
 * Four eyes on grants and bulk grants: above its threshold a request is
 * stored (202 pending) and moves nothing; another admin or finance key
 * approves it and it runs once, however often or concurrently it is approved.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { deliver, keyOf, postBulk, recordingQueue, storedRows } from "./bulk-helpers";
import { ADMIN, balance, call, expectProblem, grant, ledgerEntries, type Res, read, uid } from "./helpers";

/** An account holding 100 purchased credits, with an account-level grant threshold. */
async function accountWithThreshold(threshold: Record<string, number>): Promise<string> {
  const a = uid("apr");
  await grant(a, { amount: 100 });
  const put = await call("PUT", `/v1/accounts/${a}/policy`, { approval_threshold: threshold });
  expect(put.status, put.text).toBe(200);
  return a;
}

const postGrant = (a: string, body: Record<string, unknown>, token: string) =>
  call("POST", `/v1/accounts/${a}/grants`, body, { token });
const approve = (id: string, token: string, body?: unknown) =>
  call("POST", `/v1/approvals/${id}/approve`, body, { token });
const reject = (id: string, token: string, reason = "not agreed") =>
  call("POST", `/v1/approvals/${id}/reject`, { reason }, { token });

async function auditActions(target: string): Promise<string[]> {
  const res = await call("GET", `/v1/audit?target=${target}&limit=100`);
  expect(res.status, res.text).toBe(200);
  return res.json.events.map((e: { action: string }) => e.action);
}

/** Grant entries of the account that name `grantId`. */
async function grantEntries(a: string, grantId: string) {
  return (await ledgerEntries(a)).filter((e) => e.kind === "grant" && e.grant_id === grantId);
}

describe("a grant above the account's threshold", () => {
  it("is pending (202) and moves nothing; the asker may not approve; another key runs it once", async () => {
    const a = await accountWithThreshold({ grant: 1000 });
    const asker = await keyOf("finance");
    const other = await keyOf("finance");
    const grantId = uid("g");
    const body = { grant_id: grantId, amount: 5000, type: "purchased", reason: "enterprise deal" };

    const asked = await postGrant(a, body, asker.token);
    expect(asked.status, asked.text).toBe(202);
    expect(asked.json).toMatchObject({
      status: "pending",
      kind: "grant",
      amount: 5000,
      accounts: 1,
      asked_by: `${asker.id}:finance`,
      request: { method: "POST", path: `/v1/accounts/${a}/grants`, idempotency_key: grantId, body },
    });
    const id = asked.json.approval_id as string;
    expect((await balance(a)).available).toBe(100);
    expect(await grantEntries(a, grantId)).toHaveLength(0);

    // The same request again, while pending: the same approval, replayed.
    const again = await postGrant(a, body, asker.token);
    expect(again.status).toBe(202);
    expect(again.json.approval_id).toBe(id);
    expect(again.headers.get("idempotent-replayed")).toBe("true");

    const own = await approve(id, asker.token);
    expectProblem(own, 403, "forbidden");
    expect((await balance(a)).available).toBe(100);

    const ran = await approve(id, other.token, { note: "checked the contract" });
    expect(ran.status, ran.text).toBe(201);
    expect(ran.json.grant).toMatchObject({ grant_id: grantId, amount: 5000, remaining: 5000 });
    expect(ran.json.balance.available).toBe(5100); // 100 + 5 000
    // Approving again answers the same result and moves nothing.
    const twice = await approve(id, ADMIN);
    expect(twice.status).toBe(201);
    expect(twice.headers.get("idempotent-replayed")).toBe("true");
    expect(twice.json.grant).toEqual(ran.json.grant);
    // After approval the request's own idempotency answers the asker's repeat.
    const repeat = await postGrant(a, body, asker.token);
    expect(repeat.status).toBe(201);
    expect(repeat.headers.get("idempotent-replayed")).toBe("true");
    expect((await balance(a)).available).toBe(5100);
    const entries = await grantEntries(a, grantId);
    expect(entries).toHaveLength(1);
    // Run on the asker's authority: the entry names the key that asked.
    expect(entries[0].actor).toBe(`${asker.id}:finance`);

    const got = await call("GET", `/v1/approvals/${id}`);
    expect(got.json).toMatchObject({
      status: "approved",
      decided_by: `${other.id}:finance`,
      reason: "checked the contract",
      result: { status: 201, code: null },
    });
    const actions = await auditActions(id);
    expect(actions).toEqual(["approval.requested", "approval.approved"]);
  });

  it("at or below the threshold runs at once (201); one above it waits", async () => {
    const a = await accountWithThreshold({ grant: 1000 });
    const at = await postGrant(a, { grant_id: uid("g"), amount: 1000, type: "purchased" }, ADMIN);
    expect(at.status, at.text).toBe(201);
    const below = await postGrant(a, { grant_id: uid("g"), amount: 1, type: "purchased" }, ADMIN);
    expect(below.status).toBe(201);
    const above = await postGrant(a, { grant_id: uid("g"), amount: 1001, type: "purchased" }, ADMIN);
    expect(above.status).toBe(202);
    expect((await balance(a)).available).toBe(100 + 1000 + 1);
  });

  it("the same id with another body while pending is 409 idempotency_conflict", async () => {
    const a = await accountWithThreshold({ grant: 10 });
    const grantId = uid("g");
    expect((await postGrant(a, { grant_id: grantId, amount: 11, type: "purchased" }, ADMIN)).status).toBe(202);
    const other = await postGrant(a, { grant_id: grantId, amount: 12, type: "purchased" }, ADMIN);
    expectProblem(other, 409, "idempotency_conflict");
  });

  it("a grant that ran before the threshold was set is replayed by its own idempotency, not held", async () => {
    const a = uid("apr");
    const body = { grant_id: uid("g"), amount: 500, type: "purchased" };
    expect((await postGrant(a, body, ADMIN)).status).toBe(201);
    await call("PUT", `/v1/accounts/${a}/policy`, { approval_threshold: { grant: 10 } });
    const repeat = await postGrant(a, body, ADMIN);
    expect(repeat.status).toBe(201);
    expect(repeat.headers.get("idempotent-replayed")).toBe("true");
    expect((await balance(a)).available).toBe(500);
  });

  it("rejected: nothing moves, approving later is 409 approval_closed, the repeat too", async () => {
    const a = await accountWithThreshold({ grant: 10 });
    const asker = await keyOf("finance");
    const body = { grant_id: uid("g"), amount: 50, type: "purchased" };
    const asked = await postGrant(a, body, asker.token);
    const id = asked.json.approval_id as string;
    const rejected = await reject(id, ADMIN, "no contract on file");
    expect(rejected.status, rejected.text).toBe(200);
    expect(rejected.json).toMatchObject({
      status: "rejected",
      reason: "no contract on file",
      decided_by: "admin-token:admin",
    });
    expectProblem(await approve(id, ADMIN), 409, "approval_closed");
    expectProblem(await postGrant(a, body, asker.token), 409, "approval_closed");
    // Rejecting again answers the first result.
    const again = await reject(id, ADMIN, "other words");
    expect(again.status).toBe(200);
    expect(again.json.reason).toBe("no contract on file");
    expect((await balance(a)).available).toBe(100);
    expect(await grantEntries(a, body.grant_id)).toHaveLength(0);
    expect(await auditActions(id)).toEqual(["approval.requested", "approval.rejected"]);
  });

  it("an approved request cannot be rejected (409)", async () => {
    const a = await accountWithThreshold({ grant: 10 });
    const asker = await keyOf("finance");
    const id = (await postGrant(a, { grant_id: uid("g"), amount: 50, type: "purchased" }, asker.token)).json
      .approval_id;
    expect((await approve(id, ADMIN)).status).toBe(201);
    expectProblem(await reject(id, ADMIN), 409, "approval_closed");
    expect((await balance(a)).available).toBe(150);
  });

  it("two approvers at once: one claim, one run, one grant", async () => {
    const a = await accountWithThreshold({ grant: 10 });
    const asker = await keyOf("support", 1000);
    const grantId = uid("g");
    const body = { grant_id: grantId, amount: 700, type: "compensatory", reason: "outage" };
    const id = (await postGrant(a, body, asker.token)).json.approval_id as string;
    const [k1, k2] = await Promise.all([keyOf("finance"), keyOf("admin")]);
    const results: Res[] = await Promise.all([
      approve(id, k1.token),
      approve(id, k2.token),
      approve(id, ADMIN),
      approve(id, k1.token),
    ]);
    for (const r of results) expect(r.status, r.text).toBe(201);
    expect(results.filter((r) => r.headers.get("idempotent-replayed") !== "true")).toHaveLength(1);
    expect((await balance(a)).available).toBe(800);
    const entries = await grantEntries(a, grantId);
    expect(entries).toHaveLength(1);
    expect(entries[0].actor).toBe(`${asker.id}:support`);
    expect((await auditActions(id)).filter((x) => x === "approval.approved")).toHaveLength(1);
  });

  it("runs on the asker's stored authority: a support key's limit still applies", async () => {
    const a = await accountWithThreshold({ grant: 10 });
    const asker = await keyOf("support", 100);
    // Above the threshold but within the key's limit: pending, then granted.
    const ok = await postGrant(a, { grant_id: uid("g"), amount: 90, type: "compensatory", reason: "r" }, asker.token);
    expect(ok.status).toBe(202);
    expect((await approve(ok.json.approval_id, ADMIN)).status).toBe(201);
    // Above the key's limit: refused at once, never stored for approval.
    const over = await postGrant(
      a,
      { grant_id: uid("g"), amount: 101, type: "compensatory", reason: "r" },
      asker.token,
    );
    expectProblem(over, 403, "grant_limit_exceeded");
    // A grant breaking the ledger's rules (compensatory without a reason) is refused before it is stored.
    const bad = await postGrant(a, { grant_id: uid("g"), amount: 50, type: "compensatory" }, asker.token);
    expect(bad.status).toBe(400);
    expect((await balance(a)).available).toBe(190);
  });

  it("a key revoked while its request waits: approving is 403, rejecting still works", async () => {
    const a = await accountWithThreshold({ grant: 10 });
    const asker = await keyOf("marketing", 1000);
    const id = (await postGrant(a, { grant_id: uid("g"), amount: 500, type: "promotional" }, asker.token)).json
      .approval_id as string;
    expect((await call("DELETE", `/v1/api-keys/${asker.id}`)).status).toBe(200);
    expectProblem(await approve(id, ADMIN), 403, "forbidden");
    expect((await call("GET", `/v1/approvals/${id}`)).json.status).toBe("pending");
    expect((await reject(id, ADMIN, "asker left")).status).toBe(200);
    expect((await balance(a)).available).toBe(100);
  });
});

describe("GET /v1/approvals", () => {
  it("lists by status, oldest first, a page at a time", async () => {
    const a = await accountWithThreshold({ grant: 1 });
    const asker = await keyOf("finance");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await postGrant(a, { grant_id: uid("g"), amount: 2 + i, type: "purchased" }, asker.token);
      ids.push(r.json.approval_id);
    }
    await reject(ids[1] as string, ADMIN);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 50; page++) {
      const q: string = `/v1/approvals?status=pending&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const res = await call("GET", q);
      expect(res.status, res.text).toBe(200);
      expect(res.json.approvals.length).toBeLessThanOrEqual(2);
      for (const x of res.json.approvals) {
        expect(x.status).toBe("pending");
        seen.push(x.approval_id);
      }
      cursor = res.json.next_cursor;
      if (cursor === null) break;
    }
    expect(seen).toContain(ids[0]);
    expect(seen).toContain(ids[2]);
    expect(seen).not.toContain(ids[1]);
    expect(seen.indexOf(ids[0] as string)).toBeLessThan(seen.indexOf(ids[2] as string));
    const rejected = await call("GET", "/v1/approvals?status=rejected&limit=100");
    expect(rejected.json.approvals.map((x: { approval_id: string }) => x.approval_id)).toContain(ids[1]);
  });
});

describe("a bulk grant above the global bulk threshold (the job's total: amount × accounts)", () => {
  afterAll(async () => {
    await call("PUT", "/v1/policy", { approval_threshold: { bulk: null } });
  });

  /** POST /v1/approvals/{id}/approve through the Worker's fetch, with BULK_QUEUE recorded. */
  async function approveBulk(id: string, token: string, queue: Queue<never>) {
    const req = new Request(`http://gate.test/v1/approvals/${id}/approve`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    return read(await worker.fetch(req, { ...env, BULK_QUEUE: queue }, createExecutionContext()));
  }

  it("waits with nothing stored or enqueued; approved, it runs once; at the threshold it runs at once", async () => {
    const put = await call("PUT", "/v1/policy", { approval_threshold: { bulk: 1000 } });
    expect(put.json.approval_threshold).toEqual({ bulk: 1000 });
    const asker = await keyOf("marketing", 500);
    const accounts = [uid("b"), uid("b"), uid("b")];
    const bulkId = uid("bulk");
    const body = { bulk_id: bulkId, account_ids: accounts, grant: { amount: 400, type: "promotional" } };
    const first = recordingQueue();
    const asked = await postBulk(body, { token: asker.token, queue: first.queue });
    // 3 × 400 = 1 200 > 1 000, though each grant (400) is below it.
    expect(asked.status, asked.text).toBe(202);
    expect(asked.json).toMatchObject({ status: "pending", kind: "bulk", amount: 400, accounts: 3 });
    expect(first.sendCalls()).toBe(0);
    expect(await storedRows(bulkId)).toEqual({ jobs: 0, items: 0 });

    const own = recordingQueue();
    expectProblem(await approveBulk(asked.json.approval_id, asker.token, own.queue as never), 403, "forbidden");
    const q = recordingQueue();
    const ran = await approveBulk(asked.json.approval_id, ADMIN, q.queue as never);
    expect(ran.status, ran.text).toBe(202);
    expect(ran.json).toMatchObject({ bulk_id: bulkId, total: 3, pending: 3 });
    await deliver(q.sent);
    for (const a of accounts) expect((await balance(a)).available).toBe(400);
    // Approving again: the job's status, nothing granted twice.
    const q2 = recordingQueue();
    const again = await approveBulk(asked.json.approval_id, ADMIN, q2.queue as never);
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toMatchObject({ bulk_id: bulkId, granted: 3, pending: 0 });
    await deliver(q2.sent);
    for (const a of accounts) expect((await balance(a)).available).toBe(400);

    // 2 × 500 = 1 000: at the threshold, it runs at once.
    const direct = await postBulk(
      { bulk_id: uid("bulk"), account_ids: [uid("b"), uid("b")], grant: { amount: 500, type: "promotional" } },
      { token: asker.token },
    );
    expect(direct.status).toBe(202);
    expect(direct.json.status).toBe("running");
  });
});

describe("a transfer above the source account's threshold", () => {
  it("waits, moves nothing; approved it runs once; at the threshold it runs at once", async () => {
    const from = await accountWithThreshold({ transfer: 50 });
    await grant(from, { amount: 900 });
    const to = uid("apr-to");
    await grant(to, { amount: 1 });
    const asker = await keyOf("finance");
    const body = { transfer_id: uid("t"), from_account: from, to_account: to, amount: 300 };
    const asked = await call("POST", "/v1/transfers", body, { token: asker.token });
    expect(asked.status, asked.text).toBe(202);
    expect(asked.json).toMatchObject({ status: "pending", kind: "transfer", amount: 300 });
    expect((await balance(from)).available).toBe(1000);
    expect((await balance(to)).available).toBe(1);
    expectProblem(await approve(asked.json.approval_id, asker.token), 403, "forbidden");

    const ran = await approve(asked.json.approval_id, ADMIN);
    expect(ran.status, ran.text).toBe(201);
    expect(ran.json).toMatchObject({ transfer_id: body.transfer_id, status: "completed", amount: 300 });
    const twice = await approve(asked.json.approval_id, ADMIN);
    expect(twice.status).toBe(201);
    expect(twice.headers.get("idempotent-replayed")).toBe("true");
    expect((await balance(from)).available).toBe(700); // 1 000 − 300
    expect((await balance(to)).available).toBe(301); // 1 + 300

    const direct = await call(
      "POST",
      "/v1/transfers",
      { ...body, transfer_id: uid("t"), amount: 50 },
      { token: asker.token },
    );
    expect(direct.status, direct.text).toBe(201);
    expect((await balance(from)).available).toBe(650);
    expect(await auditActions(asked.json.approval_id)).toEqual(["approval.requested", "approval.approved"]);
  });
});

describe("found in review: an account override only tightens four eyes", () => {
  it("finance raising its account's threshold above the global one still needs a second key", async () => {
    const a = uid("acct");
    expect((await call("PUT", `/v1/accounts/${a}`, {})).status).toBe(201);
    const fin = (await call("POST", "/v1/api-keys", { name: uid("k"), role: "finance" })).json.key as string;
    expect((await call("PUT", "/v1/policy", { approval_threshold: { grant: 100 } })).status).toBe(200);
    try {
      const raised = await call(
        "PUT",
        `/v1/accounts/${a}/policy`,
        { approval_threshold: { grant: 9_000_000_000_000_000 } },
        { token: fin },
      );
      expect(raised.status).toBe(200);
      expect(raised.json.approval_threshold).toEqual({ grant: 100 });
      const big = await call(
        "POST",
        `/v1/accounts/${a}/grants`,
        { grant_id: uid("g"), type: "purchased", amount: 1000 },
        { token: fin },
      );
      expect(big.status).toBe(202);
      expect(big.json.status).toBe("pending");
      // Lower than the global one: the account's own stricter threshold applies.
      await call("PUT", `/v1/accounts/${a}/policy`, { approval_threshold: { grant: 10 } }, { token: fin });
      const mid = await call(
        "POST",
        `/v1/accounts/${a}/grants`,
        { grant_id: uid("g"), type: "purchased", amount: 50 },
        { token: fin },
      );
      expect(mid.status).toBe(202);
      expect((await call("GET", `/v1/accounts/${a}/balance`)).json.available).toBe(0);
    } finally {
      await call("PUT", "/v1/policy", { approval_threshold: { grant: null } });
    }
  });
});
