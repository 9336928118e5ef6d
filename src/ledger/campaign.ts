/**
 * Campaign rules, pure: what a campaign may say (beyond its schema), which
 * A/B variant an account lands in, whether a redemption falls inside the
 * window, and the grants a redemption and a referral issue. No I/O, no clock
 * of its own: the gateway (src/api/redemptions.ts) and the account's Durable
 * Object (src/account/redemption.ts, referral.ts) bring the time.
 */
import type { GrantCommand } from "./grant";
import { sha256Hex } from "./hash";
import { ID_PATTERN } from "./ids";

/** A campaign has at most this many A/B variants. */
export const MAX_VARIANTS = 16;
/** A variant's weight: an integer from 1 to this. */
export const MAX_VARIANT_WEIGHT = 1_000_000;
/** A campaign id is at most this long, so `campaign.<id>` and `referral.<id>.…` stay valid grant ids. */
export const MAX_CAMPAIGN_ID_LENGTH = 64;
/** `expires_in_days` of a campaign's grant: 1 to this. */
export const MAX_EXPIRES_IN_DAYS = 3650;
/** The variant of a campaign that names none. */
export const DEFAULT_VARIANT = "default";
/** Hex digits of the SHA-256 read as the assignment number: 13 × 4 = 52 bits, a safe integer. */
const ASSIGN_HEX_DIGITS = 13;
const DAY_MS = 86_400_000;

/** What a redemption (or a referral reward) issues, as stored in the campaign's spec. */
export interface GrantTerms {
  amount: number;
  type: "promotional";
  unit: string;
  /** null: the lot never expires. */
  expires_in_days: number | null;
  priority: number;
}

export interface VariantSpec {
  variant: string;
  weight: number;
  /** null: the campaign's own grant. */
  grant: GrantTerms | null;
}

/** The campaign as PUT, minus name and the columns of its own (window, max_redemptions). */
export interface CampaignSpec {
  grant: GrantTerms;
  variants: VariantSpec[] | null;
  referrer_grant: GrantTerms | null;
  requires_verified: boolean;
}

export interface CampaignWindow {
  startsAtMs: number | null;
  endsAtMs: number | null;
}

/**
 * Why a campaign spec breaks the rules its schema cannot state; null when it
 * is fine. Variants: 1..MAX_VARIANTS, unique names, integer weights
 * 1..MAX_VARIANT_WEIGHT, every variant grant in the campaign grant's unit. Window:
 * ends after it starts.
 * @example campaignProblem({ ...spec, variants: [] }, { startsAtMs: null, endsAtMs: null }) // "variants: 1 to 16"
 */
export function campaignProblem(spec: CampaignSpec, window: CampaignWindow): string | null {
  if (window.startsAtMs !== null && window.endsAtMs !== null && window.endsAtMs <= window.startsAtMs) {
    return "ends_at must be after starts_at";
  }
  const variants = spec.variants;
  if (variants === null) return null;
  if (variants.length < 1 || variants.length > MAX_VARIANTS) return `variants: 1 to ${MAX_VARIANTS}`;
  const names = new Set<string>();
  for (const v of variants) {
    if (names.has(v.variant)) return `variants: the name ${v.variant} is used twice`;
    names.add(v.variant);
    if (!Number.isSafeInteger(v.weight) || v.weight < 1 || v.weight > MAX_VARIANT_WEIGHT) {
      return `variants: weight must be an integer from 1 to ${MAX_VARIANT_WEIGHT}`;
    }
    // One unit per campaign: its variants are compared side by side in one report.
    if (v.grant !== null && v.grant.unit !== spec.grant.unit) {
      return `variants: ${v.variant}'s grant is in ${v.grant.unit}, the campaign's in ${spec.grant.unit} (one unit per campaign)`;
    }
  }
  return null;
}

/** Every amount the campaign can issue: its grant, each variant's own grant and the referrer's reward. */
export function campaignAmounts(spec: CampaignSpec): number[] {
  const out = [spec.grant.amount];
  for (const v of spec.variants ?? []) if (v.grant !== null) out.push(v.grant.amount);
  if (spec.referrer_grant !== null) out.push(spec.referrer_grant.amount);
  return out;
}

/** The variants a campaign draws from: its own, or the one `default` variant. */
export function variantsOf(spec: CampaignSpec): VariantSpec[] {
  return spec.variants ?? [{ variant: DEFAULT_VARIANT, weight: 1, grant: null }];
}

/**
 * The variant `accountId` lands in: the first 52 bits of SHA-256(campaign ∖0
 * account) as an integer, modulo the total weight, walked along the
 * cumulative weights. Integers only; the same inputs always give the same
 * variant, and a variant's share tends to weight ÷ Σ weights.
 * @example assignVariant("spring", "a1", [{ variant: "a", weight: 70, grant: null }, { variant: "b", weight: 30, grant: null }]).variant
 */
