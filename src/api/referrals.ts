/**
 * POST /v1/accounts/{account_id}/referral-code: the account's one referral
 * code for a campaign that has a referrer_grant. Redeeming it (POST
 * /v1/redemptions) grants the referee the campaign's grant at once and the
 * referrer the referrer_grant on the referee's first purchased grant
 * (src/account/referral.ts), each exactly once.
 */
import { z } from "@hono/zod-openapi";
import { claimReferralCode } from "../db/campaigns";
import { ApiError } from "../errors";
import { formatCode } from "../ledger/campaign";
import { auditBy } from "./audit";
import { CampaignId, CODE_RANDOM_BYTES, specOf } from "./campaign-schemas";
import { campaignOr404 } from "./campaigns";
import { pathId, requireRole, validBody } from "./context";
import { resource, route } from "./route";
import { AccountIdParam, json, problems } from "./schemas";
import { requireAccountExists } from "./scope";

/** Who may hand out an account's referral code. */
export const REFERRAL_CODE_MAKERS = ["admin", "marketing", "gateway"] as const;
/** The readable prefix of a referral code. */
export const REFERRAL_CODE_PREFIX = "RF-";

const ReferralCodeInput = z.strictObject({ campaign_id: CampaignId }).openapi("ReferralCodeInput");

export const referrals = resource();

route(
  referrals,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/referral-code",
    summary: "The account's referral code for a campaign (the same code on repeat)",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: ReferralCodeInput } }, required: true },
    },
    responses: {
      201: json(z.object({ code: z.string(), campaign_id: z.string(), account_id: z.string() }), "The code"),
      ...problems(400, 401, 403, 404, 413, 415),
    },
  },
  async (c) => {
    requireRole(c, REFERRAL_CODE_MAKERS);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, ReferralCodeInput);
    const campaign = await campaignOr404(c, input.campaign_id);
    if (specOf(campaign).referrer_grant === null) {
      throw new ApiError("invalid_request", `campaign ${campaign.campaign_id} has no referrer_grant`);
    }
    await requireAccountExists(c, accountId);
    c.set("accountId", accountId);
    const fresh = formatCode(REFERRAL_CODE_PREFIX, crypto.getRandomValues(new Uint8Array(CODE_RANDOM_BYTES)));
    const target = `${campaign.campaign_id}:${accountId}`;
    const { code, created } = await claimReferralCode(
      c.env.DB,
      campaign.campaign_id,
      accountId,
      fresh,
      {
        ...auditBy(c),
        action: "referral_code.created",
        target,
        before: null,
        after: { campaign_id: campaign.campaign_id, account_id: accountId },
      },
      Date.now(),
    );
    if (!created) c.header("idempotent-replayed", "true");
    return c.json({ code, campaign_id: campaign.campaign_id, account_id: accountId }, 201);
  },
);
