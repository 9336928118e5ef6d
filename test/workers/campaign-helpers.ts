/** Helpers for the campaign, redemption and referral suites: real routes, real D1, real Durable Objects. */
import { env } from "cloudflare:workers";
import { call, type Res, uid } from "./helpers";

export const DAY_MS = 86_400_000;

/** PUT /v1/campaigns/{id} with a plain promotional grant unless told otherwise; throws unless 200/201. */
export async function putCampaign(
  body: Record<string, unknown> = {},
  id = uid("camp"),
): Promise<{ id: string; json: any }> {
  const res = await call("PUT", `/v1/campaigns/${id}`, {
    name: "Spring promo",
    grant: { amount: 500, expires_in_days: 30 },
    ...body,
  });
  if (res.status !== 201 && res.status !== 200) throw new Error(`campaign: ${res.status} ${res.text}`);
  return { id, json: res.json };
}

/** POST …/codes; throws unless 201. */
export async function addCodes(campaignId: string, body: Record<string, unknown>): Promise<string[]> {
  const res = await call("POST", `/v1/campaigns/${campaignId}/codes`, body);
  if (res.status !== 201) throw new Error(`codes: ${res.status} ${res.text}`);
  return res.json.codes as string[];
}

/** One code of the campaign: generated single-use by default, or given multi-use with `given`. */
export async function oneCode(campaignId: string, given?: string): Promise<string> {
  const codes = await addCodes(campaignId, given ? { codes: [given] } : { count: 1 });
  const code = codes[0];
  if (code === undefined) throw new Error("no code");
  return code;
}

export function redeem(code: string, accountId: string, token?: string): Promise<Res> {
  return call("POST", "/v1/redemptions", { code, account_id: accountId }, token === undefined ? {} : { token });
}

export async function redemptionRow(campaignId: string, accountId: string) {
  return env.DB.prepare("SELECT * FROM campaign_redemptions WHERE campaign_id = ? AND account_id = ?")
    .bind(campaignId, accountId)
    .first<Record<string, unknown>>();
}

export async function campaignCounter(campaignId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT redeemed FROM campaigns WHERE campaign_id = ?")
    .bind(campaignId)
    .first<{ redeemed: number }>();
  return row?.redeemed ?? -1;
}

/** Lots of a campaign in D1's grant index, across accounts (after drain). */
export async function campaignLots(grantId: string, accountIds: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const a of accountIds) {
    const res = await call("GET", `/v1/accounts/${a}/grants/${grantId}`);
    if (res.status === 200) out.push(a);
  }
  return out;
}

/** A key of `role` (with a grant limit when given). */
export async function keyOf(role: string, maxGrantAmount?: number): Promise<string> {
  const res = await call("POST", "/v1/api-keys", {
    name: uid(role),
    role,
    ...(maxGrantAmount === undefined ? {} : { max_grant_amount: maxGrantAmount }),
  });
  if (res.status !== 201) throw new Error(`key: ${res.status} ${res.text}`);
  return res.json.key as string;
}
