/**
 * /v1/grants/bulk: one grant to each of up to 10 000 accounts, done by the
 * bulk queue's consumer in chunks (src/bulk/), with its progress in D1.
 * The grant body is validated once, with the single grant's schema and rules,
 * and checked against the caller's role and max_grant_amount; the job keeps
 * that authority and the consumer applies it again to every grant.
 */
import { z } from "@hono/zod-openapi";
import type { Idempotency, Outcome } from "../account/types";
import { GRANTERS, grantRefusal } from "../bulk/permission";
import { BULK_MAX_ACCOUNTS, type BulkChunkMessage, enqueueChunks } from "../bulk/queue";
import type { BulkGrantSpec } from "../bulk/spec";
import {
  type BulkProgress,
  type BulkRow,
  bulkProgress,
  createBulk,
  getBulk,
  pendingAccounts,
  touchPending,
} from "../db/bulk";
import { ApiError } from "../errors";
import { type GrantCommand, planGrant } from "../ledger";
import { ApprovalPendingSchema, askApproval, bulkAsk } from "./approval-gate";
import { type Caller, idempotencyOf, pathId, READERS, requireRole, send, validBody } from "./context";
import { checkGrantPermission, type GrantInput, GrantInputSchema, grantCommand } from "./grants";
import { resource, route } from "./route";
import { Id, json, problems } from "./schemas";
import { requireAllInScope, requireOwnRecord } from "./scope";

/**
 * A repeated POST of a running job enqueues its pending accounts again only
 * when no item has changed for this long: its messages may have been lost
 * (the first POST failed after storing the job), and a client that polls by
 * POST does not multiply the work.
 */
export const BULK_STALL_MS = 60_000;

// Without awaiting_payment: a bulk grant is issued at once, so the field is refused as unknown (400 invalid_request).
const BulkGrantTemplate = GrantInputSchema.omit({ grant_id: true, awaiting_payment: true }).openapi(
  "BulkGrantTemplate",
  { description: "A grant body without grant_id (every account's lot is named by the bulk_id) or awaiting_payment" },
);

export const BulkInput = z
  .strictObject({
    bulk_id: Id.optional().openapi({
      description: "The job's id (global; or send Idempotency-Key); each account's lot gets it as grant_id",
    }),
    account_ids: z
      .array(Id)
      .min(1)
      .max(BULK_MAX_ACCOUNTS)
      .superRefine((ids, ctx) => {
        const seen = new Set<string>();
        for (const id of ids) {
          if (seen.has(id)) {
            ctx.addIssue({ code: "custom", message: `account ${id} is listed more than once` });
            return;
          }
          seen.add(id);
        }
      })
      .openapi({ description: "1 to 10 000 distinct account ids; unknown accounts are created" }),
    grant: BulkGrantTemplate,
  })
  .openapi("BulkGrantInput");

const BulkStatus = z
  .object({
    bulk_id: z.string(),
    status: z.enum(["running", "completed"]).openapi({ description: "completed: no account is pending" }),
    total: z.number().int(),
    granted: z.number().int().openapi({ description: "Accounts this job's grant was written to" }),
    skipped: z.number().int().openapi({
      description: "Accounts that already held this grant (the same grant_id and body), so nothing was written",
    }),
    failed: z.number().int().openapi({ description: "Accounts whose grant was refused; see errors" }),
    pending: z.number().int(),
    errors: z
      .array(z.object({ account_id: z.string(), code: z.string() }))
      .openapi({ description: "The first 100 refused accounts, by account_id" }),
    errors_more: z.boolean().openapi({ description: "true when more accounts failed than `errors` lists" }),
    created_at: z.string(),
  })
  .openapi("BulkGrantStatus");

function statusView(bulk: BulkRow, p: BulkProgress): z.infer<typeof BulkStatus> {
  return {
    bulk_id: bulk.bulk_id,
    status: p.counts.pending > 0 ? "running" : "completed",
    total: bulk.total,
    granted: p.counts.granted,
    skipped: p.counts.skipped,
    failed: p.counts.failed,
    pending: p.counts.pending,
    errors: p.errors,
    errors_more: p.errorsMore,
    created_at: new Date(bulk.created_at_ms).toISOString(),
  };
}

const bulkQueue = (env: Env): Queue<BulkChunkMessage> => env.BULK_QUEUE;

/** The same job again: its status; its pending accounts enqueued again when it has stalled. */
async function repeat(env: Env, bulk: BulkRow, bodyHash: string): Promise<Outcome> {
  if (bulk.body_hash !== bodyHash) {
    throw new ApiError("idempotency_conflict", `bulk ${bulk.bulk_id} was first sent with a different body`);
  }
  const db = env.DB;
  const progress = await bulkProgress(db, bulk.bulk_id);
  if (progress.counts.pending > 0 && Date.now() - progress.lastChangeMs >= BULK_STALL_MS) {
    // Safe however often it happens: the consumer grants only pending accounts, and each grant is idempotent.
    await enqueueChunks(bulkQueue(env), bulk.bulk_id, await pendingAccounts(db, bulk.bulk_id));
    await touchPending(db, bulk.bulk_id, Date.now());
  }
  return { ok: true, status: 202, body: statusView(bulk, progress), replayed: true };
}

