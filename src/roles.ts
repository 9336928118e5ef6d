/**
 * Roles of API keys (docs/api.md, Roles). Lives below every layer that needs
 * it: the API checks them, D1 stores them, jobs act as `system:<job>`.
 */
export const ROLES = ["admin", "finance", "support", "marketing", "gateway", "viewer"] as const;
export type Role = (typeof ROLES)[number];

/**
 * "All reads" in the Roles table: every role but `gateway`, whose key sits on
 * the hot path and may read balances (and its own holds) only.
 */
export const READERS: readonly Role[] = ["admin", "finance", "support", "marketing", "viewer"];
/** Balance and hold reads: every role, the gateway included. */
export const BALANCE_READERS: readonly Role[] = ROLES;
