/** Baselines of the campaigns and redemptions routes for unicode.security.test.ts (see ./types.ts). */
import { call, uid } from "../helpers";
import type { BaselineArea } from "./types";

const grant = () => ({ amount: 100, type: "promotional", unit: "credits", expires_in_days: 30, priority: 50 });
/** Every string field the PUT body has: name, times, grant type and unit, variant names, each nested grant (fresh objects per call). */
const campaign = () => ({
  name: "Baseline campaign",
  grant: grant(),
  starts_at: "2020-01-01T00:00:00Z",
  ends_at: "2099-01-01T00:00:00Z",
  requires_verified: false,
  variants: [
    { variant: "a", weight: 1, grant: grant() },
    { variant: "b", weight: 1 },
  ],
  referrer_grant: grant(),
});

/** A fresh given code: [A-Za-z0-9_-], at most 48 characters. */
const freshCode = () =>
  uid("bl")
    .replace(/[^A-Za-z0-9_-]/g, "")
    .slice(0, 40);

export const campaigns: BaselineArea = {
  // Per fixture: an open campaign without max_redemptions and a multi-use code, so every redemption baseline passes.
  setup: async () => {
    const campaignId = uid("bl-camp");
    const code = freshCode();
    const put = await call("PUT", `/v1/campaigns/${campaignId}`, campaign());
    if (put.status !== 201) throw new Error(`campaigns baseline setup: ${put.status} ${put.text}`);
    const codes = await call("POST", `/v1/campaigns/${campaignId}/codes`, { codes: [code] });
    if (codes.status !== 201) throw new Error(`campaigns baseline codes: ${codes.status} ${codes.text}`);
    return { campaignId, campaignCode: code };
  },
  rows: {
    "PUT /v1/campaigns/{campaign_id}": (f) => ({ params: { campaign_id: f.extra.campaignId ?? "" }, body: campaign() }),
    "GET /v1/campaigns": () => ({ query: { limit: "10", cursor: "a" } }),
    "GET /v1/campaigns/{campaign_id}": (f) => ({ params: { campaign_id: f.extra.campaignId ?? "" } }),
    "POST /v1/campaigns/{campaign_id}/codes": (f) => ({
      params: { campaign_id: f.extra.campaignId ?? "" },
      body: { codes: [freshCode()], single_use: false },
    }),
    "POST /v1/redemptions": (f) => ({ body: { code: f.extra.campaignCode ?? "", account_id: uid("redeemer") } }),
  },
};
