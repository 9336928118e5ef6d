import { describe, expect, it } from "vitest";
import { balance, call, grant, ledgerEntries, uid } from "./helpers";

const hold = (a: string, body: Record<string, unknown>) =>
  call("POST", `/v1/accounts/${a}/holds`, { hold_id: uid("h"), ...body });
const capture = (a: string, h: string, body?: Record<string, unknown>) =>
  call("POST", `/v1/accounts/${a}/holds/${h}/capture`, body);
const release = (a: string, h: string, body?: Record<string, unknown>) =>
  call("POST", `/v1/accounts/${a}/holds/${h}/release`, body);

describe("holds errors", () => {
  it("a hold above available is 402 and reserves nothing", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await hold(a, { amount: 80 });
    const res = await hold(a, { hold_id: "too-big", amount: 21 });
    expect(res.status).toBe(402);
    expect(res.json).toMatchObject({ code: "insufficient_credits", available: 20, requested: 21 });
    expect(await balance(a)).toMatchObject({ available: 20, held: 80 });
    // A refused id can be retried once credits are there.
    await grant(a, { amount: 1 });
    expect((await hold(a, { hold_id: "too-big", amount: 21 })).status).toBe(201);
  });

  it("the other close on a closed hold is 409 hold_closed, in both directions", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await hold(a, { hold_id: "cap", amount: 10 });
    await hold(a, { hold_id: "rel", amount: 10 });
    expect((await capture(a, "cap", { amount: 4 })).status).toBe(200);
    expect((await release(a, "rel")).status).toBe(200);
    const before = await ledgerEntries(a);
    const r1 = await release(a, "cap");
    expect(r1.status).toBe(409);
    expect(r1.json.code).toBe("hold_closed");
    const r2 = await capture(a, "rel");
    expect(r2.status).toBe(409);
    expect(r2.json.code).toBe("hold_closed");
    // A second capture with another amount is not the same close.
    const r3 = await capture(a, "cap", { amount: 5 });
    expect(r3.status).toBe(409);
    expect(await ledgerEntries(a)).toEqual(before);
    expect(await balance(a)).toMatchObject({ available: 96, held: 0 });
  });

  it("capture above the held amount is 400 invalid_amount; the hold stays open", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await hold(a, { hold_id: "h", amount: 10 });
    for (const amount of [11, -1, 1.5, "3"]) {
      const res = await capture(a, "h", { amount });
      expect(res.status).toBe(400);
      expect(res.json.code).toBe("invalid_amount");
    }
    expect((await call("GET", `/v1/accounts/${a}/holds/h`)).json.status).toBe("open");
    expect((await capture(a, "h", { amount: 0 })).json).toMatchObject({ captured: 0, released: 10 });
  });

  it("unknown holds, unknown accounts and receipts on the hold routes are 404", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    expect((await capture(a, "nope")).json.code).toBe("hold_not_found");
    expect((await release(a, "nope")).json.code).toBe("hold_not_found");
    expect((await call("GET", `/v1/accounts/${a}/holds/nope`)).json.code).toBe("hold_not_found");
    const ghost = uid("ghost");
    expect((await hold(ghost, { amount: 1 })).json.code).toBe("account_not_found");
    expect((await capture(ghost, "h")).json.code).toBe("account_not_found");
    // A receipt is closed by settling, not by the hold routes.
    await call("POST", `/v1/accounts/${a}/receipts`, { receipt_id: "rc", amount: 5 });
    expect((await capture(a, "rc")).json.code).toBe("hold_not_found");
    expect(await balance(a)).toMatchObject({ available: 95, held: 5 });
  });

  it("validates the body: ttl 1..86400, amount, ids, unknown fields", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    expect((await hold(a, { amount: 1, ttl_seconds: 0 })).json.code).toBe("invalid_request");
    expect((await hold(a, { amount: 1, ttl_seconds: 86_401 })).json.code).toBe("invalid_request");
    expect((await hold(a, { amount: 1, ttl_seconds: 1.5 })).json.code).toBe("invalid_request");
    expect((await hold(a, { amount: 0 })).json.code).toBe("invalid_amount");
    expect((await hold(a, { amount: 1e16 })).json.code).toBe("invalid_amount");
    expect((await hold(a, { amount: 1, hold_id: "bad id" })).json.code).toBe("invalid_request");
    expect((await hold(a, { amount: 1, extra: true })).json.code).toBe("invalid_request");
    expect((await call("POST", `/v1/accounts/${a}/holds`, { amount: 1 })).json.code).toBe("invalid_request");
    expect((await release(a, "x", { amount: 1 })).json.code).toBe("invalid_request");
    expect(await balance(a)).toMatchObject({ available: 100, held: 0 });
  });

  it("the same hold_id with another body is 409 idempotency_conflict", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await hold(a, { hold_id: "dup", amount: 10 });
    const res = await hold(a, { hold_id: "dup", amount: 11 });
    expect(res.status).toBe(409);
    expect(res.json.code).toBe("idempotency_conflict");
    expect(await balance(a)).toMatchObject({ available: 90, held: 10 });
  });

  it("only gateway and admin keys may hold, capture and release; readers may read", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await hold(a, { hold_id: "h", amount: 10 });
    const viewer = (await call("POST", "/v1/api-keys", { name: "v", role: "viewer" })).json.key;
    const finance = (await call("POST", "/v1/api-keys", { name: "f", role: "finance" })).json.key;
    for (const token of [viewer, finance]) {
      expect((await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "x", amount: 1 }, { token })).status).toBe(403);
      expect((await call("POST", `/v1/accounts/${a}/holds/h/capture`, undefined, { token })).status).toBe(403);
      expect((await call("POST", `/v1/accounts/${a}/holds/h/release`, undefined, { token })).status).toBe(403);
      expect((await call("GET", `/v1/accounts/${a}/holds/h`, undefined, { token })).status).toBe(200);
    }
    expect((await call("POST", `/v1/accounts/${a}/holds/h/release`, undefined, { token: null })).status).toBe(401);
    const gateway = (await call("POST", "/v1/api-keys", { name: "g", role: "gateway" })).json.key;
    const res = await call("POST", `/v1/accounts/${a}/holds/h/capture`, { amount: 3 }, { token: gateway });
    expect(res.status).toBe(200);
    const entries = await ledgerEntries(a);
    expect(entries.at(-1).actor).toMatch(/:gateway$/);
  });
});
