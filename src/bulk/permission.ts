/**
 * Who may issue which grant: the rule of docs/api.md (Roles), as a value, so
 * that the single-grant route and the bulk consumer (which has no request,
 * only the role and limit stored with the job) apply the same one.
 */
import type { Problem } from "../errors";
import type { CreditType } from "../ledger";
import type { Role } from "../roles";

/** Roles that may issue some grant. */
export const GRANTERS = ["admin", "finance", "support", "marketing"] as const satisfies readonly Role[];

/** The role and limit of whoever asked for a grant. */
export interface Grantor {
  role: Role;
  maxGrantAmount: number | null;
}

/** support may issue compensatory, marketing promotional, each within the key's limit. */
const ONLY: Partial<Record<Role, CreditType>> = { support: "compensatory", marketing: "promotional" };

/**
 * Why `grantor` may not issue a grant of `type` and `amount`; null when it may.
 * @example grantRefusal({ role: "support", maxGrantAmount: 500 }, "compensatory", 900)?.code // "grant_limit_exceeded"
 */
export function grantRefusal(grantor: Grantor, type: CreditType, amount: number): Problem | null {
  const { role, maxGrantAmount } = grantor;
  if (!(GRANTERS as readonly Role[]).includes(role)) {
    return { code: "forbidden", detail: `role ${role} may not do this` };
  }
  const only = ONLY[role];
  if (only === undefined) return null;
  if (type !== only) return { code: "forbidden", detail: `role ${role} may only issue ${only} grants` };
  // "each ≤ the key's max_grant_amount": a key created without one may grant nothing (fail closed).
  if (maxGrantAmount === null || amount > maxGrantAmount) {
    const detail =
      maxGrantAmount === null
        ? "this key has no max_grant_amount, so it may not grant; create one with a limit"
        : `this key may grant at most ${maxGrantAmount} at once`;
    return { code: "grant_limit_exceeded", detail, extra: { max_grant_amount: maxGrantAmount } };
  }
  return null;
}
