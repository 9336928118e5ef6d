/**
 * The verifier's node:crypto fast path (src/sdk/verifier-fast.ts) against
 * jose's jwtVerify, which it must agree with exactly: for random receipts
 * (good, expired within and past the tolerance, not yet valid, wrong issuer
 * or audience, claims missing or of the wrong type) and random damage
 * (a flipped signature or payload character, another key, another header,
 * junk), two verifiers, one with the fast path and one with jose alone, give
 * the same receipt or the same refusal with the same words.
 */
import fc from "fast-check";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { ReceiptError, ReceiptVerifier } from "../../src/sdk";
import { FastKeys } from "../../src/sdk/verifier-fast";

const NOW_S = 1_790_000_000;
const TOLERANCE_S = 5;

interface Key {
  kid: string;
  pub: JWK;
  priv: CryptoKey;
}

async function makeKey(kid: string): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  // As the gate publishes its keys (scripts/lib/devvars.mjs, the JWKS): with `use: "sig"`.
  return { kid, pub: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" }, priv: privateKey };
}

const b64url = (s: string | Uint8Array) =>
  Buffer.from(typeof s === "string" ? new TextEncoder().encode(s) : s).toString("base64url");

/** Signs any header and payload text as an ES256 compact JWS (jose's builders would refuse the odd ones). */
async function sign(key: Key, header: object, payload: string): Promise<string> {
  const input = `${b64url(JSON.stringify(header))}.${b64url(payload)}`;
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.priv, new TextEncoder().encode(input));
  return `${input}.${b64url(new Uint8Array(sig))}`;
}

type Outcome = { ok: true; receipt: unknown } | { ok: false; reason: string; message: string };

async function outcome(v: ReceiptVerifier, token: string): Promise<Outcome> {
  try {
    return { ok: true, receipt: await v.verify(token) };
  } catch (e) {
    if (!(e instanceof ReceiptError)) throw e;
    return { ok: false, reason: e.reason, message: e.message };
  }
}

const claimValue = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.string({ maxLength: 6 }),
  fc.integer({ min: -100, max: 100 }).map((d) => NOW_S + d),
  fc.constant([]),
);

