/**
 * The security matrix, written by hand from docs/api.md (Roles, Account-scoped
 * keys, Sessions and tokens, and each route's "(admin, finance)" note), NOT
 * computed from src/roles.ts: a change of the code that the docs do not make
 * fails role-matrix.security.test.ts.
 *
 * Per operation of /openapi.json: the roles that may call it (letters), then
 * what an account-scoped key and a customer dashboard session get.
 *   A admin (the ADMIN_TOKEN and an admin key)   f finance   s support
 *   m marketing   g gateway   v viewer
 * The scoped key is an `admin` key scoped to the fixture account (the root of
 * its own tree), so only the scope rule can refuse it; the session is the
 * customer view of the same account ("a viewer scoped to its account").
 * "ok": the call passes the role and scope checks (never 401/403);
 * 403: forbidden; 404: the thing lies outside the tree, so it is not found.
 *
 * The baselines' bodies decide some rows: the single and bulk grants are
 * `purchased` (support and marketing may grant only compensatory and
 * promotional), the transfer goes to an account outside the scoped key's tree.
 */
export type Cell = "ok" | 403 | 404;
export interface Row {
  roles: string;
  scoped: Cell;
  session: Cell;
}

const READ = "Afsmv"; // "All reads": every role but gateway
const ALL = "Afsmgv"; // balance and hold reads, the public JWKS
const AF = "Af";

const r = (roles: string, scoped: Cell, session: Cell): Row => ({ roles, scoped, session });

