/**
 * What keeps a redemption exactly once when a refusal and a retry of the same
 * redemption interleave (the account fences a reservation before the gateway
 * gives its code and slot back), what keeps a marketing key within its own
 * grant limit when it hands out codes and redeems them, and the referral
 * cycle check holding under concurrency.
 */

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import type { RedeemInfo } from "../../src/account/redemption";
import { readRedemption, releaseRedemption, reserveRedemption } from "../../src/db/campaigns";
import { redemptionGrantId } from "../../src/ledger/campaign";
import { addCodes, campaignCounter, keyOf, putCampaign, redeem, redemptionRow } from "./campaign-helpers";
import { call, expectProblem, ledgerEntries, ledgerStubFor, uid } from "./helpers";

async function account(verified = false): Promise<string> {
  const a = uid("rg");
  expect((await call("PUT", `/v1/accounts/${a}`, { name: "guards", verified })).status).toBe(201);
  return a;
}

/** The gateway's steps for one (campaign, account, code), done by hand so a test can interleave them. */
async function reserved(campaignId: string, accountId: string, code: string) {
  const got = await reserveRedemption(
    env.DB,
    {
      campaignId,
      accountId,
      code,
      singleUse: true,
      variant: "default",
      grantId: redemptionGrantId(campaignId),
      referrerAccountId: null,
      nonce: crypto.randomUUID(),
    },
    Date.now(),
  );
  if (got.kind !== "won") throw new Error(`reserve: ${got.kind}`);
  const info: RedeemInfo = {
    campaignId,
    variant: "default",
    code,
    codeKind: "single_use",
    requiresVerified: false,
    terms: { amount: 500, type: "promotional", unit: "credits", expires_in_days: 30, priority: 100 },
    referral: null,
    reservation: got.row.reservation,
  };
  const ctx = { accountId, actor: "admin-token:admin", requestId: uid("req"), globalPolicy: null };
  const idem = { key: redemptionGrantId(campaignId), bodyHash: `test-${code}` };
  const inst = <T>(run: (ledger: AccountLedger) => T) =>
    runInDurableObject(ledgerStubFor(accountId), (ledger: AccountLedger) => run(ledger));
  return {
    row: got.row,
    redeem: () => inst((l) => l.redeem(ctx, info, idem)),
    withdraw: () => inst((l) => l.withdrawRedemption(campaignId, got.row.reservation)),
  };
}

describe("a refused redemption and its retry, interleaved", () => {
  it("the retry granted first: the refused request's withdrawal finds the lot and gives nothing back", async () => {
    const { id } = await putCampaign({ max_redemptions: 1 });
    const [code] = await addCodes(id, { count: 1 });
    const a = await account();
    await call("PUT", `/v1/accounts/${a}/policy`, { require_verified_for_promotional: true });
    const r = await reserved(id, a, code as string);
    // R1: refused (the account is not verified yet).
    const first = await r.redeem();
    expect(first.ok).toBe(false);
    // The account is verified; R2, the same redemption, grants.
    await call("PUT", `/v1/accounts/${a}`, { verified: true });
    const second = await r.redeem();
    expect(second.ok).toBe(true);
    // R1 goes on: the account holds the lot, so nothing is withdrawn and the reservation stays.
    expect(await r.withdraw()).toBe("held");
    expect(await redemptionRow(id, a)).toMatchObject({ reservation: r.row.reservation });
    expect(await campaignCounter(id)).toBe(1);
    // So the single-use code cannot grant a second account.
    const b = await account(true);
    expectProblem(await redeem(code as string, b), 409, "already_redeemed");
    expect((await ledgerEntries(b)).length).toBe(0);
  });

  it("the withdrawal first: the retry carrying the withdrawn reservation grants nothing", async () => {
    const { id } = await putCampaign({ max_redemptions: 1 });
    const [code] = await addCodes(id, { count: 1 });
    const a = await account();
    await call("PUT", `/v1/accounts/${a}/policy`, { require_verified_for_promotional: true });
    const r = await reserved(id, a, code as string);
    expect((await r.redeem()).ok).toBe(false);
    expect(await r.withdraw()).toBe("withdrawn");
    await releaseRedemption(env.DB, id, a, r.row.reservation);
    expect(await readRedemption(env.DB, id, a)).toBeNull();
    // R2, still carrying the withdrawn reservation, is refused even once the account is verified.
    await call("PUT", `/v1/accounts/${a}`, { verified: true });
    const late = await r.redeem();
    expect(late.ok).toBe(false);
    if (!late.ok) expect(late.problem.code).toBe("overloaded");
    expect((await ledgerEntries(a)).length).toBe(0);
    // The code and the slot went back: exactly one account ends up with the campaign's lot.
    const b = await account(true);
    const won = await redeem(code as string, b);
    expect(won.status, won.text).toBe(201);
    expectProblem(await redeem(code as string, a), 409, "already_redeemed");
    expect(await campaignCounter(id)).toBe(1);
  });

  it("through the route: a refused redemption retried after the cause is gone grants once", async () => {
    const { id } = await putCampaign();
    const [code] = await addCodes(id, { count: 1 });
    const a = await account();
    await call("PUT", `/v1/accounts/${a}/policy`, { require_verified_for_promotional: true });
    expectProblem(await redeem(code as string, a), 403, "account_not_verified");
    expect(await redemptionRow(id, a)).toBeNull();
    await call("PUT", `/v1/accounts/${a}`, { verified: true });
    const results = await Promise.all([redeem(code as string, a), redeem(code as string, a)]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 201]);
    const grants = (await ledgerEntries(a)).filter((e) => e.kind === "grant");
    expect(grants.map((e) => e.grant_id)).toEqual([redemptionGrantId(id)]);
  });
});

