/**
 * Campaign rules (src/ledger/campaign.ts): variant assignment is stable,
 * lands only in variants that have weight, and splits accounts by weight
 * within a stated tolerance; windows, spec checks, grant ids and codes.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  assignVariant,
  type CampaignSpec,
  campaignProblem,
  DEFAULT_VARIANT,
  formatCode,
  MAX_VARIANTS,
  REFERRAL_RETRY_BASE_MS,
  REFERRAL_RETRY_MAX_MS,
  redemptionGrant,
  referralGrant,
  referralGrantId,
  referralRetryAtMs,
  termsOf,
  type VariantSpec,
  variantsOf,
  windowProblem,
} from "../../src/ledger/campaign";
import { ID_PATTERN } from "../../src/ledger/ids";

const v = (variant: string, weight: number): VariantSpec => ({ variant, weight, grant: null });
const terms = { amount: 500, type: "promotional" as const, unit: "credits", expires_in_days: 30, priority: 50 };
const spec = (variants: VariantSpec[] | null): CampaignSpec => ({
  grant: terms,
  variants,
  referrer_grant: null,
  requires_verified: false,
});
const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);

/**
 * Counts of 10 000 accounts per variant, against the binomial: each count is
 * within 4 standard deviations of n·p (p = weight ÷ total). For a fair hash
 * a miss happens with probability ≈ 6·10^-5 per variant; the inputs are
 * fixed, so the test is deterministic.
 */
function expectSplit(campaignId: string, variants: VariantSpec[], n = 10_000) {
  const counts = new Map<string, number>(variants.map((x) => [x.variant, 0]));
  for (let i = 0; i < n; i++) {
    const got = assignVariant(campaignId, `acct-${i}`, variants).variant;
    counts.set(got, (counts.get(got) ?? 0) + 1);
  }
  const total = variants.reduce((s, x) => s + x.weight, 0);
  for (const x of variants) {
    const p = x.weight / total;
    const tolerance = 4 * Math.sqrt(n * p * (1 - p));
    const count = counts.get(x.variant) ?? 0;
    expect(Math.abs(count - n * p), `${x.variant}: ${count} of ${n}, expected ${n * p} ± ${tolerance}`).toBeLessThan(
      tolerance,
    );
  }
  return counts;
}

describe("assignVariant", () => {
  it("70/30 over 10 000 accounts: each within ±4σ (≈ 183) of 7 000 / 3 000", () => {
    const counts = expectSplit("spring", [v("a", 70), v("b", 30)]);
    expect((counts.get("a") ?? 0) + (counts.get("b") ?? 0)).toBe(10_000);
    // Worked by hand: σ = √(10000 · 0.7 · 0.3) = 45.83, so the band is 7000 ± 183.
    expect(Math.abs((counts.get("a") ?? 0) - 7000)).toBeLessThan(184);
  });

  it("three uneven variants and a 1/99 split stay within ±4σ", () => {
    expectSplit("summer", [v("x", 1), v("y", 2), v("z", 5)]);
    expectSplit("rare", [v("common", 99), v("rare", 1)]);
  });

  it("is stable: the same campaign and account always land in the same variant", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 64 }),
        fc.string({ minLength: 1, maxLength: 128 }),
        fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: MAX_VARIANTS }),
        (campaign, account, weights) => {
          const variants = weights.map((w, i) => v(`v${i}`, w));
          const first = assignVariant(campaign, account, variants).variant;
          // A fresh copy of the variants (no shared state) gives the same answer.
          expect(
            assignVariant(
              campaign,
              account,
              variants.map((x) => ({ ...x })),
            ).variant,
          ).toBe(first);
        },
      ),
    );
  });

  it("any weights: every account lands in one of the given variants", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 32 }),
        fc.string({ minLength: 1, maxLength: 32 }),
        fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: MAX_VARIANTS }),
        (campaign, account, weights) => {
          const variants = weights.map((w, i) => v(`v${i}`, w));
          const got = assignVariant(campaign, account, variants);
          expect(variants).toContain(got);
          expect(got.weight).toBeGreaterThan(0);
        },
      ),
    );
  });

  it("matches a reference: the hash point (BigInt) indexes a list of `weight` slots per variant", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 16 }),
        fc.string({ minLength: 1, maxLength: 16 }),
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 6 }),
        (campaign, account, weights) => {
          const variants = weights.map((w, i) => v(`v${i}`, w));
          const slots = variants.flatMap((x) => Array.from({ length: x.weight }, () => x.variant));
          const digest = createHash("sha256").update(`${campaign}\u0000${account}`, "utf8").digest("hex");
          const point = Number(BigInt(`0x${digest.slice(0, 13)}`) % BigInt(slots.length));
          expect(assignVariant(campaign, account, variants).variant).toBe(slots[point]);
        },
      ),
    );
  });

  it("a campaign without variants has one, default", () => {
    const only = variantsOf(spec(null));
    expect(only.map((x) => x.variant)).toEqual([DEFAULT_VARIANT]);
    expect(assignVariant("c", "a", only).variant).toBe("default");
  });
});

