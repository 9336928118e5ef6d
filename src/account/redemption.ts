/**
 * A campaign redemption on the redeeming account: one commit holds the lot
 * (`campaign.<campaign_id>`), its `grant` entry, the `grant.redeemed` alert
 * and, for a referral code, the pending referral (referral.ts). The lot id
 * names the campaign alone, so an account holds one per campaign whatever
 * the gateway's D1 reservation says; the same code again replays the first
 * answer, another code of the campaign is 409 already_redeemed.
 */
import type { Lot, LotBook } from "../ledger";
import { type GrantTerms, redemptionGrant, redemptionGrantId } from "../ledger/campaign";
import { planGrant } from "../ledger/grant";
import type { AccountCore } from "./core";
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
  /** The D1 reservation's nonce: refused once the gateway has withdrawn it (see withdraw). */
  reservation: string;
}

/** Withdrawn reservations are remembered this long (a request in flight carries its nonce for seconds). */
export const REDEMPTION_FENCE_RETENTION_MS = 86_400_000;
/** Old fences pruned per withdrawal. */
const FENCE_PRUNE_BATCH = 100;

/**
 * The gateway's step before it releases a refused reservation in D1. If the
 * account holds the campaign's lot (a concurrent same redemption won
 * meanwhile), answers "held" and nothing is withdrawn. Otherwise it records
 * the nonce as withdrawn, so no request carrying it can grant any more, and
 * answers "withdrawn": only then may the gateway give the code and the slot
 * back. Idempotent.
 */
export function withdraw(core: AccountCore, campaignId: string, reservation: string): "held" | "withdrawn" {
  if (core.lots.has(redemptionGrantId(campaignId))) return "held";
  const nowMs = core.now();
  core.sql.exec(
    "INSERT OR IGNORE INTO redemption_fences (campaign_id, reservation, created_at_ms) VALUES (?, ?, ?)",
    campaignId,
    reservation,
    nowMs,
  );
  core.sql.exec(
    `DELETE FROM redemption_fences WHERE rowid IN (SELECT rowid FROM redemption_fences WHERE created_at_ms < ?
     ORDER BY created_at_ms LIMIT ?)`,
    nowMs - REDEMPTION_FENCE_RETENTION_MS,
    FENCE_PRUNE_BATCH,
  );
  return "withdrawn";
}

const withdrawn = (core: AccountCore, campaignId: string, reservation: string): boolean =>
  core.sql
    .exec("SELECT 1 FROM redemption_fences WHERE campaign_id = ? AND reservation = ?", campaignId, reservation)
    .toArray().length > 0;

export function redeem(
  core: AccountCore,
  referrals: ReferralDesk,
  ctx: OpContext,
  info: RedeemInfo,
  idem: Idempotency,
): Outcome {
  const nowMs = core.now();
  const body = (lots: LotBook, lot: Lot) => ({
    campaign_id: info.campaignId,
    variant: lot.metadata?.variant ?? info.variant,
    ...grantBody(ctx.accountId, lot, lot.unit, nowMs, lots, core.awaitingOpen.values()),
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
  if (withdrawn(core, info.campaignId, info.reservation)) {
    return refuse({
      code: "overloaded",
      detail: "this redemption was withdrawn after a refusal of the same request; send it again",
    });
  }
  if (core.idTaken(cmd.grantId)) {
    // Reserved by another feature (a recurring schedule named "campaign"): never issued over it.
    return refuse({ code: "idempotency_conflict", detail: `grant id ${cmd.grantId} is reserved on this account` });
  }
  if (info.requiresVerified && !core.account?.verified) {
    return refuse({ code: "account_not_verified", detail: `campaign ${info.campaignId} needs a verified account` });
  }
  const typeRefusal = core.grantTypeRefusal(ctx, cmd.type);
  if (typeRefusal) return typeRefusal;
  const planned = planGrant(core.lots.openLots(), cmd, core.lots.size + 1, nowMs);
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
