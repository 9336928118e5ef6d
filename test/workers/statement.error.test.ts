/** Issue 8: what a statement request refuses, each with its problem+json code. */
import { beforeAll, describe, expect, it } from "vitest";
import { STATEMENT_MAX_ENTRIES } from "../../src/ledger/statement";
import { advanceClock, call, expectProblem, grant, iso, uid } from "./helpers";

const HOUR = 3_600_000;
const a = uid("stmt-err");
let now = 0;

const url = (account: string, query: string) => `/v1/accounts/${account}/statement?${query}`;
const window = (from: number, to: number) => `from=${iso(from)}&to=${iso(to)}`;

beforeAll(async () => {
  await grant(a, { grant_id: "g1", amount: 100 });
  now = Date.parse((await call("GET", `/v1/accounts/${a}/balance`)).json.as_of);
});

describe("statement: bad windows are 400 invalid_request", () => {
  it("times that are not RFC 3339, or missing", async () => {
    for (const query of [
      `from=yesterday&to=${iso(now)}`,
      `from=${iso(now - HOUR)}&to=2026-02-30T00:00:00Z`,
      `from=${iso(now - HOUR)}&to=1795595179269`,
      `from=${iso(now - HOUR)}`,
      `to=${iso(now)}`,
      "",
    ]) {
      const res = await call("GET", url(a, query));
      expectProblem(res, 400, "invalid_request");
    }
  });

  it("from at or after to", async () => {
    for (const query of [window(now - HOUR, now - HOUR), window(now - HOUR, now - 2 * HOUR)]) {
      const res = await call("GET", url(a, query));
      expectProblem(res, 400, "invalid_request");
      expect(res.json.detail).toMatch(/from must be before to/);
    }
  });

  it("to in the future (of the account's clock)", async () => {
    const res = await call("GET", url(a, window(now - HOUR, now + HOUR)));
    expectProblem(res, 400, "invalid_request");
    expect(res.json.detail).toMatch(/future/);
    // Once the account's clock has passed it, the same window is served.
    await advanceClock(a, 2 * HOUR);
    expect((await call("GET", url(a, window(now - HOUR, now + HOUR)))).status).toBe(200);
  });

  it("a bad unit, or an unknown parameter", async () => {
    expectProblem(await call("GET", url(a, `${window(now - HOUR, now)}&unit=Credits`)), 400, "invalid_request");
    const unknown = await call("GET", url(a, `${window(now - HOUR, now)}&at=${iso(now)}`));
    expectProblem(unknown, 400, "invalid_request");
    expect(unknown.json.detail).toMatch(/unknown field/);
  });

  it(`a window holding more than ${STATEMENT_MAX_ENTRIES} entries: narrow it`, async () => {
    const b = uid("stmt-long");
    // 100 lots of 1, then holds over all of them and their releases: 200 entries per pair.
    for (let i = 0; i < 100; i++) await grant(b, { grant_id: `l${i}`, amount: 1 });
    const t = Date.parse((await call("GET", `/v1/accounts/${b}/balance`)).json.as_of);
    let lastPairAt = 0;
    for (let i = 0; i < 50; i++) {
      if (i === 49) {
        await advanceClock(b, 1000);
        lastPairAt = Date.parse((await call("GET", `/v1/accounts/${b}/balance`)).json.as_of);
      }
      const held = await call("POST", `/v1/accounts/${b}/holds`, { hold_id: `h${i}`, amount: 100 });
      expect(held.status, held.text).toBe(201);
      expect((await call("POST", `/v1/accounts/${b}/holds/h${i}/release`)).status).toBe(200);
    }
    await advanceClock(b, 1000);
    // 100 grants + 50 × 200 = 10 100 entries from the account's start.
    const end = Date.parse((await call("GET", `/v1/accounts/${b}/balance`)).json.as_of);
    const res = await call("GET", url(b, window(t - HOUR, end)));
    expectProblem(res, 400, "invalid_request");
    expect(res.json.detail).toContain(`holds 10100 entries`);
    expect(res.json.detail).toContain(`at most ${STATEMENT_MAX_ENTRIES}: narrow the window`);
    // The detail says where a window that fits may end; that one is served.
    const hint = /\(to=([^ ]+) fits\)/.exec(res.json.detail)?.[1];
    expect(hint).toEqual(expect.any(String));
    const narrowed = await call("GET", url(b, `from=${iso(t - HOUR)}&to=${hint}`));
    expect(narrowed.status, narrowed.text).toBe(200);
    expect(narrowed.json.entries.length).toBeLessThanOrEqual(STATEMENT_MAX_ENTRIES);
    expect(narrowed.json.entries.length).toBeGreaterThan(0);

    // A window at the end of that long history: the last hold over the 100 lots and its release.
    const last = await call("GET", url(b, window(lastPairAt, end)));
    expect(last.status, last.text).toBe(200);
    expect(last.json.entries).toHaveLength(200);
    expect(last.json).toMatchObject({ opening: 100, consumed: 0, closing: 100, head: { seq: 10_100 } });
  });
});

describe("statement: who may ask, and about what", () => {
  it("a gateway key is 403 forbidden", async () => {
    const key = (await call("POST", "/v1/api-keys", { name: uid("stmt-gw"), role: "gateway" })).json.key;
    const res = await call("GET", url(a, window(now - HOUR, now)), undefined, { token: key });
    expectProblem(res, 403, "forbidden");
    // The role is checked before the query: a gateway learns nothing from a bad one either.
    expectProblem(await call("GET", url(a, "from=x"), undefined, { token: key }), 403, "forbidden");
  });

  it("no token is 401", async () => {
    expectProblem(await call("GET", url(a, window(now - HOUR, now)), undefined, { token: null }), 401, "unauthorized");
  });

  it("an unknown account is 404 account_not_found", async () => {
    const res = await call("GET", url(uid("nobody"), window(now - HOUR, now)));
    expectProblem(res, 404, "account_not_found");
  });

  it("a bad account id is 400", async () => {
    expectProblem(await call("GET", url("bad%20id", window(now - HOUR, now))), 400, "invalid_request");
  });
});
