/**
 * GET /v1/accounts: the D1 account directory, by account id, cursor-paged,
 * optionally the direct children of one parent. Each listed account is the
 * record GET /v1/accounts/{id} serves from its Durable Object, once that
 * DO's outbox has shipped (the tests drain it rather than wait for the alarm).
 */
import { describe, expect, it } from "vitest";
import { ACCOUNT_LIST_MAX, DEFAULT_ACCOUNT_LIST_LIMIT } from "../../src/api/accounts";
import { call, uid } from "./helpers";
import { drain } from "./jobs-helpers";

async function put(accountId: string, body: Record<string, unknown>): Promise<void> {
  const res = await call("PUT", `/v1/accounts/${accountId}`, body);
  expect(res.status, res.text).toBeLessThan(300);
}

/** What the DO itself serves for each account. */
async function records(ids: readonly string[]): Promise<unknown[]> {
  return Promise.all(
    ids.map(async (id) => {
      const res = await call("GET", `/v1/accounts/${id}`);
      expect(res.status).toBe(200);
      return res.json;
    }),
  );
}

/**
 * Follows next_cursor from `after` (or the start) until it is null or a page
 * leaves `prefix` (accounts of other tests share the directory).
 */
async function collect(query: string, prefix: string, after?: string): Promise<{ pages: string[][]; all: any[] }> {
  const pages: string[][] = [];
  const all: any[] = [];
  let path = `/v1/accounts?${query}${after === undefined ? "" : `&after=${after}`}`;
  for (let i = 0; i < 50; i++) {
    const res = await call("GET", path);
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.json).sort()).toEqual(["accounts", "next_cursor"]);
    const mine = (res.json.accounts as any[]).filter((a) => a.account_id.startsWith(prefix));
    pages.push(mine.map((a) => a.account_id));
    all.push(...mine);
    const cursor = res.json.next_cursor as string | null;
    if (cursor === null || mine.length < res.json.accounts.length) return { pages, all };
    expect(cursor).toBe(res.json.accounts.at(-1).account_id);
    path = `/v1/accounts?${query}&after=${encodeURIComponent(cursor)}`;
  }
  throw new Error("too many pages");
}

