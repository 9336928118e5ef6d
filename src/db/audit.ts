/**
 * The audit log in D1 (`audit_events`): one append-only row for every change
 * that is not a ledger entry. SQLite triggers refuse UPDATE and DELETE
 * (migrations/0005_audit_and_bulk.sql), so a row, once written, stays as it is.
 *
 * `before` and `after` are JSON snapshots of the resource, redacted (no
 * webhook secret, no API key or its hash) and capped at
 * AUDIT_SNAPSHOT_MAX_BYTES each, so a row stays small whatever it records.
 */
import { and, asc, eq, getTableColumns, gt, type SQL, sql } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { drizzle } from "drizzle-orm/d1";
import { sha256Hex } from "../ledger";
import { auditEvents } from "./schema";

/**
 * Every action written today, `<resource>.<verb>`. A new audited change adds
 * its action here: the writers' type and the query filter both come from it.
 */
export const AUDIT_ACTIONS = [
  "account.created",
  "account.updated",
  "account_policy.updated",
  "policy.updated",
  "alert_settings.updated",
  "webhook.created",
  "webhook.deleted",
  "api_key.created",
  "api_key.revoked",
  // four eyes (src/api/approvals.ts)
  "approval.requested",
  "approval.approved",
  "approval.rejected",
  // units, rates and meters (src/api/units.ts, src/api/meters.ts)
  "unit.created",
  "unit.updated",
  "rate.created",
  "rate.updated",
  "rate.deleted",
  "meter.created",
  "meter.updated",
  // department budgets (src/api/budgets.ts)
  "budget.updated",
  "budget.deleted",
  // campaigns, codes and referral codes (src/api/campaigns.ts, src/api/referrals.ts)
  "campaign.created",
  "campaign.updated",
  "campaign.codes_created",
  "referral_code.created",
  // recurring grants (src/api/recurring.ts)
  "recurring_grant.created",
  "recurring_grant.cancelled",
  // grants awaiting payment and automatic top-up (src/api/awaiting.ts, src/api/topup.ts)
  "grant.activated",
  "grant.cancelled",
  "top_up.updated",
  "top_up.deleted",
  // customer dashboard links (src/api/dashboard-links.ts)
  "dashboard_link.created",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Each of `before` and `after` is at most this many bytes of UTF-8 JSON. */
export const AUDIT_SNAPSHOT_MAX_BYTES = 8192;
/** A page of events: `limit` 1 … AUDIT_PAGE_MAX. */
export const AUDIT_PAGE_MAX = 1000;
export const DEFAULT_AUDIT_LIMIT = 100;
/**
 * A page also stops once its snapshots reach this many bytes (it always holds
 * at least one event), so a full page of large snapshots stays near 1 MiB
 * instead of 1 000 × 16 KB.
 */
export const AUDIT_PAGE_MAX_BYTES = 1_048_576;

/** Who made a change: the caller's actor string and the request id. */
export interface AuditBy {
  actor: string;
  requestId: string;
}

/** What changed: the action, what it names, and the resource before and after (null when it did not exist). */
export interface AuditChange {
  action: AuditAction;
  /** The resource's id (account id, key id, webhook id), or `policy` / `alert_settings` for the global singletons. */
  target: string;
  before: unknown;
  after: unknown;
  /**
   * For a change that happens once in a resource's life (a key revoked, a
   * webhook deleted): written only when no row with this action and target
   * exists yet, so two requests racing to do it record it once.
   */
  once?: boolean;
}

export type AuditEvent = AuditBy & AuditChange;

// ── snapshots ────────────────────────────────────────────────────────────

/**
 * Members whose value is a secret, at any depth. Views of resources never
 * carry them (webhookView has no `secret`, apiKeyView no key or hash); this
 * catches a raw row passed by mistake.
 */
const SECRET_FIELDS = new Set(["secret", "key_hash", "keyHash"]);
/** Secrets by their shape, wherever they appear in a string: an API key (`cg_` + 43) and a webhook secret. */
const SECRET_VALUES = /cg_[A-Za-z0-9_-]{43}|whsec_[A-Za-z0-9+/]{16,}={0,2}/g;
export const REDACTED = "[redacted]";
/** Deeper than this a snapshot is cut (request bodies are already limited to 64 levels). */
const MAX_DEPTH = 32;

const utf8Bytes = (s: string) => new TextEncoder().encode(s).byteLength;

/** A copy of `value` without secrets; JSON-compatible (what JSON.stringify would drop stays dropped). */
function redact(value: unknown, depth: number): unknown {
  if (typeof value === "string") return value.replace(SECRET_VALUES, REDACTED);
  if (value === null || typeof value !== "object") return value;
  if (depth >= MAX_DEPTH) return "[too deep]";
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_FIELDS.has(k) ? REDACTED : redact(v, depth + 1);
  return out;
}

/**
 * The JSON stored for one side of a change, or null. Over the cap, an object
 * keeps the top-level members that fit (in order) and names the rest under
 * `_truncated` with the size and SHA-256 of the whole snapshot, so what
 * changed in the small fields stays readable and the full one can still be
 * matched against a copy; anything else is replaced by that marker alone.
 */
export function snapshot(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const clean = redact(value, 0);
  const full = JSON.stringify(clean);
  const size = utf8Bytes(full);
  if (size <= AUDIT_SNAPSHOT_MAX_BYTES) return full;
  const marker = { bytes: size, sha256: sha256Hex(full) };
  if (clean !== null && typeof clean === "object" && !Array.isArray(clean)) {
    // Room for the marker and the dropped names (resource fields have short names).
    const budget = AUDIT_SNAPSHOT_MAX_BYTES - 1024;
    const kept: Record<string, unknown> = {};
    const dropped: string[] = [];
    let used = 2;
    for (const [k, v] of Object.entries(clean)) {
      const member = utf8Bytes(JSON.stringify(k)) + utf8Bytes(JSON.stringify(v) ?? "null") + 2;
      if (used + member <= budget) {
        kept[k] = v;
        used += member;
      } else {
        dropped.push(k);
      }
    }
    const cut = JSON.stringify({ ...kept, _truncated: { ...marker, dropped } });
    if (utf8Bytes(cut) <= AUDIT_SNAPSHOT_MAX_BYTES) return cut;
  }
  return JSON.stringify({ _truncated: marker });
}

// ── writing ──────────────────────────────────────────────────────────────

/**
 * The INSERT of one audit row, as a drizzle query: await it alone, or put it
 * in the same `db.batch([...])` as the D1 change it records, so the change
 * and its row commit together or not at all. (An INSERT … SELECT, not
 * `db.run(sql…)`: drizzle's D1 batch cannot bind a raw query's parameters.)
 */
export function auditQuery<S extends Record<string, unknown>>(
  db: DrizzleD1Database<S>,
  event: AuditEvent,
  atMs: number = Date.now(),
) {
  const values: Partial<Record<keyof typeof auditEvents.$inferInsert, SQL>> = {
    atMs: sql`${atMs}`,
    actor: sql`${event.actor}`,
    action: sql`${event.action}`,
    target: sql`${event.target}`,
    before: sql`${snapshot(event.before)}`,
    after: sql`${snapshot(event.after)}`,
    requestId: sql`${event.requestId}`,
  };
  // drizzle names every column of the table, in declaration order; `id` (not given) is NULL, so SQLite assigns it.
  const columns = Object.keys(getTableColumns(auditEvents)) as (keyof typeof values)[];
  const list = sql.join(
    columns.map((k) => values[k] ?? sql`NULL`),
    sql`, `,
  );
  const onlyOnce = event.once
    ? sql` WHERE NOT EXISTS (SELECT 1 FROM audit_events WHERE target = ${event.target} AND action = ${event.action})`
    : sql.empty();
  return db.insert(auditEvents).select(sql`SELECT ${list}${onlyOnce}`);
}

/** Writes one audit row on its own (for a change that could not share its batch). Throws what D1 throws. */
export async function writeAudit(d1: D1Database, event: AuditEvent): Promise<void> {
  await auditQuery(drizzle(d1), event);
}

/**
 * The stored JSON of a `settings` row, read now (no cache), or null when
 * there is none: the `before` of an audited settings change.
 */
export async function storedSetting(d1: D1Database, key: string): Promise<unknown> {
  const row = await d1.prepare("SELECT value FROM settings WHERE key = ?").bind(key).first<{ value: string }>();
  return row ? (JSON.parse(row.value) as unknown) : null;
}

// ── reading ──────────────────────────────────────────────────────────────

export interface AuditFilter {
  /** Exclusive: events with a greater id (0: from the first). */
  after: number;
  limit: number;
  actor: string | null;
  action: AuditAction | null;
  target: string | null;
}

const parsed = (text: string | null): unknown => (text === null ? null : (JSON.parse(text) as unknown));

export function auditView(row: typeof auditEvents.$inferSelect) {
  return {
    id: row.id,
    at: new Date(row.atMs).toISOString(),
    actor: row.actor,
    action: row.action,
    target: row.target,
    before: parsed(row.before),
    after: parsed(row.after),
    request_id: row.requestId,
  };
}
export type AuditView = ReturnType<typeof auditView>;

/**
 * Events in id order after `after`, filtered by exact actor, action and
 * target (each has an (x, id) index). At most `limit` events, fewer when the
 * snapshots reach AUDIT_PAGE_MAX_BYTES; `nextAfter` is the last id served
 * when more may follow, else null.
 */
export async function listAudit(
  d1: D1Database,
  q: AuditFilter,
): Promise<{ events: AuditView[]; nextAfter: number | null }> {
  const where = [gt(auditEvents.id, q.after)];
  if (q.actor !== null) where.push(eq(auditEvents.actor, q.actor));
  if (q.action !== null) where.push(eq(auditEvents.action, q.action));
  if (q.target !== null) where.push(eq(auditEvents.target, q.target));
  const rows = await drizzle(d1)
    .select()
    .from(auditEvents)
    .where(and(...where))
    .orderBy(asc(auditEvents.id))
    .limit(q.limit + 1);
  const events: AuditView[] = [];
  let bytes = 0;
  for (const row of rows.slice(0, q.limit)) {
    bytes += utf8Bytes(row.before ?? "") + utf8Bytes(row.after ?? "");
    if (events.length > 0 && bytes > AUDIT_PAGE_MAX_BYTES) break;
    events.push(auditView(row));
  }
  const more = events.length < rows.length;
  const last = events[events.length - 1];
  return { events, nextAfter: more && last ? last.id : null };
}
