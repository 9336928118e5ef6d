/**
 * POST /v1/usage refusals: a batch that does not parse is 400 as a whole and
 * moves nothing; roles; scoped keys see other accounts as unknown, event by
 * event; and metered events are priced by the meter's current version.
 */
import { describe, expect, it } from "vitest";
import { USAGE_BODY_MAX_BYTES } from "../../src/api/middleware";
import { balance, call, expectProblem, grant, ledgerEntries, runAlarm, uid } from "./helpers";

async function account(credits: number): Promise<string> {
  const a = uid("usx");
  await grant(a, { amount: credits });
  return a;
}

async function key(role: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await call("POST", "/v1/api-keys", { name: uid("usage-key"), role, ...extra });
  expect(res.status, res.text).toBe(201);
  return res.json.key;
}

describe("POST /v1/usage: a batch that does not parse", () => {
  it("is 400 with the contract's code and moves nothing", async () => {
    const a = await account(100);
    const ok = { event_id: "x1", account_id: a, amount: 1 };
    const before = await ledgerEntries(a);
    const cases: [string, unknown, string][] = [
      ["no events", {}, "invalid_request"],
      ["empty events", { events: [] }, "invalid_request"],
      ["events not an array", { events: ok }, "invalid_request"],
      ["events null", { events: null }, "invalid_request"],
      ["unknown top-level field", { events: [ok], dry_run: true }, "invalid_request"],
      [
        "1 001 events (MAX_USAGE_EVENTS is 1 000)",
        { events: Array.from({ length: 1001 }, () => ok) },
        "invalid_request",
      ],
      ["a bare array", [ok], "invalid_request"],
    ];
    for (const [name, body, code] of cases) {
      const res = await call("POST", "/v1/usage", body);
      expect(res.status, name).toBe(400);
      expectProblem(res, 400, code);
    }
    expectProblem(await call("POST", "/v1/usage", undefined, { raw: '{"events": [' }), 400, "invalid_json");
    const asText = await call("POST", "/v1/usage", undefined, {
      raw: JSON.stringify({ events: [ok] }),
      headers: { "content-type": "text/plain" },
    });
    expectProblem(asText, 415, "unsupported_media_type");
    const huge = JSON.stringify({ events: [{ ...ok, pad: "x".repeat(USAGE_BODY_MAX_BYTES) }] });
    expectProblem(await call("POST", "/v1/usage", undefined, { raw: huge }), 413, "payload_too_large");
    expect(await ledgerEntries(a)).toEqual(before);
  });

  it("takes a full batch of long ids, above the 64 KiB of other routes", async () => {
    const a = await account(10_000);
    const long = (i: number) => `${"e".repeat(120)}-${String(i).padStart(4, "0")}`;
    const events = Array.from({ length: 1000 }, (_, i) => ({ event_id: long(i), account_id: a, amount: 1 }));
    expect(JSON.stringify({ events }).length).toBeGreaterThan(65_536);
    const res = await call("POST", "/v1/usage", { events });
    expect(res.status, res.text.slice(0, 200)).toBe(200);
    expect((await balance(a)).available).toBe(9000);
  });
});

describe("POST /v1/usage: who may call it", () => {
  it("admin and gateway may; finance and viewer are 403; no token is 401", async () => {
    const a = await account(100);
    const body = (id: string) => ({ events: [{ event_id: id, account_id: a, amount: 1 }] });
    expectProblem(await call("POST", "/v1/usage", body("r0"), { token: null }), 401, "unauthorized");
    for (const role of ["viewer", "finance", "support", "marketing"]) {
      expectProblem(await call("POST", "/v1/usage", body(`r-${role}`), { token: await key(role) }), 403, "forbidden");
    }
    const gw = await call("POST", "/v1/usage", body("r-gw"), { token: await key("gateway") });
    expect(gw.status).toBe(200);
    expect(gw.json.results[0]).toMatchObject({ event_id: "r-gw", status: 200 });
    expect((await balance(a)).available).toBe(99);
  });

  it("a scoped key's events for other accounts are 404 account_not_found, each on its own", async () => {
    const mine = await account(100);
    const theirs = await account(100);
    // Scopes are read from the D1 directory, which learns of an account when its outbox ships.
    await runAlarm(mine);
    await runAlarm(theirs);
    const scoped = await key("gateway", { account_scope: mine });
    const res = await call(
      "POST",
      "/v1/usage",
      {
        events: [
          { event_id: "s1", account_id: mine, amount: 3 },
          { event_id: "s2", account_id: theirs, amount: 3 },
        ],
      },
      { token: scoped },
    );
    expect(res.status).toBe(200);
    expect(res.json.results.map((r: any) => [r.event_id, r.status, r.code ?? null])).toEqual([
      ["s1", 200, null],
      ["s2", 404, "account_not_found"],
    ]);
    expect((await balance(mine)).available).toBe(97);
    expect((await balance(theirs)).available).toBe(100);
  });
});

describe("POST /v1/usage: metered events", () => {
  it("are priced by the meter's current version, rounded up, and the entries say so", async () => {
    const a = await account(100);
    const meter = uid("meter").replace(/[^a-z0-9_-]/g, "");
    const put = await call("PUT", `/v1/meters/${meter}`, { unit: "credits", price: { amount: 3, per: 1000 } });
    expect(put.status, put.text).toBeLessThan(300);
    const res = await call("POST", "/v1/usage", {
      events: [
        { event_id: "m1", account_id: a, meter, quantity: 2500 }, // 7.5 → 8
        { event_id: "m2", account_id: a, meter: `${meter}-none`, quantity: 1 },
        { event_id: "m3", account_id: a, meter, quantity: 1, unit: "tokens" },
      ],
    });
    expect(res.json.results.map((r: any) => [r.event_id, r.status, r.code ?? null])).toEqual([
      ["m1", 200, null],
      ["m2", 400, "invalid_request"],
      ["m3", 400, "invalid_request"],
    ]);
    expect(res.json.results[0]).toMatchObject({ amount: 8, unit: "credits" });
    expect((await balance(a)).available).toBe(92);
    const entry = (await ledgerEntries(a)).find((x) => x.ref === "m1");
    expect(entry.rating).toMatchObject({ meter, quantity: 2500 });
  });
});
