/**
 * The global consumption policy, kept in D1 `settings` and cached per isolate
 * for at most POLICY_TTL_MS, so a change reaches every operation that starts
 * 5 s after the PUT. A D1 outage serves the last policy this isolate read;
 * an isolate that never read one gets null and must not guess the defaults
 * (each account's Durable Object keeps the last global policy it saw).
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { DEFAULT_POLICY, type Policy } from "../ledger";
import { settings } from "./schema";

export const POLICY_TTL_MS = 4_000;
const KEY = "policy";

let cached: { policy: Policy; fetchedAtMs: number } | null = null;

export async function loadGlobalPolicy(d1: D1Database): Promise<Policy | null> {
  const nowMs = Date.now();
  if (cached && nowMs - cached.fetchedAtMs < POLICY_TTL_MS) return cached.policy;
  try {
    const row = await drizzle(d1).select().from(settings).where(eq(settings.key, KEY)).get();
    const policy = row ? { ...DEFAULT_POLICY, ...(JSON.parse(row.value) as Partial<Policy>) } : DEFAULT_POLICY;
    cached = { policy, fetchedAtMs: nowMs };
    return policy;
  } catch {
    return cached?.policy ?? null;
  }
}

/** Test seam: a cold isolate, one that has never read the policy. */
export function forgetGlobalPolicy(): void {
  cached = null;
}

/**
 * Merges `patch` into the stored global policy in one statement (RFC 7396
 * json_patch in SQLite), so two PUTs to different fields from different
 * isolates both land: no read of a cached copy, no read-modify-write race.
 */
export async function mergeGlobalPolicy(d1: D1Database, patch: Partial<Policy>): Promise<Policy> {
  const nowMs = Date.now();
  const row = await d1
    .prepare(
      `INSERT INTO settings (key, value, updated_at_ms) VALUES (?1, json_patch(?2, ?3), ?4)
       ON CONFLICT (key) DO UPDATE SET value = json_patch(settings.value, ?3), updated_at_ms = ?4
       RETURNING value`,
    )
    .bind(KEY, JSON.stringify(DEFAULT_POLICY), JSON.stringify(patch), nowMs)
    .first<{ value: string }>();
  const policy = { ...DEFAULT_POLICY, ...(JSON.parse(row?.value ?? "{}") as Partial<Policy>) };
  cached = { policy, fetchedAtMs: nowMs };
  return policy;
}
