/**
 * The shapes of /v1/campaigns (src/api/campaigns.ts): bounds, the zod
 * schemas that validate campaigns and codes and produce /openapi.json, and
 * the campaign as served.
 */
import { z } from "@hono/zod-openapi";
import type { CampaignRow } from "../db/campaigns";
import {
  type CampaignSpec,
  type GrantTerms,
  MAX_CAMPAIGN_ID_LENGTH,
  MAX_EXPIRES_IN_DAYS,
  MAX_VARIANT_WEIGHT,
  MAX_VARIANTS,
} from "../ledger/campaign";
import { Amount, ShortText, Time, Unit } from "./schemas";

/** Who may configure campaigns and add codes; marketing only within its key's max_grant_amount. */
export const CAMPAIGN_WRITERS = ["admin", "marketing"] as const;
/** Generated codes per request: `count` 1 … MAX_GENERATED_CODES (always single-use). */
export const MAX_GENERATED_CODES = 10_000;
/** Given codes per request: `codes` 1 … MAX_GIVEN_CODES (multi-use unless single_use: true). */
export const MAX_GIVEN_CODES = 1_000;
/** Random bytes in a generated code: 16 = 128 bits, so a code cannot be guessed. */
export const CODE_RANDOM_BYTES = 16;
/** The readable prefix of a generated campaign code. */
export const CODE_PREFIX = "CG-";
/** A campaign may be redeemed at most this many times in all (`max_redemptions`). */
export const MAX_REDEMPTIONS_LIMIT = 1_000_000_000;

export const CAMPAIGN_ID_PATTERN = new RegExp(`^[A-Za-z0-9._:-]{1,${MAX_CAMPAIGN_ID_LENGTH}}$`);
export const CampaignId = z
  .string()
  .regex(CAMPAIGN_ID_PATTERN, `1-${MAX_CAMPAIGN_ID_LENGTH} characters of [A-Za-z0-9._:-]`);
export const CampaignIdParam = z.object({
  campaign_id: CampaignId.openapi({ param: { name: "campaign_id", in: "path" } }),
});
/** A code as given or typed: 4–48 of [A-Za-z0-9_-]; matched without regard to case. */
export const CodeText = z
  .string()
  .regex(/^[A-Za-z0-9_-]{4,48}$/, "4-48 characters of [A-Za-z0-9_-]")
  .openapi({ example: "CG-7K3M9QX2RTB4W8N6P0ZJ5VHC1D" });

export const GrantTermsInput = z
  .strictObject({
    amount: Amount,
    type: z.literal("promotional").default("promotional"),
    unit: Unit.default("credits"),
    expires_in_days: z.number().int().min(1).max(MAX_EXPIRES_IN_DAYS).nullable().optional(),
    priority: z.number().int().min(0).max(1_000_000).default(100),
  })
  .openapi("CampaignGrantInput");

const VariantInput = z.strictObject({
  variant: z.string().regex(/^[A-Za-z0-9._-]{1,32}$/, "1-32 characters of [A-Za-z0-9._-]"),
  weight: z.number().int().min(1).max(MAX_VARIANT_WEIGHT),
  grant: GrantTermsInput.optional().openapi({ description: "Default: the campaign's grant" }),
});

export const CampaignInputSchema = z
  .strictObject({
    name: ShortText,
    grant: GrantTermsInput,
    starts_at: Time.nullable().optional(),
    ends_at: Time.nullable().optional(),
    max_redemptions: z.number().int().min(1).max(MAX_REDEMPTIONS_LIMIT).nullable().optional(),
    requires_verified: z.boolean().default(false),
    variants: z.array(VariantInput).min(1).max(MAX_VARIANTS).optional(),
    referrer_grant: GrantTermsInput.nullable().optional(),
  })
  .openapi("CampaignInput");

const GrantTermsSchema = z.object({
  amount: z.number().int(),
  type: z.literal("promotional"),
  unit: z.string(),
  expires_in_days: z.number().int().nullable(),
  priority: z.number().int(),
});

export const CampaignSchema = z
  .object({
    campaign_id: z.string(),
    name: z.string(),
    grant: GrantTermsSchema,
    variants: z
      .array(z.object({ variant: z.string(), weight: z.number().int(), grant: GrantTermsSchema.nullable() }))
      .nullable()
      .openapi({ description: 'null: one variant, "default"' }),
    referrer_grant: GrantTermsSchema.nullable(),
    requires_verified: z.boolean(),
    starts_at: z.string().nullable(),
    ends_at: z.string().nullable(),
    max_redemptions: z.number().int().nullable(),
    redeemed: z.number().int().openapi({ description: "Redemptions reserved so far" }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Campaign");

export const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The spec stored in the row's `spec` column. */
export const specOf = (row: CampaignRow): CampaignSpec => JSON.parse(row.spec) as CampaignSpec;

export function campaignView(row: CampaignRow) {
  const spec = specOf(row);
  return {
    campaign_id: row.campaign_id,
    name: row.name,
    grant: spec.grant,
    variants: spec.variants,
    referrer_grant: spec.referrer_grant,
    requires_verified: spec.requires_verified,
    starts_at: isoOrNull(row.starts_at_ms),
    ends_at: isoOrNull(row.ends_at_ms),
    max_redemptions: row.max_redemptions,
    redeemed: row.redeemed,
    created_at: new Date(row.created_at_ms).toISOString(),
    updated_at: new Date(row.updated_at_ms).toISOString(),
  };
}

export type TermsInput = z.infer<typeof GrantTermsInput>;
export const terms = (t: TermsInput): GrantTerms => ({
  amount: t.amount,
  type: t.type,
  unit: t.unit,
  expires_in_days: t.expires_in_days ?? null,
  priority: t.priority,
});
