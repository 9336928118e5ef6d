/**
 * POST /v1/redemptions: an account redeems a campaign code (generated,
 * given, or a referrer's). Two steps, each idempotent by what it names:
 *
 * 1. Reserve in D1 (src/db/campaigns.ts, one batch): the redemption row for
 *    (campaign, account), a single-use code's claim, the campaign's counter.
 *    This is where "once per code", "once per account and campaign" and
 *    "never past max_redemptions" are decided, across accounts.
 * 2. Grant on the account's Durable Object (src/account/redemption.ts): lot
 *    `campaign.<campaign_id>`, idempotent by that id, in one commit with the
 *    `grant.redeemed` alert and a referral's pending reward.
 *
 * A crash between the two leaves the row `reserved`; the same (code,
 * account) again completes it. A refusal by the Durable Object releases the
 * reservation (row, code claim and counter, one batch).
 */
import { z } from "@hono/zod-openapi";
import { ledgerStub } from "../account/stub";
import type { Outcome } from "../account/types";
import {
  type CampaignRow,
  findCode,
  markGranted,
  type RedemptionRow,
  readRedemption,
  releaseRedemption,
  reserveRedemption,
} from "../db/campaigns";
import { loadGlobalPolicy } from "../db/settings";
import { ApiError } from "../errors";
import { canonicalJson, sha256Hex } from "../ledger";
import {
  assignVariant,
  normalizeCode,
  redemptionGrantId,
  termsOf,
  variantsOf,
  windowProblem,
} from "../ledger/campaign";
import { log } from "../log";
import { CodeText, specOf } from "./campaign-schemas";
import { withinMarketingLimit } from "./campaigns";
import { type Caller, requireRole, send, validBody } from "./context";
import { GrantSchema } from "./grants";
import { resource, route } from "./route";
import { BalanceSchema, Id, json, problems } from "./schemas";
import { requireUnscoped } from "./scope";

/** Who may redeem a code for an account. */
export const REDEEMERS = ["admin", "marketing", "gateway"] as const;

const RedemptionInput = z.strictObject({ code: CodeText, account_id: Id }).openapi("RedemptionInput");

const RedemptionResult = z
  .object({ campaign_id: z.string(), variant: z.string(), grant: GrantSchema, balance: BalanceSchema })
  .openapi("Redemption");

const refused = (code: "already_redeemed" | "campaign_closed", detail: string): Outcome => ({
  ok: false,
  problem: { code, detail },
});

/** Step 1: the account's redemption row for this code, reserved now or found; or why not. */
async function reserve(
  db: D1Database,
  campaign: CampaignRow,
  code: { code: string; single_use: number; referrer_account_id: string | null },
  accountId: string,
  variant: string,
): Promise<RedemptionRow | Outcome> {
  const r = await reserveRedemption(
    db,
    {
      campaignId: campaign.campaign_id,
      accountId,
      code: code.code,
      singleUse: code.single_use === 1,
      variant,
      grantId: redemptionGrantId(campaign.campaign_id),
      referrerAccountId: code.referrer_account_id,
      nonce: crypto.randomUUID(),
    },
    Date.now(),
  );
  switch (r.kind) {
    case "won":
      return r.row;
    case "taken":
      // A racing request of the same account: the same code completes together, another code lost.
      return r.row.code === code.code ? r.row : refused("already_redeemed", alreadyDetail(campaign, accountId));
    case "code_used":
      return refused("already_redeemed", "this single-use code has been redeemed already");
    case "cycle":
      throw new ApiError("invalid_request", "an account may not redeem the referral code of the account it referred");
    case "full":
      return refused("campaign_closed", `campaign ${campaign.campaign_id} reached its max_redemptions`);
  }
}

const alreadyDetail = (campaign: CampaignRow, accountId: string) =>
  `account ${accountId} already redeemed campaign ${campaign.campaign_id}`;

