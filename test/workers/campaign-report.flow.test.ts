/**
 * The campaign report through the real flow, nothing written to D1 by hand:
 * PUT /v1/campaigns/{id} with two variants, POST …/codes, POST
 * /v1/redemptions for five accounts, spending, a transfer out of a trial
 * lot, expiry on the account's alarm, purchases on some, every outbox
 * drained, then GET /v1/reports/campaigns/{id}. The accounts are chosen so
 * that the gate's variant rule (assignVariant, the hash of campaign and
 * account) puts three in signup_1000 and two in trial_7d; every figure is
 * worked out by hand below.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { assignVariant, type VariantSpec } from "../../src/ledger/campaign";
import { addCodes, putCampaign, redeem } from "./campaign-helpers";
import { campaignReport } from "./campaign-report-helpers";
import { call, debit, grant, runAlarm, uid } from "./helpers";
import { DAY, doNow, drain, setDoClock } from "./jobs-helpers";

const SIGNUP: VariantSpec = {
  variant: "signup_1000",
  weight: 1,
  grant: { amount: 1000, type: "promotional", unit: "credits", expires_in_days: null, priority: 100 },
};
const TRIAL: VariantSpec = {
  variant: "trial_7d",
  weight: 1,
  grant: { amount: 500, type: "promotional", unit: "credits", expires_in_days: 7, priority: 100 },
};
/** Tries at most this many fresh account ids to fill the variants (each lands in one with odds 1/2). */
const MAX_ID_TRIES = 200;

/** `signup` account ids that land in signup_1000 and `trial` that land in trial_7d. */
function accountsFor(campaignId: string, signup: number, trial: number): { s: string[]; t: string[] } {
  const s: string[] = [];
  const t: string[] = [];
  for (let i = 0; i < MAX_ID_TRIES && (s.length < signup || t.length < trial); i++) {
    const id = uid("crf");
    const v = assignVariant(campaignId, id, [SIGNUP, TRIAL]).variant;
    if (v === SIGNUP.variant && s.length < signup) s.push(id);
    if (v === TRIAL.variant && t.length < trial) t.push(id);
  }
  if (s.length < signup || t.length < trial) throw new Error("could not fill the variants");
  return { s, t };
}

async function spend(account: string, amount: number): Promise<any> {
  const res = await debit(account, amount);
  if (res.status !== 200) throw new Error(`debit ${amount} on ${account}: ${res.status} ${res.text}`);
  return res.json;
}

const purchase = (account: string, amount: number) =>
  grant(account, { type: "purchased", amount, cost_basis: { amount: amount * 3, currency: "USD" } });

describe("campaign report through PUT campaign, codes, redemptions, spending, expiry and purchases", () => {
  const cid = uid("cmp-flow");
  const { s, t } = accountsFor(cid, 3, 2);
  const [s1, s2, s3] = s as [string, string, string];
  const [t1, t2] = t as [string, string];
  const lot = `campaign.${cid}`;

  beforeAll(async () => {
    await putCampaign(
      {
        name: "Report flow",
        grant: { amount: 1000, type: "promotional" },
        variants: [SIGNUP, TRIAL].map((v) => ({
          variant: v.variant,
          weight: v.weight,
          grant: { amount: v.grant?.amount, type: "promotional", expires_in_days: v.grant?.expires_in_days },
        })),
      },
      cid,
    );
    const codes = await addCodes(cid, { count: 5 });
    for (const a of [s1, s2, s3, t1, t2]) {
      const put = await call("PUT", `/v1/accounts/${a}`, { name: a });
      expect(put.status, put.text).toBe(201);
    }
    // s2 buys 300 before it redeems: that purchase precedes its lot.
    await purchase(s2, 300);
    for (const [i, a] of [s1, s2, s3, t1, t2].entries()) {
      const res = await redeem(codes[i] as string, a);
      expect(res.status, res.text).toBe(201);
      const want = [t1, t2].includes(a) ? TRIAL : SIGNUP;
      expect(res.json.variant).toBe(want.variant);
      expect(res.json.grant).toMatchObject({ grant_id: lot, amount: want.grant?.amount });
    }

    // signup_1000 ──────────────────────────────────────────────────────────
    // s1: 1 000 issued; 400 spent from it; then buys 2 000. consumed 400, converted.
    await spend(s1, 400);
    await purchase(s1, 2000);
    // s2: 1 000 issued after its purchase of 300; spends 1 000, all from the campaign lot
    // (promotional is drawn before purchased). consumed 1 000, not converted.
    const s2Draw = await spend(s2, 1000);
    expect(s2Draw.applied).toEqual([expect.objectContaining({ grant_id: lot, amount: 1000 })]);
    // s3: 1 000 issued, nothing else (it receives t2's transfer below, a lot of its own).

    // trial_7d ─────────────────────────────────────────────────────────────
    // t1: 500 issued expiring in 7 days; 100 spent; 8 days on the alarm expires 400; then buys 1 000.
    await spend(t1, 100);
    // t2: 500 issued; 200 transferred to s3 (transfer.out: in no figure); 8 days on the other 300 expire.
    const moved = await call("POST", "/v1/transfers", {
      transfer_id: uid("tr"),
      from_account: t2,
      to_account: s3,
      amount: 200,
    });
    expect(moved.status, moved.text).toBe(201);
    expect(moved.json.applied).toEqual([expect.objectContaining({ grant_id: lot, amount: 200 })]);
    for (const a of [t1, t2]) {
      await setDoClock(a, (await doNow(a)) + 8 * DAY);
      await runAlarm(a);
    }
    await purchase(t1, 1000);
    for (const a of [s1, s2, s3, t1, t2]) await drain(a);
  });

  it("every figure per variant, worked out by hand", async () => {
    const res = await campaignReport(cid);
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({
      campaign_id: cid,
      unit: "credits",
      variants: [
        {
          variant: "signup_1000",
          redeemed: 3, // s1, s2, s3
          issued: 3000, // 3 × 1 000
          consumed: 1400, // 400 + 1 000 + 0
          expired: 0,
          converted: 1, // s1 (s2's purchase came before its lot)
          conversion_bps: 3333, // floor(1 × 10 000 / 3)
          breakage_bps: 0,
        },
        {
          variant: "trial_7d",
          redeemed: 2, // t1, t2
          issued: 1000, // 2 × 500
          consumed: 100, // t1's 100; t2's transfer of 200 is in no figure
          expired: 700, // 400 + 300
          converted: 1, // t1
          conversion_bps: 5000, // floor(1 × 10 000 / 2)
          breakage_bps: 7000, // floor(700 × 10 000 / 1 000)
        },
      ],
    });
  });
});
