/**
 * POST /v1/imports, what it refuses: any bad line is a 400 listing the bad
 * lines (bounded) and NOTHING is imported, not even the good lines; the
 * route's media type, its 10 MiB body cap, its bounds, and its roles.
 */
import { describe, expect, it } from "vitest";
import { IMPORT_BODY_MAX_BYTES, IMPORT_ERRORS_MAX } from "../../src/ledger/migration";
import { call, expectProblem, fetchWorker, uid } from "./helpers";
import { accountState, DAY, importLots, inDays, keyOf, lot, ndjson } from "./imports-helpers";

const past = new Date(Date.now() - DAY).toISOString();

describe("a bad line refuses the whole import", () => {
  const BAD: [string, unknown][] = [
    ["an unknown member", { legacy_id: "b", amount: 1, type: "purchased", colour: "red" }],
    ["amount 0", { legacy_id: "b", amount: 0, type: "purchased" }],
    ["a fractional amount", { legacy_id: "b", amount: 1.5, type: "purchased" }],
    ["an amount as a string", { legacy_id: "b", amount: "100", type: "purchased" }],
    ["an amount above 10^15", { legacy_id: "b", amount: 10 ** 15 + 1, type: "purchased" }],
    ["no type", { legacy_id: "b", amount: 1 }],
    ["an unknown type", { legacy_id: "b", amount: 1, type: "gift" }],
    ["no legacy_id", { amount: 1, type: "purchased" }],
    ["a bad legacy_id", { legacy_id: "a b", amount: 1, type: "purchased" }],
    ["a bad unit", { legacy_id: "b", amount: 1, type: "purchased", unit: "Credits" }],
    ["a bad time", { legacy_id: "b", amount: 1, type: "purchased", expires_at: "tomorrow" }],
    ["an expiry already past", { legacy_id: "b", amount: 1, type: "purchased", expires_at: past }],
    [
      "an expiry before the start",
      { legacy_id: "b", amount: 1, type: "purchased", effective_at: inDays(5), expires_at: inDays(4) },
    ],
    ["compensatory without a reason", { legacy_id: "b", amount: 1, type: "compensatory" }],
    [
      "cost_basis on a promotional lot",
      { legacy_id: "b", amount: 1, type: "promotional", cost_basis: { amount: 1, currency: "USD" } },
    ],
    ["a bad currency", { legacy_id: "b", amount: 1, type: "purchased", cost_basis: { amount: 1, currency: "usd" } }],
    [
      "an unknown cost_basis member",
      { legacy_id: "b", amount: 1, type: "purchased", cost_basis: { amount: 1, currency: "USD", fx: 1 } },
    ],
    ["a lone surrogate", { legacy_id: "b", amount: 1, type: "compensatory", reason: "x\ud800" }],
    ["a __proto__ key", JSON.parse('{"legacy_id":"b","amount":1,"type":"purchased","__proto__":{}}')],
    ["an array", [1, 2]],
    ["null", null],
  ];

  it.each(BAD)("%s: 400 naming the line and its legacy_id, nothing imported", async (_name, bad) => {
    const a = uid("bad");
    const line = bad !== null && typeof bad === "object" && !Array.isArray(bad) ? { account_id: a, ...bad } : bad;
    const before = await accountState(a);
    const res = await importLots([lot(a, { legacy_id: "good-1" }), line, lot(a, { legacy_id: "good-2" })]);
    expectProblem(res, 400, "invalid_request");
    expect(res.json.invalid_lines).toBe(1);
    expect(res.json.errors_more).toBe(false);
    expect(res.json.errors).toHaveLength(1);
    const id = (line as { legacy_id?: unknown } | null)?.legacy_id;
    expect(res.json.errors[0]).toMatchObject({
      line: 2,
      legacy_id: typeof id === "string" && /^[A-Za-z0-9._:-]+$/.test(id) ? id : null,
      reason: expect.any(String),
    });
    expect(await accountState(a)).toEqual(before);
  });

  it("lines that are not JSON, too long, or a duplicate pair: each named; the dry run refuses the same way", async () => {
    const a = uid("bad");
    const body = [
      JSON.stringify(lot(a, { legacy_id: "ok" })),
      "{not json",
      JSON.stringify(lot(a, { legacy_id: "long", reason: "x".repeat(5000), type: "compensatory" })),
      JSON.stringify(lot(a, { legacy_id: "ok", amount: 3 })),
      JSON.stringify(lot(uid("other"), { legacy_id: "ok" })), // the same legacy_id on another account is another lot
    ].join("\n");
    const before = await accountState(a);
    for (const dryRun of [false, true]) {
      const res = await importLots(body, { dryRun });
      expectProblem(res, 400, "invalid_request");
      expect(res.json.errors.map((e: any) => [e.line, e.legacy_id])).toEqual([
        [2, null],
        [3, null],
        [4, "ok"],
      ]);
      expect(res.json.errors[2].reason).toMatch(/already on line 1/);
    }
    expect(await accountState(a)).toEqual(before);
  });

  it("the list of bad lines is bounded; invalid_lines counts them all", async () => {
    const a = uid("bad");
    const lines = Array.from({ length: 150 }, (_, i) => lot(a, { legacy_id: `z${i}`, amount: 0 }));
    const res = await importLots(lines);
    expectProblem(res, 400, "invalid_request");
    expect(res.json).toMatchObject({ invalid_lines: 150, errors_more: true });
    expect(res.json.errors).toHaveLength(IMPORT_ERRORS_MAX);
    expect(res.json.errors[IMPORT_ERRORS_MAX - 1].line).toBe(IMPORT_ERRORS_MAX);
  });

  it("raw bytes that are not UTF-8 (a lone surrogate as WTF-8): 400 invalid_json", async () => {
    const a = uid("bad");
    const text = JSON.stringify(lot(a, { type: "compensatory", reason: "a__X__b" }));
    const [head, tail] = text.split("__X__");
    const e = new TextEncoder();
    const bytes = new Uint8Array([...e.encode(head), 0xed, 0xa0, 0x80, ...e.encode(tail), 0x0a]);
    const req = new Request("http://gate.test/v1/imports", {
      method: "POST",
      headers: { authorization: "Bearer test-admin-token", "content-type": "application/x-ndjson" },
      body: bytes,
    });
    expectProblem(await fetchWorker(req), 400, "invalid_json");
    expect((await call("GET", `/v1/accounts/${a}`)).status).toBe(404);
  });
});