/** Redeems `rawCode` for `accountId` on `caller`'s authority; the route's work. */
export async function runRedemption(
  env: Env,
  caller: Caller,
  rawCode: string,
  accountId: string,
  requestId: string,
): Promise<Outcome> {
  const db = env.DB;
  const found = await findCode(db, normalizeCode(rawCode));
  if (found === null) throw new ApiError("code_not_found", "no such campaign or referral code");
  const { campaign, code } = found;
  if (code.referrer_account_id === accountId) {
    throw new ApiError("invalid_request", "a referrer may not redeem its own referral code");
  }
  const spec = specOf(campaign);
  const variants = variantsOf(spec);
  const stub = ledgerStub(env, accountId);
  let row = await readRedemption(db, campaign.campaign_id, accountId);
  if (row !== null && row.code !== code.code) return refused("already_redeemed", alreadyDetail(campaign, accountId));
  // A marketing key redeems only what it may grant itself (checked before anything is reserved);
  // the gateway redeems whatever admin or marketing set up.
  if (caller.role === "marketing") {
    const name = row?.variant ?? assignVariant(campaign.campaign_id, accountId, variants).variant;
    const own = variants.find((v) => v.variant === name) ?? { variant: name, weight: 1, grant: null };
    const reward = code.referrer_account_id !== null ? spec.referrer_grant : null;
    withinMarketingLimit(
      caller,
      reward === null ? [termsOf(spec, own).amount] : [termsOf(spec, own).amount, reward.amount],
    );
  }
  if (row === null) {
    const closed = windowProblem({ startsAtMs: campaign.starts_at_ms, endsAtMs: campaign.ends_at_ms }, Date.now());
    if (closed) return refused("campaign_closed", closed);
    // A referee may not refer its own referrer back in the same campaign (two accounts rewarding each other).
    if (code.referrer_account_id !== null) {
      const theirs = await readRedemption(db, campaign.campaign_id, code.referrer_account_id);
      if (theirs?.referrer_account_id === accountId) {
        throw new ApiError("invalid_request", "an account may not redeem the referral code of the account it referred");
      }
    }
    // Checked again by the account's Durable Object; asked here first so a refusal reserves nothing.
    if (spec.requires_verified && !(await stub.getAccount())?.verified) {
      throw new ApiError("account_not_verified", `campaign ${campaign.campaign_id} needs a verified account`);
    }
    const got = await reserve(
      db,
      campaign,
      code,
      accountId,
      assignVariant(campaign.campaign_id, accountId, variants).variant,
    );
    if ("ok" in got) return got;
    row = got;
  }
  // The variant recorded at reservation; its grant as the campaign says now (the default when it was dropped).
  const variant = variants.find((v) => v.variant === row.variant) ?? { variant: row.variant, weight: 1, grant: null };
  const referral =
    code.referrer_account_id !== null && spec.referrer_grant !== null
      ? { referrerAccountId: code.referrer_account_id, terms: spec.referrer_grant }
      : null;
  const terms = termsOf(spec, variant);
  const ctx = { accountId, actor: caller.actor, requestId, globalPolicy: await loadGlobalPolicy(db) };
  const idem = {
    key: redemptionGrantId(campaign.campaign_id),
    bodyHash: sha256Hex(canonicalJson({ campaign_id: campaign.campaign_id, code: code.code })),
  };
  const info = {
    campaignId: campaign.campaign_id,
    variant: variant.variant,
    code: code.code,
    codeKind: code.referrer_account_id !== null ? "referral" : code.single_use === 1 ? "single_use" : "multi_use",
    requiresVerified: spec.requires_verified,
    terms,
    referral,
    reservation: row.reservation,
  } as const;
  // A throw here (the Durable Object unreachable) leaves the row reserved: the same request again completes it.
  const out = await stub.redeem(ctx, info, idem);
  if (out.ok) {
    if (row.status === "reserved") {
      await markGranted(db, campaign.campaign_id, accountId).catch((e: unknown) =>
        log({ event: "redemption.mark_error", request_id: requestId, account_id: accountId, error: String(e) }),
      );
    }
    return out;
  }
  // Refused: the reservation goes, but only once the account has fenced it, so that a concurrent same
  // redemption carrying this reservation cannot grant after the code and the slot were given back.
  const fate = await stub.withdrawRedemption(campaign.campaign_id, row.reservation);
  if (fate === "withdrawn") {
    await releaseRedemption(db, campaign.campaign_id, accountId, row.reservation);
    return out;
  }
  // The account holds the campaign's lot: this very redemption won meanwhile (its replay), or another code did.
  if (out.problem.code === "already_redeemed") return out;
  const replay = await stub.redeem(ctx, info, idem);
  if (replay.ok && row.status === "reserved") {
    await markGranted(db, campaign.campaign_id, accountId).catch((e: unknown) =>
      log({ event: "redemption.mark_error", request_id: requestId, account_id: accountId, error: String(e) }),
    );
  }
  return replay;
}

export const redemptions = resource();

route(
  redemptions,
  {
    method: "post",
    path: "/v1/redemptions",
    summary: "Redeem a campaign or referral code for an account (created when unknown, like a grant)",
    request: { body: { content: { "application/json": { schema: RedemptionInput } }, required: true } },
    responses: {
      201: json(RedemptionResult, "Redeemed (a repeat of the same redemption replays it)"),
      ...problems(400, 401, 403, 404, 409, 413, 415),
    },
  },
  async (c) => {
    const caller = requireRole(c, REDEEMERS);
    requireUnscoped(c);
    const input = validBody(c, RedemptionInput);
    c.set("accountId", input.account_id);
    return send(c, await runRedemption(c.env, caller, input.code, input.account_id, c.get("requestId")));
  },
);
