/**
 * /v1/campaigns: campaigns marketing runs (window, max_redemptions,
 * verified-only, A/B variants, a referrer's reward) and their codes. The
 * rows live in D1 (src/db/campaigns.ts); redemptions are src/api/redemptions.ts.
 */
import { z } from "@hono/zod-openapi";
import { grantRefusal } from "../bulk/permission";
import {
  CAMPAIGNS_PAGE_MAX,
  type CampaignRow,
  existingCodes,
  insertCodes,
  listCampaigns,
  readCampaign,
  saveCampaign,
} from "../db/campaigns";
import { ApiError } from "../errors";
import {
  type CampaignSpec,
  campaignAmounts,
  campaignProblem,
  formatCode,
  MAX_CAMPAIGN_ID_LENGTH,
  normalizeCode,
} from "../ledger/campaign";
import { auditBy } from "./audit";
import {
  CAMPAIGN_ID_PATTERN,
  CAMPAIGN_WRITERS,
  CampaignId,
  CampaignIdParam,
  CampaignInputSchema,
  CampaignSchema,
  CODE_PREFIX,
  CODE_RANDOM_BYTES,
  CodeText,
  campaignView,
  isoOrNull,
  MAX_GENERATED_CODES,
  MAX_GIVEN_CODES,
  specOf,
  terms,
} from "./campaign-schemas";
import { type AppContext, type Caller, READERS, requireRole, validBody, validQuery } from "./context";
import { resource, route } from "./route";
import { json, Limit, parseTime, problems } from "./schemas";
import { requireUnscoped } from "./scope";

/**
 * Every amount is one the key may grant itself (grantRefusal: for marketing,
 * promotional within max_grant_amount; admin has no limit). Campaign grants
 * are promotional only, so the type is always allowed.
 */
export function withinMarketingLimit(caller: Caller, amounts: readonly number[]): void {
  for (const amount of amounts) {
    const refusal = grantRefusal(caller, "promotional", amount);
    if (refusal) throw new ApiError(refusal.code, refusal.detail, refusal.extra);
  }
}

/** 404 code_not_found for an unknown campaign (the contract's code for "no such campaign"). */
export async function campaignOr404(c: AppContext, campaignId: string): Promise<CampaignRow> {
  const row = await readCampaign(c.env.DB, campaignId);
  if (row === null) throw new ApiError("code_not_found", `campaign ${campaignId} does not exist`);
  return row;
}

function campaignPath(c: AppContext): string {
  const id = c.req.param("campaign_id");
  if (id === undefined || !CAMPAIGN_ID_PATTERN.test(id)) {
    throw new ApiError(
      "invalid_request",
      `campaign_id must be 1-${MAX_CAMPAIGN_ID_LENGTH} characters of [A-Za-z0-9._:-]`,
    );
  }
  return id;
}

export const campaigns = resource();

route(
  campaigns,
  {
    method: "put",
    path: "/v1/campaigns/{campaign_id}",
    summary: "Create or replace a campaign: its grant, window, limits, A/B variants and referrer reward",
    request: {
      params: CampaignIdParam,
      body: { content: { "application/json": { schema: CampaignInputSchema } }, required: true },
    },
    responses: {
      200: json(CampaignSchema, "Updated"),
      201: json(CampaignSchema, "Created"),
      ...problems(400, 401, 403, 413, 415),
    },
  },
  async (c) => {
    const caller = requireRole(c, CAMPAIGN_WRITERS);
    requireUnscoped(c);
    const campaignId = campaignPath(c);
    const input = validBody(c, CampaignInputSchema);
    const spec: CampaignSpec = {
      grant: terms(input.grant),
      variants:
        input.variants?.map((v) => ({
          variant: v.variant,
          weight: v.weight,
          grant: v.grant ? terms(v.grant) : null,
        })) ?? null,
      referrer_grant: input.referrer_grant ? terms(input.referrer_grant) : null,
      requires_verified: input.requires_verified,
    };
    const window = {
      startsAtMs: input.starts_at == null ? null : parseTime(input.starts_at),
      endsAtMs: input.ends_at == null ? null : parseTime(input.ends_at),
    };
    const problem = campaignProblem(spec, window);
    if (problem) throw new ApiError("invalid_request", problem);
    // marketing configures promotional grants within its key's limit: every grant the campaign can issue.
    withinMarketingLimit(caller, campaignAmounts(spec));
    const before = await readCampaign(c.env.DB, campaignId);
    const nowMs = Date.now();
    const after = {
      campaign_id: campaignId,
      name: input.name,
      ...spec,
      starts_at: isoOrNull(window.startsAtMs),
      ends_at: isoOrNull(window.endsAtMs),
      max_redemptions: input.max_redemptions ?? null,
    };
    const row = await saveCampaign(
      c.env.DB,
      {
        campaignId,
        name: input.name,
        spec: JSON.stringify(spec),
        startsAtMs: window.startsAtMs,
        endsAtMs: window.endsAtMs,
        maxRedemptions: input.max_redemptions ?? null,
      },
      {
        ...auditBy(c),
        action: before === null ? "campaign.created" : "campaign.updated",
        target: campaignId,
        before: before === null ? null : campaignView(before),
        after,
      },
      nowMs,
    );
    return c.json(campaignView(row), before === null ? 201 : 200);
  },
);

