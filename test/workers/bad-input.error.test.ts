/**
 * The bad-input table: every issue-2 endpoint (and the holds routes) refuses
 * malformed requests with the contract's status, `code` and problem+json
 * shape, and a refused request moves nothing: the account's balance, full
 * ledger, grants and record are byte-for-byte what they were before.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectProblem, fetchWorker, grant, type Res, uid } from "./helpers";

interface Case {
  name: string;
  method: string;
  path: string;
  /** JSON-encoded and sent with content-type: application/json (unless contentType says otherwise). */
  body?: unknown;
  /** Sent as is (bytes or text). */
  raw?: string | Uint8Array;
  /** null: no content-type header at all. */
  contentType?: string | null;
  headers?: Record<string, string>;
  status: number;
  code: string;
  /** The account whose state must not move (default: the main fixture account). */
  account?: string;
}

const A = uid("bad");
const UNKNOWN = uid("nobody");
const HOLD = "h-open";
const acct = (rest = "") => `/v1/accounts/${A}${rest}`;

/** Sends a case exactly as described: body bytes and headers under our control. */
async function send(c: Case): Promise<Res> {
  const headers: Record<string, string> = { authorization: "Bearer test-admin-token", ...c.headers };
  let payload: string | Uint8Array | undefined;
  if (c.raw !== undefined) payload = c.raw;
  else if (c.body !== undefined) payload = JSON.stringify(c.body);
  if (payload !== undefined && c.contentType !== null) headers["content-type"] = c.contentType ?? "application/json";
  // A Uint8Array body gets no implicit content-type, unlike a string body.
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  return fetchWorker(new Request(`http://gate.test${c.path}`, { method: c.method, headers, body: bytes }));
}

/**
 * Everything a refused request could have moved, as served. `as_of` is the
 * read's own clock, not state, so it is cut out of the balance text.
 */
async function snapshot(accountId: string): Promise<Record<string, string>> {
  const base = `/v1/accounts/${accountId}`;
  const reads = await Promise.all([
    call("GET", base),
    call("GET", `${base}/balance`),
    call("GET", `${base}/ledger?limit=1000`),
    call("GET", `${base}/grants`),
    call("GET", `${base}/holds/${HOLD}`),
  ]);
  const [account, balance, ledger, grants, hold] = reads;
  if (accountId === UNKNOWN) {
    // The unknown account must stay unknown: no refused request may create it.
    for (const r of reads.slice(0, 4)) expect(r.status).toBe(404);
    return { account: account.text };
  }
  for (const r of [account, balance, ledger, grants]) expect(r.status).toBe(200);
  expect(ledger.json.next_after_seq).toBeNull();
  return {
    account: account.text,
    balance: balance.text.replace(/"as_of":"[^"]*"/, ""),
    ledger: ledger.text,
    grants: grants.text,
    hold: `${hold.status} ${hold.text}`,
  };
}

async function expectRefusedAndStill(c: Case): Promise<void> {
  const target = c.account ?? A;
  const before = await snapshot(target);
  const res = await send(c);
  expectProblem(res, c.status, c.code);
  expect(await snapshot(target)).toEqual(before);
  // Nothing moved in the main account either.
  if (target !== A) expect(await snapshot(A)).toEqual(mainBefore);
}

let mainBefore: Record<string, string> = {};

beforeAll(async () => {
  expect((await call("PUT", acct(), { name: "bad input fixture", verified: true })).status).toBe(201);
  await grant(A, { grant_id: "g-buy", amount: 1000, type: "purchased", cost_basis: { amount: 500, currency: "USD" } });
  await grant(A, { grant_id: "g-comp", amount: 300, type: "compensatory", reason: "outage", priority: 5 });
  const hold = await call("POST", acct("/holds"), { hold_id: HOLD, amount: 10, ttl_seconds: 86_400 });
  expect(hold.status).toBe(201);
  const debit = await call("POST", acct("/debits"), { debit_id: "d-seed", amount: 7 });
  expect(debit.status).toBe(200);
  mainBefore = await snapshot(A);
});

// ── the table ─────────────────────────────────────────────────────────────

const BAD_AMOUNTS: [string, unknown][] = [
  ["0", 0],
  ["-1", -1],
  ["1.5", 1.5],
  ['"5"', "5"],
  ["true", true],
  ["null", null],
  ["[]", []],
  ["{}", {}],
  ["10^15+1", 10 ** 15 + 1],
  ["2^53", 2 ** 53],
  ["-10^15", -(10 ** 15)],
];

const BAD_IDS: [string, unknown][] = [
  ["129 chars", "x".repeat(129)],
  ["empty", ""],
  ["space", "a b"],
  ["slash", "a/b"],
  ["é", "caf\u00e9"],
  ["number", 5],
  ["null", null],
  ["object", { id: "a" }],
];

const BAD_UNITS: [string, unknown][] = [
  ["Credits", "Credits"],
  ["1abc", "1abc"],
  ["33 chars", `a${"b".repeat(32)}`],
  ["empty", ""],
  ["dash", "gpu-seconds"],
  ["number", 5],
  ["null", null],
];

const BAD_TIMES: [string, unknown][] = [
  ["Feb 30", "2026-02-30T00:00:00Z"],
  ["Feb 29 of a common year", "2026-02-29T00:00:00Z"],
  ["month 13", "2026-13-01T00:00:00Z"],
  ["hour 24", "2026-11-25T24:00:00Z"],
  ["second 60", "2026-11-25T07:31:60Z"],
  ["no offset", "2026-11-25T07:31:00"],
  ["date only", "2026-11-25"],
  ["space separator", "2026-11-25 07:31:00Z"],
  ["epoch seconds string", "1790000000"],
  ["epoch number", 1_790_000_000_000],
  ["words", "tomorrow"],
  ["offset without colon", "2026-11-25T07:31:00+0100"],
  ["empty", ""],
];

