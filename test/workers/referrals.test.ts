/**
 * Referrals end to end, through the routes and both accounts' real Durable
 * Objects: the referee is granted at once, the referrer only on the
 * referee's first purchased grant, each exactly once, along a chain, and a
 * delivery that fails is retried and still rewards once.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { putCampaign, redeem, redemptionRow } from "./campaign-helpers";
import { advanceClock, call, grant, ledgerEntries, ledgerStubFor, runAlarm, uid } from "./helpers";
import { alertsFor, drain } from "./jobs-helpers";

const REWARD = { amount: 250, expires_in_days: 60, priority: 10 };

async function account(name: string): Promise<string> {
  const id = uid(name);
  const res = await call("PUT", `/v1/accounts/${id}`, { name });
  if (res.status !== 201) throw new Error(`account: ${res.status} ${res.text}`);
  return id;
}

async function referralCode(accountId: string, campaignId: string): Promise<string> {
  const res = await call("POST", `/v1/accounts/${accountId}/referral-code`, { campaign_id: campaignId });
  if (res.status !== 201) throw new Error(`referral code: ${res.status} ${res.text}`);
  return res.json.code;
}

const referralsOf = (accountId: string) =>
  runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => inst.listReferrals());

/** The referrer's reward lots (grant entries whose grant id starts referral.). */
async function rewards(accountId: string) {
  return (await ledgerEntries(accountId)).filter(
    (e) => e.kind === "grant" && String(e.grant_id).startsWith("referral."),
  );
}

describe("referral codes", () => {
  it("one code per referrer and campaign: the same code on repeat, audited once", async () => {
    const { id } = await putCampaign({ referrer_grant: REWARD });
    const a = await account("alice");
    const first = await call("POST", `/v1/accounts/${a}/referral-code`, { campaign_id: id });
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ campaign_id: id, account_id: a });
    expect(first.json.code).toMatch(/^RF-[0-9A-HJKMNP-TV-Z]{26}$/);
    const again = await call("POST", `/v1/accounts/${a}/referral-code`, { campaign_id: id });
    expect(again.status).toBe(201);
    expect(again.json.code).toBe(first.json.code);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    const audit = await call("GET", `/v1/audit?action=referral_code.created&target=${id}:${a}`);
    expect(audit.json.events).toHaveLength(1);
    // Another campaign: another code.
    const other = await putCampaign({ referrer_grant: REWARD });
    expect(await referralCode(a, other.id)).not.toBe(first.json.code);
  });
});

