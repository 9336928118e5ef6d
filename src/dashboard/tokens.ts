/**
 * The dashboard's three tokens, compact JWS ES256 signed with the receipt
 * key set (src/receipts/keys.ts), each with its own JWS `typ` so that none
 * passes for a receipt (`JWT`), a statement (`statement+jwt`) or another:
 *
 * - magic link `dashboard-link+jwt` {iss, sub: account_id, jti, iat, exp}:
 *   what POST /v1/accounts/{id}/dashboard-links hands out, LINK_TTL_* bounds;
 * - widget token `dashboard-widget+jwt` {iss, sub: account_id, jti, iat, exp}:
 *   minted with each link (same expiry), read by the widget route alone; it is
 *   refused by /app/login and as a /v1 bearer;
 * - customer session `dashboard-session+jwt` {iss, sub: account_id, jti, csrf, iat, exp}:
 *   what /app/login exchanges a link for, CUSTOMER_SESSION_SECONDS long;
 * - operator session `operator-session+jwt` {iss, sub: api_key_id, role, jti, csrf, iat, exp}
 *   (sub "admin-token" for the bootstrap token, with `ath`), OPERATOR_SESSION_SECONDS long.
 *
 * `sessionCaller` turns a session token into the Caller the auth middleware
 * sets: a customer session is a viewer scoped to its account; an operator
 * session is the key it names, re-read from D1 on every request so a revoked
 * key ends its sessions.
 */
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from "jose";
import { z } from "zod";
import type { Caller } from "../api/context";
import { findApiKeyById } from "../db/api-keys";
import { ID_PATTERN } from "../ledger/ids";
import { receiptKeys } from "../receipts/keys";
import { ROLES } from "../roles";

export const LINK_TYP = "dashboard-link+jwt";
/** The widget's own token: opens /app/accounts/{id}/widget only (balances), never a session. */
export const WIDGET_TYP = "dashboard-widget+jwt";
export const CUSTOMER_SESSION_TYP = "dashboard-session+jwt";
export const OPERATOR_SESSION_TYP = "operator-session+jwt";

/** A magic link lives at least this long (seconds)… */
export const LINK_TTL_MIN_SECONDS = 60;
/** …at most this long (one day)… */
export const LINK_TTL_MAX_SECONDS = 86_400;
/** …and this long when the request names no ttl_seconds (15 minutes). */
export const LINK_TTL_DEFAULT_SECONDS = 900;
/**
 * A customer session lasts this long from the moment its link is exchanged
 * (8 h), so it ends at most link's remaining life + 8 h after the link was made.
 */
export const CUSTOMER_SESSION_SECONDS = 28_800;
/** An operator session lasts this long from sign-in (8 h); the key is re-checked on every request. */
export const OPERATOR_SESSION_SECONDS = 28_800;
/** The `sub` of an operator session signed in with the bootstrap ADMIN_TOKEN. */
export const ADMIN_TOKEN_SUB = "admin-token";
/** A bearer longer than this is not one of our tokens (ours are well under 1 KiB). */
export const MAX_TOKEN_CHARS = 4096;

const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Whether a bearer has the shape of a compact JWS (API keys start with `cg_` and have no dots). */
export const looksLikeJws = (token: string): boolean => token.length <= MAX_TOKEN_CHARS && JWS_SHAPE.test(token);

export interface TokenEnv {
  RECEIPT_SIGNING_KEYS: string;
  RECEIPT_ISSUER: string;
  ADMIN_TOKEN: string;
  DB: D1Database;
}

const issuerOf = (env: TokenEnv): string => env.RECEIPT_ISSUER || "credit-gate";
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

function randomId(bytes = 16): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

async function sign(
  env: TokenEnv,
  typ: string,
  sub: string,
  claims: Record<string, string>,
  iat: number,
  exp: number,
): Promise<{ token: string; jti: string }> {
  const keys = await receiptKeys(env.RECEIPT_SIGNING_KEYS);
  const jti = randomId();
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: keys.signer.kid, typ })
    .setIssuer(issuerOf(env))
    .setSubject(sub)
    .setJti(jti)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(keys.signer.key);
  return { token, jti };
}

/** Why a token was refused, as a sentence a person can act on. */
export class TokenRefused extends Error {
  constructor(readonly reason: "expired" | "invalid") {
    super(
      reason === "expired"
        ? "This link has expired. Ask your account contact for a new one."
        : "This link is not valid. Check that you copied all of it, or ask for a new one.",
    );
    this.name = "TokenRefused";
  }
}

async function verify(env: TokenEnv, token: string, typ: string, nowMs?: number): Promise<Record<string, unknown>> {
  if (!looksLikeJws(token)) throw new TokenRefused("invalid");
  const keys = await receiptKeys(env.RECEIPT_SIGNING_KEYS);
  try {
    const { payload } = await jwtVerify(token, keys.resolve, {
      issuer: issuerOf(env),
      algorithms: ["ES256"],
      typ,
      requiredClaims: ["sub", "jti", "iat", "exp"],
      currentDate: nowMs === undefined ? undefined : new Date(nowMs),
    });
    return payload as Record<string, unknown>;
  } catch (e) {
    throw new TokenRefused(e instanceof errors.JWTExpired ? "expired" : "invalid");
  }
}

