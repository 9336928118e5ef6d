/**
 * Receipts against a real `wrangler dev`:
 *  - an INDEPENDENT verifier (node:crypto only: no jose, nothing from src/)
 *    checks a real receipt's ES256 signature with the key from the JWKS;
 *  - the SDK scenario: ReceiptWallet + ReceiptVerifier drive 10 000 local
 *    spends against an account holding 5 000 credits, and exactly 5 000 are
 *    admitted; after settlement the ledger agrees.
 */
import { createPublicKey, verify as ecdsaVerify, type JsonWebKey } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { CreditGateClient, ReceiptVerifier, ReceiptWallet } from "../../src/sdk";
import { api, gate, uid } from "./harness";

const b64url = (s: string) => Buffer.from(s, "base64url");

/** Verifies an ES256 JWS with node:crypto alone; returns the payload, or null when it does not verify. */
function independentVerify(token: string, jwks: { keys: JsonWebKey[] }): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const [h, p, s] = parts as [string, string, string];
  const header = JSON.parse(b64url(h).toString("utf8"));
  if (header.alg !== "ES256" || typeof header.kid !== "string") return null;
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) return null;
  const key = createPublicKey({ key: jwk, format: "jwk" });
  const signature = b64url(s);
  if (signature.length !== 64) return null; // r || s, 32 bytes each (JWS, not DER)
  const ok = ecdsaVerify("sha256", Buffer.from(`${h}.${p}`, "ascii"), { key, dsaEncoding: "ieee-p1363" }, signature);
  return ok ? JSON.parse(b64url(p).toString("utf8")) : null;
}

