/**
 * Four eyes, the asking side: the approval_threshold schemas, the check a
 * route calls before it runs a grant, transfer or bulk grant, and the
 * approval as served. Imports no route module, so grants, bulk and
 * transfers can call it (src/api/approvals.ts holds the routes that decide).
 */
import { z } from "@hono/zod-openapi";
import { ledgerStub } from "../account/stub";
import type { Idempotency } from "../account/types";
import {
  APPROVAL_STATUSES,
  type ApprovalRow,
  approvalForRequest,
  createApproval,
  type NewApproval,
} from "../db/approvals";
import { getBulk } from "../db/bulk";
import { loadGlobalPolicy } from "../db/settings";
import { ApiError } from "../errors";
import { type GrantCommand, type Policy, planGrant } from "../ledger";
import {
  APPROVAL_REQUESTS,
  type ApprovalRequest,
  type ApprovalThresholds,
  approvalAmount,
  needsApproval,
  THRESHOLD_OF,
} from "../ledger/approval";
import { log } from "../log";
import { recordChange } from "./audit";
import type { BulkRun } from "./bulk";
import type { AppContext } from "./context";
import type { GrantRun } from "./grants";

/** A threshold: the largest amount a request of its kind moves without approval. */
const Threshold = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** The policy member, as served. */
export const ApprovalThresholdSchema = z
  .strictObject({ grant: Threshold.optional(), transfer: Threshold.optional(), bulk: Threshold.optional() })
  .openapi("ApprovalThreshold", {
    description: "Per kind, the largest amount that runs without a second key's approval; absent: no approval needed",
  });

/** The member in a PUT: a number sets the kind's threshold, null drops it, a kind left out is kept. */
export const ApprovalThresholdPatch = z
  .strictObject({
    grant: Threshold.nullable().optional(),
    transfer: Threshold.nullable().optional(),
    bulk: Threshold.nullable().optional(),
  })
  .openapi("ApprovalThresholdPatch");

/**
 * An account's overrides: grant and transfer only. A bulk job spans up to
 * 10 000 accounts, so it is gated by the global `bulk` threshold alone.
 */
export const AccountApprovalThresholdPatch = ApprovalThresholdPatch.refine(
  (t) => t.bulk === undefined,
  "bulk is a global threshold only (PUT /v1/policy): a bulk job spans many accounts",
).openapi("AccountApprovalThresholdPatch");

// ── asking ───────────────────────────────────────────────────────────────

/** A request as it was sent: what an approver reads and what approving runs. */
export interface StoredRequest {
  /** POST, but PUT for a top-up rule (PUT /v1/accounts/{id}/top-up). */
  method: "POST" | "PUT";
  path: string;
  /** The path's account (grants, recurring grants, top-up rules). */
  account_id?: string;
  /** The request's own idempotency id (from the body, or its Idempotency-Key header). */
  idempotency_key: string;
  body: Record<string, unknown>;
}

/** What a route tells askApproval about the request it is about to run. */
export interface AskSpec {
  kind: ApprovalRequest;
  /** The id's scope: the account for a grant; "" for the global transfer_id and bulk_id. */
  scope: string;
  idem: Idempotency;
  path: string;
  /** The request's method (default POST). */
  method?: "POST" | "PUT";
  /** The account whose effective policy holds the threshold; null: the global policy's. */
  policyAccount: string | null;
  /** When `policyAccount` does not exist: read the global threshold (a grant creates it), or let the run refuse. */
  whenMissing: "global" | "run";
  unit: string;
  /** The request's amount; for bulk, each account's, with `accounts` the number of accounts. */
  amount: number;
  accounts: number;
  /** True when this request already ran (a threshold set since): its own idempotency answers the repeat. */
  ran: (env: Env) => Promise<boolean>;
  /** The request's own rules, checked before it is stored; throws ApiError. */
  check?: () => void;
}

/** `cmd`: the grant's command (grantCommand), checked against the ledger's rules before it is stored. */
export function grantAsk(req: GrantRun, cmd: GrantCommand): AskSpec {
  const { accountId, input, idem } = req;
  return {
    kind: "grant",
    scope: accountId,
    idem,
    path: `/v1/accounts/${accountId}/grants`,
    policyAccount: accountId,
    whenMissing: "global",
    unit: input.unit,
    amount: input.amount,
    accounts: 1,
    ran: async (env) => (await ledgerStub(env, accountId).getGrant(accountId, idem.key)).ok,
    check: () => {
      const planned = planGrant([], cmd, 1, Date.now());
      if (!planned.ok) {
        const e = planned.error;
        throw new ApiError(e.code, "detail" in e ? e.detail : "the grant breaks the ledger's rules");
      }
    },
  };
}