const Claims = z.object({
  sub: z.string().regex(ID_PATTERN),
  jti: z.string().min(1).max(64),
  iat: z.number().int(),
  exp: z.number().int(),
});
const SessionClaims = Claims.extend({ csrf: z.string().min(16).max(64) });
const OperatorClaims = SessionClaims.extend({ role: z.enum(ROLES), ath: z.string().max(64).optional() });

function parsed<T extends z.ZodType>(schema: T, payload: Record<string, unknown>): z.infer<T> {
  const out = schema.safeParse(payload);
  if (!out.success) throw new TokenRefused("invalid");
  return out.data;
}

// ── magic links ──

export interface Link {
  accountId: string;
  jti: string;
  expiresAtS: number;
}

/** Signs a magic link for one account; the caller has checked ttlSeconds against the LINK_TTL_* bounds. */
export async function mintLink(
  env: TokenEnv,
  accountId: string,
  ttlSeconds: number,
): Promise<{ token: string; jti: string; expiresAtS: number }> {
  const iat = nowSeconds();
  const expiresAtS = iat + ttlSeconds;
  const { token, jti } = await sign(env, LINK_TYP, accountId, {}, iat, expiresAtS);
  return { token, jti, expiresAtS };
}

/** The link a token is, or TokenRefused. */
export async function verifyLink(env: TokenEnv, token: string, nowMs?: number): Promise<Link> {
  const c = parsed(Claims, await verify(env, token, LINK_TYP, nowMs));
  return { accountId: c.sub, jti: c.jti, expiresAtS: c.exp };
}

// ── widget tokens ──

/** Signs the widget token that goes with a link (same account, same expiry). */
export async function mintWidgetToken(
  env: TokenEnv,
  accountId: string,
  expiresAtS: number,
): Promise<{ token: string; jti: string }> {
  return sign(env, WIDGET_TYP, accountId, {}, nowSeconds(), expiresAtS);
}

/** The widget token a string is (account, id, expiry), or TokenRefused. A link or a session is not one. */
export async function verifyWidgetToken(env: TokenEnv, token: string): Promise<Link> {
  const c = parsed(Claims, await verify(env, token, WIDGET_TYP));
  return { accountId: c.sub, jti: c.jti, expiresAtS: c.exp };
}

// ── customer sessions ──

export interface CustomerSession {
  accountId: string;
  jti: string;
  /** The per-session token every /app form must send back (src/dashboard/csrf.ts). */
  csrf: string;
  expiresAtS: number;
}

/** A customer session for the link's account, CUSTOMER_SESSION_SECONDS from now. */
export async function mintCustomerSession(
  env: TokenEnv,
  link: Link,
): Promise<{ token: string; session: CustomerSession }> {
  const iat = nowSeconds();
  const exp = iat + CUSTOMER_SESSION_SECONDS;
  const csrf = randomId();
  const { token, jti } = await sign(env, CUSTOMER_SESSION_TYP, link.accountId, { csrf }, iat, exp);
  return { token, session: { accountId: link.accountId, jti, csrf, expiresAtS: exp } };
}

export async function verifyCustomerSession(env: TokenEnv, token: string): Promise<CustomerSession> {
  const c = parsed(SessionClaims, await verify(env, token, CUSTOMER_SESSION_TYP));
  return { accountId: c.sub, jti: c.jti, csrf: c.csrf, expiresAtS: c.exp };
}

/** The Caller a customer session acts as: a viewer scoped to its account's tree (src/api/scope.ts). */
export function customerCaller(session: CustomerSession): Caller {
  return {
    keyId: `dashboard:${session.jti}`,
    role: "viewer",
    maxGrantAmount: 0,
    accountScope: session.accountId,
    actor: `dashboard:${session.jti}:viewer`,
  };
}

// ── operator sessions ──

export interface OperatorSession {
  /** The API key's id, or ADMIN_TOKEN_SUB. */
  keyId: string;
  role: (typeof ROLES)[number];
  jti: string;
  csrf: string;
  expiresAtS: number;
  /** For the bootstrap token only: binds the session to the ADMIN_TOKEN it signed in with. */
  ath?: string;
}

/** HKDF `info` of the key `ath` is computed under. */
const ATH_INFO = "credit-gate operator-session ath v1";

let athKeyCache: { raw: string; key: Promise<CryptoKey> } | null = null;

/**
 * The HMAC key for `ath`: HKDF-SHA256 of the signing key's private part `d`
 * (the first key of RECEIPT_SIGNING_KEYS, a secret the gate alone holds).
 * Parsed once per distinct secret value.
 */
