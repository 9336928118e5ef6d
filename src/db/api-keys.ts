/**
 * API keys, stored hashed (SHA-256 of a 256-bit random token) in D1. Lookups
 * are cached per isolate for KEY_TTL_MS, so a revoked key stops working
 * within 60 s everywhere (at once in the isolate that revoked it).
 */
import { desc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { ApiError } from "../errors";
import { sha256Hex } from "../ledger";
import type { Role } from "../roles";
import { apiKeys } from "./schema";

export const KEY_TTL_MS = 30_000;

export interface ApiKey {
  id: string;
  name: string;
  role: Role;
  maxGrantAmount: number | null;
  createdAtMs: number;
  revokedAtMs: number | null;
}

const cache = new Map<string, { key: ApiKey | null; atMs: number }>();
const CACHE_MAX = 10_000;

function toKey(row: typeof apiKeys.$inferSelect): ApiKey {
  return {
    id: row.id,
    name: row.name,
    role: row.role as Role,
    maxGrantAmount: row.maxGrantAmount,
    createdAtMs: row.createdAtMs,
    revokedAtMs: row.revokedAtMs,
  };
}

export async function findApiKey(d1: D1Database, token: string): Promise<ApiKey | null> {
  const hash = sha256Hex(token);
  const nowMs = Date.now();
  const hit = cache.get(hash);
  if (hit && nowMs - hit.atMs < KEY_TTL_MS) return hit.key;
  let key: ApiKey | null;
  try {
    const row = await drizzle(d1).select().from(apiKeys).where(eq(apiKeys.keyHash, hash)).get();
    key = row && row.revokedAtMs === null ? toKey(row) : null;
  } catch (e) {
    // D1 unreachable: a key seen recently keeps working; an unseen one cannot be checked.
    if (hit) return hit.key;
    throw new ApiError(
      "overloaded",
      `API keys cannot be checked right now (${e instanceof Error ? e.message : "D1"}); retry`,
    );
  }
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(hash, { key, atMs: nowMs });
  return key;
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
  input: { name: string; role: Role; maxGrantAmount: number | null },
): Promise<{ key: ApiKey; token: string }> {
  const token = randomToken();
  const id = `key_${crypto.randomUUID().replace(/-/g, "").slice(0, 20)}`;
  const createdAtMs = Date.now();
  await drizzle(d1)
    .insert(apiKeys)
    .values({
      id,
      name: input.name,
      role: input.role,
      maxGrantAmount: input.maxGrantAmount,
      keyHash: sha256Hex(token),
      createdAtMs,
    });
  return { key: { id, ...input, createdAtMs, revokedAtMs: null }, token };
}

export async function listApiKeys(d1: D1Database): Promise<ApiKey[]> {
  const rows = await drizzle(d1).select().from(apiKeys).orderBy(desc(apiKeys.createdAtMs)).limit(1000);
  return rows.map(toKey);
}

/** Revokes a key; returns false when no such key exists. */
export async function revokeApiKey(d1: D1Database, id: string): Promise<ApiKey | null> {
  const db = drizzle(d1);
  const row = await db.select().from(apiKeys).where(eq(apiKeys.id, id)).get();
  if (!row) return null;
  const revokedAtMs = row.revokedAtMs ?? Date.now();
  if (row.revokedAtMs === null) await db.update(apiKeys).set({ revokedAtMs }).where(eq(apiKeys.id, id));
  cache.delete(row.keyHash);
  return { ...toKey(row), revokedAtMs };
}

export const apiKeyView = (k: ApiKey) => ({
  id: k.id,
  name: k.name,
  role: k.role,
  max_grant_amount: k.maxGrantAmount,
  created_at: new Date(k.createdAtMs).toISOString(),
  revoked_at: k.revokedAtMs === null ? null : new Date(k.revokedAtMs).toISOString(),
});
