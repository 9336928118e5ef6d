/**
 * The campaign report: per variant of one campaign, the accounts that
 * redeemed it, what its lots issued and what became of those credits
 * (consumed, expired), how many of those accounts later bought credits, and
 * the two rates in basis points — so marketing can compare "1 000 credits at
 * signup" with "a 7-day trial".
 *
 * From D1 only (never an account's Durable Object): `campaign_redemptions`
 * (one row per account and campaign, written by the redemption) joined with
 * the journal, which each account's outbox feeds a moment after the write.
 * Everything is aggregated in one SQL statement: no per-redemption loop in
 * JS, and the result has one row per variant (at most MAX_REPORT_ROWS).
 */

import { readCampaign } from "../db/campaigns";
import type { D1Reader } from "../db/replica";
import { ApiError } from "../errors";
import { DEFAULT_UNIT } from "../ledger";
import { DEFAULT_VARIANT } from "../ledger/campaign";
import { exact, floorDiv } from "./figures";
import { groupedRows, Sql } from "./scope";

export interface CampaignVariantFigures {
  variant: string;
  /** Accounts whose redemption was granted (status 'granted'). */
  redeemed: number;
  /** Credits the redemptions' lots issued (their `grant` entries). */
  issued: number;
  /** Credits consumed from those lots, net of invoice reversals. */
  consumed: number;
  /** Credits of those lots that expired unspent. */
  expired: number;
  /** Redeeming accounts with a purchased lot issued after their redemption. */
  converted: number;
  /** floor(converted × 10 000 / redeemed); 0 when nobody redeemed. */
  conversion_bps: number;
  /** floor(expired × 10 000 / issued); 0 when nothing was issued. */
  breakage_bps: number;
}

export interface CampaignReport {
  campaign_id: string;
  unit: string;
  variants: CampaignVariantFigures[];
}

/** floor(part × 10 000 / whole) in BigInt: a rate in basis points, 0 when the whole is 0. */
export function basisPoints(part: number, whole: number): number {
  if (whole <= 0) return 0;
  return Number(floorDiv(BigInt(part) * 10_000n, BigInt(whole)));
}

/**
 * The variants a campaign's stored spec declares, in its order, or
 * [DEFAULT_VARIANT] when it declares none (`variants` null or absent). The
 * spec is the JSON of the campaign as PUT (src/db/schema-campaigns.ts,
 * src/ledger/campaign.ts CampaignSpec); its variants were validated when the
 * campaign was written (at most MAX_VARIANTS, unique names).
 */
/** The unit the campaign's grant issues in (the report's default unit); credits when it names none. */
export function grantUnit(specJson: string): string {
  try {
    const unit = (JSON.parse(specJson) as { grant?: { unit?: unknown } } | null)?.grant?.unit;
    return typeof unit === "string" ? unit : DEFAULT_UNIT;
  } catch {
    return DEFAULT_UNIT;
  }
}

export function declaredVariants(specJson: string): string[] {
  let spec: unknown;
  try {
    spec = JSON.parse(specJson);
  } catch {
    return [DEFAULT_VARIANT];
  }
  const list = (spec as { variants?: unknown } | null)?.variants;
  if (!Array.isArray(list) || list.length === 0) return [DEFAULT_VARIANT];
  const names = list
    .map((v) => (v as { variant?: unknown } | null)?.variant)
    .filter((v): v is string => typeof v === "string");
  return names.length > 0 ? [...new Set(names)] : [DEFAULT_VARIANT];
}

interface VariantRow {
  variant: string;
  redeemed: number;
  converted: number | null;
  issued: number | null;
  consumed: number | null;
  expired: number | null;
}

const ZERO_ROW = (variant: string): VariantRow => ({
  variant,
  redeemed: 0,
  converted: 0,
  issued: 0,
  consumed: 0,
  expired: 0,
});

/** A variant's figures from its summed row: outflows are served positive (−Σ amount). */
export function variantFigures(r: VariantRow): CampaignVariantFigures {
  const redeemed = exact(r.redeemed, "redeemed");
  const converted = exact(r.converted, "converted");
  const issued = exact(r.issued, "issued");
  // 0 − Σ, not −Σ: an empty sum is served as 0, never −0.
  const expired = exact(0 - (r.expired ?? 0), "expired");
  return {
    variant: r.variant,
    redeemed,
    issued,
    consumed: exact(0 - (r.consumed ?? 0), "consumed"),
    expired,
    converted,
    conversion_bps: basisPoints(converted, redeemed),
    breakage_bps: basisPoints(expired, issued),
  };
}

