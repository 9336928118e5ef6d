/**
 * Local secrets for `wrangler dev`: the `.dev.vars` file (dotenv syntax) with
 * ADMIN_TOKEN and RECEIPT_SIGNING_KEYS. Shared by scripts/dev.mjs, the e2e
 * harness and the key-rotation script, so every generated key has one shape:
 * a private EC P-256 JWK with `kid`, `alg: "ES256"`, `use: "sig"`.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { exportJWK, generateKeyPair } from "jose";

/** The repository root (scripts/lib/../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DEV_VARS_PATH = join(REPO_ROOT, ".dev.vars");

/** `cg_admin_` + 32 random bytes, base64url. */
export function generateAdminToken() {
  return `cg_admin_${randomBytes(32).toString("base64url")}`;
}

/** A kid that sorts by date and does not collide: `dev-20261125-3f9a1c`. */
export function newKid(prefix = "dev", date = new Date()) {
  const day = date.toISOString().slice(0, 10).replace(/-/g, "");
  return `${prefix}-${day}-${randomBytes(3).toString("hex")}`;
}

/**
 * A fresh ES256 private key as a JWK with `kid`, `alg` and `use` set.
 * @example const jwk = await generateSigningJwk(newKid()); // {kty:"EC", crv:"P-256", d, x, y, kid, alg, use}
 */
export async function generateSigningJwk(kid) {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid, alg: "ES256", use: "sig" };
}

/** The public half of a private JWK (drops `d`). */
export function publicJwk(jwk) {
  const { d: _d, ...rest } = jwk;
  return rest;
}

/** A fresh set of local secrets: an admin token and a one-key JWK set (as a JSON string). */
export async function generateDevVars(kid = newKid()) {
  return {
    ADMIN_TOKEN: generateAdminToken(),
    RECEIPT_SIGNING_KEYS: JSON.stringify({ keys: [await generateSigningJwk(kid)] }),
  };
}

function unquote(raw) {
  const value = raw.trim();
  const q = value[0];
  if ((q === "'" || q === '"' || q === "`") && value.length >= 2 && value.endsWith(q)) {
    const inner = value.slice(1, -1);
    return q === '"' ? inner.replace(/\\n/g, "\n") : inner;
  }
  // Unquoted: a `#` after whitespace starts a comment, as in dotenv.
  return value.replace(/\s+#.*$/, "");
}

/** Parses dotenv text: `KEY=value` lines, `#` comments, optional quotes and `export `. */
export function parseDevVars(text) {
  const vars = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=(.*)$/.exec(line);
    if (m?.[1]) vars[m[1]] = unquote(m[2] ?? "");
  }
  return vars;
}

/** The variables in `.dev.vars`, or null when the file does not exist. */
export function readDevVars(path = DEV_VARS_PATH) {
  if (!existsSync(path)) return null;
  return parseDevVars(readFileSync(path, "utf8"));
}

function formatValue(value) {
  // Single quotes keep JSON literal for dotenv; values that hold one fall back to double quotes.
  if (/^[A-Za-z0-9_.:/+=-]*$/.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  return `"${value.replace(/\n/g, "\\n")}"`;
}

/** Serializes variables to dotenv text (one `KEY=value` per line). */
export function formatDevVars(
  vars,
  header = "Local secrets for `wrangler dev`, written by scripts/dev.mjs. Never commit.",
) {
  const lines = header ? [`# ${header}`] : [];
  for (const [k, v] of Object.entries(vars)) lines.push(`${k}=${formatValue(String(v))}`);
  return `${lines.join("\n")}\n`;
}

/** Writes `.dev.vars` atomically (temp file + rename), readable by the owner only. */
export function writeDevVars(vars, path = DEV_VARS_PATH) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, formatDevVars(vars), { mode: 0o600 });
  renameSync(tmp, path);
}

/**
 * Reads `.dev.vars`, creating it with fresh secrets when missing. An existing
 * file is never rewritten: `problems` names what it lacks, for a warning.
 */
export async function ensureDevVars(path = DEV_VARS_PATH) {
  const existing = readDevVars(path);
  if (existing === null) {
    const vars = await generateDevVars();
    writeDevVars(vars, path);
    return { vars, created: true, problems: [] };
  }
  const problems = [];
  if (!existing.ADMIN_TOKEN || existing.ADMIN_TOKEN === "replace-me")
    problems.push("ADMIN_TOKEN is missing or a placeholder");
  if (!hasSigningKey(existing.RECEIPT_SIGNING_KEYS)) problems.push("RECEIPT_SIGNING_KEYS holds no key");
  return { vars: existing, created: false, problems };
}

/** True when `json` is a JWK set with at least one key. */
export function hasSigningKey(json) {
  if (!json) return false;
  try {
    const set = JSON.parse(json);
    return Array.isArray(set.keys) && set.keys.length > 0;
  } catch {
    return false;
  }
}