export function bulkAsk(req: BulkRun): AskSpec {
  return {
    kind: "bulk",
    scope: "",
    idem: req.idem,
    path: "/v1/grants/bulk",
    policyAccount: null,
    whenMissing: "global",
    unit: req.input.grant.unit,
    amount: req.input.grant.amount,
    accounts: req.input.account_ids.length,
    ran: async (env) => (await getBulk(env.DB, req.idem.key)) !== null,
  };
}

/** The thresholds that apply: the account's effective policy, or the global one. */
async function thresholdsFor(c: AppContext, spec: AskSpec): Promise<ApprovalThresholds | null> {
  const global = await loadGlobalPolicy(c.env.DB);
  const account = spec.policyAccount;
  if (account !== null) {
    const out = await ledgerStub(c.env, account).getPolicy(account, global);
    if (out.ok) return (out.body as unknown as Policy).approval_threshold ?? {};
    if (out.problem.code !== "account_not_found") throw new ApiError(out.problem.code, out.problem.detail);
    if (spec.whenMissing === "run") return null;
  }
  if (global === null) throw new ApiError("overloaded", "the global policy cannot be read right now; retry");
  return global.approval_threshold ?? {};
}

/** A request whose id an approval already holds: its pending approval again, or null to run it. */
function repeatAsk(c: AppContext, row: ApprovalRow, bodyHash: string): Response | null {
  if (row.body_hash !== bodyHash) {
    throw new ApiError("idempotency_conflict", `${row.request_key} was first sent with a different body`, {
      approval_id: row.approval_id,
    });
  }
  if (row.status === "approved") return null; // the request's own idempotency takes over
  if (row.status === "rejected") throw closed(row);
  c.header("idempotent-replayed", "true");
  return c.json(approvalView(row, false), 202);
}

/**
 * Four eyes, called by a route once its request is validated and permitted:
 * null when the request may run now; else the 202 pending answer (the request
 * stored, nothing moved). A repeat of a pending request answers the same
 * approval; once approved, the request runs and its own idempotency answers.
 */
export async function askApproval(c: AppContext, spec: AskSpec): Promise<Response | null> {
  const db = c.env.DB;
  // The threshold first: a request under it runs without another D1 query on its way.
  const thresholds = await thresholdsFor(c, spec);
  if (
    thresholds === null ||
    !needsApproval(thresholds, THRESHOLD_OF[spec.kind], approvalAmount(spec.amount, spec.accounts))
  ) {
    return null;
  }
  const found = await approvalForRequest(db, spec.kind, spec.scope, spec.idem.key).catch((e: unknown) => {
    // Fail closed: without the approvals table nobody can say whether this request already waits.
    log({ event: "approval.lookup_error", kind: spec.kind, error: e instanceof Error ? e.message : String(e) });
    throw new ApiError("overloaded", "approvals cannot be read right now; retry");
  });
  if (found) return repeatAsk(c, found, spec.idem.bodyHash);
  if (await spec.ran(c.env)) return null;
  spec.check?.();
  const caller = c.get("caller");
  const request: StoredRequest = {
    method: spec.method ?? "POST",
    path: spec.path,
    ...(spec.kind === "grant" || spec.kind === "recurring_grant" || spec.kind === "top_up"
      ? { account_id: spec.scope }
      : {}),
    idempotency_key: spec.idem.key,
    body: (c.get("body") ?? {}) as Record<string, unknown>,
  };
  const row: NewApproval = {
    approval_id: `apr_${crypto.randomUUID().replaceAll("-", "")}`,
    kind: spec.kind,
    scope: spec.scope,
    request_key: spec.idem.key,
    body_hash: spec.idem.bodyHash,
    account_id: spec.policyAccount,
    unit: spec.unit,
    amount: spec.amount,
    accounts: spec.accounts,
    request: JSON.stringify(request),
    asked_by: caller.actor,
    asker_key_id: caller.keyId,
    asker: JSON.stringify(caller),
    request_id: c.get("requestId"),
    created_at_ms: Date.now(),
  };
  const stored = await createApproval(db, row);
  // Another request with this id was stored first, between our read and our write.
  if (stored.approval_id !== row.approval_id) return repeatAsk(c, stored, spec.idem.bodyHash);
  const view = approvalView(stored, false);
  await recordChange(c, { action: "approval.requested", target: stored.approval_id, before: null, after: view });
  logDecision(c, "approval.requested", stored);
  return c.json(view, 202);
}

