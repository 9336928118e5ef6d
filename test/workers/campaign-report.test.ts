/**
 * GET /v1/reports/campaigns/{campaign_id}, end to end on real Durable
 * Objects and local D1: the campaign and its redemption rows are written to
 * D1 as the campaign routes write them (campaign-report-helpers.ts); every
 * lot is issued through the real grant API with grant_id
 * `campaign.<campaign_id>`, campaign = the campaign id and metadata.variant,
 * then spent, expired (the DO clock moves, the alarm runs) and followed by
 * purchases, and every outbox is drained before the report is read. The
 * expected figures are worked out by hand in the comments.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { campaignReport, insertCampaign, insertRedemption, type VariantSpec } from "./campaign-report-helpers";
import { call, debit, expectProblem, grant, iso, runAlarm, uid } from "./helpers";
import { DAY, doNow, drain, HOUR, setDoClock } from "./jobs-helpers";

const VARIANTS: VariantSpec[] = [
  {
    variant: "signup_1000",
    weight: 50,
    grant: { amount: 1000, type: "promotional", unit: "credits", expires_in_days: null, priority: 100 },
  },
  {
    variant: "trial_7d",
    weight: 50,
    grant: { amount: 500, type: "promotional", unit: "credits", expires_in_days: 7, priority: 100 },
  },
];

/** The redemption's lot, through the real grant API. */
async function campaignLot(account: string, campaignId: string, variant: string, amount: number, expiresAtMs?: number) {
  return grant(account, {
    grant_id: `campaign.${campaignId}`,
    type: "promotional",
    amount,
    campaign: campaignId,
    source: "campaign",
    metadata: { variant },
    ...(expiresAtMs === undefined ? {} : { expires_at: iso(expiresAtMs) }),
  });
}

async function spend(account: string, amount: number): Promise<any> {
  const res = await debit(account, amount);
  if (res.status !== 200) throw new Error(`debit ${amount} on ${account}: ${res.status} ${res.text}`);
  return res.json;
}

const purchase = (account: string, amount: number) =>
  grant(account, { type: "purchased", amount, cost_basis: { amount: amount * 10, currency: "USD" } });

