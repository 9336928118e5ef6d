/**
 * The verifier's fast path (issue 11: full ES256 verifications per second on
 * one core). Where the runtime has node:crypto (Node 20.16+, Bun, Deno and
 * Workers with nodejs_compat, reached through `process.getBuiltinModule`, so
 * a browser bundle never imports it), a receipt of the one shape the gate
 * signs is checked synchronously: `crypto.verify` on a KeyObject built once
 * per key, instead of jose's async WebCrypto call (which on Node runs on the
 * libuv pool and costs about twice as much per token).
 *
 * It decides only what it is sure of and hands everything else to jose:
 * a header other than exactly {alg: "ES256", typ: "JWT", kid}, anything not
 * strict base64url, a signature not 64 bytes, a kid with more than one key or
 * a key restricted by `use`/`key_ops` all answer `null` ("ask jose"). The
 * claims are then checked as jose's jwtVerify checks them for the verifier's
 * options (same order, same messages); test/unit/verifier-fast.property.test.ts
 * compares both paths on random, tampered and malformed tokens.
 */
import type { PublicJwk } from "./types";

interface NodeCrypto {
  createPublicKey(key: { key: object; format: "jwk" }): unknown;
  verify(
    algorithm: string,
    data: Uint8Array,
    key: { key: unknown; dsaEncoding: "ieee-p1363" },
    signature: Uint8Array,
  ): boolean;
}

/** node:crypto when the runtime offers it without a static import; null elsewhere. */
export function nodeCrypto(): NodeCrypto | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    const mod = proc?.getBuiltinModule?.("node:crypto") as NodeCrypto | undefined;
    return mod && typeof mod.verify === "function" && typeof mod.createPublicKey === "function" ? mod : null;
  } catch {
    return null;
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const ascii = new TextEncoder();

/** Header parts remembered (the gate signs a handful of distinct headers: one per key). */
const HEADER_CACHE_MAX = 64;

function b64urlBytes(part: string): Uint8Array | null {
  if (!B64URL.test(part) || part.length % 4 === 1) return null;
  // Every runtime with node:crypto has Buffer; strict characters were checked above.
  return Buffer.from(part, "base64url");
}

function jsonObject(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** What the fast path decided: a verified payload, a refusal (jose's words), or null: jose decides. */
export type FastOutcome =
  | { ok: true; payload: Record<string, unknown> }
  | { ok: false; expired: boolean; message: string }
  | null;

export interface ClaimRules {
  issuer: string;
  audience: string | null;
  toleranceS: number;
  nowMs: number;
}

/** KeyObjects of the JWKS's signing keys by kid, built once per JWKS. */
export class FastKeys {
  private readonly byKid = new Map<string, unknown>();
  /** Header part → the kid it names when it is exactly {alg: "ES256", typ: "JWT", kid}; null otherwise. */
  private readonly headers = new Map<string, string | null>();

  constructor(
    private readonly crypto: NodeCrypto,
    keys: readonly PublicJwk[],
  ) {
    const seen = new Map<string, number>();
    for (const k of keys) seen.set(k.kid, (seen.get(k.kid) ?? 0) + 1);
    for (const k of keys) {
      const extra = k as PublicJwk & { use?: unknown; key_ops?: unknown };
      // Only signing keys (`use` absent or "sig", as the gate publishes them), one per kid, without
      // `key_ops`: anything else is jose's to judge.
      const signing = extra.use === undefined || extra.use === "sig";
      if (seen.get(k.kid) !== 1 || !signing || extra.key_ops !== undefined) continue;
      try {
        this.byKid.set(k.kid, crypto.createPublicKey({ key: k, format: "jwk" }));
      } catch {
        // A key node:crypto cannot read is left to jose.
      }
    }
  }

  /** The kid a token's header names when the header has the gate's exact shape; null otherwise. */
  kidOf(token: string): string | null {
    const h = token.slice(0, token.indexOf("."));
    const known = this.headers.get(h);
    if (known !== undefined) return known;
    const bytes = b64urlBytes(h);
    const header = bytes === null ? null : jsonObject(bytes);
    const exact =
      header !== null &&
      Object.keys(header).length === 3 &&
      header.alg === "ES256" &&
      header.typ === "JWT" &&
      typeof header.kid === "string";
    const kid = exact ? (header.kid as string) : null;
    if (this.headers.size >= HEADER_CACHE_MAX) this.headers.clear();
    this.headers.set(h, kid);
    return kid;
  }

  /** Checks `token` (already known to name `kid`) as jose would for these rules; null: ask jose. */
  verify(token: string, kid: string, rules: ClaimRules): FastOutcome {
    const key = this.byKid.get(kid);
    if (key === undefined || token.indexOf(".") <= 0 || this.kidOf(token) !== kid) return null;
    const parts = token.split(".");
    if (parts.length !== 3) return null;
    const [h, p, s] = parts as [string, string, string];
    const payloadBytes = b64urlBytes(p);
    const sig = b64urlBytes(s);
    if (payloadBytes === null || sig === null || sig.length !== 64) return null;
    const good = this.crypto.verify("sha256", ascii.encode(`${h}.${p}`), { key, dsaEncoding: "ieee-p1363" }, sig);
    if (!good) return { ok: false, expired: false, message: "signature verification failed" };
    return checkClaims(payloadBytes, rules);
  }
}

const failed = (message: string): FastOutcome => ({ ok: false, expired: false, message });

/** jose's validateClaimsSet for typ "JWT", requiredClaims [jti, sub, iat, exp], issuer, audience and a tolerance. */
function checkClaims(payloadBytes: Uint8Array, r: ClaimRules): FastOutcome {
  const claims = jsonObject(payloadBytes);
  if (claims === null) return failed("JWT Claims Set must be a top-level JSON object");
  // jose checks presence in this order: issuer, audience, then the required claims last to first.
  for (const claim of ["iss", ...(r.audience === null ? [] : ["aud"]), "exp", "iat", "sub", "jti"]) {
    if (!Object.hasOwn(claims, claim)) return failed(`missing required "${claim}" claim`);
  }
  if (claims.iss !== r.issuer) return failed('unexpected "iss" claim value');
  if (r.audience !== null) {
    const aud = claims.aud;
    const present = typeof aud === "string" ? aud === r.audience : Array.isArray(aud) && aud.includes(r.audience);
    if (!present) return failed('unexpected "aud" claim value');
  }
  const now = Math.floor(r.nowMs / 1000);
  if (typeof claims.iat !== "number") return failed('"iat" claim must be a number');
  if (claims.nbf !== undefined) {
    if (typeof claims.nbf !== "number") return failed('"nbf" claim must be a number');
    if (claims.nbf > now + r.toleranceS) return failed('"nbf" claim timestamp check failed');
  }
  if (typeof claims.exp !== "number") return failed('"exp" claim must be a number');
  if (claims.exp <= now - r.toleranceS)
    return { ok: false, expired: true, message: '"exp" claim timestamp check failed' };
  return { ok: true, payload: claims };
}
