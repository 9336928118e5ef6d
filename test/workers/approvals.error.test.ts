/**
 * Bad input on the approvals routes and on approval_threshold: a clear
 * problem+json, and nothing changes (the approval stays pending, the policy
 * as it was, no credits move).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { keyOf } from "./bulk-helpers";
import { ADMIN, balance, call, expectProblem, grant, uid } from "./helpers";

let account: string;
let pendingId: string;
let asker: { token: string; id: string };

beforeAll(async () => {
  account = uid("apr-err");
  await grant(account, { amount: 100 });
  const put = await call("PUT", `/v1/accounts/${account}/policy`, { approval_threshold: { grant: 10 } });
  expect(put.status, put.text).toBe(200);
  asker = await keyOf("finance");
  const asked = await call(
    "POST",
    `/v1/accounts/${account}/grants`,
    { grant_id: uid("g"), amount: 50, type: "purchased" },
    { token: asker.token },
  );
  expect(asked.status, asked.text).toBe(202);
  pendingId = asked.json.approval_id;
});

/** The approval is still pending and the account's balance still 100. */
async function nothingChanged() {
  const got = await call("GET", `/v1/approvals/${pendingId}`);
  expect(got.json.status).toBe("pending");
  expect(got.json.decided_by).toBeNull();
  expect((await balance(account)).available).toBe(100);
}

describe("approve and reject: bad input changes nothing", () => {
  const cases: [string, string, string | undefined, Record<string, string>?][] = [
    ["approve: unknown field", "approve", JSON.stringify({ note: "x", force: true })],
    ["approve: note not a string", "approve", JSON.stringify({ note: 5 })],
    ["approve: empty note", "approve", JSON.stringify({ note: "" })],
    ["approve: note over 256", "approve", JSON.stringify({ note: "n".repeat(257) })],
    ["approve: malformed JSON", "approve", "{note:"],
    ["approve: body not an object", "approve", JSON.stringify(["x"])],
    ["reject: no reason", "reject", JSON.stringify({})],
    ["reject: reason null", "reject", JSON.stringify({ reason: null })],
    ["reject: reason a number", "reject", JSON.stringify({ reason: 1 })],
    ["reject: unknown field", "reject", JSON.stringify({ reason: "r", status: "approved" })],
    ["reject: no body", "reject", undefined],
    ["reject: malformed JSON", "reject", "{"],
  ];
  for (const [label, verb, raw] of cases) {
    it(label, async () => {
      const res = await call("POST", `/v1/approvals/${pendingId}/${verb}`, undefined, raw === undefined ? {} : { raw });
      expect(res.status, res.text).toBe(400);
      expect(["invalid_request", "invalid_json"]).toContain(res.json.code);
      expectProblem(res, 400, res.json.code);
      await nothingChanged();
    });
  }

  it("a body that is not JSON by content-type: 415", async () => {
    const res = await call("POST", `/v1/approvals/${pendingId}/approve`, undefined, {
      raw: "note=x",
      headers: { "content-type": "text/plain" },
    });
    expectProblem(res, 415, "unsupported_media_type");
    await nothingChanged();
  });

  for (const [label, id, status] of [
    ["129 chars", "x".repeat(129), 400],
    ["encoded space", "a%20b", 400],
    ["é", "caf%C3%A9", 400],
    ["unknown", "apr_nope", 404],
  ] as const) {
    it(`approval id ${label}: ${status}`, async () => {
      for (const path of [`/v1/approvals/${id}/approve`, `/v1/approvals/${id}`]) {
        const res = await call(path.endsWith("approve") ? "POST" : "GET", path);
        expectProblem(res, status, status === 400 ? "invalid_request" : "not_found");
      }
      expectProblem(
        await call("POST", `/v1/approvals/${id}/reject`, { reason: "r" }),
        status,
        status === 400 ? "invalid_request" : "not_found",
      );
      await nothingChanged();
    });
  }

  it("roles: viewer, support, marketing and gateway may not decide; gateway may not read", async () => {
    for (const role of ["viewer", "support", "marketing", "gateway"]) {
      const k = await keyOf(role, 1000);
      expectProblem(
        await call("POST", `/v1/approvals/${pendingId}/approve`, undefined, { token: k.token }),
        403,
        "forbidden",
      );
      expectProblem(
        await call("POST", `/v1/approvals/${pendingId}/reject`, { reason: "r" }, { token: k.token }),
        403,
        "forbidden",
      );
    }
    const gw = await keyOf("gateway");
    expectProblem(await call("GET", "/v1/approvals", undefined, { token: gw.token }), 403, "forbidden");
    expectProblem(await call("GET", `/v1/approvals/${pendingId}`, undefined, { token: gw.token }), 403, "forbidden");
    expectProblem(
      await call("POST", `/v1/approvals/${pendingId}/approve`, undefined, { token: null }),
      401,
      "unauthorized",
    );
    await nothingChanged();
  });
});