const BAD_SHORT_TEXT: [string, unknown][] = [
  ["number", 5],
  ["257 chars", "r".repeat(257)],
  ["array", ["a"]],
];

const BAD_METADATA: [string, unknown][] = [
  ["number value", { k: 1 }],
  ["value named amount", { amount: 5 }],
  ["nested", { k: { v: "x" } }],
  ["array", ["a"]],
  ["string", "k=v"],
  ["33 pairs", Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"]))],
  ["key of 65 chars", { ["k".repeat(65)]: "v" }],
  ["value of 513 chars", { k: "v".repeat(513) }],
];

/** Bodies that break the transport rules, for every route that takes a body. */
function transportCases(method: string, path: string, valid: Record<string, unknown>, account?: string): Case[] {
  const json = JSON.stringify(valid);
  const padTo = (bytes: number) => {
    const withPad = JSON.stringify({ ...valid, pad: "" });
    return `${withPad.slice(0, -2)}${"p".repeat(bytes - withPad.length)}"}`;
  };
  const at = (name: string, rest: Omit<Case, "name" | "method" | "path" | "account">): Case => ({
    name: `${method} ${path.replace(A, "{A}").replace(UNKNOWN, "{unknown}")}: ${name}`,
    method,
    path,
    account,
    ...rest,
  });
  const big = padTo(65_537);
  const exact = padTo(65_536);
  if (new TextEncoder().encode(big).length !== 65_537 || new TextEncoder().encode(exact).length !== 65_536) {
    throw new Error("padding is off");
  }
  return [
    at("truncated JSON → invalid_json", { raw: json.slice(0, -1), status: 400, code: "invalid_json" }),
    at("unquoted keys → invalid_json", { raw: "{amount: 1}", status: 400, code: "invalid_json" }),
    at("trailing comma → invalid_json", { raw: `${json.slice(0, -1)},}`, status: 400, code: "invalid_json" }),
    at("not UTF-8 → invalid_json", {
      raw: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
      status: 400,
      code: "invalid_json",
    }),
    at("text/plain → 415", { raw: json, contentType: "text/plain", status: 415, code: "unsupported_media_type" }),
    at("no content-type → 415", { raw: json, contentType: null, status: 415, code: "unsupported_media_type" }),
    at("form encoding → 415", {
      raw: "amount=1",
      contentType: "application/x-www-form-urlencoded",
      status: 415,
      code: "unsupported_media_type",
    }),
    at("json-patch type → 415", {
      raw: json,
      contentType: "application/json-patch+json",
      status: 415,
      code: "unsupported_media_type",
    }),
    at("65 537 bytes → 413", { raw: big, status: 413, code: "payload_too_large" }),
    at("65 536 bytes is read (and the pad field refused)", { raw: exact, status: 400, code: "invalid_request" }),
    at("unknown top-level field", { body: { ...valid, surprise: 1 }, status: 400, code: "invalid_request" }),
    at("a JSON array body", { body: [valid], status: 400, code: "invalid_request" }),
    at("a JSON string body", { body: "amount", status: 400, code: "invalid_request" }),
    at("a JSON null body", { raw: "null", status: 400, code: "invalid_request" }),
    at("deeply nested JSON", {
      raw: `${"[".repeat(20_000)}${"]".repeat(20_000)}`,
      status: 400,
      code: "invalid_request",
    }),
    at("a BOM then valid JSON with an unknown field", {
      raw: `\uFEFF${JSON.stringify({ ...valid, surprise: 1 })}`,
      status: 400,
      code: "invalid_request",
    }),
  ];
}

function fieldCases(
  label: string,
  method: string,
  path: string,
  valid: Record<string, unknown>,
  field: string,
  values: [string, unknown][],
  code: string,
  account?: string,
): Case[] {
  return values.map(([name, value]) => ({
    name: `${label}: ${field} ${name} → ${code}`,
    method,
    path,
    body: { ...valid, [field]: value },
    status: 400,
    code,
    account,
  }));
}

const GRANT = { grant_id: "g-bad", amount: 10, type: "purchased" };
const grantCases = (field: string, values: [string, unknown][], code = "invalid_request") =>
  fieldCases("grant", "POST", acct("/grants"), GRANT, field, values, code);

const grantRules: Case[] = [
  ["missing amount", { grant_id: "g-bad", type: "purchased" }],
  ["missing type", { grant_id: "g-bad", amount: 10 }],
  ["type gift", { ...GRANT, type: "gift" }],
  ["type Purchased", { ...GRANT, type: "Purchased" }],
  ["type number", { ...GRANT, type: 1 }],
  ["priority -1", { ...GRANT, priority: -1 }],
  ["priority 1 000 001", { ...GRANT, priority: 1_000_001 }],
  ["priority 1.5", { ...GRANT, priority: 1.5 }],
  ['priority "1"', { ...GRANT, priority: "1" }],
  ["priority null", { ...GRANT, priority: null }],
  ["missing id and no Idempotency-Key", { amount: 10, type: "purchased" }],
  [
    "expires_at before effective_at",
    { ...GRANT, effective_at: "2030-01-02T00:00:00Z", expires_at: "2030-01-01T00:00:00Z" },
  ],
  [
    "expires_at equal to effective_at",
    { ...GRANT, effective_at: "2030-01-01T00:00:00Z", expires_at: "2030-01-01T00:00:00.000z" },
  ],
  ["expires_at in the past", { ...GRANT, effective_at: "2019-01-01T00:00:00Z", expires_at: "2020-01-01T00:00:00Z" }],
  ["expires_at in the past (default effective_at)", { ...GRANT, expires_at: "2020-01-01T00:00:00Z" }],
  ["compensatory without reason", { ...GRANT, type: "compensatory" }],
  ["compensatory with an empty reason", { ...GRANT, type: "compensatory", reason: "" }],
  ["compensatory with a null reason", { ...GRANT, type: "compensatory", reason: null }],
  ["cost_basis on promotional", { ...GRANT, type: "promotional", cost_basis: { amount: 100, currency: "USD" } }],
  [
    "cost_basis on compensatory",
    { ...GRANT, type: "compensatory", reason: "x", cost_basis: { amount: 100, currency: "USD" } },
  ],
  ["cost_basis lowercase currency", { ...GRANT, cost_basis: { amount: 100, currency: "usd" } }],
  ["cost_basis without currency", { ...GRANT, cost_basis: { amount: 100 } }],
  ["cost_basis with an unknown field", { ...GRANT, cost_basis: { amount: 100, currency: "USD", tax: 1 } }],
  ["cost_basis as a string", { ...GRANT, cost_basis: "100 USD" }],
  ["unknown field Amount (case matters)", { ...GRANT, Amount: 10 }],
  ["unknown field grantId", { ...GRANT, grantId: "g" }],
  ["unknown field remaining", { ...GRANT, remaining: 5 }],
].map(([name, body]) => ({
  name: `grant: ${name as string} → invalid_request`,
  method: "POST",
  path: acct("/grants"),
  body,
  status: 400,
  code: "invalid_request",
}));

const DEBIT = { debit_id: "d-bad", amount: 1 };
const debitCases = (field: string, values: [string, unknown][], code = "invalid_request") =>
  fieldCases("debit", "POST", acct("/debits"), DEBIT, field, values, code);

const HOLD_BODY = { hold_id: "h-bad", amount: 1 };
const holdCases = (field: string, values: [string, unknown][], code = "invalid_request") =>
  fieldCases("hold", "POST", acct("/holds"), HOLD_BODY, field, values, code);

const ACCOUNT = { name: "fixture" };
const accountCases = (field: string, values: [string, unknown][], code = "invalid_request") =>
  fieldCases("account", "PUT", acct(), ACCOUNT, field, values, code);

const BAD_ORDERS: [string, unknown][] = [
  ["unknown key", ["priority", "size"]],
  ["empty", []],
  ["repeated key", ["priority", "priority"]],
  ["a string", "priority"],
  ["six keys", ["priority", "expires_at", "type", "effective_at", "created", "created"]],
];
const BAD_TYPE_ORDERS: [string, unknown][] = [
  ["unknown type", ["gift"]],
  ["empty", []],
  ["repeated type", ["promotional", "promotional"]],
  ["a string", "promotional"],
];
const policyFieldCases = (label: string, method: string, path: string): Case[] => [
  ...fieldCases(label, method, path, {}, "order", BAD_ORDERS, "invalid_request"),
  ...fieldCases(label, method, path, {}, "type_order", BAD_TYPE_ORDERS, "invalid_request"),
  ...fieldCases(
    label,
    method,
    path,
    {},
    "require_verified_for_promotional",
    [
      ['"yes"', "yes"],
      ["1", 1],
      ['"true"', "true"],
    ],
    "invalid_request",
  ),
  ...fieldCases(
    label,
    method,
    path,
    {},
    "hold_on_expiry",
    [
      ["keep", "keep"],
      ["Release", "Release"],
      ["number", 1],
    ],
    "invalid_request",
  ),
  ...fieldCases(label, method, path, {}, "unit", [["unknown field", "credits"]], "invalid_request"),
];

const pathIds: [string, string, number, string][] = [
  ["129 chars", "x".repeat(129), 400, "invalid_request"],
  ["encoded space", "a%20b", 400, "invalid_request"],
  ["encoded slash", "a%2Fb", 400, "invalid_request"],
  ["é", "caf%C3%A9", 400, "invalid_request"],
  ["encoded quote", "a%22b", 400, "invalid_request"],
  ["plus and at", "a+b@c", 400, "invalid_request"],
];

function badPathCases(): Case[] {
  const out: Case[] = [];
  for (const [name, id, status, code] of pathIds) {
    const cases: [string, string, Record<string, unknown> | undefined][] = [
      ["GET", `/v1/accounts/${id}`, undefined],
      ["PUT", `/v1/accounts/${id}`, { name: "x" }],
      ["GET", `/v1/accounts/${id}/balance`, undefined],
      ["GET", `/v1/accounts/${id}/grants`, undefined],
      ["POST", `/v1/accounts/${id}/grants`, GRANT],
      ["POST", `/v1/accounts/${id}/grants/g-buy/void`, {}],
      ["POST", acct(`/grants/${id}/void`), {}],
      ["POST", `/v1/accounts/${id}/debits`, DEBIT],
      ["GET", `/v1/accounts/${id}/ledger`, undefined],
      ["GET", `/v1/accounts/${id}/policy`, undefined],
      ["PUT", `/v1/accounts/${id}/policy`, {}],
      ["POST", `/v1/accounts/${id}/holds`, HOLD_BODY],
      ["POST", acct(`/holds/${id}/capture`), {}],
      ["POST", acct(`/holds/${id}/release`), {}],
      ["GET", acct(`/holds/${id}`), undefined],
      ["DELETE", `/v1/api-keys/${id}`, undefined],
    ];
    for (const [method, path, body] of cases) {
      out.push({
        name: `${method} ${path.replace(A, "{A}").replace(id, "{id}")}: path id ${name}`,
        method,
        path,
        body,
        status,
        code,
      });
    }
  }
  // A raw slash splits the segment: no route matches.
  for (const [method, path] of [
    ["GET", "/v1/accounts/a/b/balance"],
    ["POST", "/v1/accounts/a/b/debits"],
    ["GET", "/v1/accounts/a/b/ledger"],
    ["POST", acct("/grants/a/b/void")],
    ["GET", "/v1/accounts//balance"],
  ] as const) {
    out.push({
      name: `${method} ${path.replace(A, "{A}")}: raw slash in an id → 404`,
      method,
      path,
      body: method === "POST" ? DEBIT : undefined,
      status: 404,
      code: "not_found",
    });
  }
  return out;
}

function queryCases(): Case[] {
  const q = (path: string, name: string, code = "invalid_request", status = 400, account?: string): Case => ({
    name: `GET ${path.replace(A, "{A}").replace(UNKNOWN, "{unknown}")}: ${name}`,
    method: "GET",
    path,
    status,
    code,
    account,
  });
  return [
    q(acct("/balance?unit=Credits"), "unit Credits"),
    q(acct("/balance?unit=1abc"), "unit 1abc"),
    q(acct(`/balance?unit=a${"b".repeat(32)}`), "unit of 33 chars"),
    q(acct("/balance?unit="), "empty unit"),
    q(acct("/balance?as_of=2999-01-01T00:00:00Z"), "as_of in the future"),
    q(acct(`/balance?as_of=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`), "as_of in 1 h"),
    q(acct("/balance?as_of=2026-02-30T00:00:00Z"), "as_of Feb 30"),
    q(acct("/balance?as_of=yesterday"), "as_of words"),
    q(acct("/balance?as_of=1790000000"), "as_of epoch seconds"),
    q(acct("/balance?as_of=2026-11-25T07:31:00"), "as_of without offset"),
    q(acct("/balance?currency=USD"), "unknown query parameter"),
    q(acct("/ledger?limit=0"), "limit 0"),
    q(acct("/ledger?limit=1001"), "limit 1001"),
    q(acct("/ledger?limit=abc"), "limit abc"),
    q(acct("/ledger?limit=-1"), "limit -1"),
    q(acct("/ledger?limit=1.5"), "limit 1.5"),
    q(acct("/ledger?limit="), "empty limit"),
    q(acct("/ledger?limit=99999999999"), "limit huge"),
    q(acct("/ledger?after_seq=-1"), "after_seq -1"),
    q(acct("/ledger?after_seq=abc"), "after_seq abc"),
    q(acct("/ledger?after_seq=1.5"), "after_seq 1.5"),
    q(acct("/ledger?format=xml"), "format xml"),
    q(acct("/ledger?format=JSON"), "format JSON"),
    q(acct("/ledger?page=2"), "unknown query parameter"),
    q(acct("/ledger?format=csv&limit=100001"), "csv limit above CSV_MAX_ENTRIES"),
    q(acct("/ledger?format=csv&limit=0"), "csv limit 0"),
    q(acct("/ledger?format=csv&limit=abc"), "csv limit abc"),
    q("/v1/accounts?limit=0", "limit 0"),
    q("/v1/accounts?limit=1001", "limit 1001"),
    q("/v1/accounts?limit=abc", "limit abc"),
    q("/v1/accounts?limit=", "empty limit"),
    q("/v1/accounts?after=a%20b", "after with a space"),
    q(`/v1/accounts?after=${"x".repeat(129)}`, "after of 129 chars"),
    q("/v1/accounts?after=", "empty after"),
    q("/v1/accounts?parent_id=caf%C3%A9", "parent_id é"),
    q("/v1/accounts?parent_id=a%2Fb", "parent_id with a slash"),
    q("/v1/accounts?cursor=abc", "unknown query parameter"),
    q(acct("/grants?status=open"), "status open"),
    q(acct("/grants?status=Active"), "status Active"),
    q(acct("/grants?type=purchased"), "unknown query parameter"),
    q(`/v1/accounts/${UNKNOWN}/balance`, "unknown account", "account_not_found", 404, UNKNOWN),
    q(
      `/v1/accounts/${UNKNOWN}/balance?as_of=2020-01-01T00:00:00Z`,
      "unknown account as_of",
      "account_not_found",
      404,
      UNKNOWN,
    ),
    q(`/v1/accounts/${UNKNOWN}/ledger`, "unknown account", "account_not_found", 404, UNKNOWN),
    q(`/v1/accounts/${UNKNOWN}/ledger?format=csv`, "unknown account csv", "account_not_found", 404, UNKNOWN),
    q(`/v1/accounts/${UNKNOWN}`, "unknown account", "account_not_found", 404, UNKNOWN),
    q(`/v1/accounts/${UNKNOWN}/grants`, "unknown account", "account_not_found", 404, UNKNOWN),
    q(`/v1/accounts/${UNKNOWN}/policy`, "unknown account", "account_not_found", 404, UNKNOWN),
    q(`/v1/accounts/${UNKNOWN}/holds/${HOLD}`, "unknown account", "account_not_found", 404, UNKNOWN),
    q(acct("/holds/h-never"), "unknown hold", "hold_not_found", 404),
  ];
}

const unknownAccountWrites: Case[] = [
  ["POST", "/debits", DEBIT, "account_not_found"],
  ["POST", "/debits", { amount: 1 }, "account_not_found", { "idempotency-key": "k-1" }],
  ["POST", "/holds", HOLD_BODY, "account_not_found"],
  ["POST", `/holds/${HOLD}/capture`, {}, "account_not_found"],
  ["POST", `/holds/${HOLD}/release`, undefined, "account_not_found"],
  ["POST", "/grants/g-buy/void", { reason: "x" }, "account_not_found"],
  ["PUT", "/policy", { hold_on_expiry: "capture" }, "account_not_found"],
  ["PUT", "", { parent_id: uid("ghost") }, "account_not_found"],
].map(([method, rest, body, code, headers]) => ({
  name: `${method} {unknown}${rest}${headers ? " (Idempotency-Key)" : ""}: ${code}`,
  method: method as string,
  path: `/v1/accounts/${UNKNOWN}${rest as string}`,
  body,
  headers: headers as Record<string, string> | undefined,
  status: 404,
  code: code as string,
  account: UNKNOWN,
}));

/** Refused grants to an account that does not exist yet must not create it. */
const unknownAccountGrants: Case[] = [
  { ...GRANT, amount: 0 },
  { ...GRANT, type: "compensatory" },
  { ...GRANT, type: "promotional", cost_basis: { amount: 1, currency: "USD" } },
  { ...GRANT, expires_at: "2020-01-01T00:00:00Z" },
  { ...GRANT, extra: true },
].map((body, i) => ({
  name: `POST {unknown}/grants: refused grant #${i} creates no account`,
  method: "POST",
  path: `/v1/accounts/${UNKNOWN}/grants`,
  body,
  status: 400,
  code: i === 0 ? "invalid_amount" : "invalid_request",
  account: UNKNOWN,
}));

const routeCases: Case[] = [
  ["GET", "/v1/nope"],
  ["GET", "/v1"],
  ["GET", "/nope"],
  ["GET", "/"],
  ["DELETE", acct()],
  ["PATCH", "/v1/policy"],
  ["GET", acct("/debits")],
  ["POST", acct("/balance")],
  ["POST", acct("/debits/d-seed")],
  ["GET", acct("/grants/g-buy/void")],
  ["GET", "/v1/api-keys/some-id"],
  ["POST", "/v1/accounts"],
  ["GET", "/v2/accounts"],
].map(([method, path]) => ({
  name: `${method} ${(path as string).replace(A, "{A}")}: unknown route → 404 not_found`,
  method: method as string,
  path: path as string,
  body: method === "GET" || method === "DELETE" ? undefined : {},
  status: 404,
  code: "not_found",
}));

const CASES: Case[] = [
  // transport rules, per route with a body
  ...transportCases("PUT", acct(), ACCOUNT),
  ...transportCases("POST", acct("/grants"), GRANT),
  ...transportCases("POST", acct("/grants/g-buy/void"), { reason: "r" }),
  ...transportCases("POST", acct("/debits"), DEBIT),
  ...transportCases("POST", acct("/holds"), HOLD_BODY),
  ...transportCases("POST", acct(`/holds/${HOLD}/capture`), { amount: 1 }),
  ...transportCases("POST", acct(`/holds/${HOLD}/release`), {}),
  ...transportCases("PUT", acct("/policy"), { hold_on_expiry: "capture" }),
  ...transportCases("PUT", "/v1/policy", {}),
  ...transportCases("POST", "/v1/api-keys", { name: uid("k-transport"), role: "viewer" }),
  ...transportCases("POST", `/v1/accounts/${UNKNOWN}/grants`, GRANT, UNKNOWN),

  // amounts
  ...grantCases("amount", BAD_AMOUNTS, "invalid_amount"),
  ...debitCases("amount", BAD_AMOUNTS, "invalid_amount"),
  ...holdCases("amount", BAD_AMOUNTS, "invalid_amount"),
  ...fieldCases(
    "capture",
    "POST",
    acct(`/holds/${HOLD}/capture`),
    {},
    "amount",
    BAD_AMOUNTS.filter(([n]) => n !== "0"),
    "invalid_amount",
  ),
  {
    name: "capture: more than held → invalid_amount",
    method: "POST",
    path: acct(`/holds/${HOLD}/capture`),
    body: { amount: 11 },
    status: 400,
    code: "invalid_amount",
  },
  ...[
    ["1e400 (Infinity)", '{"debit_id":"d-bad","amount":1e400}'],
    ["-0", '{"debit_id":"d-bad","amount":-0}'],
    ["2^53+1", '{"debit_id":"d-bad","amount":9007199254740993}'],
    ["1.0000001", '{"debit_id":"d-bad","amount":1.0000001}'],
  ].map(([name, raw]) => ({
    name: `debit: raw amount ${name} → invalid_amount`,
    method: "POST",
    path: acct("/debits"),
    raw,
    status: 400,
    code: "invalid_amount",
  })),

  // grants: every field
  ...grantCases("grant_id", BAD_IDS),
  ...grantCases("unit", BAD_UNITS),
  ...grantCases("effective_at", [...BAD_TIMES, ["null", null]]),
  ...grantCases("expires_at", BAD_TIMES),
  ...grantCases("source", BAD_SHORT_TEXT),
  ...grantCases("reason", BAD_SHORT_TEXT),
  ...grantCases("campaign", BAD_SHORT_TEXT),
  ...grantCases("incident_id", BAD_SHORT_TEXT),
  ...grantCases("metadata", BAD_METADATA),
  ...fieldCases(
    "grant",
    "POST",
    acct("/grants"),
    GRANT,
    "cost_basis",
    [
      ["amount -1", { amount: -1, currency: "USD" }],
      ["amount 1.5", { amount: 1.5, currency: "USD" }],
      ['amount "5"', { amount: "5", currency: "USD" }],
    ],
    "invalid_amount",
  ),
  ...grantRules,
  {
    name: "grant: bad Idempotency-Key header and no grant_id",
    method: "POST",
    path: acct("/grants"),
    body: { amount: 10, type: "purchased" },
    headers: { "idempotency-key": "has space" },
    status: 400,
    code: "invalid_request",
  },

  // void
  ...fieldCases("void", "POST", acct("/grants/g-buy/void"), {}, "reason", BAD_SHORT_TEXT, "invalid_request"),
  ...fieldCases("void", "POST", acct("/grants/g-buy/void"), {}, "amount", [["unknown field", 5]], "invalid_request"),
  {
    name: "void: unknown grant → 404 grant_not_found",
    method: "POST",
    path: acct("/grants/g-never/void"),
    body: { reason: "x" },
    status: 404,
    code: "grant_not_found",
  },
  {
    name: "void: unknown grant without a body → 404 grant_not_found",
    method: "POST",
    path: acct("/grants/g-never/void"),
    status: 404,
    code: "grant_not_found",
  },

  // debits
  ...debitCases("debit_id", BAD_IDS),
  ...debitCases("unit", BAD_UNITS),
  ...debitCases("metadata", [...BAD_METADATA, ["null", null]]),
  ...debitCases("effective_at", [["client timestamp (unknown field)", "2026-01-01T00:00:00Z"]]),
  ...debitCases("type", [["unknown field", "purchased"]]),
  ...debitCases("grant_id", [["unknown field", "g-buy"]]),
  {
    name: "debit: missing amount → invalid_request",
    method: "POST",
    path: acct("/debits"),
    body: { debit_id: "d-bad" },
    status: 400,
    code: "invalid_request",
  },
  {
    name: "debit: missing id and no Idempotency-Key",
    method: "POST",
    path: acct("/debits"),
    body: { amount: 1 },
    status: 400,
    code: "invalid_request",
  },
  {
    name: "debit: empty body → invalid_request",
    method: "POST",
    path: acct("/debits"),
    status: 400,
    code: "invalid_request",
  },
  ...[
    ["has space", "has space"],
    ["129 chars", "k".repeat(129)],
    ["slash", "a/b"],
    ["empty", ""],
  ].map(([name, key]) => ({
    name: `debit: Idempotency-Key ${name} → invalid_request`,
    method: "POST",
    path: acct("/debits"),
    body: { amount: 1 },
    headers: { "idempotency-key": key as string },
    status: 400,
    code: "invalid_request",
  })),

  // holds
  ...holdCases("hold_id", BAD_IDS),
  ...holdCases("unit", BAD_UNITS),
  ...holdCases("ttl_seconds", [
    ["0", 0],
    ["86401", 86_401],
    ["1.5", 1.5],
    ['"300"', "300"],
    ["null", null],
    ["-1", -1],
  ]),
  ...holdCases("expires_at", [["client timestamp (unknown field)", "2030-01-01T00:00:00Z"]]),
  {
    name: "hold: missing id and no Idempotency-Key",
    method: "POST",
    path: acct("/holds"),
    body: { amount: 1 },
    status: 400,
    code: "invalid_request",
  },
  ...fieldCases(
    "capture",
    "POST",
    acct(`/holds/${HOLD}/capture`),
    {},
    "unit",
    [["unknown field", "credits"]],
    "invalid_request",
  ),
  ...fieldCases(
    "release",
    "POST",
    acct(`/holds/${HOLD}/release`),
    {},
    "amount",
    [["unknown field", 1]],
    "invalid_request",
  ),
  {
    name: "capture: unknown hold → 404 hold_not_found",
    method: "POST",
    path: acct("/holds/h-never/capture"),
    body: {},
    status: 404,
    code: "hold_not_found",
  },
  {
    name: "release: unknown hold → 404 hold_not_found",
    method: "POST",
    path: acct("/holds/h-never/release"),
    status: 404,
    code: "hold_not_found",
  },

  // accounts
  ...accountCases("name", BAD_SHORT_TEXT),
  ...accountCases(
    "parent_id",
    BAD_IDS.filter(([n]) => n !== "null"),
  ),
  ...accountCases("verified", [
    ['"true"', "true"],
    ["1", 1],
    ["null", null],
  ]),
  ...accountCases("metadata", BAD_METADATA),
  ...accountCases("low_balance", [
    ["bad unit key", { Credits: 10 }],
    ["negative threshold", { credits: -1 }],
    ["fractional threshold", { credits: 1.5 }],
    ["string threshold", { credits: "5" }],
    ["array", [10]],
    ["number", 10],
    [
      "17 units (MAX_LOW_BALANCE_UNITS is 16)",
      Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`unit_${i}`, 10])),
    ],
  ]),
  ...accountCases("account_id", [["unknown field", A]]),
  ...accountCases("balance", [["unknown field", 5]]),
  {
    name: "account: parent_id that does not exist → 404 account_not_found",
    method: "PUT",
    path: acct(),
    body: { parent_id: UNKNOWN },
    status: 404,
    code: "account_not_found",
  },
  {
    name: "account: parent_id = itself → invalid_request",
    method: "PUT",
    path: acct(),
    body: { parent_id: A },
    status: 400,
    code: "invalid_request",
  },

  // policy
  ...policyFieldCases("account policy", "PUT", acct("/policy")),
  ...policyFieldCases("global policy", "PUT", "/v1/policy"),
  ...fieldCases(
    "global policy",
    "PUT",
    "/v1/policy",
    {},
    "order",
    [["null (the global policy has no overrides to drop)", null]],
    "invalid_request",
  ),

  // api keys
  ...fieldCases(
    "api key",
    "POST",
    "/v1/api-keys",
    { name: "k-bad", role: "viewer" },
    "name",
    [
      ["empty", ""],
      ["257 chars", "n".repeat(257)],
      ["number", 5],
      ["null", null],
    ],
    "invalid_request",
  ),
  ...fieldCases(
    "api key",
    "POST",
    "/v1/api-keys",
    { name: "k-bad", role: "viewer" },
    "role",
    [
      ["root", "root"],
      ["Admin", "Admin"],
      ["null", null],
      ["array", ["admin"]],
    ],
    "invalid_request",
  ),
  ...fieldCases(
    "api key",
    "POST",
    "/v1/api-keys",
    { name: "k-bad", role: "support" },
    "max_grant_amount",
    [
      ["0", 0],
      ["-1", -1],
      ["1.5", 1.5],
      ['"5"', "5"],
      ["10^15+1", 10 ** 15 + 1],
    ],
    "invalid_request",
  ),
  ...fieldCases(
    "api key",
    "POST",
    "/v1/api-keys",
    { name: "k-bad", role: "viewer" },
    "key",
    [["client-chosen token (unknown field)", "cg_mine"]],
    "invalid_request",
  ),
  {
    name: "api key: missing role",
    method: "POST",
    path: "/v1/api-keys",
    body: { name: "k-bad" },
    status: 400,
    code: "invalid_request",
  },
  {
    name: "api key: revoking an unknown key → 404 not_found",
    method: "DELETE",
    path: `/v1/api-keys/${uid("key")}`,
    status: 404,
    code: "not_found",
  },

  ...badPathCases(),
  ...queryCases(),
  ...unknownAccountWrites,
  ...unknownAccountGrants,
  ...routeCases,
];

