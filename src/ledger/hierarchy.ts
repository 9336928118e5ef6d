/**
 * Account trees (enterprise parents, departments, teams): the depth rule and
 * the cycle rule, on ancestor chains the caller has read. Pure: no storage.
 */

/**
 * Levels below a root: a root is at depth 0, its deepest descendant at depth
 * MAX_DEPTH (org → division → department → team → project). Every walk up or
 * down a tree stops after this many steps, so a walk is bounded even if a
 * lagging copy of the tree held a cycle.
 */
export const MAX_DEPTH = 4;

/** Why a new parent is refused, or null when the move keeps the tree valid. */
export type ParentRefusal = { rule: "cycle" | "depth"; detail: string } | null;

/**
 * Checks giving `accountId` the parent whose chain up to its root is
 * `parentChain` (the parent first, its root last), when the deepest account
 * under `accountId` is `subtreeHeight` levels below it (0: no children).
 *
 * @example checkNewParent("t", ["d", "org"], 0) // null: t lands at depth 2
 * @example checkNewParent("org", ["t", "d", "org"], 2)?.rule // "cycle"
 */
export function checkNewParent(
  accountId: string,
  parentChain: readonly string[],
  subtreeHeight: number,
): ParentRefusal {
  if (parentChain.includes(accountId)) {
    return { rule: "cycle", detail: `parent_id would make a cycle: ${accountId} is an ancestor of its new parent` };
  }
  // The parent sits at depth parentChain.length - 1, the account one below it.
  const deepest = parentChain.length + subtreeHeight;
  if (deepest > MAX_DEPTH) {
    return {
      rule: "depth",
      detail: `account trees are at most ${MAX_DEPTH} levels deep below a root; this parent would put an account at depth ${deepest}`,
    };
  }
  return null;
}

/**
 * Whether `accountId`, whose chain up to its root is `chain` (the account
 * first), lies in the tree of `scope`: the scope itself or a descendant.
 *
 * @example inScope(["team", "dept", "org"], "org") // true
 */
export function inScope(chain: readonly string[], scope: string): boolean {
  return chain.slice(0, MAX_DEPTH + 1).includes(scope);
}
