/**
 * Account trees (src/ledger/hierarchy.ts): checkNewParent and inScope against
 * a reference that applies the move to a whole parent map and then walks it
 * naively (depth of every account, cycle by revisiting).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkNewParent, inScope, MAX_DEPTH } from "../../src/ledger/hierarchy";

type Parents = Map<string, string | null>;

/** The chain from `id` up to its root, at most `max` ids (a cycle stops it there). */
function chainOf(parents: Parents, id: string, max = 64): string[] {
  const out: string[] = [];
  for (let at: string | null | undefined = id; at != null && out.length < max; at = parents.get(at)) out.push(at);
  return out;
}

/** Reference: after giving `id` the parent `p`, is there a cycle, and how deep is the deepest account? */
function reference(parents: Parents, id: string, p: string): "cycle" | "depth" | null {
  const moved = new Map(parents);
  moved.set(id, p);
  for (const a of moved.keys()) {
    const seen = new Set<string>();
    for (let at: string | null | undefined = a; at != null; at = moved.get(at)) {
      if (seen.has(at)) return "cycle";
      seen.add(at);
    }
  }
  for (const a of moved.keys()) if (chainOf(moved, a).length - 1 > MAX_DEPTH) return "depth";
  return null;
}

/** A random valid forest of up to 12 accounts (each parent created before its child, depth ≤ MAX_DEPTH). */
const forest = fc.array(fc.nat(), { minLength: 2, maxLength: 12 }).map((picks) => {
  const parents: Parents = new Map();
  picks.forEach((pick, i) => {
    const id = `a${i}`;
    const candidates = [...parents.keys()].filter((k) => chainOf(parents, k).length <= MAX_DEPTH);
    parents.set(id, i === 0 || pick % 3 === 0 ? null : (candidates[pick % candidates.length] ?? null));
  });
  return parents;
});

describe("checkNewParent", () => {
  it("agrees with the reference on every move in a random forest", () => {
    fc.assert(
      fc.property(forest, fc.nat(), fc.nat(), (parents, i, j) => {
        const ids = [...parents.keys()];
        const id = ids[i % ids.length] as string;
        const p = ids[j % ids.length] as string;
        const height = Math.max(
          0,
          ...ids.filter((d) => chainOf(parents, d).includes(id)).map((d) => chainOf(parents, d).indexOf(id)),
        );
        const got = checkNewParent(id, chainOf(parents, p, MAX_DEPTH + 2), height);
        expect(got?.rule ?? null).toBe(reference(parents, id, p));
      }),
    );
  });

  it("worked examples", () => {
    expect(checkNewParent("t", ["d", "org"], 0)).toBeNull();
    expect(checkNewParent("x", ["l4", "l3", "l2", "l1", "root"], 0)?.rule).toBe("depth");
    expect(checkNewParent("x", ["l3", "l2", "l1", "root"], 0)).toBeNull();
    expect(checkNewParent("x", ["l3", "l2", "l1", "root"], 1)?.rule).toBe("depth");
    expect(checkNewParent("org", ["org"], 0)?.rule).toBe("cycle");
    expect(checkNewParent("org", ["t", "d", "org"], 2)?.rule).toBe("cycle");
  });
});

describe("inScope", () => {
  it("is true exactly for the scope and its descendants within MAX_DEPTH", () => {
    fc.assert(
      fc.property(forest, fc.nat(), fc.nat(), (parents, i, j) => {
        const ids = [...parents.keys()];
        const a = ids[i % ids.length] as string;
        const scope = ids[j % ids.length] as string;
        expect(inScope(chainOf(parents, a, MAX_DEPTH + 1), scope)).toBe(chainOf(parents, a).includes(scope));
      }),
    );
    expect(inScope(["team", "dept", "org"], "org")).toBe(true);
    expect(inScope(["team", "dept", "org"], "other")).toBe(false);
  });
});