describe("GET /v1/approvals: bad queries", () => {
  for (const [label, query] of [
    ["unknown status", "status=open"],
    ["limit 0", "limit=0"],
    ["limit over the page max", "limit=101"],
    ["limit not a number", "limit=ten"],
    ["cursor malformed", "cursor=abc"],
    ["unknown parameter", "kind=grant"],
  ] as const) {
    it(label, async () => {
      expectProblem(await call("GET", `/v1/approvals?${query}`), 400, "invalid_request");
    });
  }
});

describe("approval_threshold in policies: bad values are 400 and change nothing", () => {
  const bad: [string, unknown][] = [
    ["zero", { grant: 0 }],
    ["negative", { grant: -5 }],
    ["fractional", { transfer: 1.5 }],
    ["a string", { grant: "100" }],
    ["a boolean", { grant: true }],
    ["above safe integers", { grant: 2 ** 53 }],
    ["an unknown kind", { debit: 5 }],
    ["not an object", 100],
    ["an array", [100]],
  ];
  for (const [label, value] of bad) {
    it(`account policy: ${label}`, async () => {
      const before = (await call("GET", `/v1/accounts/${account}/policy`)).json;
      const res = await call("PUT", `/v1/accounts/${account}/policy`, { approval_threshold: value });
      expectProblem(res, 400, "invalid_request");
      expect((await call("GET", `/v1/accounts/${account}/policy`)).json).toEqual(before);
    });
    it(`global policy: ${label}`, async () => {
      const before = (await call("GET", "/v1/policy")).json;
      const res = await call("PUT", "/v1/policy", { approval_threshold: value });
      expectProblem(res, 400, "invalid_request");
      expect((await call("GET", "/v1/policy")).json).toEqual(before);
    });
  }

  it("an account may not set a bulk threshold (bulk jobs span accounts: global only)", async () => {
    const res = await call("PUT", `/v1/accounts/${account}/policy`, { approval_threshold: { bulk: 5 } });
    expectProblem(res, 400, "invalid_request");
    expect(res.json.detail).toContain("bulk");
  });
});

describe("approval_threshold merges kind by kind; null drops", () => {
  it("account overrides", async () => {
    const a = uid("apr-pol");
    await grant(a, { amount: 1 });
    const put = (body: unknown) => call("PUT", `/v1/accounts/${a}/policy`, body);
    expect((await put({ approval_threshold: { grant: 10 } })).json.approval_threshold).toEqual({ grant: 10 });
    expect((await put({ approval_threshold: { transfer: 5 } })).json.approval_threshold).toEqual({
      grant: 10,
      transfer: 5,
    });
    expect((await put({ approval_threshold: { grant: null } })).json.approval_threshold).toEqual({ transfer: 5 });
    expect((await put({ order: ["created"] })).json.approval_threshold).toEqual({ transfer: 5 });
    expect((await put({ approval_threshold: null })).json.approval_threshold).toEqual({});
    expect((await call("GET", `/v1/accounts/${a}/policy`)).json.approval_threshold).toEqual({});
  });

  it("global policy (bulk only here, so this file's grants are not held), and audited", async () => {
    expect((await call("PUT", "/v1/policy", { approval_threshold: { bulk: 700 } })).json.approval_threshold).toEqual({
      bulk: 700,
    });
    expect((await call("GET", "/v1/policy")).json.approval_threshold).toEqual({ bulk: 700 });
    // The account's effective policy carries the global kinds it does not override.
    expect((await call("GET", `/v1/accounts/${account}/policy`)).json.approval_threshold).toEqual({
      grant: 10,
      bulk: 700,
    });
    const dropped = await call("PUT", "/v1/policy", { approval_threshold: { bulk: null } });
    expect(dropped.json.approval_threshold).toEqual({});
    const audit = await call("GET", "/v1/audit?action=policy.updated&limit=1000");
    const last = audit.json.events[audit.json.events.length - 1];
    expect(last.after.approval_threshold).toEqual({});
    expect(last.before.approval_threshold).toEqual({ bulk: 700 });
  });
});

describe("asking: refusals store nothing", () => {
  it("a role that may not grant gets 403 before any approval is stored", async () => {
    const viewer = await keyOf("viewer");
    const before = (await call("GET", "/v1/approvals?limit=100")).json.approvals.length;
    const res = await call(
      "POST",
      `/v1/accounts/${account}/grants`,
      { grant_id: uid("g"), amount: 50, type: "purchased" },
      { token: viewer.token },
    );
    expectProblem(res, 403, "forbidden");
    expect((await call("GET", "/v1/approvals?limit=100")).json.approvals.length).toBe(before);
  });

  it("the asker approving its own request is 403 (and ADMIN asking, ADMIN approving too)", async () => {
    expectProblem(
      await call("POST", `/v1/approvals/${pendingId}/approve`, undefined, { token: asker.token }),
      403,
      "forbidden",
    );
    const own = await call("POST", `/v1/accounts/${account}/grants`, {
      grant_id: uid("g"),
      amount: 20,
      type: "purchased",
    });
    expect(own.status).toBe(202);
    expectProblem(
      await call("POST", `/v1/approvals/${own.json.approval_id}/approve`, undefined, { token: ADMIN }),
      403,
      "forbidden",
    );
    await nothingChanged();
  });
});