describe("receipts e2e", () => {
  let gatewayKey: string;
  beforeAll(async () => {
    const res = await api("POST", "/v1/api-keys", { name: "e2e-gateway", role: "gateway" });
    expect(res.status).toBe(201);
    gatewayKey = res.json.key;
  });

  it("an independent node:crypto verifier accepts a real receipt and rejects a tampered one", async () => {
    const account = uid();
    expect(
      (await api("POST", `/v1/accounts/${account}/grants`, { grant_id: "g1", amount: 500, type: "purchased" })).status,
    ).toBe(201);
    const before = Math.floor(Date.now() / 1000);
    const created = await api(
      "POST",
      `/v1/accounts/${account}/receipts`,
      { receipt_id: "r1", amount: 120 },
      gatewayKey,
    );
    expect(created.status).toBe(201);

    const jwksRes = await api("GET", "/.well-known/jwks.json", undefined, null);
    expect(jwksRes.status).toBe(200);
    expect(jwksRes.headers.get("cache-control")).toBe("public, max-age=300");
    const jwks = jwksRes.json as { keys: JsonWebKey[] };
    // The published key is the public half of the key this gate was started with.
    const signing = JSON.parse(gate().signingJwks).keys[0];
    expect(jwks.keys).toEqual([
      { kty: "EC", crv: "P-256", x: signing.x, y: signing.y, kid: signing.kid, alg: "ES256", use: "sig" },
    ]);

    const token: string = created.json.receipt;
    const header = JSON.parse(b64url(token.split(".")[0] as string).toString("utf8"));
    expect(header).toEqual({ alg: "ES256", kid: signing.kid, typ: "JWT" });
    const claims = independentVerify(token, jwks);
    expect(claims).not.toBeNull();
    expect(claims).toMatchObject({
      iss: "credit-gate",
      sub: account,
      aud: "usage",
      jti: "r1",
      amt: 120,
      unit: "credits",
    });
    expect(claims?.iat as number).toBeGreaterThanOrEqual(before - 1);
    expect(claims?.exp).toBe((claims?.iat as number) + 60);

    const [h, p, s] = token.split(".") as [string, string, string];
    const raised = Buffer.from(JSON.stringify({ ...claims, amt: 1_000_000 })).toString("base64url");
    expect(independentVerify(`${h}.${raised}.${s}`, jwks)).toBeNull();
    expect(independentVerify(`${h}.${p}.${Buffer.alloc(64).toString("base64url")}`, jwks)).toBeNull();
    // The gate agrees: the tampered token is refused, the real one settles.
    const forged = await api("POST", "/v1/receipts/settle", { receipt: `${h}.${raised}.${s}`, used: 1 }, gatewayKey);
    expect(forged.status).toBe(401);
    expect(forged.json.code).toBe("invalid_receipt");
    const settled = await api("POST", "/v1/receipts/settle", { receipt: token, used: 20 }, gatewayKey);
    expect(settled.json).toMatchObject({
      receipt_id: "r1",
      used: 20,
      released: 100,
      balance: { available: 480, held: 0 },
    });
  });

  it("SDK: 10 000 local spends against 5 000 credits admit exactly 5 000; the ledger agrees after settlement", async () => {
    const g = gate();
    const admin = new CreditGateClient({ baseUrl: g.url, token: g.adminToken });
    const gateway = new CreditGateClient({ baseUrl: g.url, token: gatewayKey });
    const account = uid("sdk");
    await admin.createGrant(account, { grant_id: "g-5000", amount: 5000, type: "purchased" });

    const wallet = new ReceiptWallet({ client: gateway, accountId: account, receiptAmount: 100, ttlSeconds: 300 });
    const verifier = new ReceiptVerifier({ gateUrl: g.url, audience: "usage" });

    let walletAdmitted = 0;
    let serviceAdmitted = 0;
    const refusals: Record<string, number> = {};
    const receiptsSeen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const spend = await wallet.spend(1);
      if (!spend.admitted) {
        refusals[spend.reason] = (refusals[spend.reason] ?? 0) + 1;
        continue;
      }
      walletAdmitted++;
      expect(spend.receipt).not.toBeNull();
      receiptsSeen.add(spend.receiptId as string);
      const admission = await verifier.consume(spend.receipt as string, 1);
      if (admission.admitted) serviceAdmitted++;
      else refusals[`service:${admission.reason}`] = (refusals[`service:${admission.reason}`] ?? 0) + 1;
    }
    expect(walletAdmitted).toBe(5000);
    expect(serviceAdmitted).toBe(5000);
    expect(refusals).toEqual({ insufficient_credits: 5000 });
    expect(wallet.getStats()).toMatchObject({ admitted: 5000, reserved: 5000, failOpenAdmitted: 0 });

    // A receipt presented past its amt is refused by the service, whoever presents it.
    const usage = verifier.report();
    expect(usage.length).toBe(receiptsSeen.size);
    expect(usage.reduce((sum, u) => sum + u.used, 0)).toBe(5000);
    const first = usage[0];
    expect(first).toBeDefined();
    const over = await verifier.consume(first?.receipt as string, 1);
    expect(over).toMatchObject({ admitted: false, reason: "exhausted" });

    // The wallet settles what it spent; the service's report settles to the same numbers (replays).
    const walletSettle = await wallet.settle();
    expect(walletSettle.failed).toEqual([]);
    // Most receipts were settled in the background as they ran out; settle() did the rest.
    expect(wallet.getStats()).toMatchObject({ settled: receiptsSeen.size, settledUsed: 5000 });
    const serviceSettle = await verifier.settle(gateway, { all: true });
    expect(serviceSettle.failed).toEqual([]);
    expect(serviceSettle.settled.length).toBe(usage.length);
    // Had the wallet settled any receipt with another `used`, the gate would have answered 409 here.
    expect(serviceSettle.settled.reduce((sum, r) => sum + r.used, 0)).toBe(5000);

    const balance = await admin.getBalance(account);
    expect(balance).toMatchObject({ available: 0, held: 0 });
    const entries = await admin.allEntries(account);
    const sum = (kind: string, field: "amount" | "held_delta") =>
      entries.filter((e) => e.kind === kind).reduce((s, e) => s + e[field], 0);
    expect(sum("grant", "amount")).toBe(5000);
    expect(sum("receipt", "held_delta")).toBe(5000);
    expect(sum("receipt.settled", "amount")).toBe(-5000);
    expect(entries.reduce((s, e) => s + e.amount, 0)).toBe(0);
    expect(entries.reduce((s, e) => s + e.held_delta, 0)).toBe(0);
    expect(entries.filter((e) => e.kind === "debit")).toEqual([]);
    expect(new Set(entries.filter((e) => e.kind === "receipt").map((e) => e.ref))).toEqual(receiptsSeen);
  });

  it("SDK: the same holds with 16 concurrent spenders sharing one wallet", async () => {
    const g = gate();
    const admin = new CreditGateClient({ baseUrl: g.url, token: g.adminToken });
    const gateway = new CreditGateClient({ baseUrl: g.url, token: gatewayKey });
    const account = uid("sdk-par");
    await admin.createGrant(account, { amount: 5000, type: "purchased" });
    const wallet = new ReceiptWallet({ client: gateway, accountId: account, receiptAmount: 100, ttlSeconds: 300 });
    const verifier = new ReceiptVerifier({ gateUrl: g.url });
    let admitted = 0;
    const worker = async () => {
      for (let i = 0; i < 625; i++) {
        const spend = await wallet.spend(1);
        if (spend.admitted && (await verifier.consume(spend.receipt as string, 1)).admitted) admitted++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(admitted).toBe(5000);
    await wallet.settle();
    expect((await verifier.settle(gateway, { all: true })).failed).toEqual([]);
    expect(wallet.getStats()).toMatchObject({ admitted: 5000, settledUsed: 5000 });
    expect(await admin.getBalance(account)).toMatchObject({ available: 0, held: 0 });
    const entries = await admin.allEntries(account);
    expect(entries.filter((e) => e.kind === "receipt.settled").reduce((s, e) => s + e.amount, 0)).toBe(-5000);
  });
});