describe("campaignProblem", () => {
  const open = { startsAtMs: null, endsAtMs: null };
  it("accepts a plain campaign and unique, positive variants", () => {
    expect(campaignProblem(spec(null), open)).toBeNull();
    expect(campaignProblem(spec([v("a", 1), v("b", 9)]), open)).toBeNull();
  });
  it("refuses no variants, too many, a repeated name, zero or fractional weights", () => {
    expect(campaignProblem(spec([]), open)).toMatch(/variants/);
    const many = Array.from({ length: MAX_VARIANTS + 1 }, (_, i) => v(`v${i}`, 1));
    expect(campaignProblem(spec(many), open)).toMatch(/variants/);
    expect(campaignProblem(spec([v("a", 1), v("a", 2)]), open)).toMatch(/twice/);
    expect(campaignProblem(spec([v("a", 0)]), open)).toMatch(/weight/);
    expect(campaignProblem(spec([v("a", 1.5)]), open)).toMatch(/weight/);
  });
  it("refuses a variant whose grant is in another unit than the campaign's (one report, one unit)", () => {
    const tokens = { ...v("t", 1), grant: { ...terms, unit: "tokens" } };
    const credits = { ...v("c", 1), grant: { ...terms, amount: 9 } };
    expect(campaignProblem(spec([v("a", 1), tokens]), open)).toMatch(/one unit per campaign/);
    expect(campaignProblem(spec([v("a", 1), credits]), open)).toBeNull();
  });
  it("refuses a window that ends at or before its start", () => {
    expect(campaignProblem(spec(null), { startsAtMs: T0, endsAtMs: T0 })).toMatch(/ends_at/);
    expect(campaignProblem(spec(null), { startsAtMs: T0, endsAtMs: T0 - 1 })).toMatch(/ends_at/);
    expect(campaignProblem(spec(null), { startsAtMs: T0, endsAtMs: T0 + 1 })).toBeNull();
  });
});

describe("windowProblem", () => {
  it("is open from starts_at (inclusive) to ends_at (exclusive)", () => {
    const w = { startsAtMs: T0, endsAtMs: T0 + 1000 };
    expect(windowProblem(w, T0 - 1)).toMatch(/not started/);
    expect(windowProblem(w, T0)).toBeNull();
    expect(windowProblem(w, T0 + 999)).toBeNull();
    expect(windowProblem(w, T0 + 1000)).toMatch(/ended/);
    expect(windowProblem({ startsAtMs: null, endsAtMs: null }, 0)).toBeNull();
  });
});

describe("the grants a redemption and a referral issue", () => {
  it("a redemption: lot campaign.<id>, the variant's grant, expiry days after now, variant and code in metadata", () => {
    const withGrant: VariantSpec = { variant: "big", weight: 1, grant: { ...terms, amount: 900, expires_in_days: 2 } };
    const big = termsOf(spec([withGrant]), withGrant);
    const cmd = redemptionGrant("spring", big, "big", "CG-ABC", T0);
    expect(cmd).toMatchObject({
      grantId: "campaign.spring",
      amount: 900,
      type: "promotional",
      priority: 50,
      source: "campaign",
      campaign: "spring",
      metadata: { variant: "big", code: "CG-ABC" },
      expiresAtMs: T0 + 2 * 86_400_000,
    });
    const plain = redemptionGrant("spring", termsOf(spec(null), v("default", 1)), "default", "X", T0);
    expect(plain.amount).toBe(500);
    expect(plain.expiresAtMs).toBe(T0 + 30 * 86_400_000);
    const never = redemptionGrant("s", { ...terms, expires_in_days: null }, "d", "X", T0);
    expect(never.expiresAtMs).toBeNull();
    expect(never.grantId).toBe("campaign.s");
  });

  it("a referral: lot referral.<campaign>.<referee>, source referral; a long referee id is hashed to stay a valid id", () => {
    const cmd = referralGrant("spring", "bob", terms, T0);
    expect(cmd).toMatchObject({ grantId: "referral.spring.bob", source: "referral", campaign: "spring" });
    const long = "r".repeat(128);
    const id = referralGrantId("c".repeat(64), long);
    expect(id).toMatch(ID_PATTERN);
    expect(id).not.toBe(referralGrantId("c".repeat(64), `${"r".repeat(127)}s`));
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/),
        fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
        (c, r) => {
          expect(referralGrantId(c, r)).toMatch(ID_PATTERN);
        },
      ),
    );
  });
});

describe("referral retries and codes", () => {
  it("backs off 5 s, 10 s, 20 s … up to an hour", () => {
    expect(referralRetryAtMs(1, T0)).toBe(T0 + REFERRAL_RETRY_BASE_MS);
    expect(referralRetryAtMs(2, T0)).toBe(T0 + 10_000);
    expect(referralRetryAtMs(3, T0)).toBe(T0 + 20_000);
    expect(referralRetryAtMs(40, T0)).toBe(T0 + REFERRAL_RETRY_MAX_MS);
  });

  it("formats 16 bytes as 26 base32 characters (128 bits), distinct bytes giving distinct codes", () => {
    expect(formatCode("CG-", new Uint8Array(16))).toBe(`CG-${"0".repeat(26)}`);
    expect(formatCode("", new Uint8Array(16).fill(255))).toBe(`${"Z".repeat(25)}W`);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        (a, b) => {
          const ca = formatCode("CG-", a);
          expect(ca).toMatch(/^CG-[0-9A-HJKMNP-TV-Z]{26}$/);
          if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) expect(ca).not.toBe(formatCode("CG-", b));
        },
      ),
    );
  });
});
