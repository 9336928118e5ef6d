/** Baselines of the referrals routes for unicode.security.test.ts (see ./types.ts). */
import { call, uid } from "../helpers";
import type { BaselineArea } from "./types";

export const referrals: BaselineArea = {
  // Per fixture: a campaign with a referrer_grant (the fixture account asks for its code; the same code on repeat).
  setup: async () => {
    const referralCampaignId = uid("bl-ref");
    const put = await call("PUT", `/v1/campaigns/${referralCampaignId}`, {
      name: "Baseline referrals",
      grant: { amount: 100 },
      referrer_grant: { amount: 50 },
    });
    if (put.status !== 201) throw new Error(`referrals baseline setup: ${put.status} ${put.text}`);
    return { referralCampaignId };
  },
  rows: {
    "POST /v1/accounts/{account_id}/referral-code": (f) => ({
      body: { campaign_id: f.extra.referralCampaignId ?? "" },
    }),
  },
};