describe("campaign report: two variants, worked by hand", () => {
  const cid = uid("cmp");
  const other = uid("cmp-other");
  const [a1, a2, a3, b1, b2, c1] = ["a1", "a2", "a3", "b1", "b2", "c1"].map((n) => uid(`cr-${n}`)) as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];

  beforeAll(async () => {
    await insertCampaign(cid, VARIANTS);
    await insertCampaign(other);
    const t0 = Date.now();

    // signup_1000 ─────────────────────────────────────────────────────────
    // a1: 1 000 issued; 300 spent; an hour later buys 2 000; then 800 spent:
    // the promotional lot is drawn first (type order), 700 from it and 100
    // from the purchase. From the campaign lot: consumed 1 000. Converted.
    await campaignLot(a1, cid, "signup_1000", 1000);
    await insertRedemption({
      campaignId: cid,
      accountId: a1,
      variant: "signup_1000",
      grantId: `campaign.${cid}`,
      redeemedAtMs: t0,
    });
    await spend(a1, 300);
    await setDoClock(a1, (await doNow(a1)) + HOUR);
    await purchase(a1, 2000);
    const drawn = await spend(a1, 800);
    expect(drawn.applied.map((x: any) => [x.type, x.amount])).toEqual([
      ["promotional", 700],
      ["purchased", 100],
    ]);
    // a1 also redeemed another campaign, after its purchase of 2 000: that
    // lot counts there, not here, and there a1 has not converted (its only
    // purchase comes before that lot).
    await grant(a1, { grant_id: `campaign.${other}`, type: "promotional", amount: 70, campaign: other });
    await insertRedemption({
      campaignId: other,
      accountId: a1,
      variant: "default",
      grantId: `campaign.${other}`,
      redeemedAtMs: t0,
    });

    // a2: 1 000 issued, all 1 000 spent, never buys. consumed 1 000.
    await campaignLot(a2, cid, "signup_1000", 1000);
    await insertRedemption({
      campaignId: cid,
      accountId: a2,
      variant: "signup_1000",
      grantId: `campaign.${cid}`,
      redeemedAtMs: t0,
    });
    await spend(a2, 1000);

    // a3: bought 500 before redeeming, then 1 000 issued and 150 spent (from
    // the promotional lot, drawn first). consumed 150; not converted: the
    // purchase comes before the lot in a3's own order (seq), whatever the
    // redemption row's clock says (here an hour after both).
    await purchase(a3, 500);
    await campaignLot(a3, cid, "signup_1000", 1000);
    await insertRedemption({
      campaignId: cid,
      accountId: a3,
      variant: "signup_1000",
      grantId: `campaign.${cid}`,
      redeemedAtMs: (await doNow(a3)) + HOUR,
    });
    const a3Draw = await spend(a3, 150);
    expect(a3Draw.applied).toEqual([expect.objectContaining({ grant_id: `campaign.${cid}`, amount: 150 })]);

    // c1: a redemption still 'reserved' (the gateway never marked it) whose
    // lot was issued: it counts. 1 000 issued, nothing spent, then buys 100:
    // consumed 0, converted.
    await campaignLot(c1, cid, "signup_1000", 1000);
    await insertRedemption({
      campaignId: cid,
      accountId: c1,
      variant: "signup_1000",
      grantId: `campaign.${cid}`,
      redeemedAtMs: t0,
      status: "reserved",
    });
    await purchase(c1, 100);

    // trial_7d ────────────────────────────────────────────────────────────
    // b1: 500 issued expiring in 7 days; 200 spent; 8 days on, the alarm
    // expires the other 300; then buys 1 000. consumed 200, expired 300, converted.
    const b1Start = await doNow(b1);
    await campaignLot(b1, cid, "trial_7d", 500, b1Start + 7 * DAY);
    await insertRedemption({
      campaignId: cid,
      accountId: b1,
      variant: "trial_7d",
      grantId: `campaign.${cid}`,
      redeemedAtMs: t0,
    });
    await spend(b1, 200);
    await setDoClock(b1, b1Start + 8 * DAY);
    await runAlarm(b1);
    await purchase(b1, 1000);

    // b2: 500 issued expiring in 7 days, never spent: all 500 expire. A
    // second lot of the same campaign that no redemption names (a reward)
    // expires too, 400, and is not counted. Never buys.
    const b2Start = await doNow(b2);
    await campaignLot(b2, cid, "trial_7d", 500, b2Start + 7 * DAY);
    await insertRedemption({
      campaignId: cid,
      accountId: b2,
      variant: "trial_7d",
      grantId: `campaign.${cid}`,
      redeemedAtMs: t0,
    });
    await grant(b2, {
      grant_id: `campaign.${cid}.referrer`,
      type: "promotional",
      amount: 400,
      campaign: cid,
      expires_at: iso(b2Start + 7 * DAY),
    });
    await setDoClock(b2, b2Start + 8 * DAY);
    await runAlarm(b2);

    for (const a of [a1, a2, a3, b1, b2, c1]) await drain(a);
  });

  it("every figure per variant, as worked out above", async () => {
    const res = await campaignReport(cid);
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({
      campaign_id: cid,
      unit: "credits",
      variants: [
        {
          variant: "signup_1000",
          redeemed: 4, // a1, a2, a3, c1 (reserved, lot issued)
          issued: 4000, // 4 × 1 000
          consumed: 2150, // 1 000 + 1 000 + 150 + 0
          expired: 0,
          converted: 2, // a1, c1
          conversion_bps: 5000, // floor(2 × 10 000 / 4)
          breakage_bps: 0,
        },
        {
          variant: "trial_7d",
          redeemed: 2,
          issued: 1000,
          consumed: 200,
          expired: 800, // 300 + 500
          converted: 1, // b1
          conversion_bps: 5000, // floor(1 × 10 000 / 2)
          breakage_bps: 8000, // floor(800 × 10 000 / 1 000)
        },
      ],
    });
  });

  it("the other campaign counts its own lot only, as its one variant 'default'", async () => {
    const res = await campaignReport(other);
    expect(res.json.variants).toEqual([
      {
        variant: "default",
        redeemed: 1,
        issued: 70,
        consumed: 0,
        expired: 0,
        converted: 0, // a1's purchase of 2 000 precedes this lot in a1's seq
        conversion_bps: 0,
        breakage_bps: 0,
      },
    ]);
  });

  it("?unit= counts credits of that unit only; redeemed and converted are about accounts, in any unit", async () => {
    const res = await campaignReport(cid, { unit: "tokens" });
    expect(res.status).toBe(200);
    expect(res.json.unit).toBe("tokens");
    expect(
      res.json.variants.map((v: any) => [v.variant, v.redeemed, v.issued, v.consumed, v.expired, v.converted]),
    ).toEqual([
      ["signup_1000", 4, 0, 0, 0, 2],
      ["trial_7d", 2, 0, 0, 0, 1],
    ]);
    expect(res.json.variants.map((v: any) => v.breakage_bps)).toEqual([0, 0]);
  });

  it("CSV: a header row and one row per variant, the same members", async () => {
    const res = await campaignReport(cid, { format: "csv" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.text).toBe(
      [
        "campaign_id,unit,variant,redeemed,issued,consumed,expired,converted,conversion_bps,breakage_bps",
        `${cid},credits,signup_1000,4,4000,2150,0,2,5000,0`,
        `${cid},credits,trial_7d,2,1000,200,800,1,5000,8000`,
        "",
      ].join("\r\n"),
    );
  });

  it("marketing, finance and viewer may read it; support and gateway may not; a scoped key is 403", async () => {
    for (const role of ["marketing", "finance", "viewer"]) {
      const key = await call("POST", "/v1/api-keys", { name: uid(role), role });
      const res = await campaignReport(cid, {}, key.json.key);
      expect(res.status, `${role}: ${res.text}`).toBe(200);
      expect(res.json.variants[1].breakage_bps).toBe(8000);
    }
    for (const role of ["support", "gateway"]) {
      const key = await call("POST", "/v1/api-keys", { name: uid(role), role });
      expectProblem(await campaignReport(cid, {}, key.json.key), 403, "forbidden");
    }
    const scoped = await call("POST", "/v1/api-keys", { name: uid("scoped"), role: "marketing", account_scope: a1 });
    expect(scoped.status).toBe(201);
    expectProblem(await campaignReport(cid, {}, scoped.json.key), 403, "forbidden");
    expectProblem(await call("GET", `/v1/reports/campaigns/${cid}`, undefined, { token: null }), 401, "unauthorized");
  });
});