export function assignVariant(campaignId: string, accountId: string, variants: readonly VariantSpec[]): VariantSpec {
  if (variants.length === 0) throw new Error("assignVariant: a campaign has at least one variant");
  const total = variants.reduce((sum, v) => sum + v.weight, 0);
  const point = Number.parseInt(sha256Hex(`${campaignId}\u0000${accountId}`).slice(0, ASSIGN_HEX_DIGITS), 16) % total;
  let cumulative = 0;
  for (const v of variants) {
    cumulative += v.weight;
    if (point < cumulative) return v;
  }
  // Unreachable: point < total = the last cumulative weight.
  throw new Error("assignVariant: weights did not cover the point");
}

/** Why a redemption at `nowMs` falls outside the window; null inside (starts_at ≤ now < ends_at). */
export function windowProblem(window: CampaignWindow, nowMs: number): string | null {
  if (window.startsAtMs !== null && nowMs < window.startsAtMs) return "the campaign has not started yet";
  if (window.endsAtMs !== null && nowMs >= window.endsAtMs) return "the campaign has ended";
  return null;
}

/** The lot a redemption issues: one per account and campaign, so its id names the campaign alone. */
export const redemptionGrantId = (campaignId: string): string => `campaign.${campaignId}`;

/**
 * The grant id of a referral reward: `referral.<campaign>.<referee>`, or, when
 * that would pass 128 characters, `referral.<campaign>.h<first 32 hex of
 * SHA-256(referee)>` (still one per referee and campaign).
 */
export function referralGrantId(campaignId: string, refereeId: string): string {
  const plain = `referral.${campaignId}.${refereeId}`;
  if (ID_PATTERN.test(plain)) return plain;
  return `referral.${campaignId}.h${sha256Hex(refereeId).slice(0, 32)}`;
}

function termsGrant(
  grantId: string,
  terms: GrantTerms,
  campaignId: string,
  source: string,
  metadata: Record<string, string>,
  nowMs: number,
): GrantCommand {
  return {
    grantId,
    unit: terms.unit,
    type: terms.type,
    amount: terms.amount,
    priority: terms.priority,
    effectiveAtMs: null,
    expiresAtMs: terms.expires_in_days === null ? null : nowMs + terms.expires_in_days * DAY_MS,
    source,
    reason: null,
    campaign: campaignId,
    incidentId: null,
    costBasis: null,
    metadata,
    sourceGrantId: null,
  };
}

/**
 * The grant a redemption issues on `terms` (the variant's grant, else the
 * campaign's: see termsOf): lot `campaign.<campaign_id>`, source `campaign`,
 * metadata {variant, code}, expiring `expires_in_days` after the redemption.
 */
export function redemptionGrant(
  campaignId: string,
  terms: GrantTerms,
  variant: string,
  code: string,
  nowMs: number,
): GrantCommand {
  return termsGrant(redemptionGrantId(campaignId), terms, campaignId, "campaign", { variant, code }, nowMs);
}

/** What a redemption in `variant` issues: the variant's own grant, else the campaign's. */
export const termsOf = (spec: CampaignSpec, variant: VariantSpec): GrantTerms => variant.grant ?? spec.grant;

/** The referrer's reward: lot `referral.<campaign>.<referee>`, source `referral`, issued when it is delivered. */
export function referralGrant(campaignId: string, refereeId: string, terms: GrantTerms, nowMs: number): GrantCommand {
  const metadata = { referee: refereeId };
  return termsGrant(referralGrantId(campaignId, refereeId), terms, campaignId, "referral", metadata, nowMs);
}

/** A failed referral delivery is retried after REFERRAL_RETRY_BASE_MS · 2^(attempts−1), capped at REFERRAL_RETRY_MAX_MS. */
export const REFERRAL_RETRY_BASE_MS = 5_000;
export const REFERRAL_RETRY_MAX_MS = 3_600_000;
/** After this many failed deliveries a reward is marked failed and logged (an operator looks). */
export const REFERRAL_MAX_ATTEMPTS = 20;

/** When the `attempts`-th failed delivery (1-based) is tried again. */
export function referralRetryAtMs(attempts: number, nowMs: number): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 30);
  return nowMs + Math.min(REFERRAL_RETRY_BASE_MS * 2 ** exponent, REFERRAL_RETRY_MAX_MS);
}

/** Crockford's base32: no I, L, O, U, so a code read aloud or typed is not misread. */
const BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * A code from random bytes: `prefix` + base32 of the bytes (16 bytes → 26
 * characters, 128 bits). The caller brings the randomness (crypto.getRandomValues).
 * @example formatCode("CG-", new Uint8Array(16)) // "CG-00000000000000000000000000"
 */
export function formatCode(prefix: string, bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  return prefix + out;
}

/** Codes are matched without regard to case: stored and looked up in upper case. */
export const normalizeCode = (code: string): string => code.toUpperCase();
