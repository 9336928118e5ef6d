/** Types for devvars.mjs, so TypeScript tests and tools can import it. */

/** A JSON Web Key as exported by jose, plus the fields the gate requires. */
export interface SigningJwk {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  d?: string;
  kid: string;
  alg: "ES256";
  use: "sig";
  [member: string]: unknown;
}

export type DevVars = Record<string, string>;

export const REPO_ROOT: string;
export const DEV_VARS_PATH: string;
export function generateAdminToken(): string;
export function newKid(prefix?: string, date?: Date): string;
export function generateSigningJwk(kid: string): Promise<SigningJwk>;
export function publicJwk(jwk: SigningJwk): Omit<SigningJwk, "d">;
export function generateDevVars(kid?: string): Promise<{ ADMIN_TOKEN: string; RECEIPT_SIGNING_KEYS: string }>;
export function parseDevVars(text: string): DevVars;
export function readDevVars(path?: string): DevVars | null;
export function formatDevVars(vars: DevVars, header?: string): string;
export function writeDevVars(vars: DevVars, path?: string): void;
export function ensureDevVars(path?: string): Promise<{ vars: DevVars; created: boolean; problems: string[] }>;
export function hasSigningKey(json: string | undefined): boolean;
