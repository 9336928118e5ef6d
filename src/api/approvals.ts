/** /v1/approvals: approve, reject and read requests held by four eyes (src/api/approval-gate.ts asks). */
import { z } from "@hono/zod-openapi";
import type { Json, Outcome } from "../account/types";
import {
  APPROVAL_STATUSES,
  APPROVALS_PAGE_MAX,
  type ApprovalRow,
  askerRevoked,
  DEFAULT_APPROVALS_LIMIT,
  decide,
  getApproval,
  listApprovals,
  recordRun,
} from "../db/approvals";
import { transferLimitOf } from "../db/transfers";
import { ApiError, statusOf } from "../errors";
import type { Role } from "../roles";
import { isProblem, runTransfer, type TransferInput } from "../transfers/run";
import { ApprovalSchema, approvalView, closed, logDecision, type StoredRequest } from "./approval-gate";
import { recordChange } from "./audit";
import { BulkInput, runBulk } from "./bulk";
import {
  type AppContext,
  type Caller,
  pathId,
  READERS,
  requireRole,
  send,
  validate,
  validBody,
  validQuery,
} from "./context";
import { GrantInputSchema, runGrant } from "./grants";
import { RecurringInputSchema, runRecurringGrant } from "./recurring";
import { resource, route } from "./route";
import { Id, json, Limit, problems, ShortText, TimeIdCursor, timeIdCursor } from "./schemas";
import { requireOwnRecord, requireUnscoped } from "./scope";
import { askedRevision, runTopUp, TopUpInputSchema } from "./topup";
import { TransferInputSchema } from "./transfers";

// ── deciding ─────────────────────────────────────────────────────────────

/** Who may approve or reject (never the key that asked, for approving). */
const DECIDERS = ["admin", "finance"] as const satisfies readonly Role[];

const ApprovalIdParam = z.object({ approval_id: Id.openapi({ param: { name: "approval_id", in: "path" } }) });
const ApproveInput = z.strictObject({ note: ShortText.optional() }).openapi("ApproveInput");
const RejectInput = z.strictObject({ reason: ShortText }).openapi("RejectInput");

async function mustGet(c: AppContext, approvalId: string): Promise<ApprovalRow> {
  const row = await getApproval(c.env.DB, approvalId);
  if (!row) throw new ApiError("not_found", `approval ${approvalId} does not exist`);
  return row;
}

/**
 * Runs an approved request exactly as it was asked: its body as sent, its own
 * idempotency id and body hash, on the asker's stored authority. Refusals are
 * values, so the approval records what the run answered.
 */
async function runApproved(env: Env, row: ApprovalRow, requestId: string): Promise<Outcome> {
  const asker = JSON.parse(row.asker) as Caller;
  const req = JSON.parse(row.request) as StoredRequest;
  const idem = { key: row.request_key, bodyHash: row.body_hash };
  try {
    switch (row.kind) {
      case "grant": {
        const input = validate(GrantInputSchema, req.body, "body");
        return await runGrant(env, asker, { accountId: row.scope, input, idem }, requestId);
      }
      case "bulk": {
        const input = validate(BulkInput, req.body, "body");
        const sent = req.body.grant as Record<string, unknown>;
        return await runBulk(env, asker, { input, idem, sent }, requestId);
      }
      case "transfer":
        return await runTransferRequest(env, asker, req, requestId);
      case "recurring_grant": {
        const body = validate(RecurringInputSchema, req.body, "body");
        return await runRecurringGrant(env, asker, { accountId: row.scope, body, idem }, requestId);
      }
      case "top_up": {
        const body = validate(TopUpInputSchema, req.body, "body");
        const expectRevision = askedRevision(row.request_key);
        return await runTopUp(env, asker, { accountId: row.scope, body, expectRevision }, requestId);
      }
    }
  } catch (e) {
    if (e instanceof ApiError) return { ok: false, problem: e.problem };
    throw e;
  }
}

export const approvals = resource();

route(
  approvals,
  {
    method: "post",
    path: "/v1/approvals/{approval_id}/approve",
    summary: "Approve a pending request (admin, finance; not the key that asked): it runs and its result is answered",
    request: {
      params: ApprovalIdParam,
      body: { content: { "application/json": { schema: ApproveInput } } },
    },
    responses: {
      200: { description: "The approved request's own answer, when it answers 200" },
      201: { description: "The approved request's own answer: a transfer's or a grant's 201" },
      202: { description: "The approved request's own answer: a bulk grant's 202" },
      ...problems(400, 401, 402, 403, 404, 409, 413, 415, 503),
    },
  },
  async (c) => {
    const caller = requireRole(c, DECIDERS);
    requireUnscoped(c);
    const approvalId = pathId(c, "approval_id");
    const input = validBody(c, ApproveInput);
    const db = c.env.DB;
    let row = await mustGet(c, approvalId);
    if (row.asker_key_id === caller.keyId) {
      throw new ApiError("forbidden", "the key that asked may not approve its own request (four eyes)");
    }
    if (row.status === "rejected") throw closed(row);
    if (row.status === "pending") {
      if (await askerRevoked(db, row.asker_key_id)) {
        throw new ApiError(
          "forbidden",
          "the key that asked has been revoked since, so its request can only be rejected",
        );
      }
      const before = approvalView(row, false);
      // The claim: of two approvers at once, one changes the row; both then run the request, which runs once.
      const won = await decide(db, approvalId, {
        status: "approved",
        by: caller.actor,
        atMs: Date.now(),
        reason: input.note ?? null,
      });
      row = await mustGet(c, approvalId);
      if (won) {
        await recordChange(c, {
          action: "approval.approved",
          target: approvalId,
          before,
          after: approvalView(row, false),
          once: true,
        });
        logDecision(c, "approval.approved", row);
      } else if (row.status === "rejected") {
        throw closed(row);
      }
    }
    // Approved (now or before): run it. Its own idempotency makes a second run answer the first.
    if (row.account_id !== null) c.set("accountId", row.account_id);
    const outcome = await runApproved(c.env, row, c.get("requestId"));
    const status = outcome.ok ? outcome.status : statusOf(outcome.problem.code);
    await recordRun(db, approvalId, status, outcome.ok ? null : outcome.problem.code, Date.now());
    return send(c, outcome);
  },
);