describe("a marketing key hands out only what it may grant itself", () => {
  it("codes and redemptions of a campaign above its max_grant_amount are 403, and nothing is reserved", async () => {
    const { id } = await putCampaign({ grant: { amount: 1_000_000 } });
    const marketing = await keyOf("marketing", 100);
    const codes = await call("POST", `/v1/campaigns/${id}/codes`, { count: 1 }, { token: marketing });
    expectProblem(codes, 403, "grant_limit_exceeded");
    const [code] = await addCodes(id, { count: 1 }); // the admin may
    const a = await account();
    expectProblem(await redeem(code as string, a, marketing), 403, "grant_limit_exceeded");
    expect(await redemptionRow(id, a)).toBeNull();
    expect(await campaignCounter(id)).toBe(0);
    // A gateway key redeems what the admin set up.
    const gateway = await keyOf("gateway");
    const ok = await redeem(code as string, a, gateway);
    expect(ok.status, ok.text).toBe(201);
    expect(ok.json.grant).toMatchObject({ amount: 1_000_000, type: "promotional" });
  });

  it("within its limit, marketing generates codes and redeems them", async () => {
    const { id } = await putCampaign({ grant: { amount: 100 } });
    const marketing = await keyOf("marketing", 100);
    const made = await call("POST", `/v1/campaigns/${id}/codes`, { count: 2 }, { token: marketing });
    expect(made.status, made.text).toBe(201);
    const res = await redeem(made.json.codes[0], await account(), marketing);
    expect(res.status, res.text).toBe(201);
  });
});

describe("referral cycles", () => {
  it("two accounts redeeming each other's referral codes at once: one succeeds, the other is refused", async () => {
    const { id } = await putCampaign({ referrer_grant: { amount: 50 } });
    for (let round = 0; round < 5; round++) {
      const a = await account();
      const b = await account();
      const codeOf = async (x: string) =>
        (await call("POST", `/v1/accounts/${x}/referral-code`, { campaign_id: id })).json.code as string;
      const [ca, cb] = [await codeOf(a), await codeOf(b)];
      const [ab, ba] = await Promise.all([redeem(cb, a), redeem(ca, b)]);
      expect([ab.status, ba.status].sort(), `${ab.text} ${ba.text}`).toEqual([201, 400]);
      const refused = ab.status === 400 ? ab : ba;
      expectProblem(refused, 400, "invalid_request");
      const loser = ab.status === 400 ? a : b;
      expect(await redemptionRow(id, loser)).toBeNull();
    }
  });
});
