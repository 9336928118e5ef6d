/** What a receipt token claims, and why the verifier refuses one. */
import { decodeJwt } from "jose";
import { ID_PATTERN, UNIT_PATTERN } from "../ledger/ids";

/** A receipt whose signature, issuer, audience and expiry checked out. */
export interface VerifiedReceipt {
  receiptId: string;
  accountId: string;
  amount: number;
  unit: string;
  audience: string[];
  issuedAtMs: number;
  expiresAtMs: number;
  kid: string;
}

export type RefusalReason =
  | "invalid_receipt"
  | "expired"
  | "exhausted"
  | "settled"
  | "invalid_amount"
  | "gate_unreachable"
  | "overloaded";

/** Thrown by verify(); `reason` says why. */
export class ReceiptError extends Error {
  override readonly name = "ReceiptError";
  constructor(
    readonly reason: RefusalReason,
    detail: string,
  ) {
    super(detail);
  }
}

/** Past `exp` by more than the clock skew the verifier accepts: it can no longer be spent. */
export function expired(expiresAtMs: number, nowMs: number, toleranceMs: number): boolean {
  return nowMs > expiresAtMs + toleranceMs;
}

/** The gate never signs a receipt for longer (ttl_seconds ≤ 3600). */
const MAX_TTL_MS = 3_600_000;

/** The receipt claims of a JWT payload; null when it is not a receipt the gate could have signed. */
export function claimsOf(payload: Record<string, unknown>): Omit<VerifiedReceipt, "kid"> | null {
  const { jti, sub, amt, unit, iat, exp, aud } = payload;
  if (typeof jti !== "string" || !ID_PATTERN.test(jti) || typeof sub !== "string" || !ID_PATTERN.test(sub)) {
    return null;
  }
  if (typeof amt !== "number" || !Number.isSafeInteger(amt) || amt < 1 || amt > 1e15) return null;
  if (typeof unit !== "string" || !UNIT_PATTERN.test(unit)) return null;
  if (typeof iat !== "number" || typeof exp !== "number") return null;
  const audience = aud === undefined ? [] : Array.isArray(aud) ? aud.map(String) : [String(aud)];
  return {
    receiptId: jti,
    accountId: sub,
    amount: amt,
    unit,
    audience,
    issuedAtMs: iat * 1000,
    expiresAtMs: exp * 1000,
  };
}

/** Fail-open only: the claims as written (unverified: nothing in them is trusted beyond `failOpenMax`). */
export function unverifiedClaims(token: string, nowMs: number, toleranceMs: number): VerifiedReceipt | null {
  try {
    const claims = claimsOf(decodeJwt(token) as Record<string, unknown>);
    if (claims === null || expired(claims.expiresAtMs, nowMs, toleranceMs)) return null;
    // No gate receipt lives longer than the maximum TTL: a later exp is a forgery.
    if (claims.expiresAtMs > nowMs + MAX_TTL_MS + toleranceMs) return null;
    return { ...claims, kid: "" };
  } catch {
    return null;
  }
}