describe("bad input: every refusal is problem+json and moves nothing", () => {
  it("has unique case names", () => {
    const names = CASES.map((c) => c.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    expect(CASES.length).toBeGreaterThan(300);
  });

  it.each(CASES)("$name", async (c) => {
    await expectRefusedAndStill(c);
  });
});

describe("refused global writes leave the global state alone", () => {
  it("a refused PUT /v1/policy does not change the policy", async () => {
    const before = await call("GET", "/v1/policy");
    expect(before.status).toBe(200);
    for (const body of [
      { order: ["priority", "bogus"] },
      { hold_on_expiry: "capture", type_order: [] },
      { require_verified_for_promotional: true, extra: 1 },
    ]) {
      expectProblem(await call("PUT", "/v1/policy", body), 400, "invalid_request");
    }
    expect((await call("GET", "/v1/policy")).text).toBe(before.text);
  });

  it("a refused PUT /v1/accounts/{id}/policy does not change the account's overrides", async () => {
    const before = await call("GET", acct("/policy"));
    expect(before.status).toBe(200);
    for (const body of [{ order: ["priority", "size"] }, { hold_on_expiry: "capture", type_order: ["gift"] }]) {
      expectProblem(await call("PUT", acct("/policy"), body), 400, "invalid_request");
    }
    expect((await call("GET", acct("/policy"))).text).toBe(before.text);
  });

  it("a refused POST /v1/api-keys creates no key", async () => {
    const name = uid("k-refused");
    for (const body of [
      { name, role: "root" },
      { name, role: "viewer", extra: 1 },
      { name, role: "support", max_grant_amount: 0 },
    ]) {
      expectProblem(await call("POST", "/v1/api-keys", body), 400, "invalid_request");
    }
    const list = await call("GET", "/v1/api-keys");
    expect(list.status).toBe(200);
    expect(list.json.api_keys.filter((k: any) => k.name === name)).toEqual([]);
  });

  it("a refused PUT /v1/accounts/{id} creates no account", async () => {
    const id = uid("nobody");
    for (const body of [{ name: 5 }, { parent_id: uid("ghost") }, { verified: "yes" }]) {
      const res = await call("PUT", `/v1/accounts/${id}`, body);
      expect(res.status === 400 || res.status === 404).toBe(true);
    }
    expectProblem(await call("GET", `/v1/accounts/${id}`), 404, "account_not_found");
  });
});

describe("an account's total per unit", () => {
  it("may reach 9·10^15 but not exceed it (400 invalid_amount, nothing written)", async () => {
    const big = uid("big");
    for (let i = 0; i < 9; i++) await grant(big, { grant_id: `g${i}`, amount: 10 ** 15 });
    const full = await call("GET", `/v1/accounts/${big}/balance`);
    expect(full.json.available).toBe(9 * 10 ** 15);
    for (const amount of [1, 10 ** 15]) {
      await expectRefusedAndStill({
        name: "over the total",
        method: "POST",
        path: `/v1/accounts/${big}/grants`,
        body: { grant_id: "g-over", amount, type: "purchased" },
        status: 400,
        code: "invalid_amount",
        account: big,
      });
    }
    // Other units have their own total.
    await grant(big, { grant_id: "g-tokens", amount: 10 ** 15, unit: "tokens" });
    // Once some is spent, there is room again.
    expect((await call("POST", `/v1/accounts/${big}/debits`, { debit_id: "d1", amount: 5 })).status).toBe(200);
    await grant(big, { grant_id: "g-refill", amount: 5 });
    await expectRefusedAndStill({
      name: "over the total again",
      method: "POST",
      path: `/v1/accounts/${big}/grants`,
      body: { grant_id: "g-over", amount: 1, type: "purchased" },
      status: 400,
      code: "invalid_amount",
      account: big,
    });
  });
});

describe("idempotency", () => {
  it("same debit_id: same body replays, different body is 409 and moves nothing", async () => {
    const first = await call("POST", acct("/debits"), { debit_id: "d-idem", amount: 3, metadata: { a: "1", b: "2" } });
    expect(first.status).toBe(200);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const after = await snapshot(A);

    // Same parsed JSON, other key order and spacing: the first response, flagged.
    const replay = await send({
      name: "replay",
      method: "POST",
      path: acct("/debits"),
      raw: '{ "metadata": {"b":"2","a":"1"}, "amount": 3, "debit_id": "d-idem" }',
      status: 200,
      code: "",
    });
    expect(replay.status).toBe(200);
    expect(replay.text).toBe(first.text);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await snapshot(A)).toEqual(after);

    for (const body of [
      { debit_id: "d-idem", amount: 4, metadata: { a: "1", b: "2" } },
      { debit_id: "d-idem", amount: 3 },
      { debit_id: "d-idem", amount: 3, metadata: { a: "1", b: "2" }, unit: "credits" },
      { debit_id: "d-idem", amount: 3, metadata: { a: "1", b: "3" } },
    ]) {
      await expectRefusedAndStill({
        name: "conflict",
        method: "POST",
        path: acct("/debits"),
        body,
        status: 409,
        code: "idempotency_conflict",
      });
    }
  });

  it("the Idempotency-Key header is an id too: replay and conflict", async () => {
    const headers = { "idempotency-key": uid("idem") };
    const first = await call("POST", acct("/debits"), { amount: 2 }, { headers });
    expect(first.status).toBe(200);
    expect(first.json.debit_id).toBe(headers["idempotency-key"]);
    const replay = await call("POST", acct("/debits"), { amount: 2 }, { headers });
    expect(replay.text).toBe(first.text);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    await expectRefusedAndStill({
      name: "header conflict",
      method: "POST",
      path: acct("/debits"),
      body: { amount: 1 },
      headers,
      status: 409,
      code: "idempotency_conflict",
    });
  });

  it("same grant_id or hold_id with another body is 409 and moves nothing", async () => {
    const g = await call("POST", acct("/grants"), { grant_id: "g-idem", amount: 5, type: "purchased" });
    expect(g.status).toBe(201);
    const again = await call("POST", acct("/grants"), { amount: 5, type: "purchased", grant_id: "g-idem" });
    expect(again.status).toBe(201);
    expect(again.text).toBe(g.text);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const h = await call("POST", acct("/holds"), { hold_id: "h-idem", amount: 2 });
    expect(h.status).toBe(201);
    for (const [path, body] of [
      ["/grants", { grant_id: "g-idem", amount: 6, type: "purchased" }],
      ["/grants", { grant_id: "g-idem", amount: 5, type: "promotional" }],
      ["/grants", { grant_id: "g-buy", amount: 1000, type: "purchased" }],
      ["/holds", { hold_id: "h-idem", amount: 3 }],
      ["/holds", { hold_id: HOLD, amount: 1 }],
    ] as const) {
      await expectRefusedAndStill({
        name: "conflict",
        method: "POST",
        path: acct(path),
        body,
        status: 409,
        code: "idempotency_conflict",
      });
    }
  });

  it("a 402 is not remembered: the same id succeeds once credits arrive", async () => {
    const a = uid("idem402");
    await grant(a, { grant_id: "g1", amount: 5 });
    const debit = { debit_id: "d-retry", amount: 8 };
    const refused = await call("POST", `/v1/accounts/${a}/debits`, debit);
    expectProblem(refused, 402, "insufficient_credits");
    expect(refused.json).toMatchObject({ available: 5, requested: 8 });
    expect(refused.headers.get("idempotent-replayed")).toBeNull();
    const again = await call("POST", `/v1/accounts/${a}/debits`, debit);
    expectProblem(again, 402, "insufficient_credits");
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    const ledgerBefore = (await call("GET", `/v1/accounts/${a}/ledger?limit=1000`)).json.entries;
    expect(ledgerBefore.map((e: any) => e.kind)).toEqual(["grant"]);

    await grant(a, { grant_id: "g2", amount: 10 });
    const ok = await call("POST", `/v1/accounts/${a}/debits`, debit);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("idempotent-replayed")).toBeNull();
    expect(ok.json.balance.available).toBe(7);
    const replay = await call("POST", `/v1/accounts/${a}/debits`, debit);
    expect(replay.text).toBe(ok.text);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    const entries = (await call("GET", `/v1/accounts/${a}/ledger?limit=1000`)).json.entries;
    expect(entries.filter((e: any) => e.kind === "debit").reduce((s: number, e: any) => s + e.amount, 0)).toBe(-8);
  });

  it("a refused grant (400) is not remembered either", async () => {
    const a = uid("idem400");
    await grant(a, { grant_id: "g1", amount: 5 });
    expectProblem(
      await call("POST", `/v1/accounts/${a}/grants`, { grant_id: "g-late", amount: 5, type: "compensatory" }),
      400,
      "invalid_request",
    );
    const ok = await call("POST", `/v1/accounts/${a}/grants`, {
      grant_id: "g-late",
      amount: 5,
      type: "compensatory",
      reason: "now with a reason",
    });
    expect(ok.status).toBe(201);
  });
});

describe("the snapshot sees every kind of write (so the checks above can fail)", () => {
  it("a debit, a grant in another unit, a hold, a release, a void and an account update each change it", async () => {
    const s = uid("sens");
    await grant(s, { grant_id: "g1", amount: 100 });
    const writes: [string, string, unknown][] = [
      ["POST", "/debits", { debit_id: "d1", amount: 1 }],
      ["POST", "/grants", { grant_id: "g-tok", amount: 5, type: "purchased", unit: "tokens" }],
      ["POST", "/holds", { hold_id: HOLD, amount: 1 }],
      ["POST", `/holds/${HOLD}/release`, undefined],
      ["POST", "/grants/g-tok/void", { reason: "x" }],
      ["PUT", "", { metadata: { k: "v" } }],
    ];
    for (const [method, rest, body] of writes) {
      const before = await snapshot(s);
      const res = await call(method, `/v1/accounts/${s}${rest}`, body);
      expect(res.status).toBeLessThan(300);
      expect(await snapshot(s)).not.toEqual(before);
    }
  });
});