describe("the node:crypto fast path agrees with jose", () => {
  let k1: Key;
  let k2: Key;
  beforeAll(async () => {
    k1 = await makeKey("k1");
    k2 = await makeKey("k2");
  });

  const verifiers = (fast: boolean, audience: string | null) =>
    new ReceiptVerifier({
      jwks: { keys: [k1.pub, k2.pub] as never },
      audience,
      clockToleranceSeconds: TOLERANCE_S,
      maxCachedTokens: 0,
      nodeCrypto: fast,
      now: () => NOW_S * 1000,
    });

  it("on random receipts, damage and headers: the same receipt or the same refusal", async () => {
    const decided = vi.spyOn(FastKeys.prototype, "verify");
    let fastDecisions = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            expOffset: fc.integer({ min: -2 * TOLERANCE_S, max: 120 }),
            nbfOffset: fc.option(fc.integer({ min: -10, max: 2 * TOLERANCE_S }), { nil: undefined }),
            iss: fc.constantFrom("credit-gate", "credit-gate", "other"),
            aud: fc.constantFrom<unknown>("usage", "usage", ["x", "usage"], "other", ["x"], undefined, 7),
            audience: fc.constantFrom<string | null>("usage", null),
            drop: fc.subarray(["jti", "sub", "iat", "exp", "iss", "amt"]),
            odd: fc.dictionary(fc.constantFrom("iat", "exp", "nbf", "sub", "amt"), claimValue, { maxKeys: 1 }),
            header: fc.constantFrom<object>(
              { alg: "ES256", typ: "JWT" },
              { alg: "ES256", typ: "JWT" },
              { alg: "ES256", typ: "JWT" },
              { alg: "ES256", typ: "JWT" },
              { alg: "ES256", typ: "JWT" },
              { alg: "ES256", typ: "JWT" },
              { alg: "ES256", typ: "jwt" },
              { alg: "ES256", typ: "statement+jwt" },
              { alg: "ES256", typ: "application/JWT" },
              { alg: "ES256" },
              { alg: "ES256", typ: "JWT", crit: ["exp"] },
              { alg: "ES256", typ: "JWT", b64: false },
              { alg: "ES256", typ: "JWT", extra: 1 },
            ),
            payloadShape: fc.constantFrom("object", "object", "object", "array", "text"),
            damage: fc.constantFrom("none", "none", "none", "signature", "payload", "key", "truncate", "junk-sig"),
            at: fc.nat(),
          }),
          async (c) => {
            const claims: Record<string, unknown> = {
              iss: c.iss,
              sub: "acct-1",
              jti: "r-1",
              amt: 10,
              unit: "credits",
              iat: NOW_S,
              exp: NOW_S + c.expOffset,
              ...(c.aud === undefined ? {} : { aud: c.aud }),
              ...(c.nbfOffset === undefined ? {} : { nbf: NOW_S + c.nbfOffset }),
            };
            for (const k of c.drop) delete claims[k];
            for (const [k, v] of Object.entries(c.odd)) {
              if (v === undefined) delete claims[k];
              else claims[k] = v;
            }
            const payload =
              c.payloadShape === "object" ? JSON.stringify(claims) : c.payloadShape === "array" ? "[1,2]" : '"text"';
            const signer = c.damage === "key" ? k2 : k1;
            let token = await sign(signer, { ...c.header, kid: "k1" }, payload);
            const [h, p, s] = token.split(".") as [string, string, string];
            const flip = (part: string) => {
              const i = c.at % part.length;
              return part.slice(0, i) + (part[i] === "A" ? "B" : "A") + part.slice(i + 1);
            };
            if (c.damage === "signature") token = `${h}.${p}.${flip(s)}`;
            if (c.damage === "payload") token = `${h}.${flip(p)}.${s}`;
            if (c.damage === "truncate") token = `${h}.${p}.${s.slice(0, -4)}`;
            if (c.damage === "junk-sig") token = `${h}.${p}.${s.slice(0, 10)}*${s.slice(11)}`;
            const before = decided.mock.results.filter((r) => r.value !== null).length;
            const fast = await outcome(verifiers(true, c.audience), token);
            fastDecisions += decided.mock.results.filter((r) => r.value !== null).length - before;
            const jose = await outcome(verifiers(false, c.audience), token);
            expect(fast).toEqual(jose);
          },
        ),
        { numRuns: 400, seed: 20261201 },
      );
    } finally {
      decided.mockRestore();
    }
    // The fast path decided a good share itself (else this compares jose with jose).
    expect(fastDecisions).toBeGreaterThan(120);
  });

  it("at the edges of the tolerance: exp and nbf decided to the second, as jose decides", async () => {
    const base = { iss: "credit-gate", aud: "usage", sub: "a", jti: "r", amt: 5, unit: "credits", iat: NOW_S };
    // Worked out by hand: exp must be after now − 5 s; nbf may be up to now + 5 s.
    const cases: [Record<string, number>, boolean][] = [
      [{ exp: NOW_S - TOLERANCE_S }, false],
      [{ exp: NOW_S - TOLERANCE_S + 1 }, true],
      [{ exp: NOW_S + 60, nbf: NOW_S + TOLERANCE_S }, true],
      [{ exp: NOW_S + 60, nbf: NOW_S + TOLERANCE_S + 1 }, false],
    ];
    for (const [times, accepted] of cases) {
      const token = await sign(k1, { alg: "ES256", typ: "JWT", kid: "k1" }, JSON.stringify({ ...base, ...times }));
      const fast = await outcome(verifiers(true, "usage"), token);
      expect(fast.ok, JSON.stringify(times)).toBe(accepted);
      expect(fast).toEqual(await outcome(verifiers(false, "usage"), token));
    }
  });

  it("a good receipt is verified by the fast path, not handed to jose", async () => {
    const token = await sign(
      k1,
      { alg: "ES256", typ: "JWT", kid: "k1" },
      JSON.stringify({
        iss: "credit-gate",
        aud: "usage",
        sub: "a",
        jti: "r",
        amt: 5,
        unit: "credits",
        iat: NOW_S,
        exp: NOW_S + 60,
      }),
    );
    const spy = vi.spyOn(FastKeys.prototype, "verify");
    try {
      const receipt = await verifiers(true, "usage").verify(token);
      expect(receipt).toMatchObject({ accountId: "a", amount: 5, kid: "k1" });
      expect(spy.mock.results.map((r) => r.value)).toEqual([expect.objectContaining({ ok: true })]);
    } finally {
      spy.mockRestore();
    }
  });
});
