/**
 * API keys, stored hashed (SHA-256 of a 256-bit random token) in D1.
 *
 * Lookups are cached per isolate, valid keys and unknown or revoked tokens in
 * two separately bounded LRU maps, so no number of junk tokens can push a
 * valid key out. A revoked key stops working within KEY_TTL_MS everywhere (at
 * once in the isolate that revoked it), and within KEY_STALE_MAX_MS while D1
 * is unreachable.
 */
import { and, desc, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { sha256Hex } from "../ledger";
import type { Role } from "../roles";
import { type AuditBy, auditQuery } from "./audit";
import { apiKeys } from "./schema";

/** A cached valid key is trusted without asking D1 for this long. */
export const KEY_TTL_MS = 30_000;
/**
 * While D1 cannot be asked, a cached answer verified this recently still
 * holds; an older one cannot be checked. Revoked keys stop working within 60 s.
 */
export const KEY_STALE_MAX_MS = 60_000;
/** Valid keys cached per isolate; the least recently used goes first. */
export const KEY_CACHE_MAX = 10_000;
/** Unknown or revoked tokens cached per isolate, apart from the valid keys. */
export const UNKNOWN_KEY_CACHE_MAX = 1_000;
/**
 * How long an unknown or revoked token is refused without asking D1 again.
 * Short, because "unknown" may only mean a D1 replica has not seen a key
 * created a moment ago.
 */
export const UNKNOWN_KEY_TTL_MS = 5_000;

/** What randomToken() makes: `cg_` and 32 bytes as 43 base64url characters. */
const KEY_SHAPE = /^cg_[A-Za-z0-9_-]{43}$/;

export interface ApiKey {
  id: string;
  name: string;
  role: Role;
  maxGrantAmount: number | null;
  /** null: unscoped; else the account whose tree the key is limited to. */
  accountScope: string | null;
  /** Transfers above it are refused (403 grant_limit_exceeded); null: no limit. */
  maxTransferAmount: number | null;
  createdAtMs: number;
  revokedAtMs: number | null;
}

/**
 * D1 could not be asked about a key. A storage-level failure: the HTTP layer
 * decides what the caller is told. The message names D1's error but never the
 * token or its hash, and the original error is not kept as `cause` because
 * drizzle's wrapper spells out the query's parameters.
 */
export class KeyStoreUnavailable extends Error {
  constructor(error: unknown, hash: string) {
    super(`API keys cannot be read from D1: ${innermostMessage(error).replaceAll(hash, "<key hash>")}`);
    this.name = "KeyStoreUnavailable";
  }
}

function innermostMessage(error: unknown): string {
  let e = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

/** A Map kept in order of use: reading an entry moves it last, and past `max` the first one goes. */
class Lru<V> {
  private readonly entries = new Map<string, V>();
  constructor(private readonly max: number) {}

  get(k: string): V | undefined {
    const v = this.entries.get(k);
    if (v !== undefined) {
      this.entries.delete(k);
      this.entries.set(k, v);
    }
    return v;
  }

  set(k: string, v: V): void {
    this.entries.delete(k);
    this.entries.set(k, v);
    if (this.entries.size > this.max) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  delete(k: string): void {
    this.entries.delete(k);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Valid keys by hash, with when D1 last confirmed them. */
const validKeys = new Lru<{ key: ApiKey; atMs: number }>(KEY_CACHE_MAX);
/** Unknown or revoked tokens by hash: when D1 last said so. */
const unknownKeys = new Lru<number>(UNKNOWN_KEY_CACHE_MAX);

/** How full the two caches are, for tests and debugging. */
export function keyCacheSizes(): { valid: number; unknown: number } {
  return { valid: validKeys.size, unknown: unknownKeys.size };
}

function toKey(row: typeof apiKeys.$inferSelect): ApiKey {
  return {
    id: row.id,
    name: row.name,
    role: row.role as Role,
    maxGrantAmount: row.maxGrantAmount,
    accountScope: row.accountScope,
    maxTransferAmount: row.maxTransferAmount,
    createdAtMs: row.createdAtMs,
    revokedAtMs: row.revokedAtMs,
  };
}

/**
 * The valid key a token stands for, or null for an unknown or revoked one.
 * Throws KeyStoreUnavailable when D1 fails and no answer recent enough
 * (KEY_STALE_MAX_MS) is cached.
 */
export async function findApiKey(d1: D1Database, token: string): Promise<ApiKey | null> {
  // Not a token we could have issued: refused without a hash, a cache entry or a query.
  if (!KEY_SHAPE.test(token)) return null;
  const hash = sha256Hex(token);
  const nowMs = Date.now();
  const valid = validKeys.get(hash);
  if (valid && nowMs - valid.atMs < KEY_TTL_MS) return valid.key;
  const unknownAtMs = unknownKeys.get(hash);
  if (unknownAtMs !== undefined && nowMs - unknownAtMs < UNKNOWN_KEY_TTL_MS) return null;
  let row: typeof apiKeys.$inferSelect | undefined;
  try {
    row = await drizzle(d1).select().from(apiKeys).where(eq(apiKeys.keyHash, hash)).get();
  } catch (e) {
    // D1 unreachable: an answer it gave recently enough still stands; an older one
    // would let a key revoked elsewhere live on for as long as the outage lasts.
    if (valid && nowMs - valid.atMs < KEY_STALE_MAX_MS) return valid.key;
    if (unknownAtMs !== undefined && nowMs - unknownAtMs < KEY_STALE_MAX_MS) return null;
    throw new KeyStoreUnavailable(e, hash);
  }
  if (row && row.revokedAtMs === null) {
    const key = toKey(row);
    validKeys.set(hash, { key, atMs: nowMs });
    unknownKeys.delete(hash);
    return key;
  }
  validKeys.delete(hash);
  unknownKeys.set(hash, nowMs);
  return null;
}

/**
 * The key with this id, read from D1 on every call (no cache), or null when
 * it does not exist or is revoked: an operator's dashboard session names its
 * key by id (src/dashboard/tokens.ts), so revoking the key ends the session
 * at the next request. D1 failing throws KeyStoreUnavailable.
 */
export async function findApiKeyById(d1: D1Database, id: string): Promise<ApiKey | null> {
  let row: typeof apiKeys.$inferSelect | undefined;
  try {
    row = await drizzle(d1).select().from(apiKeys).where(eq(apiKeys.id, id)).get();
  } catch (e) {
    throw new KeyStoreUnavailable(e, id);
  }
  return row && row.revokedAtMs === null ? toKey(row) : null;
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `cg_${btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "")}`;
}

export async function createApiKey(
  d1: D1Database,
  input: {
    name: string;
    role: Role;
    maxGrantAmount: number | null;
    accountScope: string | null;
    maxTransferAmount?: number | null;
  },
  by: AuditBy,
): Promise<{ key: ApiKey; token: string }> {
  const token = randomToken();
  const id = `key_${crypto.randomUUID().replace(/-/g, "").slice(0, 20)}`;
  const createdAtMs = Date.now();
  const key: ApiKey = {
    id,
    ...input,
    maxTransferAmount: input.maxTransferAmount ?? null,
    createdAtMs,
    revokedAtMs: null,
  };
  const db = drizzle(d1);
  // The key and its audit row commit together; the row holds the view, never the token or its hash.
  await db.batch([
    db.insert(apiKeys).values({
      id,
      name: input.name,
      role: input.role,
      maxGrantAmount: input.maxGrantAmount,
      accountScope: input.accountScope,
      maxTransferAmount: input.maxTransferAmount ?? null,
      keyHash: sha256Hex(token),
      createdAtMs,
    }),
    auditQuery(db, { ...by, action: "api_key.created", target: id, before: null, after: apiKeyView(key) }),
  ]);
  return { key, token };
}

export async function listApiKeys(d1: D1Database): Promise<ApiKey[]> {
  const rows = await drizzle(d1).select().from(apiKeys).orderBy(desc(apiKeys.createdAtMs)).limit(1000);
  return rows.map(toKey);
}

/** Revokes a key; returns false when no such key exists. */
export async function revokeApiKey(d1: D1Database, id: string, by: AuditBy): Promise<ApiKey | null> {
  const db = drizzle(d1);
  const row = await db.select().from(apiKeys).where(eq(apiKeys.id, id)).get();
  if (!row) return null;
  const revokedAtMs = row.revokedAtMs ?? Date.now();
  const key = { ...toKey(row), revokedAtMs };
  if (row.revokedAtMs === null) {
    // One batch: the revocation and its row commit together. `once` (and IS NULL) keep two racing revokes to one.
    await db.batch([
      db
        .update(apiKeys)
        .set({ revokedAtMs })
        .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAtMs))),
      auditQuery(db, {
        ...by,
        action: "api_key.revoked",
        target: id,
        before: apiKeyView(toKey(row)),
        after: apiKeyView(key),
        once: true,
      }),
    ]);
  }
  validKeys.delete(row.keyHash);
  // Refused from now on in this isolate, even if D1 fails on the next lookup.
  unknownKeys.set(row.keyHash, Date.now());
  return key;
}

export const apiKeyView = (k: ApiKey) => ({
  id: k.id,
  name: k.name,
  role: k.role,
  max_grant_amount: k.maxGrantAmount,
  account_scope: k.accountScope,
  max_transfer_amount: k.maxTransferAmount,
  created_at: new Date(k.createdAtMs).toISOString(),
  revoked_at: k.revokedAtMs === null ? null : new Date(k.revokedAtMs).toISOString(),
});
