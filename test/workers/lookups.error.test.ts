/**
 * Bad input to the lookup routes (GET …/grants, …/grants/{grant_id},
 * …/holds, …/debits/{debit_id}): each refusal is problem+json with the
 * contract's status and code, in the contract's order of checks (token, role,
 * then path and query), and moves nothing: every read of the fixture account
 * answers byte for byte what it did before, and an unknown account stays unknown.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectProblem, grant, type Res, uid } from "./helpers";

const A = uid("lkerr");
const UNKNOWN = uid("lkerr-nobody");
const ROUTES = {
  grants: (account: string) => `/v1/accounts/${account}/grants`,
  grant: (account: string, id = "g-1") => `/v1/accounts/${account}/grants/${id}`,
  holds: (account: string) => `/v1/accounts/${account}/holds`,
  debit: (account: string, id = "d-1") => `/v1/accounts/${account}/debits/${id}`,
};
const LISTS = [ROUTES.grants, ROUTES.holds];

interface Case {
  name: string;
  path: string;
  status: number;
  code: string;
  /** null: no authorization header; a string: that bearer token. Default: the admin token. */
  token?: string | null | (() => string);
}

/** Everything a lookup could have changed on the fixture account, as text (`as_of` is the read's clock). */
async function state(): Promise<string[]> {
  const reads = [
    `/v1/accounts/${A}`,
    `/v1/accounts/${A}/balance`,
    `/v1/accounts/${A}/ledger?limit=1000`,
    `${ROUTES.grants(A)}?limit=1000`,
    `${ROUTES.holds(A)}?limit=1000`,
    ROUTES.grant(A),
    ROUTES.debit(A),
    `/v1/accounts/${A}/holds/h-1`,
  ];
  const out: string[] = [];
  for (const path of reads) {
    const res = await call("GET", path);
    expect(res.status, path).toBe(200);
    out.push(`${path} ${res.text.replace(/"as_of":"[^"]*"/, "")}`);
  }
  const nobody = await call("GET", `/v1/accounts/${UNKNOWN}`);
  out.push(`unknown account: ${nobody.status} ${nobody.json?.code}`);
  return out;
}

let gatewayKey = "";

beforeAll(async () => {
  await grant(A, { grant_id: "g-1", amount: 100, metadata: { k: "v" } });
  await grant(A, { grant_id: "g-2", amount: 50, type: "promotional" });
  expect((await call("POST", `/v1/accounts/${A}/debits`, { debit_id: "d-1", amount: 7 })).status).toBe(200);
  expect(
    (await call("POST", `/v1/accounts/${A}/holds`, { hold_id: "h-1", amount: 5, ttl_seconds: 86_400 })).status,
  ).toBe(201);
  const receipt = await call("POST", `/v1/accounts/${A}/receipts`, { receipt_id: "r-1", amount: 3, ttl_seconds: 3600 });
  expect(receipt.status).toBe(201);
  const key = await call("POST", "/v1/api-keys", { name: uid("lkerr-gw"), role: "gateway" });
  expect(key.status).toBe(201);
  gatewayKey = key.json.key;
});

/** Path ids that break `1-128 of [A-Za-z0-9._:-]`, as they travel in a URL. */
const BAD_PATH_IDS = Object.entries({
  "129 chars": "i".repeat(129),
  "encoded space": "g%201",
  "encoded slash": "g%2F1",
  é: "g%C3%A91",
  asterisk: "g*1",
  "encoded NUL": "g%001",
  comma: "g,1",
  "encoded right-to-left override": "g%E2%80%AE1",
  "at sign": "g@1",
});

const BAD_LIMITS = ["0", "1001", "abc", "", "-1", "1.5", "10000", "1e2", "%201"];

const route = (label: string, path: string, rest: Omit<Case, "name" | "path">): Case => ({
  name: `${label}: ${path.replace(A, "{A}").replace(UNKNOWN, "{unknown}")}`,
  path,
  ...rest,
});
const invalid = { status: 400, code: "invalid_request" } as const;

