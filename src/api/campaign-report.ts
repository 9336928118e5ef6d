/**
 * GET /v1/reports/campaigns/{campaign_id}: marketing's report of one
 * campaign, per variant (src/reports/campaigns.ts), as JSON or CSV. A report
 * across accounts: an account-scoped key may not read it (403).
 */

import { z } from "@hono/zod-openapi";
import { replicaReader } from "../db/replica";
import { campaignReport, campaignTable } from "../reports/campaigns";
import { MAX_REPORT_ROWS } from "../reports/scope";
import { pathId, type Role, requireRole, validQuery } from "./context";
import { csvTable } from "./csv";
import { REPORT_READERS } from "./reports";
import { resource, route } from "./route";
import { Id, problems, Unit } from "./schemas";
import { requireUnscoped } from "./scope";

/** The finance report readers, and marketing: it is marketing's report. */
export const CAMPAIGN_REPORT_READERS: readonly Role[] = [...REPORT_READERS, "marketing"];

const CampaignIdParam = z.object({ campaign_id: Id.openapi({ param: { name: "campaign_id", in: "path" } }) });

const CampaignReportQuery = z.strictObject({
  unit: Unit.optional().openapi({
    description: "The unit of issued, consumed and expired; default: the unit of the campaign's grant",
  }),
  format: z.enum(["json", "csv"]).default("json"),
});

const Count = (description: string) => z.number().int().openapi({ description });

const CampaignReportSchema = z
  .object({
    campaign_id: z.string(),
    unit: z.string(),
    variants: z.array(
      z.object({
        variant: z.string().openapi({ description: '"default" for a campaign without variants' }),
        redeemed: Count("Accounts whose redemption was granted"),
        issued: Count("Credits the redemptions' lots issued"),
        consumed: Count("Credits consumed from those lots (net of invoice reversals)"),
        expired: Count("Credits of those lots that expired unspent"),
        converted: Count("Redeeming accounts with a purchased lot issued after their redemption"),
        conversion_bps: Count("floor(converted × 10000 / redeemed); 0 when redeemed is 0"),
        breakage_bps: Count("floor(expired × 10000 / issued); 0 when issued is 0"),
      }),
    ),
  })
  .openapi("CampaignReport");

export const campaignReports = resource();

route(
  campaignReports,
  {
    method: "get",
    path: "/v1/reports/campaigns/{campaign_id}",
    summary: "One campaign per variant: redeemed, issued, consumed, expired, converted, conversion and breakage",
    description:
      "Every variant the campaign declares appears, zeros included. Read from D1 (campaign_redemptions and the " +
      "journal), which each account's outbox feeds a moment after the write: figures of the last moments may " +
      `still grow. One aggregate statement; at most ${MAX_REPORT_ROWS} variants. Roles: admin, finance, viewer, ` +
      "marketing; account-scoped keys 403. Unknown campaign: 404 code_not_found.",
    request: { params: CampaignIdParam, query: CampaignReportQuery },
    responses: {
      200: {
        description: "The report",
        content: { "application/json": { schema: CampaignReportSchema }, "text/csv": { schema: z.string() } },
      },
      ...problems(400, 401, 403, 404),
    },
  },
  async (c) => {
    requireRole(c, CAMPAIGN_REPORT_READERS);
    requireUnscoped(c);
    const campaignId = pathId(c, "campaign_id");
    const q = validQuery(c, CampaignReportQuery);
    const report = await campaignReport(replicaReader(c.env), campaignId, q.unit);
    if (q.format === "json") return c.json(report, 200);
    const t = campaignTable(report);
    return c.body(csvTable(t.header, t.rows), 200, { "content-type": "text/csv; charset=utf-8" });
  },
);
