/**
 * D1 table of four eyes (migrations/0010_approvals.sql): one row per request
 * that waited for a second key. The request is stored as it was sent, with its
 * own idempotency id, and the asker's authority; approving replays exactly
 * that request. A row changes only forward: pending → approved | rejected
 * (conditional UPDATEs), then the result of each run of an approved request.
 */
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const approvals = sqliteTable(
  "approvals",
  {
    approvalId: text("approval_id").primaryKey(),
    /** grant | transfer | bulk */
    kind: text("kind").notNull(),
    /** The request id's scope: the account for a grant; "" for transfer_id and bulk_id, which are global. */
    scope: text("scope").notNull(),
    /** The request's own idempotency id (grant_id, transfer_id, bulk_id or Idempotency-Key). */
    requestKey: text("request_key").notNull(),
    /** Canonical SHA-256 of the body as sent: a repeat with another body is a conflict. */
    bodyHash: text("body_hash").notNull(),
    /** The account the threshold was read from (grant: the account; transfer: from_account); null for bulk. */
    accountId: text("account_id"),
    unit: text("unit").notNull(),
    /** The request's amount (per account, for bulk) and how many accounts it goes to. */
    amount: integer("amount").notNull(),
    accounts: integer("accounts").notNull(),
    /** JSON {method, path, account_id?, body}: the request as sent, ≤ its route's body cap. */
    request: text("request").notNull(),
    status: text("status").notNull(),
    askedBy: text("asked_by").notNull(),
    askerKeyId: text("asker_key_id").notNull(),
    /** JSON of the asker's authority (role, max_grant_amount, account scope, …) at the time of asking. */
    asker: text("asker").notNull(),
    requestId: text("request_id").notNull(),
    createdAtMs: integer("created_at_ms").notNull(),
    decidedBy: text("decided_by"),
    decidedAtMs: integer("decided_at_ms"),
    /** The approver's note or the rejection's reason. */
    reason: text("reason"),
    /** The last run of an approved request: its HTTP status and, when refused, its error code. */
    resultStatus: integer("result_status"),
    resultCode: text("result_code"),
    ranAtMs: integer("ran_at_ms"),
  },
  (t) => [
    uniqueIndex("approvals_request").on(t.kind, t.scope, t.requestKey),
    index("approvals_status").on(t.status, t.createdAtMs, t.approvalId),
    index("approvals_created").on(t.createdAtMs, t.approvalId),
  ],
);
