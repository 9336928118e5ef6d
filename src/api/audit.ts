/** /v1/audit: the append-only log of every change that is not a ledger entry; and how routes record one. */
import { z } from "@hono/zod-openapi";
import {
  AUDIT_ACTIONS,
  AUDIT_PAGE_MAX,
  type AuditBy,
  type AuditChange,
  DEFAULT_AUDIT_LIMIT,
  listAudit,
  snapshot,
  writeAudit,
} from "../db/audit";
import { log } from "../log";
import { type AppContext, requireRole, validQuery } from "./context";
import { resource, route } from "./route";
import { Id, json, Limit, problems } from "./schemas";
import { requireUnscoped } from "./scope";

/** Who is making this request's change, as its audit row names them. */
export function auditBy(c: AppContext): AuditBy {
  return { actor: c.get("caller").actor, requestId: c.get("requestId") };
}

/**
 * Records a change that has already been made (in an account's Durable
 * Object, the source of truth, or by a D1 write that could not share the
 * audit row's batch). A failure to write the row is logged as `audit.error`
 * with the whole row, never thrown: the change stands, so its caller must
 * still hear that it succeeded.
 */
export async function recordChange(c: AppContext, change: AuditChange): Promise<void> {
  await recordChangeBy(c.env.DB, auditBy(c), change);
}

/** recordChange without an HTTP context: an approved request's change is recorded on its asker's name. */
export async function recordChangeBy(db: D1Database, by: AuditBy, change: AuditChange): Promise<void> {
  const event = { ...by, ...change };
  try {
    await writeAudit(db, event);
  } catch (e) {
    log({
      event: "audit.error",
      request_id: event.requestId,
      actor: event.actor,
      action: event.action,
      target: event.target,
      // Redacted and capped like the row itself, so the line can be replayed by hand.
      before: snapshot(event.before),
      after: snapshot(event.after),
      error: e instanceof Error ? e.message : String(e),
    });
  }
}

const AuditQuery = z.strictObject({
  after: z
    .string()
    .regex(/^\d{1,15}$/, "an event id (a non-negative integer)")
    .transform(Number)
    .optional()
    .openapi({ description: "Exclusive: the next_after of the previous page" }),
  limit: Limit(AUDIT_PAGE_MAX, DEFAULT_AUDIT_LIMIT),
  actor: Id.optional().openapi({ description: 'Exact actor, e.g. "key_…:admin" or "admin-token:admin"' }),
  action: z.enum(AUDIT_ACTIONS).optional(),
  target: Id.optional().openapi({
    description: "Exact target: an account, key or webhook id, `policy`, `alert_settings`",
  }),
});

const Snapshot = z
  .record(z.string(), z.unknown())
  .nullable()
  .openapi({ description: "The resource as JSON (secrets removed; over 8 KB, cut and marked `_truncated`)" });

const AuditEventSchema = z
  .object({
    id: z.number().int(),
    at: z.string(),
    actor: z.string(),
    action: z.string().openapi({ description: "<resource>.<verb>" }),
    target: z.string(),
    before: Snapshot,
    after: Snapshot,
    request_id: z.string(),
  })
  .openapi("AuditEvent");

export const audit = resource();

route(
  audit,
  {
    method: "get",
    path: "/v1/audit",
    summary: "The audit log, oldest first: API keys, policies, accounts, alert settings, webhooks",
    request: { query: AuditQuery },
    responses: {
      200: json(
        z.object({ events: z.array(AuditEventSchema), next_after: z.number().int().nullable() }).openapi("AuditPage"),
      ),
      ...problems(400, 401, 403),
    },
  },
  async (c) => {
    requireRole(c, ["admin", "finance"]);
    requireUnscoped(c);
    const q = validQuery(c, AuditQuery);
    const page = await listAudit(c.env.DB, {
      after: q.after ?? 0,
      limit: q.limit,
      actor: q.actor ?? null,
      action: q.action ?? null,
      target: q.target ?? null,
    });
    return c.json({ events: page.events, next_after: page.nextAfter });
  },
);
