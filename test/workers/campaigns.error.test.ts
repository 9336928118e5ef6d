/**
 * Campaigns, codes, redemptions and referral codes refuse bad input with the
 * contract's problem+json, and a refusal changes nothing: no campaign row,
 * no code, no reservation, no entry on the account.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { campaignCounter, keyOf, oneCode, putCampaign, redeem, redemptionRow } from "./campaign-helpers";
import { call, expectProblem, ledgerEntries, uid } from "./helpers";

const GOOD = { name: "Promo", grant: { amount: 100 } };

async function campaignRows(id: string) {
  const c = await env.DB.prepare("SELECT * FROM campaigns WHERE campaign_id = ?").bind(id).first();
  const codes = await env.DB.prepare("SELECT COUNT(*) AS n FROM campaign_codes WHERE campaign_id = ?").bind(id).first();
  const red = await env.DB.prepare("SELECT COUNT(*) AS n FROM campaign_redemptions WHERE campaign_id = ?")
    .bind(id)
    .first();
  return JSON.stringify({ c, codes, red });
}

describe("PUT /v1/campaigns/{id}: bad bodies are 400 and create nothing", () => {
  const cases: [string, unknown, number, string][] = [
    ["unknown field", { ...GOOD, colour: "red" }, 400, "invalid_request"],
    ["missing name", { grant: { amount: 1 } }, 400, "invalid_request"],
    ["missing grant", { name: "x" }, 400, "invalid_request"],
    ["grant amount 0", { name: "x", grant: { amount: 0 } }, 400, "invalid_amount"],
    ["grant amount fractional", { name: "x", grant: { amount: 1.5 } }, 400, "invalid_amount"],
    ["grant amount as a string", { name: "x", grant: { amount: "5" } }, 400, "invalid_amount"],
    ["grant amount above 10^15", { name: "x", grant: { amount: 1e15 + 1 } }, 400, "invalid_amount"],
    ["purchased campaign grant", { name: "x", grant: { amount: 1, type: "purchased" } }, 400, "invalid_request"],
    ["unknown field in grant", { name: "x", grant: { amount: 1, cost_basis: {} } }, 400, "invalid_request"],
    ["expires_in_days 0", { name: "x", grant: { amount: 1, expires_in_days: 0 } }, 400, "invalid_request"],
    ["no variants", { ...GOOD, variants: [] }, 400, "invalid_request"],
    [
      "repeated variant",
      {
        ...GOOD,
        variants: [
          { variant: "a", weight: 1 },
          { variant: "a", weight: 2 },
        ],
      },
      400,
      "invalid_request",
    ],
    ["weight 0", { ...GOOD, variants: [{ variant: "a", weight: 0 }] }, 400, "invalid_request"],
    ["fractional weight", { ...GOOD, variants: [{ variant: "a", weight: 0.5 }] }, 400, "invalid_request"],
    ["bad variant name", { ...GOOD, variants: [{ variant: "a b", weight: 1 }] }, 400, "invalid_request"],
    [
      "17 variants",
      { ...GOOD, variants: Array.from({ length: 17 }, (_, i) => ({ variant: `v${i}`, weight: 1 })) },
      400,
      "invalid_request",
    ],
    [
      "ends before it starts",
      { ...GOOD, starts_at: "2026-05-01T00:00:00Z", ends_at: "2026-04-01T00:00:00Z" },
      400,
      "invalid_request",
    ],
    ["bad time", { ...GOOD, starts_at: "tomorrow" }, 400, "invalid_request"],
    ["max_redemptions 0", { ...GOOD, max_redemptions: 0 }, 400, "invalid_request"],
    ["requires_verified as a string", { ...GOOD, requires_verified: "yes" }, 400, "invalid_request"],
    ["an array body", [GOOD], 400, "invalid_request"],
  ];
  for (const [name, body, status, code] of cases) {
    it(name, async () => {
      const id = uid("bad-camp");
      const res = await call("PUT", `/v1/campaigns/${id}`, body);
      expectProblem(res, status, code);
      expect((await call("GET", `/v1/campaigns/${id}`)).status).toBe(404);
    });
  }

  it("malformed JSON, no content-type, a campaign id too long or with bad characters", async () => {
    const id = uid("bad-camp");
    expectProblem(await call("PUT", `/v1/campaigns/${id}`, undefined, { raw: "{nope" }), 400, "invalid_json");
    expectProblem(
      await call("PUT", `/v1/campaigns/${id}`, undefined, {
        raw: JSON.stringify(GOOD),
        headers: { "content-type": "text/plain" },
      }),
      415,
      "unsupported_media_type",
    );
    expectProblem(await call("PUT", `/v1/campaigns/${"c".repeat(65)}`, GOOD), 400, "invalid_request");
    expectProblem(await call("PUT", `/v1/campaigns/bad%20id`, GOOD), 400, "invalid_request");
    expect((await call("GET", `/v1/campaigns/${id}`)).status).toBe(404);
  });

  it("roles: finance, support, gateway and viewer may not configure; an account-scoped key may not either", async () => {
    for (const role of ["finance", "support", "gateway", "viewer"]) {
      const res = await call("PUT", `/v1/campaigns/${uid("camp")}`, GOOD, { token: await keyOf(role, 1000) });
      expectProblem(res, 403, "forbidden");
    }
    const scope = uid("scope");
    await call("PUT", `/v1/accounts/${scope}`, { name: "scope" });
    const scoped = await call("POST", "/v1/api-keys", { name: uid("s"), role: "admin", account_scope: scope });
    expect(scoped.status).toBe(201);
    expectProblem(
      await call("PUT", `/v1/campaigns/${uid("camp")}`, GOOD, { token: scoped.json.key }),
      403,
      "forbidden",
    );
    expectProblem(await call("GET", "/v1/campaigns", undefined, { token: scoped.json.key }), 403, "forbidden");
  });

  it("a marketing key without max_grant_amount may configure nothing", async () => {
    const res = await call("PUT", `/v1/campaigns/${uid("camp")}`, GOOD, { token: await keyOf("marketing") });
    expectProblem(res, 403, "grant_limit_exceeded");
  });
});

describe("reads", () => {
  it("an unknown campaign is 404 code_not_found; bad limits and cursors are 400", async () => {
    expectProblem(await call("GET", `/v1/campaigns/${uid("nope")}`), 404, "code_not_found");
    expectProblem(await call("GET", "/v1/campaigns?limit=0"), 400, "invalid_request");
    expectProblem(await call("GET", "/v1/campaigns?limit=101"), 400, "invalid_request");
    expectProblem(await call("GET", "/v1/campaigns?cursor=a%20b"), 400, "invalid_request");
    expectProblem(await call("GET", "/v1/campaigns?colour=red"), 400, "invalid_request");
  });
});

describe("POST /v1/campaigns/{id}/codes", () => {
  let id: string;
  beforeAll(async () => {
    id = (await putCampaign()).id;
  });
  const cases: [string, unknown][] = [
    ["count 0", { count: 0 }],
    ["count 10 001", { count: 10_001 }],
    ["count fractional", { count: 1.5 }],
    ["both count and codes", { count: 1, codes: ["ABCD"] }],
    ["neither", {}],
    ["no codes", { codes: [] }],
    ["a code too short", { codes: ["abc"] }],
    ["a code with a space", { codes: ["ab cd"] }],
    ["a code too long", { codes: ["A".repeat(49)] }],
    ["1 001 codes", { codes: Array.from({ length: 1001 }, (_, i) => `CODE${i}`) }],
    ["generated but multi-use", { count: 1, single_use: false }],
    ["unknown field", { count: 1, prefix: "X" }],
  ];
  for (const [name, body] of cases) {
    it(name, async () => {
      const before = await campaignRows(id);
      expectProblem(await call("POST", `/v1/campaigns/${id}/codes`, body), 400, "invalid_request");
      expect(await campaignRows(id)).toBe(before);
    });
  }

  it("an unknown campaign is 404; a code of another campaign, or of other use, is 400 and adds nothing", async () => {
    expectProblem(await call("POST", `/v1/campaigns/${uid("nope")}/codes`, { count: 1 }), 404, "code_not_found");
    const other = (await putCampaign()).id;
    const taken = await oneCode(
      other,
      uid("TAKEN")
        .replace(/[^A-Za-z0-9-]/g, "")
        .slice(0, 40),
    );
    const before = await campaignRows(id);
    const fresh = uid("FRESH")
      .replace(/[^A-Za-z0-9-]/g, "")
      .slice(0, 40);
    expectProblem(await call("POST", `/v1/campaigns/${id}/codes`, { codes: [fresh, taken] }), 400, "invalid_request");
    expect(await campaignRows(id)).toBe(before);
    // The same given code again with the other use is refused too.
    expectProblem(
      await call("POST", `/v1/campaigns/${other}/codes`, { codes: [taken], single_use: true }),
      400,
      "invalid_request",
    );
  });

  it("support, gateway and viewer may not add codes", async () => {
    for (const role of ["support", "gateway", "viewer"]) {
      expectProblem(
        await call("POST", `/v1/campaigns/${id}/codes`, { count: 1 }, { token: await keyOf(role, 10) }),
        403,
        "forbidden",
      );
    }
  });
});

describe("POST /v1/redemptions refusals change nothing", () => {
  async function expectNothing(campaignId: string, accountId: string, fn: () => Promise<void>) {
    const before = await campaignRows(campaignId);
    await fn();
    expect(await campaignRows(campaignId)).toBe(before);
    expect(await redemptionRow(campaignId, accountId)).toBeNull();
    expect((await call("GET", `/v1/accounts/${accountId}`)).status).toBe(404);
  }

  it("schema: unknown field, bad code, bad account id, missing fields", async () => {
    const { id } = await putCampaign();
    const code = await oneCode(id);
    const a = uid();
    await expectNothing(id, a, async () => {
      expectProblem(await call("POST", "/v1/redemptions", { code, account_id: a, extra: 1 }), 400, "invalid_request");
      expectProblem(await call("POST", "/v1/redemptions", { code: "no way!", account_id: a }), 400, "invalid_request");
      expectProblem(await call("POST", "/v1/redemptions", { code, account_id: "a b" }), 400, "invalid_request");
      expectProblem(await call("POST", "/v1/redemptions", { code }), 400, "invalid_request");
      expectProblem(await call("POST", "/v1/redemptions", { code: 12345, account_id: a }), 400, "invalid_request");
      expectProblem(await call("POST", "/v1/redemptions", undefined, { raw: "[" }), 400, "invalid_json");
    });
  });

  it("an unknown code is 404 code_not_found", async () => {
    const { id } = await putCampaign();
    const a = uid();
    await expectNothing(id, a, async () => {
      expectProblem(await redeem("CG-NOSUCHCODE0000", a), 404, "code_not_found");
    });
  });

  it("outside the window: not started, or ended, is 409 campaign_closed", async () => {
    const future = await putCampaign({ starts_at: "2098-01-01T00:00:00Z" });
    const past = await putCampaign({ starts_at: "2020-01-01T00:00:00Z", ends_at: "2021-01-01T00:00:00Z" });
    for (const c of [future, past]) {
      const code = await oneCode(c.id);
      const a = uid();
      await expectNothing(c.id, a, async () => {
        expectProblem(await redeem(code, a), 409, "campaign_closed");
      });
    }
  });

  it("requires_verified and an unverified (or unknown) account: 403 account_not_verified, nothing reserved", async () => {
    const { id } = await putCampaign({ requires_verified: true });
    const code = await oneCode(id);
    const unknown = uid();
    await expectNothing(id, unknown, async () => {
      expectProblem(await redeem(code, unknown), 403, "account_not_verified");
    });
    const a = uid();
    await call("PUT", `/v1/accounts/${a}`, { verified: false });
    expectProblem(await redeem(code, a), 403, "account_not_verified");
    expect(await redemptionRow(id, a)).toBeNull();
    expect(await campaignCounter(id)).toBe(0);
    expect(await ledgerEntries(a)).toEqual([]);
  });

  it("a second code of a campaign the account redeemed is 409 already_redeemed and grants nothing", async () => {
    const { id } = await putCampaign();
    const [c1, c2] = [await oneCode(id), await oneCode(id)];
    const a = uid();
    expect((await redeem(c1, a)).status).toBe(201);
    expectProblem(await redeem(c2, a), 409, "already_redeemed");
    expect((await ledgerEntries(a)).length).toBe(1);
    expect(await campaignCounter(id)).toBe(1);
  });

  it("roles: finance, support, viewer may not redeem; a scoped key may not either", async () => {
    const { id } = await putCampaign();
    const code = await oneCode(id);
    const a = uid();
    const scope = uid("scope");
    await call("PUT", `/v1/accounts/${scope}`, { name: "scope" });
    const scoped = await call("POST", "/v1/api-keys", { name: uid("s"), role: "admin", account_scope: scope });
    expect(scoped.status).toBe(201);
    await expectNothing(id, a, async () => {
      for (const role of ["finance", "support", "viewer"]) {
        expectProblem(await redeem(code, a, await keyOf(role, 1000)), 403, "forbidden");
      }
      // Even for the key's own scope account: a scoped key may not redeem (docs).
      expectProblem(await redeem(code, scope, scoped.json.key), 403, "forbidden");
      expectProblem(await redeem(code, a, scoped.json.key), 403, "forbidden");
    });
  });
});

describe("POST /v1/accounts/{id}/referral-code", () => {
  it("a campaign without referrer_grant is 400; an unknown campaign 404; an unknown account 404", async () => {
    const plain = await putCampaign();
    const a = uid();
    await call("PUT", `/v1/accounts/${a}`, { name: "referrer" });
    expectProblem(
      await call("POST", `/v1/accounts/${a}/referral-code`, { campaign_id: plain.id }),
      400,
      "invalid_request",
    );
    expectProblem(
      await call("POST", `/v1/accounts/${a}/referral-code`, { campaign_id: uid("nope") }),
      404,
      "code_not_found",
    );
    const ref = await putCampaign({ referrer_grant: { amount: 50 } });
    expectProblem(
      await call("POST", `/v1/accounts/${uid()}/referral-code`, { campaign_id: ref.id }),
      404,
      "account_not_found",
    );
    expectProblem(
      await call("POST", `/v1/accounts/${a}/referral-code`, { campaign_id: "a b" }),
      400,
      "invalid_request",
    );
    expectProblem(
      await call("POST", `/v1/accounts/${a}/referral-code`, { campaign_id: ref.id, x: 1 }),
      400,
      "invalid_request",
    );
    expectProblem(await call("POST", `/v1/accounts/${a}/referral-code`, {}), 400, "invalid_request");
    const codes = await env.DB.prepare("SELECT COUNT(*) AS n FROM campaign_codes WHERE referrer_account_id = ?")
      .bind(a)
      .first();
    expect(codes).toEqual({ n: 0 });
  });

  it("a referee redeeming the code of the account it referred (a referral cycle) is 400", async () => {
    const ref = await putCampaign({ referrer_grant: { amount: 50 } });
    const a = uid();
    await call("PUT", `/v1/accounts/${a}`, { name: "referrer" });
    const b = uid();
    const codeA = (await call("POST", `/v1/accounts/${a}/referral-code`, { campaign_id: ref.id })).json.code;
    expect((await redeem(codeA, b)).status).toBe(201);
    const codeB = (await call("POST", `/v1/accounts/${b}/referral-code`, { campaign_id: ref.id })).json.code;
    expectProblem(await redeem(codeB, a), 400, "invalid_request");
    expect(await ledgerEntries(a)).toEqual([]);
    expect(await redemptionRow(ref.id, a)).toBeNull();
  });

  it("a referrer redeeming its own referral code is 400 and gets nothing", async () => {
    const ref = await putCampaign({ referrer_grant: { amount: 50 } });
    const a = uid();
    await call("PUT", `/v1/accounts/${a}`, { name: "referrer" });
    const code = (await call("POST", `/v1/accounts/${a}/referral-code`, { campaign_id: ref.id })).json.code;
    expectProblem(await redeem(code, a), 400, "invalid_request");
    expect(await ledgerEntries(a)).toEqual([]);
    expect(await redemptionRow(ref.id, a)).toBeNull();
  });
});
