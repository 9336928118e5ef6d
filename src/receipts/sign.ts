/** Issues receipt JWTs: ES256, `kid` in the header, the claims of API.md. */
import { SignJWT } from "jose";
import type { ReceiptKeys } from "./keys";

export const DEFAULT_AUDIENCE = "usage";

export interface ReceiptClaims {
  accountId: string;
  receiptId: string;
  amount: number;
  unit: string;
  audience: string;
  /** `iat`, whole seconds since the epoch. */
  issuedAtS: number;
  /** `exp`, whole seconds since the epoch. */
  expiresAtS: number;
}

/**
 * Signs a receipt with the active key.
 * @example signReceipt(keys, "credit-gate", { accountId: "a1", receiptId: "r1", amount: 100, unit: "credits",
 *   audience: "usage", issuedAtS: 1_700_000_000, expiresAtS: 1_700_000_060 })
 */
export function signReceipt(keys: ReceiptKeys, issuer: string, claims: ReceiptClaims): Promise<string> {
  return new SignJWT({ amt: claims.amount, unit: claims.unit })
    .setProtectedHeader({ alg: "ES256", kid: keys.signer.kid, typ: "JWT" })
    .setIssuer(issuer)
    .setSubject(claims.accountId)
    .setAudience(claims.audience)
    .setJti(claims.receiptId)
    .setIssuedAt(claims.issuedAtS)
    .setExpirationTime(claims.expiresAtS)
    .sign(keys.signer.key);
}