describe("rewards", () => {
  it("A refers B: B gets the grant at once, A nothing until B's first purchase, and once only", async () => {
    const { id } = await putCampaign({ grant: { amount: 500 }, referrer_grant: REWARD });
    const a = await account("alice");
    const b = uid("bob");
    const code = await referralCode(a, id);
    const res = await redeem(code, b);
    expect(res.status).toBe(201);
    expect(res.json.grant).toMatchObject({ grant_id: `campaign.${id}`, amount: 500, type: "promotional" });
    expect(await redemptionRow(id, b)).toMatchObject({ referrer_account_id: a, status: "granted" });
    expect(await referralsOf(b)).toEqual([
      { campaign_id: id, referrer_account_id: a, status: "pending", attempts: 0, last_error: null },
    ]);
    // A promotional grant, a debit and the alarm do not reward A.
    await grant(b, { amount: 10, type: "promotional" });
    await runAlarm(b);
    expect(await ledgerEntries(a)).toEqual([]);

    await grant(b, { amount: 1000, type: "purchased" });
    await runAlarm(b);
    expect((await referralsOf(b))[0]?.status).toBe("rewarded");
    const got = await rewards(a);
    expect(got.map((e) => [e.grant_id, e.amount, e.credit_type])).toEqual([
      [`referral.${id}.${b}`, 250, "promotional"],
    ]);
    const lot = (await call("GET", `/v1/accounts/${a}/grants/referral.${id}.${b}`)).json;
    expect(lot).toMatchObject({ source: "referral", campaign: id, priority: 10, metadata: { referee: b } });
    expect(lot.expires_at).not.toBeNull();

    // The events: B's redemption names its referrer; A's reward is a grant.issued from source referral.
    await drain(b);
    await drain(a);
    expect((await alertsFor(b, "grant.redeemed"))[0]?.data).toMatchObject({
      campaign_id: id,
      account_id: b,
      code_kind: "referral",
      referrer_account_id: a,
    });
    expect((await alertsFor(a, "grant.issued"))[0]?.data).toMatchObject({
      grant_id: `referral.${id}.${b}`,
      source: "referral",
      campaign: id,
      amount: 250,
    });

    // B's second purchase rewards nobody again.
    await grant(b, { amount: 1000, type: "purchased" });
    await runAlarm(b);
    await runAlarm(b);
    expect(await rewards(a)).toHaveLength(1);
  });

  it("a chain A → B → C: each referrer is rewarded on its own referee's first purchase", async () => {
    const { id } = await putCampaign({ referrer_grant: REWARD });
    const a = await account("a");
    const b = uid("b");
    const c = uid("c");
    expect((await redeem(await referralCode(a, id), b)).status).toBe(201);
    expect((await redeem(await referralCode(b, id), c)).status).toBe(201);
    await grant(c, { amount: 100 });
    await runAlarm(c);
    expect((await rewards(b)).map((e) => e.grant_id)).toEqual([`referral.${id}.${c}`]);
    expect(await rewards(a)).toEqual([]);
    await grant(b, { amount: 100 });
    await runAlarm(b);
    expect((await rewards(a)).map((e) => e.grant_id)).toEqual([`referral.${id}.${b}`]);
    expect(await rewards(b)).toHaveLength(1);
    expect(await rewards(c)).toEqual([]);
  });

  it("a delivery that fails after the referrer applied it is retried with backoff and rewards once", async () => {
    const { id } = await putCampaign({ referrer_grant: REWARD });
    const a = await account("a");
    const b = uid("b");
    expect((await redeem(await referralCode(a, id), b)).status).toBe(201);
    await runInDurableObject(ledgerStubFor(b), (inst: AccountLedger) => {
      let left = 1;
      inst.referralFaults.afterGrant = () => {
        if (left-- > 0) throw new Error("injected: the answer from the referrer was lost");
      };
    });
    await grant(b, { amount: 100 });
    await runAlarm(b);
    const after = (await referralsOf(b))[0];
    expect(after).toMatchObject({ status: "due", attempts: 1 });
    expect(after?.last_error).toMatch(/injected/);
    // The referrer applied it once already.
    expect(await rewards(a)).toHaveLength(1);
    // Not due again before the backoff (5 s).
    await runAlarm(b);
    expect((await referralsOf(b))[0]).toMatchObject({ status: "due", attempts: 1 });
    await advanceClock(b, 6_000);
    await runAlarm(b);
    expect((await referralsOf(b))[0]).toMatchObject({ status: "rewarded", attempts: 1, last_error: null });
    expect(await rewards(a)).toHaveLength(1);
  });

  it("a delivery that fails before the referrer got it is retried and then rewards", async () => {
    const { id } = await putCampaign({ referrer_grant: REWARD });
    const a = await account("a");
    const b = uid("b");
    expect((await redeem(await referralCode(a, id), b)).status).toBe(201);
    await runInDurableObject(ledgerStubFor(b), (inst: AccountLedger) => {
      let left = 2;
      inst.referralFaults.beforeGrant = () => {
        if (left-- > 0) throw new Error("injected: the referrer is unreachable");
      };
    });
    await grant(b, { amount: 100 });
    await runAlarm(b);
    expect((await referralsOf(b))[0]).toMatchObject({ status: "due", attempts: 1 });
    expect(await rewards(a)).toEqual([]);
    await advanceClock(b, 6_000);
    await runAlarm(b);
    expect((await referralsOf(b))[0]).toMatchObject({ status: "due", attempts: 2 });
    // The second backoff is 10 s.
    await advanceClock(b, 11_000);
    await runAlarm(b);
    expect((await referralsOf(b))[0]?.status).toBe("rewarded");
    expect(await rewards(a)).toHaveLength(1);
  });

  it("the referral grant alerts name the referrer; a campaign whose referrer_grant was dropped rewards nobody", async () => {
    const { id } = await putCampaign({ referrer_grant: REWARD });
    const a = await account("a");
    const code = await referralCode(a, id);
    // The campaign drops its referrer reward: later redemptions of the code only grant the referee.
    await putCampaign({ referrer_grant: null }, id);
    const b = uid("b");
    const res = await redeem(code, b);
    expect(res.status).toBe(201);
    expect(await referralsOf(b)).toEqual([]);
    await grant(b, { amount: 100 });
    await runAlarm(b);
    expect(await ledgerEntries(a)).toEqual([]);
  });
});