async function athKey(env: TokenEnv): Promise<CryptoKey> {
  const raw = env.RECEIPT_SIGNING_KEYS;
  if (athKeyCache?.raw === raw) return athKeyCache.key;
  const key = (async () => {
    await receiptKeys(raw); // validates the set (throws naming what is wrong)
    const d = (JSON.parse(raw) as { keys: { d: string }[] }).keys[0]?.d ?? "";
    const bytes = Uint8Array.from(atob(d.replace(/-/g, "+").replace(/_/g, "/")), (ch) => ch.charCodeAt(0));
    const ikm = await crypto.subtle.importKey("raw", bytes, "HKDF", false, ["deriveKey"]);
    return crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode(ATH_INFO) },
      ikm,
      { name: "HMAC", hash: "SHA-256", length: 256 },
      false,
      ["sign"],
    );
  })();
  athKeyCache = { raw, key };
  key.catch(() => {
    if (athKeyCache?.raw === raw) athKeyCache = null;
  });
  return key;
}

/**
 * `ath`: HMAC-SHA256 of the ADMIN_TOKEN value under a key derived from the
 * signing key's private part (64 hex). An admin-token session stops working
 * once ADMIN_TOKEN is rotated or unset (and when the signing key is rotated);
 * the cookie's readable payload gives no offline test of a guessed ADMIN_TOKEN
 * without the signing key.
 */
async function adminTokenBinding(env: TokenEnv, adminToken: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await athKey(env), new TextEncoder().encode(adminToken));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * An operator session for an API key (keyId, role as the key has them) or,
 * with keyId ADMIN_TOKEN_SUB, for the bootstrap token. The caller has
 * checked the key or the token; this only signs.
 */
export async function mintOperatorSession(
  env: TokenEnv,
  keyId: string,
  role: OperatorSession["role"],
): Promise<{ token: string; session: OperatorSession }> {
  const iat = nowSeconds();
  const exp = iat + OPERATOR_SESSION_SECONDS;
  const csrf = randomId();
  const claims: Record<string, string> = { role, csrf };
  if (keyId === ADMIN_TOKEN_SUB) claims.ath = await adminTokenBinding(env, env.ADMIN_TOKEN);
  const { token, jti } = await sign(env, OPERATOR_SESSION_TYP, keyId, claims, iat, exp);
  return { token, session: { keyId, role, jti, csrf, expiresAtS: exp, ...(claims.ath ? { ath: claims.ath } : {}) } };
}

export async function verifyOperatorSession(env: TokenEnv, token: string): Promise<OperatorSession> {
  const c = parsed(OperatorClaims, await verify(env, token, OPERATOR_SESSION_TYP));
  return {
    keyId: c.sub,
    role: c.role,
    jti: c.jti,
    csrf: c.csrf,
    expiresAtS: c.exp,
    ...(c.ath ? { ath: c.ath } : {}),
  };
}

/**
 * The Caller an operator session acts as, exactly the one its key (or the
 * ADMIN_TOKEN) gets, or null when the key is gone, revoked or changed role,
 * or the ADMIN_TOKEN is unset or rotated. Throws KeyStoreUnavailable when D1
 * cannot be asked.
 */
export async function operatorCaller(env: TokenEnv, session: OperatorSession): Promise<Caller | null> {
  if (session.keyId === ADMIN_TOKEN_SUB) {
    if (!env.ADMIN_TOKEN || session.role !== "admin") return null;
    if (session.ath === undefined || session.ath !== (await adminTokenBinding(env, env.ADMIN_TOKEN))) return null;
    return {
      keyId: "admin-token",
      role: "admin",
      maxGrantAmount: null,
      accountScope: null,
      actor: "admin-token:admin",
    };
  }
  const key = await findApiKeyById(env.DB, session.keyId);
  if (!key || key.role !== session.role) return null;
  return {
    keyId: key.id,
    role: key.role,
    maxGrantAmount: key.maxGrantAmount,
    accountScope: key.accountScope,
    actor: `${key.id}:${key.role}`,
  };
}

/**
 * The Caller a bearer session token stands for (customer or operator), or
 * null for anything else: a link, a receipt, a statement signature, an
 * expired or tampered token. Used by the auth middleware (src/api/middleware.ts).
 */
export async function sessionCaller(env: TokenEnv, token: string): Promise<Caller | null> {
  if (!looksLikeJws(token)) return null;
  // One verification per bearer: the (unverified) header's typ picks the kind,
  // and verify() checks that typ again under the signature.
  let typ: unknown;
  try {
    typ = decodeProtectedHeader(token).typ;
  } catch {
    return null;
  }
  try {
    if (typ === CUSTOMER_SESSION_TYP) return customerCaller(await verifyCustomerSession(env, token));
    if (typ === OPERATOR_SESSION_TYP) return await operatorCaller(env, await verifyOperatorSession(env, token));
  } catch (e) {
    if (e instanceof TokenRefused) return null;
    throw e;
  }
  return null;
}
