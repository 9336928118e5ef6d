/**
 * What the browser suites share besides the browser: calls to the private gate
 * (api/gate/uid from the e2e harness: the same global-setup contract), magic
 * links, a forged-token helper that signs with this run's private key, and an
 * independent statement verifier (jose + the `canonicalize` package + SHA-256;
 * nothing from src/).
 */
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  importJWK,
  type JSONWebKeySet,
  jwtVerify,
  SignJWT,
} from "jose";
import { expect } from "vitest";
import { api, gate, uid } from "../e2e/harness";

export { api, gate, uid };

/** An absolute URL on the gate for a path (or a URL the gate served, absolute or not). */
export const gateHref = (pathOrUrl: string): string => new URL(pathOrUrl, `${gate().url}/`).toString();

/** Raw bytes of one call (for CSV exports compared byte for byte). */
export async function apiBytes(path: string, token: string = gate().adminToken): Promise<Buffer> {
  const res = await fetch(gateHref(path), { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, `${path} answered ${res.status}`).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/**
 * Mints a magic link for `accountId` as the admin; returns the absolute URL,
 * its token, and the widget URL minted with it.
 */
export async function mintLink(
  accountId: string,
  ttlSeconds?: number,
): Promise<{ url: string; token: string; widgetUrl: string; expiresAt: string }> {
  const body = ttlSeconds === undefined ? {} : { ttl_seconds: ttlSeconds };
  const res = await api("POST", `/v1/accounts/${encodeURIComponent(accountId)}/dashboard-links`, body);
  expect(res.status, res.text).toBe(201);
  const url = gateHref(res.json.url);
  const token = new URL(url).searchParams.get("token");
  expect(token, `the link ${url} carries no token`).toBeTruthy();
  expect(typeof res.json.widget_url, res.text).toBe("string");
  return { url, token: token as string, widgetUrl: gateHref(res.json.widget_url), expiresAt: res.json.expires_at };
}

/** The login URL for a token, the way the gate builds its links. */
export const loginUrl = (linkUrl: string, token: string): string => {
  const u = new URL(linkUrl);
  u.searchParams.set("token", token);
  return u.toString();
};

/**
 * Re-signs a real token's header and claims with this run's private key (the
 * gate's own signing key, from the harness), with `claims` replacing some:
 * what an attacker holding nothing could not do, so a control (a forged token
 * that is still valid) proves the forgery is faithful.
 */
export async function forgeToken(realToken: string, claims: Record<string, unknown>): Promise<string> {
  const header = decodeProtectedHeader(realToken);
  const payload = { ...decodeJwt(realToken), ...claims };
  const jwk = JSON.parse(gate().signingJwks).keys.find((k: { kid: string }) => k.kid === header.kid);
  expect(jwk, `no private key with kid ${String(header.kid)} in the harness`).toBeTruthy();
  const key = await importJWK(jwk, "ES256");
  return new SignJWT(payload).setProtectedHeader({ ...header, alg: "ES256" }).sign(key);
}

/** Flips one character of a compact JWS's signature part (still valid base64url). */
export function tamperSignature(token: string): string {
  const [h, p, s] = token.split(".") as [string, string, string];
  const i = Math.floor(s.length / 2);
  const c = s[i] === "A" ? "B" : "A";
  return `${h}.${p}.${s.slice(0, i)}${c}${s.slice(i + 1)}`;
}

/** The gate's published keys. */
export async function jwks(): Promise<JSONWebKeySet> {
  const res = await api("GET", "/.well-known/jwks.json", undefined, null);
  expect(res.status).toBe(200);
  return res.json as JSONWebKeySet;
}

const sha256Hex = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/**
 * Verifies a signed statement as a customer would (docs/api.md "Customer
 * statements"): the `signature` is an ES256 JWS with `typ: statement+jwt` by a
 * key of the JWKS, issued for the statement's account, whose `sha256` claim is
 * the SHA-256 of the RFC 8785 form of the statement without `signature`.
 * Returns null when it verifies, else the reason.
 */
export async function statementProblem(
  statement: Record<string, unknown>,
  keys: JSONWebKeySet,
): Promise<string | null> {
  const { signature, ...rest } = statement;
  if (typeof signature !== "string") return "no signature";
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(signature, createLocalJWKSet(keys), {
      algorithms: ["ES256"],
      typ: "statement+jwt",
      issuer: "credit-gate",
      subject: String(statement.account_id),
    }));
  } catch (e) {
    return `signature: ${e instanceof Error ? e.message : String(e)}`;
  }
  const digest = sha256Hex(canonicalize(rest) as string);
  return payload.sha256 === digest ? null : `sha256 ${String(payload.sha256)} is not the statement's ${digest}`;
}
