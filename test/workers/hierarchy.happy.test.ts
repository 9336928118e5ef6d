/**
 * Account trees: GET …/children, GET …/balance?rollup=true over a three-level
 * tree (figures worked by hand), and the parent rules of PUT /v1/accounts
 * (depth ≤ MAX_DEPTH below a root, no cycles), with their bounds.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { CHILDREN_PAGE_MAX } from "../../src/api/accounts";
import { MAX_MOVED_SUBTREE, MAX_ROLLUP_ACCOUNTS } from "../../src/api/hierarchy";
import { MAX_DEPTH } from "../../src/ledger/hierarchy";
import { call, expectProblem, grant, runAlarm, uid } from "./helpers";

/** Creates (or moves) an account and ships its directory row to D1 at once. */
async function put(accountId: string, body: Record<string, unknown> = {}) {
  const res = await call("PUT", `/v1/accounts/${accountId}`, body);
  if (res.status >= 300) throw new Error(`PUT ${accountId}: ${res.status} ${res.text}`);
  await runAlarm(accountId);
  return res;
}

/** Directory rows written straight into D1, for bounds that need many accounts. */
async function directoryRows(parentId: string, count: number, prefix: string): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(5, "0")}`);
  const now = Date.now();
  for (let i = 0; i < ids.length; i += 50) {
    await env.DB.batch(
      ids
        .slice(i, i + 50)
        .map((id) =>
          env.DB.prepare(
            "INSERT INTO accounts (account_id, name, parent_id, verified, created_at_ms, updated_at_ms) VALUES (?, NULL, ?, 0, ?, ?)",
          ).bind(id, parentId, now, now),
        ),
    );
  }
  return ids;
}

/**
 * org ─┬─ deptA ── teamA1
 *      └─ deptB ── teamB1
 *
 * org:    purchased 1 000, debit 100           -> available 900
 * deptA:  promotional 300, hold 50             -> available 250, held 50
 * teamA1: compensatory 40                      -> available 40
 * deptB:  purchased 200                        -> available 200
 * teamB1: nothing                              -> 0
 */
async function tree() {
  const t = { org: uid("org"), deptA: uid("deptA"), deptB: uid("deptB"), teamA1: uid("teamA1"), teamB1: uid("teamB1") };
  await put(t.org, { name: "Org" });
  await put(t.deptA, { parent_id: t.org });
  await put(t.deptB, { parent_id: t.org });
  await put(t.teamA1, { parent_id: t.deptA });
  await put(t.teamB1, { parent_id: t.deptB });
  await grant(t.org, { amount: 1000, type: "purchased" });
  expect((await call("POST", `/v1/accounts/${t.org}/debits`, { debit_id: uid("d"), amount: 100 })).status).toBe(200);
  await grant(t.deptA, { amount: 300, type: "promotional" });
  const hold = await call("POST", `/v1/accounts/${t.deptA}/holds`, { hold_id: uid("h"), amount: 50 });
  expect(hold.status).toBe(201);
  await grant(t.teamA1, { amount: 40, type: "compensatory", reason: "outage" });
  await grant(t.deptB, { amount: 200, type: "purchased" });
  return t;
}

describe("roll-up balances", () => {
  it("adds up the account and every descendant, figures worked by hand", async () => {
    const t = await tree();
    const org = await call("GET", `/v1/accounts/${t.org}/balance?rollup=true`);
    expect(org.status).toBe(200);
    // The account's own balance is unchanged beside the roll-up.
    expect(org.json).toMatchObject({ account_id: t.org, available: 900, held: 0 });
    // available 900 + 250 + 40 + 200 + 0; held 50 (deptA's hold);
    // by_type (available + held): promotional 300, compensatory 40, purchased 900 + 200.
    expect(org.json.rollup).toEqual({
      available: 1390,
      held: 50,
      by_type: { promotional: 300, compensatory: 40, purchased: 1100 },
      accounts: 5,
    });

    const deptA = await call("GET", `/v1/accounts/${t.deptA}/balance?rollup=true`);
    expect(deptA.json.rollup).toEqual({
      available: 290,
      held: 50,
      by_type: { promotional: 300, compensatory: 40, purchased: 0 },
      accounts: 2,
    });
    const leaf = await call("GET", `/v1/accounts/${t.teamB1}/balance?rollup=true`);
    expect(leaf.json.rollup).toEqual({
      available: 0,
      held: 0,
      by_type: { promotional: 0, compensatory: 0, purchased: 0 },
      accounts: 1,
    });
  });

  it("follows later writes, and is absent unless asked for", async () => {
    const t = await tree();
    expect((await call("POST", `/v1/accounts/${t.teamA1}/debits`, { debit_id: uid("d"), amount: 15 })).status).toBe(
      200,
    );
    const org = await call("GET", `/v1/accounts/${t.org}/balance?rollup=true`);
    expect(org.json.rollup).toMatchObject({ available: 1375, by_type: { compensatory: 25 } });
    const plain = await call("GET", `/v1/accounts/${t.org}/balance`);
    expect(plain.json.rollup).toBeUndefined();
    expect((await call("GET", `/v1/accounts/${t.org}/balance?rollup=false`)).json.rollup).toBeUndefined();
  });

  it("is per unit", async () => {
    const t = await tree();
    await grant(t.teamB1, { amount: 7, type: "purchased", unit: "gpu_seconds" });
    const res = await call("GET", `/v1/accounts/${t.org}/balance?unit=gpu_seconds&rollup=true`);
    expect(res.json.rollup).toEqual({
      available: 7,
      held: 0,
      by_type: { promotional: 0, compensatory: 0, purchased: 7 },
      accounts: 5,
    });
  });

  it("refuses bad rollup values, as_of with rollup, and unknown accounts", async () => {
    const t = await tree();
    for (const bad of ["yes", "1", "TRUE", ""]) {
      expectProblem(await call("GET", `/v1/accounts/${t.org}/balance?rollup=${bad}`), 400, "invalid_request");
    }
    const asOf = new Date(Date.now() - 1000).toISOString();
    expectProblem(await call("GET", `/v1/accounts/${t.org}/balance?rollup=true&as_of=${asOf}`), 400, "invalid_request");
    expectProblem(await call("GET", `/v1/accounts/${uid("nobody")}/balance?rollup=true`), 404, "account_not_found");
  });

  it(`adds up at most MAX_ROLLUP_ACCOUNTS (${MAX_ROLLUP_ACCOUNTS}) accounts; a larger tree is 400`, async () => {
    const root = uid("big");
    await put(root);
    await grant(root, { amount: 5 });
    // Directory rows only: the bound is checked on the directory before any Durable Object is asked.
    // (At the bound itself each of the 999 descendants' DOs would be woken, too slow for this suite.)
    const ids = await directoryRows(root, MAX_ROLLUP_ACCOUNTS - 1, `${root}-c`);
    // One grandchild more: 1 + 999 + 1 accounts.
    await directoryRows(ids[0] as string, 1, `${root}-g`);
    const over = await call("GET", `/v1/accounts/${root}/balance?rollup=true`);
    expectProblem(over, 400, "invalid_request");
    expect(over.json.detail).toContain(String(MAX_ROLLUP_ACCOUNTS));
    // The plain balance is unaffected by the size of the tree.
    expect((await call("GET", `/v1/accounts/${root}/balance`)).json.available).toBe(5);
  });

  it("counts an account once even if the directory lags into a cycle, and skips rows without an account", async () => {
    const t = await tree();
    // A stale directory row naming org as deptA's child again, and one for an account that never was.
    await env.DB.prepare("UPDATE accounts SET parent_id = ? WHERE account_id = ?").bind(t.teamA1, t.org).run();
    await directoryRows(t.deptB, 1, `${t.deptB}-ghost`);
    const res = await call("GET", `/v1/accounts/${t.org}/balance?rollup=true`);
    expect(res.json.rollup).toMatchObject({ available: 1390, held: 50, accounts: 5 });
  });
});

describe("children", () => {
  it("lists the direct children only, by id", async () => {
    const t = await tree();
    const res = await call("GET", `/v1/accounts/${t.org}/children`);
    expect(res.status).toBe(200);
    expect(res.json.children.map((a: { account_id: string }) => a.account_id)).toEqual([t.deptA, t.deptB].sort());
    expect(res.json.children[0]).toMatchObject({ parent_id: t.org, verified: false });
    expect(res.json.next_cursor).toBeNull();
    const leaf = await call("GET", `/v1/accounts/${t.teamA1}/children`);
    expect(leaf.json).toEqual({ children: [], next_cursor: null });
  });

  it(`pages by cursor, at most CHILDREN_PAGE_MAX (${CHILDREN_PAGE_MAX}) a page`, async () => {
    const root = uid("pages");
    await put(root);
    const ids = await directoryRows(root, 5, `${root}-c`);
    const first = await call("GET", `/v1/accounts/${root}/children?limit=2`);
    expect(first.json.children.map((a: { account_id: string }) => a.account_id)).toEqual(ids.slice(0, 2));
    expect(first.json.next_cursor).toBe(ids[1]);
    const rest = await call("GET", `/v1/accounts/${root}/children?limit=10&after=${first.json.next_cursor}`);
    expect(rest.json.children.map((a: { account_id: string }) => a.account_id)).toEqual(ids.slice(2));
    expect(rest.json.next_cursor).toBeNull();
    for (const limit of ["0", String(CHILDREN_PAGE_MAX + 1), "x", "-1"]) {
      expectProblem(await call("GET", `/v1/accounts/${root}/children?limit=${limit}`), 400, "invalid_request");
    }
    expectProblem(await call("GET", `/v1/accounts/${root}/children?bogus=1`), 400, "invalid_request");
    expectProblem(await call("GET", `/v1/accounts/${uid("nobody")}/children`), 404, "account_not_found");
    expectProblem(await call("GET", `/v1/accounts/bad%20id/children`), 400, "invalid_request");
  });
});

describe("parent rules", () => {
  /** A chain root → l1 → … → l<levels>, every row shipped. */
  async function chain(levels: number): Promise<string[]> {
    const ids = [uid("root")];
    await put(ids[0] as string);
    for (let i = 1; i <= levels; i++) {
      const id = uid(`l${i}`);
      await put(id, { parent_id: ids[i - 1] });
      ids.push(id);
    }
    return ids;
  }

  it(`allows depth MAX_DEPTH (${MAX_DEPTH}) below a root and refuses one more`, async () => {
    const ids = await chain(MAX_DEPTH);
    const deepest = ids[MAX_DEPTH] as string;
    expect((await call("GET", `/v1/accounts/${deepest}`)).json.parent_id).toBe(ids[MAX_DEPTH - 1]);
    const tooDeep = uid("l5");
    const res = await call("PUT", `/v1/accounts/${tooDeep}`, { parent_id: deepest });
    expectProblem(res, 400, "invalid_request");
    expect(res.json.detail).toContain(`${MAX_DEPTH} levels`);
    // Nothing was created.
    expectProblem(await call("GET", `/v1/accounts/${tooDeep}`), 404, "account_not_found");
  });

  it("refuses a move whose subtree would end up too deep, and allows it where it fits", async () => {
    const ids = await chain(MAX_DEPTH - 1); // root … l3
    const s = uid("s");
    const s1 = uid("s1");
    await put(s);
    await put(s1, { parent_id: s });
    // s under l3 puts s at depth 4 and s1 at depth 5.
    const res = await call("PUT", `/v1/accounts/${s}`, { parent_id: ids[MAX_DEPTH - 1] });
    expectProblem(res, 400, "invalid_request");
    expect((await call("GET", `/v1/accounts/${s}`)).json.parent_id).toBeNull();
    // Under l2, s1 lands exactly at depth 4.
    expect((await call("PUT", `/v1/accounts/${s}`, { parent_id: ids[MAX_DEPTH - 2] })).status).toBe(200);
    expect((await call("GET", `/v1/accounts/${s}`)).json.parent_id).toBe(ids[MAX_DEPTH - 2]);
  });

  it("refuses cycles: itself, its child, its grandchild", async () => {
    const [root, l1, l2] = (await chain(2)) as [string, string, string];
    for (const parent of [root, l1, l2]) {
      const res = await call("PUT", `/v1/accounts/${root}`, { parent_id: parent });
      expectProblem(res, 400, "invalid_request");
      expect(res.json.detail).toContain("cycle");
    }
    expect((await call("GET", `/v1/accounts/${root}`)).json.parent_id).toBeNull();
    // l2 may move up to the root, and back to null.
    expect((await call("PUT", `/v1/accounts/${l2}`, { parent_id: root })).status).toBe(200);
    expect((await call("PUT", `/v1/accounts/${l2}`, { parent_id: null })).json.parent_id).toBeNull();
  });

  it("refuses an unknown parent with 404 and creates nothing", async () => {
    const id = uid("orphan");
    expectProblem(await call("PUT", `/v1/accounts/${id}`, { parent_id: uid("nobody") }), 404, "account_not_found");
    expectProblem(await call("GET", `/v1/accounts/${id}`), 404, "account_not_found");
  });

  it(`refuses to move an account with more than MAX_MOVED_SUBTREE (${MAX_MOVED_SUBTREE}) descendants`, async () => {
    const big = uid("bigmove");
    const target = uid("target");
    await put(big);
    await put(target);
    await directoryRows(big, MAX_MOVED_SUBTREE + 1, `${big}-c`);
    const res = await call("PUT", `/v1/accounts/${big}`, { parent_id: target });
    expectProblem(res, 400, "invalid_request");
    expect(res.json.detail).toContain(String(MAX_MOVED_SUBTREE));
  });
});
