/**
 * D1 rows of campaigns for the campaign-report suites, written the way the
 * campaign routes and the redemption write them (src/db/schema-campaigns.ts):
 * one `campaigns` row whose `spec` is the JSON of the campaign as PUT, and
 * one `campaign_redemptions` row per account ('reserved' while the grant is
 * unconfirmed, 'granted' once the lot is issued).
 */
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { markGranted, reserveRedemption } from "../../src/db/campaigns";
import { campaigns } from "../../src/db/schema";
import { normalizeCode, type VariantSpec } from "../../src/ledger/campaign";
import { call, type Res } from "./helpers";

export type { VariantSpec };

/**
 * A campaign row; `variants` omitted: a campaign without variants (its one
 * variant is "default"). `unit`: the unit of the campaign's grant (the
 * report's default unit).
 */
export async function insertCampaign(campaignId: string, variants?: VariantSpec[], unit = "credits"): Promise<void> {
  const spec = {
    grant: { amount: 1000, type: "promotional", unit, expires_in_days: null, priority: 100 },
    variants: variants ?? null,
    referrer_grant: null,
    requires_verified: false,
  };
  const now = Date.now();
  await drizzle(env.DB)
    .insert(campaigns)
    .values({
      campaignId,
      name: `campaign ${campaignId}`,
      spec: JSON.stringify(spec),
      createdAtMs: now,
      updatedAtMs: now,
    })
    .onConflictDoNothing();
}

export interface RedemptionSpec {
  campaignId: string;
  accountId: string;
  variant: string;
  grantId: string;
  redeemedAtMs: number;
  status?: "reserved" | "granted";
}

/**
 * A redemption row through the campaign store's own writes
 * (src/db/campaigns.ts): the code row, the reservation at `redeemedAtMs`,
 * then — unless it is to stay 'reserved' — markGranted, as the redemption
 * does once the account's Durable Object issued the lot.
 */
export async function insertRedemption(r: RedemptionSpec): Promise<void> {
  const code = normalizeCode(`CODE-${r.accountId}-${r.campaignId}`.slice(0, 120));
  await env.DB.prepare(
    `INSERT INTO campaign_codes (code, campaign_id, single_use, referrer_account_id, redeemed_by, redeemed_at_ms,
       created_at_ms) VALUES (?, ?, 1, NULL, NULL, NULL, ?)`,
  )
    .bind(code, r.campaignId, r.redeemedAtMs)
    .run();
  const reserved = await reserveRedemption(
    env.DB,
    {
      campaignId: r.campaignId,
      accountId: r.accountId,
      code,
      singleUse: true,
      variant: r.variant,
      grantId: r.grantId,
      referrerAccountId: null,
      nonce: crypto.randomUUID(),
    },
    r.redeemedAtMs,
  );
  if (reserved.kind !== "won") throw new Error(`redemption of ${r.accountId} in ${r.campaignId}: ${reserved.kind}`);
  if (r.status !== "reserved") await markGranted(env.DB, r.campaignId, r.accountId);
}

/** GET /v1/reports/campaigns/{id}?<query>, admin unless told otherwise. */
export function campaignReport(campaignId: string, query: Record<string, string> = {}, token?: string): Promise<Res> {
  const qs = new URLSearchParams(query).toString();
  return call(
    "GET",
    `/v1/reports/campaigns/${encodeURIComponent(campaignId)}${qs ? `?${qs}` : ""}`,
    undefined,
    token ? { token } : {},
  );
}
