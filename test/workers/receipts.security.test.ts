import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import {
  base64url,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
  UnsecuredJWT,
} from "jose";
import { describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app";
import { parseReceiptKeys } from "../../src/receipts/keys";
import { verifyReceipt } from "../../src/receipts/verify";
import { balance, call, grant, ledgerEntries, uid } from "./helpers";

const testKeys = () => JSON.parse(env.RECEIPT_SIGNING_KEYS).keys as JWK[];
const testKey = () => testKeys()[0] as JWK;
const nowS = () => Math.floor(Date.now() / 1000);

/** Signs arbitrary claims with the gate's own test key (what only the gate can do). */
async function signWithGateKey(claims: JWTPayload, header: Record<string, unknown> = {}) {
  const key = await importJWK(testKey(), "ES256");
  return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "test-key-1", typ: "JWT", ...header }).sign(key);
}

async function newSigningJwk(kid: string, alg: "ES256" | "ES384" = "ES256") {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg, use: "sig" } as JWK;
}

/** A real receipt on a fresh account, and the token's claims to forge from. */
async function realReceipt(amount = 100) {
  const a = uid();
  await grant(a, { amount: 1000 });
  const res = await call("POST", `/v1/accounts/${a}/receipts`, { receipt_id: uid("r"), amount });
  expect(res.status).toBe(201);
  return { accountId: a, token: res.json.receipt as string, claims: decodeJwt(res.json.receipt) };
}

function swapPayload(token: string, payload: Record<string, unknown>): string {
  const [h, , s] = token.split(".");
  return `${h}.${base64url.encode(JSON.stringify(payload))}.${s}`;
}

type Forge = (r: Awaited<ReturnType<typeof realReceipt>>) => Promise<string>;

const FORGERIES: [string, Forge][] = [
  ["tampered payload (amt raised, signature kept)", async (r) => swapPayload(r.token, { ...r.claims, amt: 1000 })],
  [
    "tampered payload (sub moved to another account)",
    async (r) => swapPayload(r.token, { ...r.claims, sub: "victim" }),
  ],
  ["signature cut off", async (r) => r.token.split(".").slice(0, 2).join(".")],
  [
    "signature from a foreign key with the gate's kid",
    async (r) => {
      const foreign = await newSigningJwk("test-key-1");
      return new SignJWT(r.claims)
        .setProtectedHeader({ alg: "ES256", kid: "test-key-1", typ: "JWT" })
        .sign(await importJWK(foreign));
    },
  ],
  [
    "signature from a foreign key with an unknown kid",
    async (r) => {
      const foreign = await newSigningJwk("attacker-1");
      return new SignJWT(r.claims)
        .setProtectedHeader({ alg: "ES256", kid: "attacker-1", typ: "JWT" })
        .sign(await importJWK(foreign));
    },
  ],
  ["alg none (unsecured JWT)", async (r) => new UnsecuredJWT(r.claims).encode()],
  [
    "alg none with the gate's kid",
    async (r) => {
      const header = base64url.encode(JSON.stringify({ alg: "none", kid: "test-key-1", typ: "JWT" }));
      return `${header}.${base64url.encode(JSON.stringify(r.claims))}.`;
    },
  ],
  [
    "HS256 keyed with the published public JWK (algorithm confusion)",
    async (r) => {
      const jwks = (await call("GET", "/.well-known/jwks.json", undefined, { token: null })).json;
      const secret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
      return new SignJWT(r.claims).setProtectedHeader({ alg: "HS256", kid: "test-key-1", typ: "JWT" }).sign(secret);
    },
  ],
  [
    "HS256 keyed with the public point x||y",
    async (r) => {
      const pub = testKey();
      const secret = new Uint8Array([...base64url.decode(pub.x as string), ...base64url.decode(pub.y as string)]);
      return new SignJWT(r.claims).setProtectedHeader({ alg: "HS256", kid: "test-key-1", typ: "JWT" }).sign(secret);
    },
  ],
  [
    "ES384 (an alg other than ES256)",
    async (r) => {
      const k = await newSigningJwk("test-key-1", "ES384");
      return new SignJWT(r.claims)
        .setProtectedHeader({ alg: "ES384", kid: "test-key-1", typ: "JWT" })
        .sign(await importJWK(k));
    },
  ],
  [
    "expired past the settle grace (exp 301 s ago, gate key)",
    async (r) => signWithGateKey({ ...r.claims, iat: nowS() - 1000, exp: nowS() - 301 }),
  ],
  ["wrong issuer (gate key)", async (r) => signWithGateKey({ ...r.claims, iss: "evil-gate" })],
  [
    "no issuer (gate key)",
    async (r) => {
      const { iss: _iss, ...rest } = r.claims;
      return signWithGateKey(rest);
    },
  ],
  [
    "not a receipt: no amt (gate key)",
    async (r) => {
      const { amt: _amt, ...rest } = r.claims;
      return signWithGateKey(rest);
    },
  ],
  [
    "not a receipt: no jti (gate key)",
    async (r) => {
      const { jti: _jti, ...rest } = r.claims;
      return signWithGateKey(rest);
    },
  ],
  ["not a receipt: amt as a string (gate key)", async (r) => signWithGateKey({ ...r.claims, amt: "100" })],
  ["not a receipt: typ at+jwt (gate key)", async (r) => signWithGateKey(r.claims, { typ: "at+jwt" })],
  [
    "no kid in the header (gate key, otherwise a valid receipt)",
    async (r) => {
      const token = await new SignJWT(r.claims)
        .setProtectedHeader({ alg: "ES256", typ: "JWT" })
        .sign(await importJWK(testKey(), "ES256"));
      // The control: the signature and claims are good; only the kid is missing.
      const { d: _d, ...publicHalf } = testKey();
      const { protectedHeader, payload } = await jwtVerify(token, await importJWK(publicHalf, "ES256"), {
        issuer: "credit-gate",
      });
      expect(protectedHeader.kid).toBeUndefined();
      expect(payload).toMatchObject({ jti: r.claims.jti, sub: r.accountId, amt: r.claims.amt });
      return token;
    },
  ],
  ["not a JWT at all", async () => "not-a-jwt"],
];