const CASES: Case[] = [
  // Bad ids in the path: the account's, and the grant's or debit's.
  ...BAD_PATH_IDS.flatMap(([name, id]) => [
    route(`account id ${name}`, ROUTES.grants(id), invalid),
    route(`account id ${name}`, ROUTES.grant(id), invalid),
    route(`account id ${name}`, ROUTES.holds(id), invalid),
    route(`account id ${name}`, ROUTES.debit(id), invalid),
    route(`grant id ${name}`, ROUTES.grant(A, id), invalid),
    route(`debit id ${name}`, ROUTES.debit(A, id), invalid),
  ]),
  // limit out of range or not an integer.
  ...LISTS.flatMap((list) =>
    BAD_LIMITS.map((limit) => route(`limit "${limit}"`, `${list(A)}?limit=${limit}`, invalid)),
  ),
  // Unknown query parameters (and known ones in another case, or from another list).
  ...LISTS.flatMap((list) =>
    ["foo=1", "Limit=2", "after=g-1", "unit=credits", "limit=2&extra=", "asOf=2026-01-01T00:00:00Z"].map((q) =>
      route(`unknown query ${q}`, `${list(A)}?${q}`, invalid),
    ),
  ),
  route("holds take no status", `${ROUTES.holds(A)}?status=active`, invalid),
  // status is one of the five.
  ...["Active", "open", "", "active,pending", "closed", "ACTIVE"].map((status) =>
    route(`status "${status}"`, `${ROUTES.grants(A)}?status=${status}`, invalid),
  ),
  // Cursors: a grants cursor is a grant id, a holds cursor is `<ms>:<hold id>`.
  ...["", "g%201", "c".repeat(129), "g%2F1", "%C3%A9"].map((cursor) =>
    route(`grants cursor "${cursor.slice(0, 20)}"`, `${ROUTES.grants(A)}?cursor=${cursor}`, invalid),
  ),
  route("grants cursor: a hold id is no grant", `${ROUTES.grants(A)}?cursor=h-1`, invalid),
  route("grants cursor: a debit id is no grant", `${ROUTES.grants(A)}?cursor=d-1`, invalid),
  ...[
    "",
    "abc",
    "12",
    ":h-1",
    "12:",
    "-1:h-1",
    "1.5:h-1",
    "1234567890123456:h-1",
    "12:h%201",
    "g-1",
    `1:${"h".repeat(257)}`,
  ].map((cursor) => route(`holds cursor "${cursor.slice(0, 20)}"`, `${ROUTES.holds(A)}?cursor=${cursor}`, invalid)),
  // An account that does not exist.
  ...[ROUTES.grants(UNKNOWN), ROUTES.grant(UNKNOWN), ROUTES.holds(UNKNOWN), ROUTES.debit(UNKNOWN)].flatMap((path) => [
    route("unknown account", path, { status: 404, code: "account_not_found" }),
  ]),
  route("unknown account, with a page", `${ROUTES.grants(UNKNOWN)}?limit=5&status=active`, {
    status: 404,
    code: "account_not_found",
  }),
  route("unknown account, with a page", `${ROUTES.holds(UNKNOWN)}?limit=5`, { status: 404, code: "account_not_found" }),
  // No token, an unknown token: 401 before anything else is looked at.
  ...[ROUTES.grants(A), ROUTES.grant(A), ROUTES.holds(A), ROUTES.debit(A), ROUTES.grants(UNKNOWN)].flatMap((path) => [
    route("no token", path, { status: 401, code: "unauthorized", token: null }),
    route("unknown token", path, { status: 401, code: "unauthorized", token: "cg_not_a_key" }),
  ]),
  route("no token, bad path id", ROUTES.grant(A, "g%201"), { status: 401, code: "unauthorized", token: null }),
  route("no token, bad limit", `${ROUTES.holds(A)}?limit=0`, { status: 401, code: "unauthorized", token: null }),
  // The role is checked before the path and the query.
  route("gateway, bad account id", ROUTES.grants("a%20b"), { status: 403, code: "forbidden", token: () => gatewayKey }),
  route("gateway, bad limit", `${ROUTES.grants(A)}?limit=0`, {
    status: 403,
    code: "forbidden",
    token: () => gatewayKey,
  }),
  route("gateway, bad debit id", ROUTES.debit(A, "d%201"), { status: 403, code: "forbidden", token: () => gatewayKey }),
  // …and a gateway key that may read holds still gets the query checked.
  route("gateway, bad holds limit", `${ROUTES.holds(A)}?limit=0`, { ...invalid, token: () => gatewayKey }),
];

async function send(c: Case): Promise<Res> {
  const token = typeof c.token === "function" ? c.token() : c.token;
  return call("GET", c.path, undefined, { token });
}

describe("lookup routes refuse bad input and change nothing", () => {
  it("has unique case names and covers every lookup route", () => {
    const names = CASES.map((c) => c.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    for (const shape of [/\/grants(\?|$)/, /\/grants\/[^/?]+$/, /\/holds(\?|$)/, /\/debits\/[^/?]+$/]) {
      expect(CASES.filter((c) => shape.test(c.path)).length, String(shape)).toBeGreaterThan(10);
    }
  });

  it.each(CASES)("$name → $status $code", async (c) => {
    const before = await state();
    const res = await send(c);
    expectProblem(res, c.status, c.code);
    expect(await state()).toEqual(before);
  });

  it("the same routes answer 200 with good input (so the refusals above are about the input)", async () => {
    for (const path of [
      `${ROUTES.grants(A)}?limit=1000&status=active`,
      `${ROUTES.grants(A)}?cursor=g-1&limit=1`,
      ROUTES.grant(A, "g-2"),
      `${ROUTES.holds(A)}?limit=1000`,
      ROUTES.debit(A),
    ]) {
      const res = await call("GET", path);
      expect(res.status, `${path}: ${res.text}`).toBe(200);
    }
    const page = await call("GET", `${ROUTES.holds(A)}?limit=1`);
    expect(page.json.next_cursor).toMatch(/^\d+:/);
    const next = await call("GET", `${ROUTES.holds(A)}?limit=1&cursor=${page.json.next_cursor}`);
    expect(next.status).toBe(200);
    expect(next.json.holds.map((h: any) => h.hold_id)).toEqual(["r-1"]);
    // The gateway key may list holds.
    expect((await call("GET", ROUTES.holds(A), undefined, { token: gatewayKey })).status).toBe(200);
  });
});
