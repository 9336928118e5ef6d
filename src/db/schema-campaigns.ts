/**
 * D1 tables of campaigns (migrations/0012_campaigns.sql): the campaigns
 * marketing runs, their codes (generated, imported, or one referral code per
 * referrer and campaign) and one redemption row per account and campaign.
 * D1 runs one statement at a time and a batch in one transaction, so the
 * conditional writes of a redemption (the row, a single-use code's claim, the
 * campaign's counter) never interleave with another redemption's.
 */
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const campaigns = sqliteTable("campaigns", {
  campaignId: text("campaign_id").primaryKey(),
  name: text("name").notNull(),
  /** JSON of the rest of the campaign as PUT: grant, variants, referrer_grant, requires_verified. */
  spec: text("spec").notNull(),
  startsAtMs: integer("starts_at_ms"),
  endsAtMs: integer("ends_at_ms"),
  maxRedemptions: integer("max_redemptions"),
  /** Redemptions reserved so far (never more than max_redemptions). */
  redeemed: integer("redeemed").notNull().default(0),
  createdAtMs: integer("created_at_ms").notNull(),
  updatedAtMs: integer("updated_at_ms").notNull(),
});

export const campaignCodes = sqliteTable(
  "campaign_codes",
  {
    code: text("code").primaryKey(),
    campaignId: text("campaign_id").notNull(),
    /** 1: the code grants once, to the first account that redeems it. */
    singleUse: integer("single_use", { mode: "boolean" }).notNull(),
    /** Set on a referral code: the account rewarded when a referee makes a first purchase. */
    referrerAccountId: text("referrer_account_id"),
    /** A single-use code's redeemer, once claimed. */
    redeemedBy: text("redeemed_by"),
    redeemedAtMs: integer("redeemed_at_ms"),
    createdAtMs: integer("created_at_ms").notNull(),
  },
  (t) => [
    index("campaign_codes_campaign").on(t.campaignId, t.createdAtMs, t.code),
    uniqueIndex("campaign_codes_referrer").on(t.campaignId, t.referrerAccountId),
  ],
);

export const campaignRedemptions = sqliteTable(
  "campaign_redemptions",
  {
    campaignId: text("campaign_id").notNull(),
    accountId: text("account_id").notNull(),
    code: text("code").notNull(),
    variant: text("variant").notNull(),
    /** The lot the redemption issued on the account. */
    grantId: text("grant_id").notNull(),
    /** reserved (claimed in D1, grant not yet confirmed) → granted. */
    status: text("status").notNull(),
    referrerAccountId: text("referrer_account_id"),
    redeemedAtMs: integer("redeemed_at_ms").notNull(),
    /**
     * A random nonce of the call that reserved the row: a reservation batch
     * reads it back to learn whether it won, and a release deletes only the
     * row its own call (or the call it completes) reserved.
     */
    reservation: text("reservation").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.campaignId, t.accountId] }),
    index("campaign_redemptions_variant").on(t.campaignId, t.variant),
  ],
);