describe("the request's bounds", () => {
  it("more than 500 accounts, or more than 1 000 lines of one account: 400, nothing imported", async () => {
    const many = Array.from({ length: 501 }, (_, i) => lot(`bnd-${uid("m")}-${i}`, { legacy_id: "one", amount: 1 }));
    const res = await importLots(many, { dryRun: true });
    expectProblem(res, 400, "invalid_request");
    expect(res.json.errors.map((e: any) => e.line)).toEqual([501]);
    expect(res.json.errors[0].reason).toMatch(/more than 500 accounts/);

    const a = uid("bnd");
    const heavy = Array.from({ length: 1001 }, (_, i) => lot(a, { legacy_id: `h${i}`, amount: 1 }));
    const res2 = await importLots(heavy);
    expectProblem(res2, 400, "invalid_request");
    expect(res2.json.errors.map((e: any) => e.line)).toEqual([1001]);
    expect((await call("GET", `/v1/accounts/${a}`)).status).toBe(404);
  });

  it("more than 50 000 lines: 400 before any line is judged", async () => {
    const res = await importLots(`${"\n".repeat(50_001)}x\n`);
    expectProblem(res, 400, "invalid_request");
    expect(res.json.detail).toMatch(/more than 50000 lines/);
  });
});

describe("the body: NDJSON up to 10 MiB, on this route only", () => {
  it("415 unless the body is application/x-ndjson", async () => {
    const a = uid("ct");
    const body = ndjson([lot(a)]);
    for (const contentType of ["application/json", "text/plain", "application/x-ndjsonx"]) {
      expectProblem(await importLots(body, { contentType }), 415, "unsupported_media_type");
    }
    const bare = new Request("http://gate.test/v1/imports", {
      method: "POST",
      headers: { authorization: "Bearer test-admin-token" },
      body: new TextEncoder().encode(body),
    });
    expectProblem(await fetchWorker(bare), 415, "unsupported_media_type");
    expect((await call("GET", `/v1/accounts/${a}`)).status).toBe(404);
  });

  it("a body of exactly 10 MiB is read (its lines judged); one byte more is 413, declared or streamed", async () => {
    const pad = (bytes: number) => {
      // 2 600 lines of ~4 000 bytes, each refused for its unknown member, filling exactly `bytes`.
      const line = (n: number) => `{"legacy_id":"p","pad":"${"x".repeat(n)}"}\n`;
      const overhead = line(0).length;
      const per = 4000;
      const full = Math.floor(bytes / per);
      return line(per - overhead).repeat(full - 1) + line(bytes - (full - 1) * per - overhead);
    };
    const exact = pad(IMPORT_BODY_MAX_BYTES);
    expect(new TextEncoder().encode(exact).byteLength).toBe(IMPORT_BODY_MAX_BYTES);
    const read = await importLots(exact);
    expectProblem(read, 400, "invalid_request");
    expect(read.json.errors_more).toBe(true);

    expectProblem(await importLots(`${exact} `), 413, "payload_too_large");
    const chunk = new TextEncoder().encode(`${exact} `);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < chunk.length; i += 65_536) c.enqueue(chunk.slice(i, i + 65_536));
        c.close();
      },
    });
    const streamed = new Request("http://gate.test/v1/imports", {
      method: "POST",
      headers: { authorization: "Bearer test-admin-token", "content-type": "application/x-ndjson" },
      body: stream,
      duplex: "half",
    } as RequestInit);
    expectProblem(await fetchWorker(streamed), 413, "payload_too_large");
  });

  it("the exception is this route's alone: a grant (or /v1/imports/ with a slash) still stops at 64 KiB", async () => {
    const a = uid("cap");
    const big = { grant_id: uid("g"), amount: 1, type: "compensatory", reason: "x".repeat(70_000) };
    expectProblem(await call("POST", `/v1/accounts/${a}/grants`, big), 413, "payload_too_large");
    const slash = await call("POST", "/v1/imports/", undefined, {
      raw: "x".repeat(70_000),
      headers: { "content-type": "application/x-ndjson" },
    });
    expectProblem(slash, 413, "payload_too_large");
  });

  it("dry_run takes true or false only; unknown query parameters are refused", async () => {
    expectProblem(await call("POST", "/v1/imports?dry_run=yes"), 400, "invalid_request");
    expectProblem(await call("POST", "/v1/imports?dryrun=true"), 400, "invalid_request");
    expect((await call("POST", "/v1/imports?dry_run=false")).status).toBe(200);
  });
});