describe("campaign report: a redemption counts by its lot, and converts in its account's own order", () => {
  const plainRedemption = (campaignId: string, accountId: string, status: "reserved" | "granted", atMs = Date.now()) =>
    insertRedemption({
      campaignId,
      accountId,
      variant: "default",
      grantId: `campaign.${campaignId}`,
      redeemedAtMs: atMs,
      status,
    });
  const only = async (campaignId: string) => {
    const res = await campaignReport(campaignId);
    expect(res.status, res.text).toBe(200);
    expect(res.json.variants).toHaveLength(1);
    return res.json.variants[0];
  };

  it("a 'reserved' row whose lot was issued counts; a row whose lot never was does not, whatever its status", async () => {
    const cid = uid("cmp-lot");
    await insertCampaign(cid);
    const [issuedLot, noLot, markedNoLot] = [uid("cr-res-lot"), uid("cr-res-none"), uid("cr-granted-none")];
    // issuedLot: reserved; its lot of 300 issued; 100 spent from it.
    await plainRedemption(cid, issuedLot, "reserved");
    await campaignLot(issuedLot, cid, "default", 300);
    await spend(issuedLot, 100);
    // noLot: reserved, its lot never issued; the account buys 500 and spends 50 (from the purchase).
    await plainRedemption(cid, noLot, "reserved");
    await purchase(noLot, 500);
    await spend(noLot, 50);
    // markedNoLot: 'granted' although no lot was ever issued; it buys 80.
    await plainRedemption(cid, markedNoLot, "granted");
    await purchase(markedNoLot, 80);
    for (const a of [issuedLot, noLot, markedNoLot]) await drain(a);
    // Only issuedLot: 1 redeemed, 300 issued, 100 consumed; nobody converted.
    expect(await only(cid)).toEqual({
      variant: "default",
      redeemed: 1,
      issued: 300,
      consumed: 100,
      expired: 0,
      converted: 0,
      conversion_bps: 0,
      breakage_bps: 0,
    });
  });

  it("a purchase before the lot is no conversion, even when the redemption was reserved before it; one after is", async () => {
    const cid = uid("cmp-order");
    await insertCampaign(cid);
    const [late, early] = [uid("cr-late-lot"), uid("cr-early-lot")];
    // late: the redemption is reserved, the account buys 500, and only then is the lot (300) issued.
    await plainRedemption(cid, late, "reserved", Date.now() - HOUR);
    await purchase(late, 500);
    await campaignLot(late, cid, "default", 300);
    // early: lot (300) issued, then a purchase of 200; its redemption row says it was redeemed a day
    // later (the gateway's clock): the account's own order decides, so it converted.
    await campaignLot(early, cid, "default", 300);
    await purchase(early, 200);
    await plainRedemption(cid, early, "granted", Date.now() + DAY);
    for (const a of [late, early]) await drain(a);
    // 2 redeemed, 600 issued; converted: early only → floor(1 × 10 000 / 2) = 5 000.
    expect(await only(cid)).toEqual({
      variant: "default",
      redeemed: 2,
      issued: 600,
      consumed: 0,
      expired: 0,
      converted: 1,
      conversion_bps: 5000,
      breakage_bps: 0,
    });
    // late buys again, after its lot: now both converted, 10 000 bps.
    await purchase(late, 100);
    await drain(late);
    expect(await only(cid)).toMatchObject({ redeemed: 2, converted: 2, conversion_bps: 10_000 });
  });

  it("a campaign whose grant is in tokens reports in tokens unless ?unit= says otherwise", async () => {
    const cid = uid("cmp-tokens");
    await insertCampaign(cid, undefined, "tokens");
    const a = uid("cr-tokens");
    // 700 tokens issued, 250 tokens spent; then a purchase of 100 credits (a conversion, in any unit).
    await grant(a, {
      grant_id: `campaign.${cid}`,
      type: "promotional",
      unit: "tokens",
      amount: 700,
      campaign: cid,
      source: "campaign",
      metadata: { variant: "default" },
    });
    const drawn = await debit(a, 250, { unit: "tokens" });
    expect(drawn.status, drawn.text).toBe(200);
    await plainRedemption(cid, a, "granted");
    await purchase(a, 100);
    await drain(a);
    const res = await campaignReport(cid);
    expect(res.status, res.text).toBe(200);
    expect(res.json).toEqual({
      campaign_id: cid,
      unit: "tokens",
      variants: [
        {
          variant: "default",
          redeemed: 1,
          issued: 700,
          consumed: 250,
          expired: 0,
          converted: 1,
          conversion_bps: 10_000,
          breakage_bps: 0,
        },
      ],
    });
    const csv = await campaignReport(cid, { format: "csv" });
    expect(csv.text.split("\r\n")[1]).toBe(`${cid},tokens,default,1,700,250,0,1,10000,0`);
    // In credits the lot issued nothing; the account still redeemed and converted.
    const inCredits = await campaignReport(cid, { unit: "credits" });
    expect(inCredits.json.unit).toBe("credits");
    expect(inCredits.json.variants).toEqual([
      {
        variant: "default",
        redeemed: 1,
        issued: 0,
        consumed: 0,
        expired: 0,
        converted: 1,
        conversion_bps: 10_000,
        breakage_bps: 0,
      },
    ]);
  });
});