/**
 * One statement, three parts:
 * - `r`: the campaign's redemptions whose lot was issued: the redemption row
 *   (campaign_redemptions' primary key, campaign first) joined to its lot's
 *   `grant` journal row (journal_lot). A row still `reserved` whose lot was
 *   issued counts (the gateway's status write may have failed after the
 *   account committed); one whose lot never was does not.
 * - `lots`: per variant, the journal rows of those lots in `unit`
 *   (journal_lot), summed by category;
 * - `people`: per variant, the redeeming accounts and how many of them have
 *   a purchased lot issued (a `grant` entry of type purchased, in any unit)
 *   after their redemption's lot, in the account's own order (seq), never
 *   by comparing clocks (journal_purchases: kind, type and time in the index).
 *   A grant awaiting payment counts once activated, never while it waits or
 *   once cancelled (it has no entry until then).
 */
function reportSql(campaignId: string, unit: string): Sql {
  return new Sql().add(
    "WITH r AS (SELECT c.account_id AS account_id, c.grant_id AS grant_id, c.variant AS variant, " +
      "g.seq AS granted_seq, g.recorded_at_ms AS granted_ms FROM campaign_redemptions c " +
      "JOIN journal g ON g.account_id = c.account_id AND g.grant_id = c.grant_id AND g.kind = 'grant' " +
      "WHERE c.campaign_id = ?), " +
      "lots AS (SELECT r.variant AS variant, " +
      "SUM(CASE WHEN j.category = 'issued' THEN j.amount ELSE 0 END) AS issued, " +
      "SUM(CASE WHEN j.category = 'consumed' THEN j.amount ELSE 0 END) AS consumed, " +
      "SUM(CASE WHEN j.category = 'expired' THEN j.amount ELSE 0 END) AS expired " +
      "FROM r JOIN journal j ON j.account_id = r.account_id AND j.grant_id = r.grant_id " +
      "WHERE j.unit = ? GROUP BY r.variant), " +
      "people AS (SELECT r.variant AS variant, COUNT(*) AS redeemed, " +
      "SUM(EXISTS (SELECT 1 FROM journal p WHERE p.account_id = r.account_id " +
      "AND p.kind = 'grant' AND p.credit_type = 'purchased' " +
      "AND p.recorded_at_ms >= r.granted_ms AND p.seq > r.granted_seq)) AS converted " +
      "FROM r GROUP BY r.variant) " +
      "SELECT people.variant AS variant, people.redeemed AS redeemed, people.converted AS converted, " +
      "lots.issued AS issued, lots.consumed AS consumed, lots.expired AS expired " +
      "FROM people LEFT JOIN lots ON lots.variant = people.variant",
    campaignId,
    unit,
  );
}

/**
 * The report of one campaign in one unit, or 404 `code_not_found` ("no such
 * campaign or referral code", API.md's error table) when the campaign does
 * not exist. Every variant the campaign declares appears, zeros included,
 * in its declared order; a variant that redemptions name but the spec no
 * longer does (the campaign was PUT again) follows, by name.
 */
export async function campaignReport(
  db: D1Reader,
  campaignId: string,
  askedUnit: string | undefined,
): Promise<CampaignReport> {
  const campaign = await readCampaign(db, campaignId);
  if (campaign === null) throw new ApiError("code_not_found", `campaign ${campaignId} does not exist`);
  const unit = askedUnit ?? grantUnit(campaign.spec);
  const rows = await groupedRows<VariantRow>(
    db,
    reportSql(campaignId, unit),
    " ORDER BY people.variant",
    "the campaign's variants",
  );
  const byVariant = new Map(rows.map((r) => [r.variant, r]));
  const declared = declaredVariants(campaign.spec);
  const extra = rows.map((r) => r.variant).filter((v) => !declared.includes(v));
  return {
    campaign_id: campaignId,
    unit,
    variants: [...declared, ...extra].map((v) => variantFigures(byVariant.get(v) ?? ZERO_ROW(v))),
  };
}

const MEMBERS = [
  "variant",
  "redeemed",
  "issued",
  "consumed",
  "expired",
  "converted",
  "conversion_bps",
  "breakage_bps",
] as const;

/** The CSV form: one row per variant, the campaign and unit repeated in each. */
export function campaignTable(r: CampaignReport): { header: string[]; rows: (string | number)[][] } {
  return {
    header: ["campaign_id", "unit", ...MEMBERS],
    rows: r.variants.map((v) => [r.campaign_id, r.unit, ...MEMBERS.map((m) => v[m])]),
  };
}
