/**
 * Migration from legacy billing, the pure parts: the bounds of one import
 * request, NDJSON lines and their all-or-nothing check, and how a file is cut
 * into requests (CSV files and the dual run: ./migration-files.ts). No I/O: the route (src/api/imports.ts) brings the
 * schema, the Durable Object (src/account/imports.ts) the state, and
 * scripts/import.mjs the files and the HTTP.
 */
import { canonicalJson } from "./hash";
import { ID_PATTERN } from "./ids";

/** POST /v1/imports: the body cap (the global one is 64 KiB; src/api/middleware.ts bodyCap). */
export const IMPORT_BODY_MAX_BYTES = 10_485_760;
/** Non-blank lines in one request (scripts/import.mjs splits bigger files). */
export const IMPORT_MAX_LINES = 50_000;
/** Distinct accounts in one request: one Durable Object call each, well under the subrequest limit. */
export const IMPORT_MAX_ACCOUNTS = 500;
/** Lines of one account in one request: all applied by one call, in one transaction. */
export const IMPORT_MAX_LOTS_PER_ACCOUNT = 1_000;
/** One line's length in UTF-16 code units (a legacy lot with every member spelled out is ~700). */
export const IMPORT_LINE_MAX_CHARS = 4_096;
/** Bad lines listed in a 400 (the count of all of them is `invalid_lines`). */
export const IMPORT_ERRORS_MAX = 100;

/** What a legacy lot line may hold: the grant's members that mean something for a lot carried over. */
export const LEGACY_MEMBERS = [
  "legacy_id",
  "account_id",
  "amount",
  "unit",
  "type",
  "priority",
  "effective_at",
  "expires_at",
  "reason",
  "cost_basis",
] as const;

/** A line the whole request is refused for: where, whose, why. */
export interface LineError {
  line: number;
  legacy_id: string | null;
  reason: string;
}

export type LineCheck<T> = { ok: true; value: T } | { ok: false; reason: string };

/** What a line must carry for the request-wide checks (duplicates, per-account bounds). */
export interface Keyed {
  legacy_id: string;
  account_id: string;
}

export interface Checked<T> {
  lines: { line: number; value: T }[];
  /** At most IMPORT_ERRORS_MAX. */
  errors: LineError[];
  /** Every bad line, listed or not. */
  invalid: number;
  accounts: number;
}

export interface ImportBounds {
  maxLines: number;
  maxAccounts: number;
  maxPerAccount: number;
}

export const IMPORT_BOUNDS: ImportBounds = {
  maxLines: IMPORT_MAX_LINES,
  maxAccounts: IMPORT_MAX_ACCOUNTS,
  maxPerAccount: IMPORT_MAX_LOTS_PER_ACCOUNT,
};

/** The legacy_id of a raw line when it is readable (an id-shaped string), for error lists. */
export function legacyIdOf(raw: unknown): string | null {
  const id = raw !== null && typeof raw === "object" ? (raw as { legacy_id?: unknown }).legacy_id : undefined;
  return typeof id === "string" && ID_PATTERN.test(id) ? id : null;
}

/**
 * The non-blank lines of an NDJSON text with their 1-based line numbers
 * (LF or CRLF; blank or whitespace-only lines are skipped wherever they are).
 * null when the text has more than `maxLines` lines, blank ones included
 * (blank lines at the very end do not count), without reading further.
 */
export function ndjsonLines(text: string, maxLines = IMPORT_MAX_LINES): { line: number; text: string }[] | null {
  const out: { line: number; text: string }[] = [];
  let start = 0;
  for (let n = 1; start <= text.length; n++) {
    if (n > maxLines) return text.slice(start).trim() === "" ? out : null;
    const nl = text.indexOf("\n", start);
    const end = nl < 0 ? text.length : nl;
    const body = text.slice(start, end).replace(/\r$/, "");
    if (body.trim() !== "") out.push({ line: n, text: body });
    if (nl < 0) break;
    start = nl + 1;
  }
  return out;
}

