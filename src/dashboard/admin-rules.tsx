/**
 * What the operator view offers each role, and the small pure rules of its
 * forms (reason codes, pasted account ids). The roles' rights are the API's
 * (docs/api.md, Roles): the grant types come from the same grantRefusal the
 * grant route applies, so the form can never offer a type the API refuses.
 */
import { GRANTERS, grantRefusal } from "../bulk/permission";
import { BULK_MAX_ACCOUNTS } from "../bulk/queue";
import { ID_PATTERN } from "../ledger/ids";
import { CREDIT_TYPES, type CreditType } from "../ledger/types";
import type { Role } from "../roles";

/** What one signed-in key may see and do in the operator view. */
export interface Abilities {
  /** Credit types the grant and bulk forms offer (empty: no grant form). */
  grantTypes: readonly CreditType[];
  /** Void a lot and refund a purchased lot (the API: admin, finance). */
  voidAndRefund: boolean;
  /** Approve or reject a pending request (the API's DECIDERS). */
  decide: boolean;
  /** GET /v1/audit (admin, finance). */
  audit: boolean;
  /** GET /v1/reports/* (REPORT_READERS: admin, finance, viewer). */
  reports: boolean;
  /** GET /v1/reports/campaigns/{id} (CAMPAIGN_REPORT_READERS). */
  campaignReport: boolean;
}

/** The types `role` may issue at all (its limit is checked per amount by the API). */
export function grantTypesOf(role: Role): CreditType[] {
  if (!(GRANTERS as readonly Role[]).includes(role)) return [];
  // Amount 1 within a limit of 1: only the role's type rule can refuse.
  return CREDIT_TYPES.filter((t) => grantRefusal({ role, maxGrantAmount: 1 }, t, 1)?.code !== "forbidden");
}

export function abilitiesOf(role: Role): Abilities {
  const financeOrAdmin = role === "admin" || role === "finance";
  return {
    grantTypes: grantTypesOf(role),
    voidAndRefund: financeOrAdmin,
    decide: financeOrAdmin,
    audit: financeOrAdmin,
    reports: financeOrAdmin || role === "viewer",
    campaignReport: financeOrAdmin || role === "viewer" || role === "marketing",
  };
}

/** Roles that may sign in: all but gateway, whose key reads balances and holds only. */
export const OPERATOR_ROLES: readonly Role[] = ["admin", "finance", "support", "marketing", "viewer"];

/**
 * Reason codes the grant, void, refund and bulk forms require. The API takes
 * free text in `reason`; the view sends the code (and the operator's note
 * after a colon) there, and the code alone in `metadata.reason_code`.
 */
export const REASON_CODES = [
  ["service_outage", "Service outage"],
  ["billing_error", "Billing error"],
  ["goodwill", "Goodwill gesture"],
  ["sla_credit", "SLA credit"],
  ["promotion", "Promotion"],
  ["migration_fix", "Migration fix"],
  ["duplicate", "Duplicate or mistaken grant"],
  ["fraud", "Fraud or abuse"],
  ["customer_request", "Customer request"],
  ["other", "Other (say why in the note)"],
] as const;
export type ReasonCode = (typeof REASON_CODES)[number][0];

export const isReasonCode = (s: string): s is ReasonCode => REASON_CODES.some(([code]) => code === s);

/** The longest note an operator may add to a reason code (the API's `reason` is ≤ 256). */
export const NOTE_MAX_CHARS = 200;

/** `reason` as sent to the API: the code, and the note after a colon when there is one. */
export const reasonText = (code: ReasonCode, note: string): string => (note === "" ? code : `${code}: ${note}`);

/** An uploaded list of account ids is read up to this many bytes (10 000 ids of 128 characters and a newline). */
export const BULK_FILE_MAX_BYTES = 1_300_000;

/**
 * Account ids from pasted text or an uploaded text/CSV file: one per line,
 * the first comma/semicolon/tab-separated column, surrounding quotes and
 * blanks dropped, blank lines and a header line (a first line that is not an
 * id, or is `account_id`) skipped, repeats kept once. Stops reading past
 * BULK_MAX_ACCOUNTS + 1 ids so the API refuses the oversize list by its own rule.
 * @example accountIdsOf("account_id\na1\n\"a2\",x\na1") // { ids: ["a1", "a2"], bad: [] }
 */
export function accountIdsOf(text: string): { ids: string[]; bad: string[] } {
  const ids: string[] = [];
  const bad: string[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n|\r/);
  for (let i = 0; i < lines.length && ids.length <= BULK_MAX_ACCOUNTS; i++) {
    const first = (lines[i] ?? "").split(/[,;\t]/)[0] ?? "";
    const id = first
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .trim();
    if (id === "") continue;
    if (i === 0 && (id.toLowerCase() === "account_id" || !ID_PATTERN.test(id))) continue;
    if (!ID_PATTERN.test(id)) {
      if (bad.length < BAD_IDS_SHOWN) bad.push(id.slice(0, 64));
      continue;
    }
    if (seen.has(id)) continue;
    seen.add(id);
    ids.push(id);
  }
  return { ids, bad };
}

/** How many malformed ids a refused bulk list names. */
export const BAD_IDS_SHOWN = 5;

/** A fresh id for one rendered form, so a double submit is one operation (the API's idempotency). */
export const formId = (prefix: string): string => `${prefix}-${crypto.randomUUID().replace(/-/g, "").slice(0, 20)}`;
