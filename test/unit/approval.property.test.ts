/** The four-eyes threshold rule and the policy merge of approval_threshold, against a small reference model. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_POLICY, effectivePolicy, mergeOverrides, type PolicyOverrides } from "../../src/ledger";
import {
  APPROVAL_KINDS,
  type ApprovalThresholds,
  approvalAmount,
  effectiveThresholds,
  mergeThresholds,
  needsApproval,
} from "../../src/ledger/approval";

const kind = fc.constantFrom(...APPROVAL_KINDS);
const threshold = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const thresholds = fc.record(
  { grant: threshold, transfer: threshold, bulk: threshold },
  { requiredKeys: [] },
) as fc.Arbitrary<ApprovalThresholds>;
const patch = fc.record(
  {
    grant: fc.option(threshold, { nil: null }),
    transfer: fc.option(threshold, { nil: null }),
    bulk: fc.option(threshold, { nil: null }),
  },
  { requiredKeys: [] },
);

describe("needsApproval", () => {
  it("worked examples: strictly above the threshold waits; at it runs", () => {
    expect(needsApproval({ grant: 1000 }, "grant", approvalAmount(1000))).toBe(false);
    expect(needsApproval({ grant: 1000 }, "grant", approvalAmount(1001))).toBe(true);
    expect(needsApproval({ grant: 1000 }, "transfer", approvalAmount(10 ** 15))).toBe(false);
    // Bulk compares the job's total: 3 × 400 = 1 200 > 1 000; 2 × 500 = 1 000 is not above.
    expect(needsApproval({ bulk: 1000 }, "bulk", approvalAmount(400, 3))).toBe(true);
    expect(needsApproval({ bulk: 1000 }, "bulk", approvalAmount(500, 2))).toBe(false);
    // 10^15 × 10 000 = 10^19 is exact, past every safe threshold.
    expect(approvalAmount(10 ** 15, 10_000)).toBe(10n ** 19n);
    expect(needsApproval({ bulk: Number.MAX_SAFE_INTEGER }, "bulk", approvalAmount(10 ** 15, 10_000))).toBe(true);
  });

  it("matches the model: a threshold for the kind, and amount × accounts above it", () => {
    fc.assert(
      fc.property(
        thresholds,
        kind,
        fc.integer({ min: 1, max: 10 ** 15 }),
        fc.integer({ min: 1, max: 10_000 }),
        (t, k, amount, accounts) => {
          const limit = t[k];
          const ts = (BigInt(amount) * BigInt(accounts)).toString();
          const ls = `${limit}`;
          // Model: decimal strings compared by length, then digit by digit.
          const above = ts.length > ls.length || (ts.length === ls.length && ts > ls);
          const expected = limit !== undefined && above;
          expect(needsApproval(t, k, approvalAmount(amount, accounts))).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("thresholds merge kind by kind", () => {
  it("mergeThresholds: a number replaces, null drops, a kind left out is kept", () => {
    fc.assert(
      fc.property(thresholds, patch, (current, p) => {
        const frozen = Object.freeze({ ...current });
        const next = mergeThresholds(frozen, p);
        for (const k of APPROVAL_KINDS) {
          const expected = p[k] === undefined ? current[k] : (p[k] ?? undefined);
          expect(next[k]).toBe(expected);
          if (expected === undefined) expect(k in next).toBe(false);
        }
        expect(frozen).toEqual(current);
      }),
    );
  });

  it("effective: the stricter of the account's and the global threshold, kind by kind; never above the global", () => {
    fc.assert(
      fc.property(thresholds, thresholds, (global, own) => {
        const eff = effectiveThresholds(global, own);
        for (const k of APPROVAL_KINDS) {
          const [o, g] = [own[k], global[k]];
          expect(eff[k]).toBe(o === undefined ? g : g === undefined ? o : o < g ? o : g);
          if (g !== undefined) expect(eff[k]).toBeLessThanOrEqual(g);
        }
      }),
    );
  });

  it("policy overrides: approval_threshold merges by kind, other fields untouched", () => {
    fc.assert(
      fc.property(thresholds, fc.array(patch, { maxLength: 6 }), (global, patches) => {
        let overrides: PolicyOverrides = { hold_on_expiry: "capture" };
        let model: ApprovalThresholds = {};
        for (const p of patches) {
          overrides = mergeOverrides(overrides, { approval_threshold: p });
          for (const k of APPROVAL_KINDS) {
            const v = p[k];
            if (v === null) delete model[k];
            else if (v !== undefined) model = { ...model, [k]: v };
          }
        }
        const eff = effectivePolicy({ ...DEFAULT_POLICY, approval_threshold: global }, overrides);
        for (const k of APPROVAL_KINDS) {
          const [o, g] = [model[k], global[k]];
          expect(eff.approval_threshold?.[k]).toBe(o === undefined ? g : g === undefined ? o : Math.min(o, g));
        }
        expect(eff.hold_on_expiry).toBe("capture");
        // null drops every override at once.
        const cleared = mergeOverrides(overrides, { approval_threshold: null });
        expect("approval_threshold" in cleared).toBe(false);
        expect(effectivePolicy({ ...DEFAULT_POLICY, approval_threshold: global }, cleared).approval_threshold).toEqual(
          global,
        );
      }),
    );
  });

  it("a policy without approval_threshold on either side stays without one", () => {
    const { approval_threshold: _, ...bare } = DEFAULT_POLICY;
    expect("approval_threshold" in effectivePolicy(bare, { order: ["created"] })).toBe(false);
    expect(effectivePolicy(bare, { approval_threshold: { grant: 5 } }).approval_threshold).toEqual({ grant: 5 });
  });
});
