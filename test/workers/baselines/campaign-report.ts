/**
 * Baselines of the campaign-report routes for unicode.security.test.ts (see ./types.ts).
 * The setup writes a campaign row to D1 (as the campaign routes would), so
 * the report answers 200 for it.
 */
import { insertCampaign } from "../campaign-report-helpers";
import { uid } from "../helpers";
import type { BaselineArea } from "./types";

export const campaignReport: BaselineArea = {
  setup: async () => {
    const reportCampaign = uid("cmp-report");
    await insertCampaign(reportCampaign);
    return { reportCampaign };
  },
  rows: {
    "GET /v1/reports/campaigns/{campaign_id}": (f) => ({
      params: { campaign_id: f.extra.reportCampaign ?? "" },
      query: { unit: "credits", format: "json" },
    }),
  },
};