export const TABLE: Record<string, Row> = {
  // accounts
  "GET /v1/accounts": r(READ, "ok", "ok"), // parent_id = the fixture: in scope
  "PUT /v1/accounts/{account_id}": r(AF, "ok", 403), // parent_id null on its own scope root is allowed
  "GET /v1/accounts/{account_id}": r(READ, "ok", "ok"),
  "GET /v1/accounts/{account_id}/balance": r(ALL, "ok", "ok"),
  "GET /v1/accounts/{account_id}/children": r(READ, "ok", "ok"),
  // grants
  "POST /v1/accounts/{account_id}/grants": r(AF, "ok", 403),
  "GET /v1/accounts/{account_id}/grants": r(READ, "ok", "ok"),
  "GET /v1/accounts/{account_id}/grants/{grant_id}": r(READ, "ok", "ok"),
  "POST /v1/accounts/{account_id}/grants/{grant_id}/void": r(AF, "ok", 403),
  "POST /v1/accounts/{account_id}/grants/{grant_id}/refund": r(AF, "ok", 403),
  "POST /v1/grants/bulk": r(AF, "ok", 403),
  "GET /v1/grants/bulk/{bulk_id}": r(READ, 404, 404), // a scoped caller sees only the bulk grants it made
  // debits, holds, receipts
  "POST /v1/accounts/{account_id}/debits": r("Ag", "ok", 403),
  "GET /v1/accounts/{account_id}/debits/{debit_id}": r(READ, "ok", "ok"),
  "POST /v1/accounts/{account_id}/holds": r("Ag", "ok", 403),
  "GET /v1/accounts/{account_id}/holds": r(ALL, "ok", "ok"),
  "POST /v1/accounts/{account_id}/holds/{hold_id}/capture": r("Ag", "ok", 403),
  "POST /v1/accounts/{account_id}/holds/{hold_id}/release": r("Ag", "ok", 403),
  "GET /v1/accounts/{account_id}/holds/{hold_id}": r(ALL, "ok", "ok"),
  "POST /v1/accounts/{account_id}/receipts": r("Ag", "ok", 403),
  "POST /v1/receipts/settle": r("Ag", "ok", 403),
  "GET /.well-known/jwks.json": r(ALL, "ok", "ok"),
  // invoices
  "POST /v1/accounts/{account_id}/invoices": r(AF, "ok", 403),
  "GET /v1/accounts/{account_id}/invoices/{invoice_id}": r(READ, "ok", "ok"),
  "POST /v1/accounts/{account_id}/invoices/{invoice_id}/void": r(AF, "ok", 403),
  // ledger, statements
  "GET /v1/accounts/{account_id}/ledger": r(READ, "ok", "ok"),
  "GET /v1/accounts/{account_id}/statement": r(READ, "ok", "ok"),
  "POST /v1/accounts/{account_id}/replay": r(AF, "ok", 403), // admin, finance (docs/api.md Time travel)
  // policy: global by admin (403 for a scoped key, a global route), the account's by admin and finance
  // (an account route: a scoped key acts on it within its tree, docs/api.md Policy)
  "GET /v1/policy": r("A", 403, 403),
  "PUT /v1/policy": r("A", 403, 403),
  "GET /v1/accounts/{account_id}/policy": r(AF, "ok", 403),
  "PUT /v1/accounts/{account_id}/policy": r(AF, "ok", 403),
  // API keys, alerts, webhooks
  "POST /v1/api-keys": r("A", 403, 403),
  "GET /v1/api-keys": r("A", 403, 403),
  "DELETE /v1/api-keys/{id}": r("A", 403, 403),
  "GET /v1/alerts": r(READ, "ok", "ok"), // account_id = the fixture
  "GET /v1/alert-settings": r(READ, 403, 403),
  "PUT /v1/alert-settings": r("A", 403, 403),
  "POST /v1/webhooks": r("A", 403, 403),
  "GET /v1/webhooks": r("A", 403, 403),
  "DELETE /v1/webhooks/{id}": r("A", 403, 403),
  "GET /v1/webhooks/{id}/deliveries": r("A", 403, 403),
  // reconciliation, audit, reports
  "GET /v1/reconciliation/runs": r(READ, 403, 403),
  "GET /v1/reconciliation/runs/{id}": r(READ, 403, 403),
  "GET /v1/metrics": r("Av", 403, 403), // operations: admin and viewer only (docs/runbook.md)
  "GET /v1/audit": r(AF, 403, 403),
  "GET /v1/reports/revenue": r("Afv", "ok", "ok"),
  "GET /v1/reports/liability": r("Afv", "ok", "ok"),
  "GET /v1/reports/credits": r("Afv", "ok", "ok"),
  // transfers and budgets
  "POST /v1/transfers": r(AF, 404, 403), // to an account outside the tree
  "GET /v1/transfers/{transfer_id}": r(READ, 404, 404),
  "PUT /v1/accounts/{account_id}/budget": r(AF, 403, 403), // the scope root's budget: its parent is outside
  "GET /v1/accounts/{account_id}/budget": r(READ, "ok", "ok"),
  "DELETE /v1/accounts/{account_id}/budget": r(AF, 403, 403),
  "GET /v1/reports/drawdown": r("Afv", "ok", "ok"),
  // approvals
  "POST /v1/approvals/{approval_id}/approve": r(AF, 403, 403),
  "POST /v1/approvals/{approval_id}/reject": r(AF, 403, 403),
  "GET /v1/approvals/{approval_id}": r(READ, 404, 404), // a scoped caller reads only its own
  "GET /v1/approvals": r(READ, 403, 403),
  // units, rates, meters, usage
  "PUT /v1/units/{unit}": r("A", 403, 403),
  "GET /v1/units": r(READ, 403, 403),
  "PUT /v1/rates/{from}/{to}": r("A", 403, 403),
  "DELETE /v1/rates/{from}/{to}": r("A", 403, 403),
  "GET /v1/rates": r(READ, 403, 403),
  "PUT /v1/meters/{meter}": r("A", 403, 403),
  "GET /v1/meters/{meter}": r(READ, 403, 403),
  "GET /v1/meters": r(READ, 403, 403),
  "POST /v1/usage": r("Ag", "ok", 403),
  // campaigns, codes, redemptions, referrals
  "PUT /v1/campaigns/{campaign_id}": r("Am", 403, 403),
  "GET /v1/campaigns/{campaign_id}": r(READ, 403, 403),
  "GET /v1/campaigns": r(READ, 403, 403),
  "POST /v1/campaigns/{campaign_id}/codes": r("Am", 403, 403),
  "POST /v1/redemptions": r("Amg", 403, 403),
  "POST /v1/accounts/{account_id}/referral-code": r("Amg", "ok", 403),
  "GET /v1/reports/campaigns/{campaign_id}": r("Afmv", 403, 403),
  // recurring grants, grants awaiting payment, top-up
  "POST /v1/accounts/{account_id}/recurring-grants": r(AF, "ok", 403),
  "GET /v1/accounts/{account_id}/recurring-grants": r(READ, "ok", "ok"),
  "DELETE /v1/accounts/{account_id}/recurring-grants/{recurring_id}": r(AF, "ok", 403),
  "POST /v1/accounts/{account_id}/grants/{grant_id}/activate": r(AF, "ok", 403),
  "POST /v1/accounts/{account_id}/grants/{grant_id}/cancel": r(AF, "ok", 403),
  "PUT /v1/accounts/{account_id}/top-up": r(AF, "ok", 403),
  "GET /v1/accounts/{account_id}/top-up": r(READ, "ok", "ok"),
  "DELETE /v1/accounts/{account_id}/top-up": r(AF, "ok", 403),
  // dashboard links: admin, finance, support
  "POST /v1/accounts/{account_id}/dashboard-links": r("Afs", "ok", 403),
  // legacy import (a global admin route)
  "POST /v1/imports": r("A", 403, 403),
};

/** The callers, in the order each operation is called; `letter` is the role's letter above (scoped/session: their own columns). */
export const CALLERS = [
  { name: "admin-token", letter: "A" },
  { name: "admin key", letter: "A" },
  { name: "finance", letter: "f" },
  { name: "support", letter: "s" },
  { name: "marketing", letter: "m" },
  { name: "gateway", letter: "g" },
  { name: "viewer", letter: "v" },
  { name: "scoped key", letter: null },
  { name: "dashboard session", letter: null },
] as const;
export type CallerName = (typeof CALLERS)[number]["name"];

/**
 * Cells where the code answers otherwise than docs/api.md says: asserted as
 * the code answers (so a fix of either side fails here and this list is
 * updated). None today: the account policy cells that were listed here were
 * a docs error (docs/api.md now says a scoped key acts on its tree's account
 * policy and gets 403 only on the global one).
 */
export const DISCREPANCIES: Record<string, { docs: Cell; code: Cell }> = {};

export function expected(row: Row, caller: (typeof CALLERS)[number], op: string): Cell {
  const gap = DISCREPANCIES[`${op}|${caller.name}`];
  if (gap) return gap.code;
  if (caller.name === "scoped key") return row.scoped;
  if (caller.name === "dashboard session") return row.session;
  return row.roles.includes(caller.letter) ? "ok" : 403;
}
