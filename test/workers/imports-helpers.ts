/** Shared by the imports suites: NDJSON calls to POST /v1/imports and the reads that show what an import moved. */
import { call, type Res, uid } from "./helpers";

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const inDays = (days: number) => new Date(Date.now() + days * DAY).toISOString();

/** NDJSON of `lines` (objects are JSON-encoded, strings sent as they are), one per line, a final newline. */
export const ndjson = (lines: readonly unknown[]) =>
  `${lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n")}\n`;

export interface ImportOptions {
  dryRun?: boolean;
  token?: string | null;
  contentType?: string;
}

/** POST /v1/imports with an NDJSON body (a string is sent as is). */
export function importLots(body: readonly unknown[] | string, opts: ImportOptions = {}): Promise<Res> {
  const raw = typeof body === "string" ? body : ndjson(body);
  const query = opts.dryRun ? "?dry_run=true" : "";
  return call("POST", `/v1/imports${query}`, undefined, {
    raw,
    ...(opts.token === undefined ? {} : { token: opts.token }),
    headers: { "content-type": opts.contentType ?? "application/x-ndjson" },
  });
}

/** A valid purchased legacy lot on `accountId`. */
export const lot = (accountId: string, extra: Record<string, unknown> = {}) => ({
  legacy_id: uid("L"),
  account_id: accountId,
  amount: 100,
  type: "purchased",
  ...extra,
});

/** Everything an import could have moved on one account, as served (404s included); as_of cut out. */
export async function accountState(accountId: string): Promise<Record<string, string>> {
  const a = `/v1/accounts/${accountId}`;
  const out: Record<string, string> = {};
  for (const p of [a, `${a}/balance`, `${a}/ledger?limit=1000`, `${a}/grants?limit=1000`]) {
    const res = await call("GET", p);
    out[p] = `${res.status} ${res.text.replace(/"as_of":"[^"]*"/, "")}`;
  }
  return out;
}

/** An API key of `role` (optionally scoped to an account). */
export async function keyOf(role: string, scope?: string): Promise<string> {
  const body: Record<string, unknown> = { name: uid("k"), role };
  if (scope !== undefined) body.account_scope = scope;
  const res = await call("POST", "/v1/api-keys", body);
  if (res.status !== 201) throw new Error(`key: ${res.status} ${res.text}`);
  return res.json.key;
}