route(
  approvals,
  {
    method: "post",
    path: "/v1/approvals/{approval_id}/reject",
    summary: "Reject a pending request (admin, finance): it never runs; rejecting again answers the same",
    request: {
      params: ApprovalIdParam,
      body: { content: { "application/json": { schema: RejectInput } }, required: true },
    },
    responses: { 200: json(ApprovalSchema), ...problems(400, 401, 403, 404, 409, 413, 415) },
  },
  async (c) => {
    const caller = requireRole(c, DECIDERS);
    requireUnscoped(c);
    const approvalId = pathId(c, "approval_id");
    const input = validBody(c, RejectInput);
    const db = c.env.DB;
    let row = await mustGet(c, approvalId);
    if (row.status === "pending") {
      const before = approvalView(row, false);
      const won = await decide(db, approvalId, {
        status: "rejected",
        by: caller.actor,
        atMs: Date.now(),
        reason: input.reason,
      });
      row = await mustGet(c, approvalId);
      if (won) {
        await recordChange(c, {
          action: "approval.rejected",
          target: approvalId,
          before,
          after: approvalView(row, false),
          once: true,
        });
        logDecision(c, "approval.rejected", row);
        return c.json(approvalView(row, false), 200);
      }
    }
    if (row.status === "approved") throw closed(row);
    c.header("idempotent-replayed", "true");
    return c.json(approvalView(row, false), 200);
  },
);

route(
  approvals,
  {
    method: "get",
    path: "/v1/approvals/{approval_id}",
    summary: "One approval, with its whole request",
    request: { params: ApprovalIdParam },
    responses: { 200: json(ApprovalSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    const approvalId = pathId(c, "approval_id");
    const row = await mustGet(c, approvalId);
    // An account-scoped key sees only the approvals it asked for.
    requireOwnRecord(c, row.asked_by, new ApiError("not_found", `approval ${approvalId} does not exist`));
    return c.json(approvalView(row, true), 200);
  },
);

const ListQuery = z.strictObject({
  status: z.enum(APPROVAL_STATUSES).optional(),
  cursor: TimeIdCursor.optional().openapi({ description: "next_cursor of the previous page" }),
  limit: Limit(APPROVALS_PAGE_MAX, DEFAULT_APPROVALS_LIMIT),
});

route(
  approvals,
  {
    method: "get",
    path: "/v1/approvals",
    summary: "Approvals oldest first, optionally by status (e.g. the pending queue), a page at a time",
    request: { query: ListQuery },
    responses: {
      200: json(z.object({ approvals: z.array(ApprovalSchema), next_cursor: z.string().nullable() })),
      ...problems(400, 401, 403),
    },
  },
  async (c) => {
    requireRole(c, READERS);
    requireUnscoped(c);
    const q = validQuery(c, ListQuery);
    const page = await listApprovals(c.env.DB, { status: q.status ?? null, after: q.cursor ?? null, limit: q.limit });
    const last = page.rows[page.rows.length - 1];
    return c.json({
      approvals: page.rows.map((r) => approvalView(r, false)),
      next_cursor: timeIdCursor(page.more, last && { atMs: last.created_at_ms, id: last.approval_id }),
    });
  },
);

/**
 * Runs a stored transfer exactly as asked (src/transfers/run.ts), on the
 * asker's role and its key's max_transfer_amount; idempotent by transfer_id.
 */
async function runTransferRequest(env: Env, asker: Caller, req: StoredRequest, requestId: string): Promise<Outcome> {
  const body = validate(TransferInputSchema, req.body, "body");
  const input: TransferInput = {
    transfer_id: req.idempotency_key,
    from_account: body.from_account,
    to_account: body.to_account,
    amount: body.amount,
    unit: body.unit,
    reason: body.reason ?? null,
  };
  const maxTransferAmount = asker.keyId === "admin-token" ? null : await transferLimitOf(env.DB, asker.keyId);
  const out = await runTransfer(env, { actor: asker.actor, role: asker.role, maxTransferAmount }, input, requestId);
  if (isProblem(out)) return { ok: false, problem: out };
  return {
    ok: true,
    status: out.status,
    body: out.body as Json,
    replayed: out.replayed,
    ...(out.replayed ? {} : { write: { op: "transfer", entries: 0, head_seq: 0 } }),
  };
}