describe("GET /v1/accounts", () => {
  it("lists children of a parent and every account, following next_cursor across pages", async () => {
    const p = uid("lst");
    const root = `${p}.root`;
    const kids = [1, 2, 3, 4, 5].map((i) => `${p}.c${i}`);
    const grandchild = `${p}.g1`;
    const other = `${p}.other`;
    await put(root, { name: "root", verified: true, metadata: { tier: "gold" } });
    await put(other, { name: "other root", low_balance: { credits: 50, tokens: 7 } });
    for (const k of kids) await put(k, { name: k, parent_id: root });
    await put(grandchild, { parent_id: kids[0] });
    // Renamed after it was created: the directory holds the latest record.
    await put(kids[2] as string, { name: "renamed" });
    const everyone = [root, other, ...kids, grandchild];
    for (const id of everyone) await drain(id);

    // The children of root, two at a time, in account_id order.
    const children = await collect(`parent_id=${root}&limit=2`, p);
    expect(children.pages).toEqual([kids.slice(0, 2), kids.slice(2, 4), kids.slice(4)]);
    expect(children.all).toEqual(await records(kids));
    expect(children.all.find((a) => a.account_id === kids[2])?.name).toBe("renamed");
    // Direct children only: the grandchild is under c1.
    const underC1 = await call("GET", `/v1/accounts?parent_id=${kids[0]}`);
    expect(underC1.json).toEqual({ accounts: await records([grandchild]), next_cursor: null });
    // A parent with no children, and an id no account has.
    expect((await call("GET", `/v1/accounts?parent_id=${other}`)).json).toEqual({ accounts: [], next_cursor: null });
    expect((await call("GET", `/v1/accounts?parent_id=${uid("nobody")}`)).json).toEqual({
      accounts: [],
      next_cursor: null,
    });

    // Without parent_id: every account, here from just before this test's ids, three at a time.
    const sorted = [...everyone].sort();
    const listed = await collect("limit=3", p, p);
    expect(listed.all.map((a) => a.account_id)).toEqual(sorted);
    expect(listed.pages[0]).toEqual(sorted.slice(0, 3));
    expect(listed.all).toEqual(await records(sorted));
    // The same shape as GET /v1/accounts/{id}, JSON fields included.
    expect(listed.all.find((a) => a.account_id === root)).toMatchObject({
      name: "root",
      parent_id: null,
      verified: true,
      metadata: { tier: "gold" },
      low_balance: null,
    });
    expect(listed.all.find((a) => a.account_id === other)?.low_balance).toEqual({ credits: 50, tokens: 7 });

    // The cursor is exclusive: the page after an id starts with the next one.
    const afterFirst = await call("GET", `/v1/accounts?after=${sorted[0]}&limit=1`);
    expect(afterFirst.json).toEqual({ accounts: await records([sorted[1] as string]), next_cursor: sorted[1] });
  });

  it("pages default to DEFAULT_ACCOUNT_LIST_LIMIT and take up to ACCOUNT_LIST_MAX", async () => {
    expect(DEFAULT_ACCOUNT_LIST_LIMIT).toBe(100);
    expect(ACCOUNT_LIST_MAX).toBe(1000);
    const p = uid("lstbig");
    const root = `${p}.root`;
    await put(root, {});
    const kids = Array.from(
      { length: DEFAULT_ACCOUNT_LIST_LIMIT + 1 },
      (_, i) => `${p}.k${String(i).padStart(3, "0")}`,
    );
    await Promise.all(kids.map((k) => put(k, { parent_id: root })));
    await Promise.all(kids.map((k) => drain(k)));
    const first = await call("GET", `/v1/accounts?parent_id=${root}`);
    expect(first.json.accounts.map((a: any) => a.account_id)).toEqual(kids.slice(0, DEFAULT_ACCOUNT_LIST_LIMIT));
    expect(first.json.next_cursor).toBe(kids[DEFAULT_ACCOUNT_LIST_LIMIT - 1]);
    const rest = await call("GET", `/v1/accounts?parent_id=${root}&after=${first.json.next_cursor}`);
    expect(rest.json.accounts.map((a: any) => a.account_id)).toEqual(kids.slice(DEFAULT_ACCOUNT_LIST_LIMIT));
    expect(rest.json.next_cursor).toBeNull();
    const whole = await call("GET", `/v1/accounts?parent_id=${root}&limit=${ACCOUNT_LIST_MAX}`);
    expect(whole.json.accounts).toHaveLength(kids.length);
    expect(whole.json.next_cursor).toBeNull();
  });

  it("is open to every reader role, not to the gateway", async () => {
    const p = uid("lstrole");
    await put(`${p}.a`, {});
    await drain(`${p}.a`);
    for (const role of ["finance", "support", "marketing", "viewer", "gateway"]) {
      const key = await call("POST", "/v1/api-keys", { name: uid(`k-${role}`), role, max_grant_amount: 1 });
      expect(key.status).toBe(201);
      const res = await call("GET", `/v1/accounts?after=${p}&limit=1`, undefined, { token: key.json.key });
      if (role === "gateway") {
        expect(res.status).toBe(403);
        expect(res.json.code).toBe("forbidden");
      } else {
        expect(res.status, role).toBe(200);
        expect(res.json.accounts[0].account_id).toBe(`${p}.a`);
      }
    }
  });

  it("is documented in /openapi.json with its query and the Account shape", async () => {
    const doc = (await call("GET", "/openapi.json", undefined, { token: null })).json;
    const op = doc.paths["/v1/accounts"].get;
    expect(op.parameters.map((x: any) => x.name).sort()).toEqual(["after", "limit", "parent_id"]);
    expect(op.description).toMatch(/outbox/);
    expect(JSON.stringify(op.responses["200"])).toContain("#/components/schemas/AccountList");
    expect(JSON.stringify(doc.components.schemas.AccountList)).toContain("#/components/schemas/Account");
  });
});