const ListQuery = z.strictObject({
  cursor: CampaignId.optional().openapi({ description: "next_cursor of the previous page" }),
  limit: Limit(CAMPAIGNS_PAGE_MAX, 50),
});

route(
  campaigns,
  {
    method: "get",
    path: "/v1/campaigns",
    summary: "List campaigns by id, a page at a time",
    request: { query: ListQuery },
    responses: {
      200: json(z.object({ campaigns: z.array(CampaignSchema), next_cursor: z.string().nullable() })),
      ...problems(400, 401, 403),
    },
  },
  async (c) => {
    requireRole(c, READERS);
    requireUnscoped(c);
    const q = validQuery(c, ListQuery);
    const page = await listCampaigns(c.env.DB, q.cursor ?? null, q.limit);
    const last = page.rows[page.rows.length - 1];
    return c.json({
      campaigns: page.rows.map(campaignView),
      next_cursor: page.more && last ? last.campaign_id : null,
    });
  },
);

route(
  campaigns,
  {
    method: "get",
    path: "/v1/campaigns/{campaign_id}",
    summary: "One campaign, with its redemptions so far",
    request: { params: CampaignIdParam },
    responses: { 200: json(CampaignSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    requireUnscoped(c);
    return c.json(campaignView(await campaignOr404(c, campaignPath(c))));
  },
);

const CodesInput = z
  .strictObject({
    count: z
      .number()
      .int()
      .min(1)
      .max(MAX_GENERATED_CODES)
      .optional()
      .openapi({
        description: `Generate this many single-use codes (1..${MAX_GENERATED_CODES}), 128 random bits each`,
      }),
    codes: z
      .array(CodeText)
      .min(1)
      .max(MAX_GIVEN_CODES)
      .optional()
      .openapi({
        description: `Add these codes (1..${MAX_GIVEN_CODES}); stored in upper case`,
      }),
    single_use: z.boolean().optional().openapi({
      description: "Given codes only: each grants once, to the first account (default false: once per account)",
    }),
  })
  .openapi("CampaignCodesInput");

const CodesResult = z.object({
  campaign_id: z.string(),
  codes: z.array(z.string()),
  single_use: z.boolean(),
  created: z.number().int().openapi({ description: "Codes new with this request (given codes may exist already)" }),
});

/**
 * `count` codes of CODE_RANDOM_BYTES random bytes each, base32 with CODE_PREFIX.
 * Two codes collide with probability 2^-128 per pair, beyond reach, so the
 * insert's ON CONFLICT never drops one in practice.
 */
function generateCodes(count: number): string[] {
  const bytes = new Uint8Array(count * CODE_RANDOM_BYTES);
  // getRandomValues fills at most 65 536 bytes per call.
  for (let at = 0; at < bytes.length; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536));
  return Array.from({ length: count }, (_, i) =>
    formatCode(CODE_PREFIX, bytes.subarray(i * CODE_RANDOM_BYTES, (i + 1) * CODE_RANDOM_BYTES)),
  );
}

route(
  campaigns,
  {
    method: "post",
    path: "/v1/campaigns/{campaign_id}/codes",
    summary: "Generate single-use codes (count) or add given codes (codes) to a campaign",
    request: {
      params: CampaignIdParam,
      body: { content: { "application/json": { schema: CodesInput } }, required: true },
    },
    responses: { 201: json(CodesResult, "Created"), ...problems(400, 401, 403, 404, 413, 415) },
  },
  async (c) => {
    const caller = requireRole(c, CAMPAIGN_WRITERS);
    requireUnscoped(c);
    const campaignId = campaignPath(c);
    const input = validBody(c, CodesInput);
    if ((input.count === undefined) === (input.codes === undefined)) {
      throw new ApiError("invalid_request", "send either count (generated codes) or codes (given codes)");
    }
    if (input.count !== undefined && input.single_use === false) {
      throw new ApiError("invalid_request", "generated codes are always single-use");
    }
    const campaign = await campaignOr404(c, campaignId);
    // A marketing key hands out only what it may grant itself (a code is a grant waiting to be redeemed).
    if (caller.role === "marketing") withinMarketingLimit(caller, campaignAmounts(specOf(campaign)));
    const generated = input.count !== undefined;
    const singleUse = generated || input.single_use === true;
    const codes = generated ? generateCodes(input.count ?? 0) : [...new Set((input.codes ?? []).map(normalizeCode))];
    if (!generated) {
      const clash = (await existingCodes(c.env.DB, codes)).filter(
        (r) => r.campaign_id !== campaignId || r.single_use !== (singleUse ? 1 : 0) || r.referrer_account_id !== null,
      );
      if (clash.length > 0) {
        const named = clash
          .slice(0, 10)
          .map((r) => r.code)
          .join(", ");
        throw new ApiError("invalid_request", `codes exist already with another campaign or use: ${named}`);
      }
    }
    const created = await insertCodes(
      c.env.DB,
      campaignId,
      codes,
      singleUse,
      {
        ...auditBy(c),
        action: "campaign.codes_created",
        target: campaignId,
        before: null,
        // Never the codes themselves: a single-use code is a bearer credit.
        after: { campaign_id: campaignId, generated, single_use: singleUse, count: codes.length },
      },
      Date.now(),
    );
    return c.json({ campaign_id: campaignId, codes, single_use: singleUse, created }, 201);
  },
);