/**
 * The command every account's grant carries, once checked against the single
 * grant's rules (expiry after start and now, a reason on compensatory, …),
 * once for all accounts. Throws ApiError.
 */
export function bulkCommand(bulkId: string, grant: Omit<GrantInput, "grant_id">): Omit<GrantCommand, "grantId"> {
  const { grantId: _named, ...command } = grantCommand(bulkId, grant);
  const planned = planGrant([], { ...command, grantId: bulkId }, 1, Date.now());
  if (!planned.ok) {
    const e = planned.error;
    throw new ApiError(e.code, "detail" in e ? e.detail : "the grant breaks the ledger's rules");
  }
  return command;
}

/** A validated bulk grant: what the route runs, and what an approval stores and runs later. */
export interface BulkRun {
  input: z.infer<typeof BulkInput>;
  idem: Idempotency;
  /** The `grant` member of the body as sent (kept with the job; see src/bulk/spec.ts). */
  sent: Record<string, unknown>;
}

/**
 * Stores and enqueues a validated bulk grant on `caller`'s authority (kept
 * with the job; the consumer checks it per grant), or answers the job this
 * id already names. The route's work without an HTTP context, so an
 * approved request (src/api/approvals.ts) runs the same. Throws ApiError.
 */
export async function runBulk(env: Env, caller: Caller, req: BulkRun, requestId: string): Promise<Outcome> {
  const { input, idem } = req;
  const refusal = grantRefusal(caller, input.grant.type, input.grant.amount);
  if (refusal) return { ok: false, problem: refusal };
  const command = bulkCommand(idem.key, input.grant);
  const db = env.DB;
  const existing = await getBulk(db, idem.key);
  if (existing) return repeat(env, existing, idem.bodyHash);
  const spec: BulkGrantSpec = { body: req.sent, command };
  const row: BulkRow = {
    bulk_id: idem.key,
    body_hash: idem.bodyHash,
    grant: JSON.stringify(spec),
    actor: caller.actor,
    role: caller.role,
    max_grant_amount: caller.maxGrantAmount,
    total: input.account_ids.length,
    created_at_ms: Date.now(),
    request_id: requestId,
  };
  const stored = await createBulk(db, row, input.account_ids);
  // Another request stored this id first, between our read and our write.
  if (stored.request_id !== row.request_id || stored.created_at_ms !== row.created_at_ms) {
    return repeat(env, stored, idem.bodyHash);
  }
  // Should this fail, the job is stored with every account pending: the same POST, BULK_STALL_MS later, enqueues them.
  await enqueueChunks(bulkQueue(env), row.bulk_id, input.account_ids);
  return { ok: true, status: 202, body: statusView(stored, await bulkProgress(db, row.bulk_id)), replayed: false };
}

export const bulk = resource();

route(
  bulk,
  {
    method: "post",
    path: "/v1/grants/bulk",
    summary: "Grant the same lot to up to 10 000 accounts (created when unknown), once each, on a queue",
    request: { body: { content: { "application/json": { schema: BulkInput } }, required: true } },
    responses: {
      202: json(
        z.union([BulkStatus, ApprovalPendingSchema]),
        "Accepted: the job runs on the queue (GET its status), or, above the approval threshold, waits for approval",
      ),
      ...problems(400, 401, 403, 409, 413, 415, 503),
    },
  },
  async (c) => {
    requireRole(c, GRANTERS);
    const input = validBody(c, BulkInput);
    await requireAllInScope(c, input.account_ids);
    checkGrantPermission(c, input.grant.type, input.grant.amount);
    const idem = idempotencyOf(c, input.bulk_id, "bulk_id");
    bulkCommand(idem.key, input.grant);
    const req: BulkRun = { input, idem, sent: (c.get("body") as { grant: Record<string, unknown> }).grant };
    // Above the approval threshold (the job's total): stored, answered 202 pending, nothing enqueued.
    const pending = await askApproval(c, bulkAsk(req));
    if (pending) return pending;
    return send(c, await runBulk(c.env, c.get("caller"), req, c.get("requestId")));
  },
);

route(
  bulk,
  {
    method: "get",
    path: "/v1/grants/bulk/{bulk_id}",
    summary: "A bulk grant's progress: counts by outcome and the first 100 refused accounts",
    request: { params: z.object({ bulk_id: Id.openapi({ param: { name: "bulk_id", in: "path" } }) }) },
    responses: { 200: json(BulkStatus), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    const bulkId = pathId(c, "bulk_id");
    const found = await getBulk(c.env.DB, bulkId);
    if (!found) throw new ApiError("not_found", `bulk ${bulkId} does not exist`);
    requireOwnRecord(c, found.actor, new ApiError("not_found", `bulk ${bulkId} does not exist`));
    return c.json(statusView(found, await bulkProgress(c.env.DB, bulkId)), 200);
  },
);
