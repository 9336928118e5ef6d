import { runDurableObjectAlarm } from "cloudflare:test";
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { advanceClock, balance, call, grant, ledgerEntries, ledgerStubFor, uid } from "./helpers";

async function createReceipt(accountId: string, body: Record<string, unknown>) {
  return call("POST", `/v1/accounts/${accountId}/receipts`, { receipt_id: uid("r"), ...body });
}

describe("receipts happy path", () => {
  it("issues an ES256 receipt with kid and the contract's claims, verifiable against the JWKS", async () => {
    const a = uid();
    await grant(a, { amount: 1000 });
    const before = Math.floor(Date.now() / 1000);
    const res = await createReceipt(a, { receipt_id: "r-1", amount: 100 });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ receipt_id: "r-1", amount: 100, unit: "credits" });
    expect(res.json.balance).toMatchObject({ available: 900, held: 100 });

    const header = decodeProtectedHeader(res.json.receipt);
    expect(header).toEqual({ alg: "ES256", kid: "test-key-1", typ: "JWT" });
    const claims = decodeJwt(res.json.receipt);
    expect(claims).toMatchObject({ iss: "credit-gate", sub: a, aud: "usage", jti: "r-1", amt: 100, unit: "credits" });
    expect(claims.iat).toBeGreaterThanOrEqual(before);
    expect(claims.exp).toBe((claims.iat as number) + 60);
    expect(res.json.expires_at).toBe(new Date((claims.exp as number) * 1000).toISOString());

    const jwks = await call("GET", "/.well-known/jwks.json", undefined, { token: null });
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get("cache-control")).toBe("public, max-age=300");
    expect(jwks.json.keys).toHaveLength(1);
    expect(jwks.json.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", kid: "test-key-1", alg: "ES256", use: "sig" });
    expect(jwks.json.keys[0].d).toBeUndefined();
    const verified = await jwtVerify(res.json.receipt, createLocalJWKSet(jwks.json), {
      issuer: "credit-gate",
      audience: "usage",
      algorithms: ["ES256"],
    });
    expect(verified.payload.jti).toBe("r-1");

    expect(await balance(a)).toMatchObject({ available: 900, held: 100 });
    const entries = await ledgerEntries(a);
    expect(entries.at(-1)).toMatchObject({ kind: "receipt", ref: "r-1", amount: 0, held_delta: 100 });
  });

  it("settles: captures `used`, releases the rest; the same `used` replays, another is 409", async () => {
    const a = uid();
    await grant(a, { amount: 500 });
    const created = await createReceipt(a, { amount: 100, ttl_seconds: 120, audience: "https://api.example.com" });
    expect(decodeJwt(created.json.receipt)).toMatchObject({ aud: "https://api.example.com" });
    const settle = await call("POST", "/v1/receipts/settle", { receipt: created.json.receipt, used: 30 });
    expect(settle.status).toBe(200);
    expect(settle.json).toMatchObject({ receipt_id: created.json.receipt_id, used: 30, released: 70 });
    expect(settle.json.balance).toMatchObject({ available: 470, held: 0 });

    const again = await call("POST", "/v1/receipts/settle", { receipt: created.json.receipt, used: 30 });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(settle.json);

    const other = await call("POST", "/v1/receipts/settle", { receipt: created.json.receipt, used: 31 });
    expect(other.status).toBe(409);
    expect(other.json.code).toBe("receipt_settled");

    const entries = await ledgerEntries(a);
    expect(
      entries.filter((e) => e.ref === created.json.receipt_id).map((e) => [e.kind, e.amount, e.held_delta]),
    ).toEqual([
      ["receipt", 0, 100],
      ["receipt.settled", -30, -100],
    ]);
    expect(await balance(a)).toMatchObject({ available: 470, held: 0 });
  });

  it("settling with used 0 releases everything; used = amt captures everything", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const r1 = await createReceipt(a, { amount: 40 });
    const r2 = await createReceipt(a, { amount: 60 });
    expect(r2.json.balance).toMatchObject({ available: 0, held: 100 });
    expect((await call("POST", "/v1/receipts/settle", { receipt: r1.json.receipt, used: 0 })).json).toMatchObject({
      used: 0,
      released: 40,
    });
    const full = await call("POST", "/v1/receipts/settle", { receipt: r2.json.receipt, used: 60 });
    expect(full.json).toMatchObject({ used: 60, released: 0, balance: { available: 40, held: 0 } });
  });

  it("is idempotent by receipt_id: the same body returns the first token, another body is 409", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const first = await createReceipt(a, { receipt_id: "r-same", amount: 10 });
    const again = await createReceipt(a, { receipt_id: "r-same", amount: 10 });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(first.json);
    const conflict = await createReceipt(a, { receipt_id: "r-same", amount: 11 });
    expect(conflict.status).toBe(409);
    expect(conflict.json.code).toBe("idempotency_conflict");
    // The Idempotency-Key header works when the body has no id.
    const viaHeader = await call(
      "POST",
      `/v1/accounts/${a}/receipts`,
      { amount: 5 },
      { headers: { "idempotency-key": "r-header" } },
    );
    expect(viaHeader.status).toBe(201);
    expect(decodeJwt(viaHeader.json.receipt).jti).toBe("r-header");
    expect(await balance(a)).toMatchObject({ available: 85, held: 15 });
  });

  it("an unsettled receipt stays held through its settle grace, then the sweep captures it in full", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const created = await createReceipt(a, { amount: 25, ttl_seconds: 60 });
    const stub = ledgerStubFor(a);
    // exp + 290 s: still inside the settle grace, so the sweep leaves it held (10 s of margin: the
    // DO clock is real time plus the offset, and a loaded machine takes real time between these calls).
    await advanceClock(a, 60_000 + 290_000);
    await runDurableObjectAlarm(stub);
    expect(await balance(a)).toMatchObject({ available: 75, held: 25 });
    // Past exp + 300 s: captured in full (prepaid use may already have happened).
    await advanceClock(a, 11_000);
    await runDurableObjectAlarm(stub);
    expect(await balance(a)).toMatchObject({ available: 75, held: 0 });
    const settled = (await ledgerEntries(a)).filter((e) => e.kind === "receipt.settled");
    expect(settled).toHaveLength(1);
    expect(settled[0]).toMatchObject({
      amount: -25,
      held_delta: -25,
      actor: "system:sweep",
      ref: created.json.receipt_id,
    });
    const hold = await call("GET", `/v1/accounts/${a}/holds/${created.json.receipt_id}`);
    expect(hold.json).toMatchObject({ status: "captured", captured: 25, released: 0 });
  });

  it("draws receipts in policy order across lots and refuses what is not available (402)", async () => {
    const a = uid();
    await grant(a, { grant_id: "low", amount: 30, priority: 10 });
    await grant(a, { grant_id: "high", amount: 30, priority: 20 });
    const r = await createReceipt(a, { amount: 50 });
    expect(r.json.applied).toEqual([
      { grant_id: "low", type: "purchased", amount: 30 },
      { grant_id: "high", type: "purchased", amount: 20 },
    ]);
    const refused = await createReceipt(a, { amount: 11 });
    expect(refused.status).toBe(402);
    expect(refused.json).toMatchObject({ code: "insufficient_credits", available: 10, requested: 11 });
    const settle = await call("POST", "/v1/receipts/settle", { receipt: r.json.receipt, used: 35 });
    expect(settle.json.balance).toMatchObject({ available: 25, held: 0 });
    const grants = await call("GET", `/v1/accounts/${a}/grants`);
    expect(grants.json.grants.map((g: any) => [g.grant_id, g.remaining, g.held])).toEqual([
      ["low", 0, 0],
      ["high", 25, 0],
    ]);
  });

  it("serves the receipt routes and the JWKS in /openapi.json", async () => {
    const doc = await call("GET", "/openapi.json", undefined, { token: null });
    expect(Object.keys(doc.json.paths)).toEqual(
      expect.arrayContaining(["/v1/accounts/{account_id}/receipts", "/v1/receipts/settle", "/.well-known/jwks.json"]),
    );
    expect(doc.json.paths["/.well-known/jwks.json"].get.security).toEqual([]);
    expect(doc.json.components.schemas).toHaveProperty("ReceiptInput");
    expect(doc.json.components.schemas).toHaveProperty("SettleInput");
  });
});
