/**
 * Receipt signing keys. `RECEIPT_SIGNING_KEYS` is a JWK set of EC P-256 keys;
 * the FIRST key signs, every key in the set verifies and is published at
 * /.well-known/jwks.json.
 *
 * Rotation: put a new key first and keep the previous one in the set. A
 * retired key must stay until every receipt it signed is past `exp` + the
 * 300 s settle grace (so: the longest receipt TTL, 3600 s, plus 300 s), after
 * which the operator removes it. A retired key may be kept public-only (no
 * `d`): it then verifies but can never sign. See docs/receipts.md.
 */
import { createLocalJWKSet, importJWK, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import { z } from "zod";
import { ID_PATTERN, ID_RULE } from "../ledger/ids";

const Base64Url = z.string().regex(/^[A-Za-z0-9_-]+$/, "base64url");

const SigningJwk = z.object({
  kty: z.literal("EC"),
  crv: z.literal("P-256"),
  x: Base64Url,
  y: Base64Url,
  d: Base64Url.optional(),
  kid: z.string().regex(ID_PATTERN, `a kid of ${ID_RULE}`),
  alg: z.literal("ES256").optional(),
  use: z.literal("sig").optional(),
});

const SigningKeySet = z
  .object({ keys: z.array(SigningJwk).min(1).max(16) })
  .refine((set) => new Set(set.keys.map((k) => k.kid)).size === set.keys.length, "kids must be unique")
  .refine((set) => set.keys[0]?.d !== undefined, "the first key signs, so it needs its private part `d`");

/** A public key as served in the JWKS. */
export interface PublicJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  kid: string;
  alg: "ES256";
  use: "sig";
}

export interface ReceiptKeys {
  /** The key that signs new receipts (the first of the set). */
  signer: { kid: string; key: CryptoKey };
  /** Public parts of every key, retired ones included. */
  jwks: { keys: PublicJwk[] };
  /** Resolves a token's `kid` against `jwks` (for jose's jwtVerify). */
  resolve: JWTVerifyGetKey;
}

/** Parses a JWK set string; throws with a message naming what is wrong. */
export async function parseReceiptKeys(raw: string): Promise<ReceiptKeys> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error('RECEIPT_SIGNING_KEYS is not JSON (expected a JWK set: {"keys": [...]})');
  }
  const parsed = SigningKeySet.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`RECEIPT_SIGNING_KEYS is invalid: ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`);
  }
  const keys = parsed.data.keys;
  const first = keys[0] as z.infer<typeof SigningJwk>;
  const key = await importJWK({ ...first, alg: "ES256" }, "ES256");
  if (!(key instanceof CryptoKey)) throw new Error("RECEIPT_SIGNING_KEYS: the signing key did not import");
  const jwks = {
    keys: keys.map(
      (k): PublicJwk => ({ kty: "EC", crv: "P-256", x: k.x, y: k.y, kid: k.kid, alg: "ES256", use: "sig" }),
    ),
  };
  return { signer: { kid: first.kid, key }, jwks, resolve: createLocalJWKSet(jwks as JSONWebKeySet) };
}

let cached: { raw: string; keys: Promise<ReceiptKeys> } | null = null;

/**
 * The keys for this isolate, parsed once per distinct secret value (a
 * rotated secret reaches a new isolate, or a test's second env, as a new value).
 */
export function receiptKeys(raw: string): Promise<ReceiptKeys> {
  if (cached?.raw === raw) return cached.keys;
  const keys = parseReceiptKeys(raw);
  const entry = { raw, keys };
  cached = entry;
  // A malformed secret is not cached: the next request reports it again.
  keys.catch(() => {
    if (cached === entry) cached = null;
  });
  return keys;
}
