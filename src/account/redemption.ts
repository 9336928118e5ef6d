/**
 * A campaign redemption on the redeeming account: one commit holds the lot
 * (`campaign.<campaign_id>`), its `grant` entry, the `grant.redeemed` alert
 * and, for a referral code, the pending referral (referral.ts). The lot id
 * names the campaign alone, so an account holds one per campaign whatever
 * the gateway's D1 reservation says; the same code again replays the first
 * answer, another code of the campaign is 409 already_redeemed.
 */
import type { Lot } from "../ledger";
import { type GrantTerms, redemptionGrant, redemptionGrantId } from "../ledger/campaign";
import { planGrant } from "../ledger/grant";
import { type AccountCore, POLICY_UNKNOWN } from "./core";
import type { ReferralDesk } from "./referral";
import type { Idempotency, OpContext, Outcome } from "./types";
import { answer, fromLedgerError, grantBody, refuse } from "./views";

/** What the gateway learnt from D1 about the code and the campaign, for the commit and its alert. */
export interface RedeemInfo {
  campaignId: string;
  variant: string;
  /** As stored (normalized); kept in the lot's metadata.code. */
  code: string;
  codeKind: "single_use" | "multi_use" | "referral";
  requiresVerified: boolean;
  /** What the variant issues; its expiry counts from this account's clock at the redemption. */
  terms: GrantTerms;
  /** A referral code's referrer and the reward the campaign promised at this moment. */
  referral: { referrerAccountId: string; terms: GrantTerms } | null;
}

export function redeem(
  core: AccountCore,
  referrals: ReferralDesk,
  ctx: OpContext,
  info: RedeemInfo,
  idem: Idempotency,
): Outcome {
  const nowMs = core.now();
  const body = (lots: ReadonlyMap<string, Lot>, lot: Lot) => ({
    campaign_id: info.campaignId,
    variant: lot.metadata?.variant ?? info.variant,
    ...grantBody(ctx.accountId, lot, lot.unit, nowMs, lots),
  });
  const cmd = redemptionGrant(info.campaignId, info.terms, info.variant, info.code, nowMs);
  const held = core.lots.get(redemptionGrantId(info.campaignId));
  if (held) {
    if (held.metadata?.code !== info.code) {
      return refuse({
        code: "already_redeemed",
        detail: `account ${ctx.accountId} already redeemed campaign ${info.campaignId}`,
      });
    }
    // The same redemption again: the first answer (or, past its retention, the lot as it stands now).
    return core.recall("grant", idem) ?? answer(body(core.lots, held), 201, true);
  }
  if (core.idTaken(cmd.grantId)) {
    // Reserved by another feature (a recurring schedule named "campaign"): never issued over it.
    return refuse({ code: "idempotency_conflict", detail: `grant id ${cmd.grantId} is reserved on this account` });
  }
  if (info.requiresVerified && !core.account?.verified) {
    return refuse({ code: "account_not_verified", detail: `campaign ${info.campaignId} needs a verified account` });
  }
  const policy = core.policy(ctx);
  if (policy === null) return POLICY_UNKNOWN;
  if (policy.require_verified_for_promotional && !core.account?.verified) {
    return refuse({
      code: "account_not_verified",
      detail: "promotional grants need a verified account under the current policy",
    });
  }
  const planned = planGrant(core.lots.values(), cmd, core.lots.size + 1, nowMs);
  if (!planned.ok) return refuse(fromLedgerError(planned.error));
  const { lot, entries } = planned.value;
  const alert = {
    type: "grant.redeemed" as const,
    unit: lot.unit,
    data: {
      campaign_id: info.campaignId,
      variant: info.variant,
      account_id: ctx.accountId,
      code_kind: info.codeKind,
      grant_id: lot.grantId,
      amount: lot.amount,
      unit: lot.unit,
      referrer_account_id: info.referral?.referrerAccountId ?? null,
    },
    atMs: nowMs,
  };
  const referral = info.referral
    ? referrals.record(info.campaignId, info.referral.referrerAccountId, info.referral.terms, nowMs)
    : {};
  return core.commit(
    { ctx, lots: [lot], entries, alerts: [alert], ...referral },
    nowMs,
    (lots) => body(lots, lot),
    { scope: "grant", idem, status: 201 },
    true,
  );
}