describe("receipts security: forged and invalid tokens are 401 invalid_receipt and change nothing", () => {
  it.each(FORGERIES)("%s", async (_name, forge) => {
    const r = await realReceipt();
    const token = await forge(r);
    const before = { entries: await ledgerEntries(r.accountId), balance: await balance(r.accountId) };
    for (const used of [0, 50, 100]) {
      const res = await call("POST", "/v1/receipts/settle", { receipt: token, used });
      expect(res.status).toBe(401);
      expect(res.json.code).toBe("invalid_receipt");
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }
    expect(await ledgerEntries(r.accountId)).toEqual(before.entries);
    expect(await balance(r.accountId)).toEqual({ ...before.balance, as_of: expect.any(String) });
    // The real receipt is untouched and still settles.
    const settle = await call("POST", "/v1/receipts/settle", { receipt: r.token, used: 10 });
    expect(settle.json).toMatchObject({ used: 10, released: 90 });
  });

  it("within the settle grace (exp 200 s ago) a gate-signed receipt still settles — the control for the expiry case", async () => {
    const r = await realReceipt();
    const token = await signWithGateKey({ ...r.claims, iat: nowS() - 260, exp: nowS() - 200 });
    const res = await call("POST", "/v1/receipts/settle", { receipt: token, used: 7 });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ used: 7, released: 93 });
  });

  it("used above amt is 400 invalid_amount and moves nothing", async () => {
    const r = await realReceipt(100);
    const before = await ledgerEntries(r.accountId);
    for (const used of [101, 1e15]) {
      const res = await call("POST", "/v1/receipts/settle", { receipt: r.token, used });
      expect(res.status).toBe(400);
      expect(res.json.code).toBe("invalid_amount");
    }
    for (const used of [-1, 1.5, "3", null]) {
      const res = await call("POST", "/v1/receipts/settle", { receipt: r.token, used });
      expect(res.status).toBe(400);
      expect(res.json.code).toBe("invalid_amount");
    }
    expect(await ledgerEntries(r.accountId)).toEqual(before);
  });

  it("a gate-signed token whose jti is a plain hold is not a receipt (404 receipt_not_found), hold untouched", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h-1", amount: 40 });
    const token = await signWithGateKey({
      iss: "credit-gate",
      sub: a,
      aud: "usage",
      jti: "h-1",
      iat: nowS(),
      exp: nowS() + 60,
      amt: 40,
      unit: "credits",
    });
    const res = await call("POST", "/v1/receipts/settle", { receipt: token, used: 40 });
    expect(res.status).toBe(404);
    expect(res.json.code).toBe("receipt_not_found");
    expect((await call("GET", `/v1/accounts/${a}/holds/h-1`)).json.status).toBe("open");
  });

  it("settling needs a gateway or admin key; the JWKS needs none", async () => {
    const r = await realReceipt();
    const none = await call("POST", "/v1/receipts/settle", { receipt: r.token, used: 1 }, { token: null });
    expect(none.status).toBe(401);
    expect(none.json.code).toBe("unauthorized");
    const viewer = await call("POST", "/v1/api-keys", { name: "v", role: "viewer" });
    const asViewer = await call(
      "POST",
      "/v1/receipts/settle",
      { receipt: r.token, used: 1 },
      { token: viewer.json.key },
    );
    expect(asViewer.status).toBe(403);
    const issue = await call(
      "POST",
      `/v1/accounts/${r.accountId}/receipts`,
      { receipt_id: "x", amount: 1 },
      {
        token: viewer.json.key,
      },
    );
    expect(issue.status).toBe(403);
    const gw = await call("POST", "/v1/api-keys", { name: "g", role: "gateway" });
    const asGateway = await call("POST", "/v1/receipts/settle", { receipt: r.token, used: 1 }, { token: gw.json.key });
    expect(asGateway.status).toBe(200);
  });

  it("refuses bad receipt requests: ttl out of 1..3600, bad amount, unknown account, unknown field", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const post = (body: Record<string, unknown>, account = a) =>
      call("POST", `/v1/accounts/${account}/receipts`, { receipt_id: uid("r"), amount: 1, ...body });
    expect((await post({ ttl_seconds: 0 })).json.code).toBe("invalid_request");
    expect((await post({ ttl_seconds: 3601 })).json.code).toBe("invalid_request");
    expect((await post({ amount: 0 })).json.code).toBe("invalid_amount");
    expect((await post({ amount: 2.5 })).json.code).toBe("invalid_amount");
    expect((await post({ audience: "" })).json.code).toBe("invalid_request");
    expect((await post({ extra: 1 })).json.code).toBe("invalid_request");
    expect((await post({}, uid("nobody"))).json.code).toBe("account_not_found");
    const noId = await call("POST", `/v1/accounts/${a}/receipts`, { amount: 1 });
    expect(noId.json.code).toBe("invalid_request");
    // A receipt shares the hold id space.
    await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "shared", amount: 1 });
    expect((await post({ receipt_id: "shared" })).json.code).toBe("idempotency_conflict");
    expect(await balance(a)).toMatchObject({ available: 99, held: 1 });
  });
});