describe("campaign report: zeros and refusals", () => {
  it("every declared variant appears with zeros before anyone redeems", async () => {
    const cid = uid("cmp-empty");
    await insertCampaign(cid, VARIANTS);
    const zero = { redeemed: 0, issued: 0, consumed: 0, expired: 0, converted: 0, conversion_bps: 0, breakage_bps: 0 };
    expect((await campaignReport(cid)).json).toEqual({
      campaign_id: cid,
      unit: "credits",
      variants: [
        { variant: "signup_1000", ...zero },
        { variant: "trial_7d", ...zero },
      ],
    });
    const plain = uid("cmp-plain");
    await insertCampaign(plain);
    expect((await campaignReport(plain)).json.variants).toEqual([{ variant: "default", ...zero }]);
  });

  it("a variant redemptions name but the campaign no longer declares follows the declared ones", async () => {
    const cid = uid("cmp-renamed");
    await insertCampaign(cid, VARIANTS);
    const a = uid("cr-old");
    await campaignLot(a, cid, "old_offer", 40);
    await insertRedemption({
      campaignId: cid,
      accountId: a,
      variant: "old_offer",
      grantId: `campaign.${cid}`,
      redeemedAtMs: Date.now(),
    });
    await drain(a);
    const res = await campaignReport(cid);
    expect(res.json.variants.map((v: any) => [v.variant, v.redeemed, v.issued])).toEqual([
      ["signup_1000", 0, 0],
      ["trial_7d", 0, 0],
      ["old_offer", 1, 40],
    ]);
  });

  it("a purchase awaiting payment converts only once activated; a cancelled one never", async () => {
    const cid = uid("cmp-await");
    await insertCampaign(cid);
    const [payer, quitter] = [uid("cr-payer"), uid("cr-quitter")];
    for (const a of [payer, quitter]) {
      await campaignLot(a, cid, "default", 100);
      await insertRedemption({
        campaignId: cid,
        accountId: a,
        variant: "default",
        grantId: `campaign.${cid}`,
        redeemedAtMs: Date.now() - HOUR,
      });
      await grant(a, { grant_id: "pack-1", type: "purchased", amount: 5000, awaiting_payment: true });
      await drain(a);
    }
    const converted = async () => (await campaignReport(cid)).json.variants[0].converted;
    expect(await converted()).toBe(0);
    expect((await call("POST", `/v1/accounts/${payer}/grants/pack-1/activate`, { payment_ref: "pay-1" })).status).toBe(
      200,
    );
    expect(
      (await call("POST", `/v1/accounts/${quitter}/grants/pack-1/cancel`, { reason: "card declined" })).status,
    ).toBe(200);
    for (const a of [payer, quitter]) await drain(a);
    // 1 of 2: floor(1 × 10 000 / 2) = 5 000.
    expect((await campaignReport(cid)).json.variants).toEqual([
      {
        variant: "default",
        redeemed: 2,
        issued: 200,
        consumed: 0,
        expired: 0,
        converted: 1,
        conversion_bps: 5000,
        breakage_bps: 0,
      },
    ]);
  });

  it("an unknown campaign is 404 code_not_found", async () => {
    expectProblem(await campaignReport(uid("cmp-none")), 404, "code_not_found");
  });

  it.each([
    ["an unknown query field", { unit: "credits", group_by: "type" }],
    ["a bad unit", { unit: "Credits!" }],
    ["an empty unit", { unit: "" }],
    ["an unknown format", { format: "xml" }],
  ])("%s is 400 invalid_request", async (_name, query) => {
    const cid = uid("cmp-q");
    await insertCampaign(cid);
    expectProblem(await campaignReport(cid, query as Record<string, string>), 400, "invalid_request");
  });

  it.each([["bad id!"], ["x".repeat(129)], ["é"]])("campaign id %j is refused with 400 invalid_request", async (id) => {
    expectProblem(await campaignReport(id), 400, "invalid_request");
  });
});
