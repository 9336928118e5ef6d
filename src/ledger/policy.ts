import {
  type ApprovalThresholds,
  type ApprovalThresholdsPatch,
  effectiveThresholds,
  mergeThresholds,
} from "./approval";
import { CREDIT_TYPES, type CreditType, type Lot } from "./types";

export const SORT_KEYS = ["priority", "expires_at", "type", "effective_at", "created"] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export const HOLD_ON_EXPIRY = ["release", "capture"] as const;
export type HoldOnExpiry = (typeof HOLD_ON_EXPIRY)[number];

/** Consumption policy: data, not code. */
export interface Policy {
  order: SortKey[];
  type_order: CreditType[];
  require_verified_for_promotional: boolean;
  hold_on_expiry: HoldOnExpiry;
  /** Four eyes (src/ledger/approval.ts): per kind, the largest amount that runs without approval. */
  approval_threshold?: ApprovalThresholds;
  /**
   * Conversions (src/ledger/convert.ts): the units a debit with `convert: true`
   * may draw from, in order, once its own unit is spent (each needs a rate).
   */
  convert_from?: string[];
}

/**
 * An account's overrides: a field left out (or null) falls back to the global
 * policy. `approval_threshold` is merged kind by kind (a null kind drops that override).
 */
export type PolicyOverrides = { [K in Exclude<keyof Policy, "approval_threshold">]?: Policy[K] | null } & {
  approval_threshold?: ApprovalThresholdsPatch | null;
};

export const DEFAULT_POLICY: Policy = {
  order: ["priority", "expires_at", "type", "created"],
  type_order: [...CREDIT_TYPES],
  require_verified_for_promotional: false,
  hold_on_expiry: "release",
  approval_threshold: {},
  convert_from: [],
};

/** The effective convert_from member: the account's list when it has one, else the global one (absent when neither has one). */
function convertFromOf(global: Policy, overrides: PolicyOverrides): Pick<Policy, "convert_from"> {
  const list = overrides.convert_from ?? global.convert_from;
  return list === undefined ? {} : { convert_from: list };
}

/** The effective approval_threshold member: absent only when neither side has one. */
function thresholdsOf(global: Policy, overrides: PolicyOverrides): Pick<Policy, "approval_threshold"> {
  const own = overrides.approval_threshold;
  if (global.approval_threshold === undefined && own == null) return {};
  return { approval_threshold: effectiveThresholds(global.approval_threshold, own) };
}

/** Global policy merged with an account's overrides, field by field. */
export function effectivePolicy(global: Policy, overrides: PolicyOverrides | null): Policy {
  if (!overrides) return global;
  return {
    order: overrides.order ?? global.order,
    type_order: overrides.type_order ?? global.type_order,
    require_verified_for_promotional:
      overrides.require_verified_for_promotional ?? global.require_verified_for_promotional,
    hold_on_expiry: overrides.hold_on_expiry ?? global.hold_on_expiry,
    ...thresholdsOf(global, overrides),
    ...convertFromOf(global, overrides),
  };
}

/** Merge a patch into overrides; a null field drops that override. */
export function mergeOverrides(current: PolicyOverrides, patch: PolicyOverrides): PolicyOverrides {
  const next: PolicyOverrides = { ...current };
  for (const key of Object.keys(patch) as (keyof Policy)[]) {
    const value = patch[key];
    if (value === undefined) continue;
    if (key === "approval_threshold" && value !== null) {
      const merged = mergeThresholds(current.approval_threshold ?? undefined, value as ApprovalThresholdsPatch);
      if (Object.keys(merged).length > 0) next.approval_threshold = merged;
      else delete next.approval_threshold;
      continue;
    }
    if (value === null) delete next[key];
    else (next as Record<string, unknown>)[key] = value;
  }
  return next;
}

function typeRank(policy: Policy, type: CreditType): number {
  const i = policy.type_order.indexOf(type);
  // Types missing from type_order come after every listed type, in canonical order.
  return i >= 0 ? i : policy.type_order.length + CREDIT_TYPES.indexOf(type);
}

function compareBy(key: SortKey, policy: Policy, a: Lot, b: Lot): number {
  switch (key) {
    case "priority":
      return a.priority - b.priority;
    case "expires_at": {
      // Lots without expiry come after every dated lot.
      if (a.expiresAtMs === b.expiresAtMs) return 0;
      if (a.expiresAtMs === null) return 1;
      if (b.expiresAtMs === null) return -1;
      return a.expiresAtMs - b.expiresAtMs;
    }
    case "type":
      return typeRank(policy, a.type) - typeRank(policy, b.type);
    case "effective_at":
      return a.effectiveAtMs - b.effectiveAtMs;
    case "created":
      return a.createdOrder - b.createdOrder;
  }
}

/** Comparator for consumption order: the policy's keys, then creation order. */
export function lotComparator(policy: Policy): (a: Lot, b: Lot) => number {
  return (a, b) => {
    for (const key of policy.order) {
      const c = compareBy(key, policy, a, b);
      if (c !== 0) return c;
    }
    return a.createdOrder - b.createdOrder;
  };
}