describe("who may import", () => {
  it("admin only: finance, support, marketing, gateway and viewer keys are 403; no token 401; a scoped admin 403", async () => {
    const a = uid("role");
    const body = ndjson([lot(a)]);
    for (const role of ["finance", "support", "marketing", "gateway", "viewer"]) {
      expectProblem(await importLots(body, { token: await keyOf(role) }), 403, "forbidden");
    }
    expectProblem(await importLots(body, { token: null }), 401, "unauthorized");
    // The role is checked before the body's media type: a viewer learns nothing of the body rules.
    expectProblem(
      await importLots(body, { token: await keyOf("viewer"), contentType: "text/plain" }),
      403,
      "forbidden",
    );
    const scopeRoot = uid("role");
    expect((await call("PUT", `/v1/accounts/${scopeRoot}`, {})).status).toBe(201);
    const scoped = await keyOf("admin", scopeRoot);
    expectProblem(await importLots(ndjson([lot(scopeRoot)]), { token: scoped }), 403, "forbidden");
    expect((await call("GET", `/v1/accounts/${a}`)).status).toBe(404);
    const adminKey = await keyOf("admin");
    const ok = await importLots(body, { token: adminKey });
    expect(ok.json.results[0].status).toBe("created");
    const entries = (await call("GET", `/v1/accounts/${a}/ledger`)).json.entries;
    expect(entries[0].actor).toMatch(/:admin$/);
    expect(entries[0].actor).not.toBe("admin-token:admin");
  });
});
