/**
 * Four eyes: which requests wait for a second key. Pure rules, no I/O.
 *
 * A policy's `approval_threshold` names, per kind of request, the largest
 * amount a key may move on its own; a request above it is stored as a
 * pending approval and runs only when another admin or finance key approves.
 * At or below the threshold (or with no threshold for the kind) it runs at once.
 */

export const APPROVAL_KINDS = ["grant", "transfer", "bulk"] as const;
export type ApprovalKind = (typeof APPROVAL_KINDS)[number];

/**
 * The requests that can wait for approval, and the threshold each is held
 * to: a recurring grant's per-period amount is a grant's, so it is compared
 * with the `grant` threshold (every period issues a grant of that amount);
 * so is an automatic top-up rule's `amount` (every request becomes a grant
 * of that amount once its payment activates it).
 */
export const APPROVAL_REQUESTS = ["grant", "transfer", "bulk", "recurring_grant", "top_up"] as const;
export type ApprovalRequest = (typeof APPROVAL_REQUESTS)[number];
export const THRESHOLD_OF: Readonly<Record<ApprovalRequest, ApprovalKind>> = {
  grant: "grant",
  transfer: "transfer",
  bulk: "bulk",
  recurring_grant: "grant",
  top_up: "grant",
};

/** Per kind, the largest amount that runs without approval (positive safe integers). */
export type ApprovalThresholds = { [K in ApprovalKind]?: number };
/** A patch of thresholds: a number sets the kind's threshold, null drops it. */
export type ApprovalThresholdsPatch = { [K in ApprovalKind]?: number | null };

/**
 * Merges a patch into thresholds, kind by kind: a number replaces, null
 * drops, a kind left out is kept. Never modifies `current`.
 * @example mergeThresholds({ grant: 10 }, { transfer: 5, grant: null }) // { transfer: 5 }
 */
export function mergeThresholds(
  current: ApprovalThresholdsPatch | undefined,
  patch: ApprovalThresholdsPatch,
): ApprovalThresholds {
  const next: ApprovalThresholds = {};
  for (const kind of APPROVAL_KINDS) {
    const value = patch[kind] === undefined ? current?.[kind] : patch[kind];
    if (value !== undefined && value !== null) next[kind] = value;
  }
  return next;
}

/**
 * The account's thresholds, kind by kind: the stricter (lower) of its
 * override and the global one, and either where only one is set. An override
 * only tightens four eyes: the key that may set account policy (finance) can
 * never raise its own account above the admin's global threshold.
 */
export function effectiveThresholds(
  global: ApprovalThresholds | undefined,
  overrides: ApprovalThresholdsPatch | undefined | null,
): ApprovalThresholds {
  const out: ApprovalThresholds = {};
  for (const kind of APPROVAL_KINDS) {
    const own = overrides?.[kind] ?? undefined;
    const base = global?.[kind];
    const value = own === undefined ? base : base === undefined ? own : Math.min(own, base);
    if (value !== undefined) out[kind] = value;
  }
  return out;
}

/**
 * The amount a request of `kind` is compared with: its amount, and for a bulk
 * grant the job's total, `amount × accounts` (four eyes on what the job
 * issues in all, not on each account's share). A BigInt, so the product of
 * 10^15 and 10 000 stays exact.
 */
export function approvalAmount(amount: number, accounts = 1): bigint {
  return BigInt(amount) * BigInt(accounts);
}

/**
 * Whether a request of `kind` moving `amount` (see approvalAmount) must wait
 * for approval: only when a threshold is set for the kind and the amount is
 * strictly above it.
 * @example needsApproval({ grant: 1000 }, "grant", approvalAmount(1000)) // false
 * @example needsApproval({ bulk: 1000 }, "bulk", approvalAmount(10, 101)) // true
 */
export function needsApproval(thresholds: ApprovalThresholds, kind: ApprovalKind, amount: bigint): boolean {
  const limit = thresholds[kind];
  return limit !== undefined && amount > BigInt(limit);
}
