/**
 * Signs customer statements with the receipt key set (the same keys, the
 * same JWKS): a compact JWS, ES256, `kid` and `typ: "statement+jwt"` in the
 * header, payload {iss, sub, iat, sha256}. The signature commits to the
 * SHA-256 of the statement's RFC 8785 (JCS) form rather than carrying the
 * statement, so a customer verifies with the JWKS and SHA-256 alone and the
 * token stays small however many entries the statement serves.
 */
import { SignJWT } from "jose";
import { canonicalJson, sha256Hex } from "../ledger";
import type { ReceiptKeys } from "./keys";

/** The JWS `typ` of a statement signature (a receipt's is "JWT"), so neither passes for the other. */
export const STATEMENT_TYP = "statement+jwt";

/** A statement as the account serves it, before it is signed. */
export interface UnsignedStatement {
  account_id: string;
  [member: string]: unknown;
}

/**
 * Lowercase hex SHA-256 of the JCS of the statement without `signature`:
 * the `sha256` claim, and what a customer recomputes.
 */
export function statementDigest(statement: UnsignedStatement): string {
  const { signature: _signature, ...rest } = statement;
  return sha256Hex(canonicalJson(rest));
}

/**
 * The `signature` member of a statement, signed by the active key.
 * @example const signature = await signStatement(keys, "credit-gate", unsigned, Math.floor(Date.now() / 1000))
 */
export function signStatement(
  keys: ReceiptKeys,
  issuer: string,
  statement: UnsignedStatement,
  issuedAtS: number,
): Promise<string> {
  return new SignJWT({ sha256: statementDigest(statement) })
    .setProtectedHeader({ alg: "ES256", kid: keys.signer.kid, typ: STATEMENT_TYP })
    .setIssuer(issuer)
    .setSubject(statement.account_id)
    .setIssuedAt(issuedAtS)
    .sign(keys.signer.key);
}