// ── views ────────────────────────────────────────────────────────────────

/** A bulk request listed (or answered at asking) shows at most this many of its account ids. */
export const APPROVAL_ACCOUNTS_SHOWN_MAX = 100;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** An approval as served; `full`: the whole request (GET one), else a bulk's account ids cut. */
export function approvalView(row: ApprovalRow, full: boolean) {
  const request = JSON.parse(row.request) as StoredRequest;
  const ids = request.body.account_ids;
  if (!full && Array.isArray(ids) && ids.length > APPROVAL_ACCOUNTS_SHOWN_MAX) {
    request.body = { ...request.body, account_ids: ids.slice(0, APPROVAL_ACCOUNTS_SHOWN_MAX) };
    Object.assign(request, { account_ids_more: true });
  }
  return {
    approval_id: row.approval_id,
    kind: row.kind,
    status: row.status,
    request,
    unit: row.unit,
    amount: row.amount,
    accounts: row.accounts,
    asked_by: row.asked_by,
    created_at: new Date(row.created_at_ms).toISOString(),
    request_id: row.request_id,
    decided_by: row.decided_by,
    decided_at: iso(row.decided_at_ms),
    reason: row.reason,
    result:
      row.result_status === null
        ? null
        : { status: row.result_status, code: row.result_code, ran_at: iso(row.ran_at_ms) },
  };
}

export const closed = (row: ApprovalRow) =>
  new ApiError("approval_closed", `approval ${row.approval_id} was already ${row.status}`, {
    approval_id: row.approval_id,
    approval_status: row.status,
  });

export function logDecision(c: AppContext, event: string, row: ApprovalRow): void {
  log({
    event,
    request_id: c.get("requestId"),
    approval_id: row.approval_id,
    kind: row.kind,
    request_key: row.request_key,
    amount: row.amount,
    accounts: row.accounts,
    actor: c.get("caller").actor,
    asked_by: row.asked_by,
  });
}

export const ApprovalSchema = z
  .object({
    approval_id: z.string(),
    kind: z.enum(APPROVAL_REQUESTS),
    status: z.enum(APPROVAL_STATUSES),
    request: z
      .object({
        method: z.enum(["POST", "PUT"]),
        path: z.string(),
        account_id: z.string().optional(),
        idempotency_key: z.string(),
        body: z.record(z.string(), z.unknown()),
        account_ids_more: z
          .boolean()
          .optional()
          .openapi({
            description: `true when body.account_ids was cut to ${APPROVAL_ACCOUNTS_SHOWN_MAX} (GET the approval for all)`,
          }),
      })
      .openapi({ description: "The request as it was sent; approving runs exactly this" }),
    unit: z.string(),
    amount: z.number().int().openapi({ description: "The request's amount (each account's, for bulk)" }),
    accounts: z.number().int().openapi({ description: "Accounts it goes to (1 but for bulk)" }),
    asked_by: z.string(),
    created_at: z.string(),
    request_id: z.string(),
    decided_by: z.string().nullable(),
    decided_at: z.string().nullable(),
    reason: z.string().nullable(),
    result: z
      .object({ status: z.number().int(), code: z.string().nullable(), ran_at: z.string().nullable() })
      .nullable()
      .openapi({ description: "The latest run of the approved request: its status, and its code when refused" }),
  })
  .openapi("Approval");

/** The 202 a request above its threshold answers (an Approval, status pending). */
export const ApprovalPendingSchema = ApprovalSchema.openapi("ApprovalPending", {
  description: "Stored and pending: nothing moved until another admin or finance key approves",
});

// ── transfers ────────────────────────────────────────────────────────────

/** What the transfer route tells askApproval (its body as validated). */
export interface TransferAsk {
  fromAccount: string;
  unit: string;
  amount: number;
  idem: Idempotency;
}

/** A transfer's threshold is the source account's (it is the one giving credits away). */
export function transferAsk(req: TransferAsk): AskSpec {
  return {
    kind: "transfer",
    scope: "",
    idem: req.idem,
    path: "/v1/transfers",
    policyAccount: req.fromAccount,
    whenMissing: "run",
    unit: req.unit,
    amount: req.amount,
    accounts: 1,
    // transfer_id is idempotent on its own: approving a transfer that already ran answers its first result.
    ran: async () => false,
  };
}
