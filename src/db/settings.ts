/**
 * The global consumption policy, kept in D1 `settings` and cached per isolate
 * for at most POLICY_TTL_MS, so a change reaches every operation that starts
 * 5 s after the PUT. A D1 outage serves the last known policy: it never
 * blocks the gate.
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { DEFAULT_POLICY, type Policy } from "../ledger";
import { settings } from "./schema";

export const POLICY_TTL_MS = 4_000;
const KEY = "policy";

let cached: { policy: Policy; fetchedAtMs: number } | null = null;

export async function loadGlobalPolicy(d1: D1Database): Promise<Policy> {
  const nowMs = Date.now();
  if (cached && nowMs - cached.fetchedAtMs < POLICY_TTL_MS) return cached.policy;
  try {
    const row = await drizzle(d1).select().from(settings).where(eq(settings.key, KEY)).get();
    const policy = row ? { ...DEFAULT_POLICY, ...(JSON.parse(row.value) as Partial<Policy>) } : DEFAULT_POLICY;
    cached = { policy, fetchedAtMs: nowMs };
    return policy;
  } catch {
    return cached?.policy ?? DEFAULT_POLICY;
  }
}

export async function saveGlobalPolicy(d1: D1Database, policy: Policy): Promise<void> {
  const nowMs = Date.now();
  await drizzle(d1)
    .insert(settings)
    .values({ key: KEY, value: JSON.stringify(policy), updatedAtMs: nowMs })
    .onConflictDoUpdate({ target: settings.key, set: { value: JSON.stringify(policy), updatedAtMs: nowMs } });
  cached = { policy, fetchedAtMs: nowMs };
}
