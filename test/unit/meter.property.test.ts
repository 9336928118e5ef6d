/**
 * Rating (src/ledger/meter.ts): ceil(quantity · amount / per) per request,
 * exact past 2^53, refused above 10^15. The reference here is rational
 * arithmetic in BigInt written from the brief alone: the smallest integer
 * c with c · per ≥ quantity · amount.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type EntryDraft, MAX_AMOUNT, rate, ratingView, sealEntries, verifyChain, withRating } from "../../src/ledger";
import { GENESIS_HASH } from "../../src/ledger/hash";

/** The reference: search-free ceil via the defining inequality, checked both ways. */
function reference(quantity: number, amount: number, per: number): bigint {
  const exact = BigInt(quantity) * BigInt(amount);
  const p = BigInt(per);
  let c = exact / p;
  if (c * p < exact) c += 1n;
  return c;
}

const term = fc.integer({ min: 1, max: MAX_AMOUNT });
const quantity = fc.oneof(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));

describe("rate: worked examples", () => {
  it("prices tokens at 3 credits per 1 000, rounding each request up", () => {
    // 2 500 tokens = 7.5 credits -> 8; 1 000 -> exactly 3; 1 token = 0.003 -> 1; 333 = 0.999 -> 1; 334 = 1.002 -> 2.
    expect(rate(2_500, { amount: 3, per: 1_000 })).toEqual({ ok: true, value: 8 });
    expect(rate(1_000, { amount: 3, per: 1_000 })).toEqual({ ok: true, value: 3 });
    expect(rate(1, { amount: 3, per: 1_000 })).toEqual({ ok: true, value: 1 });
    expect(rate(333, { amount: 3, per: 1_000 })).toEqual({ ok: true, value: 1 });
    expect(rate(334, { amount: 3, per: 1_000 })).toEqual({ ok: true, value: 2 });
  });

  it("prices GPU seconds, compute minutes and gigabytes", () => {
    // 90 GPU seconds at 2 credits each = 180; 61 s of compute at 5 per minute (60 s) = 5.083… -> 6;
    // 1 536 MB at 10 per GB (1 024 MB) = 15.
    expect(rate(90, { amount: 2, per: 1 })).toEqual({ ok: true, value: 180 });
    expect(rate(61, { amount: 5, per: 60 })).toEqual({ ok: true, value: 6 });
    expect(rate(1_536, { amount: 10, per: 1_024 })).toEqual({ ok: true, value: 15 });
  });

  it("is exact where the product passes 2^53", () => {
    // (2^53 − 1) · 999 = 8 998 192 055 486 250 009 (past 2^53: floats would lose the tail);
    // / 10^6 = 8 998 192 055 486.250009 -> 8 998 192 055 487.
    expect(rate(Number.MAX_SAFE_INTEGER, { amount: 999, per: 1_000_000 })).toEqual({
      ok: true,
      value: 8_998_192_055_487,
    });
    // 9 007 · 1 000 022 122 209 = 9 007 199 254 736 463, remainder 4 528 -> rounded up to …210.
    expect(rate(Number.MAX_SAFE_INTEGER, { amount: 1, per: 9_007 })).toEqual({ ok: true, value: 1_000_022_122_210 });
  });

  it("refuses a charge above 10^15 and terms that are not positive safe integers", () => {
    expect(rate(1_000_000_000_000_001, { amount: 1, per: 1 })).toMatchObject({
      ok: false,
      error: { code: "invalid_amount" },
    });
    expect(rate(MAX_AMOUNT, { amount: 1, per: 1 })).toEqual({ ok: true, value: MAX_AMOUNT });
    for (const q of [0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN]) {
      expect(rate(q, { amount: 1, per: 1 })).toMatchObject({ ok: false, error: { code: "invalid_request" } });
    }
    expect(rate(1, { amount: 0, per: 1 })).toMatchObject({ ok: false, error: { code: "invalid_request" } });
    expect(rate(1, { amount: 1, per: MAX_AMOUNT + 1 })).toMatchObject({
      ok: false,
      error: { code: "invalid_request" },
    });
  });
});

describe("rate: properties", () => {
  it("equals the reference ceil, or refuses exactly when the reference passes 10^15", () => {
    fc.assert(
      fc.property(quantity, term, term, (q, amount, per) => {
        const want = reference(q, amount, per);
        const got = rate(q, { amount, per });
        if (want > BigInt(MAX_AMOUNT)) expect(got).toMatchObject({ ok: false, error: { code: "invalid_amount" } });
        else expect(got).toEqual({ ok: true, value: Number(want) });
      }),
      { numRuns: 2_000 },
    );
  });

  it("never charges less than the exact value, and less than one unit more", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        term,
        (q, amount, per) => {
          const got = rate(q, { amount, per });
          if (!got.ok) return;
          const exact = BigInt(q) * BigInt(amount);
          const charged = BigInt(got.value) * BigInt(per);
          expect(charged >= exact).toBe(true);
          expect(charged - exact < BigInt(per)).toBe(true);
          expect(got.value).toBeGreaterThanOrEqual(1);
        },
      ),
    );
  });

  it("is monotone in quantity, and splitting a request never costs less than sending it whole", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        term,
        term,
        (a, b, amount, per) => {
          const whole = rate(a + b, { amount, per });
          const left = rate(a, { amount, per });
          const right = rate(b, { amount, per });
          if (!whole.ok || !left.ok || !right.ok) return;
          expect(rate(a, { amount, per })).toEqual(left);
          expect(left.value).toBeLessThanOrEqual(whole.value);
          expect(left.value + right.value).toBeGreaterThanOrEqual(whole.value);
        },
      ),
    );
  });
});

describe("rating on entries", () => {
  const draft = (amount: number): EntryDraft => ({
    kind: "debit",
    unit: "credits",
    amount: -amount,
    heldDelta: 0,
    grantId: "g1",
    creditType: "purchased",
    ref: "d1",
    reason: null,
    effectiveAtMs: 1_700_000_000_000,
  });
  const ctx = {
    accountId: "a1",
    actor: "k:gateway",
    txnId: "txn_1",
    headSeq: 0,
    headHash: GENESIS_HASH,
    nowMs: 1_700_000_000_000,
  };

  it("leaves an unmetered entry without the member (so its hash is the one it always had)", () => {
    const plain = sealEntries([draft(3)], ctx).entries[0];
    expect(plain).toBeDefined();
    expect(Object.hasOwn(plain as object, "rating")).toBe(false);
    // The hash of this exact entry as sealed before meters existed (JCS without a rating member).
    const again = sealEntries(withRating([draft(3)], undefined), ctx).entries[0];
    expect(again?.hash).toBe(plain?.hash);
    expect(ratingView(undefined)).toEqual({});
  });

  it("hashes the rating when present, so editing it breaks the chain", () => {
    const rating = { meter: "tokens-gpt-x", quantity: 2_500, price_version: 1 };
    const sealed = sealEntries(withRating([draft(8), draft(0)], rating), ctx).entries;
    expect(sealed[0]?.rating).toEqual(rating);
    expect(verifyChain(sealed)).toBeNull();
    const plainHash = sealEntries([draft(8)], ctx).entries[0]?.hash;
    expect(sealed[0]?.hash).not.toBe(plainHash);
    const forged = sealed.map((e, i) => (i === 0 ? { ...e, rating: { ...rating, price_version: 2 } } : e));
    expect(verifyChain(forged)).toMatchObject({ seq: 1 });
    expect(ratingView(rating)).toEqual({ meter: "tokens-gpt-x", quantity: 2_500, price_version: 1 });
  });
});