describe("key rotation", () => {
  const fetchWith = (keysJson: string, method: string, path: string, body?: unknown) =>
    buildApp().fetch(
      new Request(`http://gate.test${path}`, {
        method,
        headers: { authorization: "Bearer test-admin-token", "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
      { ...env, RECEIPT_SIGNING_KEYS: keysJson },
      createExecutionContext(),
    );

  it("a receipt signed before rotation still verifies and settles after it; the retired key stays published", async () => {
    const r = await realReceipt(100);
    const newKey = await newSigningJwk("test-key-2");
    const rotated = JSON.stringify({ keys: [newKey, testKey()] });

    const jwks = (await (await fetchWith(rotated, "GET", "/.well-known/jwks.json")).json()) as { keys: JWK[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(["test-key-2", "test-key-1"]);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);

    // New receipts are signed by the new first key.
    const fresh = await fetchWith(rotated, "POST", `/v1/accounts/${r.accountId}/receipts`, {
      receipt_id: uid("r"),
      amount: 50,
    });
    const freshBody = (await fresh.json()) as { receipt: string };
    expect(fresh.status).toBe(201);
    expect(JSON.parse(new TextDecoder().decode(base64url.decode(freshBody.receipt.split(".")[0] as string))).kid).toBe(
      "test-key-2",
    );

    // The pre-rotation receipt (kid test-key-1) settles against the rotated set.
    const old = await fetchWith(rotated, "POST", "/v1/receipts/settle", { receipt: r.token, used: 60 });
    expect(old.status).toBe(200);
    expect(await old.json()).toMatchObject({ used: 60, released: 40 });
    const settledNew = await fetchWith(rotated, "POST", "/v1/receipts/settle", {
      receipt: freshBody.receipt,
      used: 50,
    });
    expect(settledNew.status).toBe(200);

    // The retired key may be kept public-only: it verifies but can never sign.
    const { d: _d, ...publicOld } = testKey();
    const keys = await parseReceiptKeys(JSON.stringify({ keys: [newKey, publicOld] }));
    expect(keys.signer.kid).toBe("test-key-2");
    const v = await verifyReceipt(keys, "credit-gate", r.token);
    expect(v).toMatchObject({ receiptId: r.claims.jti, accountId: r.accountId, amount: 100, kid: "test-key-1" });

    // Once the operator removes the old key, its receipts no longer verify.
    const removed = JSON.stringify({ keys: [newKey] });
    const late = await fetchWith(removed, "POST", "/v1/receipts/settle", { receipt: r.token, used: 60 });
    expect(late.status).toBe(401);
    expect(((await late.json()) as { code: string }).code).toBe("invalid_receipt");
    // And the unrotated gate does not know the new key.
    const unknown = await call("POST", "/v1/receipts/settle", { receipt: freshBody.receipt, used: 50 });
    expect(unknown.json.code).toBe("invalid_receipt");
  });

  it("refuses malformed key sets", async () => {
    const good = await newSigningJwk("k1");
    const { d: _d, ...pub } = good;
    const bad = [
      "not json",
      JSON.stringify({ keys: [] }),
      JSON.stringify({ keys: [good, { ...good }] }),
      JSON.stringify({ keys: [pub] }),
      JSON.stringify({ keys: [{ ...good, crv: "P-384" }] }),
      JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0", kid: "h" }] }),
    ];
    for (const raw of bad) await expect(parseReceiptKeys(raw)).rejects.toThrow(/RECEIPT_SIGNING_KEYS/);
  });
});