/**
 * Checks every line of an import: each on its own (`check`: the grant's
 * schema and rules), then across the request: a (account_id, legacy_id)
 * pair at most once, at most `maxAccounts` accounts and `maxPerAccount`
 * lines per account. Any error refuses the whole request, so the caller
 * writes nothing unless `invalid` is 0.
 */
export function checkLines<T extends Keyed>(
  lines: readonly { line: number; text: string }[],
  check: (raw: unknown) => LineCheck<T>,
  bounds: ImportBounds = IMPORT_BOUNDS,
): Checked<T> {
  const out: Checked<T> = { lines: [], errors: [], invalid: 0, accounts: 0 };
  const fail = (line: number, legacyId: string | null, reason: string) => {
    out.invalid++;
    if (out.errors.length < IMPORT_ERRORS_MAX) out.errors.push({ line, legacy_id: legacyId, reason });
  };
  const seen = new Map<string, number>();
  const perAccount = new Map<string, number>();
  for (const { line, text } of lines.slice(0, bounds.maxLines)) {
    if (text.length > IMPORT_LINE_MAX_CHARS) {
      fail(line, null, `longer than ${IMPORT_LINE_MAX_CHARS} characters`);
      continue;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      fail(line, null, "not a JSON value");
      continue;
    }
    const checked = check(raw);
    if (!checked.ok) {
      fail(line, legacyIdOf(raw), checked.reason);
      continue;
    }
    const { legacy_id: legacyId, account_id: accountId } = checked.value;
    const key = `${accountId}\n${legacyId}`;
    const first = seen.get(key);
    if (first !== undefined) {
      fail(line, legacyId, `legacy_id ${legacyId} of account ${accountId} is already on line ${first}`);
      continue;
    }
    seen.set(key, line);
    const count = perAccount.get(accountId) ?? 0;
    if (count === 0 && perAccount.size >= bounds.maxAccounts) {
      fail(line, legacyId, `more than ${bounds.maxAccounts} accounts in one request; split the file`);
      continue;
    }
    if (count >= bounds.maxPerAccount) {
      fail(line, legacyId, `more than ${bounds.maxPerAccount} lines of account ${accountId} in one request`);
      continue;
    }
    perAccount.set(accountId, count + 1);
    out.lines.push({ line, value: checked.value });
  }
  out.accounts = perAccount.size;
  return out;
}

/** The terms a migration lot is compared by on a repeat: what was sent, times in epoch ms, absent as null. */
export interface LegacyTerms {
  account_id: string;
  legacy_id: string;
  amount: number;
  unit: string;
  type: string;
  priority: number;
  effective_at_ms: number | null;
  expires_at_ms: number | null;
  reason: string | null;
  cost_basis: { amount: number; currency: string; tax?: { amount: number; jurisdiction: string } } | null;
}

/** Canonical JSON of the terms: two imports of one lot are the same import exactly when these are equal. */
export const termsKey = (t: LegacyTerms): string => canonicalJson(t);

/**
 * Splits checked lines into requests within `bounds` and `maxBytes` of
 * NDJSON each, in file order: a request ends when the next line would pass
 * the line, account, per-account or byte bound.
 */
export function chunkLines<T extends { value: { account_id: unknown } }>(
  lines: readonly T[],
  bytesOf: (line: T) => number,
  bounds: ImportBounds = IMPORT_BOUNDS,
  maxBytes = IMPORT_BODY_MAX_BYTES,
): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  let perAccount = new Map<unknown, number>();
  for (const l of lines) {
    const size = bytesOf(l) + 1;
    const count = perAccount.get(l.value.account_id) ?? 0;
    const full =
      current.length >= bounds.maxLines ||
      bytes + size > maxBytes ||
      count >= bounds.maxPerAccount ||
      (count === 0 && perAccount.size >= bounds.maxAccounts);
    if (full && current.length > 0) {
      chunks.push(current);
      current = [];
      bytes = 0;
      perAccount = new Map();
    }
    current.push(l);
    bytes += size;
    perAccount.set(l.value.account_id, (perAccount.get(l.value.account_id) ?? 0) + 1);
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
