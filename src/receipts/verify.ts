/**
 * Verifies receipts presented for settlement. Everything that is not a
 * receipt we signed with a key still in the set, for our issuer, within its
 * settle grace, is `invalid_receipt` — the reason goes in `detail`.
 */
import { errors, jwtVerify } from "jose";
import { z } from "zod";
import { ApiError } from "../errors";
import { ID_PATTERN as ID, UNIT_PATTERN } from "../ledger/ids";
import type { ReceiptKeys } from "./keys";

/** A receipt may be settled until `exp` + this. */
export const SETTLE_GRACE_SECONDS = 300;

const ReceiptPayload = z.object({
  jti: z.string().regex(ID),
  sub: z.string().regex(ID),
  amt: z.number().int().min(1).max(1e15),
  unit: z.string().regex(UNIT_PATTERN),
  iat: z.number().int(),
  exp: z.number().int(),
  aud: z.union([z.string(), z.array(z.string())]).optional(),
});

export interface VerifiedReceipt {
  receiptId: string;
  accountId: string;
  amount: number;
  unit: string;
  audience: string[];
  issuedAtS: number;
  expiresAtS: number;
  kid: string;
}

export interface VerifyOptions {
  /** Seconds a receipt stays acceptable after `exp` (default: the settle grace). */
  graceSeconds?: number;
  /** The verifier's clock (default: now). */
  nowMs?: number;
}

function reasonOf(e: unknown): string {
  if (e instanceof errors.JWTExpired) return "the receipt is past its settle grace";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "the signature does not verify";
  if (e instanceof errors.JWKSNoMatchingKey) return "the receipt was not signed by a current key";
  if (e instanceof errors.JOSEAlgNotAllowed) return "receipts are ES256 only";
  if (e instanceof errors.JWTClaimValidationFailed) return `claim ${e.claim} is not valid`;
  return "the token is not a receipt";
}

/** Verifies a receipt token; throws ApiError("invalid_receipt") when it is not good. */
export async function verifyReceipt(
  keys: ReceiptKeys,
  issuer: string,
  token: string,
  opts: VerifyOptions = {},
): Promise<VerifiedReceipt> {
  let payload: unknown;
  let kid: string | undefined;
  try {
    const result = await jwtVerify(token, keys.resolve, {
      issuer,
      algorithms: ["ES256"],
      typ: "JWT",
      requiredClaims: ["jti", "sub", "iat", "exp"],
      clockTolerance: opts.graceSeconds ?? SETTLE_GRACE_SECONDS,
      currentDate: opts.nowMs === undefined ? undefined : new Date(opts.nowMs),
    });
    payload = result.payload;
    kid = result.protectedHeader.kid;
  } catch (e) {
    throw new ApiError("invalid_receipt", reasonOf(e));
  }
  const claims = ReceiptPayload.safeParse(payload);
  if (!claims.success || kid === undefined) throw new ApiError("invalid_receipt", "the token is not a receipt");
  const c = claims.data;
  return {
    receiptId: c.jti,
    accountId: c.sub,
    amount: c.amt,
    unit: c.unit,
    audience: c.aud === undefined ? [] : typeof c.aud === "string" ? [c.aud] : c.aud,
    issuedAtS: c.iat,
    expiresAtS: c.exp,
    kid,
  };
}
