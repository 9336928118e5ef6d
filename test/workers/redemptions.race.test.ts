/**
 * Redemptions under concurrency, against real D1 batches and real Durable
 * Objects: a single-use code grants exactly once whoever races for it, an
 * account gets one grant per campaign whichever codes it races with, and
 * max_redemptions is never passed. A crash between D1's reservation and the
 * account's grant loses and doubles nothing: the same request completes it,
 * and a refusal gives the reservation back.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { campaignCounter, oneCode, putCampaign, redeem, redemptionRow } from "./campaign-helpers";
import { call, ledgerEntries, ledgerStubFor, type Res, uid } from "./helpers";
import { drain } from "./jobs-helpers";

const countBy = (rs: Res[]) => {
  const out: Record<string, number> = {};
  for (const r of rs) {
    const key = r.status === 201 ? "201" : `${r.status} ${r.json?.code}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
};

async function d1Lots(grantId: string): Promise<{ account_id: string }[]> {
  const { results } = await env.DB.prepare("SELECT account_id FROM grants WHERE grant_id = ?")
    .bind(grantId)
    .all<{ account_id: string }>();
  return results;
}

describe("racing redemptions", () => {
  it("100 concurrent redemptions of one single-use code by 100 accounts: one 201, 99 already_redeemed, one lot", async () => {
    const { id } = await putCampaign();
    const code = await oneCode(id);
    const accounts = Array.from({ length: 100 }, () => uid("racer"));
    const results = await Promise.all(accounts.map((a) => redeem(code, a)));
    expect(countBy(results)).toEqual({ "201": 1, "409 already_redeemed": 99 });
    const winner = accounts[results.findIndex((r) => r.status === 201)] as string;
    for (const a of accounts) await drain(a).catch(() => undefined);
    expect(await d1Lots(`campaign.${id}`)).toEqual([{ account_id: winner }]);
    expect(await campaignCounter(id)).toBe(1);
    const claimed = await env.DB.prepare("SELECT redeemed_by FROM campaign_codes WHERE code = ?").bind(code).first();
    expect(claimed).toEqual({ redeemed_by: winner });
    // The winner's repeat replays; a loser's repeat is still refused.
    expect((await redeem(code, winner)).headers.get("idempotent-replayed")).toBe("true");
    const loser = accounts.find((a) => a !== winner) as string;
    expect((await redeem(code, loser)).json.code).toBe("already_redeemed");
  });

  it("one account redeeming two codes of one campaign at once gets one grant; the other code is already_redeemed", async () => {
    const { id } = await putCampaign();
    const [c1, c2] = [await oneCode(id), await oneCode(id)];
    const a = uid();
    const results = await Promise.all([redeem(c1, a), redeem(c2, a), redeem(c1, a), redeem(c2, a)]);
    const won = results.filter((r) => r.status === 201);
    expect(won.length).toBeGreaterThanOrEqual(1);
    // Every 201 names the same code (the same redemption, replayed); the other code's requests are 409.
    expect(new Set(won.map((r) => r.json.grant.metadata.code)).size).toBe(1);
    const winning = won[0]?.json.grant.metadata.code;
    for (const r of results.filter((x) => x.status !== 201)) expect(r.json.code).toBe("already_redeemed");
    expect(results.filter((r, i) => r.status !== 201 && [c1, c2, c1, c2][i] === winning)).toEqual([]);
    const entries = await ledgerEntries(a);
    expect(entries.filter((e) => e.kind === "grant")).toHaveLength(1);
    expect(await campaignCounter(id)).toBe(1);
    // The losing single-use code was not claimed: another account may still use it.
    const other = winning === c1 ? c2 : c1;
    expect((await redeem(other, uid())).status).toBe(201);
  });

  it("the same redemption sent 20 times at once: all 201, one grant, every answer but one replayed", async () => {
    const { id } = await putCampaign();
    const code = await oneCode(id);
    const a = uid();
    const results = await Promise.all(Array.from({ length: 20 }, () => redeem(code, a)));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(results.filter((r) => r.headers.get("idempotent-replayed") !== "true")).toHaveLength(1);
    expect(new Set(results.map((r) => JSON.stringify(r.json.grant))).size).toBe(1);
    expect((await ledgerEntries(a)).filter((e) => e.kind === "grant")).toHaveLength(1);
    expect(await campaignCounter(id)).toBe(1);
  });

  it("max_redemptions = 10 with 50 accounts at once: exactly 10 grants, 40 campaign_closed", async () => {
    const { id } = await putCampaign({ max_redemptions: 10 });
    const code = await oneCode(
      id,
      uid("TEN")
        .replace(/[^A-Za-z0-9-]/g, "")
        .slice(0, 40),
    );
    const accounts = Array.from({ length: 50 }, () => uid("ten"));
    const results = await Promise.all(accounts.map((a) => redeem(code, a)));
    expect(countBy(results)).toEqual({ "201": 10, "409 campaign_closed": 40 });
    for (const a of accounts) await drain(a).catch(() => undefined);
    expect((await d1Lots(`campaign.${id}`)).length).toBe(10);
    expect(await campaignCounter(id)).toBe(10);
  });
});

describe("between D1 and the account", () => {
  it("a crash after the reservation: the row stays reserved, the same request completes it, once", async () => {
    const { id } = await putCampaign({ max_redemptions: 1 });
    const code = await oneCode(id);
    const a = uid();
    await call("PUT", `/v1/accounts/${a}`, { name: "crashy" });
    await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
      inst.faults.beforeRecord = () => {
        throw new Error("injected crash inside the grant's transaction");
      };
    });
    const crashed = await redeem(code, a);
    expect(crashed.status).toBeGreaterThanOrEqual(500);
    expect(await redemptionRow(id, a)).toMatchObject({ status: "reserved", code });
    expect(await campaignCounter(id)).toBe(1);
    expect((await ledgerEntries(a)).length).toBe(0);
    // The campaign is full and the code claimed, both by this reservation: nobody else gets in meanwhile.
    expect((await redeem(code, uid())).json.code).toBe("already_redeemed");
    await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
      inst.faults.beforeRecord = undefined;
    });
    const done = await redeem(code, a);
    expect(done.status).toBe(201);
    expect(done.headers.get("idempotent-replayed")).toBeNull();
    expect(await redemptionRow(id, a)).toMatchObject({ status: "granted" });
    expect((await ledgerEntries(a)).filter((e) => e.kind === "grant")).toHaveLength(1);
    expect(await campaignCounter(id)).toBe(1);
  });

  it("the account refusing (policy: promotional needs verified) gives the reservation back", async () => {
    const { id } = await putCampaign({ max_redemptions: 1 });
    const code = await oneCode(id);
    const a = uid();
    await call("PUT", `/v1/accounts/${a}`, { verified: false });
    // Only this account's override: the global policy stays as every other suite expects it.
    await call("PUT", `/v1/accounts/${a}/policy`, { require_verified_for_promotional: true });
    const refused = await redeem(code, a);
    expect(refused.status).toBe(403);
    expect(refused.json.code).toBe("account_not_verified");
    expect(await redemptionRow(id, a)).toBeNull();
    expect(await campaignCounter(id)).toBe(0);
    const codeRow = await env.DB.prepare("SELECT redeemed_by FROM campaign_codes WHERE code = ?").bind(code).first();
    expect(codeRow).toEqual({ redeemed_by: null });
    // The code and the campaign's one slot are free again.
    expect((await redeem(code, uid())).status).toBe(201);
  });
});
