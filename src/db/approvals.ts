/**
 * Approvals in D1 (migrations/0010_approvals.sql). Each state change is one
 * conditional UPDATE, so of two approvers (or an approver and a rejecter)
 * racing on the same pending row exactly one wins; the loser reads what won.
 */
import type { ApprovalRequest } from "../ledger/approval";

export const APPROVAL_STATUSES = ["pending", "approved", "rejected"] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];

/** A page of GET /v1/approvals: `limit` 1 … APPROVALS_PAGE_MAX. */
export const APPROVALS_PAGE_MAX = 100;
export const DEFAULT_APPROVALS_LIMIT = 50;

export interface ApprovalRow {
  approval_id: string;
  kind: ApprovalRequest;
  scope: string;
  request_key: string;
  body_hash: string;
  account_id: string | null;
  unit: string;
  amount: number;
  accounts: number;
  /** JSON of StoredRequest (src/api/approvals.ts). */
  request: string;
  status: ApprovalStatus;
  asked_by: string;
  asker_key_id: string;
  /** JSON of the asker's Caller. */
  asker: string;
  request_id: string;
  created_at_ms: number;
  decided_by: string | null;
  decided_at_ms: number | null;
  reason: string | null;
  result_status: number | null;
  result_code: string | null;
  ran_at_ms: number | null;
}

export type NewApproval = Omit<
  ApprovalRow,
  "status" | "decided_by" | "decided_at_ms" | "reason" | "result_status" | "result_code" | "ran_at_ms"
>;

export async function getApproval(db: D1Database, approvalId: string): Promise<ApprovalRow | null> {
  return db.prepare("SELECT * FROM approvals WHERE approval_id = ?").bind(approvalId).first<ApprovalRow>();
}

/** The approval that holds this request id, if any. */
export async function approvalForRequest(
  db: D1Database,
  kind: ApprovalRequest,
  scope: string,
  requestKey: string,
): Promise<ApprovalRow | null> {
  return db
    .prepare("SELECT * FROM approvals WHERE kind = ? AND scope = ? AND request_key = ?")
    .bind(kind, scope, requestKey)
    .first<ApprovalRow>();
}

/**
 * Stores a pending approval unless its request id is taken; returns the row
 * that holds the id (this one, or the one stored first by a racing request).
 */
export async function createApproval(db: D1Database, row: NewApproval): Promise<ApprovalRow> {
  await db
    .prepare(
      `INSERT INTO approvals (approval_id, kind, scope, request_key, body_hash, account_id, unit, amount, accounts,
         request, status, asked_by, asker_key_id, asker, request_id, created_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)
       ON CONFLICT (kind, scope, request_key) DO NOTHING`,
    )
    .bind(
      row.approval_id,
      row.kind,
      row.scope,
      row.request_key,
      row.body_hash,
      row.account_id,
      row.unit,
      row.amount,
      row.accounts,
      row.request,
      row.asked_by,
      row.asker_key_id,
      row.asker,
      row.request_id,
      row.created_at_ms,
    )
    .run();
  const stored = await approvalForRequest(db, row.kind, row.scope, row.request_key);
  if (!stored) throw new Error(`approval ${row.approval_id} was not stored`);
  return stored;
}

export interface Decision {
  status: Exclude<ApprovalStatus, "pending">;
  by: string;
  atMs: number;
  reason: string | null;
}

/** pending → approved | rejected, only if still pending. True when this call made the change. */
export async function decide(db: D1Database, approvalId: string, d: Decision): Promise<boolean> {
  const res = await db
    .prepare(
      `UPDATE approvals SET status = ?, decided_by = ?, decided_at_ms = ?, reason = ?
       WHERE approval_id = ? AND status = 'pending'`,
    )
    .bind(d.status, d.by, d.atMs, d.reason, approvalId)
    .run();
  return res.meta.changes === 1;
}

/** What the latest run of an approved request answered (its status; the error code when refused). */
export async function recordRun(
  db: D1Database,
  approvalId: string,
  status: number,
  code: string | null,
  atMs: number,
): Promise<void> {
  await db
    .prepare(
      `UPDATE approvals SET result_status = ?, result_code = ?, ran_at_ms = ?
       WHERE approval_id = ? AND status = 'approved'`,
    )
    .bind(status, code, atMs, approvalId)
    .run();
}

/**
 * Whether the API key that asked has been revoked (or no longer exists).
 * The bootstrap admin token is never revoked.
 */
export async function askerRevoked(db: D1Database, keyId: string): Promise<boolean> {
  if (keyId === "admin-token") return false;
  const row = await db
    .prepare("SELECT revoked_at_ms FROM api_keys WHERE id = ?")
    .bind(keyId)
    .first<{ revoked_at_ms: number | null }>();
  return row === null || row.revoked_at_ms !== null;
}

export interface ApprovalsQuery {
  status: ApprovalStatus | null;
  /** Exclusive position (created ms, approval id) of the previous page's last row. */
  after: { atMs: number; id: string } | null;
  limit: number;
}

/** Oldest first (a queue of work), at most `limit` (≤ APPROVALS_PAGE_MAX) rows; `more` when others follow. */
export async function listApprovals(
  db: D1Database,
  q: ApprovalsQuery,
): Promise<{ rows: ApprovalRow[]; more: boolean }> {
  const limit = Math.min(q.limit, APPROVALS_PAGE_MAX);
  const where: string[] = [];
  const binds: (string | number)[] = [];
  if (q.status !== null) {
    where.push("status = ?");
    binds.push(q.status);
  }
  if (q.after !== null) {
    where.push("(created_at_ms > ? OR (created_at_ms = ? AND approval_id > ?))");
    binds.push(q.after.atMs, q.after.atMs, q.after.id);
  }
  const clause = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
  const { results } = await db
    .prepare(`SELECT * FROM approvals ${clause} ORDER BY created_at_ms, approval_id LIMIT ?`)
    .bind(...binds, limit + 1)
    .all<ApprovalRow>();
  return { rows: results.slice(0, limit), more: results.length > limit };
}
